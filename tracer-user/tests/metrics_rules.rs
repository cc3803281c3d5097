//! The alert rules of deploy/prometheus are valid and pass their unit tests, by the
//! Debian `prometheus` package's own `promtool`.

mod support;

use std::process::Command;

use support::repo;

/// `promtool`, or `None` (with a message; a failure in CI, which installs it).
pub fn promtool(test: &str) -> Option<Command> {
    let path = std::path::Path::new("/usr/bin/promtool");
    if path.exists() {
        return Some(Command::new(path));
    }
    support::skip(test, "promtool is not installed (Debian package prometheus; `cargo xtask bootstrap`)");
    None
}

fn run(mut cmd: Command) {
    let out = cmd.current_dir(repo().join("deploy/prometheus")).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn alert_rules_are_valid() {
    let Some(mut cmd) = promtool("alert_rules_are_valid") else { return };
    cmd.args(["check", "rules", "ghostrace-alerts.yml"]);
    run(cmd);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let Some(mut cmd) = promtool("alert_rules_pass_their_unit_tests") else { return };
    cmd.args(["test", "rules", "tests/ghostrace-alerts.test.yml"]);
    run(cmd);
}

#[test]
fn every_alert_has_a_runbook_section() {
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/ghostrace-alerts.yml")).unwrap();
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    for alert in alerts {
        let anchor = format!("docs/runbook.md#{}", alert.to_lowercase());
        assert!(rules.contains(&format!("runbook_url: \"{anchor}\"")), "{alert}: no runbook_url {anchor}");
        assert!(runbook.contains(&format!("## {alert}\n")), "docs/runbook.md has no section `## {alert}`");
        for key in ["summary:", "description:"] {
            let section = rules.split(&format!("- alert: {alert}")).nth(1).unwrap();
            let section = section.split("- alert: ").next().unwrap();
            assert!(section.contains(key), "{alert}: no {key}");
        }
    }
}
