//! Notifications end to end. A local HTTP server stands in for webhooks, Slack's Web API and
//! GitHub's API (recording what they get), `aiosmtpd` is a real SMTP server, kubectl makes the
//! manual changes.
//!
//! * Apps subscribed by annotation get one notification per trigger state — a sync that
//!   succeeded (a Go-template body, a header from the Secret) and drift made by hand (naming
//!   the object, the field and the manager) — not again on later reconciles; a service that is
//!   down is a Warning Event naming it.
//! * Argo's `repo` functions in a trigger and a template, on Helm apps in parallel: a
//!   condition on the synced commit's message, `oncePer` and a body on a Helm value
//!   (`GetAppDetails().Helm.GetParameterValueByName`), overrides included, following commits.
//! * Triggers and subscriptions from the ConfigMap (`when` expressions, a label selector),
//!   Slack, email and GitHub commit statuses, `on-deleted`; a broken trigger is an Event naming
//!   its key while the others keep working.

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
    request_line: String,
    headers: Vec<String>,
    body: String,
}

/// An HTTP server keeping what it gets and answering as the service at that path would:
/// GitHub's installation token, Slack's `ok`, else an empty JSON object.
fn receiver() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
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
                headers.push(line.trim().to_ascii_lowercase());
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = if request_line.contains("/access_tokens") {
                r#"{"token": "ghs_installation"}"#
            } else if request_line.contains("/chat.postMessage") {
                r#"{"ok": true}"#
            } else {
                "{}"
            };
            keep.lock().unwrap().push(Received {
                request_line: request_line.trim().to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let _ = reader.get_mut().write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
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
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-notifications-cm\n  namespace: argocd\ndata:\n  service.webhook.hook: |\n    url: http://127.0.0.1:{port}/notify\n    headers:\n    - name: X-Token\n      value: $token\n  service.webhook.down: |\n    url: http://127.0.0.1:{closed}/notify\n  template.app-sync-succeeded: |\n    message: synced\n    webhook:\n      hook:\n        body: |\n          {{\"app\": \"{{{{.app.metadata.name}}}}\", \"revision\": \"{{{{.app.status.sync.revision}}}}\", \"author\": \"{{{{with call .repo.GetCommitMetadata .app.status.sync.revision}}}}{{{{.Author}}}}{{{{end}}}}\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: argocd-notifications-secret\n  namespace: argocd\nstringData:\n  token: s3cret\n"
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
        // The commit's author, looked up in the repository (`.repo.GetCommitMetadata`).
        let expected = format!(
            "{{\"app\": \"{name}\", \"revision\": \"{revision}\", \"author\": \"t <t@example.com>\"}}"
        );
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
        env.change_config_by_hand(name, "by-hand");
    }
    for name in &names {
        env.wait_app(name, "OutOfSync", |a| {
            status(a).sync.status == SyncStatusCode::OutOfSync
        })
        .await;
        // The object, the field and who changed it (kubectl patch's field manager).
        let needle = format!("ConfigMap {name}/config: data.key (by kubectl-patch)");
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
                        .is_some_and(|m| m.contains("to down \"ops\""))
            })
            .map(|_| ())
    })
    .await;
}

