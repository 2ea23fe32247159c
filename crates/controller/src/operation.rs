//! Carrying out an Application's operation (`.operation.sync`): one step per reconcile, its
//! state in `status.operationState`, stopping it on request (terminate) or when its request
//! disappeared. What happened is reported through [`Effects`], which the reconcile emits only
//! once the status saying so is written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{Timestamp, Unit};
use serde_json::json;
use tiphys_model::Application;
use tiphys_model::application::{
    ApplicationStatus, Operation, OperationPhase, OperationState, RevisionHistory, SyncOperation,
    SyncOperationResult, SyncStatusCode,
};
use tiphys_sync::annotations::has_option;
use tiphys_sync::{ObjectKey, Outcome, WriteOptions};

use crate::Controller;
use crate::apply::Writer;
use crate::reconcile::{
    Desired, cluster_secrets, custom_health, desired_from_local, desired_state, now, repo_secrets,
};

/// Events and metrics a reconcile owes, emitted after its status write succeeds (a write
/// that loses a race is redone, and must not have announced anything).
#[derive(Default)]
pub struct Effects {
    /// (warning, reason, message)
    pub events: Vec<(bool, String, String)>,
    /// The phase an operation finished in.
    pub finished: Option<&'static str>,
}

impl Effects {
    fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.events.push((warning, reason.into(), message));
    }

    fn finished(&mut self, state: &OperationState) {
        self.finished = Some(match state.phase {
            OperationPhase::Succeeded => "Succeeded",
            OperationPhase::Error => "Error",
            _ => "Failed",
        });
    }

    pub fn emit(self, c: &Controller, app: &Application) {
        for (warning, reason, message) in &self.events {
            c.events.record(app, *warning, reason, message);
        }
        if let Some(phase) = self.finished {
            c.metrics.sync_finished(app, phase);
        }
    }
}

pub(crate) fn sync_options(app: &Application, op: Option<&SyncOperation>) -> Vec<String> {
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

pub(crate) fn has(options: &[String], option: &str) -> bool {
    has_option(options.iter().map(String::as_str), option)
}

/// The recorded state of `op` when it is under way (running or being terminated).
pub fn under_way<'a>(status: &'a ApplicationStatus, op: &Operation) -> Option<&'a OperationState> {
    status.operation_state.as_ref().filter(|s| {
        matches!(
            s.phase,
            OperationPhase::Running | OperationPhase::Terminating
        ) && &s.operation == op
    })
}

/// The state a new operation starts from. It is written before the operation does anything,
/// so everything the operation creates can be traced to it after a restart.
pub fn initial_state(op: &Operation) -> OperationState {
    OperationState {
        operation: op.clone(),
        phase: OperationPhase::Running,
        message: String::new(),
        sync_result: None,
        started_at: started_now(),
        finished_at: None,
        retry_count: None,
    }
}

/// `startedAt`, to the millisecond: with the app's uid it identifies an operation, so two
/// operations started within one second still create distinct hooks.
fn started_now() -> String {
    Timestamp::now()
        .round(Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now())
}

/// Identifies one attempt of one operation of one app: marks the hooks it creates and names
/// its generated hooks.
pub fn sync_id(app: &Application, state: &OperationState) -> String {
    let uid = app.metadata.uid.as_deref().unwrap_or_default();
    match state.retry_count {
        Some(n) if n > 0 => format!("{uid}/{}/{n}", state.started_at),
        _ => format!("{uid}/{}", state.started_at),
    }
}

/// The OperationStarted event of a request made by a person or a client (auto-sync announces
/// its own).
pub fn announce_start(op: &Operation, effects: &mut Effects) {
    if op.initiated_by.as_ref().is_some_and(|i| i.automated) {
        return;
    }
    let who = op
        .initiated_by
        .as_ref()
        .map(|i| i.username.clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "tiphys".into());
    effects.event(false, "OperationStarted", format!("{who} initiated sync"));
}

