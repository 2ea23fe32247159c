//! Controller benchmark: N Applications (3 objects each) synced from one git repository into
//! the local cluster, against `kubectl apply` of the same objects measured in the same run.
//!
//! Reports: time until every app is Synced and Healthy, the ratio to kubectl, self-heal
//! latency (edit → reverted), and the controller's memory per cached object.
//!
//! `cargo bench -p tiphys --bench controller` (TIPHYS_BENCH_APPS=N, default 1000).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{Patch, PatchParams};
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::Application;

mod support;
use support::{all_synced, bench_apps, commit_all, kubeconfig_client, rss_kib};

const PATHS: usize = 10;

fn manifests(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  greeting: hello-{i}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-{i}\nspec:\n  selector: {{app: web-{i}}}\n  ports:\n  - port: 80\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web-{i}}}\n  template:\n    metadata:\n      labels: {{app: web-{i}}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
    )
}

#[tokio::main]
async fn main() {
    let n = bench_apps(1000);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for p in 0..PATHS {
        let d = repo.join(format!("apps/app-{p}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("all.yaml"), manifests(p)).unwrap();
    }
    commit_all(&repo);

    // The peer: kubectl apply of the same objects into a fresh cluster.
    let peer = LocalCluster::start(Config {
        simulate: Some(Duration::from_millis(10)),
        ..Config::default()
    })
    .await
    .unwrap();
    let peer_kc = dir.path().join("peer-kubeconfig");
    peer.write_kubeconfig(&peer_kc).unwrap();
    let mut stream = String::new();
    for i in 0..n {
        stream.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-{i}\n"
        ));
        for doc in manifests(i % PATHS).split("---\n") {
            stream.push_str("---\n");
            stream.push_str(&doc.replacen(
                "metadata:\n",
                &format!("metadata:\n  namespace: bench-{i}\n"),
                1,
            ));
        }
    }
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

    // Tiphys: N Applications, one controller process.
    let cluster = LocalCluster::start(Config {
        simulate: Some(Duration::from_millis(10)),
        ..Config::default()
    })
    .await
    .unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc).unwrap();
    let tiphys = env!("CARGO_BIN_EXE_tiphys");
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
            "--self-heal-timeout",
            "0",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--kubeconfig")
        .arg(&kc)
        .env("TIPHYS_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let client = kubeconfig_client(&kc).await;
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(controller.id());
    let started = Instant::now();
    for i in 0..n {
        let app: serde_json::Value = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("bench-{i}"), "namespace": "argocd"},
            "spec": {"project": "default",
                "source": {"repoURL": format!("file://{}", repo.display()), "targetRevision": "HEAD", "path": format!("apps/app-{}", i % PATHS)},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": format!("bench-{i}")},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}},
        });
        apps.patch(
            &format!("bench-{i}"),
            &PatchParams::apply("bench"),
            &Patch::Apply(&app),
        )
        .await
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    while !all_synced(&apps, n).await {
        assert!(Instant::now() < deadline, "apps did not converge");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tiphys_time = started.elapsed();
    let synced_rss = rss_kib(controller.id());

    // Drift: edit one object, time until selfHeal has put it back.
    let configs: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "bench-0");
    let started = Instant::now();
    configs
        .patch(
            "config-0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"greeting": "drift"}})),
        )
        .await
        .unwrap();
    loop {
        let cm = configs.get("config-0").await.unwrap();
        if cm
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str)
            == Some("hello-0")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "drift not corrected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let heal = started.elapsed();
    let objects = n * 3;
    let _ = controller.kill();
    let _ = controller.wait();
    println!("apps: {n} ({objects} objects, {PATHS} paths in one repo)");
    println!(
        "kubectl apply --server-side (peer): {:>8.2} s",
        kubectl_time.as_secs_f64()
    );
    println!(
        "tiphys: all Synced+Healthy:        {:>8.2} s  ({:.2}x kubectl's time; {:.0} apps/s)",
        tiphys_time.as_secs_f64(),
        tiphys_time.as_secs_f64() / kubectl_time.as_secs_f64(),
        n as f64 / tiphys_time.as_secs_f64()
    );
    println!(
        "self-heal (edit -> reverted):      {:>8.0} ms",
        heal.as_secs_f64() * 1000.0
    );
    println!(
        "controller RSS: idle {} MiB, synced {} MiB: {:.0} bytes per app, {:.0} per managed object",
        idle_rss / 1024,
        synced_rss / 1024,
        (synced_rss.saturating_sub(idle_rss) * 1024) as f64 / n as f64,
        (synced_rss.saturating_sub(idle_rss) * 1024) as f64 / objects as f64
    );
}
