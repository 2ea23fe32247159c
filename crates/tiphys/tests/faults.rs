//! Faults, each with real parts, each asserting that nothing was lost or done twice: a git
//! server that goes away and comes back, an API server restarted and a controller killed with
//! `kill -9` in the middle of syncing 200 apps with hooks, a damaged cache directory, and a
//! force-push under a running sync.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::*;
use common::examples::{HOOK_EXAMPLES, app, example_repo};
use common::{git, write};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tiphys_model::Application;
use tiphys_model::application::{OperationPhase, SyncStatusCode};

fn uids(configs: &[ConfigMap]) -> BTreeMap<String, String> {
    configs
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.metadata.uid.clone().unwrap_or_default(),
            )
        })
        .filter(|(n, _)| n != "kube-root-ca.crt")
        .collect()
}

async fn config_uids(env: &Env, namespace: &str) -> BTreeMap<String, String> {
    let api = Api::<ConfigMap>::namespaced(env.client.clone(), namespace);
    uids(&api.list(&Default::default()).await.unwrap().items)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_outage_keeps_the_last_state_prunes_nothing_and_recovers() {
    let env = Env::start().await;
    let work = new_repo(
        env.dir.path(),
        &[
            ("app/a.yaml", &configmap("a", "")),
            ("app/b.yaml", &configmap("b", "")),
        ],
    );
    let served = env.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let bare = bare_clone(&work, &served, "repo.git");
    let mut server = GitServer::new(&served);
    let url = server.url("repo.git");
    env.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: repo\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: repository\nstringData:\n  url: {url}\n  username: alice\n  password: s3cret\n"
    ));
    env.apply(&app("outage", &work, "app").replace(&format!("file://{}", work.display()), &url));
    env.wait_app("outage", "synced", |a| {
        status(a).sync.status == SyncStatusCode::Synced
    })
    .await;
    let before = config_uids(&env, "outage").await;
    assert_eq!(before.len(), 2);

    // The server goes away; meanwhile Git moves on (b removed, c added).
    server.stop();
    std::fs::remove_file(work.join("app/b.yaml")).unwrap();
    write(&work, "app/c.yaml", &configmap("c", ""));
    commit(&work, "b out, c in");
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "application",
            "outage",
            "argocd.argoproj.io/refresh=normal",
            "--overwrite",
        ],
        None,
    );
    assert!(out.status.success());
    let down = env
        .wait_app("outage", "a condition naming the outage", |a| {
            condition(a, "ComparisonError").is_some_and(|m| m.contains("unreachable"))
        })
        .await;
    let s = status(&down);
    assert_eq!(s.sync.status, SyncStatusCode::Unknown);
    assert_eq!(s.resources.len(), 2, "the last known resources are kept");
    assert_eq!(
        config_uids(&env, "outage").await,
        before,
        "nothing pruned, nothing recreated"
    );

    // Back: the controller, never restarted, follows Git again.
    server.start();
    let new = head(&work);
    let up = env
        .wait_app("outage", "recovered at the new commit", |a| {
            let s = status(a);
            s.sync.status == SyncStatusCode::Synced
                && s.sync.revision == new
                && condition(a, "ComparisonError").is_none()
        })
        .await;
    assert!(status(&up).conditions.is_empty());
    let after = config_uids(&env, "outage").await;
    assert_eq!(after.get("a"), before.get("a"), "a untouched");
    assert!(!after.contains_key("b"), "b pruned once Git said so");
    assert!(after.contains_key("c"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_restart_and_a_controller_kill_mid_sync_lose_nothing_and_repeat_nothing() {
    let mut env = Env::start_restartable(Duration::from_millis(1500)).await;
    let repo = example_repo(env.dir.path());
    let jobs = record_creations(Api::<Job>::all(env.client.clone()));
    let configs = record_creations(Api::<ConfigMap>::all(env.client.clone()));
    let mut names = Vec::new();
    let mut manifests = Vec::new();
    for example in HOOK_EXAMPLES {
        for copy in 0..50 {
            let name = format!("{example}-{copy}");
            manifests.push(app(&name, &repo, example));
            names.push(name);
        }
    }
    env.apply(&manifests.join("---\n"));
    let apps = env.apps();
    let last_seen = std::cell::Cell::new((usize::MAX, usize::MAX));
    let progress = async || {
        let list = apps.list(&Default::default()).await.ok()?.items;
        let started = list
            .iter()
            .filter(|a| status(a).operation_state.is_some())
            .count();
        let finished = list.iter().filter(|a| done(a)).count();
        // Shown with the failure if a window below is never seen.
        if last_seen.replace((started, finished)) != (started, finished) {
            eprintln!(
                "{} apps: {started} operations started, {finished} finished",
                list.len()
            );
        }
        Some((started, finished))
    };
    // Some operations under way, most not finished: restart the API server.
    env.eventually("operations under way", async || {
        let (started, finished) = progress().await?;
        (started >= 20 && finished < 150).then_some(())
    })
    .await;
    env.restart_cluster().await;
    // A little further on, kill the controller (SIGKILL) and start another.
    env.eventually("more operations under way", async || {
        let (started, finished) = progress().await?;
        (started >= 60 && finished < 180).then_some(())
    })
    .await;
    env.kill_controller();
    env.start_controller().await;

    let all = env
        .wait_all(
            &names,
            "all 200 apps synced",
            Duration::from_secs(300),
            done,
        )
        .await;
    for a in all
        .iter()
        .filter(|a| names.contains(a.metadata.name.as_ref().unwrap()))
    {
        let s = status(a);
        assert_eq!(s.history.len(), 1, "{:?}: one operation", a.metadata.name);
        assert_eq!(
            s.operation_state.as_ref().unwrap().phase,
            OperationPhase::Succeeded
        );
        for r in hook_results(a) {
            assert_eq!(r.hook_phase, "Succeeded", "{:?}: {r:?}", a.metadata.name);
        }
    }
    for (what, seen) in [("Job", &jobs), ("ConfigMap", &configs)] {
        let seen = seen.lock().unwrap();
        let twice: Vec<_> = seen.iter().filter(|(_, uids)| uids.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "{what}s created more than once: {twice:?}"
        );
    }
    let held = held_hooks::<Job>(&env.client).await;
    assert!(held.is_empty(), "Jobs still held: {held:?}");
    let held = held_hooks::<ConfigMap>(&env.client).await;
    assert!(held.is_empty(), "ConfigMaps still held: {held:?}");
}

/// The exported tree of `commit` in the controller's cache.
fn cached_tree(env: &Env, commit: &str) -> std::path::PathBuf {
    env.dir.path().join("cache/trees").join(commit).join("tree")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_cache_is_found_and_repaired_without_pruning() {
    let mut env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[
            ("app/a.yaml", &configmap("a", "")),
            ("app/b.yaml", &configmap("b", "")),
            ("app/c.yaml", &configmap("c", "")),
        ],
    );
    let commit = head(&repo);
    env.apply(&app("cached", &repo, "app"));
    env.wait_app("cached", "synced", done).await;
    let before = config_uids(&env, "cached").await;
    assert_eq!(before.len(), 3);

    // Damaged while the controller is down: a file gone, another truncated.
    env.kill_controller();
    let tree = cached_tree(&env, &commit);
    std::fs::remove_file(tree.join("app/b.yaml")).unwrap();
    std::fs::write(tree.join("app/c.yaml"), "").unwrap();
    env.start_controller().await;
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "application",
            "cached",
            "argocd.argoproj.io/refresh=hard",
            "--overwrite",
        ],
        None,
    );
    assert!(out.status.success());
    env.wait_app("cached", "the refresh done", |a| {
        a.metadata
            .annotations
            .as_ref()
            .is_none_or(|m| !m.contains_key("argocd.argoproj.io/refresh"))
            && status(a).sync.status == SyncStatusCode::Synced
    })
    .await;
    assert_eq!(
        config_uids(&env, "cached").await,
        before,
        "the damage was repaired before anything was compared"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("app/c.yaml")).unwrap(),
        configmap("c", "")
    );

    // Damaged under a running controller: a path vanishes. A render that misses it checks
    // the tree, exports it again and renders again.
    std::fs::remove_dir_all(tree.join("app")).unwrap();
    env.apply(&app("cached-too", &repo, "app"));
    env.wait_app("cached-too", "synced", done).await;
    assert_eq!(config_uids(&env, "cached-too").await.len(), 3);
    assert!(tree.join("app/a.yaml").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_force_push_under_a_running_sync_finishes_the_old_revision_then_syncs_the_new() {
    let env = Env::start_with(Duration::from_secs(3)).await;
    let repo = new_repo(
        env.dir.path(),
        &[
            (
                "app/migrate.yaml",
                &hook(
                    "migrate",
                    "PreSync",
                    "    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n",
                ),
            ),
            (
                "app/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  version: one\n",
            ),
        ],
    );
    let old = head(&repo);
    env.apply(&app("pushed", &repo, "app"));
    env.wait_app("pushed", "the PreSync hook running", |a| {
        hook_results(a)
            .iter()
            .any(|r| r.name == "migrate" && r.hook_phase == "Running")
    })
    .await;
    // Force-push: the commit being synced is rewritten away.
    write(
        &repo,
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  version: two\n",
    );
    git(&repo, &["commit", "-q", "-a", "--amend", "-m", "rewritten"]);
    let new = head(&repo);
    assert_ne!(old, new);
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "application",
            "pushed",
            "argocd.argoproj.io/refresh=normal",
            "--overwrite",
        ],
        None,
    );
    assert!(out.status.success());
    let app: Application = env
        .wait_app("pushed", "synced to the new commit", |a| {
            done(a) && status(a).sync.revision == new && status(a).history.len() == 2
        })
        .await;
    let history = status(&app).history;
    assert_eq!(
        history
            .iter()
            .map(|h| h.revision.clone())
            .collect::<Vec<_>>(),
        [old, new],
        "the running operation finished at its own revision, the next one took the new"
    );
    let config = Api::<ConfigMap>::namespaced(env.client.clone(), "pushed")
        .get("config")
        .await
        .unwrap();
    assert_eq!(config.data.unwrap()["version"], "two");
}
