//! Which container, and which Kubernetes pod, a process runs in, learnt on the node
//! alone (no API server): the runtime and container id and the pod UID from the
//! process's cgroup path; namespace, pod and container names from the runtime's
//! OCI bundle annotations, else from the process's environment and its service
//! account's namespace file; a Podman container's name from containers/storage's
//! record. docs/deployment.md lists what each source can tell.
#![forbid(unsafe_code)]

use std::{fs, io::Read, path::Path};

use serde::{Deserialize, Serialize};

use crate::procfs;

/// Longest OCI `config.json` read (they are a few KiB).
const MAX_BUNDLE_CONFIG: u64 = 1 << 20;
/// Longest `/proc/PID/environ` read.
const MAX_ENVIRON: u64 = 1 << 20;
/// Longest containers/storage `containers.json` read (~1 KiB a container).
const MAX_STORAGE_RECORD: u64 = 16 << 20;
/// containers/storage's record of the containers Podman made (its default root),
/// relative to the host's root: each entry's `names` holds the name Podman gave.
const PODMAN_CONTAINERS: &str = "var/lib/containers/storage/overlay-containers/containers.json";
/// Where the host's files are looked for, in order: through the host's init process,
/// from a daemon that runs with the host's pid namespace but its own mount namespace
/// (a DaemonSet with `hostPID`); then the daemon's own root, where a container that
/// may not read init's root finds the runtime's state mounted at its host path.
pub const HOST_ROOTS: [&str; 2] = ["/proc/1/root", "/"];

/// A container runtime, as its cgroup naming tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Containerd,
    #[serde(rename = "cri-o")]
    Crio,
    Docker,
    Podman,
}

/// Where the Kubernetes names came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameSource {
    /// The runtime's OCI bundle annotations, written by the kubelet's CRI call:
    /// authoritative.
    Runtime,
    /// The process's environment (downward API variables, `HOSTNAME`) and its
    /// service account's `namespace` file: what the pod says of itself.
    Process,
}

/// A containerized process's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Container {
    /// `None` when the cgroup path names the container by its bare id (the kubelet's
    /// cgroupfs driver) and no runtime state told which runtime runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// The runtime's container id (64 hex digits).
    pub id: String,
    /// The Kubernetes pod UID; `None` outside Kubernetes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The container's name in the pod spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names_from: Option<NameSource>,
}

impl Container {
    /// The `namespace`, `pod`, `container` metric label values (empty when unknown).
    pub fn labels(&self) -> [&str; 3] {
        [self.namespace.as_deref(), self.pod.as_deref(), self.name.as_deref()].map(|v| v.unwrap_or(""))
    }
}

/// The metric label values of a process that may not be in a container.
pub fn labels(container: Option<&Container>) -> [&str; 3] {
    container.map_or(["", "", ""], Container::labels)
}

/// A process's container: its cgroup path, then the runtime's bundle annotations
/// under the first of `host_roots` that has them, then the process itself (`/proc/PID/environ`,
/// `/proc/PID/root`). `None` for a process in no recognisable container.
pub fn identify(pid: u32, cgroup: &str, host_roots: &[&Path]) -> Option<Container> {
    let read_host = |path: &str, limit| host_roots.iter().find_map(|root| read_bounded(&root.join(path), limit).ok());
    let mut c = from_cgroup(cgroup)?;
    if c.pod_uid.is_none() {
        if c.runtime == Some(Runtime::Podman) {
            let record = read_host(PODMAN_CONTAINERS, MAX_STORAGE_RECORD).unwrap_or_default();
            c.name = name_from_storage(&record, &c.id);
            c.names_from = c.name.as_ref().map(|_| NameSource::Runtime);
        }
        return Some(c);
    }
    for (runtime, bundle) in bundle_configs(&c.id) {
        if c.runtime.is_some_and(|r| r != runtime) {
            continue;
        }
        let Some(bytes) = read_host(&bundle, MAX_BUNDLE_CONFIG) else { continue };
        if let Some(names) = names_from_bundle(&bytes) {
            c.runtime = Some(runtime);
            c.set_names(names, NameSource::Runtime);
            return Some(c);
        }
    }
    let environ = read_bounded(&procfs::environ_path(pid), MAX_ENVIRON).unwrap_or_default();
    let mut names = names_from_environ(&environ, !shares_host_hostname(pid));
    if names.namespace.is_none() {
        let file = procfs::root_of(pid).join("var/run/secrets/kubernetes.io/serviceaccount/namespace");
        names.namespace = fs::read_to_string(file).ok().and_then(|s| k8s_name(s.trim()));
    }
    if names != Names::default() {
        c.set_names(names, NameSource::Process);
    }
    Some(c)
}

