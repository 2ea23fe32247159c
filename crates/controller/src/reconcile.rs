//! One reconcile of one Application: spec and project checks, revision and render, compare,
//! automation (auto-sync, self-heal), one step of a running operation, status and events.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{Timestamp, Unit};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tiphys_diff::IgnoreRules;
use tiphys_model::application::{
    ApplicationCondition, ApplicationSource, ApplicationStatus, ComparedTo, HealthStatus,
    Operation, OperationInitiator, OperationPhase, ResourceStatus, SyncOperation, SyncStatusCode,
};
use tiphys_model::{AppProject, Application};

use crate::Controller;
use crate::apply::Writer;
use crate::clusters::{ClusterHandle, ClusterSecret};
use crate::compare::{self, Compared, Problem, Subject};
use crate::manifests::{Generated, RenderSettings};
use crate::operation::{self, Effects};
use crate::status;

pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
/// How old `status.reconciledAt` may get before a periodic refresh that found nothing new
/// writes it anyway.
const RECONCILED_AT_MAX_AGE: Duration = Duration::from_secs(30 * 60);
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// What the controller remembers about an app between reconciles (not persisted: everything
/// that must survive a restart lives in the Application's status).
#[derive(Default)]
pub struct AppMemory {
    revisions: Vec<String>,
    /// A hash of the sources the revisions were resolved for.
    resolved_for: u64,
    resolved_at: Option<Instant>,
    next_refresh: Option<Instant>,
    pub refresh_requested: bool,
    /// The newest moment a requested refresh must see the repositories at (a refresh asked
    /// for at T never resolves from a ref advertisement made before T).
    pub refs_since: Option<Instant>,
    pub hard_refresh: bool,
    memo: compare::Memo,
    pub(crate) retry_at: Option<Instant>,
    /// The newest copy of the Application this controller wrote or read.
    pub(crate) freshest: crate::status::Freshest,
}

impl AppMemory {
    /// The revision (commit or chart version) each source was last resolved to.
    pub(crate) fn resolved_revisions(&self) -> &[String] {
        &self.revisions
    }
}

