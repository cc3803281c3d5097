//! The default scope on test binaries of a module named without a dot (`module
//! app`, testdata/fixtures/dotless), built with `go test -c` by every installed
//! toolchain, stripped or trimmed: before Go 1.24 such binaries record no
//! module, and `app/store` looks like a standard-library path; the external test
//! packages (`app/store_test`, `app_test` of a directory holding only test files)
//! sit under no module path at all, and name the package under test. The plan must probe their call sites and none
//! of the standard library's; the oracle is `go list std` of the same toolchain.

mod gobin_support;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use gobin_support::*;
use tracer_user::gobin::{GoBinary, Scope};

#[derive(Clone, Copy, Debug)]
enum Flags {
    Stripped,
    Trimmed,
}

/// `go test -c` of the package in `dir` (relative to the fixture's module root).
fn build_test_binary(tc: &Toolchain, dir: &str, flags: Flags) -> PathBuf {
    let scratch = scratch_dir().join(&tc.version).join("dotless");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let name = if dir.is_empty() { "root" } else { dir };
    let out = scratch.join(format!("{name}-{flags:?}.test"));
    let mut cmd = tc.command();
    cmd.current_dir(workspace_root().join("testdata/fixtures/dotless").join(dir)).args(["test", "-c", "-o"]).arg(&out);
    cmd.arg(match flags {
        Flags::Stripped => "-ldflags=-s -w",
        Flags::Trimmed => "-trimpath",
    });
    let res = cmd.arg(".").output().expect("run go test -c");
    assert!(res.status.success(), "go {} test -c: {}", tc.version, String::from_utf8_lossy(&res.stderr));
    out
}

#[test]
fn default_scope_of_a_dotless_module_test_binary() {
    for tc in toolchains_or_skip("default_scope_of_a_dotless_module_test_binary") {
        let std: BTreeSet<String> = tc.run(&["list", "std"]).lines().map(str::to_string).collect();
        assert!(std.contains("runtime") && std.len() > 100, "go list std: {std:?}");
        // Stripped keeps the file table (plain adds nothing); the module root's
        // `app_test` only trimmed, where nothing but its name tells.
        let builds = [(Flags::Stripped, "store"), (Flags::Trimmed, "store"), (Flags::Trimmed, "")];
        for (flags, dir) in builds {
            let callers: &[&str] = if dir.is_empty() { &["app_test.collect"] } else { &["app/store_test.tally"] };
            let path = build_test_binary(&tc, dir, flags);
            let ctx = format!("{} {flags:?} {}", tc.version, path.display());
            let bin = GoBinary::open(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let plan = bin.probe_plan(&Scope::Default);
            let packages: BTreeSet<&str> = plan.probes.iter().map(|p| p.package.as_str()).collect();
            let in_std: Vec<_> = packages.iter().filter(|p| std.contains(**p)).collect();
            assert!(in_std.is_empty(), "{ctx}: standard-library call sites in the default scope: {in_std:?}");
            let probed: BTreeSet<&str> = plan.probes.iter().map(|p| p.caller.as_str()).collect();
            let mut want = callers.to_vec();
            // Trimmed binaries before Go 1.24 record no module and no file under
            // GOROOT: `app/store` is known by its external test package.
            if dir == "store" {
                want.extend(["app/store.Grow", "app/store.Count"]);
            }
            for caller in want {
                assert!(probed.contains(caller), "{ctx}: {caller} is not probed: {probed:?}");
            }
            let std_plan = bin.probe_plan(&Scope::Std);
            assert!(std_plan.probes.iter().all(|p| std.contains(&p.package)), "{ctx}: `std` took a non-std package");
        }
    }
}
