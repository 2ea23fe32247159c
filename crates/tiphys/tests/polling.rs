//! Repository polling end to end: with no webhook and an hour-long refresh interval, a push
//! reaches the cluster because each repository is asked for its refs every second — and only
//! the apps of the repository that moved are refreshed.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::*;
use common::{git, write};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

const REPOS: usize = 3;
const APPS_PER_REPO: usize = 8;

fn config(i: usize, greeting: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  greeting: {greeting}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_found_by_polling_and_refreshes_only_the_apps_of_that_repository() {
    let mut env = Env::without_controller(Duration::from_millis(50)).await;
    env.repo_poll = 1;
    let mut repos = Vec::new();
    let mut names = Vec::new();
    for r in 0..REPOS {
        let root = env.dir.path().join(format!("r{r}"));
        let files: Vec<(String, String)> = (0..APPS_PER_REPO)
            .map(|a| {
                let i = r * APPS_PER_REPO + a;
                (format!("apps/app-{i}/cm.yaml"), config(i, "hello"))
            })
            .collect();
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let repo = new_repo(&root, &files);
        for a in 0..APPS_PER_REPO {
            let i = r * APPS_PER_REPO + a;
            let name = format!("poll-{i}");
            env.apply(&application(
                &name,
                &repo,
                &format!("apps/app-{i}"),
                &name,
                "    automated: {prune: true}\n    syncOptions: [CreateNamespace=true]\n",
            ));
            names.push(name);
        }
        repos.push(repo);
    }
    env.start_controller().await;
    env.wait_all(&names, "synced", WAIT, synced_and_healthy)
        .await;

    let versions = |apps: &[tiphys_model::Application]| -> BTreeMap<String, String> {
        apps.iter()
            .map(|a| {
                (
                    a.metadata.name.clone().unwrap_or_default(),
                    a.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let before = versions(&env.apps().list(&Default::default()).await.unwrap().items);

    // Two pushes to two repositories; the third stays where it was.
    let changed = [1usize, 2 * APPS_PER_REPO - 1];
    for &i in &changed {
        let repo = &repos[i / APPS_PER_REPO];
        write(repo, &format!("apps/app-{i}/cm.yaml"), &config(i, "pushed"));
        git(repo, &["commit", "-q", "-am", "push"]);
    }
    for &i in &changed {
        let configs: Api<ConfigMap> = Api::namespaced(env.client.clone(), &format!("poll-{i}"));
        env.eventually(&format!("config-{i} updated by the push"), async || {
            let cm = configs.get_opt(&format!("config-{i}")).await.ok()??;
            (cm.data?.get("greeting")? == "pushed").then_some(())
        })
        .await;
    }
    // Every app of a repository that moved was compared at its new commit.
    for (r, repo) in repos.iter().enumerate().take(2) {
        let commit = head(repo);
        let of_repo: Vec<String> = (0..APPS_PER_REPO)
            .map(|a| format!("poll-{}", r * APPS_PER_REPO + a))
            .collect();
        env.wait_all(&of_repo, "at the pushed commit", WAIT, |a| {
            synced_and_healthy(a) && status(a).sync.revision == commit
        })
        .await;
    }
    // The third repository's apps were not touched: no refresh, no write.
    let after = versions(&env.apps().list(&Default::default()).await.unwrap().items);
    for a in 0..APPS_PER_REPO {
        let name = format!("poll-{}", 2 * APPS_PER_REPO + a);
        assert_eq!(before.get(&name), after.get(&name), "{name} was written");
    }
    // The requests were counted, per repository.
    let metrics = http_get(&format!("http://127.0.0.1:{}/metrics", env.port)).unwrap_or_default();
    for repo in &repos {
        let line = format!(
            "argocd_git_request_total{{repo=\"file://{}\",request_type=\"ls-remote\"}}",
            repo.display()
        );
        assert!(metrics.contains(&line), "{line} missing in:\n{metrics}");
    }
}
