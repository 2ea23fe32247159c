//! Notifications end to end: a local HTTP server stands in for the webhook services; apps
//! subscribed by annotation get one notification per trigger state — a sync that succeeded
//! (with a template's body and a header from the notifications Secret) and drift made by hand
//! (naming the object) — not again on later reconciles, and a service that is down is a
//! Warning Event naming it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::cluster::*;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use tiphys_model::application::SyncStatusCode;

#[derive(Clone, Debug)]
struct Received {
    headers: Vec<String>,
    body: String,
}

/// An HTTP server answering 200 to every request, keeping what it got.
fn receiver() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push(line.trim().to_string());
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            keep.lock().unwrap().push(Received {
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

const APPS: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn subscribed_apps_are_notified_once_per_state() {
    let env = Env::start().await;
    let (port, got) = receiver();
    let closed = free_port();
    env.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-notifications-cm\n  namespace: argocd\ndata:\n  service.webhook.hook: |\n    url: http://127.0.0.1:{port}/notify\n    headers:\n    - name: X-Token\n      value: $token\n  service.webhook.down: |\n    url: http://127.0.0.1:{closed}/notify\n  template.app-sync-succeeded: |\n    message: synced\n    webhook:\n      hook:\n        body: |\n          {{\"app\": \"{{{{.app.metadata.name}}}}\", \"revision\": \"{{{{.app.status.sync.revision}}}}\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: argocd-notifications-secret\n  namespace: argocd\nstringData:\n  token: s3cret\n"
    ));
    let repo = new_repo(
        env.dir.path(),
        &[("app/config.yaml", &configmap("config", ""))],
    );
    let names: Vec<String> = (0..APPS).map(|i| format!("notified-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let mut yaml = application(
            name,
            &repo,
            "app",
            name,
            "    syncOptions:\n    - CreateNamespace=true\n",
        );
        let down = if i == 0 {
            "    notifications.argoproj.io/subscribe.on-sync-succeeded.down: ops\n"
        } else {
            ""
        };
        yaml = yaml.replace(
            "  namespace: argocd\n",
            &format!("  namespace: argocd\n  annotations:\n    notifications.argoproj.io/subscribe.on-sync-succeeded.hook: team-a\n    notifications.argoproj.io/subscribe.on-drift-detected.hook: team-a\n{down}"),
        );
        env.apply(&yaml);
    }
    for name in &names {
        let out = env.tiphys(&["app", "sync", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let count = |needle: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|r| r.body.contains(needle))
            .count()
    };
    for name in &names {
        let app = env.wait_app(name, "synced", synced_and_healthy).await;
        let revision = status(&app).sync.revision;
        let expected = format!("{{\"app\": \"{name}\", \"revision\": \"{revision}\"}}");
        env.eventually("the sync notification", async || {
            (count(&expected) == 1).then_some(())
        })
        .await;
    }
    let received = got.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .all(|r| r.headers.iter().any(|h| h == "x-token: s3cret")),
        "{received:?}"
    );

    // Drift made by hand: one alert per app, naming the object.
    for name in &names {
        let out = env.kubectl(
            &[
                "-n",
                name,
                "patch",
                "configmap",
                "config",
                "--type=merge",
                "-p",
                r#"{"data":{"key":"by-hand"}}"#,
            ],
            None,
        );
        assert!(out.status.success());
    }
    for name in &names {
        env.wait_app(name, "OutOfSync", |a| {
            status(a).sync.status == SyncStatusCode::OutOfSync
        })
        .await;
        let needle = format!("ConfigMap {name}/config");
        env.eventually("the drift alert", async || {
            (count(&needle) == 1).then_some(())
        })
        .await;
        assert!(count(&format!("Application {name} has drifted from Git")) == 1);
    }

    // More reconciles change nothing: nothing is sent twice.
    for name in &names {
        let out = env.kubectl(
            &[
                "-n",
                "argocd",
                "annotate",
                "application",
                name,
                "argocd.argoproj.io/refresh=normal",
            ],
            None,
        );
        assert!(out.status.success());
        env.wait_app(name, "the refresh done", |a| {
            a.metadata
                .annotations
                .as_ref()
                .is_none_or(|x| !x.contains_key("argocd.argoproj.io/refresh"))
                && a.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|x| x.contains_key("notified.notifications.argoproj.io"))
        })
        .await;
    }
    for name in &names {
        assert_eq!(count(&format!("ConfigMap {name}/config")), 1);
        assert_eq!(count(&format!("\"app\": \"{name}\"")), 1);
    }

    // The service that is down: a Warning Event naming it.
    let events: Api<Event> = Api::namespaced(env.client.clone(), "argocd");
    env.eventually("the failure event", async || {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("NotificationFailed")
                    && e.involved_object.name.as_deref() == Some("notified-0")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("service down"))
            })
            .map(|_| ())
    })
    .await;
}
