//! Real binaries nobody here wrote: every Go executable shipped in the installed
//! toolchains (`bin/*`, `pkg/tool/*/*`) parses, and its function table and sampled
//! pc → file:line agree with that toolchain's `go tool nm` / `go tool addr2line`.

mod gobin_support;
mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use gobin_support::*;
use tracer_user::gobin::{GoBinary, Scope};

/// PCs sampled per binary for addr2line.
const SAMPLES: usize = 300;

fn executables(tc: &Toolchain) -> Vec<PathBuf> {
    let root = tc.goroot();
    let mut out = Vec::new();
    let mut dirs = vec![root.join("bin")];
    if let Ok(entries) = std::fs::read_dir(root.join("pkg/tool")) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    for dir in dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn toolchain_executables_agree_with_nm_and_addr2line() {
    let mut checked = 0;
    for tc in toolchains_or_skip("toolchain_executables_agree_with_nm_and_addr2line") {
        for path in executables(&tc) {
            let ctx = format!("{} {}", tc.version, path.display());
            let bin = GoBinary::open(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(bin.go_version(), go_version_m(&tc, &path), "{ctx}");
            let funcs: Vec<_> = bin.functions().collect();
            let ours: BTreeSet<(String, u64)> = funcs.iter().map(|f| (elide_brackets(&f.name), f.entry)).collect();
            if !bin.stripped() {
                let nm = nm_text_symbols(&tc, &path);
                let extra: Vec<_> = ours.difference(&nm).take(5).collect();
                assert!(extra.is_empty(), "{ctx}: functions not in nm: {extra:?}");
                let missing: Vec<_> =
                    nm.difference(&ours).filter(|(n, _)| !is_non_function_symbol(n)).take(5).collect();
                assert!(missing.is_empty(), "{ctx}: nm symbols missing: {missing:?}");
            }
            let step = (funcs.len() / SAMPLES).max(1);
            let pcs: Vec<u64> = funcs.iter().step_by(step).map(|f| f.entry + ((f.end - f.entry) / 3).min(64)).collect();
            for (pc, (func, pos)) in pcs.iter().zip(addr2line(&tc, &path, &pcs)) {
                let frames = bin.symbolize(*pc).unwrap_or_else(|| panic!("{ctx}: {pc:#x}"));
                let ours = position(&frames[0], &pos);
                assert_eq!(
                    (frames.last().unwrap().function.as_str(), ours.as_str()),
                    (func.as_str(), pos.as_str()),
                    "{ctx} {pc:#x}"
                );
            }
            let report = bin.report(&Scope::Default);
            assert!(report.plan.functions.iter().any(|f| f.name == "runtime.growslice"), "{ctx}");
            assert!(report.module_data.is_some(), "{ctx}: moduledata not found");
            assert!(!report.to_string().is_empty());
            serde_json::to_string(&report).expect("report serializes");
            checked += 1;
        }
    }
    eprintln!("checked {checked} toolchain executables");
}

/// nm lists a few text symbols that are not functions of the function table.
fn is_non_function_symbol(name: &str) -> bool {
    matches!(name, "runtime.text" | "runtime.etext" | "go:buildid" | "go.buildid")
        || name.starts_with("go:") && !name.contains('.')
}