/// An RSA private key for a GitHub App, made by Node (which every test machine has).
/// Conditions and templates ask the repository: a release is announced once per image tag,
/// only for commits whose message says "release", with the tag helm renders with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repository_functions_in_triggers_and_templates() {
    let env = Env::start().await;
    let (port, got) = receiver();
    env.apply(&format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-notifications-cm
  namespace: argocd
data:
  service.webhook.hook: |
    url: http://127.0.0.1:{port}/release
  trigger.on-release: |
    - when: app.status.sync.status == 'Synced' and repo.GetCommitMetadata(app.status.sync.revision).Message startsWith 'release'
      oncePer: repo.GetAppDetails().Helm.GetParameterValueByName('image.tag')
      send: [release]
  template.release: |
    webhook:
      hook:
        body: '{{"app": "{{{{.app.metadata.name}}}}", "type": "{{{{(call .repo.GetAppDetails).Type}}}}", "tag": "{{{{(call .repo.GetAppDetails).Helm.GetParameterValueByName "image.tag"}}}}"}}'
"#
    ));
    let values = |tag: &str| format!("image:\n  repository: shop\n  tag: \"{tag}\"\n");
    let repo = new_repo(
        env.dir.path(),
        &[
            (
                "chart/Chart.yaml",
                "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
            ),
            ("chart/values.yaml", &values("1.0")),
            (
                "chart/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\ndata:\n  image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
            ),
        ],
    );
    let names: Vec<String> = (0..APPS).map(|i| format!("release-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        // The first app pins its tag with a Helm parameter.
        let helm = if i == 0 {
            "    helm:\n      parameters:\n      - name: image.tag\n        value: pinned\n"
        } else {
            ""
        };
        let yaml = application(name, &repo, "chart", name, AUTOMATED)
            .replace(
                "  namespace: argocd\n",
                "  namespace: argocd\n  annotations:\n    notifications.argoproj.io/subscribe.on-release.hook: team\n",
            )
            .replace("    path: chart\n", &format!("    path: chart\n{helm}"));
        env.apply(&yaml);
    }
    let bodies = || -> Vec<String> { got.lock().unwrap().iter().map(|r| r.body.clone()).collect() };
    let body = |name: &str, tag: &str| {
        format!("{{\"app\": \"{name}\", \"type\": \"Helm\", \"tag\": \"{tag}\"}}")
    };
    let first = head(&repo);
    for name in &names {
        env.wait_app(name, "synced at the first commit", |a| {
            synced_and_healthy(a) && status(a).sync.revision == first
        })
        .await;
    }

    // A release commit: each app announces the tag it deploys, once.
    // Each step: a commit of the chart's tag, every app refreshed and synced at it.
    let deploy = async |tag: &str, message: &str| {
        std::fs::write(repo.join("chart/values.yaml"), values(tag)).unwrap();
        commit(&repo, message);
        let revision = head(&repo);
        for name in &names {
            env.refresh(name, "normal");
        }
        for name in &names {
            env.wait_app(name, message, |a| {
                synced_and_healthy(a) && status(a).sync.revision == revision
            })
            .await;
        }
    };
    deploy("2.0", "release 2.0").await;
    for (i, name) in names.iter().enumerate() {
        let tag = if i == 0 { "pinned" } else { "2.0" };
        let expected = body(name, tag);
        env.eventually("the release notification", async || {
            bodies().contains(&expected).then_some(())
        })
        .await;
    }
    // A commit that is not a release changes a tag: the condition does not hold.
    deploy("2.1", "tidy up").await;
    // Another release of the same tag the pinned app already announced, a new tag for the
    // others: only those are sent.
    deploy("3.0", "release 3.0").await;
    for name in names.iter().skip(1) {
        let expected = body(name, "3.0");
        env.eventually("the second release notification", async || {
            bodies().contains(&expected).then_some(())
        })
        .await;
    }
    let all = bodies();
    for (i, name) in names.iter().enumerate() {
        let sent: Vec<&String> = all
            .iter()
            .filter(|b| b.contains(&format!("\"{name}\"")))
            .collect();
        let expected: Vec<String> = if i == 0 {
            vec![body(name, "pinned")]
        } else {
            vec![body(name, "2.0"), body(name, "3.0")]
        };
        assert_eq!(sent, expected.iter().collect::<Vec<_>>(), "{all:#?}");
    }
}

