//! Health of 100,000 live objects with the library on — the shape a large controller
//! reassesses: Deployments, Pods, Services, ConfigMaps and custom resources (Certificates,
//! Rollouts, Crossplane buckets, Flux Kustomizations, unknown kinds), each distinct.
//!
//! The peer, measured in the same run over the same objects: serialising each to JSON text
//! (one pass over the same data, the least any per-object work costs).
//!
//! `cargo bench -p tiphys-health --bench health` (TIPHYS_BENCH_OBJECTS=N).

use std::time::Instant;

use serde_json::{Value, json};

fn object(i: usize) -> Value {
    let name = format!("obj-{i}");
    match i % 8 {
        0 => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "generation": 2},
            "spec": {"replicas": 3}, "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}})
        }
        1 => json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [{"name": "main"}]}}),
        2 => {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"type": "ClusterIP"}})
        }
        3 => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
        }
        4 => {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": name, "generation": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Issuing", "status": "False"}, {"type": "Ready", "status": if i % 16 == 4 { "True" } else { "False" }, "message": "m"}]}})
        }
        5 => {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name}, "status": {"phase": "Healthy"}})
        }
        6 => {
            json!({"apiVersion": "s3.aws.upbound.io/v1beta1", "kind": "Bucket", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "True"}]}})
        }
        _ => {
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": name},
            "spec": {"suspend": false}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        }
    }
}

fn main() {
    let n: usize = std::env::var("TIPHYS_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let objects: Vec<Value> = (0..n).map(object).collect();
    let custom = tiphys_health::CustomHealth::default();

    let started = Instant::now();
    let mut bytes = 0;
    for o in &objects {
        bytes += serde_json::to_string(o).map(|s| s.len()).unwrap_or(0);
    }
    let peer = started.elapsed();

    let started = Instant::now();
    let mut judged = 0;
    for o in &objects {
        if tiphys_health::explain(o, &custom).is_some() {
            judged += 1;
        }
    }
    let health = started.elapsed();

    println!("objects: {n} ({judged} with a health; {bytes} bytes of JSON)");
    println!(
        "serialise each to JSON (peer):     {:>8.1} ms",
        peer.as_secs_f64() * 1000.0
    );
    println!(
        "health of each, library on:        {:>8.1} ms  ({:.2}x the peer)",
        health.as_secs_f64() * 1000.0,
        health.as_secs_f64() / peer.as_secs_f64()
    );
}
