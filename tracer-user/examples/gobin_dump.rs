//! Prints what `gobin` reads from a Go binary (a debugging aid):
//! `cargo run --example gobin_dump -- BIN [SCOPE]`.
use tracer_user::gobin::{GoBinary, Scope};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: gobin_dump BIN [SCOPE]");
    let scope: Scope = args.next().unwrap_or_default().parse().expect("scope");
    let bin = GoBinary::open(path.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    println!("{:#?}", bin.build_info());
    println!("module data: {:x?}", bin.module_data());
    println!("layout: {:?} table: {:?}", bin.layout(), tracer_user::gobin::table_layout(bin.version()));
    let plan = bin.probe_plan(&scope);
    for s in &plan.list_sites {
        println!("{s:x?}");
    }
    for p in &plan.probes {
        println!("{:#x} {:?} {} -> {}", p.address, p.kind, p.caller, p.target);
    }
    for m in &plan.missing {
        println!("missing {}: {}", m.what, m.reason);
    }
}
