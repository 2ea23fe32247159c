//! The controller's side of notifications; what to send is decided by `tiphys-notify` from
//! argocd-notifications-cm. Here: the configuration parsed once per version of the ConfigMap
//! and Secret, each Application looked at when it changes (and when it is deleted, for
//! `on-deleted`), Tiphys's `drift` and `pause` facts handed to the triggers, the sent state
//! written before sending (guarded by the version read, so two looks never both send), and
//! the sending done off the async workers, several at once — a slow service holds up neither
//! reconciles nor other notifications. What is wrong with the configuration, a template or a
//! service is a Warning Event on the app naming it, once per distinct problem.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tiphys_model::Application;
use tiphys_notify::{Config, NOTIFIED, Subject};

use crate::Controller;
use crate::drift::DriftReport;

pub use tiphys_notify::{NOTIFICATIONS_CM, NOTIFICATIONS_SECRET};

/// How many notifications are on their way at once.
const SENDING_AT_ONCE: usize = 8;

/// What wakes the notifier.
#[derive(Debug)]
pub enum Wake {
    /// This app changed: the store has it as it is now.
    App(String),
    /// This app was deleted, as it last was (the store no longer has it).
    Deleted(Arc<Application>),
    /// The configuration changed: look at every app.
    All,
}

/// The notifier's own writes of the sent state, told apart from every other change of an
/// Application: they need no reconcile and no second look. A write is announced with the text
/// it writes before it is made; the first version of the app carrying that text is the write
/// (it is guarded by the version read, so it changes nothing else).
#[derive(Clone, Default)]
pub struct OwnWrites(Arc<Mutex<HashMap<String, String>>>);

impl OwnWrites {
    fn expect(&self, app: &str, text: &str) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(app.to_string(), text.to_string());
    }

    fn forget(&self, app: &str) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(app);
    }

    /// True (once) for the version of `app` the notifier's write made.
    pub fn is_ours(&self, app: &Application) -> bool {
        let Some(name) = app.metadata.name.as_deref() else {
            return false;
        };
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let carried = app
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NOTIFIED));
        if pending.get(name).is_some_and(|text| Some(text) == carried) {
            pending.remove(name);
            return true;
        }
        false
    }
}

/// The notifier's memory.
/// An app's source details, or why they could not be read, and the sources and revisions
/// they were read for.
type ReadDetails = (String, Result<Value, String>);

pub struct Notifier {
    pub own_writes: OwnWrites,
    config: Mutex<Option<(String, Arc<Config>)>>,
    drift: Mutex<HashMap<String, DriftReport>>,
    /// The problems last reported on each app, so an Event is not repeated.
    reported: Mutex<HashMap<String, String>>,
    /// What each app was last looked at with (its version, its drift, the configuration), so
    /// the same thing is not evaluated twice.
    evaluated: Mutex<HashMap<String, String>>,
    /// Each AppProject as JSON, by name, with the version it was made from: a project is
    /// shared by many apps, and serialising it for every look was a good part of a look.
    projects: Mutex<HashMap<String, (String, Arc<Value>)>>,
    /// Each app's source details (`GetAppDetails`), with what they were read for.
    details: Mutex<HashMap<String, ReadDetails>>,
    sending: Arc<tokio::sync::Semaphore>,
}

impl Notifier {
    pub fn new(own_writes: OwnWrites) -> Self {
        Notifier {
            own_writes,
            config: Mutex::default(),
            drift: Mutex::default(),
            reported: Mutex::default(),
            evaluated: Mutex::default(),
            projects: Mutex::default(),
            details: Mutex::default(),
            sending: Arc::new(tokio::sync::Semaphore::new(SENDING_AT_ONCE)),
        }
    }
}

fn version(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}@{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.resource_version.as_deref().unwrap_or_default()
    )
}

