//! Sync windows end to end: an AppProject's deny windows hold auto-sync and manual syncs
//! (the CLI refuses, unless the window allows manual syncs), `tiphys app get` and `tiphys proj
//! windows list` show them, an unreadable window is a condition naming it, and the held apps
//! sync by themselves once the window is gone.

mod common;

use common::cluster::*;
use tiphys_model::application::SyncStatusCode;

fn project(windows: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: prod\n  namespace: argocd\nspec:\n  sourceRepos: ['*']\n  destinations:\n  - server: '*'\n    namespace: '*'\n  syncWindows:\n{windows}"
    )
}

const HOLD: &str = "  - kind: deny\n    schedule: '* * * * *'\n    duration: 1h\n    applications: ['held-*']\n  - kind: deny\n    schedule: '* * * * *'\n    duration: 1h\n    applications: ['manual-*']\n    manualSync: true\n";

fn in_prod(yaml: String) -> String {
    yaml.replace("  project: default\n", "  project: prod\n")
}

/// Reconciled, OutOfSync, and no operation started: auto-sync was held.
fn held(app: &tiphys_model::Application) -> bool {
    let s = status(app);
    s.sync.status == SyncStatusCode::OutOfSync
        && s.reconciled_at.is_some()
        && s.operation_state.is_none()
        && app.operation.is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_windows_hold_syncs_until_they_are_gone() {
    let env = Env::start().await;
    env.apply(&project(HOLD));
    let repo = new_repo(
        env.dir.path(),
        &[("app/config.yaml", &configmap("config", ""))],
    );
    let names = ["held-0", "held-1", "held-2", "manual-0", "free-0"];
    for name in names {
        env.apply(&in_prod(application(name, &repo, "app", name, AUTOMATED)));
    }
    env.wait_app("free-0", "synced (no window applies)", synced_and_healthy)
        .await;
    for name in ["held-0", "held-1", "held-2", "manual-0"] {
        env.wait_app(name, "held by the window", held).await;
    }

    // What the CLI shows and refuses.
    let (ok, get) = env.tiphys_text(&["app", "get", "held-0"]);
    assert!(
        ok && get.contains("Sync Windows:       1 active of 1; sync denied"),
        "{get}"
    );
    let (ok, get) = env.tiphys_text(&["app", "get", "manual-0"]);
    assert!(ok && get.contains("manual sync allowed"), "{get}");
    let (ok, get) = env.tiphys_text(&["app", "get", "free-0"]);
    assert!(ok && get.contains("Sync Windows:       none"), "{get}");
    let (ok, list) = env.tiphys_text(&["proj", "windows", "list", "prod"]);
    assert!(ok, "{list}");
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(
        rows.iter()
            .all(|r| r.contains("Active") && r.contains("deny")),
        "{list}"
    );
    assert!(rows[1].contains("Enabled"), "manualSync shown: {list}");
    let (ok, out) = env.tiphys_text(&["app", "sync", "held-0", "--async"]);
    assert!(
        !ok && out.contains("blocked by an active deny sync window"),
        "{out}"
    );
    // A dry run changes nothing, so no window holds it (this one then fails on its own: the
    // namespace a real sync would create is not there).
    let (_, out) = env.tiphys_text(&["app", "sync", "held-0", "--dry-run"]);
    assert!(!out.contains("cannot sync"), "a dry run is not held: {out}");
    let (ok, out) = env.tiphys_text(&["app", "sync", "manual-0"]);
    assert!(ok, "manualSync lets a person sync: {out}");
    env.wait_app("manual-0", "synced by hand", synced_and_healthy)
        .await;

    // A window that cannot be read: a condition naming it; the others keep working.
    env.apply(&project(&format!(
        "{HOLD}  - kind: allow\n    schedule: 'every tuesday'\n    duration: 1h\n    applications: ['free-*']\n"
    )));
    let app = env
        .wait_app("free-0", "the window error shown", |a| {
            condition(a, "SyncWindowError").is_some()
        })
        .await;
    let message = condition(&app, "SyncWindowError").unwrap();
    assert!(
        message.contains("sync window 2 of project prod") && message.contains("every tuesday"),
        "{message}"
    );

    // The windows go: the held apps sync by themselves, and the error clears.
    env.apply(&project("").replace("syncWindows:\n", "syncWindows: []\n"));
    for name in ["held-0", "held-1", "held-2"] {
        env.wait_app(name, "synced once the window is gone", synced_and_healthy)
            .await;
    }
    env.wait_app("free-0", "the error gone", |a| {
        condition(a, "SyncWindowError").is_none()
    })
    .await;
}
