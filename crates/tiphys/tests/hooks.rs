//! Hook-heavy apps, many at once: the shapes of Argo CD's example apps (hooks by name and by
//! `generateName`, Helm hook annotations, waves, ConfigMap hooks, an app of apps) synced on
//! the local cluster by a `tiphys controller` process. Races between status writes, the watch
//! cache and hook cleanup only show in parallel and on repeats, so the second test applies
//! twenty copies of every hook example at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::*;
use common::examples::{HOOK_EXAMPLES, add_app_of_apps, app, example_repo};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tiphys_model::application::OperationPhase;

#[tokio::test(flavor = "multi_thread")]
async fn the_example_apps_sync_with_their_hooks_run_once_and_cleaned_up() {
    let env = Env::start_with(Duration::from_millis(300)).await;
    let repo = example_repo(env.dir.path());
    add_app_of_apps(&repo);
    let mut names: Vec<String> = HOOK_EXAMPLES.iter().map(|s| s.to_string()).collect();
    let manifests: Vec<String> = names
        .iter()
        .map(|n| app(n, &repo, n))
        .chain([app("apps", &repo, "apps")])
        .collect();
    env.apply(&manifests.join("---\n"));
    names.extend(
        ["apps", "guestbook", "kustomize-guestbook", "helm-guestbook"]
            .iter()
            .map(|s| s.to_string()),
    );
    let apps = env
        .wait_all(
            &names,
            "every example app synced",
            Duration::from_secs(120),
            done,
        )
        .await;
    let get = |name: &str| {
        apps.iter()
            .find(|a| a.metadata.name.as_deref() == Some(name))
            .unwrap()
    };

    // pre-post-sync: both hooks ran (in their phases) and were deleted by HookSucceeded.
    let results = hook_results(get("pre-post-sync"));
    let phases: Vec<(String, String, String)> = results
        .iter()
        .map(|r| (r.sync_phase.clone(), r.name.clone(), r.hook_phase.clone()))
        .collect();
    assert_eq!(
        phases,
        [
            (
                "PreSync".into(),
                "pre-post-sync-before".into(),
                "Succeeded".into()
            ),
            (
                "PostSync".into(),
                "pre-post-sync-after".into(),
                "Succeeded".into()
            ),
        ]
    );
    let jobs = |ns: &str| Api::<Job>::namespaced(env.client.clone(), ns);
    env.eventually("the pre-post-sync hooks to be deleted", async || {
        jobs("pre-post-sync")
            .list(&Default::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;

    // sync-waves: generateName hooks got names, were tracked, waited for, and (policy
    // BeforeHookCreation, the default) stay — released of their finalizer.
    let results = hook_results(get("sync-waves"));
    assert_eq!(results.len(), 3, "{results:?}");
    for r in &results {
        assert_eq!(r.hook_phase, "Succeeded", "{r:?}");
        assert!(r.name.len() > r.name.trim_end_matches(char::is_alphanumeric).len());
    }
    let live = jobs("sync-waves").list(&Default::default()).await.unwrap();
    assert_eq!(live.items.len(), 3);
    for job in &live.items {
        assert!(
            job.metadata
                .finalizers
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "{:?} still held",
            job.metadata.name
        );
        let tracking = job
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("argocd.argoproj.io/tracking-id"))
            .unwrap();
        assert!(
            tracking.ends_with(job.metadata.name.as_deref().unwrap()),
            "the tracking id names the generated name: {tracking}"
        );
    }
    // helm-hooks: Helm's pre-install hook ran as PreSync and hook-succeeded deleted it; the
    // misspelt hook annotation of the example is a plain resource, as in Argo CD.
    let results = hook_results(get("helm-hooks"));
    assert!(results.iter().any(|r| r.sync_phase == "PreSync"
        && r.name.starts_with("upgrade-sql-schema")
        && r.hook_phase == "Succeeded"));
    // configmap-hooks: ConfigMap hooks are done once they exist, then deleted.
    let configs = Api::<ConfigMap>::namespaced(env.client.clone(), "configmap-hooks");
    env.eventually("the ConfigMap hooks to be deleted", async || {
        let names: Vec<String> = configs
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        (!names.contains(&"pre".to_string()) && !names.contains(&"post".to_string())).then_some(())
    })
    .await;
    // helm-guestbook: .Capabilities come from the destination, which serves argoproj.io.
    let aware = Api::<ConfigMap>::namespaced(env.client.clone(), "helm-guestbook")
        .get("helm-guestbook-argo-aware")
        .await
        .unwrap();
    assert!(
        aware.data.unwrap()["kube"].starts_with("v1."),
        "the cluster's version"
    );

    // A cascading delete takes the generateName hooks with it.
    let out = env.tiphys(&["app", "delete", "sync-waves", "--wait", "--timeout", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.eventually("the sync-waves hooks to be deleted", async || {
        jobs("sync-waves")
            .list(&Default::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_copies_of_every_hook_example_at_once_all_finish() {
    let env = Env::start_with(Duration::from_millis(200)).await;
    let repo = example_repo(env.dir.path());
    let jobs = record_creations(Api::<Job>::all(env.client.clone()));
    let configs = record_creations(Api::<ConfigMap>::all(env.client.clone()));
    let mut names = Vec::new();
    let mut manifests = Vec::new();
    for example in HOOK_EXAMPLES {
        for copy in 0..20 {
            let name = format!("{example}-{copy}");
            manifests.push(app(&name, &repo, example));
            names.push(name);
        }
    }
    env.apply(&manifests.join("---\n"));
    let apps = env
        .wait_all(&names, "all 80 apps synced", Duration::from_secs(240), done)
        .await;

    // Every operation finished once, and recorded itself once.
    for a in apps
        .iter()
        .filter(|a| names.contains(a.metadata.name.as_ref().unwrap()))
    {
        let s = status(a);
        assert_eq!(s.history.len(), 1, "{:?}", a.metadata.name);
        for r in hook_results(a) {
            assert_eq!(r.hook_phase, "Succeeded", "{:?}: {r:?}", a.metadata.name);
        }
    }
    // No hook object was created twice.
    for (what, seen) in [("Job", &jobs), ("ConfigMap", &configs)] {
        let seen = seen.lock().unwrap();
        let twice: Vec<(&String, &BTreeSet<String>)> =
            seen.iter().filter(|(_, uids)| uids.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "{what}s created more than once: {twice:?}"
        );
    }
    // Generated names differ between apps.
    let generated: Vec<String> = jobs
        .lock()
        .unwrap()
        .keys()
        .filter_map(|k| k.split_once('/').map(|(_, n)| n.to_string()))
        .filter(|n| n.starts_with("upgrade-sql-schema") || n.starts_with("maintenance-page"))
        .collect();
    let distinct: BTreeSet<&String> = generated.iter().collect();
    assert_eq!(distinct.len(), generated.len(), "{generated:?}");
    assert_eq!(
        generated.len(),
        20 * 3 + 20,
        "3 per sync-waves app, 1 per helm-hooks app"
    );
    // Nothing is left holding a hook finalizer.
    let held = held_hooks::<Job>(&env.client).await;
    assert!(held.is_empty(), "{held:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operation_waiting_on_a_hook_that_never_finishes_can_be_terminated() {
    let env = Env::start().await;
    // A suspended Job never finishes on its own.
    let stuck = hook("stuck", "PreSync", "").replacen("spec:\n", "spec:\n  suspend: true\n", 1);
    let repo = new_repo(
        env.dir.path(),
        &[
            ("app/stuck.yaml", &stuck),
            ("app/cm.yaml", &configmap("after", "")),
        ],
    );
    let manual = "    syncOptions:\n    - CreateNamespace=true\n";
    env.apply(&application("waiting", &repo, "app", "waiting", manual));
    let out = env.tiphys(&["app", "terminate-op", "waiting"]);
    assert!(!out.status.success(), "nothing to terminate yet");
    let out = env.tiphys(&["app", "sync", "waiting", "--async"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_app("waiting", "the hook running", |a| {
        hook_results(a)
            .iter()
            .any(|r| r.name == "stuck" && r.hook_phase == "Running")
    })
    .await;
    let out = env.tiphys(&["app", "sync", "waiting", "--async"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another operation is already in progress"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.tiphys(&["app", "terminate-op", "waiting"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = env
        .wait_app("waiting", "the operation terminated", |a| {
            a.operation.is_none()
                && status(a)
                    .operation_state
                    .is_some_and(|o| o.phase == OperationPhase::Failed)
        })
        .await;
    let state = status(&app).operation_state.unwrap();
    assert_eq!(state.message, "Operation terminated");
    let stuck = hook_results(&app)
        .into_iter()
        .find(|r| r.name == "stuck")
        .unwrap();
    assert_eq!(stuck.hook_phase, "Failed");
    let jobs = Api::<Job>::namespaced(env.client.clone(), "waiting");
    env.eventually("the running hook to be deleted", async || {
        jobs.get_opt("stuck").await.ok()?.is_none().then_some(())
    })
    .await;
    let configs = Api::<ConfigMap>::namespaced(env.client.clone(), "waiting");
    assert!(
        configs.get_opt("after").await.unwrap().is_none(),
        "nothing after the PreSync phase ran"
    );
    // The app takes a new operation.
    let out = env.tiphys(&["app", "sync", "waiting", "--async"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