impl Notifier {
    /// The configuration for this version of the ConfigMap and Secret, parsed once.
    pub fn config(&self, cm: Option<&ConfigMap>, secret: Option<&Secret>) -> Arc<Config> {
        let key = format!(
            "{}/{}",
            cm.map(|c| version(&c.metadata)).unwrap_or_default(),
            secret.map(|s| version(&s.metadata)).unwrap_or_default()
        );
        let mut cached = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, config)) = cached.as_ref()
            && *k == key
        {
            return config.clone();
        }
        let data = cm.and_then(|c| c.data.clone()).unwrap_or_default();
        let secret_data: BTreeMap<String, Vec<u8>> = secret
            .and_then(|s| s.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let config = Arc::new(Config::read(&data, &secret_data));
        for problem in &config.problems {
            tracing::warn!(%problem, "notification configuration");
        }
        *cached = Some((key, config.clone()));
        config
    }

    /// `project` as JSON, serialised once per version.
    fn project_json(&self, project: Option<&tiphys_model::AppProject>) -> Arc<Value> {
        let Some(project) = project else {
            return Arc::new(Value::Null);
        };
        let name = project.metadata.name.clone().unwrap_or_default();
        let version = version(&project.metadata);
        let mut cached = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, json)) = cached.get(&name)
            && *v == version
        {
            return json.clone();
        }
        let json = Arc::new(serde_json::to_value(project).unwrap_or(Value::Null));
        cached.insert(name, (version, json.clone()));
        json
    }

    /// Remember `app`'s drift; true when that is news (a new report, or the drift ended).
    pub fn set_drift(&self, app: &str, report: Option<DriftReport>) -> bool {
        let mut drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        match report {
            // The same drift again is kept as first reported (with its managers, which only
            // a new report reads).
            Some(r) if drift.get(app).is_some_and(|old| old.id == r.id) => false,
            Some(r) => {
                drift.insert(app.to_string(), r);
                true
            }
            // A reverted drift stays reported: the app is back in sync by the time it is read.
            None => drift.get(app).is_some_and(|r| !r.reverted) && drift.remove(app).is_some(),
        }
    }

    /// Whether the drift `id` is what `app` already has reported.
    pub fn knows_drift(&self, app: &str, id: &str) -> bool {
        let drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        drift.get(app).is_some_and(|r| r.id == id)
    }

    fn drift_of(&self, app: &str) -> Option<DriftReport> {
        let drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        drift.get(app).cloned()
    }

    /// True when `app` was already looked at with exactly `inputs`.
    fn seen(&self, app: &str, inputs: String) -> bool {
        let mut evaluated = self.evaluated.lock().unwrap_or_else(|p| p.into_inner());
        if evaluated.get(app) == Some(&inputs) {
            return true;
        }
        evaluated.insert(app.to_string(), inputs);
        false
    }

    /// Forget a deleted app.
    pub fn forget(&self, app: &str) {
        let lock = |m: &Mutex<HashMap<String, String>>| {
            m.lock().unwrap_or_else(|p| p.into_inner()).remove(app);
        };
        lock(&self.evaluated);
        lock(&self.reported);
        let mut details = self.details.lock().unwrap_or_else(|p| p.into_inner());
        details.remove(app);
        drop(details);
        let mut drift = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        drift.remove(app);
    }

    /// The source details remembered for `app`, when they were read for `key`.
    fn details_of(&self, app: &str, key: &str) -> Option<Result<Value, String>> {
        let details = self.details.lock().unwrap_or_else(|p| p.into_inner());
        details
            .get(app)
            .filter(|(k, _)| k == key)
            .map(|(_, d)| d.clone())
    }

    fn remember_details(&self, app: &str, key: String, found: Result<Value, String>) {
        let mut details = self.details.lock().unwrap_or_else(|p| p.into_inner());
        details.insert(app.to_string(), (key, found));
    }

    /// Look at `app` again next time, whatever it looks like.
    fn unsee(&self, app: &str) {
        let mut evaluated = self.evaluated.lock().unwrap_or_else(|p| p.into_inner());
        evaluated.remove(app);
    }

    /// True when `problems` were not the last thing reported for `app`.
    fn news(&self, app: &str, problems: &str) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported.get(app).is_some_and(|p| p == problems) {
            return false;
        }
        reported.insert(app.to_string(), problems.to_string());
        !problems.is_empty()
    }
}