pub fn now() -> String {
    Timestamp::now()
        .round(Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

pub async fn reconcile(c: &Arc<Controller>, name: &str) {
    let Some(mut app) = status::freshest(c, name) else {
        c.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        return;
    };
    // A write computed from a copy that someone else changed meanwhile is refused; the
    // reconcile is then redone from a fresh read (its steps are idempotent).
    for attempt in 0.. {
        let result = if app.metadata.deletion_timestamp.is_some() {
            finalize(c, &app).await
        } else {
            reconcile_app(c, &app).await
        };
        let error = match result {
            Ok(()) => return,
            Err(e) if status::is_conflict(&e) && attempt < 3 => match status::reread(c, name).await
            {
                Ok(Some(fresh)) => {
                    app = fresh;
                    continue;
                }
                Ok(None) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        tracing::warn!(app = name, error = %error, "reconcile failed; retrying");
        c.queue
            .add_at(name, Instant::now() + Duration::from_secs(2));
        return;
    }
}

/// The state an app's reconcile works from once its spec checks out.
pub struct Desired {
    pub cluster: Arc<ClusterHandle>,
    pub generated: Generated,
    pub compared: Compared,
}

/// Resolve, render and compare `app` now (what `tiphys app diff` shows).
pub async fn compare_app(c: &Arc<Controller>, app: &Application) -> Result<Desired, Problem> {
    desired_state(c, app, None, Some(Instant::now())).await
}

fn sources_of(app: &Application) -> Vec<ApplicationSource> {
    app.sources().into_iter().cloned().collect()
}

pub(crate) fn cluster_secrets(c: &Controller) -> Vec<ClusterSecret> {
    c.secrets
        .state()
        .iter()
        .filter_map(|s| ClusterSecret::from_secret(s))
        .collect()
}

pub(crate) fn repo_secrets(
    c: &Controller,
) -> Vec<(
    tiphys_source::credentials::SecretKind,
    tiphys_source::credentials::RepoSecret,
)> {
    c.secrets
        .state()
        .iter()
        .filter_map(|s| {
            let data: std::collections::BTreeMap<String, String> = s
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .chain(
                    s.string_data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                )
                .collect();
            tiphys_source::credentials::RepoSecret::from_secret(
                s.metadata.name.as_deref().unwrap_or_default(),
                s.metadata.labels.as_ref()?,
                &data,
            )
        })
        .collect()
}

fn project_of(c: &Controller, app: &Application) -> Result<Arc<AppProject>, Problem> {
    let name = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    c.projects
        .get(&ObjectRef::new(name).within(&c.settings.namespace))
        .ok_or_else(|| {
            Problem::spec(format!(
                "Application referencing project {name} which does not exist"
            ))
        })
}

/// argocd-cm from the watch cache, if there is one.
pub(crate) fn argocd_cm(c: &Controller) -> Option<Arc<k8s_openapi::api::core::v1::ConfigMap>> {
    c.configs
        .get(&ObjectRef::new(crate::settings::ARGOCD_CM).within(&c.settings.namespace))
}

pub(crate) fn custom_health(c: &Controller) -> tiphys_health::CustomHealth {
    let cm = argocd_cm(c);
    let data = cm.and_then(|c| c.data.clone()).unwrap_or_default();
    tiphys_health::CustomHealth::from_config(&data)
}

fn ignore_rules(c: &Controller, app: &Application) -> Result<IgnoreRules, Problem> {
    let cm = argocd_cm(c);
    crate::settings::ignore_rules(cm.as_deref(), app).map_err(|e| match e {
        crate::settings::IgnoreRulesError::System(_) => Problem::comparison(e.to_string()),
        crate::settings::IgnoreRulesError::Spec(_) => Problem::spec(e.to_string()),
    })
}

/// The app's project and destination cluster, when the app is valid and the project allows
/// its sources and destination.
async fn target_of(
    c: &Arc<Controller>,
    app: &Application,
) -> Result<(Arc<AppProject>, Arc<ClusterHandle>), Problem> {
    let problems = tiphys_model::validate::application(app);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(Problem::spec(list.join("; ")));
    }
    let project = project_of(c, app)?;
    let sources = sources_of(app);
    for s in &sources {
        if !crate::project::source_permitted(&project, &s.repo_url) {
            return Err(Problem::spec(format!(
                "application repo {} is not permitted in project '{}'",
                s.repo_url, app.spec.project
            )));
        }
    }
    let dest = &app.spec.destination;
    let cluster = c
        .clusters
        .find(dest, &cluster_secrets(c))
        .await
        .map_err(|e| {
            Problem::spec(format!(
                "application destination {{{} {}}} is invalid: {e}",
                dest.server, dest.namespace
            ))
        })?;
    if !crate::project::destination_permitted(
        &project,
        &cluster.server,
        &cluster.name,
        &dest.namespace,
    ) {
        return Err(Problem::spec(format!(
            "application destination server '{}' and namespace '{}' do not match any of the allowed destinations in project '{}'",
            cluster.server, dest.namespace, app.spec.project
        )));
    }
    Ok((project, cluster))
}

/// Resolve, render and compare: everything up to the verdict. `refresh`: resolve the
/// revisions again, from ref advertisements started at or after that moment (otherwise the
/// ones resolved last are used, when there are any).
pub(crate) async fn desired_state(
    c: &Arc<Controller>,
    app: &Application,
    pinned: Option<&[String]>,
    refresh: Option<Instant>,
) -> Result<Desired, Problem> {
    let (project, cluster) = target_of(c, app).await?;
    let sources = sources_of(app);
    let dest = &app.spec.destination;
    let name = app.metadata.name.clone().unwrap_or_default();
    let secrets = repo_secrets(c);
    let sources_key = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&sources)
            .unwrap_or_default()
            .hash(&mut hasher);
        hasher.finish()
    };
    let remembered = {
        let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory
            .get(&name)
            .filter(|m| m.resolved_for == sources_key && !m.revisions.is_empty())
            .map(|m| m.revisions.clone())
    };
    let repo = c.repo.clone();
    let revisions = match (pinned, remembered, refresh) {
        (Some(p), _, _) => p.to_vec(),
        (None, Some(r), None) => r,
        (None, _, since) => {
            let started = Instant::now();
            let since = since.unwrap_or(started);
            let (repo2, sources2, secrets2) = (repo.clone(), sources.clone(), secrets.clone());
            let resolved = tokio::task::spawn_blocking(move || {
                sources2
                    .iter()
                    .map(|s| repo2.resolve_since(s, &secrets2, since))
                    .collect::<Result<Vec<String>, _>>()
            })
            .await
            .map_err(|e| Problem::comparison(e.to_string()))?
            .map_err(|e| {
                // Until the source answers again, every reconcile asks it again (and the
                // condition saying why stays).
                c.memory
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(name.clone())
                    .or_default()
                    .refresh_requested = true;
                Problem::comparison(format!("failed to resolve revision: {e}"))
            })?;
            c.metrics
                .git_seconds
                .observe(started.elapsed().as_secs_f64());
            let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
            let m = memory.entry(name.clone()).or_default();
            m.revisions = resolved.clone();
            m.resolved_for = sources_key;
            m.resolved_at = Some(Instant::now());
            resolved
        }
    };
    let started = Instant::now();
    let (app_name, namespace) = (name.clone(), dest.namespace.clone());
    let revisions2 = revisions.clone();
    let settings = RenderSettings {
        kustomize: crate::settings::kustomize_build_options(argocd_cm(c).as_deref())
            .map_err(Problem::comparison)?,
        // Helm's `.Capabilities` are the destination's, as in Argo CD.
        capabilities: Some(cluster.resolver.capabilities().await.map_err(|e| {
            Problem::comparison(format!("reading the destination's API versions: {e}"))
        })?),
    };
    let generated = tokio::task::spawn_blocking(move || {
        repo.generate(
            &app_name,
            &namespace,
            &sources,
            &revisions2,
            &secrets,
            &settings,
        )
    })
    .await
    .map_err(|e| Problem::comparison(e.to_string()))?
    .map_err(|e| Problem::comparison(e.to_string()))?;
    c.metrics
        .render_seconds
        .observe(started.elapsed().as_secs_f64());
    compare_generated(c, app, &project, cluster, generated).await
}

/// Desired objects given with the operation (`sync --local`) instead of rendered from Git,
/// compared the same way; the revisions recorded are those the app was last compared at.
pub(crate) async fn desired_from_local(
    c: &Arc<Controller>,
    app: &Application,
    manifests: Vec<tiphys_render::Manifest>,
    revisions: Vec<String>,
) -> Result<Desired, Problem> {
    let (project, cluster) = target_of(c, app).await?;
    let generated = Generated {
        revisions,
        source_types: Vec::new(),
        manifests,
    };
    compare_generated(c, app, &project, cluster, generated).await
}

/// Compare `generated` with the live state of `cluster`.
async fn compare_generated(
    c: &Arc<Controller>,
    app: &Application,
    project: &Arc<AppProject>,
    cluster: Arc<ClusterHandle>,
    generated: Generated,
) -> Result<Desired, Problem> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let dest = &app.spec.destination;
    let rules = ignore_rules(c, app)?;
    let previous_kinds: Vec<(String, String)> = app
        .status
        .iter()
        .flat_map(|s| &s.resources)
        .map(|r| (r.group.clone(), r.kind.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let health = custom_health(c);
    let subject = Subject {
        health: &health,
        app: &name,
        namespace: &dest.namespace,
        project: Some(project),
        rules: &rules,
        previous_kinds: &previous_kinds,
    };
    let mut memo = {
        let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut memory.entry(name.clone()).or_default().memo)
    };
    let compared = compare::compare(&cluster, &subject, &generated.manifests, &mut memo).await;
    {
        let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.entry(name.clone()).or_default().memo = memo;
    }
    Ok(Desired {
        cluster,
        generated,
        compared: compared?,
    })
}

fn images(items: &[compare::CompareItem]) -> Vec<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if (k == "containers" || k == "initContainers")
                        && let Some(list) = child.as_array()
                    {
                        out.extend(
                            list.iter()
                                .filter_map(|c| c.get("image")?.as_str().map(str::to_string)),
                        );
                    } else {
                        walk(child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for item in items {
        if let Some(live) = &item.live
            && let Some(spec) = live.get("spec")
        {
            walk(spec, &mut out);
        }
    }
    out.into_iter().collect()
}

/// Set `conditions` to `current`, keeping the transition time of unchanged ones.
fn merge_conditions(
    previous: &[ApplicationCondition],
    current: Vec<(String, String)>,
) -> Vec<ApplicationCondition> {
    let mut seen = BTreeSet::new();
    current
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .map(|(kind, message)| {
            let since = previous
                .iter()
                .find(|p| p.kind == kind && p.message == message)
                .and_then(|p| p.last_transition_time.clone())
                .unwrap_or_else(now);
            ApplicationCondition {
                kind,
                message,
                last_transition_time: Some(since),
            }
        })
        .collect()
}

async fn reconcile_app(c: &Arc<Controller>, app: &Application) -> Result<(), kube::Error> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let annotation_refresh = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REFRESH_ANNOTATION))
        .cloned();
    let previous = app.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut effects = Effects::default();

    // The operation first: one not yet recorded as under way is recorded before it does
    // anything; one being terminated, or whose request was removed, is stopped. These writes
    // leave a refresh request for the reconcile they wake.
    match (&app.operation, &previous.operation_state) {
        (Some(op), _) => match operation::under_way(&previous, op) {
            Some(state) if state.phase == OperationPhase::Terminating => {
                let reason = "Operation terminated";
                let stopped = operation::stop(c, app, state, reason, &mut effects).await;
                status.operation_state = Some(stopped);
                let change = OperationChange::Remove;
                return write(c, app, &previous, &status, change, false, effects).await;
            }
            Some(_) => {}
            None => {
                status.operation_state = Some(operation::initial_state(op));
                operation::announce_start(op, &mut effects);
                // Without a revision of its own, its first step syncs the target revision as
                // it is now, not as it was at the last refresh.
                if op.sync.as_ref().is_none_or(|s| s.revision.is_empty()) {
                    c.refresh(&name, false);
                }
                let change = OperationChange::Keep;
                return write(c, app, &previous, &status, change, false, effects).await;
            }
        },
        (None, Some(state))
            if matches!(
                state.phase,
                OperationPhase::Running | OperationPhase::Terminating
            ) =>
        {
            let reason = if state.phase == OperationPhase::Terminating {
                "Operation terminated"
            } else {
                "Operation terminated: its request (.operation) was removed before it finished"
            };
            let stopped = operation::stop(c, app, state, reason, &mut effects).await;
            status.operation_state = Some(stopped);
            let change = OperationChange::Keep;
            return write(c, app, &previous, &status, change, false, effects).await;
        }
        _ => {}
    }

    // A pause of auto-sync that has run out ends here (the write wakes the reconcile that
    // heals); one still running wakes this app again at its end.
    let paused = app.pause();
    match crate::pause::at_expiry(&c.client, app, k8s_openapi::jiff::Timestamp::now()).await {
        Ok(Some(left)) => c.queue.add_at(&name, Instant::now() + left),
        Ok(None) if paused.is_some() => return Ok(()),
        Ok(None) => {}
        Err(crate::pause::PauseFailure::Kube(e)) => return Err(e),
        Err(e) => tracing::debug!(app = %name, error = %e, "pause left as it is"),
    }

    let (refresh, hard, asked) = {
        let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        let m = memory.entry(name.clone()).or_default();
        let asked = m.refresh_requested || annotation_refresh.is_some();
        let periodic = m.next_refresh.is_some_and(|t| Instant::now() >= t);
        let refresh = m.refresh_requested
            || periodic
            || annotation_refresh.is_some()
            || m.resolved_at.is_none();
        let hard = m.hard_refresh || annotation_refresh.as_deref() == Some("hard");
        // How fresh the repositories' answer must be: as fresh as whoever asked for the
        // refresh needs; a refresh nobody asked for (periodic, the first) takes an answer
        // as old as the polling interval, shared with every other app of the repository.
        let requested = m.refs_since.take();
        let since = refresh.then(|| match requested {
            _ if annotation_refresh.is_some() => Instant::now(),
            Some(t) => t,
            None => Instant::now()
                .checked_sub(c.settings.repo_poll)
                .unwrap_or_else(Instant::now),
        });
        m.refresh_requested = false;
        m.hard_refresh = false;
        if refresh {
            let cm = argocd_cm(c);
            let resync = crate::settings::resync(cm.as_deref()).unwrap_or(c.settings.resync);
            let jitter = if c.settings.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_millis(rand::random_range(0..c.settings.jitter.as_millis() as u64))
            };
            m.next_refresh = Some(Instant::now() + resync + jitter);
        }
        (since, hard, asked)
    };
    if hard {
        c.repo.renders.clear();
        c.repo.charts.forget_listings();
    }
    let remove_refresh = annotation_refresh.is_some();
    let desired = desired_state(c, app, None, refresh).await;
    let mut conditions: Vec<(String, String)> = Vec::new();
    if let Some(pause) = &paused {
        conditions.push((
            crate::pause::CONDITION.to_string(),
            crate::pause::describe(pause),
        ));
    }
    let windows =
        crate::windows::evaluate(project_of(c, app).ok().as_deref(), app, Timestamp::now());
    for bad in windows.assigned.iter().filter(|w| w.error.is_some()) {
        conditions.push((
            "SyncWindowError".to_string(),
            format!(
                "sync window {} of project {}: {} (syncs are held until it is fixed)",
                bad.id,
                if app.spec.project.is_empty() {
                    "default"
                } else {
                    &app.spec.project
                },
                bad.error.clone().unwrap_or_default()
            ),
        ));
    }
    let mut change = OperationChange::Keep;
    match &desired {
        Err(problem) => {
            status.sync.status = SyncStatusCode::Unknown;
            conditions.push((problem.kind.to_string(), problem.message.clone()));
            if let Some(op) = &app.operation {
                // The operation cannot proceed without a desired state: fail it, apply nothing.
                let message = format!("{}: {}", problem.kind, problem.message);
                status.operation_state =
                    Some(operation::fail(&previous, op, message, &mut effects));
                change = OperationChange::Remove;
            }
            c.queue
                .add_at(&name, Instant::now() + Duration::from_secs(10));
        }
        Ok(d) => {
            fill_status(&mut status, app, d);
            conditions.extend(d.compared.warnings.iter().cloned());
            match &app.operation {
                None => match note_drift(
                    c,
                    app,
                    &previous,
                    d,
                    auto_sync_decision(c, app, &previous, d, &windows),
                )
                .await
                {
                    AutoSync::No => {}
                    AutoSync::Blocked(why, until) => {
                        tracing::debug!(app = %name, why, "auto-sync held by a sync window");
                        if let Some(at) = until {
                            c.queue.add_at(&name, at);
                        }
                    }
                    AutoSync::Skip(reason) => conditions.push(("SyncError".into(), reason)),
                    AutoSync::Later(at) => c.queue.add_at(&name, at),
                    AutoSync::Sync(op) => {
                        // Requested and recorded as under way in one write; the next
                        // reconcile (woken by that write) takes the first step.
                        operation::announce_auto_sync(&op, &mut effects);
                        status.operation_state = Some(operation::initial_state(&op));
                        change = OperationChange::Set(op);
                    }
                },
                Some(op) => {
                    let done = operation::step(
                        c,
                        app,
                        &previous,
                        &mut status,
                        op,
                        d,
                        &mut conditions,
                        &mut effects,
                    )
                    .await;
                    if done {
                        change = OperationChange::Remove;
                    }
                }
            }
        }
    }
    status.conditions = merge_conditions(&previous.conditions, conditions);
    // `reconciledAt` records a refresh someone asked for, or one that found something new;
    // a periodic refresh that changes nothing writes nothing (at 10,000 apps those writes
    // would be most of the controller's work) unless the recorded time is getting old.
    let changed = status != previous || !matches!(change, OperationChange::Keep);
    let stale = previous
        .reconciled_at
        .as_deref()
        .and_then(parse_time)
        .is_none_or(|t| {
            Timestamp::now().duration_since(t)
                > RECONCILED_AT_MAX_AGE.try_into().unwrap_or_default()
        });
    if refresh.is_some() && (asked || changed || stale) {
        status.reconciled_at = Some(now());
    }
    if status.health.status != previous.health.status {
        status.health.last_transition_time = Some(now());
    }
    write(c, app, &previous, &status, change, remove_refresh, effects).await?;
    if let Some(at) = c
        .memory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name)
        .and_then(|m| m.next_refresh)
    {
        c.queue.add_at(&name, at);
    }
    Ok(())
}

