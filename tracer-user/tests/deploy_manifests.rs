//! deploy/: the Kubernetes manifests validate offline against the Kubernetes schemas
//! (PyPI `kubernetes-validate`, installed by the bootstrap), the DaemonSet asks for
//! exactly the capabilities the daemon checks for and nothing privileged, the
//! PrometheusRule holds the very rules of deploy/prometheus, and the systemd unit
//! passes `systemd-analyze verify` with the same capabilities.

mod deploy_support;
mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use deploy_support::{daemonset, documents, kubernetes_validate, manifest_dir, python};
use serde_json::Value;
use support::repo;
use tracer_user::daemon::caps::NEEDED;

/// The `resources:` of kustomization.yaml.
fn resources() -> Vec<String> {
    let text = std::fs::read_to_string(manifest_dir().join("kustomization.yaml")).unwrap();
    let block = text.split("\nresources:\n").nth(1).expect("a resources list");
    block.lines().map_while(|l| l.trim().strip_prefix("- ")).map(str::to_string).collect()
}

#[test]
fn kustomization_lists_every_manifest() {
    let mut listed = resources();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(manifest_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present);
    for kind in ["namespace", "serviceaccount", "daemonset", "service", "servicemonitor", "prometheusrule"] {
        assert!(listed.contains(&format!("{kind}.yaml")), "no {kind}.yaml in {listed:?}");
    }
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let Some(site) = kubernetes_validate("manifests_validate_against_the_kubernetes_schemas") else { return };
    let files: Vec<PathBuf> = resources().iter().map(|r| manifest_dir().join(r)).collect();
    // The oldest and newest Kubernetes the schemas cover that docs/deployment.md names.
    let out = python(&site)
        .args(["-m", "kubernetes_validate", "--strict", "-k", "1.28.0", "-k", "1.37.0"])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate failed:\n{said}");
    // Built-in kinds must pass against both versions; only the Prometheus Operator's
    // custom resources have no schema here (their content is checked below).
    for kind in ["namespace", "serviceaccount", "daemonset", "service"] {
        for version in ["1.28", "1.37"] {
            let pass = format!("passed for resource {kind}/ghostrace against version {version}");
            assert!(said.contains(&pass), "no `{pass}` in:\n{said}");
        }
    }
    for line in said.lines().filter(|l| !l.starts_with("INFO ")) {
        assert!(
            line.contains("Couldn't find schema for kind ServiceMonitor")
                || line.contains("Couldn't find schema for kind PrometheusRule"),
            "unexpected output: {line}\n{said}"
        );
    }
}

#[test]
fn daemonset_is_least_privilege() {
    let Some(site) = kubernetes_validate("daemonset_is_least_privilege") else { return };
    let ds = daemonset(&site);
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "discovery needs the host's processes");
    for absent in ["hostNetwork", "hostIPC"] {
        assert!(pod[absent].is_null() || pod[absent] == false, "{absent}: {}", pod[absent]);
    }
    assert_eq!(pod["automountServiceAccountToken"], false, "the daemon never talks to the API server");
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["container.apparmor.security.beta.kubernetes.io/ghostrace"], "unconfined", "{annotations}");
    assert_eq!(pod["tolerations"], serde_json::json!([{"operator": "Exists"}]), "must run on every node");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert!(sc["privileged"].is_null() || sc["privileged"] == false, "privileged: {}", sc["privileged"]);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    // Exactly what the daemon checks for at start-up (Kubernetes drops the CAP_ prefix).
    let wanted: Vec<&str> = NEEDED.iter().map(|c| c.name.strip_prefix("CAP_").unwrap()).collect();
    assert_eq!(sc["capabilities"]["add"], serde_json::json!(wanted));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][kind][resource].is_string(), "no resources.{kind}.{resource}");
        }
    }
    assert_eq!(c["args"], serde_json::json!(["daemon", "--listen", "0.0.0.0:9560"]));
    assert_eq!(c["ports"][0]["containerPort"], 9560);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // Host paths: tracefs and containerd's bundles only, read-only, each at its host path.
    let volumes = pod["volumes"].as_array().unwrap();
    let host_paths: Vec<&Value> = volumes.iter().filter_map(|v| v.get("hostPath")?.get("path")).collect();
    assert_eq!(host_paths, ["/sys/kernel/tracing", "/run/containerd/io.containerd.runtime.v2.task"], "{volumes:?}");
    for mount in c["volumeMounts"].as_array().unwrap() {
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume");
        assert_eq!(mount["mountPath"], volume["hostPath"]["path"], "{mount}");
    }
    assert!(c["volumeMounts"].as_array().unwrap().iter().all(|m| m["readOnly"] == true), "{}", c["volumeMounts"]);
}

