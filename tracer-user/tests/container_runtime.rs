//! Container tier, on real runtimes: the image built from deploy/container with
//! podman; the daemon run from it with the DaemonSet's security context as
//! deploy/kubernetes/daemonset.yaml states it (host pid namespace, uid 0, read-only
//! root, every capability dropped but the ones it adds, no privilege escalation, the
//! runtime's default seccomp profile, its hostPath mounts), tracing Go hazards in
//! another podman container, on the host and in a containerd container (`ctr` with
//! runc) under a kubelet-shaped cgroup with the CRI's bundle annotations; and
//! refusing to start, in one line, with any needed capability removed.
//! Skips without podman, unless GHOSTRACE_REQUIRE_BPF=1 makes that a failure. The
//! image is built once a run (kept under target/container-image by content hash);
//! each test removes the images and containers it made.

mod daemon_support;
mod deploy_support;
mod support;

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use daemon_support::{Daemon, Guard, install, newest_go, test_dir, wait_for};
use deploy_support::{daemonset, kubernetes_validate};
use serde_json::Value;
use support::{bpf_or_skip, build, repo};
use tracer_user::daemon::caps::NEEDED;

const DETECTOR: &str = "slice_capacity_overlap";
const SCENARIO: &str = "scenarios/batch_subslice_overlap";
/// Largest image accepted: the stripped binary and glibc's three libraries.
const MAX_IMAGE_BYTES: u64 = 16 << 20;

/// The tests share podman's storage, the image's tag and containerd: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this tier can run: root for BPF, podman installed (the bootstrap's
/// Debian packages).
fn podman_or_skip(test: &str) -> bool {
    if !bpf_or_skip(test) {
        return false;
    }
    if Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    support::skip(test, "podman is not installed (Debian packages of xtask/debian-packages.txt: `cargo xtask bootstrap`)");
    false
}

/// The DaemonSet the daemon's container is run as, when podman and the manifests'
/// reader are here (else the test skips).
fn daemonset_or_skip(test: &str) -> Option<Value> {
    if !podman_or_skip(test) {
        return None;
    }
    kubernetes_validate(test).map(|site| daemonset(&site))
}

/// Runs a command to completion; panics with its stderr if it fails.
fn checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn podman(args: &[&str]) -> String {
    checked(Command::new("podman").args(args))
}

/// Removes a podman image or container, or a containerd container, on drop.
struct Cleanup(Vec<Vec<String>>);

impl Cleanup {
    fn podman_image(tag: &str) -> Self {
        Self(vec![vec!["podman".into(), "rmi".into(), "--force".into(), tag.into()]])
    }

    fn podman_container(name: &str) -> Self {
        Self(vec![vec!["podman".into(), "rm".into(), "--force".into(), "--time=0".into(), name.into()]])
    }

