//! What one look at an Application costs the notifier: `plan` for an app with three
//! subscriptions, in a state where nothing fires (most looks) and where two notifications are
//! rendered, against serialising the same Application to JSON — the least any look at it
//! costs — measured in the same run.
//!
//! `cargo bench -p tiphys-notify --bench plan`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};
use tiphys_notify::{Config, Subject};

fn app(phase: &str) -> Value {
    let resources: Vec<Value> = (0..4)
        .map(|i| json!({"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web", "name": format!("web-{i}"), "status": "Synced", "health": {"status": "Healthy"}}))
        .collect();
    let history: Vec<Value> = (0..10)
        .map(|i| json!({"id": i, "revision": format!("{i:040}"), "deployedAt": "2026-12-01T10:00:00Z", "source": {"repoURL": "https://github.com/example/repo", "path": "apps/web", "targetRevision": "HEAD"}}))
        .collect();
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "uid": "0b7c", "resourceVersion": "1234",
            "annotations": {
                "notifications.argoproj.io/subscribe.on-sync-succeeded.hook": "team",
                "notifications.argoproj.io/subscribe.on-deployed.hook": "team",
                "notifications.argoproj.io/subscribe.on-health-degraded.hook": "team"}},
        "spec": {"project": "default", "source": {"repoURL": "https://github.com/example/repo", "path": "apps/web", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}},
        "status": {"sync": {"status": "Synced", "revision": "abc"}, "health": {"status": "Healthy"},
            "resources": resources, "history": history, "reconciledAt": "2026-12-01T10:00:00Z",
            "operationState": {"phase": phase, "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:00:02Z",
                "operation": {"sync": {"revision": "abc"}}, "syncResult": {"revision": "abc"}}}
    })
}

fn main() {
    let config = Config::read(
        &BTreeMap::from([(
            "service.webhook.hook".to_string(),
            "url: http://127.0.0.1:1/\n".to_string(),
        )]),
        &BTreeMap::new(),
    );
    let empty = BTreeMap::new();
    const N: u32 = 20_000;
    let typed: tiphys_model::Application = serde_json::from_value(app("Running")).unwrap();
    let started = Instant::now();
    for _ in 0..N {
        black_box(serde_json::to_value(black_box(&typed)).unwrap());
    }
    let to_json = started.elapsed() / N;
    let mut report = Vec::new();
    for (what, phase) in [
        ("nothing fires", "Running"),
        ("two notifications rendered", "Succeeded"),
    ] {
        let app = app(phase);
        let annotations: BTreeMap<String, String> = app["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let started = Instant::now();
        let mut sends = 0;
        for _ in 0..N {
            let plan = tiphys_notify::plan(
                &config,
                &Subject {
                    app: &app,
                    labels: &empty,
                    annotations: &annotations,
                    project_annotations: &empty,
                    project: &Value::Null,
                    drift: json!({"detected": false}),
                    pause: json!({"paused": false}),
                    lookups: Default::default(),
                    now: 0,
                },
            );
            sends = plan.sends.len();
        }
        report.push((what, started.elapsed() / N, sends));
    }
    println!("Application to JSON (peer): {:>6} µs", to_json.as_micros());
    for (what, took, sends) in report {
        println!(
            "plan, 3 subscriptions, {what} ({sends} sent): {:>6} µs ({:.1}x the peer)",
            took.as_micros(),
            took.as_secs_f64() / to_json.as_secs_f64()
        );
    }
}
