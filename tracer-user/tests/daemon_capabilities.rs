//! BPF tier, least privilege: under `capsh` with only the capabilities
//! docs/deployment.md documents (`caps::NEEDED`), the daemon attaches to a Go
//! scenario and reports its hazard; with any one of them removed it refuses to start
//! with one line naming it.

mod daemon_support;
mod support;

use std::{
    path::Path,
    process::{Command, Stdio},
};

use daemon_support::{Daemon, Guard, install, newest_go, test_dir};
use support::{bpf_or_skip, build};
use tracer_user::{
    daemon::caps::{self, NEEDED},
    procfs,
};

const CAPSH: &str = "/usr/sbin/capsh";
const DETECTOR: &str = "list_stale_remove";

fn capsh_or_skip(test: &str) -> bool {
    if !bpf_or_skip(test) {
        return false;
    }
    if Path::new(CAPSH).exists() {
        return true;
    }
    support::skip(test, &format!("{CAPSH} is not installed (Debian package libcap2-bin)"));
    false
}

/// `capsh` running ghostrace with a bounding set of only `keep` (as root, a program's
/// capabilities after exec are its bounding set).
fn capsh_keeping(keep: &[&str]) -> Command {
    let out = Command::new(CAPSH).arg("--print").output().expect("capsh --print");
    let text = String::from_utf8_lossy(&out.stdout);
    let bounding = text.lines().find_map(|l| l.strip_prefix("Bounding set =")).expect("a bounding set line");
    let drop: Vec<&str> =
        bounding.split(',').map(str::trim).filter(|c| !keep.iter().any(|k| k.eq_ignore_ascii_case(c))).collect();
    let mut cmd = Command::new(CAPSH);
    cmd.arg(format!("--drop={}", drop.join(","))).arg(format!("--shell={}", env!("CARGO_BIN_EXE_ghostrace"))).arg("--");
    cmd
}

fn needed_names() -> Vec<&'static str> {
    NEEDED.iter().map(|c| c.name).collect()
}

#[test]
fn daemon_traces_with_only_the_documented_capabilities() {
    let test = "daemon_traces_with_only_the_documented_capabilities";
    if !capsh_or_skip(test) {
        return;
    }
    let Some(tc) = newest_go(test) else { return };
    let dir = test_dir("capabilities");
    let scenario = install(&build(&tc, "scenarios/list_deferred_double_remove", false), &dir, "queue");
    let daemon = Daemon::start_command(capsh_keeping(&needed_names()), &dir, &[]);

    // capsh exec'd the daemon: its effective set is exactly the documented one.
    let effective = procfs::status(daemon.guard.pid()).expect("the daemon's status").capeff;
    assert!(caps::missing(effective).is_empty(), "CapEff {effective:#x}");
    assert_eq!(effective.count_ones(), NEEDED.len() as u32, "CapEff {effective:#x} holds more than {NEEDED:?}");

    let runs = daemon.rerun_until(
        DETECTOR,
        || daemon.has_finding(DETECTOR),
        || {
            let out = Command::new(&scenario).output().expect("run the scenario");
            assert!(out.status.success(), "scenario failed: {}", String::from_utf8_lossy(&out.stderr));
        },
    );
    eprintln!("{DETECTOR} found with only {:?} after {runs} run(s)", needed_names());
    daemon.assert_forgot_everything();
    daemon.stop();
}

#[test]
fn daemon_names_a_missing_capability() {
    let test = "daemon_names_a_missing_capability";
    if !capsh_or_skip(test) {
        return;
    }
    for missing in needed_names() {
        let keep: Vec<&str> = needed_names().into_iter().filter(|c| *c != missing).collect();
        let mut cmd = capsh_keeping(&keep);
        cmd.args(["daemon", "--listen", "127.0.0.1:0", "--duration", "10s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = Guard::spawn("ghostrace daemon", &mut cmd);
        // A daemon that missed the lack would run its 10 s and exit 0: the status
        // and the message below tell, with no clock involved.
        let status = guard.child.wait().expect("wait");
        let mut said = String::new();
        std::io::Read::read_to_string(guard.child.stderr.as_mut().expect("stderr"), &mut said).unwrap();
        assert!(!status.success(), "without {missing}: {status}");
        assert_eq!(said.lines().count(), 1, "without {missing}, not one line:\n{said}");
        assert!(
            said.starts_with("ghostrace: the daemon lacks ") && said.contains(missing),
            "without {missing}: {said}"
        );
        for other in keep {
            assert!(!said.contains(other), "without {missing}, {other} is named too: {said}");
        }
    }
}
