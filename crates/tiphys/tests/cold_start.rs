//! A cold start the way production has one: many Applications, each its own path in one
//! repository, all created before the controller starts — every reconcile wants the same
//! commit's tree at once. Each must reach Synced with no ComparisonError (a half-exported
//! tree served to some of them showed as "no such directory").
//!
//! `TIPHYS_COLD_START_APPS` sets the count (1,000 by default).

mod common;

use std::time::Duration;

use common::cluster::*;
use tiphys_model::application::SyncStatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn many_apps_created_before_the_controller_all_sync_from_one_tree() {
    let n: usize = std::env::var("TIPHYS_COLD_START_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut env = Env::without_controller(Duration::from_millis(50)).await;
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("apps/a{i}/cm.yaml"),
                configmap(&format!("c{i}"), ""),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let repo = new_repo(env.dir.path(), &refs);
    let names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let manifests: Vec<String> = names
        .iter()
        .map(|name| {
            application(
                name,
                &repo,
                &format!("apps/{name}"),
                "cold",
                "    automated: {}\n    syncOptions:\n    - CreateNamespace=true\n",
            )
        })
        .collect();
    env.apply(&manifests.join("---\n"));
    env.start_controller().await;
    let apps = env
        .wait_all(&names, "every app synced", Duration::from_secs(300), |a| {
            status(a).sync.status == SyncStatusCode::Synced && a.operation.is_none()
        })
        .await;
    for a in apps
        .iter()
        .filter(|a| names.contains(a.metadata.name.as_ref().unwrap()))
    {
        assert!(
            condition(a, "ComparisonError").is_none(),
            "{:?}: {:?}",
            a.metadata.name,
            status(a).conditions
        );
    }
}
