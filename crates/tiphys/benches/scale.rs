//! Controller at scale, in the shapes production has: every Application created before the
//! controller starts (a restart), a cold cache, each app its own path. Peer: `kubectl apply
//! --server-side` of the same namespaces and objects into a fresh local cluster, in the same run.
//!
//! Phases (`TIPHYS_BENCH_PHASES`, comma-separated; default all):
//! * `small`: 2,000 apps × 1 ConfigMap, distinct paths of one repository;
//! * `four`: 1,000 apps × 4 objects (ConfigMap, ServiceAccount, Service, Deployment);
//! * `large`: `TIPHYS_BENCH_APPS` (default 10,000) apps × 1 ConfigMap on 100 repositories —
//!   cold start, memory per managed object, idle CPU and git requests per minute, commit →
//!   cluster with no webhook (repository polling), and a restart with every app synced
//!   (writes to managed objects counted, time until every app was compared again).
//!
//! `cargo bench -p tiphys --bench scale`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use tiphys_model::Application;

mod support;
use support::{
    apply_server_side, bench_apps, count_synced, cpu_seconds, create_app, git, installed_cluster,
    metric_sum, rss_kib, spawn_controller_with,
};

/// A benchmark shape: how many apps, over how many repositories, which objects each renders.
struct Shape {
    label: &'static str,
    apps: usize,
    repos: usize,
    objects: fn(usize, &str) -> String,
    per_app: usize,
}

fn config_map(i: usize, greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  greeting: {greeting}\n"
    )
}

fn four_objects(i: usize, greeting: &str) -> String {
    format!(
        "{}---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web-{i}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-{i}\nspec:\n  selector: {{app: web-{i}}}\n  ports:\n  - port: 80\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web-{i}}}\n  template:\n    metadata:\n      labels: {{app: web-{i}}}\n    spec:\n      serviceAccountName: web-{i}\n      containers:\n      - name: web\n        image: nginx:1.27\n",
        config_map(i, greeting)
    )
}

impl Shape {
    fn repo_of(&self, i: usize) -> usize {
        i % self.repos
    }

    fn path_of(i: usize) -> String {
        format!("apps/app-{i}")
    }

    /// One git repository per `repos`, app `i` at `apps/app-<i>` of repository `i % repos`.
    fn write_repos(&self, dir: &Path) -> Vec<PathBuf> {
        let repos: Vec<PathBuf> = (0..self.repos)
            .map(|r| dir.join(format!("{}-repo-{r}", self.label)))
            .collect();
        for i in 0..self.apps {
            let d = repos[self.repo_of(i)].join(Shape::path_of(i));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("all.yaml"), (self.objects)(i, "hello")).unwrap();
        }
        for repo in &repos {
            support::commit_all(repo);
        }
        repos
    }

    /// The objects of every app in its own namespace, as one stream for kubectl.
    fn stream(&self) -> String {
        let mut out = String::new();
        for i in 0..self.apps {
            let ns = format!("bench-{i}");
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
            ));
            for doc in (self.objects)(i, "hello").split("---\n") {
                out.push_str("---\n");
                out.push_str(&doc.replacen(
                    "metadata:\n",
                    &format!("metadata:\n  namespace: {ns}\n"),
                    1,
                ));
            }
        }
        out
    }
}

/// The peer: `kubectl apply --server-side` of the same objects into a fresh cluster.
async fn peer(dir: &Path, shape: &Shape) -> Duration {
    let (_cluster, kc, _client) = installed_cluster(dir, &format!("{}-peer", shape.label)).await;
    let stream = shape.stream();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || apply_server_side(&kc, stream))
        .await
        .unwrap();
    started.elapsed()
}

async fn create_apps(apps: &Api<Application>, shape: &Shape, repos: &[PathBuf]) {
    futures::stream::iter(0..shape.apps)
        .for_each_concurrent(16, |i| {
            let source = serde_json::json!({
                "repoURL": format!("file://{}", repos[shape.repo_of(i)].display()),
                "targetRevision": "HEAD",
                "path": Shape::path_of(i),
            });
            async move {
                create_app(apps, &format!("bench-{i}"), source, serde_json::json!({})).await;
            }
        })
        .await;
}

/// Apps the controller reports Synced and Healthy (`argocd_app_info`), confirmed by one list
/// of the Applications once it says all.
async fn wait_synced(
    apps: &Api<Application>,
    addr: std::net::SocketAddr,
    n: usize,
    label: &str,
) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3600);
    loop {
        let reported = synced_by_metrics(addr).await;
        if reported >= n && count_synced(apps).await == n {
            return started.elapsed();
        }
        assert!(Instant::now() < deadline, "{label}: did not converge");
        // Not more often: rendering every app's metrics costs the controller CPU.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn synced_by_metrics(addr: std::net::SocketAddr) -> usize {
    let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("argocd_app_info{")
                && l.contains("sync_status=\"Synced\"")
                && l.contains("health_status=\"Healthy\"")
        })
        .count()
}

struct Cold {
    shape_label: &'static str,
    apps: usize,
    objects: usize,
    wall: Duration,
    peer: Duration,
    cpu: f64,
}

