//! What the controller benchmarks share: a git repository of manifests, a client from a
//! kubeconfig, waiting for apps, and reading the controller's memory and CPU from /proc.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use kube::Api;
use tiphys_model::Application;
use tiphys_model::application::{HealthStatusCode, SyncStatusCode};

pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// How many apps a benchmark runs: TIPHYS_BENCH_APPS, else `default`.
pub fn bench_apps(default: usize) -> usize {
    std::env::var("TIPHYS_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Make `dir` a git repository with everything in it committed.
pub fn commit_all(dir: &Path) {
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bench"]);
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, with that of the children it waited for
/// (`git-upload-pack` for local repositories, `helm`), seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) — utime and stime are 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports in clock ticks of 1/100 s on every platform this runs on.
    (ticks(11) + ticks(12) + ticks(13) + ticks(14)) / 100.0
}

pub async fn kubeconfig_client(path: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap()
}

pub async fn all_synced(apps: &Api<Application>, n: usize) -> bool {
    count_synced(apps).await == n
}

/// A fresh local cluster (workloads simulated) with Tiphys installed: the cluster, its
/// kubeconfig (`dir/kubeconfig-<label>`) and a client.
pub async fn installed_cluster(
    dir: &Path,
    label: &str,
) -> (
    tiphys_local_cluster::LocalCluster,
    std::path::PathBuf,
    kube::Client,
) {
    let cluster = tiphys_local_cluster::LocalCluster::start(tiphys_local_cluster::Config {
        simulate: Some(std::time::Duration::from_millis(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let kc = dir.join(format!("kubeconfig-{label}"));
    cluster.write_kubeconfig(&kc).unwrap();
    let installed = Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(["install", "--kubeconfig"])
        .arg(&kc)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(installed.success());
    let client = kubeconfig_client(&kc).await;
    (cluster, kc, client)
}

/// A child process killed and waited for when dropped, so a bench that panics leaves no
/// controller or server running.
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tiphys controller` against `kubeconfig`, refreshing every `resync` seconds, its cache in
/// `cache` (cold when new), logging warnings only.
pub fn spawn_controller(kubeconfig: &Path, cache: &Path, resync: u64) -> Reaped {
    spawn_controller_with(kubeconfig, cache, &["--app-resync", &resync.to_string()]).0
}

/// Wait until the process has used no CPU for a second; its CPU time then.
pub async fn settled_cpu(pid: u32) -> f64 {
    let mut cpu = cpu_seconds(pid);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = cpu_seconds(pid);
        if now - cpu < 0.02 {
            return now;
        }
        cpu = now;
    }
}

/// Create (server-side apply) the automated Application `name` with `source`, its own
/// namespace created on sync, and `annotations`.
pub async fn create_app(
    apps: &Api<Application>,
    name: &str,
    source: serde_json::Value,
    annotations: serde_json::Value,
) {
    let app = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "annotations": annotations},
        "spec": {"project": "default", "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}},
    });
    apps.patch(
        name,
        &kube::api::PatchParams::apply("bench"),
        &kube::api::Patch::Apply(&app),
    )
    .await
    .unwrap();
}

/// Poll until all `n` apps are Synced and Healthy (panics after `limit`).
pub async fn wait_all_synced(
    apps: &Api<Application>,
    n: usize,
    limit: std::time::Duration,
    what: &str,
) {
    let deadline = std::time::Instant::now() + limit;
    while !all_synced(apps, n).await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: did not converge"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// `tiphys controller` with extra flags; also returns its metrics address.
pub fn spawn_controller_with(
    kubeconfig: &Path,
    cache: &Path,
    flags: &[&str],
) -> (Reaped, std::net::SocketAddr) {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // TIPHYS_BENCH_WRAP runs the controller under a profiler ("heaptrack", "perf record -g").
    let wrap = std::env::var("TIPHYS_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(env!("CARGO_BIN_EXE_tiphys"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_tiphys")),
    };
    let child = command
        .arg("controller")
        .args(flags)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("TIPHYS_CACHE_DIR", cache)
        .env("HELM", tiphys_testkit::tool("helm"))
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    (Reaped(child), listen)
}

/// The sum of every sample of metric `name` the controller at `addr` exports (0 when absent
/// or unreachable).
pub async fn metric_sum(addr: std::net::SocketAddr, name: &str) -> f64 {
    let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many of the apps are Synced and Healthy with no operation pending.
pub async fn count_synced(apps: &Api<Application>) -> usize {
    let Ok(list) = apps.list(&Default::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|a| {
            let s = a.status.clone().unwrap_or_default();
            s.sync.status == SyncStatusCode::Synced
                && s.health.status == HealthStatusCode::Healthy
                && a.operation.is_none()
        })
        .count()
}

/// `kubectl apply --server-side` of `manifests` (kubectl from the shared tool helper), fed
/// through stdin while kubectl runs; blocks until it is done.
pub fn apply_server_side(kubeconfig: &Path, manifests: String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(tiphys_testkit::tool("kubectl"))
        .args(["apply", "--server-side", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(manifests.as_bytes()).unwrap());
    let status = child.wait().unwrap();
    writer.join().unwrap();
    assert!(status.success(), "kubectl apply --server-side failed");
}