/// The automated sync's OperationStarted event.
pub fn announce_auto_sync(op: &Operation, effects: &mut Effects) {
    let revision = op
        .sync
        .as_ref()
        .map(|s| s.revision.as_str())
        .unwrap_or_default();
    effects.event(
        false,
        "OperationStarted",
        format!("Initiated automated sync to '{revision}'"),
    );
}

/// Close `op` as Failed without doing anything (its desired state could not be known).
pub fn fail(
    previous: &ApplicationStatus,
    op: &Operation,
    message: String,
    effects: &mut Effects,
) -> OperationState {
    let mut state = under_way(previous, op)
        .cloned()
        .unwrap_or_else(|| initial_state(op));
    finish(&mut state, OperationPhase::Failed, message);
    effects.event(
        true,
        "OperationCompleted",
        format!("Sync operation failed: {}", state.message),
    );
    effects.finished(&state);
    state
}

/// Stop an operation that is under way: delete the hooks it is waiting for, release the
/// finished ones, and close it as Failed with `reason` (Error when stopping had problems).
pub async fn stop(
    c: &Arc<Controller>,
    app: &Application,
    state: &OperationState,
    reason: &str,
    effects: &mut Effects,
) -> OperationState {
    let mut state = state.clone();
    let mut results = state
        .sync_result
        .as_ref()
        .map(|r| r.resources.clone())
        .unwrap_or_default();
    let stopped = match c
        .clusters
        .find(&app.spec.destination, &cluster_secrets(c))
        .await
    {
        Ok(cluster) => {
            let writer = Writer {
                cluster,
                health: custom_health(c),
            };
            let ctx = tiphys_sync::Context {
                sync_id: sync_id(app, &state),
                ..Default::default()
            };
            tiphys_sync::terminate(&writer, &mut results, &ctx).await
        }
        Err(e) => Err(format!("the destination cluster is unknown: {e}")),
    };
    if let Some(r) = state.sync_result.as_mut() {
        r.resources = results;
    }
    match stopped {
        Ok(()) => finish(&mut state, OperationPhase::Failed, reason.to_string()),
        Err(e) => finish(
            &mut state,
            OperationPhase::Error,
            format!("Operation termination had errors: {e}"),
        ),
    }
    effects.event(
        true,
        "OperationCompleted",
        format!("Sync operation stopped: {}", state.message),
    );
    effects.finished(&state);
    state
}