    fn ctr_container(id: &str) -> Self {
        let ctr = |args: &[&str]| ["ctr", "-n", "k8s.io"].iter().chain(args).map(|s| s.to_string()).collect();
        Self(vec![
            ctr(&["task", "kill", "-s", "KILL", id]),
            ctr(&["task", "rm", "-f", id]),
            ctr(&["containers", "rm", id]),
        ])
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for argv in &self.0 {
            let _ = Command::new(&argv[0]).args(&argv[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Stages the root file system with deploy/container/rootfs.sh and builds the image
/// from deploy/container/Containerfile: what `./dev image` does.
fn build_image(binary: &Path, dir: &Path, tag: &str) {
    let rootfs = dir.join("rootfs");
    checked(Command::new(repo().join("deploy/container/rootfs.sh")).arg(binary).arg(&rootfs));
    let containerfile = repo().join("deploy/container/Containerfile");
    checked(
        Command::new("podman")
            .args(["build", "--quiet", "--file"])
            .arg(&containerfile)
            .args(["--tag", tag])
            .arg(&rootfs),
    );
}

/// The image of the binary under test as an archive, built at most once a run and
/// kept for later runs under the hash of what goes into it.
fn image_archive() -> &'static (PathBuf, String) {
    static ARCHIVE: OnceLock<(PathBuf, String)> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let binary = Path::new(env!("CARGO_BIN_EXE_ghostrace"));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for input in [
            binary.to_path_buf(),
            repo().join("deploy/container/Containerfile"),
            repo().join("deploy/container/rootfs.sh"),
        ] {
            std::fs::read(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display())).hash(&mut hasher);
        }
        let hash = format!("{:016x}", hasher.finish());
        let tag = format!("localhost/ghostrace:test-{hash}");
        let dir = repo().join("target/container-image").join(&hash);
        let archive = dir.join("image.tar");
        if archive.exists() {
            eprintln!("image {tag}: cached in {}", archive.display());
            return (archive, tag);
        }
        // Older builds' archives are of no further use.
        let _ = std::fs::remove_dir_all(repo().join("target/container-image"));
        std::fs::create_dir_all(&dir).unwrap();
        let started = Instant::now();
        build_image(binary, &dir, &tag);
        let _image = Cleanup::podman_image(&tag);
        let partial = dir.join("image.tar.partial");
        podman(&["save", "--quiet", "--output", &partial.display().to_string(), &tag]);
        std::fs::rename(&partial, &archive).unwrap();
        let _ = std::fs::remove_dir_all(dir.join("rootfs"));
        eprintln!("image {tag}: built and saved in {:.1} s", started.elapsed().as_secs_f64());
        (archive, tag)
    })
}

/// The image loaded into podman's storage for one test; removed on drop.
fn load_image() -> (String, Cleanup) {
    let (archive, tag) = image_archive();
    podman(&["load", "--quiet", "--input", &archive.display().to_string()]);
    (tag.clone(), Cleanup::podman_image(tag))
}

/// podman's OCI runtime here: its default, crun, unless crun cannot run on this
/// host (crun 1.8 refuses a cgroup v1 host whose v2 hierarchy holds a controller,
/// "hybrid mode"); runc then.
fn oci_runtime(image: &str) -> &'static str {
    static RUNTIME: OnceLock<&'static str> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let out = podman_run("crun").args([image, "--version"]).output().expect("run podman");
        if out.status.success() {
            return "crun";
        }
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("hybrid mode"), "crun failed: {said}");
        eprintln!("note: crun cannot run containers on this host ({}); using runc", said.trim());
        "runc"
    })
}

/// `podman run --rm` with `runtime`, within the limits this process has: the
/// runtime cannot raise them without CAP_SYS_RESOURCE (podman asks for 1,048,576
/// open files by default), and podman's monitor holds at most 32,768 processes.
fn podman_run(runtime: &str) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", runtime, "run", "--rm"]).args(ulimits());
    cmd
}

fn ulimits() -> [String; 2] {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let open_files = limits.lines().find_map(|l| l.strip_prefix("Max open files")).expect("an open files line");
    let [soft, hard] = [0, 1].map(|i| open_files.split_whitespace().nth(i).expect("a limit").to_string());
    [format!("--ulimit=nofile={soft}:{hard}"), "--ulimit=nproc=1024:1024".to_string()]
}

