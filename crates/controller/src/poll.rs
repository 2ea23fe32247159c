//! Repository polling: a push reaches the cluster without a webhook.
//!
//! Every `repo_poll` interval, each git repository the apps use is asked once for its refs (one
//! ref advertisement per repository, however many apps use it — shared with any reconcile
//! asking at the same time), and exactly the apps whose target revision now names another
//! commit than the one they were last compared at are refreshed. Argo CD instead refreshes
//! every app every 3 minutes (`timeout.reconciliation`), one `ls-remote` per app.
//!
//! Chart repositories are not polled: their listing is asked for once per refresh interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use futures::StreamExt;
use tiphys_source::find_advertised;

use crate::Controller;
use crate::manifests::access_for;

/// How many repositories are asked at once.
const CONCURRENT_REPOSITORIES: usize = 4;

/// One source of one app, with the commit it was last compared at.
struct Watched {
    app: String,
    revision: String,
    seen: String,
}

/// Poll until the controller is dropped.
pub(crate) async fn run(controller: Weak<Controller>) {
    let Some(interval) = controller
        .upgrade()
        .map(|c| c.settings.repo_poll)
        .filter(|i| !i.is_zero())
    else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = controller.upgrade() else {
            return;
        };
        poll_once(&c).await;
    }
}

/// The git sources of every app that has been compared, by repository.
fn watched(c: &Controller) -> BTreeMap<String, (String, Vec<Watched>)> {
    let mut by_repo: BTreeMap<String, (String, Vec<Watched>)> = BTreeMap::new();
    let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    for app in c.apps.state() {
        if app.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = app.metadata.name.clone().unwrap_or_default();
        // Not compared yet: its first reconcile resolves it anyway.
        let Some(resolved) = memory.get(&name).map(|m| m.resolved_revisions().to_vec()) else {
            continue;
        };
        for (source, seen) in app.sources().into_iter().zip(&resolved) {
            if !source.chart.is_empty() || source.repo_url.is_empty() {
                continue;
            }
            by_repo
                .entry(tiphys_source::normalize(&source.repo_url))
                .or_insert_with(|| (source.repo_url.clone(), Vec::new()))
                .1
                .push(Watched {
                    app: name.clone(),
                    revision: source.revision().to_string(),
                    seen: seen.clone(),
                });
        }
    }
    by_repo
}

/// Ask every repository once; refresh the apps whose revision moved.
pub(crate) async fn poll_once(c: &Arc<Controller>) {
    let by_repo = watched(c);
    if by_repo.is_empty() {
        return;
    }
    let secrets = Arc::new(crate::reconcile::repo_secrets(c));
    let since = Instant::now();
    futures::stream::iter(by_repo.into_values())
        .for_each_concurrent(CONCURRENT_REPOSITORIES, |(url, apps)| {
            let secrets = secrets.clone();
            async move {
                let repo = c.repo.clone();
                let access = access_for(&url, &secrets);
                let asked = url.clone();
                let refs = tokio::task::spawn_blocking(move || {
                    repo.git.advertised(&asked, &access, since)
                })
                .await;
                let refs = match refs {
                    Ok(Ok(refs)) => refs,
                    // The apps' own refreshes report what is wrong with the repository.
                    Ok(Err(e)) => {
                        tracing::debug!(repo = %url, error = %e, "polling the repository failed");
                        return;
                    }
                    Err(_) => return,
                };
                for w in apps {
                    if let Some(now) = find_advertised(&refs, &w.revision)
                        && now.commit != w.seen
                    {
                        tracing::debug!(app = %w.app, repo = %url, revision = %w.revision,
                            commit = %now.commit, "revision moved");
                        c.refresh_since(&w.app, false, since);
                    }
                }
            }
        })
        .await;
}
