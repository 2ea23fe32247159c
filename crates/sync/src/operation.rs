//! A sync operation as a resumable state machine.
//!
//! Each call to [`advance`] looks at what the operation has already done (the
//! `syncResult.resources` persisted in the Application's `operationState`), runs the next
//! step — every not-yet-run task of the earliest unfinished (phase, wave) — and returns. The
//! controller calls it again when objects change or after a short delay. Because progress
//! lives in the Application's status, a controller killed mid-sync resumes where it stopped:
//! applies are idempotent (server-side apply) and hooks that already ran are not run again.

use std::future::Future;

use serde_json::Value;
use tiphys_model::application::{HealthStatusCode, ResourceResult};

use crate::annotations::Phase;
use crate::hooks;
use crate::key::ObjectKey;
use crate::plan::{Action, Task, steps};

/// How objects are written, from the app's and the object's sync options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub server_side: bool,
    pub replace: bool,
    pub validate: bool,
    pub force: bool,
    pub dry_run: bool,
}

/// Why a write (or a read) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub message: String,
    /// The API server could not be reached or asked to be asked again later (connection
    /// errors, timeouts, 429, 5xx): the step is tried again, nothing is recorded as failed.
    pub transient: bool,
}

impl WriteError {
    pub fn transient(message: impl Into<String>) -> WriteError {
        WriteError {
            message: message.into(),
            transient: true,
        }
    }
}

impl From<String> for WriteError {
    fn from(message: String) -> WriteError {
        WriteError {
            message,
            transient: false,
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What creating an object came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    /// An object with that name exists already.
    AlreadyExists,
}

/// How the operation reaches a cluster: implemented by the controller over kube-rs, and by
/// a fake in tests.
pub trait Cluster: Sync {
    /// Apply (or replace) `obj`; returns kubectl-style verb ("created", "configured",
    /// "unchanged").
    fn apply(
        &self,
        obj: &Value,
        options: WriteOptions,
    ) -> impl Future<Output = Result<String, WriteError>> + Send;
    /// Create `obj` (a hook).
    fn create(&self, obj: &Value) -> impl Future<Output = Result<Created, WriteError>> + Send;
    /// Delete an object; success when it is already gone.
    fn delete(
        &self,
        key: &ObjectKey,
        api_version: &str,
        propagation: &str,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// The live object as the controller's cache sees it (may lag behind writes).
    fn live(&self, key: &ObjectKey) -> Option<Value>;
    /// The live object read from the API server now.
    fn fetch(
        &self,
        key: &ObjectKey,
        api_version: &str,
    ) -> impl Future<Output = Result<Option<Value>, WriteError>> + Send;
    /// Remove one finalizer from an object, leaving the others; success when the object or
    /// the finalizer is already gone.
    fn remove_finalizer(
        &self,
        key: &ObjectKey,
        api_version: &str,
        finalizer: &str,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// The health of a live object (built-in checks unless the cluster has custom ones).
    fn health(&self, live: &Value) -> Option<tiphys_health::Health> {
        tiphys_health::assess(live)
    }
}

/// Context of one operation.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Unique to the operation (and its retry attempt), stable for its lifetime: names
    /// generated hooks and marks the hooks it created.
    pub sync_id: String,
    pub write: WriteOptions,
    /// `PrunePropagationPolicy`: foreground, background (default) or orphan.
    pub propagation: String,
}

/// Where an operation stands after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running(String),
    Succeeded(String),
    Failed(String),
    /// The operation could not be carried out (Argo CD's `Error` phase).
    Error(String),
}

fn result_of<'a>(results: &'a [ResourceResult], task: &Task) -> Option<&'a ResourceResult> {
    results.iter().find(|r| same(r, task))
}

pub(crate) fn same(r: &ResourceResult, task: &Task) -> bool {
    r.group == task.key.group
        && r.kind == task.key.kind
        && r.namespace == task.key.namespace
        && r.name == task.key.name
        && r.sync_phase == task.phase.as_str()
        && (r.hook_type.is_empty() != task.is_hook())
}

pub(crate) fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
}

