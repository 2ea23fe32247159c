//! Notification benchmark: what evaluating notifications adds to the controller's CPU.
//!
//! Two runs in fresh local clusters with the same N Applications (one ConfigMap each, the
//! paths shared so reconciles are cheap — the shape where the notifier's share is largest),
//! all created before the controller starts: with no subscriptions; with three per app that are
//! evaluated on every look but never fire; and with three of which two fire once per app
//! (`on-sync-succeeded`, `on-deployed`: a state write and two deliveries per app, to a webhook
//! that a local HTTP server receives). Each run ends when every app is Synced and
//! Healthy, every due notification has arrived, and the controller has gone idle; the
//! controller's CPU time (user + system, from /proc) is compared.
//!
//! `cargo bench -p tiphys --bench notifications` (TIPHYS_BENCH_APPS=N, default 1000;
//! TIPHYS_BENCH_ONLY=WORD for the baseline and the shapes labelled with WORD).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::PostParams;
use tiphys_model::Application;

mod support;
use support::{
    all_synced, bench_apps, commit_all, create_app, installed_cluster, settled_cpu,
    spawn_controller,
};

const PATHS: usize = 10;
/// Three subscriptions of which two fire once per app (a sync succeeded, deployed).
const FIRING: [&str; 3] = ["on-sync-succeeded", "on-deployed", "on-health-degraded"];
/// Three subscriptions that are evaluated on every look and never fire.
const QUIET: [&str; 3] = [
    "on-health-degraded",
    "on-sync-failed",
    "on-sync-status-unknown",
];

/// A webhook receiver counting what it gets; it keeps connections open, as the services do.
fn receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut lines = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim().is_empty() {
                            break;
                        }
                        lines += 1;
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    if lines == 0 {
                        continue;
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    if reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

struct Run {
    cpu: f64,
    wall: Duration,
    sent: usize,
}

async fn run(dir: &Path, repo: &Path, n: usize, label: &str, triggers: &[&str]) -> Run {
    let (_cluster, kc, client) = installed_cluster(dir, label).await;
    let (port, received) = receiver();
    let configs: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "argocd");
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "argocd-notifications-cm", "namespace": "argocd"},
        "data": {"service.webhook.hook": format!("url: http://127.0.0.1:{port}/\n")}
    }))
    .unwrap();
    configs.create(&PostParams::default(), &cm).await.unwrap();
    // Every app exists before the controller starts, as after a restart.
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    for i in 0..n {
        let annotations: serde_json::Map<String, serde_json::Value> = triggers
            .iter()
            .map(|t| {
                (
                    format!("notifications.argoproj.io/subscribe.{t}.hook"),
                    serde_json::json!("team"),
                )
            })
            .collect();
        create_app(
            &apps,
            &format!("bench-{i}"),
            serde_json::json!({"repoURL": format!("file://{}", repo.display()), "targetRevision": "HEAD", "path": format!("apps/app-{}", i % PATHS)}),
            serde_json::Value::Object(annotations),
        )
        .await;
    }
    let started = Instant::now();
    let mut controller = spawn_controller(&kc, &dir.join(format!("cache-{label}")), 3600);
    let deadline = Instant::now() + Duration::from_secs(3600);
    // Due: each app's sync succeeded and deployed (health-degraded never fires).
    let due = if triggers == FIRING { 2 * n } else { 0 };
    while !(all_synced(&apps, n).await && received.load(Ordering::SeqCst) >= due) {
        assert!(Instant::now() < deadline, "{label}: did not converge");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall = started.elapsed();
    let cpu = settled_cpu(controller.id()).await;
    let _ = controller.kill();
    let _ = controller.wait();
    Run {
        cpu,
        wall,
        sent: received.load(Ordering::SeqCst),
    }
}

#[tokio::main]
async fn main() {
    let n = bench_apps(1000);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    for p in 0..PATHS {
        let d = repo.join(format!("apps/app-{p}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("config.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  path: \"{p}\"\n"),
        )
        .unwrap();
    }
    commit_all(&repo);

    // Each shape twice, interleaved, so drift between runs shows rather than counts.
    let mut runs: Vec<(&str, &[&str], Vec<Run>)> = vec![
        ("no subscriptions", &[], Vec::new()),
        ("3 subscriptions, none fire", &QUIET, Vec::new()),
        ("3 subscriptions, 2 fire per app", &FIRING, Vec::new()),
    ];
    // TIPHYS_BENCH_ONLY=WORD runs only the shapes whose label has WORD, and the baseline
    // (for profiling one shape with TIPHYS_BENCH_WRAP).
    let only = std::env::var("TIPHYS_BENCH_ONLY").unwrap_or_default();
    runs.retain(|(label, triggers, _)| triggers.is_empty() || label.contains(only.as_str()));
    for round in 0..2 {
        for (label, triggers, done) in runs.iter_mut() {
            let tag = format!("{}-{round}", label.replace([' ', ','], "-"));
            done.push(run(dir.path(), &repo, n, &tag, triggers).await);
        }
    }
    let mean = |done: &[Run]| done.iter().map(|r| r.cpu).sum::<f64>() / done.len() as f64;
    let base = mean(&runs[0].2);
    println!("apps: {n}, cold start, 10 shared paths, one webhook service; two runs each");
    for (label, _, done) in &runs {
        let cpu = mean(done);
        let each: Vec<String> = done.iter().map(|r| format!("{:.2}", r.cpu)).collect();
        let sent: usize = done.iter().map(|r| r.sent).sum::<usize>() / done.len();
        println!(
            "controller CPU, {label:<32} {cpu:>6.2} s (runs: {}){}",
            each.join(", "),
            if cpu == base {
                String::new()
            } else {
                format!(
                    "  {:+.1} % ({:.0} µs per app, {sent} delivered)",
                    (cpu - base) / base * 100.0,
                    (cpu - base) / n as f64 * 1e6
                )
            }
        );
    }
    println!(
        "all synced in: {}",
        runs.iter()
            .flat_map(|(_, _, d)| d.iter().map(|r| format!("{:.1} s", r.wall.as_secs_f64())))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
