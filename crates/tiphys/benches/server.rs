//! API server benchmark: N Applications (default 10,000) in 100 projects, a `tiphys server`
//! process in front of the local cluster.
//!
//! Reports: `GET /api/v1/applications` for an admin and for a user who may see one project
//! (median of 10), and the UI's filtered page of summaries, against the peer — listing the
//! same Applications from the Kubernetes API in the same run; how long until 200 concurrent
//! stream watchers all see one Application change; the server's RSS; and the web UI in
//! headless Chromium (`ui-browser.mjs`): the list's first paint and a filter change against
//! fetching the full list in the same page, and the tree of an app with 1,000 resources.
//!
//! `cargo bench -p tiphys --bench server` (TIPHYS_BENCH_APPS=N).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::{Reaped, rss_kib};

const PROJECTS: usize = 100;

/// One request over a fresh connection; the status and body.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("TIPHYS_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(Config {
        simulate: None,
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
    let kubeconfig = kube::config::Kubeconfig::read_from(&kc).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();

    // The projects, the apps (with a status, as synced apps have), one user per team.
    let projects: Api<tiphys_model::AppProject> = Api::namespaced(client.clone(), "argocd");
    for p in 0..PROJECTS {
        let project = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": format!("team-{p}"), "namespace": "argocd"},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}});
        projects
            .patch(
                &format!("team-{p}"),
                &PatchParams::apply("bench"),
                &Patch::Apply(&project),
            )
            .await
            .unwrap();
    }
    let apps: Api<Application> = Api::namespaced(client.clone(), "argocd");
    let started = Instant::now();
    let mut pending = Vec::new();
    for i in 0..n {
        let apps = apps.clone();
        pending.push(tokio::spawn(async move {
            let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": format!("app-{i}"), "namespace": "argocd", "labels": {"tier": "web"}},
                "spec": {"project": format!("team-{}", i % PROJECTS),
                    "source": {"repoURL": "https://git.example.com/org/apps", "targetRevision": "HEAD", "path": format!("apps/app-{i}")},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": format!("app-{i}")}},
                "status": {"sync": {"status": if i % 10 == 3 { "OutOfSync" } else { "Synced" }, "revision": "0123456789abcdef0123456789abcdef01234567"},
                    "health": {"status": if i % 25 == 5 { "Degraded" } else { "Healthy" }},
                    "resources": [{"version": "v1", "kind": "ConfigMap", "namespace": format!("app-{i}"), "name": "settings", "status": "Synced", "health": {"status": "Healthy"}},
                                  {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": format!("app-{i}"), "name": "web", "status": "Synced", "health": {"status": "Healthy"}}]}});
            apps.patch(&format!("app-{i}"), &PatchParams::apply("bench"), &Patch::Apply(&app)).await.unwrap();
        }));
        if pending.len() >= 64 {
            for p in pending.drain(..) {
                p.await.unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap();
    }
    println!(
        "created {n} Applications in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // One app with 1,000 managed resources, for the UI's tree.
    let resources: Vec<serde_json::Value> = (0..1000)
        .map(|i| json!({"version": "v1", "kind": "ConfigMap", "namespace": "big", "name": format!("settings-{i:04}"), "status": "Synced", "health": {"status": "Healthy"}}))
        .collect();
    let big = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "big", "namespace": "argocd"},
        "spec": {"project": "team-0",
            "source": {"repoURL": "https://git.example.com/org/apps", "targetRevision": "HEAD", "path": "apps/big"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "big"}},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}, "resources": resources}});
    apps.patch("big", &PatchParams::apply("bench"), &Patch::Apply(&big))
        .await
        .unwrap();
    let n = n + 1;
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "argocd");
    cm.patch("argocd-cm", &PatchParams::apply("bench"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"}, "data": {"accounts.alice": "login"}}))).await.unwrap();
    cm.patch("argocd-rbac-cm", &PatchParams::apply("bench"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-rbac-cm", "namespace": "argocd"},
        "data": {"policy.csv": "p, role:team-7, applications, *, team-7/*, allow\ng, alice, role:team-7\n"}}))).await.unwrap();

    // The server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Reaped(
        Command::new(tiphys)
            .args(["server", "--insecure", "--listen", &addr])
            .arg("--kubeconfig")
            .arg(&kc)
            .env("TIPHYS_CACHE_DIR", dir.path().join("cache"))
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok()
            && request(&addr, "GET", "/healthz", None, "").await.0 == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "argocd");
    let password = String::from_utf8(
        secrets
            .get("argocd-initial-admin-secret")
            .await
            .unwrap()
            .data
            .unwrap()["password"]
            .0
            .clone(),
    )
    .unwrap();
    let login = |user: String, password: String| {
        let addr = addr.clone();
        async move {
            let (status, body) = request(
                &addr,
                "POST",
                "/api/v1/session",
                None,
                &json!({"username": user, "password": password}).to_string(),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let admin = login("admin".into(), password.clone()).await;
    let (status, body) = request(
        &addr,
        "PUT",
        "/api/v1/account/password",
        Some(&admin),
        &json!({"name": "alice", "currentPassword": password, "newPassword": "alice-password"})
            .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let alice = login("alice".into(), "alice-password".into()).await;

    // Wait until the server's cache holds every app.
    loop {
        let (_, body) = request(&addr, "GET", "/api/v1/applications", Some(&admin), "").await;
        let count = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        if count == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut admin_times = Vec::new();
    let mut alice_times = Vec::new();
    let mut peer_times = Vec::new();
    let mut seen_by_alice = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let (status, _) = request(&addr, "GET", "/api/v1/applications", Some(&admin), "").await;
        admin_times.push(t.elapsed());
        assert_eq!(status, 200);
        let t = Instant::now();
        let (status, body) = request(&addr, "GET", "/api/v1/applications", Some(&alice), "").await;
        alice_times.push(t.elapsed());
        assert_eq!(status, 200);
        seen_by_alice = serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"]
            .as_array()
            .unwrap()
            .len();
        let t = Instant::now();
        let listed = apps.list(&ListParams::default()).await.unwrap();
        peer_times.push(t.elapsed());
        assert_eq!(listed.items.len(), n);
    }
    let (admin_list, alice_list, peer_list) =
        (median(admin_times), median(alice_times), median(peer_times));
    // The server's part of a filter change in the UI: every visible app summarised, filtered
    // and counted per facet, one page answered.
    let mut summary_times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (status, _) = request(
            &addr,
            "GET",
            "/api/ui/applications?health=Degraded&search=app-&limit=100",
            Some(&admin),
            "",
        )
        .await;
        summary_times.push(t.elapsed());
        assert_eq!(status, 200);
    }
    let summaries = median(summary_times);

    // 200 stream watchers; one change; the time until all have it.
    let mut watchers = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(format!("GET /api/v1/stream/applications?name=app-7 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\r\n").as_bytes()).await.unwrap();
        watchers.push(stream);
    }
    // Each has its initial event before the change is made.
    for w in &mut watchers {
        let mut buf = vec![0u8; 1 << 16];
        let mut seen = String::new();
        while !seen.contains("\"ADDED\"") {
            let read = w.read(&mut buf).await.unwrap();
            seen.push_str(&String::from_utf8_lossy(&buf[..read]));
        }
    }
    let changed = Instant::now();
    apps.patch(
        "app-7",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "api"}}})),
    )
    .await
    .unwrap();
    let mut latest = Duration::ZERO;
    let mut readers = Vec::new();
    for mut w in watchers {
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 1 << 16];
            let mut seen = String::new();
            while !seen.contains("\"tier\":\"api\"") {
                let read = w.read(&mut buf).await.unwrap();
                assert!(read > 0, "stream closed");
                seen.push_str(&String::from_utf8_lossy(&buf[..read]));
            }
            changed.elapsed()
        }));
    }
    for r in readers {
        latest = latest.max(r.await.unwrap());
    }
    // The web UI in headless Chromium, against the same server.
    let browser = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/ui-browser.mjs"
        ))
        .env("URL", format!("http://{addr}"))
        .env("TOKEN", &admin)
        .env("BIG_APP", "big")
        .env(
            "PLAYWRIGHT",
            tiphys_testkit::npm_package("playwright-core@1.65.1")
                .join("node_modules/playwright-core/index.mjs"),
        )
        .env("CHROMIUM", tiphys_testkit::tool("chromium"))
        .output()
        .unwrap();
    assert!(
        browser.status.success(),
        "{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let ui: serde_json::Value =
        serde_json::from_slice(browser.stdout.trim_ascii()).expect("the browser's figures");
    let rss = rss_kib(server.id());
    let _ = server.kill();
    let _ = server.wait();

    println!("apps: {n} in {PROJECTS} projects; a team user sees {seen_by_alice}");
    println!(
        "Kubernetes API list of the same Applications (peer): {:>7.1} ms",
        peer_list.as_secs_f64() * 1000.0
    );
    println!(
        "GET /api/v1/applications, admin:                     {:>7.1} ms  ({:.2}x the peer)",
        admin_list.as_secs_f64() * 1000.0,
        admin_list.as_secs_f64() / peer_list.as_secs_f64()
    );
    println!(
        "GET /api/v1/applications, one-project user:          {:>7.1} ms  ({:.2}x the peer)",
        alice_list.as_secs_f64() * 1000.0,
        alice_list.as_secs_f64() / peer_list.as_secs_f64()
    );
    println!(
        "GET /api/ui/applications, a filtered page, admin:    {:>7.1} ms  ({:.2}x the peer)",
        summaries.as_secs_f64() * 1000.0,
        summaries.as_secs_f64() / peer_list.as_secs_f64()
    );
    println!(
        "200 stream watchers all see a change:               {:>7.1} ms",
        latest.as_secs_f64() * 1000.0
    );
    println!(
        "server RSS:                                          {:>7} MiB",
        rss / 1024
    );
    let ms = |k: &str| ui[k].as_f64().unwrap_or(f64::NAN);
    println!("web UI in headless Chromium (median of 5 cold browser contexts):");
    println!(
        "  fetch and parse the full app list (peer):          {:>7.1} ms",
        ms("peer")
    );
    println!(
        "  applications list, first meaningful paint:         {:>7.1} ms  ({:.2}x the peer)",
        ms("firstPaint"),
        ms("firstPaint") / ms("peer")
    );
    println!(
        "  a filter change, click to new list:                {:>7.1} ms  ({:.2}x the peer)",
        ms("filter"),
        ms("filter") / ms("peer")
    );
    println!(
        "  1,000-resource app, tree (folded) painted:         {:>7.1} ms",
        ms("treeFolded")
    );
    println!(
        "  the same, expanded to all {} nodes:              {:>7.1} ms",
        ui["expandedNodes"],
        ms("treeExpanded")
    );
}