fn fill_status(
    status: &mut tiphys_model::application::ApplicationStatus,
    app: &Application,
    d: &Desired,
) {
    let compared = &d.compared;
    status.resources = compared
        .items
        .iter()
        .filter(|i| !i.hook)
        .map(|i| ResourceStatus {
            group: i.key.group.clone(),
            version: i.version.clone(),
            kind: i.key.kind.clone(),
            namespace: i.key.namespace.clone(),
            name: i.key.name.clone(),
            status: Some(i.status),
            health: i.health.as_ref().map(|h| HealthStatus {
                status: h.status,
                message: h.message.clone(),
                last_transition_time: None,
            }),
            hook: false,
            requires_pruning: i.requires_pruning,
            sync_wave: Some(i.wave),
            requires_deletion_confirmation: false,
        })
        .collect();
    status.sync.status = compared.sync;
    status.sync.revision = d.generated.revisions.first().cloned().unwrap_or_default();
    status.sync.revisions = if app.spec.sources.is_empty() {
        Vec::new()
    } else {
        d.generated.revisions.clone()
    };
    status.sync.compared_to = Some(ComparedTo {
        source: app.spec.source.clone(),
        destination: app.spec.destination.clone(),
        sources: app.spec.sources.clone(),
        ignore_differences: app.spec.ignore_differences.clone(),
    });
    status.health.status = compared.health.status;
    status.health.message = compared.health.message.clone();
    if app.spec.sources.is_empty() {
        status.source_type = d
            .generated
            .source_types
            .first()
            .cloned()
            .unwrap_or_default();
        status.source_types = Vec::new();
    } else {
        status.source_types = d.generated.source_types.clone();
    }
    status.summary.images = images(&compared.items);
    status.controller_namespace = app.metadata.namespace.clone().unwrap_or_default();
}