/// podman's flags for the DaemonSet's pod and container security context and mounts,
/// read from the manifest. Its network is the host's here (the pod's own would need a
/// port published through a network podman sets up): the tests reach the daemon on
/// loopback.
fn daemonset_flags(ds: &Value) -> Vec<String> {
    let pod = &ds["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let sc = &container["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(
        sc["seccompProfile"]["type"], "RuntimeDefault",
        "podman applies its default profile unless told otherwise"
    );
    let mut flags = vec!["--network=host".to_string()];
    if pod["hostPID"] == true {
        flags.push("--pid=host".into());
    }
    flags.push(format!("--user={}:{}", sc["runAsUser"], sc["runAsGroup"]));
    if sc["readOnlyRootFilesystem"] == true {
        flags.push("--read-only".into());
    }
    if sc["allowPrivilegeEscalation"] == false {
        flags.push("--security-opt=no-new-privileges".into());
    }
    let caps = |key: &str| sc["capabilities"][key].as_array().cloned().unwrap_or_default();
    flags.extend(caps("drop").iter().map(|c| format!("--cap-drop={}", c.as_str().expect("a capability"))));
    flags.extend(caps("add").iter().map(|c| format!("--cap-add={}", c.as_str().expect("a capability"))));
    for mount in container["volumeMounts"].as_array().cloned().unwrap_or_default() {
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume");
        let host = volume["hostPath"]["path"].as_str().expect("a hostPath volume");
        let mode = if mount["readOnly"] == true { ":ro" } else { "" };
        flags.push(format!("--volume={host}:{}{mode}", mount["mountPath"].as_str().expect("mountPath")));
    }
    flags
}

/// podman's default seccomp profile (containers-common's).
const PODMAN_SECCOMP: &str = "/usr/share/containers/seccomp.json";

/// podman's default seccomp profile with `bpf()` allowed to CAP_BPF and
/// `perf_event_open()` to CAP_PERFMON, as the default profiles of current containerd
/// and CRI-O have them: podman 4.3's (Debian 12) allows both only with CAP_SYS_ADMIN.
/// Written into `dir`.
fn seccomp_for_capabilities(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(PODMAN_SECCOMP).unwrap_or_else(|e| panic!("{PODMAN_SECCOMP}: {e}"));
    let mut profile: Value = serde_json::from_str(&text).expect("a JSON seccomp profile");
    let calls = [("bpf", "CAP_BPF"), ("perf_event_open", "CAP_PERFMON")];
    let rules = profile["syscalls"].as_array_mut().expect("syscalls");
    // The rules that refuse them to every process without CAP_SYS_ADMIN go.
    for rule in rules.iter_mut().filter(|r| r["action"] != "SCMP_ACT_ALLOW") {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| !calls.iter().any(|(call, _)| n == call));
        }
    }
    rules.retain(|r| r["names"].as_array().is_none_or(|n| !n.is_empty()));
    for (call, cap) in calls {
        rules.push(serde_json::json!({"names": [call], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}));
    }
    let path = dir.join("seccomp.json");
    std::fs::write(&path, profile.to_string()).unwrap();
    path
}

/// `podman run` of the daemon from `image` as the DaemonSet runs it, named `name`,
/// under the seccomp profile `seccomp`, with `without` (a capability's name, `CAP_…`)
/// left out of the added ones.
fn daemon_container(image: &str, ds: &Value, name: &str, seccomp: &Path, without: Option<&str>) -> Command {
    let mut cmd = podman_run(oci_runtime(image));
    cmd.arg(format!("--security-opt=seccomp={}", seccomp.display()));
    let flags = daemonset_flags(ds);
    let kept = flags
        .iter()
        .filter(|f| without.is_none_or(|w| f.strip_prefix("--cap-add=").is_none_or(|c| format!("CAP_{c}") != w)));
    // This host runs podman, not a kubelet: podman's record of its containers (their
    // names) is mounted at its host path too, as the DaemonSet mounts containerd's.
    let record = "/var/lib/containers/storage/overlay-containers";
    cmd.args(kept).arg(format!("--volume={record}:{record}:ro")).args(["--name", name, image]);
    cmd
}

fn elapsed(test: &str, started: Instant) {
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn image_builds_small_and_runs_non_root() {
    let test = "image_builds_small_and_runs_non_root";
    if !podman_or_skip(test) {
        return;
    }
    let _serial = serial();
    let started = Instant::now();
    let dir = test_dir("image");
    let tag = format!("localhost/ghostrace:build-{}", std::process::id());
    build_image(Path::new(env!("CARGO_BIN_EXE_ghostrace")), &dir, &tag);
    let _image = Cleanup::podman_image(&tag);
    let built = started.elapsed();

    // The binary and the libraries ldd names, nothing else.
    let ldd = checked(Command::new("ldd").arg(env!("CARGO_BIN_EXE_ghostrace")));
    let libraries = ldd.lines().filter(|l| l.contains('/')).count();
    let files = walk(&dir.join("rootfs"));
    assert_eq!(files.len(), 1 + libraries, "{files:?}\n{ldd}");

    let size: u64 = podman(&["image", "inspect", "--format", "{{.Size}}", &tag]).parse().expect("a size");
    assert!(size <= MAX_IMAGE_BYTES, "the image holds {size} bytes");
    let user = podman(&["image", "inspect", "--format", "{{.Config.User}}", &tag]);
    assert_eq!(user, "65532:65532");
    // As its default user, with nothing writable and no capability: `inspect`-like
    // work needs none, and the daemon refuses.
    let runtime = oci_runtime(&tag);
    let version = checked(podman_run(runtime).args(["--read-only", "--cap-drop=ALL", &tag, "--version"]));
    assert!(version.starts_with("ghostrace "), "{version}");
    let out = podman_run(runtime).args(["--read-only", "--cap-drop=ALL", &tag]).output().expect("podman run");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.starts_with("ghostrace: the daemon lacks "), "{said}");
    eprintln!("image {tag}: {:.1} MB, built in {:.1} s, runtime {runtime}", size as f64 / 1e6, built.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
    elapsed(test, started);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if entry.is_dir() { files.extend(walk(&entry)) } else { files.push(entry) }
    }
    files
}

