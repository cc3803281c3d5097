//! Fixture tests of `gobin`: the fixture is built with every installed Go
//! toolchain (stripped and not) and checked against `go version -m`, `go tool nm`
//! and `go tool objdump`. Skips with a message when no Go toolchain is installed.

mod gobin_support;
mod support;

use std::collections::BTreeSet;

use gobin_support::*;
use tracer_user::gobin::{GoBinary, ProbeKind, Scope};

const GROWTH: [&str; 4] =
    ["runtime.growslice", "runtime.growsliceNoAlias", "runtime.growsliceBuf", "runtime.growsliceBufNoAlias"];

#[test]
fn fixture_version_functions_and_growth_sites() {
    let tcs = toolchains_or_skip("fixture_version_functions_and_growth_sites");
    for tc in tcs {
        let plain = build_fixture(&tc, false);
        let stripped = build_fixture(&tc, true);
        let nm = nm_text_symbols(&tc, &plain);
        let objdump = objdump(&tc, &plain);
        for path in [&plain, &stripped] {
            let bin = GoBinary::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let ctx = format!("{} {}", tc.version, path.display());
            assert_eq!(bin.go_version(), go_version_m(&tc, path), "{ctx}");
            assert_eq!(bin.stripped(), path == &stripped, "{ctx}");
            assert_eq!(bin.main_module(), Some("example.com/ghostfix"), "{ctx}");
            assert!(bin.deps().iter().any(|d| d.path == "example.com/ghostdep.v2"), "{ctx}");

            // Function table = text symbols of nm (on the unstripped twin). Go 1.19
            // writes generic names elided (`F[...]`), so compare elided names.
            let funcs: BTreeSet<(String, u64)> = bin.functions().map(|f| (elide_brackets(&f.name), f.entry)).collect();
            let extra: Vec<_> = funcs.difference(&nm).collect();
            assert!(extra.is_empty(), "{ctx}: functions not in nm: {extra:?}");
            let missing: Vec<_> = nm.difference(&funcs).filter(|(n, _)| !is_non_function_symbol(n)).collect();
            assert!(missing.is_empty(), "{ctx}: nm text symbols missing from the function table: {missing:?}");

            // Growth call sites, all scopes = CALLs to growth functions in objdump.
            let want: BTreeSet<u64> = objdump
                .iter()
                .filter(|i| GROWTH.iter().any(|g| i.text.starts_with(&format!("CALL {g}(SB)"))))
                .map(|i| i.addr)
                .collect();
            let plan = bin.probe_plan(&Scope::All);
            let got: BTreeSet<u64> =
                plan.probes.iter().filter(|p| p.kind == ProbeKind::SliceGrowCall).map(|p| p.address).collect();
            assert_eq!(got, want, "{ctx}: growth call sites");
            for p in &plan.probes {
                assert_eq!(bin.func_at(p.address).map(|f| f.name), Some(p.caller.clone()), "{ctx}");
                // CALL rel32 is always emulated; list exits may land anywhere.
                assert!(p.emulated || p.after.is_none(), "{ctx}: {p:?}");
            }

            // Default scope: only the fixture's own packages, and the expected callers.
            let default = bin.probe_plan(&Scope::Default);
            let pkgs: BTreeSet<&str> = default.probes.iter().map(|p| p.package.as_str()).collect();
            assert_eq!(pkgs, BTreeSet::from(["example.com/ghostdep.v2", "main"]), "{ctx}");
            let growers: BTreeSet<&str> = default
                .probes
                .iter()
                .filter(|p| p.kind == ProbeKind::SliceGrowCall)
                .map(|p| p.caller.as_str())
                .collect();
            for f in [
                "main.grow",
                "main.growStrings",
                "main.(*store).add",
                "main.keepCap",
                "example.com/ghostdep%2ev2.Collect",
            ] {
                assert!(growers.contains(f), "{ctx}: no growth site in {f}: {growers:?}");
            }
            // Go 1.26+ grow stack-buffered slices whose capacity is used with growsliceBuf.
            let buf = default
                .probes
                .iter()
                .find(|p| p.caller == "main.keepCap" && p.kind == ProbeKind::SliceGrowCall)
                .expect("keepCap");
            let want_target = if bin.version().at_least(1, 26) { "runtime.growsliceBuf" } else { "runtime.growslice" };
            assert_eq!(buf.target, want_target, "{ctx}");
        }
    }
}

/// nm lists a few text symbols that are not functions of the function table.
fn is_non_function_symbol(name: &str) -> bool {
    matches!(name, "runtime.text" | "runtime.etext" | "go:buildid" | "go.buildid" | "runtime.etypes" | "runtime.types")
        || name.starts_with("go:") && !name.contains('.')
}
