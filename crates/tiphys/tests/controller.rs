//! End to end: the local cluster, `tiphys install`, a `tiphys controller` process and real git
//! repositories. kubectl (an independent client) edits the cluster the way an operator would.

mod common;

use std::time::Duration;

use common::cluster::*;
use common::write;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::application::{HealthStatusCode, OperationPhase, SyncStatusCode};

#[tokio::test(flavor = "multi_thread")]
async fn seed_application_syncs_and_a_webhook_delivers_the_next_commit() {
    let env = Env::start().await;
    let base = "apps/payment-service/base";
    let overlay = "apps/payment-service/overlays/production";
    let repo = new_repo(
        env.dir.path(),
        &[
            (
                &format!("{base}/kustomization.yaml"),
                "resources:\n- deployment.yaml\n",
            ),
            (
                &format!("{base}/deployment.yaml"),
                &deployment("payment-service", 1, ""),
            ),
            (
                &format!("{overlay}/kustomization.yaml"),
                "resources:\n- ../../base\nreplicas:\n- name: payment-service\n  count: 3\n",
            ),
        ],
    );
    env.apply("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: production\n  namespace: argocd\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: 'https://kubernetes.default.svc', namespace: '*'}]\n  clusterResourceWhitelist: [{group: '*', kind: '*'}]\n");
    // The seed's Application, verbatim but for its repoURL.
    let seed = include_str!("../../model/tests/fixtures/seed-application.yaml").replace(
        "https://github.com/myorg/k8s-manifests",
        &format!("file://{}", repo.display()),
    );
    env.apply(&seed);
    let app = env
        .wait_app("payment-service", "Synced and Healthy", synced_and_healthy)
        .await;
    let s = status(&app);
    assert_eq!(
        s.operation_state.as_ref().map(|o| o.phase),
        Some(OperationPhase::Succeeded)
    );
    assert_eq!(s.history.len(), 1);
    assert_eq!(s.source_type, "Kustomize");
    assert_eq!(s.summary.images, vec!["nginx:1.27".to_string()]);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "payments");
    let d = deployments.get("payment-service").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert_eq!(
        d.metadata.annotations.unwrap()["argocd.argoproj.io/tracking-id"],
        "payment-service:apps/Deployment:payments/payment-service"
    );
    let get = env.tiphys(&["app", "get", "payment-service"]);
    let text = String::from_utf8_lossy(&get.stdout);
    assert!(
        text.contains("Synced") && text.contains("Deployment") && text.contains("Healthy"),
        "{text}"
    );
    assert_eq!(
        env.tiphys(&["app", "diff", "payment-service"])
            .status
            .code(),
        Some(0)
    );

    // A new commit, announced by a push webhook: no waiting for the (hour-long) poll.
    write(
        &repo,
        &format!("{overlay}/kustomization.yaml"),
        "resources:\n- ../../base\nreplicas:\n- name: payment-service\n  count: 5\n",
    );
    commit(&repo, "scale to 5");
    let body = format!(
        r#"{{"ref":"refs/heads/main","repository":{{"html_url":"file://{}","default_branch":"main"}},"commits":[]}}"#,
        repo.display()
    );
    let answer = env.webhook(&body);
    assert!(answer.contains("refreshing 1 application"), "{answer}");
    env.eventually("the new commit to reach the cluster", async || {
        let d = deployments.get("payment-service").await.ok()?;
        (d.spec?.replicas == Some(5)).then_some(())
    })
    .await;
    let app = env
        .wait_app("payment-service", "second sync recorded", |a| {
            status(a).history.len() == 2 && synced_and_healthy(a)
        })
        .await;
    assert_ne!(
        status(&app).history[0].revision,
        status(&app).history[1].revision
    );
    let metrics = http_get(&format!("http://127.0.0.1:{}/metrics", env.port)).unwrap();
    assert!(
        metrics.contains("argocd_app_info{name=\"payment-service\""),
        "{metrics}"
    );
    assert!(metrics.contains("sync_status=\"Synced\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn self_heal_reverts_edits_and_prune_follows_git() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[
            ("pruned/config.yaml", &configmap("config", "")),
            ("pruned/extra.yaml", &configmap("extra", "")),
            ("kept/config.yaml", &configmap("kept-config", "")),
            ("kept/extra.yaml", &configmap("kept-extra", "")),
        ],
    );
    env.apply(&application(
        "pruning", &repo, "pruned", "team-a", AUTOMATED,
    ));
    env.apply(&application(
        "no-prune",
        &repo,
        "kept",
        "team-b",
        "    automated:\n      selfHeal: true\n    syncOptions:\n    - CreateNamespace=true\n",
    ));
    env.wait_app("pruning", "synced", synced_and_healthy).await;
    env.wait_app("no-prune", "synced", synced_and_healthy).await;

    // A manual edit with kubectl is reverted by selfHeal.
    let edit = env.kubectl(
        &[
            "-n",
            "team-a",
            "patch",
            "configmap",
            "config",
            "--type=merge",
            "-p",
            r#"{"data":{"key":"hand-edited"}}"#,
        ],
        None,
    );
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-a");
    env.eventually("selfHeal to revert the edit", async || {
        let cm = configs.get("config").await.ok()?;
        (cm.data?.get("key")? == "value").then_some(())
    })
    .await;

    // Files removed from Git: pruned with prune on, left OutOfSync with prune off.
    std::fs::remove_file(repo.join("pruned/extra.yaml")).unwrap();
    std::fs::remove_file(repo.join("kept/extra.yaml")).unwrap();
    commit(&repo, "remove extras");
    for app in ["pruning", "no-prune"] {
        let out = env.kubectl(
            &[
                "-n",
                "argocd",
                "annotate",
                "application",
                app,
                "argocd.argoproj.io/refresh=normal",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.eventually("the removed ConfigMap to be pruned", async || {
        configs.get_opt("extra").await.ok()?.is_none().then_some(())
    })
    .await;
    let kept = env
        .wait_app(
            "no-prune",
            "OutOfSync with a resource requiring pruning",
            |a| {
                status(a).sync.status == SyncStatusCode::OutOfSync
                    && status(a)
                        .resources
                        .iter()
                        .any(|r| r.name == "kept-extra" && r.requires_pruning)
            },
        )
        .await;
    assert!(
        !kept
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("argocd.argoproj.io/refresh")
    );
    let team_b: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-b");
    assert!(
        team_b.get_opt("kept-extra").await.unwrap().is_some(),
        "prune off must keep the object"
    );
    let diff = env.tiphys(&["app", "diff", "no-prune"]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("kept-extra"));
}

#[tokio::test(flavor = "multi_thread")]
async fn waves_and_hooks_run_in_order_and_a_failing_presync_hook_runs_syncfail() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[
            ("ok/migrate.yaml", &hook("migrate", "PreSync", "")),
            (
                "ok/first.yaml",
                &configmap("first", "argocd.argoproj.io/sync-wave: '-1'"),
            ),
            ("ok/web.yaml", &deployment("web", 2, "")),
            (
                "ok/last.yaml",
                &configmap("last", "argocd.argoproj.io/sync-wave: '2'"),
            ),
            (
                "ok/smoke.yaml",
                &hook(
                    "smoke",
                    "PostSync",
                    "    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n",
                ),
            ),
            (
                "bad/migrate.yaml",
                &hook("bad-migrate", "PreSync", "    tiphys.io/simulate: fail\n"),
            ),
            ("bad/cleanup.yaml", &hook("cleanup", "SyncFail", "")),
            ("bad/app.yaml", &configmap("never", "")),
        ],
    );
    let manual = "    syncOptions:\n    - CreateNamespace=true\n";
    env.apply(&application("ordered", &repo, "ok", "ordered", manual));
    env.apply(&application("failing", &repo, "bad", "failing", manual));
    env.wait_app("ordered", "compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let out = env.tiphys(&["app", "sync", "ordered", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "sync: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.log(),
        String::from_utf8_lossy(
            &env.kubectl(
                &[
                    "-n",
                    "argocd",
                    "get",
                    "application",
                    "ordered",
                    "-o",
                    "yaml"
                ],
                None
            )
            .stdout
        )
    );
    let app = env.apps().get("ordered").await.unwrap();
    let results = status(&app)
        .operation_state
        .unwrap()
        .sync_result
        .unwrap()
        .resources;
    let order: Vec<String> = results
        .iter()
        .map(|r| format!("{}:{}", r.sync_phase, r.name))
        .collect();
    assert_eq!(
        order,
        vec![
            "PreSync:migrate",
            "Sync:first",
            "Sync:web",
            "Sync:last",
            "PostSync:smoke"
        ]
    );
    assert!(
        results
            .iter()
            .filter(|r| !r.hook_type.is_empty())
            .all(|r| r.hook_phase == "Succeeded")
    );
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), "ordered");
    // HookSucceeded deleted the PostSync hook; the PreSync hook (BeforeHookCreation) stays.
    env.eventually("the PostSync hook to be deleted", async || {
        jobs.get_opt("smoke").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(jobs.get_opt("migrate").await.unwrap().is_some());

    env.wait_app("failing", "compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let out = env.tiphys(&["app", "sync", "failing", "--timeout", "90"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let app = env.apps().get("failing").await.unwrap();
    let state = status(&app).operation_state.unwrap();
    assert_eq!(state.phase, OperationPhase::Failed);
    assert!(state.message.contains("bad-migrate"), "{}", state.message);
    let results = state.sync_result.unwrap().resources;
    assert!(
        results.iter().any(|r| r.name == "cleanup"
            && r.sync_phase == "SyncFail"
            && r.hook_phase == "Succeeded"),
        "{results:?}"
    );
    assert!(
        !results.iter().any(|r| r.name == "never"),
        "nothing after a failed PreSync hook"
    );
    let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), "failing");
    assert!(configs.get_opt("never").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_never_prunes() {
    let env = Env::start().await;
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\nstringData:\n  password: hunter2\n";
    let repo = new_repo(
        env.dir.path(),
        &[
            ("app/a.yaml", &configmap("a", "")),
            ("app/b.yaml", &configmap("b", "")),
            ("app/leaked.yaml", secret),
        ],
    );
    env.apply(&application("guarded", &repo, "app", "guarded", AUTOMATED));
    let app = env.wait_app("guarded", "synced", synced_and_healthy).await;
    // A Secret with literal data in Git is reported (condition and event).
    assert!(
        condition(&app, "SecretInGitWarning").is_some_and(|m| m.contains("leaked.yaml")),
        "{:?}",
        status(&app).conditions
    );
    let events = env.kubectl(
        &[
            "-n",
            "argocd",
            "get",
            "events",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&events.stdout).contains("SecretInGitWarning"));
    std::fs::remove_file(repo.join("app/leaked.yaml")).unwrap();
    commit(&repo, "stop leaking");
    let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), "guarded");
    let refresh = || {
        let out = env.kubectl(
            &[
                "-n",
                "argocd",
                "annotate",
                "--overwrite",
                "application",
                "guarded",
                "argocd.argoproj.io/refresh=hard",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // An invalid manifest: a ComparisonError naming the file; nothing changes.
    write(
        &repo,
        "app/b.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata: [unclosed\n",
    );
    commit(&repo, "break b.yaml");
    refresh();
    let app = env
        .wait_app("guarded", "a ComparisonError", |a| {
            condition(a, "ComparisonError").is_some()
        })
        .await;
    assert!(
        condition(&app, "ComparisonError")
            .unwrap()
            .contains("b.yaml"),
        "{:?}",
        status(&app).conditions
    );
    assert_eq!(status(&app).sync.status, SyncStatusCode::Unknown);
    assert!(configs.get_opt("b").await.unwrap().is_some());

    // Everything deleted from Git: no auto-sync wipes the app out without allowEmpty.
    std::fs::remove_file(repo.join("app/a.yaml")).unwrap();
    write(&repo, "app/b.yaml", "# nothing here any more\n");
    commit(&repo, "empty the app");
    refresh();
    let app = env
        .wait_app("guarded", "the empty-render guard", |a| {
            condition(a, "SyncError").is_some_and(|m| m.contains("wipe out"))
        })
        .await;
    assert_eq!(status(&app).sync.status, SyncStatusCode::OutOfSync);
    assert!(
        configs.get_opt("a").await.unwrap().is_some()
            && configs.get_opt("b").await.unwrap().is_some()
    );

    // The repository disappears: an error, and still nothing is pruned.
    std::fs::rename(&repo, env.dir.path().join("moved")).unwrap();
    refresh();
    let app = env
        .wait_app("guarded", "an unreachable-repo error", |a| {
            condition(a, "ComparisonError").is_some_and(|m| !m.contains("b.yaml"))
        })
        .await;
    assert!(
        condition(&app, "ComparisonError").unwrap().contains("repo"),
        "{:?}",
        status(&app).conditions
    );
    assert!(
        configs.get_opt("a").await.unwrap().is_some()
            && configs.get_opt("b").await.unwrap().is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_of_apps_cascade_deletion_and_project_violation() {
    let env = Env::start().await;
    let root = env.dir.path().join("workloads");
    let workloads = new_repo(
        &root,
        &[
            ("one/cm.yaml", &configmap("one", "")),
            ("two/cm.yaml", &configmap("two", "")),
        ],
    );
    let child = |name: &str| {
        application(name, &workloads, name, &format!("child-{name}"), AUTOMATED).replace(
            "  namespace: argocd\n",
            "  namespace: argocd\n  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n",
        )
    };
    let parent_repo = new_repo(
        &env.dir.path().join("parent"),
        &[
            ("apps/one.yaml", &child("one")),
            ("apps/two.yaml", &child("two")),
        ],
    );
    env.apply(&application(
        "parent",
        &parent_repo,
        "apps",
        "argocd",
        AUTOMATED,
    ));
    let parent = env
        .wait_app("parent", "children healthy", synced_and_healthy)
        .await;
    assert_eq!(
        status(&parent)
            .resources
            .iter()
            .filter(|r| r.kind == "Application")
            .count(),
        2
    );
    env.wait_app("one", "synced", synced_and_healthy).await;
    let child_configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), "child-one");
    assert!(child_configs.get_opt("one").await.unwrap().is_some());

    // Cascade: deleting a child Application deletes its resources (the parent, with prune on,
    // would re-create the child from Git, so drop it from Git first).
    std::fs::remove_file(parent_repo.join("apps/one.yaml")).unwrap();
    commit(&parent_repo, "retire one");
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "--overwrite",
            "application",
            "parent",
            "argocd.argoproj.io/refresh=normal",
        ],
        None,
    );
    assert!(out.status.success());
    env.eventually("child one and its resources to be deleted", async || {
        let gone = env.apps().get_opt("one").await.ok()?.is_none();
        let cm_gone = child_configs.get_opt("one").await.ok()?.is_none();
        (gone && cm_gone).then_some(())
    })
    .await;
    let out = env.tiphys(&["app", "delete", "two"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A project that does not allow the destination: a clear condition, nothing applied.
    env.apply("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: restricted\n  namespace: argocd\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: 'https://kubernetes.default.svc', namespace: 'allowed'}]\n");
    env.apply(
        &application("violating", &workloads, "two", "forbidden", AUTOMATED)
            .replace("project: default", "project: restricted"),
    );
    let app = env
        .wait_app("violating", "InvalidSpecError", |a| {
            condition(a, "InvalidSpecError").is_some()
        })
        .await;
    assert!(
        condition(&app, "InvalidSpecError")
            .unwrap()
            .contains("restricted"),
        "{:?}",
        status(&app).conditions
    );
    let forbidden: Api<ConfigMap> = Api::namespaced(env.client.clone(), "forbidden");
    assert!(forbidden.get_opt("two").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_cluster_from_a_cluster_secret() {
    let env = Env::start().await;
    let second = LocalCluster::start(Config::default()).await.unwrap();
    let ca = second.ca_pem().expect("https").to_string();
    use base64::Engine;
    let config = serde_json::json!({"bearerToken": second.token(), "tlsClientConfig": {"caData": base64::engine::general_purpose::STANDARD.encode(ca)}});
    env.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: second\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: cluster\nstringData:\n  name: second\n  server: {}\n  config: '{}'\n",
        second.url(),
        config
    ));
    let repo = new_repo(env.dir.path(), &[("app/cm.yaml", &configmap("remote", ""))]);
    env.apply(
        &application("remote", &repo, "app", "far", AUTOMATED).replace(
            "server: https://kubernetes.default.svc",
            &format!("server: {}", second.url()),
        ),
    );
    env.wait_app("remote", "synced to the second cluster", synced_and_healthy)
        .await;
    let kc = kube::config::Kubeconfig::from_yaml(&second.kubeconfig()).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let far: Api<ConfigMap> = Api::namespaced(client, "far");
    assert!(far.get_opt("remote").await.unwrap().is_some());
    let near: Api<ConfigMap> = Api::namespaced(env.client.clone(), "far");
    assert!(near.get_opt("remote").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_controller_killed_mid_sync_finishes_the_operation_after_restart() {
    let mut env = Env::start_with(Duration::from_secs(2)).await;
    let repo = new_repo(
        env.dir.path(),
        &[
            ("app/migrate.yaml", &hook("migrate", "PreSync", "")),
            ("app/web.yaml", &deployment("web", 1, "")),
        ],
    );
    env.apply(&application(
        "resumable",
        &repo,
        "app",
        "resumable",
        AUTOMATED,
    ));
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), "resumable");
    env.wait_app("resumable", "the PreSync hook running", |a| {
        status(a)
            .operation_state
            .and_then(|o| o.sync_result)
            .is_some_and(|r| {
                r.resources
                    .iter()
                    .any(|x| x.name == "migrate" && x.hook_phase == "Running")
            })
    })
    .await;
    let uid = jobs.get("migrate").await.unwrap().metadata.uid;
    env.kill_controller();
    env.start_controller().await;
    let app = env
        .wait_app("resumable", "the operation to finish", |a| {
            synced_and_healthy(a)
                && status(a)
                    .operation_state
                    .is_some_and(|o| o.phase == OperationPhase::Succeeded)
        })
        .await;
    assert_eq!(
        jobs.get("migrate").await.unwrap().metadata.uid,
        uid,
        "the hook ran once"
    );
    assert_eq!(status(&app).history.len(), 1);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "resumable");
    assert!(deployments.get_opt("web").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_and_its_resources_in_one_app_with_a_lua_health_check() {
    let env = Env::start().await;
    env.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n  resource.customizations.health.example.com_Widget: |\n    hs = {status = \"Healthy\", message = \"widget ok\"}\n    if obj.spec.broken then\n      hs.status = \"Degraded\"\n      hs.message = \"widget \" .. obj.metadata.name .. \" is broken\"\n    end\n    return hs\n");
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            x-kubernetes-preserve-unknown-fields: true\n";
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\n  annotations:\n    argocd.argoproj.io/sync-wave: '1'\nspec:\n  broken: true\n";
    let repo = new_repo(
        env.dir.path(),
        &[("app/crd.yaml", crd), ("app/widget.yaml", widget)],
    );
    env.apply(&application("widgets", &repo, "app", "widgets", AUTOMATED));
    let app = env
        .wait_app("widgets", "synced with the script's verdict", |a| {
            status(a).sync.status == SyncStatusCode::Synced
                && status(a).health.status == HealthStatusCode::Degraded
        })
        .await;
    assert_eq!(status(&app).health.message, "widget gear is broken");
    let widget = status(&app)
        .resources
        .into_iter()
        .find(|r| r.kind == "Widget")
        .unwrap();
    assert_eq!(widget.group, "example.com");
}

fn appsets(env: &Env) -> Api<tiphys_model::ApplicationSet> {
    Api::namespaced(env.client.clone(), "argocd")
}

async fn app_names(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = env
        .apps()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_applicationset_creates_six_applications_and_follows_its_policy() {
    let env = Env::start().await;
    let seed = include_str!("../../model/tests/fixtures/seed-applicationset.yaml");
    env.apply(seed);
    let expected = vec![
        "inventory-service-production",
        "inventory-service-staging",
        "order-service-production",
        "order-service-staging",
        "payment-service-production",
        "payment-service-staging",
    ];
    env.eventually("six Applications", async || {
        (app_names(&env).await == expected).then_some(())
    })
    .await;
    let payment = env.apps().get("payment-service-production").await.unwrap();
    assert_eq!(
        payment.spec.source.as_ref().unwrap().path,
        "apps/payment-service/overlays/production"
    );
    assert_eq!(payment.spec.destination.namespace, "production");
    let owner = &payment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ApplicationSet", "microservices", Some(true))
    );
    // The status is written after the Applications: wait for it rather than race it.
    let status = env
        .eventually("the ApplicationSet's status", async || {
            let status = appsets(&env).get("microservices").await.ok()?.status?;
            status
                .conditions
                .iter()
                .any(|c| c.kind == "ResourcesUpToDate" && c.status == "True")
                .then_some(status)
        })
        .await;
    assert_eq!(status.resources.len(), 6);

    // Removing a list element deletes its Applications under the default policy (sync)…
    env.apply(&seed.replace("          - service: inventory-service\n", ""));
    env.eventually("inventory apps deleted", async || {
        (app_names(&env).await.len() == 4).then_some(())
    })
    .await;
    // …and keeps them under create-update.
    let keep = seed
        .replace("name: microservices", "name: kept")
        .replace("'{{service}}-{{env}}'", "'kept-{{service}}-{{env}}'")
        .replace(
            "  template:\n",
            "  syncPolicy:\n    applicationsSync: create-update\n  template:\n",
        );
    env.apply(&keep);
    env.eventually("ten Applications", async || {
        (app_names(&env).await.len() == 10).then_some(())
    })
    .await;
    env.apply(&keep.replace("          - service: order-service\n", ""));
    let set = env
        .eventually("the shrunk set processed", async || {
            let set = appsets(&env).get("kept").await.ok()?;
            (set.status.as_ref()?.resources.len() == 4).then_some(set)
        })
        .await;
    assert_eq!(set.status.unwrap().resources.len(), 4);
    assert!(
        app_names(&env)
            .await
            .contains(&"kept-order-service-staging".to_string()),
        "create-update keeps Applications"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn git_directories_times_clusters_and_a_duplicate_name_error() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[
            ("apps/web/cm.yaml", &configmap("web", "")),
            ("apps/api/cm.yaml", &configmap("api", "")),
            ("apps/old/cm.yaml", &configmap("old", "")),
        ],
    );
    env.apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: edge\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: cluster\n    env: edge\nstringData:\n  name: edge\n  server: https://edge.invalid\n  config: '{}'\n");
    let set = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: matrix\n  namespace: argocd\nspec:\n  generators:\n  - matrix:\n      generators:\n      - git:\n          repoURL: file://{}\n          revision: HEAD\n          directories:\n          - path: apps/*\n          - path: apps/old\n            exclude: true\n      - clusters: {{}}\n  template:\n    metadata:\n      name: '{{{{path.basename}}}}-{{{{name}}}}'\n    spec:\n      project: default\n      source:\n        repoURL: file://{}\n        targetRevision: HEAD\n        path: '{{{{path}}}}'\n      destination:\n        server: '{{{{server}}}}'\n        namespace: '{{{{path.basename}}}}'\n",
        repo.display(),
        repo.display()
    );
    env.apply(&set);
    let expected = vec!["api-edge", "api-in-cluster", "web-edge", "web-in-cluster"];
    env.eventually("four Applications", async || {
        (app_names(&env).await == expected).then_some(())
    })
    .await;
    let web = env.apps().get("web-in-cluster").await.unwrap();
    assert_eq!(web.spec.source.unwrap().path, "apps/web");
    // The in-cluster ones are compared for real (no automated sync in this template).
    env.wait_app("web-in-cluster", "compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
            && status(a).resources.iter().any(|r| r.name == "web")
    })
    .await;

    // A template that makes two Applications one name: an error, nothing changes.
    env.apply(&set.replace("'{{path.basename}}-{{name}}'", "'{{path.basename}}'"));
    let set = env
        .eventually("the error condition", async || {
            let set = appsets(&env).get("matrix").await.ok()?;
            set.status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.kind == "ErrorOccurred" && c.status == "True")
                .cloned()
        })
        .await;
    assert!(set.message.contains("duplicate"), "{}", set.message);
    assert_eq!(app_names(&env).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_and_rollback_to_an_earlier_revision() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[("app/cm.yaml", &configmap("settings", ""))],
    );
    env.apply("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: watched\n  namespace: argocd\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n  clusterResourceWhitelist: [{group: '*', kind: '*'}]\n  orphanedResources: {warn: true}\n");
    env.apply(
        &application(
            "manual",
            &repo,
            "app",
            "manual",
            "    syncOptions:\n    - CreateNamespace=true\n",
        )
        .replace("project: default", "project: watched"),
    );
    env.wait_app("manual", "compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let out = env.tiphys(&["app", "sync", "manual", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write(
        &repo,
        "app/cm.yaml",
        &configmap("settings", "").replace("key: value", "key: second"),
    );
    commit(&repo, "second");
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "--overwrite",
            "application",
            "manual",
            "argocd.argoproj.io/refresh=normal",
        ],
        None,
    );
    assert!(out.status.success());
    env.wait_app("manual", "the new commit compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync && status(a).history.len() == 1
    })
    .await;
    let out = env.tiphys(&["app", "sync", "manual", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An object nobody manages in the app's namespace: an OrphanedResourceWarning.
    let stray = env.kubectl(
        &[
            "-n",
            "manual",
            "create",
            "configmap",
            "stray",
            "--from-literal=a=b",
        ],
        None,
    );
    assert!(
        stray.status.success(),
        "{}",
        String::from_utf8_lossy(&stray.stderr)
    );
    let out = env.kubectl(
        &[
            "-n",
            "argocd",
            "annotate",
            "--overwrite",
            "application",
            "manual",
            "argocd.argoproj.io/refresh=normal",
        ],
        None,
    );
    assert!(out.status.success());
    let app = env
        .wait_app("manual", "an orphaned-resource warning", |a| {
            condition(a, "OrphanedResourceWarning").is_some()
        })
        .await;
    assert_eq!(
        condition(&app, "OrphanedResourceWarning"),
        Some("Application has 1 orphaned resources")
    );
    let history = env.tiphys(&["app", "history", "manual"]);
    let text = String::from_utf8_lossy(&history.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");

    let out = env.tiphys(&["app", "rollback", "manual", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), "manual");
    let cm = configs.get("settings").await.unwrap();
    assert_eq!(
        cm.data.unwrap()["key"],
        "value",
        "rolled back to the first revision"
    );
    let app = env.apps().get("manual").await.unwrap();
    let s = status(&app);
    assert_eq!(s.history.len(), 3);
    assert_eq!(s.history[2].revision, s.history[0].revision);

    // Rollback is refused while automated sync is on, as in Argo CD.
    let patch = env.kubectl(
        &[
            "-n",
            "argocd",
            "patch",
            "application",
            "manual",
            "--type=merge",
            "-p",
            r#"{"spec":{"syncPolicy":{"automated":{"prune":false}}}}"#,
        ],
        None,
    );
    assert!(patch.status.success());
    let refused = env.tiphys(&["app", "rollback", "manual", "0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("auto-sync"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_drift_and_diff_tells_errors_from_differences() {
    let env = Env::start().await;
    let repo = new_repo(
        env.dir.path(),
        &[("app/web.yaml", &deployment("web", 2, ""))],
    );
    let manual = "    syncOptions:\n    - CreateNamespace=true\n";
    env.apply(&application("preview", &repo, "app", "preview", manual));
    env.wait_app("preview", "compared", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let out = env.tiphys(&["app", "sync", "preview", "--timeout", "90"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.tiphys(&["app", "diff", "preview"]);
    assert_eq!(out.status.code(), Some(0), "in sync");

    // Scaled away from Git by hand: a dry run says it would change the Deployment.
    let out = env.kubectl(
        &[
            "-n",
            "preview",
            "scale",
            "deployment",
            "web",
            "--replicas=5",
        ],
        None,
    );
    assert!(out.status.success());
    env.wait_app("preview", "the drift seen", |a| {
        status(a).sync.status == SyncStatusCode::OutOfSync
    })
    .await;
    let out = env.tiphys(&["app", "sync", "preview", "--dry-run", "--timeout", "90"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deployment.apps/web configured (dry run)"),
        "{text}"
    );
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "preview");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5),
        "a dry run changes nothing"
    );
    // diff: 1 for differences, 2 when it cannot tell.
    let out = env.tiphys(&["app", "diff", "preview"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.tiphys(&["app", "diff", "no-such-app"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
