//! One reconcile of one Application: spec and project checks, revision and render, compare,
//! automation (auto-sync, self-heal), one step of a running operation, status and events.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{Timestamp, Unit};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tiphys_diff::{IgnoreRule, IgnoreRules};
use tiphys_model::application::{
    ApplicationCondition, ApplicationSource, ComparedTo, HealthStatus, Operation,
    OperationInitiator, OperationPhase, OperationState, ResourceStatus, RevisionHistory,
    SyncOperation, SyncOperationResult, SyncStatusCode,
};
use tiphys_model::{AppProject, Application};
use tiphys_sync::annotations::has_option;
use tiphys_sync::{ObjectKey, Outcome, WriteOptions};

use crate::Controller;
use crate::apply::Writer;
use crate::clusters::{ClusterHandle, ClusterSecret};
use crate::compare::{self, Compared, Problem, Subject};
use crate::events;
use crate::manifests::Generated;

pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// What the controller remembers about an app between reconciles (not persisted: everything
/// that must survive a restart lives in the Application's status).
#[derive(Default)]
pub struct AppMemory {
    revisions: Vec<String>,
    /// The sources the revisions were resolved for.
    resolved_for: String,
    resolved_at: Option<Instant>,
    next_refresh: Option<Instant>,
    pub refresh_requested: bool,
    pub hard_refresh: bool,
    memo: compare::Memo,
    retry_at: Option<Instant>,
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
    let key = ObjectRef::new(name).within(&c.settings.namespace);
    let Some(app) = c.apps.get(&key) else {
        c.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        return;
    };
    let result = if app.metadata.deletion_timestamp.is_some() {
        finalize(c, &app).await
    } else {
        reconcile_app(c, &app).await
    };
    if let Err(e) = result {
        tracing::warn!(app = name, error = %e, "reconcile failed; retrying");
        c.queue
            .add_at(name, Instant::now() + Duration::from_secs(2));
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
    desired_state(c, app, None, true).await
}

fn sources_of(app: &Application) -> Vec<ApplicationSource> {
    app.sources().into_iter().cloned().collect()
}

fn cluster_secrets(c: &Controller) -> Vec<ClusterSecret> {
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
fn argocd_cm(c: &Controller) -> Option<Arc<k8s_openapi::api::core::v1::ConfigMap>> {
    c.configs
        .get(&ObjectRef::new(crate::settings::ARGOCD_CM).within(&c.settings.namespace))
}

fn custom_health(c: &Controller) -> tiphys_health::CustomHealth {
    let cm = argocd_cm(c);
    let data = cm.and_then(|c| c.data.clone()).unwrap_or_default();
    tiphys_health::CustomHealth::from_config(&data)
}

fn ignore_rules(c: &Controller, app: &Application) -> Result<IgnoreRules, Problem> {
    let cm = argocd_cm(c);
    let mut rules =
        crate::settings::system_ignore_rules(cm.as_deref()).map_err(Problem::comparison)?;
    for spec in &app.spec.ignore_differences {
        rules.push(
            IgnoreRule::from_spec(spec)
                .map_err(|e| Problem::spec(format!("spec.ignoreDifferences: {e}")))?,
        );
    }
    Ok(IgnoreRules(rules))
}

/// Resolve, render and compare: everything up to the verdict.
async fn desired_state(
    c: &Arc<Controller>,
    app: &Application,
    pinned: Option<&[String]>,
    refresh: bool,
) -> Result<Desired, Problem> {
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
    let name = app.metadata.name.clone().unwrap_or_default();
    let secrets = repo_secrets(c);
    let sources_key = serde_json::to_string(&sources).unwrap_or_default();
    let remembered = {
        let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory
            .get(&name)
            .filter(|m| m.resolved_for == sources_key && !m.revisions.is_empty())
            .map(|m| m.revisions.clone())
    };
    let repo = c.repo.clone();
    let revisions = match (pinned, remembered) {
        (Some(p), _) => p.to_vec(),
        (None, Some(r)) if !refresh => r,
        _ => {
            let started = Instant::now();
            let (repo2, sources2, secrets2) = (repo.clone(), sources.clone(), secrets.clone());
            let resolved = tokio::task::spawn_blocking(move || {
                sources2
                    .iter()
                    .map(|s| repo2.resolve(s, &secrets2))
                    .collect::<Result<Vec<String>, _>>()
            })
            .await
            .map_err(|e| Problem::comparison(e.to_string()))?
            .map_err(|e| Problem::comparison(format!("failed to resolve revision: {e}")))?;
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
    let kustomize_options = crate::settings::kustomize_build_options(argocd_cm(c).as_deref())
        .map_err(Problem::comparison)?;
    let generated = tokio::task::spawn_blocking(move || {
        repo.generate(
            &app_name,
            &namespace,
            &sources,
            &revisions2,
            &secrets,
            kustomize_options,
        )
    })
    .await
    .map_err(|e| Problem::comparison(e.to_string()))?
    .map_err(|e| Problem::comparison(e.to_string()))?;
    c.metrics
        .render_seconds
        .observe(started.elapsed().as_secs_f64());
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
        project: Some(&project),
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

fn sync_options(app: &Application, op: Option<&SyncOperation>) -> Vec<String> {
    let mut options: Vec<String> = app
        .spec
        .sync_policy
        .iter()
        .flat_map(|p| p.sync_options.iter().cloned())
        .collect();
    if let Some(op) = op {
        options.extend(op.sync_options.iter().cloned());
    }
    options
}

fn has(options: &[String], option: &str) -> bool {
    has_option(options.iter().map(String::as_str), option)
}

async fn reconcile_app(c: &Arc<Controller>, app: &Application) -> Result<(), kube::Error> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let annotation_refresh = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REFRESH_ANNOTATION))
        .cloned();
    let (refresh, hard) = {
        let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        let m = memory.entry(name.clone()).or_default();
        let periodic = m.next_refresh.is_some_and(|t| Instant::now() >= t);
        let refresh = m.refresh_requested
            || periodic
            || annotation_refresh.is_some()
            || m.resolved_at.is_none();
        let hard = m.hard_refresh || annotation_refresh.as_deref() == Some("hard");
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
        (refresh, hard)
    };
    if hard {
        c.repo.renders.clear();
    }
    let previous = app.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut operation = app.operation.clone();
    let mut remove_operation = None;
    // The version the final status write must find (an auto-sync request bumps it).
    let mut resource_version = app.metadata.resource_version.clone();
    let desired = desired_state(c, app, None, refresh).await;
    let mut conditions: Vec<(String, String)> = Vec::new();
    match &desired {
        Err(problem) => {
            status.sync.status = SyncStatusCode::Unknown;
            conditions.push((problem.kind.to_string(), problem.message.clone()));
            if let Some(op) = &operation {
                // The operation cannot proceed without a desired state: fail it, apply nothing.
                let mut state = running_state(&previous, op);
                finish(
                    &mut state,
                    OperationPhase::Failed,
                    format!("{}: {}", problem.kind, problem.message),
                );
                status.operation_state = Some(state);
                remove_operation = Some(op.clone());
                c.metrics.sync_finished(app, "Failed");
            }
            c.queue
                .add_at(&name, Instant::now() + Duration::from_secs(10));
        }
        Ok(d) => {
            fill_status(&mut status, app, d);
            conditions.extend(d.compared.warnings.iter().cloned());
            if operation.is_none() {
                match auto_sync_decision(c, app, &previous, d) {
                    AutoSync::No => {}
                    AutoSync::Skip(reason) => conditions.push(("SyncError".into(), reason)),
                    AutoSync::Later(at) => c.queue.add_at(&name, at),
                    AutoSync::Sync(op) => {
                        resource_version = start_operation(c, app, &op).await?;
                        operation = Some(*op);
                    }
                }
            }
            if let Some(op) = &operation {
                let done =
                    run_operation(c, app, &previous, &mut status, op, d, &mut conditions).await;
                if done {
                    remove_operation = Some(op.clone());
                }
            }
        }
    }
    status.conditions = merge_conditions(&previous.conditions, conditions);
    if refresh || status.reconciled_at.is_none() {
        status.reconciled_at = Some(now());
    }
    if status.health.status != previous.health.status {
        status.health.last_transition_time = Some(now());
    }
    write_status(
        c,
        app,
        &previous,
        &status,
        remove_operation
            .as_ref()
            .map(|op| (op, resource_version.as_deref())),
        annotation_refresh.is_some(),
    )
    .await?;
    announce_changes(c, app, &previous, &status).await;
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
    Skip(String),
    Later(Instant),
    Sync(Box<Operation>),
}

fn auto_sync_decision(
    c: &Controller,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    d: &Desired,
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
    if let Some(last) = &previous.operation_state
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
        retry: policy.retry.clone(),
    }))
}