enum AutoSync {
    No,
    /// A sync window holds it (why; when that may change).
    Blocked(String, Option<Instant>),
    Skip(String),
    Later(Instant),
    Sync(Box<Operation>),
}

fn auto_sync_decision(
    c: &Controller,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    d: &Desired,
    windows: &crate::windows::Windows,
) -> AutoSync {
    let Some(policy) = &app.spec.sync_policy else {
        return AutoSync::No;
    };
    let Some(automated) = &policy.automated else {
        return AutoSync::No;
    };
    if automated.enabled == Some(false) || d.compared.sync != SyncStatusCode::OutOfSync {
        return AutoSync::No;
    }
    let revisions = &d.generated.revisions;
    let revision = revisions.first().cloned().unwrap_or_default();
    // A dry run changed nothing, so it is no attempt to hold against auto-sync.
    if let Some(last) = &previous.operation_state
        && !last.operation.sync.as_ref().is_some_and(|s| s.dry_run)
        && let Some(result) = &last.sync_result
        && (result.revision == revision
            || (!result.revisions.is_empty() && &result.revisions == revisions))
        && result.source == app.spec.source
    {
        match last.phase {
            OperationPhase::Running | OperationPhase::Terminating => return AutoSync::No,
            OperationPhase::Failed | OperationPhase::Error => {
                return AutoSync::Skip(format!(
                    "Skipping auto-sync: failed previous sync attempt to {revision}: {}",
                    last.message
                ));
            }
            OperationPhase::Succeeded => {
                if !automated.self_heal {
                    return AutoSync::No;
                }
                let finished = last.finished_at.as_deref().and_then(parse_time);
                if let Some(finished) = finished {
                    let elapsed = Timestamp::now().duration_since(finished);
                    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
                    if elapsed < c.settings.self_heal_timeout {
                        return AutoSync::Later(
                            Instant::now() + (c.settings.self_heal_timeout - elapsed),
                        );
                    }
                }
            }
        }
    }
    // Sync windows hold auto-sync and self-heal alike; the app is looked at again when a
    // window opens or closes.
    let now = Timestamp::now();
    if let Some(why) = windows.blocked(false) {
        let at = windows.next_change.and_then(|t| {
            let wait = Duration::try_from(t.duration_since(now)).ok()?;
            Some(Instant::now() + wait + Duration::from_secs(1))
        });
        return AutoSync::Blocked(why, at);
    }
    let managed: Vec<&compare::CompareItem> = d.compared.items.iter().filter(|i| !i.hook).collect();
    let desired_count = managed.iter().filter(|i| i.desired.is_some()).count();
    if desired_count == 0 && !managed.is_empty() && !automated.allow_empty {
        return AutoSync::Skip(
            "Skipping sync attempt to {revision}: auto-sync will wipe out all resources"
                .replace("{revision}", &revision),
        );
    }
    let out_of_sync: Vec<&&compare::CompareItem> = managed
        .iter()
        .filter(|i| i.status == SyncStatusCode::OutOfSync && !i.ignore_extraneous)
        .collect();
    if !automated.prune && !out_of_sync.is_empty() && out_of_sync.iter().all(|i| i.requires_pruning)
    {
        return AutoSync::No;
    }
    AutoSync::Sync(Box::new(Operation {
        sync: Some(SyncOperation {
            revision,
            revisions: if app.spec.sources.is_empty() {
                Vec::new()
            } else {
                revisions.clone()
            },
            prune: automated.prune,
            sync_options: policy.sync_options.clone(),
            ..Default::default()
        }),
        initiated_by: Some(OperationInitiator {
            username: String::new(),
            automated: true,
        }),
        info: Vec::new(),
        retry: policy.retry.clone().map(Box::new),
    }))
}

