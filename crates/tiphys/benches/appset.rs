//! ApplicationSet benchmark: one ApplicationSet generating N Applications (default 10,000).
//!
//! Reports generation alone (in process) and end to end: from applying the ApplicationSet to
//! the local cluster until all N Applications exist, with `tiphys controller` running (its
//! Application controller starts comparing them meanwhile). The peer, measured in the same
//! run, is `kubectl apply --server-side` of the same N Applications as a file.
//!
//! `cargo bench -p tiphys --bench appset` (TIPHYS_BENCH_APPS=N).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::ListParams;
use tiphys_appset::{Inputs, Repos};
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::{Application, ApplicationSet};

mod support;

struct NoRepos;

impl Repos for NoRepos {
    fn tree(&self, _: &str, _: &str) -> Result<PathBuf, String> {
        Err("no repositories in this benchmark".into())
    }
}

fn appset(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\n  namespace: argocd\nspec:\n  generators:\n  - list:\n      elements:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!("      - {{service: svc-{i}, env: prod}}\n"));
    }
    yaml.push_str("  template:\n    metadata:\n      name: '{{service}}-{{env}}'\n    spec:\n      project: default\n      source:\n        repoURL: https://example.invalid/fleet\n        targetRevision: HEAD\n        path: 'apps/{{service}}'\n      destination:\n        server: https://kubernetes.default.svc\n        namespace: '{{service}}'\n");
    yaml
}

async fn count(apps: &Api<Application>) -> usize {
    apps.list_metadata(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("TIPHYS_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let yaml = appset(n);
    let set = ApplicationSet::from_yaml(&yaml, "bench").unwrap();
    let started = Instant::now();
    let generated = tiphys_appset::applications(
        &set,
        &Inputs {
            repos: &NoRepos,
            clusters: &[],
        },
    )
    .unwrap();
    let generation = started.elapsed();
    assert_eq!(generated.len(), n);

    let dir = tempfile::tempdir().unwrap();
    let tiphys = env!("CARGO_BIN_EXE_tiphys");

    // Peer: kubectl apply of the generated Applications.
    let peer = LocalCluster::start(Config::default()).await.unwrap();
    let peer_kc = dir.path().join("peer");
    peer.write_kubeconfig(&peer_kc).unwrap();
    assert!(
        Command::new(tiphys)
            .arg("install")
            .arg("--kubeconfig")
            .arg(&peer_kc)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    let stream: String = generated
        .iter()
        .map(|a| format!("---\n{}", serde_json::to_string(a).unwrap()))
        .collect::<Vec<_>>()
        .join("\n");
    let started = Instant::now();
    let mut child = Command::new("kubectl")
        .args(["apply", "--server-side", "-f", "-"])
        .env("KUBECONFIG", &peer_kc)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let kubectl_time = started.elapsed();
    drop(peer);

    // Tiphys end to end.
    let cluster = LocalCluster::start(Config::default()).await.unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc).unwrap();
    assert!(
        Command::new(tiphys)
            .arg("install")
            .arg("--kubeconfig")
            .arg(&kc)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut controller = Command::new(tiphys)
        .args([
            "controller",
            "--app-resync",
            "3600",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--kubeconfig")
        .arg(&kc)
        .env("TIPHYS_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let kc_text = kube::config::Kubeconfig::read_from(&kc).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc_text, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let apps: Api<Application> = Api::namespaced(client, "argocd");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    support::apply_server_side(&kc, yaml);
    while count(&apps).await < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "applications did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tiphys_time = started.elapsed();
    let _ = controller.kill();
    let _ = controller.wait();
    println!("applications: {n} from one list generator");
    println!(
        "generation alone (in process):          {:>8.3} s",
        generation.as_secs_f64()
    );
    println!(
        "kubectl apply of the {n} (peer):     {:>8.2} s",
        kubectl_time.as_secs_f64()
    );
    println!(
        "tiphys: ApplicationSet applied -> all exist: {:>6.2} s  ({:.2}x kubectl's time)",
        tiphys_time.as_secs_f64(),
        tiphys_time.as_secs_f64() / kubectl_time.as_secs_f64()
    );
}