/// Record a new operation on the Application (as Argo CD's CLI would), guarded by the
/// resourceVersion so a concurrent request is never overwritten.
async fn start_operation(
    c: &Controller,
    app: &Application,
    op: &Operation,
) -> Result<Option<String>, kube::Error> {
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    let patch = json!({
        "metadata": {"resourceVersion": app.metadata.resource_version},
        "operation": op,
    });
    let patched = api
        .patch(
            app.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    let revision = op
        .sync
        .as_ref()
        .map(|s| s.revision.clone())
        .unwrap_or_default();
    events::record(
        &c.client,
        app,
        false,
        "OperationStarted",
        &format!("Initiated automated sync to '{revision}'"),
    )
    .await;
    Ok(patched.metadata.resource_version)
}

/// The operation state to continue: the running one for this operation, else a fresh one.
fn running_state(
    previous: &tiphys_model::application::ApplicationStatus,
    op: &Operation,
) -> OperationState {
    match &previous.operation_state {
        Some(s) if s.phase == OperationPhase::Running && &s.operation == op => s.clone(),
        _ => OperationState {
            operation: op.clone(),
            phase: OperationPhase::Running,
            message: String::new(),
            sync_result: None,
            started_at: now(),
            finished_at: None,
            retry_count: None,
        },
    }
}

fn finish(state: &mut OperationState, phase: OperationPhase, message: String) {
    state.phase = phase;
    state.message = message;
    state.finished_at = Some(now());
}

fn retry_delay(retry: &tiphys_model::application::RetryStrategy, attempt: i64) -> Duration {
    let backoff = retry.backoff.clone().unwrap_or_default();
    let base =
        tiphys_model::validate::parse_duration(&backoff.duration).unwrap_or(Duration::from_secs(5));
    let factor = backoff.factor.unwrap_or(2).max(1) as u32;
    let max = tiphys_model::validate::parse_duration(&backoff.max_duration)
        .unwrap_or(Duration::from_secs(180));
    let exp = factor.saturating_pow(attempt.clamp(0, 30) as u32);
    base.saturating_mul(exp).min(max)
}

/// Advance the app's operation by one step. Returns true when it finished.
#[allow(clippy::too_many_arguments)]
async fn run_operation(
    c: &Arc<Controller>,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    status: &mut tiphys_model::application::ApplicationStatus,
    op: &Operation,
    d: &Desired,
    conditions: &mut Vec<(String, String)>,
) -> bool {
    let name = app.metadata.name.clone().unwrap_or_default();
    let mut state = running_state(previous, op);
    if state.sync_result.is_none()
        && state.message.is_empty()
        && !op.initiated_by.as_ref().is_some_and(|i| i.automated)
    {
        let who = op
            .initiated_by
            .as_ref()
            .map(|i| i.username.clone())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "tiphys".into());
        events::record(
            &c.client,
            app,
            false,
            "OperationStarted",
            &format!("{who} initiated sync"),
        )
        .await;
    }
    {
        let memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = memory.get(&name).and_then(|m| m.retry_at)
            && Instant::now() < at
        {
            c.queue.add_at(&name, at);
            status.operation_state = Some(state);
            return false;
        }
    }
    let sync = op.sync.clone().unwrap_or_default();
    let options = sync_options(app, Some(&sync));
    // A sync to another revision than the current one (rollback, or `sync --revision`).
    let pinned;
    let desired: &Desired = if !sync.revision.is_empty()
        && !d.generated.revisions.contains(&sync.revision)
        && sync.revisions.is_empty()
    {
        let mut pinned_app = app.clone();
        if let Some(source) = &sync.source {
            pinned_app.spec.source = Some(source.clone());
        }
        // Resolve tags and branches to commits first.
        let resolved = match pinned_app.sources().first() {
            Some(source) => {
                let mut s = (*source).clone();
                s.target_revision = sync.revision.clone();
                let repo = c.repo.clone();
                let secrets = repo_secrets(c);
                tokio::task::spawn_blocking(move || repo.resolve(&s, &secrets))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            None => None,
        };
        match resolved {
            Some(commit) => match desired_state(c, &pinned_app, Some(&[commit]), false).await {
                Ok(p) => {
                    pinned = p;
                    &pinned
                }
                Err(problem) => {
                    finish(
                        &mut state,
                        OperationPhase::Failed,
                        format!("{}: {}", problem.kind, problem.message),
                    );
                    status.operation_state = Some(state);
                    c.metrics.sync_finished(app, "Failed");
                    return true;
                }
            },
            None => {
                finish(
                    &mut state,
                    OperationPhase::Failed,
                    format!("revision {} could not be resolved", sync.revision),
                );
                status.operation_state = Some(state);
                c.metrics.sync_finished(app, "Failed");
                return true;
            }
        }
    } else {
        d
    };
    let warnings = &desired.compared.warnings;
    let refusal = if c.settings.refuse_secrets_in_git
        && warnings.iter().any(|w| w.0 == "SecretInGitWarning")
    {
        Some("refusing to sync Secrets with literal data from Git (see the SecretInGitWarning condition)".to_string())
    } else if has(&options, "FailOnSharedResource=true")
        && warnings.iter().any(|w| w.0 == "SharedResourceWarning")
    {
        warnings
            .iter()
            .find(|w| w.0 == "SharedResourceWarning")
            .map(|w| format!("shared resource found: {}", w.1))
    } else {
        None
    };
    if let Some(reason) = refusal {
        finish(&mut state, OperationPhase::Failed, reason.clone());
        conditions.push(("SyncError".into(), reason.clone()));
        status.operation_state = Some(state);
        events::record(
            &c.client,
            app,
            true,
            "OperationCompleted",
            &format!("Sync operation failed: {reason}"),
        )
        .await;
        c.metrics.sync_finished(app, "Failed");
        return true;
    }
    let items: Vec<tiphys_sync::Item> = desired
        .compared
        .items
        .iter()
        .map(|i| tiphys_sync::Item {
            key: i.key.clone(),
            desired: i.desired.clone(),
            live: i.live.as_deref().cloned(),
            in_sync: i.status == SyncStatusCode::Synced,
        })
        .collect();
    let selected: Vec<ObjectKey> = sync
        .resources
        .iter()
        .map(|r| ObjectKey {
            group: r.group.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        })
        .collect();
    let selected: Vec<ObjectKey> = desired
        .compared
        .items
        .iter()
        .filter(|i| {
            selected.iter().any(|s| {
                s.group == i.key.group
                    && s.kind == i.key.kind
                    && s.name == i.key.name
                    && (s.namespace.is_empty() || s.namespace == i.key.namespace)
            })
        })
        .map(|i| i.key.clone())
        .collect();
    if !sync.resources.is_empty() && selected.is_empty() {
        finish(
            &mut state,
            OperationPhase::Failed,
            "none of the selected resources belongs to the application".into(),
        );
        status.operation_state = Some(state);
        return true;
    }
    let plan_options = tiphys_sync::Options {
        // A partial discovery proves nothing about what is gone: never prune on it.
        prune: sync.prune && desired.compared.complete,
        dry_run: sync.dry_run,
        prune_last: has(&options, "PruneLast=true"),
        apply_out_of_sync_only: has(&options, "ApplyOutOfSyncOnly=true"),
        selected,
    };
    let mut tasks = tiphys_sync::plan(&items, &plan_options);
    tiphys_sync::name_hooks(&mut tasks, &state.started_at);
    let writer = Writer {
        cluster: desired.cluster.clone(),
        health: custom_health(c),
    };
    let mut results = state
        .sync_result
        .as_ref()
        .map(|r| r.resources.clone())
        .unwrap_or_default();
    let managed_ns = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.managed_namespace_metadata.clone());
    if results.is_empty()
        && has(&options, "CreateNamespace=true")
        && !app.spec.destination.namespace.is_empty()
    {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.spec.destination.namespace}});
        if let Some(meta) = &managed_ns {
            ns["metadata"]["labels"] = json!(meta.labels);
            ns["metadata"]["annotations"] = json!(meta.annotations);
        }
        let write = WriteOptions {
            server_side: true,
            validate: true,
            dry_run: sync.dry_run,
            ..Default::default()
        };
        if let Err(e) = tiphys_sync::Cluster::apply(&writer, &ns, write).await {
            finish(
                &mut state,
                OperationPhase::Failed,
                format!("creating namespace {}: {e}", app.spec.destination.namespace),
            );
            status.operation_state = Some(state);
            return true;
        }
    }
    let ctx = tiphys_sync::Context {
        sync_id: state.started_at.clone(),
        write: WriteOptions {
            server_side: !has(&options, "ServerSideApply=false"),
            replace: has(&options, "Replace=true"),
            validate: !has(&options, "Validate=false"),
            force: sync
                .sync_strategy
                .as_ref()
                .and_then(|s| s.apply.as_ref())
                .is_some_and(|a| a.force),
            dry_run: sync.dry_run,
        },
        propagation: options
            .iter()
            .find_map(|o| o.strip_prefix("PrunePropagationPolicy="))
            .unwrap_or("foreground")
            .to_string(),
    };
    let outcome = tiphys_sync::advance(&writer, &tasks, &mut results, &ctx).await;
    let revision = desired
        .generated
        .revisions
        .first()
        .cloned()
        .unwrap_or_default();
    state.sync_result = Some(SyncOperationResult {
        resources: results,
        revision: revision.clone(),
        source: app.spec.source.clone(),
        sources: app.spec.sources.clone(),
        revisions: if app.spec.sources.is_empty() {
            Vec::new()
        } else {
            desired.generated.revisions.clone()
        },
        managed_namespace_metadata: managed_ns,
    });
    let done = match outcome {
        Outcome::Running(message) => {
            state.message = message;
            c.queue
                .add_at(&name, Instant::now() + c.settings.operation_poll);
            false
        }
        Outcome::Succeeded(message) => {
            finish(&mut state, OperationPhase::Succeeded, message);
            if !sync.dry_run {
                push_history(status, app, &state, desired);
            }
            events::record(
                &c.client,
                app,
                false,
                "OperationCompleted",
                &format!("Sync operation to {revision} succeeded"),
            )
            .await;
            c.metrics.sync_finished(app, "Succeeded");
            true
        }
        Outcome::Failed(message) => {
            let retry = op
                .retry
                .clone()
                .or_else(|| app.spec.sync_policy.as_ref().and_then(|p| p.retry.clone()));
            let attempts = state.retry_count.unwrap_or(0);
            match retry {
                Some(retry)
                    if retry.limit.is_some_and(|l| l < 0 || attempts < l) && !sync.dry_run =>
                {
                    let delay = retry_delay(&retry, attempts);
                    state.retry_count = Some(attempts + 1);
                    state.message = format!(
                        "Retrying attempt #{} in {}s: {message}",
                        attempts + 1,
                        delay.as_secs()
                    );
                    if let Some(r) = state.sync_result.as_mut() {
                        r.resources.clear();
                    }
                    let at = Instant::now() + delay;
                    c.memory
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(name.clone())
                        .or_default()
                        .retry_at = Some(at);
                    c.queue.add_at(&name, at);
                    false
                }
                _ => {
                    finish(&mut state, OperationPhase::Failed, message.clone());
                    events::record(
                        &c.client,
                        app,
                        true,
                        "OperationCompleted",
                        &format!("Sync operation to {revision} failed: {message}"),
                    )
                    .await;
                    c.metrics.sync_finished(app, "Failed");
                    true
                }
            }
        }
    };
    if done {
        c.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .retry_at = None;
    }
    status.operation_state = Some(state);
    done
}

