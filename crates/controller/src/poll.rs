//! Repository polling: a push reaches the cluster without a webhook.
//!
//! Every `repo_poll` interval, each git repository the apps use is asked once for its refs (one
//! ref advertisement per repository, however many apps use it — shared with any reconcile
//! asking at the same time), and exactly the apps whose target revision now names another
//! commit than the one they were last compared at are refreshed. Argo CD instead refreshes
//! every app every 3 minutes (`timeout.reconciliation`), one `ls-remote` per app.
//!
//! Chart repositories are not polled: their listing is asked for once per refresh interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Instant;

use futures::StreamExt;
use tiphys_model::Application;
use tiphys_model::application::ApplicationSource;
use tiphys_source::find_advertised;

use crate::Controller;
use crate::manifests::access_for;

/// How many repositories are asked at once.
const CONCURRENT_REPOSITORIES: usize = 4;

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

/// Normalised repository URLs, each worked out once per poll: thousands of apps share a
/// few repositories, and normalising every app's URL every few seconds was a visible share of
/// an idle controller's CPU.
#[derive(Default)]
struct Normalized(HashMap<String, String>);

impl Normalized {
    fn of(&mut self, url: &str) -> &str {
        if !self.0.contains_key(url) {
            self.0
                .insert(url.to_string(), tiphys_source::normalize(url));
        }
        &self.0[url]
    }
}

/// Whether a source is a git source the poll asks about.
fn polled(source: &ApplicationSource) -> bool {
    source.chart.is_empty()
        && !source.repo_url.is_empty()
        && !crate::manifests::is_oci_artifact(source)
}

/// Every repository an app that has been compared uses: normalised URL → a URL as written.
fn repositories(
    c: &Controller,
    apps: &[Arc<Application>],
    names: &mut Normalized,
) -> BTreeMap<String, String> {
    let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    let mut by_repo = BTreeMap::new();
    for app in apps {
        // Not compared yet: its first reconcile resolves it anyway.
        let compared = app
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| memory.contains_key(n));
        if app.metadata.deletion_timestamp.is_some() || !compared {
            continue;
        }
        for source in app.sources().into_iter().filter(|s| polled(s)) {
            let key = names.of(&source.repo_url);
            if !by_repo.contains_key(key) {
                by_repo.insert(key.to_string(), source.repo_url.clone());
            }
        }
    }
    by_repo
}

/// The apps a source of which now names another commit than the one it was compared at.
fn moved(
    c: &Controller,
    apps: &[Arc<Application>],
    names: &mut Normalized,
    refs: &HashMap<String, Arc<Vec<tiphys_source::RemoteRef>>>,
) -> Vec<String> {
    let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::new();
    for app in apps {
        let Some(name) = app.metadata.name.as_deref() else {
            continue;
        };
        let Some(m) = memory.get(name) else { continue };
        if app.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let resolved = m.resolved_revisions();
        let changed = app
            .sources()
            .into_iter()
            .zip(resolved)
            .filter(|(source, _)| polled(source))
            .any(|(source, seen)| {
                refs.get(names.of(&source.repo_url))
                    .and_then(|r| find_advertised(r, source.revision()))
                    .is_some_and(|now| now.commit != *seen)
            });
        if changed {
            tracing::debug!(app = name, "revision moved");
            out.push(name.to_string());
        }
    }
    out
}

/// Ask every repository once; refresh the apps whose revision moved.
pub(crate) async fn poll_once(c: &Arc<Controller>) {
    let apps = c.apps.state();
    let mut names = Normalized::default();
    let by_repo = repositories(c, &apps, &mut names);
    if by_repo.is_empty() {
        return;
    }
    let secrets = Arc::new(crate::reconcile::repo_secrets(c));
    let since = Instant::now();
    let refs: HashMap<String, Arc<Vec<tiphys_source::RemoteRef>>> = futures::stream::iter(by_repo)
        .map(|(key, url)| {
            let secrets = secrets.clone();
            async move {
                let repo = c.repo.clone();
                let access = access_for(&url, &secrets);
                let asked = url.clone();
                let refs = tokio::task::spawn_blocking(move || {
                    repo.git.advertised(&asked, &access, since)
                })
                .await;
                match refs {
                    Ok(Ok(refs)) => Some((key, refs)),
                    // The apps' own refreshes report what is wrong with the repository.
                    Ok(Err(e)) => {
                        tracing::debug!(repo = %url, error = %e, "polling the repository failed");
                        None
                    }
                    Err(_) => None,
                }
            }
        })
        .buffer_unordered(CONCURRENT_REPOSITORIES)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    for app in moved(c, &apps, &mut names, &refs) {
        c.refresh_since(&app, false, since);
    }
}