/// The pause of auto-sync as triggers see it (`pause` in conditions and templates).
fn pause_facts(app: &Application, now: Timestamp, limit: Duration) -> Value {
    let Some(pause) = app.pause() else {
        return json!({"paused": false});
    };
    let since = app
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.kind == crate::pause::CONDITION)
        })
        .and_then(|c| c.last_transition_time.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok());
    let paused_seconds = since.map_or(0, |t| now.as_second() - t.as_second());
    json!({
        "paused": true,
        "until": pause.until.to_string(),
        "reason": pause.reason,
        "by": pause.by,
        "since": since.map(|t| t.to_string()),
        "pausedSeconds": paused_seconds,
        "limitSeconds": limit.as_secs(),
        "limit": tiphys_model::pause::human(limit.as_secs() as i64),
        "description": crate::pause::describe(&pause),
    })
}

/// The commits an app is at or was last at — synced, compared, last deployed — each with
/// the repository of its source (a single revision belongs to the first source).
fn revisions_of(app: &Application) -> Vec<(String, String)> {
    let sources = app.sources();
    let mut found: Vec<(String, String)> = Vec::new();
    let mut add = |single: &str, many: &[String]| {
        let candidates = many
            .iter()
            .map(String::as_str)
            .zip(sources.iter().copied())
            .chain(sources.first().map(|s| (single, *s)));
        for (revision, source) in candidates {
            let commit = revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit());
            let pair = (source.repo_url.clone(), revision.to_string());
            if commit && !found.contains(&pair) {
                found.push(pair);
            }
        }
    };
    if let Some(status) = &app.status {
        add(&status.sync.revision, &status.sync.revisions);
        if let Some(result) = status
            .operation_state
            .as_ref()
            .and_then(|o| o.sync_result.as_ref())
        {
            add(&result.revision, &result.revisions);
        }
        if let Some(last) = status.history.last() {
            add(&last.revision, &last.revisions);
        }
    }
    found
}

/// What `call .repo.GetCommitMetadata SHA` answers for the app's revisions (a commit that
/// cannot be read is left out: the template's call then names it).
async fn commit_metadata(c: &Arc<Controller>, app: &Application) -> Value {
    let wanted = revisions_of(app);
    if wanted.is_empty() {
        return json!({});
    }
    let secrets = crate::reconcile::repo_secrets(c);
    let repo = c.repo.clone();
    // Tags come from an advertisement as old as the polling interval, shared with the poll.
    let since = std::time::Instant::now()
        .checked_sub(c.settings.repo_poll)
        .unwrap_or_else(std::time::Instant::now);
    let found = tokio::task::spawn_blocking(move || {
        let mut out = serde_json::Map::new();
        for (url, sha) in wanted {
            let access = crate::manifests::access_for(&url, &secrets);
            match repo.git.commit_metadata_since(&url, &sha, &access, since) {
                Ok(m) => {
                    let date = crate::manifests::commit_date(&m);
                    out.insert(
                        sha,
                        tiphys_notify::template::commit_metadata(
                            &m.message, &m.author, &date, &m.tags,
                        ),
                    );
                }
                Err(e) => tracing::debug!(repo = %url, %sha, error = %e, "commit metadata"),
            }
        }
        Value::Object(out)
    })
    .await;
    found.unwrap_or(Value::Null)
}

