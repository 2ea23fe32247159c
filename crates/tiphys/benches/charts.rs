//! Chart repository benchmark: N Applications (default 1,000) on 10 versions of one chart in
//! one HTTP chart repository, all created before the controller starts with a cold cache —
//! against the peer shape, the same 10 charts kept unpacked in a git repository (10 paths).
//! Reported: the time until every app is Synced and Healthy, the controller's CPU, the chart
//! repository's requests (index fetches, 304s, archive downloads) during the cold start and
//! then over two refresh intervals of steady state.
//!
//! `cargo bench -p tiphys --bench charts` (TIPHYS_BENCH_APPS=N).

use std::path::Path;
use std::time::{Duration, Instant};

use kube::Api;
use tiphys_model::Application;
use tiphys_testkit::ChartRepo;

mod support;
use support::{
    bench_apps, commit_all, cpu_seconds, create_app, installed_cluster, spawn_controller,
    wait_all_synced,
};

const VERSIONS: usize = 10;
/// The refresh interval of the steady-state window.
const RESYNC: u64 = 20;

fn chart(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: web\nversion: {version}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(
        dir.join("templates/cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: \"{version}\"\n  release: {{{{ .Release.Name }}}}\n"),
    )
    .unwrap();
}

struct Run {
    wall: Duration,
    cpu: f64,
}

async fn run(
    dir: &Path,
    n: usize,
    label: &str,
    source: impl Fn(usize) -> serde_json::Value,
) -> Run {
    let (_cluster, kc, client) = installed_cluster(dir, label).await;
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    for i in 0..n {
        create_app(
            &apps,
            &format!("bench-{i}"),
            source(i),
            serde_json::json!({}),
        )
        .await;
    }
    let started = Instant::now();
    let mut controller = spawn_controller(&kc, &dir.join(format!("cache-{label}")), RESYNC);
    wait_all_synced(&apps, n, Duration::from_secs(3600), label).await;
    let wall = started.elapsed();
    // At convergence: with a short refresh interval the controller never goes quite idle.
    let cpu = cpu_seconds(controller.id());
    if label == "chart repository" {
        // Steady state: every app refreshes once per interval; the index is asked for once.
        tokio::time::sleep(Duration::from_secs(2 * RESYNC)).await;
    }
    let _ = controller.kill();
    let _ = controller.wait();
    Run { wall, cpu }
}

#[tokio::main]
async fn main() {
    let n = bench_apps(1000);
    let dir = tempfile::tempdir().unwrap();
    let versions: Vec<String> = (0..VERSIONS).map(|v| format!("1.{v}.0")).collect();
    let repo = ChartRepo::start(&dir.path().join("charts"), None, None);
    let git = dir.path().join("git");
    for v in &versions {
        let unpacked = git.join(format!("charts/web-{v}"));
        chart(&unpacked, v);
        repo.publish(&unpacked);
    }
    commit_all(&git);

    let chart_run = run(dir.path(), n, "chart repository", |i| {
        serde_json::json!({"repoURL": repo.url, "chart": "web", "targetRevision": versions[i % VERSIONS]})
    })
    .await;
    let (index_200, index_304) = repo.requests("/index.yaml");
    let downloads: usize = versions
        .iter()
        .map(|v| repo.requests(&format!("/web-{v}.tgz")).0)
        .sum();
    let git_run = run(dir.path(), n, "git paths", |i| {
        serde_json::json!({"repoURL": format!("file://{}", git.display()), "targetRevision": "HEAD",
            "path": format!("charts/web-{}", versions[i % VERSIONS])})
    })
    .await;

    println!("apps: {n} on {VERSIONS} chart versions, cold start, created before the controller");
    for (label, r) in [
        ("chart repository (HTTP)", &chart_run),
        ("same charts in git (peer)", &git_run),
    ] {
        println!(
            "{label:<28} all synced in {:>6.1} s, controller CPU {:>6.1} s",
            r.wall.as_secs_f64(),
            r.cpu
        );
    }
    println!(
        "ratio chart repository / git: {:.2} (time), {:.2} (CPU)",
        chart_run.wall.as_secs_f64() / git_run.wall.as_secs_f64(),
        chart_run.cpu / git_run.cpu
    );
    println!(
        "chart repository requests: {index_200} index fetches + {index_304} not-modified over the cold start and {} s of steady state (refresh every {RESYNC} s); {downloads} archive downloads",
        2 * RESYNC
    );
}
