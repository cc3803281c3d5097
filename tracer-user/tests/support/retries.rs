//! Bounded, counted second chances for runs whose race may not repeat: a run is
//! repeated at most once, only when every problem it had is of a kind the caller
//! names as chance (a detector that missed, never a wrong exit status), each retry
//! is printed, and a test whose runs needed more than [`ALLOWED`] retries fails: a
//! falling detection rate shows up instead of being retried away.

use std::io::Write as _;

/// Retried runs a test may have in all.
pub const ALLOWED: usize = 1;

/// The retries of one test.
pub struct Retries {
    test: String,
    runs: usize,
    retried: Vec<String>,
}

impl Retries {
    pub fn new(test: &str) -> Self {
        Self { test: test.to_string(), runs: 0, retried: Vec::new() }
    }

    /// The problems of `attempt` (named `name`), run a second time when every problem
    /// of the first run satisfies `by_chance`; the second run's problems then stand.
    pub fn run(&mut self, name: &str, mut attempt: impl FnMut() -> Vec<String>, by_chance: impl Fn(&str) -> bool) -> Vec<String> {
        self.runs += 1;
        let problems = attempt();
        if problems.is_empty() || !problems.iter().all(|p| by_chance(p)) {
            return problems;
        }
        self.retried.push(format!("{name} ({})", problems.join("; ")));
        // To the process's stderr itself: libtest keeps a passing test's eprintln! to itself.
        let _ = writeln!(std::io::stderr(), "{}: retry {}: {name}: {}", self.test, self.retried.len(), problems.join("; "));
        attempt()
    }

    /// Prints how many runs needed a retry; a failure when more than [`ALLOWED`] did.
    pub fn finish(self) -> Result<(), String> {
        let n = self.retried.len();
        let _ = writeln!(std::io::stderr(), "{}: {n} of {} runs retried (at most {ALLOWED} allowed)", self.test, self.runs);
        if n > ALLOWED {
            return Err(format!("{n} of {} runs needed a retry, more than {ALLOWED}:\n{}", self.runs, self.retried.join("\n")));
        }
        Ok(())
    }
}
