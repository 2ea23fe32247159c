//! `tiphys health`: which check decides an object's health — argocd-cm's script first, then
//! the built-in checks, then the health library (which argocd-cm can switch off per kind) —
//! with no cluster.

use std::process::Command;

const OBJECTS: &str = r#"apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web-tls}
status:
  conditions:
  - {type: Ready, status: "False", reason: Failed, message: "issuer letsencrypt not found"}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
status: {phase: Healthy}
---
apiVersion: v1
kind: Pod
metadata: {name: hook}
spec: {restartPolicy: Never}
status: {phase: Running}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
status: {phase: Running}
"#;

const ARGOCD_CM: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data:
  resource.customizations.health.argoproj.io_Rollout: |
    return {status = "Suspended", message = "from my script"}
  tiphys.health.library.disabled: example.com/*
"#;

fn health(dir: &std::path::Path, with_cm: bool) -> Vec<String> {
    health_with(dir, with_cm, &[])
}

fn health_with(dir: &std::path::Path, with_cm: bool, extra: &[&str]) -> Vec<String> {
    let objects = dir.join("objects.yaml");
    std::fs::write(&objects, OBJECTS).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tiphys"));
    command.arg("health").arg("-f").arg(&objects).args(extra);
    if with_cm {
        let cm = dir.join("argocd-cm.yaml");
        std::fs::write(&cm, ARGOCD_CM).unwrap();
        command.arg("--argocd-cm").arg(cm);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn each_object_gets_a_health_and_the_check_that_decided_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        health(dir.path(), false),
        [
            "Certificate/web-tls: Degraded (issuer letsencrypt not found) — health library: generic: Ready condition",
            "Rollout/api: Healthy — health library: Argo Rollouts Rollout",
            "Pod/hook: Progressing — built-in check",
            "ConfigMap/settings: no health (no check applies; it does not count towards the app's health)",
            "Widget/w: Healthy — health library: generic: status.phase",
        ]
    );
    let with_cm = health(dir.path(), true);
    assert_eq!(
        with_cm[1],
        "Rollout/api: Suspended (from my script) — argocd-cm script resource.customizations.health.argoproj.io_Rollout"
    );
    assert!(with_cm[4].starts_with("Widget/w: no health"), "{with_cm:?}");
}

#[test]
fn json_output_is_one_object_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<serde_json::Value> = health_with(dir.path(), false, &["-o", "json"])
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["kind"], "Certificate");
    assert_eq!(lines[0]["status"], "Degraded");
    assert_eq!(lines[0]["message"], "issuer letsencrypt not found");
    assert_eq!(
        lines[0]["check"],
        "health library: generic: Ready condition"
    );
    assert_eq!(lines[3]["name"], "settings");
    assert!(lines[3]["status"].is_null(), "{}", lines[3]);
}
