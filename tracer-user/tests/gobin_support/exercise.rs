//! Every public entry point of the Go binary readers on one input: shared by the
//! mutation test and the fuzz target (tracer-user/fuzz). Bad input must give a
//! typed error or a result; a panic is the failure.

use tracer_user::gobin::{GoBinary, Scope};

pub fn exercise(bytes: Vec<u8>) {
    let Ok(bin) = GoBinary::from_bytes(bytes) else { return };
    let _ = (bin.go_version(), bin.version(), bin.arch(), bin.stripped(), bin.main_module(), bin.deps());
    let funcs: Vec<_> = bin.functions().take(50_000).collect();
    let step = (funcs.len() / 64).max(1);
    for f in funcs.iter().step_by(step) {
        let _ = bin.func_at(f.entry);
        let _ = bin.try_symbolize(f.entry.wrapping_add(3));
    }
    let report = bin.report(&Scope::Default);
    let _ = report.to_string();
    let _ = serde_json::to_string(&report).expect("serializes");
}
