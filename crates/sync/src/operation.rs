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

use crate::annotations::{DeletePolicy, Phase};
use crate::key::ObjectKey;
use crate::plan::{Action, Task, steps};

/// Marks a hook object with the operation that created it.
pub const SYNC_ID: &str = "tiphys.io/sync-id";

/// How objects are written, from the app's and the object's sync options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub server_side: bool,
    pub replace: bool,
    pub validate: bool,
    pub force: bool,
    pub dry_run: bool,
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
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// Create `obj` (a hook).
    fn create(&self, obj: &Value) -> impl Future<Output = Result<(), String>> + Send;
    /// Delete an object; success when it is already gone.
    fn delete(
        &self,
        key: &ObjectKey,
        api_version: &str,
        propagation: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The live object as the controller's cache sees it.
    fn live(&self, key: &ObjectKey) -> Option<Value>;
    /// The health of a live object (built-in checks unless the cluster has custom ones).
    fn health(&self, live: &Value) -> Option<tiphys_health::Health> {
        tiphys_health::assess(live)
    }
}

/// Context of one operation.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Stable for the operation's lifetime (its `startedAt`): names generated hooks.
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
}

fn result_of<'a>(results: &'a [ResourceResult], task: &Task) -> Option<&'a ResourceResult> {
    results.iter().find(|r| same(r, task))
}

fn same(r: &ResourceResult, task: &Task) -> bool {
    r.group == task.key.group
        && r.kind == task.key.kind
        && r.namespace == task.key.namespace
        && r.name == task.key.name
        && r.sync_phase == task.phase.as_str()
        && (r.hook_type.is_empty() != task.is_hook())
}

fn api_version(obj: &Value) -> &str {
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

/// Give hooks that only have `generateName` a name that stays the same for this operation,
/// so a resumed operation finds the hook it already created.
pub fn name_hooks(tasks: &mut [Task], sync_id: &str) {
    for task in tasks
        .iter_mut()
        .filter(|t| t.is_hook() && t.key.name.is_empty())
    {
        let Some(prefix) = task
            .object
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let suffix = short_hash(&format!("{sync_id}/{}/{}", task.phase.as_str(), prefix));
        let name = format!("{prefix}{suffix}");
        if let Some(meta) = task
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            meta.remove("generateName");
            meta.insert("name".into(), Value::String(name.clone()));
        }
        task.key.name = name;
    }
}

/// Five lowercase alphanumerics from a stable (FNV-1a) hash.
fn short_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
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
/// `syncResult.resources`, updated in place.
pub async fn advance<C: Cluster>(
    cluster: &C,
    tasks: &[Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> Outcome {
    if ctx.write.dry_run {
        return dry_run(cluster, tasks, results, ctx).await;
    }
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
        if run_pending(cluster, &step, results, ctx).await {
            if let Some(reason) = failure(results) {
                return run_fail_hooks(cluster, &fail_hooks, results, ctx, reason).await;
            }
            return Outcome::Running(format!("{} phase, wave {wave}: applied", phase.as_str()));
        }
        if let Some(waiting) = settle_hooks(cluster, &step, results, ctx).await {
            return waiting;
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

/// Run every task of `tasks` that has no result yet; true when there was any.
async fn run_pending<C: Cluster>(
    cluster: &C,
    tasks: &[&Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
) -> bool {
    let pending: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| result_of(results, t).is_none())
        .collect();
    for task in &pending {
        let result = run(cluster, task, ctx).await;
        results.push(result);
    }
    !pending.is_empty()
}

async fn run<C: Cluster>(cluster: &C, task: &Task, ctx: &Context) -> ResourceResult {
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
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.message = e;
                }
            }
        }
        Action::Hook(policies) => {
            let live = cluster.live(&task.key);
            if live
                .as_ref()
                .and_then(|l| crate::annotations::annotation(l, SYNC_ID))
                == Some(ctx.sync_id.as_str())
            {
                // Created by this very operation before its progress was recorded.
                result.status = "Synced".into();
                result.hook_phase = "Running".into();
                result.message = format!("{} created", task.key);
                return result;
            }
            let mut hook = task.object.clone();
            if let Some(meta) = hook.get_mut("metadata").and_then(Value::as_object_mut) {
                let annotations = meta
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(map) = annotations.as_object_mut() {
                    map.insert(SYNC_ID.into(), Value::String(ctx.sync_id.clone()));
                }
            }
            if policies.contains(&DeletePolicy::BeforeHookCreation)
                && live.is_some()
                && let Err(e) = cluster
                    .delete(&task.key, api_version(&task.object), "background")
                    .await
            {
                result.status = "SyncFailed".into();
                result.hook_phase = "Failed".into();
                result.message = format!("deleting the previous hook: {e}");
                return result;
            }
            match cluster.create(&hook).await {
                Ok(()) => {
                    result.status = "Synced".into();
                    result.hook_phase = "Running".into();
                    result.message = format!("{} created", task.key);
                }
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.hook_phase = "Failed".into();
                    result.message = e;
                }
            }
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
                Err(e) => {
                    result.status = "SyncFailed".into();
                    result.message = e;
                }
            }
        }
        Action::PruneSkipped(message) => {
            result.status = "PruneSkipped".into();
            result.message = message.clone();
        }
    }
    result
}