/// The finding of `DETECTOR` whose `container` passes `which`.
fn finding(daemon: &Daemon, which: impl Fn(&Value) -> bool) -> Option<Value> {
    daemon.findings().into_iter().find(|l| l["detector"] == DETECTOR && which(&l["container"]))
}

/// The sum of the `ghostrace_findings_total` series of `DETECTOR` whose labels
/// include every one of `labels` (`name="value"`); `None` when there is none.
fn findings_total(daemon: &Daemon, labels: &[String]) -> Option<f64> {
    let metrics = daemon.metrics();
    let values: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with("ghostrace_findings_total{") && l.contains(&format!("detector=\"{DETECTOR}\"")))
        .filter(|l| labels.iter().all(|label| l.contains(label.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[test]
fn daemon_in_podman_traces_a_podman_container_and_the_host() {
    let test = "daemon_in_podman_traces_a_podman_container_and_the_host";
    let Some(ds) = daemonset_or_skip(test) else { return };
    let Some(tc) = newest_go(test) else { return };
    let _serial = serial();
    let started = Instant::now();
    let me = std::process::id();
    let dir = test_dir("podman");
    let hazard = build(&tc, SCENARIO, false);
    let on_host = install(&hazard, &dir, "host-hazard");

    // The hazard's own image: the static Go binary alone.
    let context = dir.join("hazard-image");
    std::fs::create_dir_all(&context).unwrap();
    install(&hazard, &context, "ghzc-hazard");
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY ghzc-hazard /ghzc-hazard\nENTRYPOINT [\"/ghzc-hazard\"]\n",
    )
    .unwrap();
    let hazard_tag = format!("localhost/ghostrace-test-hazard:{me}");
    podman(&["build", "--quiet", "--tag", &hazard_tag, &context.display().to_string()]);
    let _hazard_image = Cleanup::podman_image(&hazard_tag);

    let (image, _image) = load_image();
    let name = format!("ghostrace-daemon-{me}");
    let _daemon_container = Cleanup::podman_container(&name);
    let seccomp = seccomp_for_capabilities(&dir);
    let daemon = Daemon::start_command(
        daemon_container(&image, &ds, &name, &seccomp, None),
        &dir,
        &["--select", "path:/ghzc-hazard"],
    );

    // In another container: created, started attached, removed, until found.
    let hazard_name = format!("ghz-hazard-{me}");
    let _hazard_container = Cleanup::podman_container(&hazard_name);
    let mut ids = Vec::new();
    let runtime = oci_runtime(&image);
    let runs = daemon.rerun_until(
        "a finding in the podman container",
        || finding(&daemon, |c| c["runtime"] == "podman").is_some(),
        || {
            let [files, processes] = ulimits();
            ids.push(podman(&[
                "--runtime",
                runtime,
                "create",
                &files,
                &processes,
                "--name",
                &hazard_name,
                &hazard_tag,
            ]));
            podman(&["start", "--attach", &hazard_name]);
            podman(&["rm", &hazard_name]);
        },
    );
    let line = finding(&daemon, |c| c["runtime"] == "podman").unwrap();
    eprintln!("{DETECTOR} found in the podman container after {runs} run(s)");
    assert_eq!(line["binary"], "/ghzc-hazard", "{line}");
    let c = &line["container"];
    assert!(ids.iter().any(|id| c["id"] == id.as_str()), "{line} not of {ids:?}");
    assert_eq!(c["name"], hazard_name.as_str(), "{line}");
    assert_eq!(c["names_from"], "runtime", "{line}");
    let series = [format!("container=\"{hazard_name}\""), "binary=\"ghzc-hazard\"".to_string()];
    assert!(findings_total(&daemon, &series).is_some_and(|v| v >= 1.0), "no {series:?}:\n{}", daemon.metrics());

    // On the host, seen from the daemon's container.
    let runs = daemon.rerun_until(
        "a finding on the host",
        || finding(&daemon, Value::is_null).is_some(),
        || {
            checked(&mut Command::new(&on_host));
        },
    );
    let line = finding(&daemon, Value::is_null).unwrap();
    eprintln!("{DETECTOR} found on the host after {runs} run(s)");
    assert_eq!(line["binary"], on_host.display().to_string(), "{line}");
    let series = ["container=\"\"".to_string(), "binary=\"host-hazard\"".to_string()];
    assert!(findings_total(&daemon, &series).is_some_and(|v| v >= 1.0), "no {series:?}:\n{}", daemon.metrics());

    daemon.assert_forgot_everything();
    daemon.stop();
    let _ = std::fs::remove_dir_all(&dir);
    elapsed(test, started);
}

#[test]
fn daemon_in_podman_names_a_missing_capability() {
    let test = "daemon_in_podman_names_a_missing_capability";
    let Some(ds) = daemonset_or_skip(test) else { return };
    let _serial = serial();
    let started = Instant::now();
    let (image, _image) = load_image();
    let name = format!("ghostrace-caps-{}", std::process::id());
    let _container = Cleanup::podman_container(&name);
    let dir = test_dir("capabilities");
    let seccomp = seccomp_for_capabilities(&dir);
    for missing in NEEDED.map(|c| c.name) {
        let out: Output = daemon_container(&image, &ds, &name, &seccomp, Some(missing))
            .args(["daemon", "--listen", "127.0.0.1:0", "--duration", "10s"])
            .output()
            .expect("podman run");
        // A daemon that missed the lack would run its 10 s and exit 0.
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "without {missing}: {:?}", out.status);
        assert_eq!(said.lines().count(), 1, "without {missing}, not one line:\n{said}");
        assert!(
            said.starts_with("ghostrace: the daemon lacks ") && said.contains(missing),
            "without {missing}: {said}"
        );
        for other in NEEDED.map(|c| c.name).iter().filter(|o| **o != missing) {
            assert!(!said.contains(other), "without {missing}, {other} is named too: {said}");
        }
        eprintln!("without {missing}: {}", said.trim());
    }
    // Every capability, but podman's own default profile: the filter is named.
    let out = daemon_container(&image, &ds, &name, Path::new(PODMAN_SECCOMP), None)
        .args(["daemon", "--listen", "127.0.0.1:0", "--duration", "10s"])
        .output()
        .expect("podman run");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "under {PODMAN_SECCOMP}: {:?}", out.status);
    assert_eq!(said.lines().count(), 1, "under {PODMAN_SECCOMP}, not one line:\n{said}");
    assert!(said.contains("under a seccomp filter"), "under {PODMAN_SECCOMP}: {said}");
    eprintln!("under {PODMAN_SECCOMP}: {}", said.trim());
    let _ = std::fs::remove_dir_all(&dir);
    elapsed(test, started);
}

/// containerd, started for the test when none answers; stopped on drop.
struct Containerd(Option<Guard>);

impl Containerd {
    fn answers() -> bool {
        Command::new("ctr")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn ensure(dir: &Path) -> Self {
        if Self::answers() {
            return Self(None);
        }
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let guard = Guard::spawn("containerd", Command::new("containerd").stdout(log.try_clone().unwrap()).stderr(log));
        wait_for("containerd to answer", Duration::from_secs(20), || {
            if Self::answers() { Ok(()) } else { Err("no answer".into()) }
        });
        Self(Some(guard))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(guard) = self.0.as_mut() {
            guard.terminate(Duration::from_secs(10));
        }
    }
}

/// The kubelet-shaped cgroup runc made under each hierarchy, removed (innermost
/// first, only where empty) on drop.
struct KubeletCgroup(Vec<String>);

impl Drop for KubeletCgroup {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let roots = mounts.lines().filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.get(2).filter(|t| t.starts_with("cgroup")).map(|_| PathBuf::from(fields[1]))
        });
        for root in roots {
            for depth in (1..=self.0.len()).rev() {
                let _ = std::fs::remove_dir(root.join(self.0[..depth].join("/")));
            }
        }
    }
}