/// Apps created first, then a controller with a cold cache; time until all are synced.
async fn cold_start(dir: &Path, shape: &Shape) -> Cold {
    let peer = peer(dir, shape).await;
    let repos = shape.write_repos(dir);
    let (_cluster, kc, client) = installed_cluster(dir, shape.label).await;
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    create_apps(&apps, shape, &repos).await;
    let (mut controller, addr) = spawn_controller_with(
        &kc,
        &dir.join(format!("cache-{}", shape.label)),
        &["--app-resync", "3600"],
    );
    let wall = wait_synced(&apps, addr, shape.apps, shape.label).await;
    let cpu = cpu_seconds(controller.id());
    let _ = controller.kill();
    let _ = controller.wait();
    Cold {
        shape_label: shape.label,
        apps: shape.apps,
        objects: shape.apps * shape.per_app,
        wall,
        peer,
        cpu,
    }
}

struct Large {
    cold: Cold,
    rss_empty: u64,
    rss_synced: u64,
    idle_cpu_percent: f64,
    git_per_minute: f64,
    commit_to_cluster: Vec<Duration>,
    restart_settled: Duration,
    idle_app_writes: usize,
    restart_writes: usize,
    restart_app_writes: usize,
    restart_cpu: f64,
    rss_restarted: u64,
}

fn app_versions(list: &[Application]) -> BTreeMap<String, String> {
    list.iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap_or_default(),
                a.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// How many entries of `before` have another version (or are gone) in `after`; the first
/// few are named on stderr.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    let moved: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    if !moved.is_empty() {
        eprintln!("changed: {:?}", &moved[..moved.len().min(5)]);
    }
    moved.len()
}