/// Hand the notifier the drift `d` shows, if any: live departing from what the last successful
/// sync deployed (not Git moving ahead), reverted when `decision` is self-heal's sync. While
/// self-heal waits out its back-off, nothing is said yet.
async fn note_drift(
    c: &Arc<Controller>,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    d: &Desired,
    decision: AutoSync,
) -> AutoSync {
    let name = app.metadata.name.clone().unwrap_or_default();
    let revisions = &d.generated.revisions;
    let at_synced_revision = previous
        .operation_state
        .as_ref()
        .filter(|s| {
            s.phase == OperationPhase::Succeeded
                && !s.operation.sync.as_ref().is_some_and(|o| o.dry_run)
        })
        .and_then(|s| s.sync_result.as_ref())
        .is_some_and(|r| {
            revisions.first() == Some(&r.revision)
                || (!r.revisions.is_empty() && &r.revisions == revisions)
        });
    let reverted = match &decision {
        AutoSync::Later(_) => return decision,
        AutoSync::Sync(_) => true,
        _ => false,
    };
    let items = &d.compared.items;
    let own = crate::apply::FIELD_MANAGER;
    let mut report = if d.compared.sync == SyncStatusCode::OutOfSync && at_synced_revision {
        crate::drift::report(items, &HashMap::new(), own, reverted)
    } else {
        None
    };
    // New drift: read the drifted objects whole, for who changed them.
    if let Some(r) = &report
        && !c.notifier.knows_drift(&name, &r.id)
    {
        let writer = Writer {
            cluster: d.cluster.clone(),
            health: custom_health(c),
        };
        let mut full = HashMap::new();
        for item in crate::drift::drifted(items) {
            if let Some(live) = &item.live
                && let Ok(Some(found)) = writer.get(live).await
            {
                full.insert(item.key.clone(), found);
            }
        }
        report = crate::drift::report(items, &full, own, reverted);
    }
    if c.notifier.set_drift(&name, report) {
        let _ = c.notify_wake.send(crate::notify::Wake::App(name.clone()));
    }
    decision
}

