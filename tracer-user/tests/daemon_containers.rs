//! BPF tier: a Go scenario in a simulated Kubernetes container — its own mount, pid
//! and UTS namespaces (`unshare`), a private root where the binary lives at a path that
//! does not exist on the host, a cgroup v2 directory shaped like a containerd pod
//! under the kubelet's systemd driver, and the pod's service account and
//! environment. The daemon must trace it through /proc/PID/exe, report its hazard
//! and label it with the pod's namespace, name and container.

mod daemon_support;
mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use daemon_support::{Daemon, Guard, newest_go, test_dir, wait_for};
use support::{bpf_or_skip, build};

const DETECTOR: &str = "slice_capacity_overlap";
const NAMESPACE: &str = "shop";
const POD: &str = "billing-7d9f8-x2x4q";
const CONTAINER: &str = "billing";

/// The cgroup v2 hierarchy's mount point, from /proc/mounts.
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

/// The pod's cgroup directories, removed (innermost first) on drop.
struct PodCgroup {
    dirs: Vec<PathBuf>,
}

impl PodCgroup {
    /// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID_>.slice/cri-containerd-<ID>.scope`
    /// under a test-owned top directory.
    fn create(root: &Path, top: &str, uid: &str, id: &str) -> Self {
        let mut dirs = Vec::new();
        let mut dir = root.join(top);
        for part in [
            "kubepods.slice".to_string(),
            "kubepods-burstable.slice".to_string(),
            format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_")),
            format!("cri-containerd-{id}.scope"),
        ] {
            dirs.push(dir.clone());
            dir = dir.join(part);
        }
        dirs.push(dir.clone());
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self { dirs }
    }

    fn leaf(&self) -> &Path {
        self.dirs.last().expect("dirs")
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            // Empty once the container's processes are gone.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The program as a container's process: `sh` joins the pod's cgroup, `unshare`
/// gives it new mount, pid and UTS namespaces, and there, as a runtime does, the root
/// directory becomes a mount of its own with `pivot_root`: the host's view of the
/// program's path (`/proc/PID/exe`) is then the container's own.
fn in_container(rootfs: &Path, cgroup: &Path, program: &str) -> Command {
    let enter = r#"mount --bind "$0" "$0" && cd "$0" && pivot_root . old-root && exec "$1""#;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            r#"echo $$ > "$1/cgroup.procs" && exec unshare --mount --pid --uts --fork --kill-child sh -c '{enter}' "$2" "$3""#
        ))
        .args(["sh", &cgroup.display().to_string(), &rootfs.display().to_string(), program])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOSTNAME", POD)
        .env("CONTAINER_NAME", CONTAINER)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn daemon_traces_a_pod_and_labels_its_findings() {
    let test = "daemon_traces_a_pod_and_labels_its_findings";
    if !bpf_or_skip(test) {
        return;
    }
    let Some(cgroup_root) = cgroup2_root() else {
        support::skip(test, "no cgroup v2 hierarchy is mounted");
        return;
    };
    let Some(tc) = newest_go(test) else { return };
    let dir = test_dir("containers");
    let me = std::process::id();
    // A path of the container's own: nothing is there on the host.
    let program = format!("/app-{me}/billing");
    assert!(!Path::new(&program).exists());
    let rootfs = dir.join("rootfs");
    let in_root = rootfs.join(program.trim_start_matches('/'));
    std::fs::create_dir_all(in_root.parent().unwrap()).unwrap();
    std::fs::copy(build(&tc, "scenarios/batch_subslice_overlap", false), &in_root).expect("install the program");
    std::fs::create_dir_all(rootfs.join("old-root")).unwrap();
    let account = rootfs.join("var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("namespace"), NAMESPACE).unwrap();

    let uid = format!("{:08x}-3c2b-4d5e-8f90-a1b2c3d4e5f6", me);
    let id = format!("{:016x}", u64::from(me) * 0x9e37_79b9).repeat(4);
    let cgroup = PodCgroup::create(&cgroup_root, &format!("ghostrace-test-{me}"), &uid, &id);

    // Selected by pod UID: the executable's path means nothing on the host.
    let daemon = Daemon::start(&dir, &["--select", &format!("cgroup:{}", uid.replace('-', "_"))]);
    let runs = daemon.rerun_until(
        DETECTOR,
        || daemon.has_finding(DETECTOR),
        || {
            let out = in_container(&rootfs, cgroup.leaf(), &program).output().expect("run the container");
            assert!(out.status.success(), "container run failed: {}", String::from_utf8_lossy(&out.stderr));
        },
    );
    let lines = daemon.findings();
    let line = lines.iter().find(|l| l["detector"] == DETECTOR).expect("the finding");
    eprintln!("{DETECTOR} found in the pod after {runs} run(s)");

    // Reached through /proc/PID/exe: the path is the container's own.
    assert_eq!(line["binary"], program, "{line}");
    let c = &line["container"];
    assert_eq!(c["runtime"], "containerd", "{line}");
    assert_eq!(c["id"], id);
    assert_eq!(c["pod_uid"], uid);
    assert_eq!(c["namespace"], NAMESPACE, "from the service account file in the container's root");
    assert_eq!(c["pod"], POD, "from HOSTNAME");
    assert_eq!(c["name"], CONTAINER);
    assert_eq!(c["names_from"], "process");
    assert!(daemon.log().contains(&format!("pod {NAMESPACE}/{POD} container {CONTAINER}")), "{}", daemon.log());

    // /status lists the pod of a process running in it.
    let service = format!("/app-{me}/service");
    std::fs::copy(build(&tc, "fixtures/service", false), rootfs.join(service.trim_start_matches('/'))).unwrap();
    let mut running = Guard::spawn("service in the pod", &mut in_container(&rootfs, cgroup.leaf(), &service));
    wait_for("/status to list the service's pod", Duration::from_secs(10), || {
        let status = daemon.status();
        let binaries = status["binaries"].as_array().cloned().unwrap_or_default();
        let listed = binaries
            .iter()
            .filter(|b| b["path"] == service.as_str())
            .flat_map(|b| b["containers"].as_array().cloned().unwrap_or_default());
        let mut pods = listed.map(|e| e["container"].clone());
        if pods.any(|p| p["pod"] == POD && p["id"] == id.as_str() && p["name"] == CONTAINER) {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });
    running.kill();

    let series = format!(
        "ghostrace_findings_total{{binary=\"billing\",container=\"{CONTAINER}\",detector=\"{DETECTOR}\",namespace=\"{NAMESPACE}\",pod=\"{POD}\",severity=\"critical\"}}"
    );
    let value = daemon.metric(&series);
    assert!(value.is_some_and(|v| v >= 1.0), "{series} = {value:?}\n{}", daemon.metrics());

    daemon.assert_forgot_everything();
    daemon.stop();
    drop(cgroup);
}