/// Move running hooks of `step` to Succeeded or Failed from their live health; Some while
/// any is still running.
async fn settle_hooks<C: Cluster>(
    cluster: &C,
    step: &[&Task],
    results: &mut [ResourceResult],
    _ctx: &Context,
) -> Option<Outcome> {
    let mut waiting = None;
    for task in step.iter().filter(|t| t.is_hook()) {
        let Some(result) = results.iter_mut().find(|r| same(r, task)) else {
            continue;
        };
        if result.hook_phase != "Running" {
            continue;
        }
        let live = cluster.live(&task.key);
        let assessed = live.as_ref().and_then(|l| cluster.health(l));
        let (code, message) = match (&live, assessed) {
            (None, _) => (HealthStatusCode::Missing, String::new()),
            // Kinds without a health check are done as soon as they exist.
            (Some(_), None) => (HealthStatusCode::Healthy, String::new()),
            (Some(_), Some(h)) => (h.status, h.message),
        };
        let policies = match &task.action {
            Action::Hook(p) => p.clone(),
            _ => Vec::new(),
        };
        let finished = match code {
            HealthStatusCode::Healthy => Some(("Succeeded", DeletePolicy::HookSucceeded)),
            HealthStatusCode::Degraded => Some(("Failed", DeletePolicy::HookFailed)),
            _ => None,
        };
        match finished {
            Some((phase, delete_when)) => {
                result.hook_phase = phase.into();
                if !message.is_empty() {
                    result.message = message;
                }
                if phase == "Failed" {
                    result.status = "SyncFailed".into();
                }
                if policies.contains(&delete_when) {
                    // The hook's outcome is recorded; a failed cleanup only leaves it behind.
                    let _ = cluster
                        .delete(&task.key, api_version(&task.object), "background")
                        .await;
                }
            }
            None => {
                waiting = Some(Outcome::Running(format!(
                    "waiting for completion of hook {}",
                    task.key
                )));
            }
        }
    }
    waiting
}

async fn run_fail_hooks<C: Cluster>(
    cluster: &C,
    hooks: &[&Task],
    results: &mut Vec<ResourceResult>,
    ctx: &Context,
    reason: String,
) -> Outcome {
    if run_pending(cluster, hooks, results, ctx).await {
        return Outcome::Running(format!("running SyncFail hooks: {reason}"));
    }
    if let Some(waiting) = settle_hooks(cluster, hooks, results, ctx).await {
        return waiting;
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
                    result.message = e;
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