/// What a status write does to `.operation`.
pub(crate) enum OperationChange {
    Keep,
    /// Request an operation (auto-sync).
    Set(Box<Operation>),
    /// Drop the finished one.
    Remove,
}

/// Write the status, the operation change and the refresh annotation's removal in one
/// optimistic patch (skipped when nothing changed), then announce what the reconcile did.
async fn write(
    c: &Controller,
    app: &Application,
    previous: &ApplicationStatus,
    status: &ApplicationStatus,
    change: OperationChange,
    remove_refresh: bool,
    effects: Effects,
) -> Result<(), kube::Error> {
    let unchanged =
        previous == status && matches!(change, OperationChange::Keep) && !remove_refresh;
    if !unchanged {
        let mut ops = vec![json!({"op": "add", "path": "/status", "value": status})];
        match &change {
            OperationChange::Keep => {}
            OperationChange::Set(op) => {
                ops.push(json!({"op": "add", "path": "/operation", "value": op}));
            }
            OperationChange::Remove => ops.push(json!({"op": "remove", "path": "/operation"})),
        }
        if remove_refresh {
            let path = REFRESH_ANNOTATION.replace('/', "~1");
            ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{path}")}));
        }
        status::patch(c, app, ops).await?;
    }
    effects.emit(c, app);
    announce_changes(c, app, previous, status);
    Ok(())
}

