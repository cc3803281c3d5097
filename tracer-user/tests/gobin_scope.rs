//! The default scope on the test binary of a module named without a dot (`module
//! app`, testdata/fixtures/dotless), built with `go test -c` by every installed
//! toolchain, stripped and not: before Go 1.24 such binaries record no module, and
//! `app/store` looks like a standard-library path. The plan must probe the module's
//! call sites and none of the standard library's; the oracle is `go list std` of the
//! same toolchain.

mod gobin_support;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use gobin_support::*;
use tracer_user::gobin::{GoBinary, Scope};

fn build_test_binary(tc: &Toolchain, stripped: bool) -> PathBuf {
    let dir = scratch_dir().join(&tc.version).join("dotless");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let out = dir.join(if stripped { "store-stripped.test" } else { "store.test" });
    let mut cmd = tc.command();
    cmd.current_dir(workspace_root().join("testdata/fixtures/dotless/store")).args(["test", "-c", "-o"]).arg(&out);
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    let res = cmd.arg(".").output().expect("run go test -c");
    assert!(res.status.success(), "go {} test -c: {}", tc.version, String::from_utf8_lossy(&res.stderr));
    out
}

#[test]
fn default_scope_of_a_dotless_module_test_binary() {
    for tc in toolchains_or_skip("default_scope_of_a_dotless_module_test_binary") {
        let std: BTreeSet<String> = tc.run(&["list", "std"]).lines().map(str::to_string).collect();
        assert!(std.contains("runtime") && std.len() > 100, "go list std: {std:?}");
        for stripped in [false, true] {
            let path = build_test_binary(&tc, stripped);
            let ctx = format!("{} stripped={stripped}", tc.version);
            let bin = GoBinary::open(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let plan = bin.probe_plan(&Scope::Default);
            let packages: BTreeSet<&str> = plan.probes.iter().map(|p| p.package.as_str()).collect();
            assert!(packages.contains("app/store"), "{ctx}: the module's own call sites are not probed: {packages:?}");
            let in_std: Vec<_> = packages.iter().filter(|p| std.contains(**p)).collect();
            assert!(in_std.is_empty(), "{ctx}: standard-library call sites in the default scope: {in_std:?}");
            let callers: BTreeSet<&str> = plan.probes.iter().map(|p| p.caller.as_str()).collect();
            assert!(callers.contains("app/store.Grow") && callers.contains("app/store.Count"), "{ctx}: {callers:?}");
            let std_plan = bin.probe_plan(&Scope::Std);
            assert!(std_plan.probes.iter().all(|p| std.contains(&p.package)), "{ctx}: `std` took a non-std package");
        }
    }
}