fn rsa_private_key() -> String {
    let out = std::process::Command::new("node")
        .args([
            "-e",
            "const {privateKey} = require('crypto').generateKeyPairSync('rsa', {modulusLength: 2048, privateKeyEncoding: {type: 'pkcs1', format: 'pem'}, publicKeyEncoding: {type: 'spki', format: 'pem'}}); process.stdout.write(privateKey)",
        ])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A real SMTP server (`aiosmtpd`, printing each message it accepts to `log`).
struct SmtpServer {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl SmtpServer {
    fn start(dir: &std::path::Path, port: u16) -> SmtpServer {
        let program = tiphys_testkit::pip_package("aiosmtpd==1.4.6", "aiosmtpd");
        let log = dir.join("smtp.log");
        let child = std::process::Command::new(program)
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        SmtpServer { child, log }
    }

    fn received(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CONFIGURED_APPS: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn triggers_subscriptions_and_services_from_the_config_map() {
    let env = Env::start().await;
    let (port, got) = receiver();
    let smtp_port = free_port();
    let smtp = SmtpServer::start(env.dir.path(), smtp_port);
    let key = rsa_private_key();
    let indented_key: String = key.lines().map(|l| format!("    {l}\n")).collect();
    let config = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-notifications-cm
  namespace: argocd
data:
  context: |
    argocdUrl: https://cd.example.com
  service.slack: |
    token: $slack-token
    apiURL: http://127.0.0.1:{port}/api
    username: tiphys
    icon: ":rocket:"
  service.email.mail: |
    host: 127.0.0.1
    port: {smtp_port}
    from: cd@example.com
  service.github: |
    appID: 12345
    installationID: 678
    privateKey: $github-key
    enterpriseBaseURL: http://127.0.0.1:{port}/github
  service.webhook.audit: |
    url: http://127.0.0.1:{port}/audit
  trigger.on-healthy-and-synced: |
    - when: app.status.health.status == 'Healthy' and app.status.sync.status == 'Synced' and app.metadata.deletionTimestamp == nil
      oncePer: app.status.sync.revision
      send: [release]
  trigger.on-broken: |
    - when: app.status.health.status ==
      send: [release]
  template.release: |
    message: "{{{{.app.metadata.name}}}} runs {{{{.app.status.sync.revision | trunc 7}}}} for {{{{.context.argocdUrl}}}}"
    email:
      subject: "Released {{{{.app.metadata.name}}}}"
    slack:
      attachments: |
        [{{"title": "{{{{.app.metadata.name}}}}", "color": "{{{{if eq .app.status.health.status "Healthy"}}}}good{{{{else}}}}danger{{{{end}}}}"}}]
    github:
      repoURLPath: https://github.com/example/guestbook
      revisionPath: "{{{{.app.status.sync.revision}}}}"
      status:
        state: success
        label: "continuous-delivery/{{{{.app.metadata.name}}}}"
        targetURL: "{{{{.context.argocdUrl}}}}/applications/{{{{.app.metadata.name}}}}"
  subscriptions: |
    - recipients: [audit:log]
      triggers: [on-deleted]
      selector: team=web
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-notifications-secret
  namespace: argocd
stringData:
  slack-token: xoxb-test
  github-key: |
{indented_key}"#
    );
    env.apply(&config);
    let repo = new_repo(
        env.dir.path(),
        &[("app/config.yaml", &configmap("config", ""))],
    );
    let names: Vec<String> = (0..CONFIGURED_APPS)
        .map(|i| format!("configured-{i}"))
        .collect();
    for name in &names {
        let yaml = application(name, &repo, "app", name, AUTOMATED).replace(
            "  namespace: argocd\n",
            &format!(
                "  namespace: argocd\n  labels:\n    team: web\n  annotations:\n    notifications.argoproj.io/subscribe.on-healthy-and-synced.slack: deploys\n    notifications.argoproj.io/subscribe.on-healthy-and-synced.mail: {name}@example.com\n    notifications.argoproj.io/subscribe.on-healthy-and-synced.github: \"\"\n    notifications.argoproj.io/subscribe.on-broken.slack: broken\n    notifications.argoproj.io/subscribe.on-drift-detected.audit: drift\n"
            ),
        );
        env.apply(&yaml);
    }
    let requests = |path: &str, needle: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|r| r.request_line.contains(path) && r.body.contains(needle))
            .cloned()
            .collect::<Vec<_>>()
    };
    for name in &names {
        let app = env.wait_app(name, "synced", synced_and_healthy).await;
        let revision = status(&app).sync.revision;
        // Slack: the Web API with the bot token, the rendered attachment.
        let slack = env
            .eventually("the Slack message", async || {
                let found = requests("/api/chat.postMessage", &format!("\"title\":\"{name}\""));
                (!found.is_empty()).then_some(found)
            })
            .await;
        assert_eq!(slack.len(), 1, "{slack:?}");
        let body: serde_json::Value = serde_json::from_str(&slack[0].body).unwrap();
        assert_eq!(body["channel"], "deploys");
        assert_eq!(body["attachments"][0]["color"], "good");
        assert_eq!(body["icon_emoji"], ":rocket:");
        assert_eq!(
            body["text"],
            format!("{name} runs {} for https://cd.example.com", &revision[..7])
        );
        assert!(
            slack[0]
                .headers
                .iter()
                .any(|h| h == "authorization: bearer xoxb-test")
        );
        // GitHub: an installation token, then the commit status of the synced revision.
        let status_call = env
            .eventually("the GitHub status", async || {
                let found = requests(
                    &format!("/github/repos/example/guestbook/statuses/{revision}"),
                    &format!("continuous-delivery/{name}"),
                );
                found.into_iter().next()
            })
            .await;
        assert!(
            status_call
                .headers
                .iter()
                .any(|h| h == "authorization: token ghs_installation")
        );
        let body: serde_json::Value = serde_json::from_str(&status_call.body).unwrap();
        assert_eq!(body["state"], "success");
        assert_eq!(
            body["target_url"],
            format!("https://cd.example.com/applications/{name}")
        );
        // Email: a real SMTP server got it.
        env.eventually("the email", async || {
            let mail = smtp.received();
            (mail.contains(&format!("Subject: Released {name}"))
                && mail.contains(&format!("{name}@example.com")))
            .then_some(())
        })
        .await;
    }
    let token_calls = requests("/github/app/installations/678/access_tokens", "");
    assert!(
        token_calls.iter().all(|r| r
            .headers
            .iter()
            .any(|h| h.starts_with("authorization: bearer ey"))),
        "{token_calls:?}"
    );

    // The broken trigger: an Event naming its key; the others kept working (above).
    let events: Api<Event> = Api::namespaced(env.client.clone(), "argocd");
    env.eventually("the configuration event", async || {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("NotificationConfigError")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("trigger.on-broken"))
            })
            .map(|_| ())
    })
    .await;
    assert!(requests("/api/chat.postMessage", "broken").is_empty());

    // Changed by hand under self-heal: put back, and reported as reverted, naming the field
    // and who changed it.
    for name in &names {
        env.change_config_by_hand(name, "by-hand");
    }
    for name in &names {
        let alert = format!(
            "Application {name} was changed outside Git and self-heal reverted it: ConfigMap {name}/config: data.key (by kubectl-patch)"
        );
        env.eventually("the self-heal alert", async || {
            (requests("/audit", &alert).len() == 1).then_some(())
        })
        .await;
        env.eventually("the change reverted", async || {
            let out = env.kubectl(
                &[
                    "-n",
                    name,
                    "get",
                    "configmap",
                    "config",
                    "-o",
                    "jsonpath={.data.key}",
                ],
                None,
            );
            (String::from_utf8_lossy(&out.stdout) != "by-hand").then_some(())
        })
        .await;
    }

    // Deleted: the ConfigMap's subscription (selected by label) reports it.
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "delete",
            "application",
            &names[0],
            "--wait=false",
        ],
        None,
    );
    assert!(out.status.success());
    env.eventually("the deletion notice", async || {
        let found = requests(
            "/audit",
            &format!("Application {} has been deleted.", names[0]),
        );
        (found.len() == 1).then_some(())
    })
    .await;
    // Nothing was sent twice.
    for name in &names {
        assert_eq!(
            requests("/api/chat.postMessage", &format!("\"title\":\"{name}\"")).len(),
            1
        );
    }
}
