//! A time-limited pause of auto-sync, end to end against the local cluster and a `tiphys
//! controller` process: `tiphys app pause` from the CLI, a hand-made change that stays while
//! the pause lasts (drift still shown), the heal at the expiry, resume, extension, the limit,
//! Events and metrics — for several apps at once — and an ApplicationSet that leaves the pause
//! of an app it generated alone.

mod common;

use common::cluster::*;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::Api;
use tiphys_model::application::SyncStatusCode;
use tiphys_model::pause::{PAUSED_BY, PAUSED_REASON, PAUSED_UNTIL};

const APPS: usize = 4;

async fn value(env: &Env, namespace: &str) -> Option<String> {
    let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
    configs.get("config").await.ok()?.data?.get("key").cloned()
}

async fn event_reasons(env: &Env, app: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), "argocd");
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(app))
        .filter_map(|e| e.reason)
        .collect()
}

fn paused(app: &tiphys_model::Application) -> bool {
    app.pause().is_some() && !app.auto_sync_enabled()
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_apps_keep_their_drift_until_the_pause_ends_then_heal() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[("app/config.yaml", &configmap("config", ""))],
    );
    let names: Vec<String> = (0..APPS).map(|i| format!("paused-{i}")).collect();
    for name in &names {
        env.apply(&application(name, &repo, "app", name, AUTOMATED));
    }
    for name in &names {
        env.wait_app(name, "synced", synced_and_healthy).await;
    }

    // The incident: pause every app for a short while (as a team would for 2h), then change
    // the cluster by hand.
    let pauses: Vec<_> = names
        .iter()
        .map(|name| {
            let kubeconfig = env.kubeconfig.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_tiphys"))
                    .args([
                        "app",
                        "pause",
                        &name,
                        "--for",
                        "15s",
                        "--reason",
                        "incident 4711",
                        "--kubeconfig",
                    ])
                    .arg(&kubeconfig)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for p in pauses {
        let out = p.join().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("auto-sync paused until") && text.contains("incident 4711"),
            "{text}"
        );
    }
    for name in &names {
        env.change_config_by_hand(name, "changed-during-the-incident");
    }

    // Visible everywhere while it lasts: the object, a condition, the CLI, the metrics; the
    // drift is shown and left alone.
    for name in &names {
        let app = env
            .wait_app(name, "OutOfSync with the pause condition", |a| {
                status(a).sync.status == SyncStatusCode::OutOfSync
                    && condition(a, "AutoSyncPaused").is_some_and(|m| m.contains("incident 4711"))
            })
            .await;
        assert!(paused(&app));
        let annotations = app.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations[PAUSED_REASON], "incident 4711");
        assert!(
            annotations[PAUSED_BY].contains("tiphys CLI"),
            "{annotations:?}"
        );
        assert!(annotations.contains_key(PAUSED_UNTIL));
        assert_eq!(
            value(&env, name).await.as_deref(),
            Some("changed-during-the-incident"),
            "nothing heals a paused app"
        );
    }
    let (ok, list) = env.tiphys_text(&["app", "list"]);
    assert!(
        ok && list.contains("PAUSED-UNTIL") && list.contains("Auto-Prune (paused)"),
        "{list}"
    );
    let (ok, get) = env.tiphys_text(&["app", "get", "paused-0"]);
    assert!(
        ok && get.contains("auto-sync paused until") && get.contains("incident 4711"),
        "{get}"
    );
    let metrics = http_get(&format!("http://127.0.0.1:{}/metrics", env.port)).unwrap_or_default();
    assert!(
        metrics.contains("tiphys_app_auto_sync_paused_until_seconds{")
            && metrics.contains("name=\"paused-1\""),
        "{metrics}"
    );

    // At the expiry auto-sync resumes by itself and heals.
    for name in &names {
        let app = env
            .wait_app(name, "the pause to end and the app to heal", |a| {
                a.pause().is_none() && a.auto_sync_enabled() && synced_and_healthy(a)
            })
            .await;
        assert!(condition(&app, "AutoSyncPaused").is_none());
        assert_eq!(value(&env, name).await.as_deref(), Some("value"));
        let reasons = event_reasons(&env, name).await;
        for reason in ["AutoSyncPaused", "AutoSyncPauseExpired"] {
            assert!(reasons.iter().any(|r| r == reason), "{name}: {reasons:?}");
        }
    }

    // Resume by hand, and a pause moved later.
    let (ok, out) = env.tiphys_text(&[
        "app",
        "pause",
        "paused-0",
        "--for",
        "1h",
        "--reason",
        "db migration",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = env.tiphys_text(&[
        "app",
        "pause",
        "paused-0",
        "--until",
        "2099-01-01T00:00:00Z",
    ]);
    assert!(
        !ok && out.contains("longer than the maximum of 24h"),
        "{out}"
    );
    let (ok, out) = env.tiphys_text(&["app", "pause", "paused-0", "--for", "2h"]);
    assert!(ok, "{out}");
    env.change_config_by_hand("paused-0", "changed-during-the-incident");
    env.wait_app("paused-0", "the drift shown", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let (ok, out) = env.tiphys_text(&["app", "resume", "paused-0"]);
    assert!(ok && out.contains("auto-sync resumed"), "{out}");
    env.wait_app("paused-0", "healed after resume", |a| {
        a.pause().is_none() && synced_and_healthy(a)
    })
    .await;
    assert_eq!(value(&env, "paused-0").await.as_deref(), Some("value"));
    let reasons = event_reasons(&env, "paused-0").await;
    for reason in ["AutoSyncPauseExtended", "AutoSyncResumed"] {
        assert!(reasons.iter().any(|r| r == reason), "{reasons:?}");
    }

    // The limit is configurable; nothing to pause on a manual app; resume of a running app.
    env.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n  tiphys.pause.maxDuration: 30m\n");
    let (ok, out) = env.tiphys_text(&["app", "pause", "paused-1", "--for", "1h"]);
    assert!(
        !ok && out.contains("longer than the maximum of 30m"),
        "{out}"
    );
    env.apply(&application(
        "manual",
        &repo,
        "app",
        "manual",
        "    syncOptions:\n    - CreateNamespace=true\n",
    ));
    let (ok, out) = env.tiphys_text(&["app", "pause", "manual", "--for", "10m"]);
    assert!(!ok && out.contains("nothing to pause"), "{out}");
    let (ok, out) = env.tiphys_text(&["app", "resume", "paused-1"]);
    assert!(!ok && out.contains("is not paused"), "{out}");
    let (ok, out) = env.tiphys_text(&["app", "pause", "paused-1", "--for", "soon"]);
    assert!(!ok && out.contains("--for \"soon\""), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_applicationset_leaves_the_pause_of_an_app_it_generated() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[("app/config.yaml", &configmap("config", ""))],
    );
    let appset = |label: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: team\n  namespace: argocd\nspec:\n  generators:\n  - list:\n      elements:\n      - env: staging\n  template:\n    metadata:\n      name: 'web-{{{{env}}}}'\n      labels:\n        revision: {label}\n    spec:\n      project: default\n      source:\n        repoURL: file://{}\n        targetRevision: HEAD\n        path: app\n      destination:\n        server: https://kubernetes.default.svc\n        namespace: web-staging\n      syncPolicy:\n        automated:\n          selfHeal: true\n        syncOptions:\n        - CreateNamespace=true\n",
            repo.display()
        )
    };
    env.apply(&appset("one"));
    env.wait_app("web-staging", "generated and synced", synced_and_healthy)
        .await;
    let (ok, out) = env.tiphys_text(&[
        "app",
        "pause",
        "web-staging",
        "--for",
        "1h",
        "--reason",
        "hotfix",
    ]);
    assert!(ok, "{out}");
    // The ApplicationSet changes and writes its apps again: the pause stays.
    env.apply(&appset("two"));
    let app = env
        .wait_app("web-staging", "the template's new label", |a| {
            a.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("revision"))
                .map(String::as_str)
                == Some("two")
        })
        .await;
    assert!(paused(&app), "{:?}", app.spec.sync_policy);
    assert_eq!(app.pause().unwrap().reason, "hotfix");
    env.change_config_by_hand("web-staging", "changed-during-the-incident");
    env.wait_app("web-staging", "the drift shown, not healed", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync && paused(a)
    })
    .await;
    assert_eq!(
        value(&env, "web-staging").await.as_deref(),
        Some("changed-during-the-incident")
    );
}