fn new_result(task: &Task) -> ResourceResult {
    let version = crate::key::group_of(api_version(&task.object));
    let version = api_version(&task.object)
        .strip_prefix(version)
        .unwrap_or("")
        .trim_start_matches('/');
    ResourceResult {
        group: task.key.group.clone(),
        version: version.to_string(),
        kind: task.key.kind.clone(),
        namespace: task.key.namespace.clone(),
        name: task.key.name.clone(),
        sync_phase: task.phase.as_str().to_string(),
        hook_type: if task.is_hook() {
            task.phase.as_str().to_string()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

fn health<C: Cluster>(cluster: &C, live: Option<&Value>) -> HealthStatusCode {
    match live {
        None => HealthStatusCode::Missing,
        Some(v) => cluster
            .health(v)
            .map_or(HealthStatusCode::Healthy, |h| h.status),
    }
}

/// Run the next step of the operation. `results` is the operation's
/// `syncResult.resources` as last recorded, updated in place; the caller records them before
/// calling again.
pub async fn advance<C: Cluster>(
    cluster: &C,
    tasks: &[Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> Outcome {
    if ctx.write.dry_run {
        return dry_run(cluster, tasks, results, ctx).await;
    }
    // Hooks whose outcome was on record when this step began may let go of their objects.
    let settled_before = results.iter().filter(|r| hooks::settled(r)).count();
    let mut unreleased = None;
    for r in results.iter_mut().filter(|r| hooks::settled(r)) {
        match hooks::release(cluster, r, ctx).await {
            Ok(()) => {}
            // The API server is away: try again before the operation may end.
            Err(e) if e.transient => unreleased = Some(format!("releasing hook {}: {e}", r.name)),
            // Refused for good: the outcome stands; a cascading delete releases it later.
            Err(e) => {
                let note = format!(" (releasing the hook: {e})");
                if !r.message.ends_with(&note) {
                    r.message.push_str(&note);
                }
            }
        }
    }
    let outcome = step(cluster, tasks, results, ctx).await;
    let settled_now = results.iter().filter(|r| hooks::settled(r)).count();
    match outcome {
        // Hooks settled by this step are released by the next, once their outcome is
        // recorded: the operation is not over before that.
        Outcome::Succeeded(_) | Outcome::Failed(_) if settled_now > settled_before => {
            Outcome::Running("recording hook results".into())
        }
        Outcome::Succeeded(_) | Outcome::Failed(_) if unreleased.is_some() => {
            Outcome::Running(unreleased.unwrap_or_default())
        }
        other => other,
    }
}

async fn step<C: Cluster>(
    cluster: &C,
    tasks: &[Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> Outcome {
    let (main, fail_hooks): (Vec<&Task>, Vec<&Task>) =
        tasks.iter().partition(|t| t.phase != Phase::SyncFail);
    if let Some(reason) = failure(results) {
        return run_fail_hooks(cluster, &fail_hooks, results, ctx, reason).await;
    }
    let main: Vec<Task> = main.into_iter().cloned().collect();
    let all_steps = steps(&main);
    for (index, (phase, wave)) in all_steps.iter().enumerate() {
        let step: Vec<&Task> = main
            .iter()
            .filter(|t| t.phase == *phase && t.wave == *wave)
            .collect();
        if let Some(progress) = run_pending(cluster, &step, results, ctx).await {
            if let Some(reason) = failure(results) {
                return run_fail_hooks(cluster, &fail_hooks, results, ctx, reason).await;
            }
            return Outcome::Running(
                progress
                    .unwrap_or_else(|| format!("{} phase, wave {wave}: applied", phase.as_str())),
            );
        }
        if let Some(waiting) = hooks::settle(cluster, &step, results, ctx).await {
            return Outcome::Running(waiting);
        }
        if let Some(reason) = failure(results) {
            return run_fail_hooks(cluster, &fail_hooks, results, ctx, reason).await;
        }
        // Between steps, wait for what this step applied to become healthy.
        let is_last = index + 1 == all_steps.len();
        if !is_last {
            for task in step.iter().filter(|t| t.action == Action::Apply) {
                let code = health(cluster, cluster.live(&task.key).as_ref());
                if matches!(
                    code,
                    HealthStatusCode::Progressing | HealthStatusCode::Missing
                ) {
                    return Outcome::Running(format!("waiting for healthy state of {}", task.key));
                }
            }
        }
    }
    Outcome::Succeeded("successfully synced (all tasks run)".into())
}

/// The first failure recorded, if any.
fn failure(results: &[ResourceResult]) -> Option<String> {
    results
        .iter()
        .find(|r| r.status == "SyncFailed" || r.hook_phase == "Failed" || r.hook_phase == "Error")
        .map(|r| {
            let what = ObjectKey {
                group: r.group.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            };
            format!(
                "one or more objects failed to apply, reason: {what}: {}",
                r.message
            )
        })
}

/// Run every task of `tasks` that has no result yet. None when there was none; otherwise
/// Some, with a message when a task has to wait (its result is then not recorded yet).
async fn run_pending<C: Cluster>(
    cluster: &C,
    tasks: &[&Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> Option<Option<String>> {
    let pending: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| result_of(results, t).is_none())
        .collect();
    if pending.is_empty() {
        return None;
    }
    let mut waiting = None;
    for task in &pending {
        match run(cluster, task, ctx).await {
            hooks::Started::Recorded(result) => results.push(*result),
            hooks::Started::Waiting(message) => waiting = Some(message),
        }
    }
    Some(waiting)
}

async fn run<C: Cluster>(cluster: &C, task: &Task, ctx: &Context) -> hooks::Started {
    let mut result = new_result(task);
    match &task.action {
        Action::Apply => {
            let mut write = ctx.write;
            let obj = &task.object;
            write.server_side |= crate::annotations::object_option(obj, "ServerSideApply=true");
            write.server_side &= !crate::annotations::object_option(obj, "ServerSideApply=false");
            write.replace |= crate::annotations::object_option(obj, "Replace=true");
            write.force |= crate::annotations::object_option(obj, "Force=true");
            if crate::annotations::object_option(obj, "Validate=false") {
                write.validate = false;
            }
            match cluster.apply(obj, write).await {
                Ok(verb) => {
                    result.status = "Synced".into();
                    result.message = format!("{} {verb}", task.key);
                }
                Err(e) if e.transient => return retry_later(task, &e),
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.message = e.message;
                }
            }
        }
        Action::Hook(policies) => {
            return hooks::start(cluster, task, policies, ctx, result).await;
        }
        Action::Prune => {
            let propagation = if ctx.propagation.is_empty() {
                "background"
            } else {
                ctx.propagation.as_str()
            };
            match cluster
                .delete(&task.key, api_version(&task.object), propagation)
                .await
            {
                Ok(()) => {
                    result.status = "Pruned".into();
                    result.message = "pruned".into();
                }
                Err(e) if e.transient => return retry_later(task, &e),
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.message = e.message;
                }
            }
        }
        Action::PruneSkipped(message) => {
            result.status = "PruneSkipped".into();
            result.message = message.clone();
        }
    }
    hooks::Started::Recorded(Box::new(result))
}

/// A write the API server could not take now: no result is recorded, the step runs again.
fn retry_later(task: &Task, e: &WriteError) -> hooks::Started {
    hooks::Started::Waiting(format!("{}: {e} (will retry)", task.key))
}

async fn run_fail_hooks<C: Cluster>(
    cluster: &C,
    hooks: &[&Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
    reason: String,
) -> Outcome {
    if let Some(progress) = run_pending(cluster, hooks, results, ctx).await {
        return Outcome::Running(
            progress.unwrap_or_else(|| format!("running SyncFail hooks: {reason}")),
        );
    }
    if let Some(waiting) = hooks::settle(cluster, hooks, results, ctx).await {
        return Outcome::Running(waiting);
    }
    Outcome::Failed(reason)
}

async fn dry_run<C: Cluster>(
    cluster: &C,
    tasks: &[Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> Outcome {
    results.clear();
    for task in tasks.iter().filter(|t| !t.is_hook()) {
        let mut result = new_result(task);
        match &task.action {
            Action::Apply => match cluster.apply(&task.object, ctx.write).await {
                Ok(verb) => {
                    result.status = "Synced".into();
                    result.message = format!("{} {verb} (dry run)", task.key);
                }
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.message = e.message;
                }
            },
            Action::Prune => {
                result.status = "Pruned".into();
                result.message = "pruned (dry run)".into();
            }
            Action::PruneSkipped(message) => {
                result.status = "PruneSkipped".into();
                result.message = message.clone();
            }
            Action::Hook(_) => {}
        }
        results.push(result);
    }
    match failure(results) {
        Some(reason) => Outcome::Failed(reason),
        None => Outcome::Succeeded("successfully synced (dry run)".into()),
    }
}