/// resourceVersion of every ConfigMap in the apps' namespaces.
async fn config_versions(client: &kube::Client) -> BTreeMap<String, String> {
    let all: Api<ConfigMap> = Api::all(client.clone());
    all.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|cm| {
            cm.metadata
                .namespace
                .as_deref()
                .is_some_and(|n| n.starts_with("bench-"))
        })
        .map(|cm| {
            (
                format!(
                    "{}/{}",
                    cm.metadata.namespace.unwrap_or_default(),
                    cm.metadata.name.unwrap_or_default()
                ),
                cm.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect()
}

async fn large(dir: &Path, shape: &Shape) -> Large {
    // TIPHYS_BENCH_PEER=0 skips the peer (when profiling).
    let peer = if std::env::var("TIPHYS_BENCH_PEER").as_deref() == Ok("0") {
        Duration::ZERO
    } else {
        peer(dir, shape).await
    };
    let repos = shape.write_repos(dir);
    let (_cluster, kc, client) = installed_cluster(dir, shape.label).await;
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    let cache = dir.join(format!("cache-{}", shape.label));
    // Default refresh interval and jitter, as in production.
    let flags: &[&str] = &[];

    // The controller's memory with nothing to manage.
    let (mut empty, _) = spawn_controller_with(&kc, &dir.join("cache-empty"), flags);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_empty = rss_kib(empty.id());
    let _ = empty.kill();
    let _ = empty.wait();

    create_apps(&apps, shape, &repos).await;
    let (mut controller, addr) = spawn_controller_with(&kc, &cache, flags);
    eprintln!(
        "large: {} apps created; cold start (controller pid {})",
        shape.apps,
        controller.id()
    );
    let wall = wait_synced(&apps, addr, shape.apps, shape.label).await;
    let cpu = cpu_seconds(controller.id());
    let rss_synced = rss_kib(controller.id());
    eprintln!(
        "large: synced in {:.1} s, RSS {} MiB, {} events dropped; steady state",
        wall.as_secs_f64(),
        rss_synced / 1024,
        metric_sum(addr, "tiphys_events_dropped_total").await
    );

    // Steady state: a whole refresh cycle (120 s plus up to 60 s of jitter), in which every
    // app is refreshed once and every repository polled every 10 s.
    let window = Duration::from_secs(180);
    let app_versions_before = app_versions(&apps.list(&ListParams::default()).await.unwrap().items);
    let git_before = metric_sum(addr, "argocd_git_request_total").await;
    let cpu_before = cpu_seconds(controller.id());
    tokio::time::sleep(window).await;
    let idle_cpu_percent =
        (cpu_seconds(controller.id()) - cpu_before) / window.as_secs_f64() * 100.0;
    let git_per_minute = (metric_sum(addr, "argocd_git_request_total").await - git_before)
        / window.as_secs_f64()
        * 60.0;
    let idle_app_writes = changed(
        &app_versions_before,
        &app_versions(&apps.list(&ListParams::default()).await.unwrap().items),
    );

    eprintln!("large: idle CPU {idle_cpu_percent:.1} %; commits");
    // Commit → cluster, no webhook: change one app's ConfigMap in Git, wait for the cluster.
    let mut commit_to_cluster = Vec::new();
    for (sample, i) in [17usize, 4242, 9001].into_iter().enumerate() {
        let i = i % shape.apps;
        let repo = &repos[shape.repo_of(i)];
        let greeting = format!("changed-{sample}");
        std::fs::write(
            repo.join(Shape::path_of(i)).join("all.yaml"),
            (shape.objects)(i, &greeting),
        )
        .unwrap();
        git(repo, &["commit", "-q", "-am", "change"]);
        let started = Instant::now();
        let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &format!("bench-{i}"));
        loop {
            let cm = configs.get(&format!("config-{i}")).await.unwrap();
            if cm.data.unwrap_or_default().get("greeting") == Some(&greeting) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "commit never reached the cluster"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        commit_to_cluster.push(started.elapsed());
    }
    wait_synced(&apps, addr, shape.apps, "after the commits").await;

    eprintln!("large: commit -> cluster {commit_to_cluster:?}; restart");
    // Restart with every app synced.
    let before = config_versions(&client).await;
    let _ = controller.kill();
    let _ = controller.wait();
    let apps_before = app_versions(&apps.list(&ListParams::default()).await.unwrap().items);
    // Settled: every app was compared once (each is queued by the first list) and the queue
    // is empty.
    let started = Instant::now();
    let (mut controller, addr) = spawn_controller_with(&kc, &cache, flags);
    let restart_settled = loop {
        let adds = metric_sum(addr, "workqueue_adds_total").await;
        let busy = metric_sum(addr, "workqueue_depth").await
            + metric_sum(addr, "tiphys_workqueue_running").await;
        if adds >= shape.apps as f64 && busy == 0.0 {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "restart: {adds} apps queued, {busy} waiting or running"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let restart_cpu = cpu_seconds(controller.id());
    let rss_restarted = rss_kib(controller.id());
    let after = config_versions(&client).await;
    let restart_writes = changed(&before, &after);
    let apps_after = app_versions(&apps.list(&ListParams::default()).await.unwrap().items);
    let restart_app_writes = changed(&apps_before, &apps_after);
    let _ = controller.kill();
    let _ = controller.wait();
    Large {
        cold: Cold {
            shape_label: shape.label,
            apps: shape.apps,
            objects: shape.apps * shape.per_app,
            wall,
            peer,
            cpu,
        },
        rss_empty,
        rss_synced,
        idle_cpu_percent,
        git_per_minute,
        commit_to_cluster,
        restart_settled,
        idle_app_writes,
        restart_writes,
        restart_app_writes,
        restart_cpu,
        rss_restarted,
    }
}

fn report(c: &Cold) {
    println!(
        "{:<6} {:>6} apps {:>6} objects: all Synced in {:>6.1} s ({:>5.0} apps/s; controller CPU {:>6.1} s) | kubectl apply --server-side {:>6.1} s | ratio {:.2}",
        c.shape_label,
        c.apps,
        c.objects,
        c.wall.as_secs_f64(),
        c.apps as f64 / c.wall.as_secs_f64(),
        c.cpu,
        c.peer.as_secs_f64(),
        c.wall.as_secs_f64() / c.peer.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let phases = std::env::var("TIPHYS_BENCH_PHASES").unwrap_or("small,four,large".into());
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let mut large_run = None;
    for phase in phases.split(',') {
        let run_dir = dir.path().join(phase);
        std::fs::create_dir_all(&run_dir).unwrap();
        let shape = match phase {
            "small" => Shape {
                label: "small",
                apps: 2000,
                repos: 1,
                objects: config_map,
                per_app: 1,
            },
            "four" => Shape {
                label: "four",
                apps: 1000,
                repos: 1,
                objects: four_objects,
                per_app: 4,
            },
            "large" => Shape {
                label: "large",
                apps: bench_apps(10_000),
                repos: 100,
                objects: config_map,
                per_app: 1,
            },
            other => panic!("unknown phase {other}"),
        };
        if phase == "large" {
            large_run = Some(large(&run_dir, &shape).await);
        } else {
            reports.push(cold_start(&run_dir, &shape).await);
        }
        if let Some(last) = reports.last() {
            report(last);
        }
    }
    if let Some(l) = &large_run {
        report(&l.cold);
        let objects = l.cold.objects as f64;
        println!(
            "large: controller RSS {} MiB empty, {} MiB synced: {:.0} bytes per managed object (apps included)",
            l.rss_empty / 1024,
            l.rss_synced / 1024,
            (l.rss_synced.saturating_sub(l.rss_empty) * 1024) as f64 / objects
        );
        println!(
            "large: steady state over a refresh cycle (180 s): CPU {:.1} % of one core; git requests {:.0} per minute ({} repositories); {} Application writes",
            l.idle_cpu_percent, l.git_per_minute, 100, l.idle_app_writes
        );
        let samples: Vec<String> = l
            .commit_to_cluster
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect();
        println!(
            "large: commit -> cluster with no webhook: {}",
            samples.join(", ")
        );
        println!(
            "large: restart: every app compared again, queue empty in {:.1} s (controller CPU {:.1} s, RSS {} MiB); {} writes to managed objects, {} Application writes",
            l.restart_settled.as_secs_f64(),
            l.restart_cpu,
            l.rss_restarted / 1024,
            l.restart_writes,
            l.restart_app_writes
        );
    }
}