/// What `GetAppDetails` answers: the details of the app's source at the revisions it was last
/// compared at, remembered per app until the source or those revisions change.
async fn app_details(c: &Arc<Controller>, app: &Application) -> Result<Value, String> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let sources: Vec<_> = app.sources().into_iter().cloned().collect();
    let sync = app.status.as_ref().map(|s| &s.sync);
    let revisions = match sync {
        Some(s) if !s.revisions.is_empty() => s.revisions.clone(),
        Some(s) if !s.revision.is_empty() => vec![s.revision.clone()],
        _ => {
            return Err(
                "the application has not been compared with its source yet (no revision)".into(),
            );
        }
    };
    let key = format!(
        "{}|{}",
        serde_json::to_string(&sources).unwrap_or_default(),
        revisions.join(",")
    );
    if let Some(found) = c.notifier.details_of(&name, &key) {
        return found;
    }
    let dest = &app.spec.destination;
    let capabilities = match c
        .clusters
        .find(dest, &crate::reconcile::cluster_secrets(c))
        .await
    {
        Ok(cluster) => cluster.resolver.capabilities().await.ok(),
        Err(_) => None,
    };
    let settings = crate::manifests::RenderSettings {
        kustomize: crate::settings::kustomize_build_options(
            crate::reconcile::argocd_cm(c).as_deref(),
        )
        .unwrap_or_default(),
        capabilities,
    };
    let secrets = crate::reconcile::repo_secrets(c);
    let repo = c.repo.clone();
    let (app_name, namespace) = (name.clone(), dest.namespace.clone());
    let found = tokio::task::spawn_blocking(move || {
        repo.app_details(
            &app_name, &namespace, &sources, None, &revisions, &secrets, &settings,
        )
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()))
    .map(|d| serde_json::to_value(d).unwrap_or_default());
    c.notifier.remember_details(&name, key, found.clone());
    found
}

/// Look at `app` (deleted: no longer in the store) and send what is due.
pub async fn evaluate(c: &Arc<Controller>, app: &Application, deleted: bool) {
    let ns = &c.settings.namespace;
    let cm = c
        .notify_configs
        .get(&ObjectRef::new(NOTIFICATIONS_CM).within(ns));
    let secret = c
        .notify_secrets
        .get(&ObjectRef::new(NOTIFICATIONS_SECRET).within(ns));
    let config = c.notifier.config(cm.as_deref(), secret.as_deref());
    let empty = BTreeMap::new();
    let annotations = app.metadata.annotations.as_ref().unwrap_or(&empty);
    let project_name = if app.spec.project.is_empty() {
        "default"
    } else {
        app.spec.project.as_str()
    };
    let project = c.projects.get(&ObjectRef::new(project_name).within(ns));
    let project_annotations = project
        .as_ref()
        .and_then(|p| p.metadata.annotations.clone())
        .unwrap_or_default();
    if config.subscriptions.is_empty()
        && !tiphys_notify::subscription::any_in(annotations)
        && !tiphys_notify::subscription::any_in(&project_annotations)
    {
        return;
    }
    let name = app.metadata.name.clone().unwrap_or_default();
    let drift = c.notifier.drift_of(&name);
    let now = Timestamp::now();
    let mut app_json = serde_json::to_value(app).unwrap_or(Value::Null);
    if deleted && app_json["metadata"]["deletionTimestamp"].is_null() {
        app_json["metadata"]["deletionTimestamp"] = json!(crate::reconcile::now());
    }
    let project_json = c.notifier.project_json(project.as_deref());
    let mut subject = Subject {
        app: &app_json,
        labels: app.metadata.labels.as_ref().unwrap_or(&empty),
        annotations,
        project_annotations: &project_annotations,
        project: &project_json,
        drift: drift.map_or_else(
            || json!({"detected": false}),
            |d| serde_json::to_value(d).unwrap_or_default(),
        ),
        pause: pause_facts(app, now, config.paused_too_long),
        lookups: Default::default(),
        now: now.as_second(),
    };
    // Skipped when nothing a condition reads has changed since the last look (most status
    // writes: reconciledAt, resources, a step of an operation already reported).
    let inputs = match tiphys_notify::digest(&config, &subject) {
        Some(digest) => format!("{digest:x}|{:p}", Arc::as_ptr(&config)),
        None => format!(
            "{}|{:p}",
            app.metadata.resource_version.as_deref().unwrap_or_default(),
            Arc::as_ptr(&config)
        ),
    };
    if !deleted && c.notifier.seen(&name, inputs) {
        return;
    }
    // Looked up only for a look that is not skipped, and only when a template asks.
    if config.wants_commit_metadata {
        subject.lookups.commits = commit_metadata(c, app).await;
    }
    if config.wants_app_details {
        subject.lookups.app_details = Some(app_details(c, app).await);
    }
    let plan = tiphys_notify::plan(&config, &subject);
    let mut problems: Vec<String> = config.problems.iter().map(ToString::to_string).collect();
    problems.extend(plan.problems.iter().cloned());
    let problems = problems.join("; ");
    if c.notifier.news(&name, &problems) {
        tracing::warn!(app = %name, %problems, "notifications");
        c.events
            .record(app, true, "NotificationConfigError", &problems);
    }
    let remembered = tiphys_notify::plan::notified(annotations);
    if plan.state != remembered && !deleted {
        let api: Api<Application> = Api::namespaced(c.client.clone(), ns);
        let text = serde_json::to_string(&plan.state).unwrap_or_default();
        c.notifier.own_writes.expect(&name, &text);
        let patch = json!({"metadata": {"resourceVersion": app.metadata.resource_version, "annotations": {NOTIFIED: text}}});
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            c.notifier.own_writes.forget(&name);
            c.notifier.unsee(&name);
            // Another writer came first: the next look at the app decides again.
            tracing::debug!(app = %name, error = %e, "notification state not written");
            return;
        }
    }
    for outgoing in plan.sends {
        let c = c.clone();
        let config = config.clone();
        let app = app.clone();
        tokio::spawn(async move { deliver(&c, &config, &app, outgoing).await });
    }
}