fn push_history(
    status: &mut tiphys_model::application::ApplicationStatus,
    app: &Application,
    state: &OperationState,
    d: &Desired,
) {
    let id = status
        .history
        .iter()
        .map(|h| h.id)
        .max()
        .map_or(0, |m| m + 1);
    status.history.push(RevisionHistory {
        revision: d.generated.revisions.first().cloned().unwrap_or_default(),
        deployed_at: state.finished_at.clone().unwrap_or_else(now),
        id,
        source: app.spec.source.clone(),
        deploy_started_at: Some(state.started_at.clone()),
        sources: app.spec.sources.clone(),
        revisions: if app.spec.sources.is_empty() {
            Vec::new()
        } else {
            d.generated.revisions.clone()
        },
        initiated_by: state.operation.initiated_by.clone(),
    });
    let limit = app.spec.revision_history_limit.unwrap_or(10).max(1) as usize;
    if status.history.len() > limit {
        let excess = status.history.len() - limit;
        status.history.drain(..excess);
    }
}

/// Write the status (and drop the finished operation, and the refresh annotation) in one
/// JSON patch; skipped when nothing changed.
async fn write_status(
    c: &Controller,
    app: &Application,
    previous: &tiphys_model::application::ApplicationStatus,
    status: &tiphys_model::application::ApplicationStatus,
    remove_operation: Option<(&Operation, Option<&str>)>,
    remove_refresh: bool,
) -> Result<(), kube::Error> {
    if previous == status && remove_operation.is_none() && !remove_refresh {
        return Ok(());
    }
    let mut ops = vec![json!({"op": "add", "path": "/status", "value": status})];
    if let Some((_, resource_version)) = remove_operation {
        // Only the operation this reconcile finished: a newer request changes the version.
        ops.push(
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}),
        );
        ops.push(json!({"op": "remove", "path": "/operation"}));
    }
    if remove_refresh {
        ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{}", REFRESH_ANNOTATION.replace('/', "~1"))}));
    }
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(kube::Error::SerdeError)?;
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    api.patch(
        app.metadata.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await?;
    Ok(())
}

async fn announce_changes(
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
            events::record(&c.client, app, false, "ResourceUpdated", &message).await;
        }
    }
    for condition in &status.conditions {
        if !previous
            .conditions
            .iter()
            .any(|p| p.kind == condition.kind && p.message == condition.message)
        {
            events::record(&c.client, app, true, &condition.kind, &condition.message).await;
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
            let mut kinds = BTreeSet::new();
            for r in app.status.iter().flat_map(|s| &s.resources) {
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
                if live.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let api_version = live
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("v1");
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
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
        {"op": "replace", "path": "/metadata/finalizers", "value": kept},
    ]))
    .map_err(kube::Error::SerdeError)?;
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    api.patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(())
}
