//! The one gate of every skip in the tests: a test that cannot run here says why and
//! passes, unless GHOSTRACE_REQUIRE_BPF=1 (CI) makes that a failure. Standalone (no other
//! support code) so that unit tests under src/ include it too.

/// Set to 1 where every test must run: then a skip fails the test.
pub const NO_SKIP_VAR: &str = "GHOSTRACE_REQUIRE_BPF";

/// Whether skips are failures here.
pub fn skips_forbidden() -> bool {
    std::env::var_os(NO_SKIP_VAR).is_some_and(|v| v == "1")
}

/// Skips `test` (or part of it) for `reason`: prints it, or panics under
/// GHOSTRACE_REQUIRE_BPF=1. The caller returns afterwards.
pub fn skip(test: &str, reason: &str) {
    assert!(!skips_forbidden(), "{test}: {NO_SKIP_VAR}=1 but it cannot run here: {reason}");
    // To the process's stderr itself: libtest keeps a passing test's eprintln! to itself.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
}