#[test]
fn daemon_in_podman_labels_a_containerd_pod() {
    let test = "daemon_in_podman_labels_a_containerd_pod";
    let Some(ds) = daemonset_or_skip(test) else { return };
    let Some(tc) = newest_go(test) else { return };
    let _serial = serial();
    let started = Instant::now();
    let me = std::process::id();
    let dir = test_dir("containerd");
    let containerd = Containerd::ensure(&dir);
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    install(&build(&tc, SCENARIO, false), &rootfs, "ctrd-hazard");

    let (namespace, pod, name) = ("shop", format!("billing-{me}"), "billing");
    let uid = format!("{me:08x}-3c2b-4d5e-8f90-a1b2c3d4e5f6");
    let id = format!("{:016x}", u64::from(me) * 0x9e37_79b9).repeat(4);
    let cgroup = KubeletCgroup(vec!["kubepods".into(), "burstable".into(), format!("pod{uid}"), id.clone()]);
    let _container = Cleanup::ctr_container(&id);

    let (image, _image) = load_image();
    let daemon_name = format!("ghostrace-daemon-{me}");
    let _daemon_container = Cleanup::podman_container(&daemon_name);
    let seccomp = seccomp_for_capabilities(&dir);
    let daemon = Daemon::start_command(
        daemon_container(&image, &ds, &daemon_name, &seccomp, None),
        &dir,
        &["--select", &format!("cgroup:{uid}")],
    );

    // As the kubelet's CRI call would: the pod's cgroup parent and annotations.
    let annotations = [
        format!("io.kubernetes.cri.sandbox-namespace={namespace}"),
        format!("io.kubernetes.cri.sandbox-name={pod}"),
        format!("io.kubernetes.cri.container-name={name}"),
        "io.kubernetes.cri.container-type=container".to_string(),
    ];
    let runs = daemon.rerun_until(
        "a finding in the containerd container",
        || finding(&daemon, |c| c["id"] == id.as_str()).is_some(),
        || {
            let mut ctr = Command::new("ctr");
            ctr.args(["-n", "k8s.io", "run", "--rm", "--runtime", "io.containerd.runc.v2", "--rootfs"])
                .arg(format!("--cgroup=/{}", cgroup.0.join("/")));
            for a in &annotations {
                ctr.arg(format!("--annotation={a}"));
            }
            checked(ctr.arg(&rootfs).args([&id, "/ctrd-hazard"]));
        },
    );
    let line = finding(&daemon, |c| c["id"] == id.as_str()).unwrap();
    eprintln!("{DETECTOR} found in the containerd container after {runs} run(s)");
    let c = &line["container"];
    assert_eq!(c["runtime"], "containerd", "{line}");
    assert_eq!(c["pod_uid"], uid.as_str(), "{line}");
    assert_eq!(
        (&c["namespace"], &c["pod"], &c["name"]),
        (&Value::from(namespace), &Value::from(pod.as_str()), &Value::from(name)),
        "{line}"
    );
    assert_eq!(c["names_from"], "runtime", "{line}");
    let series = [
        format!("namespace=\"{namespace}\""),
        format!("pod=\"{pod}\""),
        format!("container=\"{name}\""),
        "binary=\"ctrd-hazard\"".to_string(),
    ];
    assert!(findings_total(&daemon, &series).is_some_and(|v| v >= 1.0), "no {series:?}:\n{}", daemon.metrics());

    daemon.assert_forgot_everything();
    daemon.stop();
    drop(containerd);
    drop(cgroup);
    let _ = std::fs::remove_dir_all(&dir);
    elapsed(test, started);
}