/// Send one notification; a failure is a Warning Event naming the service and template.
async fn deliver(
    c: &Arc<Controller>,
    config: &Arc<Config>,
    app: &Application,
    outgoing: tiphys_notify::Outgoing,
) {
    let name = app.metadata.name.clone().unwrap_or_default();
    let what = format!(
        "notification {} (trigger {}, template {}) to {} {:?}",
        outgoing.key,
        outgoing.delivery.trigger,
        outgoing.template,
        outgoing.service,
        outgoing.delivery.recipient
    );
    if !config.services.contains_key(&outgoing.service) {
        let message = format!(
            "{what}: no service {:?} in {NOTIFICATIONS_CM} (service.<type>.{0} or service.{0})",
            outgoing.service
        );
        c.events.record(app, true, "NotificationFailed", &message);
        return;
    }
    let Ok(_permit) = c.notifier.sending.clone().acquire_owned().await else {
        return;
    };
    let config = config.clone();
    let service_name = outgoing.service.clone();
    let delivery = outgoing.delivery.clone();
    let sent = tokio::task::spawn_blocking(move || match config.services.get(&service_name) {
        Some(service) => service
            .send(&service_name, &delivery)
            .map_err(|e| e.to_string()),
        None => Ok(()),
    })
    .await;
    match sent {
        Ok(Ok(())) => {
            tracing::info!(app = %name, notification = %outgoing.key, service = %outgoing.service, "notification sent");
        }
        Ok(Err(e)) => {
            let message = format!("{what}: {e}");
            c.events.record(app, true, "NotificationFailed", &message);
        }
        Err(e) => tracing::warn!(app = %name, error = %e, "notification task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_facts_say_how_long() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "annotations": {
                tiphys_model::pause::PAUSED_UNTIL: "2026-12-01T12:00:00Z",
                tiphys_model::pause::PAUSED_REASON: "incident"}},
            "spec": {"destination": {}, "source": {"repoURL": "r"},
                     "syncPolicy": {"automated": {"enabled": false}}},
            "status": {"conditions": [{"type": crate::pause::CONDITION, "message": "",
                                       "lastTransitionTime": "2026-12-01T08:00:00Z"}]}}))
        .unwrap();
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let facts = pause_facts(&app, now, Duration::from_secs(3600));
        assert_eq!(facts["paused"], json!(true));
        assert_eq!(facts["pausedSeconds"], json!(7200));
        assert_eq!(facts["limit"], json!("1h"));
    }

    #[test]
    fn drift_reports_are_news_once() {
        let n = Notifier::new(OwnWrites::default());
        let report = DriftReport {
            detected: true,
            id: "a".into(),
            ..Default::default()
        };
        assert!(n.set_drift("web", Some(report.clone())));
        assert!(!n.set_drift("web", Some(report)));
        assert!(n.set_drift("web", None));
        assert!(!n.set_drift("web", None));
    }
}