fn announce_changes(
    c: &Controller,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    status: &tiphys_model::application::ApplicationStatus,
) {
    let transitions = [
        (
            "sync",
            format!("{:?}", previous.sync.status),
            format!("{:?}", status.sync.status),
        ),
        (
            "health",
            format!("{:?}", previous.health.status),
            format!("{:?}", status.health.status),
        ),
    ];
    for (what, before, after) in transitions {
        if before != after {
            let message = format!("Updated {what} status: {before} -> {after}");
            c.events.record(app, false, "ResourceUpdated", &message);
        }
    }
    for condition in &status.conditions {
        if !previous
            .conditions
            .iter()
            .any(|p| p.kind == condition.kind && p.message == condition.message)
        {
            c.events
                .record(app, true, &condition.kind, &condition.message);
        }
    }
}

/// Deleting an Application: with the resources finalizer, delete what it manages (foreground
/// unless `/background`), then let the Application go.
async fn finalize(c: &Arc<Controller>, app: &Application) -> Result<(), kube::Error> {
    let finalizers = app.metadata.finalizers.clone().unwrap_or_default();
    let Some(ours) = finalizers
        .iter()
        .find(|f| f.starts_with(FINALIZER))
        .cloned()
    else {
        return Ok(());
    };
    let name = app.metadata.name.clone().unwrap_or_default();
    let propagation = if ours.ends_with("/background") {
        "background"
    } else {
        "foreground"
    };
    let remaining = match c
        .clusters
        .find(&app.spec.destination, &cluster_secrets(c))
        .await
    {
        Ok(cluster) => {
            // The kinds it manages, and those of the hooks its last operation created.
            let mut kinds = BTreeSet::new();
            for r in app.status.iter().flat_map(|s| &s.resources) {
                kinds.insert((r.group.clone(), r.kind.clone()));
            }
            let hooks = app
                .status
                .iter()
                .filter_map(|s| s.operation_state.as_ref()?.sync_result.as_ref())
                .flat_map(|r| &r.resources)
                .filter(|r| !r.hook_type.is_empty());
            for r in hooks {
                kinds.insert((r.group.clone(), r.kind.clone()));
            }
            for (group, kind) in &kinds {
                if let Ok(resolved) = cluster.resolver.preferred(group, kind).await
                    && let Err(e) = cluster.cache.ensure(&resolved).await
                {
                    tracing::warn!(app = %name, error = %e, "cannot list managed objects; deletion waits");
                    c.queue
                        .add_at(&name, Instant::now() + Duration::from_secs(5));
                    return Ok(());
                }
            }
            let objects = cluster.cache.objects_of(&name);
            let writer = Writer {
                cluster: cluster.clone(),
                health: custom_health(c),
            };
            for (key, live) in &objects {
                let api_version = live
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("v1");
                let held = live
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| {
                        f.iter()
                            .any(|f| f.as_str() == Some(tiphys_sync::HOOK_FINALIZER))
                    });
                if held
                    && let Err(e) = tiphys_sync::Cluster::remove_finalizer(
                        &writer,
                        key,
                        api_version,
                        tiphys_sync::HOOK_FINALIZER,
                    )
                    .await
                {
                    tracing::warn!(app = %name, object = %key, error = %e, "releasing a hook failed");
                }
                if live.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                if let Err(e) =
                    tiphys_sync::Cluster::delete(&writer, key, api_version, propagation).await
                {
                    tracing::warn!(app = %name, object = %key, error = %e, "cascade delete failed");
                }
            }
            objects.len()
        }
        Err(e) => {
            tracing::warn!(app = %name, error = %e, "destination unknown; removing the finalizer without deleting resources");
            0
        }
    };
    if remaining > 0 {
        c.queue
            .add_at(&name, Instant::now() + Duration::from_secs(1));
        return Ok(());
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| **f != ours).collect();
    let ops = vec![json!({"op": "replace", "path": "/metadata/finalizers", "value": kept})];
    status::patch(c, app, ops).await?;
    Ok(())
}
