//! Support for the tests of deploy/: the manifests read as JSON through PyYAML from
//! the bootstrap's kubernetes-validate, and the DaemonSet they describe.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::support::repo;

/// The bootstrap's kubernetes-validate directory (a `pip --target`), or `None` with
/// a message (a failure in CI).
pub fn kubernetes_validate(test: &str) -> Option<PathBuf> {
    let found = std::fs::read_dir(repo().join(".cache")).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kubernetes-validate-")))
            .filter(|p| p.join("kubernetes_validate").is_dir())
    });
    crate::support::or_skip(found, test, "kubernetes-validate is not installed (`cargo xtask bootstrap` puts it in .cache/)")
}

pub fn python(site: &Path) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", site).env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

pub fn manifest_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Every document of a YAML file, as JSON (parsed by PyYAML).
pub fn documents(site: &Path, file: &Path) -> Vec<Value> {
    let out = python(site)
        .args(["-c", "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(file)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// The DaemonSet (deploy/kubernetes/daemonset.yaml).
pub fn daemonset(site: &Path) -> Value {
    let docs = documents(site, &manifest_dir().join("daemonset.yaml"));
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap()
}