impl Container {
    fn set_names(&mut self, names: Names, source: NameSource) {
        self.namespace = names.namespace;
        self.pod = names.pod;
        self.name = names.container;
        self.names_from = Some(source);
    }
}

/// Whether the process shares the host's UTS namespace (a `hostNetwork` pod does):
/// its `HOSTNAME` is then the node's name. Unknown reads as not shared.
fn shares_host_hostname(pid: u32) -> bool {
    procfs::namespace(pid, "uts").is_some_and(|ns| Some(ns) == procfs::namespace(1, "uts"))
}

/// Kubernetes names of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

/// The runtime, container id and pod UID in a `/proc/PID/cgroup` text (cgroup v2
/// `0::PATH` or v1 `N:CONTROLLERS:PATH` lines; the first line naming a container
/// wins).
pub fn from_cgroup(text: &str) -> Option<Container> {
    text.lines().filter_map(|line| line.splitn(3, ':').nth(2)).find_map(from_cgroup_path)
}

/// Parses one cgroup path. Known shapes (kubelet with the cgroupfs or the systemd
/// driver, Docker and Podman on their own; paths may start with `/..` components
/// when read from another cgroup namespace):
/// - `/kubepods/burstable/pod<UID>/<ID>`, `/kubepods/pod<UID>/<ID>`
/// - `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID_>.slice/cri-containerd-<ID>.scope`
///   (`crio-<ID>.scope` for CRI-O, `docker-<ID>.scope` for dockershim / cri-dockerd)
/// - `/docker/<ID>`, `/system.slice/docker-<ID>.scope`, `…/libpod-<ID>.scope`
/// - with the runtime's cgroupfs manager, no `.scope`: `/libpod_parent/libpod-<ID>`
///   (Podman), `/kubepods/burstable/pod<UID>/crio-<ID>` (CRI-O)
pub fn from_cgroup_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != "..").collect();
    // The innermost element naming a container: a process may sit in a child
    // cgroup the container made for itself.
    let (at, runtime, id) = parts.iter().enumerate().rev().find_map(|(i, part)| {
        let (runtime, id) = container_element(part, i.checked_sub(1).map(|p| parts[p]))?;
        Some((i, runtime, id))
    })?;
    let pod_uid = parts[..at].iter().rev().find_map(|p| pod_element(p));
    Some(Container { runtime, id: id.to_string(), pod_uid, ..Container::default() })
}