#[test]
fn service_monitor_scrapes_the_daemon_port_as_job_ghostrace() {
    let Some(site) = kubernetes_validate("service_monitor_scrapes_the_daemon_port_as_job_ghostrace") else { return };
    let service = &documents(&site, &manifest_dir().join("service.yaml"))[0];
    let monitor = &documents(&site, &manifest_dir().join("servicemonitor.yaml"))[0];
    let ds = daemonset(&site);
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    // The alert rules expect job="ghostrace": the job is the Service's label named by jobLabel.
    let job_label = monitor["spec"]["jobLabel"].as_str().unwrap();
    assert_eq!(service["metadata"]["labels"][job_label], "ghostrace");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]);
    assert_eq!(service["spec"]["selector"], ds["spec"]["selector"]["matchLabels"]);
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    );
}

#[test]
fn prometheus_rule_holds_the_alert_rules_of_deploy_prometheus() {
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/ghostrace-alerts.yml")).unwrap();
    let crd = std::fs::read_to_string(manifest_dir().join("prometheusrule.yaml")).unwrap();
    let groups = &rules[rules.find("\ngroups:").expect("groups in the rules file") + 1..];
    let spec = &crd[crd.find("\nspec:\n").expect("spec in the PrometheusRule") + "\nspec:\n".len()..];
    let indented: String =
        groups.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("  {l}\n") }).collect();
    assert!(
        spec == indented,
        "deploy/kubernetes/prometheusrule.yaml must hold deploy/prometheus/ghostrace-alerts.yml from `groups:` on, \
         indented by two spaces, after `spec:`; regenerate it with:\n  sed -n '/^groups:/,$p' \
         deploy/prometheus/ghostrace-alerts.yml | sed 's/^\\(.\\)/  \\1/'"
    );
    assert!(crd.contains("kind: PrometheusRule\n") && crd.contains("apiVersion: monitoring.coreos.com/v1\n"));
}

#[test]
fn systemd_unit_verifies_with_the_daemon_capabilities() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/ghostrace.service")).unwrap();
    let names: Vec<&str> = NEEDED.iter().map(|c| c.name).collect();
    assert!(unit.contains(&format!("\nCapabilityBoundingSet={}\n", names.join(" "))), "{unit}");
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectKernelModules=yes"] {
        assert!(unit.contains(&format!("\n{hardening}\n")), "no {hardening}");
    }
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        support::skip("systemd-analyze verify", "systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    // Verified as installed, with the binary under test in place of /usr/local/bin.
    let dir = support::temp_file("systemd");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ghostrace.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ghostrace", env!("CARGO_BIN_EXE_ghostrace"))).unwrap();
    let out = Command::new(analyze).arg("verify").arg(&path).output().expect("run systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");
    let out =
        Command::new(analyze).args(["security", "--offline=yes"]).arg(&path).output().expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = said.lines().find(|l| l.contains("Overall exposure level")) {
        eprintln!("systemd-analyze security: {}", line.trim_start_matches(|c: char| !c.is_ascii_alphabetic()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn image_recipe_needs_no_registry_and_is_non_root_by_default() {
    let recipe = std::fs::read_to_string(repo().join("deploy/container/Containerfile")).unwrap();
    let bases: Vec<&str> = recipe.lines().filter_map(|l| l.strip_prefix("FROM ")).collect();
    assert_eq!(bases, ["scratch"], "nothing to pull: the staged root file system is the whole image");
    let user = recipe.lines().filter_map(|l| l.strip_prefix("USER ")).next_back().expect("a USER line");
    assert_ne!(user.split(':').next(), Some("0"), "the image's default user must not be root");
}
