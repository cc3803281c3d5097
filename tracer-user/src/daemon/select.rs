//! `--select`: which processes the daemon traces, by executable path glob, process
//! name or cgroup path substring. No rule: every Go process.

use std::str::FromStr;

use thiserror::Error;

use crate::gobin::glob_match;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("selection rule `{rule}` must look like path:GLOB, name:NAME or cgroup:TEXT")]
    Syntax { rule: String },
    #[error("selection rule `{rule}` has nothing after the colon")]
    Empty { rule: String },
}

/// One `--select` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The executable's path: `*` within one path element, `**` (or `...`) across
    /// elements.
    Path(String),
    /// The process name (`comm`, 15 characters) or the executable's file name; may
    /// use `*`.
    Name(String),
    /// A substring of the process's cgroup path (`/proc/PID/cgroup`), e.g. a
    /// systemd unit or a Kubernetes pod UID.
    Cgroup(String),
}

impl FromStr for Rule {
    type Err = SelectError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, value) = text.split_once(':').ok_or_else(|| SelectError::Syntax { rule: text.into() })?;
        if value.is_empty() {
            return Err(SelectError::Empty { rule: text.into() });
        }
        match kind {
            "path" => Ok(Self::Path(value.replace("**", "..."))),
            "name" => Ok(Self::Name(value.into())),
            "cgroup" => Ok(Self::Cgroup(value.into())),
            _ => Err(SelectError::Syntax { rule: text.into() }),
        }
    }
}

/// What a rule looks at.
pub struct Candidate<'a> {
    pub exe: &'a str,
    pub comm: &'a str,
    /// Empty unless a cgroup rule needs it.
    pub cgroup: &'a str,
}

/// The rules; a process is selected when any rule matches it (or there is none).
#[derive(Clone, Debug, Default)]
pub struct Selector {
    rules: Vec<Rule>,
}

impl Selector {
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// Whether matching needs the process's cgroup (read only then).
    pub fn needs_cgroup(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, Rule::Cgroup(_)))
    }

    pub fn matches(&self, c: &Candidate) -> bool {
        let file_name = c.exe.rsplit('/').next().unwrap_or(c.exe);
        self.rules.is_empty()
            || self.rules.iter().any(|rule| match rule {
                Rule::Path(glob) => glob_match(glob, c.exe),
                Rule::Name(glob) => glob_match(glob, c.comm) || glob_match(glob, file_name),
                Rule::Cgroup(text) => c.cgroup.contains(text.as_str()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(rules: &[&str]) -> Selector {
        Selector::new(rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn candidate<'a>(exe: &'a str, comm: &'a str, cgroup: &'a str) -> Candidate<'a> {
        Candidate { exe, comm, cgroup }
    }

    #[test]
    fn no_rule_selects_everything() {
        assert!(selector(&[]).matches(&candidate("/usr/bin/x", "x", "")));
    }

    #[test]
    fn path_globs() {
        let s = selector(&["path:/srv/*/bin/api"]);
        assert!(s.matches(&candidate("/srv/shop/bin/api", "api", "")));
        assert!(!s.matches(&candidate("/srv/shop/v2/bin/api", "api", "")));
        let s = selector(&["path:/srv/**"]);
        assert!(s.matches(&candidate("/srv/shop/v2/bin/api", "api", "")));
        assert!(!s.matches(&candidate("/usr/bin/api", "api", "")));
    }

    #[test]
    fn names_match_comm_or_file_name() {
        let s = selector(&["name:checkout-service"]);
        // comm is cut to 15 characters; the file name is whole.
        assert!(s.matches(&candidate("/app/checkout-service", "checkout-servic", "")));
        assert!(selector(&["name:api*"]).matches(&candidate("/x/y", "api-gw", "")));
        assert!(!s.matches(&candidate("/app/other", "other", "")));
    }

    #[test]
    fn cgroups_by_substring_and_rules_or_together() {
        let s = selector(&["cgroup:kubepods", "name:db"]);
        assert!(s.needs_cgroup());
        assert!(s.matches(&candidate("/a", "a", "0::/kubepods/burstable/pod1/c1")));
        assert!(s.matches(&candidate("/b/db", "db", "0::/system.slice")));
        assert!(!s.matches(&candidate("/c", "c", "0::/system.slice")));
        assert!(!selector(&["name:x"]).needs_cgroup());
    }

    #[test]
    fn bad_rules_say_what_is_expected() {
        assert_eq!("exe:/x".parse::<Rule>(), Err(SelectError::Syntax { rule: "exe:/x".into() }));
        assert_eq!("/x".parse::<Rule>(), Err(SelectError::Syntax { rule: "/x".into() }));
        assert_eq!("name:".parse::<Rule>(), Err(SelectError::Empty { rule: "name:".into() }));
    }
}