/// `(runtime, id)` when a cgroup path element names a container.
fn container_element<'a>(part: &'a str, parent: Option<&str>) -> Option<(Option<Runtime>, &'a str)> {
    if is_container_id(part) {
        // The cgroupfs layout names only the id; Docker's own parent says who.
        return Some((parent.filter(|p| *p == "docker").map(|_| Runtime::Docker), part));
    }
    let scope = part.strip_suffix(".scope").unwrap_or(part);
    let prefixes = [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ];
    // `crio-conmon-ID` and `libpod-conmon-ID` hold the runtime's monitor, not the
    // container: their rest is not an id.
    prefixes.iter().find_map(|(prefix, runtime)| {
        let id = scope.strip_prefix(prefix)?;
        is_container_id(id).then_some((Some(*runtime), id))
    })
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pod UID of a `pod<UID>` (cgroupfs) or `kubepods[-QOS]-pod<UID_>.slice`
/// (systemd, where the UID's dashes became underscores) element.
fn pod_element(part: &str) -> Option<String> {
    let uid = match part.strip_suffix(".slice") {
        Some(slice) => slice.strip_prefix("kubepods-")?.rsplit_once("pod")?.1,
        None => part.strip_prefix("pod")?,
    };
    let uid = uid.replace('_', "-");
    // A UUID, or the 32 hex digits of a static pod's config hash.
    let hex = uid.bytes().filter(u8::is_ascii_hexdigit).count();
    let shape_ok = match uid.len() {
        36 => hex == 32 && uid.bytes().filter(|b| *b == b'-').count() == 4,
        32 => hex == 32,
        _ => false,
    };
    shape_ok.then(|| uid.to_ascii_lowercase())
}

/// Where the runtimes keep a container's OCI bundle `config.json`, relative to the
/// host's root: containerd's CRI plugin (namespace `k8s.io`) and CRI-O.
fn bundle_configs(id: &str) -> [(Runtime, String); 2] {
    [
        (Runtime::Containerd, format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json")),
        (Runtime::Crio, format!("run/containers/storage/overlay-containers/{id}/userdata/config.json")),
    ]
}

/// The pod's names in an OCI bundle `config.json`'s annotations, as containerd's CRI
/// plugin (`io.kubernetes.cri.*`) and CRI-O (`io.kubernetes.pod.*`,
/// `io.kubernetes.container.name`) write them. Only the annotations are kept.
pub fn names_from_bundle(config_json: &[u8]) -> Option<Names> {
    #[derive(Deserialize)]
    struct Bundle {
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
    }
    let bundle: Bundle = serde_json::from_slice(config_json).ok()?;
    let get = |keys: [&str; 2]| keys.iter().find_map(|k| bundle.annotations.get(*k).and_then(|v| k8s_name(v)));
    let names = Names {
        namespace: get(["io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"]),
        pod: get(["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        container: get(["io.kubernetes.cri.container-name", "io.kubernetes.container.name"]),
    };
    (names != Names::default()).then_some(names)
}

/// The name a container of `id` was given, in a containers/storage `containers.json`
/// (`[{"id": ..., "names": [...]}, ...]`), if it is a usable label value.
pub fn name_from_storage(containers_json: &[u8], id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        names: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(containers_json).ok()?;
    let entry = entries.into_iter().find(|e| e.id == id)?;
    entry.names.into_iter().find(|n| runtime_name(n))
}

/// A name as Podman and Docker accept it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, kept short.
fn runtime_name(text: &str) -> bool {
    text.len() <= 253
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The pod's names in a NUL-separated environment: downward API variables by their
/// usual names, and, when `hostname_is_pod`, `HOSTNAME`, which the runtime sets to
/// the pod's hostname (the pod name unless the spec sets `hostname`). Only these
/// variables are kept.
pub fn names_from_environ(environ: &[u8], hostname_is_pod: bool) -> Names {
    let mut names = Names::default();
    let mut hostname = None;
    for entry in environ.split(|b| *b == 0) {
        let Some(eq) = entry.iter().position(|b| *b == b'=') else { continue };
        let (key, value) = (&entry[..eq], &entry[eq + 1..]);
        let slot = match key {
            b"POD_NAMESPACE" | b"MY_POD_NAMESPACE" => &mut names.namespace,
            b"POD_NAME" | b"MY_POD_NAME" => &mut names.pod,
            b"CONTAINER_NAME" => &mut names.container,
            b"HOSTNAME" if hostname_is_pod => &mut hostname,
            _ => continue,
        };
        if slot.is_none() {
            *slot = std::str::from_utf8(value).ok().and_then(k8s_name);
        }
    }
    names.pod = names.pod.or(hostname);
    names
}

/// A Kubernetes object name (DNS subdomain: lowercase alphanumerics, `-` and `.`,
/// at most 253 characters), or `None`: anything else is not used as a label.
fn k8s_name(text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    ok.then(|| text.to_string())
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1f6a4f7e-3c2b-4d5e-8f90-a1b2c3d4e5f6";

    fn parsed(path: &str) -> (Option<Runtime>, String, Option<String>) {
        let c = from_cgroup_path(path).unwrap_or_else(|| panic!("no container in {path}"));
        (c.runtime, c.id, c.pod_uid)
    }

    #[test]
    fn kubelet_systemd_driver() {
        let uid_ = UID.replace('-', "_");
        for (scope, runtime) in [
            (format!("cri-containerd-{ID}.scope"), Runtime::Containerd),
            (format!("crio-{ID}.scope"), Runtime::Crio),
            (format!("docker-{ID}.scope"), Runtime::Docker),
        ] {
            let path = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/{scope}");
            assert_eq!(parsed(&path), (Some(runtime), ID.into(), Some(UID.into())));
        }
        // Guaranteed QoS has no QoS slice.
        let path = format!("/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope");
        assert_eq!(parsed(&path), (Some(Runtime::Containerd), ID.into(), Some(UID.into())));
    }

    #[test]
    fn kubelet_cgroupfs_driver() {
        for qos in ["/burstable", "/besteffort", ""] {
            let path = format!("/kubepods{qos}/pod{UID}/{ID}");
            assert_eq!(parsed(&path), (None, ID.into(), Some(UID.into())));
        }
        // A static pod's UID is its config hash.
        let hash = "6b4b3e2c9a1d4f0e8c7b6a5d4c3b2a19";
        assert_eq!(parsed(&format!("/kubepods/pod{hash}/{ID}")).2.as_deref(), Some(hash));
    }

    #[test]
    fn seen_from_another_cgroup_namespace_or_nested() {
        let path = format!("/../../kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope", UID.replace('-', "_"));
        assert_eq!(parsed(&path).2.as_deref(), Some(UID));
        // A container that made a child cgroup of its own.
        let path = format!("/kubepods/besteffort/pod{UID}/{ID}/app");
        assert_eq!(parsed(&path).1, ID);
    }

    #[test]
    fn plain_docker_and_podman() {
        assert_eq!(parsed(&format!("/docker/{ID}")), (Some(Runtime::Docker), ID.into(), None));
        assert_eq!(parsed(&format!("/system.slice/docker-{ID}.scope")), (Some(Runtime::Docker), ID.into(), None));
        let path = format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container");
        assert_eq!(parsed(&path), (Some(Runtime::Podman), ID.into(), None));
        // Podman's and CRI-O's cgroupfs managers: no `.scope`.
        assert_eq!(parsed(&format!("/libpod_parent/libpod-{ID}")), (Some(Runtime::Podman), ID.into(), None));
        let path = format!("/kubepods/burstable/pod{UID}/crio-{ID}");
        assert_eq!(parsed(&path), (Some(Runtime::Crio), ID.into(), Some(UID.into())));
    }

    #[test]
    fn podman_names_from_containers_storage() {
        let other = "f".repeat(64);
        let record = format!(
            r#"[{{"id":"{other}","names":["web"]}},{{"id":"{ID}","names":["hazard_1"],"image":"x","metadata":"{{}}"}}]"#
        );
        assert_eq!(name_from_storage(record.as_bytes(), ID).as_deref(), Some("hazard_1"));
        assert_eq!(name_from_storage(record.as_bytes(), &"e".repeat(64)), None);
        let odd = format!(r#"[{{"id":"{ID}","names":["-x","a b"]}}]"#);
        assert_eq!(name_from_storage(odd.as_bytes(), ID), None);
        assert_eq!(name_from_storage(b"[{", ID), None);

        let root = std::env::temp_dir().join(format!("ghostrace-podman-{}", std::process::id()));
        let file = root.join(PODMAN_CONTAINERS);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, &record).unwrap();
        let cgroup = format!("4:memory:/libpod_parent/libpod-{ID}\n");
        let c = identify(std::process::id(), &cgroup, &[Path::new("/nonexistent"), &root]).unwrap();
        let _ = fs::remove_dir_all(&root);
        assert_eq!(c.runtime, Some(Runtime::Podman));
        assert_eq!((c.name.as_deref(), c.names_from), (Some("hazard_1"), Some(NameSource::Runtime)));
        assert_eq!(c.labels(), ["", "", "hazard_1"]);
    }

    #[test]
    fn not_containers() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/ssh.service",
            // the runtime's monitor process, not the container
            &format!("/system.slice/crio-conmon-{ID}.scope"),
            // an id of the wrong length or case
            &format!("/docker/{}", &ID[1..]),
            &format!("/docker/{}", ID.to_uppercase()),
            &format!("/kubepods/burstable/pod{UID}"),
        ] {
            assert_eq!(from_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn v1_and_v2_files() {
        let v2 = format!("0::/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope\n", UID.replace('-', "_"));
        assert_eq!(from_cgroup(&v2).unwrap().runtime, Some(Runtime::Crio));
        let v1 = format!("12:pids:/kubepods/pod{UID}/{ID}\n1:name=systemd:/kubepods/pod{UID}/{ID}\n0::/\n");
        assert_eq!(from_cgroup(&v1).unwrap().pod_uid.as_deref(), Some(UID));
        assert_eq!(from_cgroup("0::/user.slice\n"), None);
        assert_eq!(from_cgroup("garbage"), None);
    }

    #[test]
    fn bundle_annotations_of_containerd_and_crio() {
        let containerd = br#"{"ociVersion":"1.1.0","process":{"env":["SECRET=x"]},"annotations":{
            "io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"api",
            "io.kubernetes.cri.sandbox-name":"api-7d9f8-x2x4q","io.kubernetes.cri.sandbox-namespace":"shop"}}"#;
        let names = Names {
            namespace: Some("shop".into()),
            pod: Some("api-7d9f8-x2x4q".into()),
            container: Some("api".into()),
        };
        assert_eq!(names_from_bundle(containerd), Some(names.clone()));
        let crio = br#"{"annotations":{"io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.name":"api-7d9f8-x2x4q",
            "io.kubernetes.container.name":"api"}}"#;
        assert_eq!(names_from_bundle(crio), Some(names));
        assert_eq!(names_from_bundle(br#"{"annotations":{}}"#), None);
        assert_eq!(names_from_bundle(b"{"), None);
    }

    #[test]
    fn environment_names_and_hostname() {
        let env = b"PATH=/bin\0HOSTNAME=api-7d9f8-x2x4q\0POD_NAMESPACE=shop\0TOKEN=s3cr3t\0CONTAINER_NAME=api\0";
        let names = names_from_environ(env, true);
        assert_eq!(names.namespace.as_deref(), Some("shop"));
        assert_eq!(names.pod.as_deref(), Some("api-7d9f8-x2x4q"));
        assert_eq!(names.container.as_deref(), Some("api"));
        // An explicit POD_NAME wins over HOSTNAME whatever the order.
        let names = names_from_environ(b"HOSTNAME=node-1\0POD_NAME=web-0\0", true);
        assert_eq!(names.pod.as_deref(), Some("web-0"));
        // In the host's UTS namespace, HOSTNAME is the node's.
        assert_eq!(names_from_environ(b"HOSTNAME=node-1\0", false), Names::default());
        assert_eq!(names_from_environ(b"HOSTNAME=node-1\0", true).pod.as_deref(), Some("node-1"));
        // Values that are not Kubernetes names are not used.
        let names = names_from_environ(b"POD_NAMESPACE=Shop Floor\0HOSTNAME=\0POD_NAME=-x\0", true);
        assert_eq!(names, Names::default());
    }

    #[test]
    fn identify_reads_the_bundle_under_the_host_root() {
        let root = std::env::temp_dir().join(format!("ghostrace-container-{}", std::process::id()));
        let bundle = root.join(format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}"));
        fs::create_dir_all(&bundle).unwrap();
        fs::write(
            bundle.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-name":"api-0","io.kubernetes.cri.container-name":"api"}}"#,
        )
        .unwrap();
        let cgroup = format!("0::/kubepods/besteffort/pod{UID}/{ID}\n");
        let c = identify(std::process::id(), &cgroup, &[&root]).unwrap();
        let _ = fs::remove_dir_all(&root);
        assert_eq!(c.runtime, Some(Runtime::Containerd));
        assert_eq!(c.labels(), ["shop", "api-0", "api"]);
        assert_eq!(c.names_from, Some(NameSource::Runtime));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["runtime"], "containerd");
        assert_eq!(json["pod_uid"], UID);
        assert_eq!(labels(None), ["", "", ""]);
    }
}