pub fn finish(state: &mut OperationState, phase: OperationPhase, message: String) {
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

/// Advance the app's operation (recorded as under way in `previous`) by one step. Returns
/// true when it finished.
#[allow(clippy::too_many_arguments)]
pub async fn step(
    c: &Arc<Controller>,
    app: &Application,
    previous: &ApplicationStatus,
    status: &mut ApplicationStatus,
    op: &Operation,
    d: &Desired,
    conditions: &mut Vec<(String, String)>,
    effects: &mut Effects,
) -> bool {
    let name = app.metadata.name.clone().unwrap_or_default();
    let mut state = match under_way(previous, op) {
        Some(s) => s.clone(),
        None => initial_state(op),
    };
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
    // The revision is fixed when the operation starts: the one it asks for (rollback, `sync
    // --revision`, auto-sync), else the one its first step synced. A commit pushed — or
    // force-pushed — meanwhile is the next operation's business.
    let target = if sync.revision.is_empty() {
        // (Multi-source apps are not pinned this way yet: one revision per source.)
        state
            .sync_result
            .as_ref()
            .filter(|_| app.spec.sources.is_empty())
            .map(|r| r.revision.clone())
            .unwrap_or_default()
    } else {
        sync.revision.clone()
    };
    // Ends the operation as Failed with `message` (the step cannot even start).
    macro_rules! give_up {
        ($message:expr) => {{
            finish(&mut state, OperationPhase::Failed, $message);
            effects.finished(&state);
            status.operation_state = Some(state);
            return true;
        }};
    }
    let pinned;
    let desired: &Desired = if !sync.manifests.is_empty() {
        // `sync --local`: the objects come with the operation, not from Git.
        let manifests = match tiphys_render::parse_manifest_texts(&sync.manifests) {
            Ok(m) => m,
            Err(e) => give_up!(e.to_string()),
        };
        match desired_from_local(c, app, manifests, d.generated.revisions.clone()).await {
            Ok(local) => {
                pinned = local;
                &pinned
            }
            Err(problem) => give_up!(format!("{}: {}", problem.kind, problem.message)),
        }
    } else if !target.is_empty()
        && !d.generated.revisions.contains(&target)
        && sync.revisions.is_empty()
    {
        let mut pinned_app = app.clone();
        if let Some(source) = &sync.source {
            pinned_app.spec.source = Some((**source).clone());
        }
        // Resolve tags and branches to commits first.
        let resolved = match pinned_app.sources().first() {
            Some(source) => {
                let mut s = (*source).clone();
                s.target_revision = target.clone();
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
            Some(commit) => match desired_state(c, &pinned_app, Some(&[commit]), None).await {
                Ok(p) => {
                    pinned = p;
                    &pinned
                }
                Err(problem) => give_up!(format!("{}: {}", problem.kind, problem.message)),
            },
            None => give_up!(format!("revision {target} could not be resolved")),
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
        effects.event(
            true,
            "OperationCompleted",
            format!("Sync operation failed: {reason}"),
        );
        effects.finished(&state);
        status.operation_state = Some(state);
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
        effects.finished(&state);
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
    let sync_id = sync_id(app, &state);
    let mut tasks = tiphys_sync::plan(&items, &plan_options);
    // Hooks get their names first; the tracking id (which names the object) after.
    tiphys_sync::name_hooks(&mut tasks, &sync_id);
    let tracking = desired.cluster.cache.tracking();
    for task in tasks.iter_mut().filter(|t| t.is_hook()) {
        tracking.stamp(&mut task.object, &name, &task.key);
    }
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
            if e.transient {
                state.message = format!(
                    "creating namespace {}: {e} (will retry)",
                    app.spec.destination.namespace
                );
                c.queue
                    .add_at(&name, Instant::now() + c.settings.operation_poll);
                status.operation_state = Some(state);
                return false;
            }
            finish(
                &mut state,
                OperationPhase::Failed,
                format!("creating namespace {}: {e}", app.spec.destination.namespace),
            );
            effects.finished(&state);
            status.operation_state = Some(state);
            return true;
        }
    }
    let ctx = tiphys_sync::Context {
        sync_id,
        write: WriteOptions {
            server_side: !has(&options, "ServerSideApply=false"),
            replace: has(&options, "Replace=true"),
            validate: !has(&options, "Validate=false"),
            // Argo CD forces under either strategy (`apply` skips hooks, `hook` runs them).
            force: sync.sync_strategy.as_ref().is_some_and(|s| {
                s.apply.as_ref().is_some_and(|a| a.force)
                    || s.hook.as_ref().is_some_and(|h| h.force)
            }),
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
        managed_namespace_metadata: managed_ns.map(Box::new),
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
            effects.event(
                false,
                "OperationCompleted",
                format!("Sync operation to {revision} succeeded"),
            );
            effects.finished(&state);
            true
        }
        Outcome::Error(message) => {
            finish(&mut state, OperationPhase::Error, message.clone());
            effects.event(
                true,
                "OperationCompleted",
                format!("Sync operation to {revision} failed: {message}"),
            );
            effects.finished(&state);
            true
        }
        Outcome::Failed(message) => {
            let retry = op.retry.clone().or_else(|| {
                app.spec
                    .sync_policy
                    .as_ref()
                    .and_then(|p| p.retry.clone().map(Box::new))
            });
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
                    effects.event(
                        true,
                        "OperationCompleted",
                        format!("Sync operation to {revision} failed: {message}"),
                    );
                    effects.finished(&state);
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
    status: &mut ApplicationStatus,
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
