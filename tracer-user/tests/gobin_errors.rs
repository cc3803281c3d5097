//! Bad input: each kind of file that is not an analysable Go program gets one
//! clear, typed error (no Go toolchain needed except for the last test).

mod gobin_support;
mod support;

use std::os::unix::fs::PermissionsExt;

use gobin_support::*;
use tracer_user::gobin::{GoBinary, GobinError};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir().join("errors");
    std::fs::create_dir_all(&dir).expect("scratch");
    dir.join(name)
}

fn open_err(path: &std::path::Path) -> GobinError {
    let err = GoBinary::open(path).expect_err("must fail");
    let msg = err.to_string();
    assert!(!msg.contains('\n') && !msg.is_empty(), "one line: {msg:?}");
    err
}

#[test]
fn directory() {
    let dir = scratch("a-directory");
    std::fs::create_dir_all(&dir).expect("mkdir");
    assert!(matches!(open_err(&dir), GobinError::Directory { .. }));
}

#[test]
fn missing_file() {
    assert!(matches!(open_err(&scratch("does-not-exist")), GobinError::Io { .. }));
}

#[test]
fn unreadable_file() {
    let p = scratch("unreadable");
    std::fs::write(&p, b"\x7fELF").expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    // root reads anything; then the 4-byte file is a malformed ELF instead.
    match open_err(&p) {
        GobinError::Io { .. } | GobinError::Elf { .. } => {}
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn empty_file_and_script() {
    let p = scratch("empty");
    std::fs::write(&p, b"").expect("write");
    assert!(matches!(open_err(&p), GobinError::NotElf { .. }));
    let p = scratch("script.sh");
    std::fs::write(&p, b"#!/bin/sh\necho hi\n").expect("write");
    let err = open_err(&p);
    assert!(matches!(err, GobinError::NotElf { .. }), "{err}");
    assert!(err.to_string().contains("#!/b"), "{err}");
}

#[test]
fn non_go_elf() {
    // Any ELF executable of the system that is not written in Go.
    let found = ["/bin/sh", "/bin/ls", "/usr/bin/env"].iter().map(std::path::Path::new).find(|p| p.exists());
    let Some(path) = support::or_skip(found, "non_go_elf", "no system ELF executable found") else { return };
    let err = open_err(path);
    assert!(matches!(err, GobinError::NotGo { .. }), "{err}");
}

#[test]
fn truncated_go_binary() {
    let Some(tc) = toolchains_or_skip("truncated_go_binary").pop() else { return };
    let bytes = std::fs::read(build_fixture(&tc, true)).expect("read");
    for cut in [16, 64, 4096, bytes.len() / 2, bytes.len() - 1] {
        let p = scratch(&format!("truncated-{cut}"));
        std::fs::write(&p, &bytes[..cut]).expect("write");
        let msg = open_err(&p).to_string();
        assert!(!msg.is_empty());
    }
}
