//! The life of a hook object within one operation: named, created (marked with the operation
//! and held by a finalizer), watched until it completes, and released — finalizer removed,
//! deleted by its policy — only once its outcome is on record.
//!
//! The finalizer is what makes a hook's outcome observable: without it a Job deleted by its
//! TTL controller, or by a person, could vanish before the controller saw it finish, and the
//! operation would wait forever. Releasing only hooks whose outcome was recorded *before* the
//! current step means a controller killed at any moment finds either the finished hook or its
//! recorded outcome, never neither.

use serde_json::Value;
use tiphys_model::application::{HealthStatusCode, ResourceResult};

use crate::annotations::{self, DeletePolicy};
use crate::key::ObjectKey;
use crate::operation::{Cluster, Context, Created, WriteError, api_version};
use crate::plan::Task;

/// Marks a hook object with the operation that created it.
pub const SYNC_ID: &str = "tiphys.io/sync-id";
/// Holds a hook until its outcome is recorded (Argo CD's name for the same finalizer).
pub const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

/// Give hooks that only have `generateName` a name that stays the same for this operation (so
/// a resumed operation finds the hook it already created) and differs between operations,
/// apps and hooks sharing a prefix. Anything derived from the name (the tracking annotation)
/// must be written after this.
pub fn name_hooks(tasks: &mut [Task], sync_id: &str) {
    let mut ordinal = 0usize;
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
        ordinal += 1;
        let suffix = short_hash(&format!(
            "{sync_id}/{}/{}/{prefix}/{ordinal}",
            task.phase.as_str(),
            task.key.kind
        ));
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

/// Five lowercase alphanumerics from a stable (FNV-1a) hash, from the alphabet Kubernetes
/// uses for generated names.
pub(crate) fn short_hash(text: &str) -> String {
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

fn sync_id_of(obj: &Value) -> Option<&str> {
    annotations::annotation(obj, SYNC_ID)
}

fn has_finalizer(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(HOOK_FINALIZER)))
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The hook object as this operation created it: the cache's copy when it already shows this
/// operation's instance, else a direct read (the cache may lag behind a create).
async fn this_operations_hook<C: Cluster>(
    cluster: &C,
    key: &ObjectKey,
    api_version: &str,
    ctx: &Context,
) -> Result<Option<Value>, WriteError> {
    if let Some(live) = cluster.live(key)
        && sync_id_of(&live) == Some(ctx.sync_id.as_str())
    {
        return Ok(Some(live));
    }
    Ok(cluster
        .fetch(key, api_version)
        .await?
        .filter(|live| sync_id_of(live) == Some(ctx.sync_id.as_str())))
}

/// What creating a hook came to.
pub(crate) enum Started {
    /// Recorded: created now, or found already created by this operation.
    Recorded(Box<ResourceResult>),
    /// A previous instance is still being deleted; try again on the next step.
    Waiting(String),
}

/// Create `task`'s hook (after removing a previous instance by BeforeHookCreation).
pub(crate) async fn start<C: Cluster>(
    cluster: &C,
    task: &Task,
    policies: &[DeletePolicy],
    ctx: &Context,
    result: ResourceResult,
) -> Started {
    let api_version = api_version(&task.object);
    let running = |mut result: ResourceResult| {
        result.status = "Synced".into();
        result.hook_phase = "Running".into();
        result.message = format!("{} created", task.key);
        Started::Recorded(Box::new(result))
    };
    let failed = |mut result: ResourceResult, message: String| {
        result.status = "SyncFailed".into();
        result.hook_phase = "Failed".into();
        result.message = message;
        Started::Recorded(Box::new(result))
    };
    let previous = cluster.live(&task.key);
    if let Some(live) = &previous {
        if sync_id_of(live) == Some(ctx.sync_id.as_str()) {
            // Created by this very operation before its progress was recorded.
            return running(result);
        }
        if policies.contains(&DeletePolicy::BeforeHookCreation)
            && let Err(e) = remove_previous(cluster, &task.key, api_version, live).await
        {
            return failed(result, format!("deleting the previous hook: {e}"));
        }
    }
    let mut hook = task.object.clone();
    if let Some(meta) = hook.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(SYNC_ID.into(), Value::String(ctx.sync_id.clone()));
        }
        let finalizers = meta
            .entry("finalizers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f.as_str() == Some(HOOK_FINALIZER))
        {
            list.push(Value::String(HOOK_FINALIZER.into()));
        }
    }
    match cluster.create(&hook).await {
        Err(e) if e.transient => {
            Started::Waiting(format!("creating hook {}: {e} (will retry)", task.key))
        }
        Ok(Created::Created) => running(result),
        Ok(Created::AlreadyExists) => {
            let found = match cluster.fetch(&task.key, api_version).await {
                Ok(found) => found,
                Err(e) => return Started::Waiting(format!("reading hook {}: {e}", task.key)),
            };
            match found {
                Some(live) if sync_id_of(&live) == Some(ctx.sync_id.as_str()) => running(result),
                Some(live) if policies.contains(&DeletePolicy::BeforeHookCreation) => {
                    match remove_previous(cluster, &task.key, api_version, &live).await {
                        Ok(()) => Started::Waiting(format!(
                            "waiting for the previous instance of hook {} to be deleted",
                            task.key
                        )),
                        Err(e) => failed(result, format!("deleting the previous hook: {e}")),
                    }
                }
                Some(_) => failed(
                    result,
                    format!(
                        "hook {} already exists from an earlier sync and its delete policy does not replace it (add BeforeHookCreation)",
                        task.key
                    ),
                ),
                // Deleted between the create and the read: create it on the next step.
                None => Started::Waiting(format!("creating hook {}", task.key)),
            }
        }
        Err(e) => failed(result, e.message),
    }
}

/// Let go of a hook instance from an earlier operation and delete it.
async fn remove_previous<C: Cluster>(
    cluster: &C,
    key: &ObjectKey,
    api_version: &str,
    live: &Value,
) -> Result<(), WriteError> {
    if has_finalizer(live) {
        cluster
            .remove_finalizer(key, api_version, HOOK_FINALIZER)
            .await?;
    }
    if !deleting(live) {
        cluster.delete(key, api_version, "background").await?;
    }
    Ok(())
}

/// Move the running hooks of `step` to Succeeded or Failed from their live state. Returns a
/// message while any is still running.
pub(crate) async fn settle<C: Cluster>(
    cluster: &C,
    step: &[&Task],
    results: &mut [ResourceResult],
    ctx: &Context,
) -> Option<String> {
    let mut waiting = None;
    for task in step.iter().filter(|t| t.is_hook()) {
        let Some(result) = results.iter_mut().find(|r| crate::operation::same(r, task)) else {
            continue;
        };
        if result.hook_phase != "Running" {
            continue;
        }
        let live =
            match this_operations_hook(cluster, &task.key, api_version(&task.object), ctx).await {
                Ok(live) => live,
                Err(e) => {
                    waiting = Some(format!("reading hook {}: {e}", task.key));
                    continue;
                }
            };
        let Some(live) = live else {
            result.hook_phase = "Failed".into();
            result.status = "SyncFailed".into();
            result.message = format!("hook {} was deleted before it completed", task.key);
            continue;
        };
        let (code, message) = match cluster.health(&live) {
            // Kinds without a health check are done as soon as they exist.
            None => (HealthStatusCode::Healthy, String::new()),
            Some(h) => (h.status, h.message),
        };
        match code {
            HealthStatusCode::Healthy => {
                result.hook_phase = "Succeeded".into();
                if !message.is_empty() {
                    result.message = message;
                }
            }
            HealthStatusCode::Degraded => {
                result.hook_phase = "Failed".into();
                result.status = "SyncFailed".into();
                result.message = if message.is_empty() {
                    format!("hook {} failed", task.key)
                } else {
                    message
                };
            }
            _ if deleting(&live) => {
                result.hook_phase = "Failed".into();
                result.status = "SyncFailed".into();
                result.message = format!("hook {} was deleted before it completed", task.key);
            }
            _ => {
                waiting = Some(format!("waiting for completion of hook {}", task.key));
            }
        }
    }
    waiting
}

/// Whether `r` is a hook whose outcome is known.
pub(crate) fn settled(r: &ResourceResult) -> bool {
    !r.hook_type.is_empty() && matches!(r.hook_phase.as_str(), "Succeeded" | "Failed" | "Error")
}

fn key_of(r: &ResourceResult) -> (ObjectKey, String) {
    let key = ObjectKey {
        group: r.group.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    };
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    (key, api_version)
}

/// Release a settled hook: drop the finalizer, delete it if its policy says so for its
/// outcome. Idempotent; only this operation's instance is touched.
pub(crate) async fn release<C: Cluster>(
    cluster: &C,
    r: &ResourceResult,
    ctx: &Context,
) -> Result<(), WriteError> {
    let (key, api_version) = key_of(r);
    let Some(live) = this_operations_hook(cluster, &key, &api_version, ctx).await? else {
        return Ok(());
    };
    if has_finalizer(&live) {
        cluster
            .remove_finalizer(&key, &api_version, HOOK_FINALIZER)
            .await?;
    }
    let policies = annotations::delete_policies(&live);
    let delete = match r.hook_phase.as_str() {
        "Succeeded" => policies.contains(&DeletePolicy::HookSucceeded),
        _ => policies.contains(&DeletePolicy::HookFailed),
    };
    if delete && !deleting(&live) {
        cluster.delete(&key, &api_version, "background").await?;
    }
    Ok(())
}

/// Stop an operation: delete the hooks still running, release the finished ones. `Ok` when
/// every hook was dealt with.
pub async fn terminate<C: Cluster>(
    cluster: &C,
    results: &mut [ResourceResult],
    ctx: &Context,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for r in results.iter_mut().filter(|r| !r.hook_type.is_empty()) {
        if r.hook_phase == "Running" {
            let (key, api_version) = key_of(r);
            let stopped = async {
                if let Some(live) = this_operations_hook(cluster, &key, &api_version, ctx).await? {
                    remove_previous(cluster, &key, &api_version, &live).await?;
                }
                Ok::<(), WriteError>(())
            }
            .await;
            r.hook_phase = "Failed".into();
            r.status = "SyncFailed".into();
            match stopped {
                Ok(()) => r.message = format!("hook {key} deleted: the operation was terminated"),
                Err(e) => {
                    r.message = format!("deleting hook {key}: {e}");
                    errors.push(r.message.clone());
                }
            }
        } else if let Err(e) = release(cluster, r, ctx).await {
            errors.push(format!("releasing hook {}: {e}", r.name));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use futures::executor::block_on;
    use serde_json::json;

    use super::*;
    use crate::operation::{Outcome, WriteOptions, advance};
    use crate::plan::{Item, Options, plan};

    /// A cluster whose objects change at once and whose cache catches up only when told.
    #[derive(Default)]
    struct Fake {
        objects: Mutex<BTreeMap<ObjectKey, Value>>,
        cache: Mutex<BTreeMap<ObjectKey, Value>>,
        creates: Mutex<Vec<String>>,
        /// Writes refused as if the API server were down, before they succeed again.
        outage: Mutex<u32>,
    }

    impl Fake {
        fn catch_up(&self) {
            *self.cache.lock().unwrap() = self.objects.lock().unwrap().clone();
        }
        fn get(&self, name: &str) -> Option<Value> {
            self.objects
                .lock()
                .unwrap()
                .iter()
                .find(|(k, _)| k.name == name)
                .map(|(_, v)| v.clone())
        }
        /// Finish a hook (the annotation the fake's health check reads).
        fn complete(&self, name: &str, outcome: &str) {
            let mut objects = self.objects.lock().unwrap();
            if let Some((_, v)) = objects.iter_mut().find(|(k, _)| k.name == name) {
                v["metadata"]["annotations"]["test/health"] = json!(outcome);
            }
        }
        fn creates(&self) -> Vec<String> {
            self.creates.lock().unwrap().clone()
        }
    }

    impl Fake {
        fn down(&self) -> Result<(), WriteError> {
            let mut outage = self.outage.lock().unwrap();
            if *outage > 0 {
                *outage -= 1;
                return Err(WriteError::transient("connection refused"));
            }
            Ok(())
        }
    }

    impl Cluster for Fake {
        async fn apply(&self, obj: &Value, _: WriteOptions) -> Result<String, WriteError> {
            self.down()?;
            self.objects
                .lock()
                .unwrap()
                .insert(ObjectKey::of(obj), obj.clone());
            Ok("configured".into())
        }
        async fn create(&self, obj: &Value) -> Result<Created, WriteError> {
            self.down()?;
            let key = ObjectKey::of(obj);
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(&key) {
                return Ok(Created::AlreadyExists);
            }
            self.creates.lock().unwrap().push(key.name.clone());
            objects.insert(key, obj.clone());
            Ok(Created::Created)
        }
        async fn delete(&self, key: &ObjectKey, _: &str, _: &str) -> Result<(), WriteError> {
            let mut objects = self.objects.lock().unwrap();
            let held = objects.get(key).is_some_and(has_finalizer);
            if held {
                objects.get_mut(key).unwrap()["metadata"]["deletionTimestamp"] =
                    json!("2026-01-01T00:00:00Z");
            } else {
                objects.remove(key);
            }
            Ok(())
        }
        fn live(&self, key: &ObjectKey) -> Option<Value> {
            self.cache.lock().unwrap().get(key).cloned()
        }
        async fn fetch(&self, key: &ObjectKey, _: &str) -> Result<Option<Value>, WriteError> {
            Ok(self.objects.lock().unwrap().get(key).cloned())
        }
        async fn remove_finalizer(
            &self,
            key: &ObjectKey,
            _: &str,
            f: &str,
        ) -> Result<(), WriteError> {
            let mut objects = self.objects.lock().unwrap();
            let Some(obj) = objects.get_mut(key) else {
                return Ok(());
            };
            if let Some(list) = obj["metadata"]["finalizers"].as_array_mut() {
                list.retain(|x| x.as_str() != Some(f));
            }
            if deleting(obj) && !has_finalizer(obj) {
                objects.remove(key);
            }
            Ok(())
        }
        fn health(&self, live: &Value) -> Option<tiphys_health::Health> {
            let code = match annotations::annotation(live, "test/health") {
                Some("ok") => HealthStatusCode::Healthy,
                Some("failed") => HealthStatusCode::Degraded,
                _ => HealthStatusCode::Progressing,
            };
            Some(tiphys_health::Health::new(code, ""))
        }
    }

    fn job(name: &str, generated: bool, phase: &str, policy: &str) -> Value {
        let mut meta = json!({"namespace": "ns", "annotations": {
            (annotations::HOOK): phase, (annotations::HOOK_DELETE_POLICY): policy}});
        meta[if generated { "generateName" } else { "name" }] = json!(name);
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta})
    }

    fn tasks(objects: &[Value], sync_id: &str) -> Vec<Task> {
        let items: Vec<Item> = objects
            .iter()
            .map(|o| Item {
                key: ObjectKey::of(o),
                desired: Some(o.clone()),
                live: None,
                in_sync: false,
            })
            .collect();
        let mut tasks = plan(&items, &Options::default());
        name_hooks(&mut tasks, sync_id);
        tasks
    }

    fn ctx(sync_id: &str) -> Context {
        Context {
            sync_id: sync_id.into(),
            ..Default::default()
        }
    }

    /// Advance until the outcome is final, letting the cache catch up between steps, as the
    /// controller's watch does. `between` runs before every step.
    fn run_to_end(
        cluster: &Fake,
        tasks: &[Task],
        results: &mut Vec<ResourceResult>,
        ctx: &Context,
        between: impl Fn(&Fake),
    ) -> Outcome {
        for _ in 0..50 {
            between(cluster);
            match block_on(advance(cluster, tasks, results, ctx)) {
                Outcome::Running(_) => cluster.catch_up(),
                done => return done,
            }
        }
        panic!("the operation never finished: {results:?}");
    }

    #[test]
    fn generated_names_are_stable_per_operation_and_distinct_across_apps_and_hooks() {
        let hooks = [
            job("migrate-", true, "PreSync", "HookSucceeded"),
            job("migrate-", true, "PreSync", "HookSucceeded"),
        ];
        let a = tasks(&hooks, "app-a/1");
        let again = tasks(&hooks, "app-a/1");
        let b = tasks(&hooks, "app-b/1");
        let names = |t: &[Task]| t.iter().map(|t| t.key.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&again));
        assert_ne!(a[0].key.name, a[1].key.name, "two hooks with one prefix");
        assert_ne!(names(&a), names(&b), "two apps");
        assert!(a[0].key.name.starts_with("migrate-") && a[0].key.name.len() == 13);
        assert_eq!(a[0].object["metadata"]["name"], json!(a[0].key.name));
        assert!(a[0].object["metadata"].get("generateName").is_none());
    }

    #[test]
    fn a_hook_is_held_until_its_outcome_is_recorded_then_deleted_by_its_policy() {
        let cluster = Fake::default();
        let tasks = tasks(&[job("pre-", true, "PreSync", "HookSucceeded")], "s1");
        let ctx = ctx("s1");
        let mut results = Vec::new();
        assert!(matches!(
            block_on(advance(&cluster, &tasks, &mut results, &ctx)),
            Outcome::Running(_)
        ));
        let name = tasks[0].key.name.clone();
        let live = cluster.get(&name).expect("created");
        assert!(has_finalizer(&live));
        assert_eq!(sync_id_of(&live), Some("s1"));
        cluster.complete(&name, "ok");
        // The cache has not seen the hook yet: settling reads it directly.
        let outcome = block_on(advance(&cluster, &tasks, &mut results, &ctx));
        assert_eq!(outcome, Outcome::Running("recording hook results".into()));
        assert_eq!(results[0].hook_phase, "Succeeded");
        assert!(
            cluster.get(&name).is_some(),
            "not released before the outcome is recorded"
        );
        cluster.catch_up();
        let outcome = block_on(advance(&cluster, &tasks, &mut results, &ctx));
        assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
        assert!(cluster.get(&name).is_none(), "HookSucceeded deleted it");
        assert_eq!(cluster.creates(), vec![name]);
    }

    #[test]
    fn a_step_lost_before_it_was_recorded_does_not_create_the_hook_twice() {
        let cluster = Fake::default();
        let tasks = tasks(&[job("migrate", false, "PreSync", "HookSucceeded")], "s1");
        let ctx = ctx("s1");
        let mut lost = Vec::new();
        block_on(advance(&cluster, &tasks, &mut lost, &ctx));
        // Killed before the results were written: resume from the recorded (empty) results,
        // with a cache that has not seen the create either.
        let mut results = Vec::new();
        let outcome = run_to_end(&cluster, &tasks, &mut results, &ctx, |c| {
            c.complete("migrate", "ok")
        });
        assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
        assert_eq!(cluster.creates(), vec!["migrate".to_string()]);
    }

    #[test]
    fn writes_the_api_server_could_not_take_are_retried_not_failed() {
        let cluster = Fake::default();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}});
        let tasks = tasks(
            &[job("migrate", false, "PreSync", "HookSucceeded"), cm],
            "s1",
        );
        let ctx = ctx("s1");
        let mut results = Vec::new();
        *cluster.outage.lock().unwrap() = 2;
        match block_on(advance(&cluster, &tasks, &mut results, &ctx)) {
            Outcome::Running(message) => assert!(message.contains("will retry"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(
            results.is_empty(),
            "nothing recorded while the server is away"
        );
        let outcome = run_to_end(&cluster, &tasks, &mut results, &ctx, |c| {
            c.complete("migrate", "ok")
        });
        assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
        assert_eq!(cluster.creates(), vec!["migrate".to_string()]);
        assert!(cluster.get("cm").is_some());
    }

    #[test]
    fn a_hook_deleted_while_running_fails_the_operation_instead_of_hanging() {
        let cluster = Fake::default();
        let tasks = tasks(&[job("migrate", false, "PreSync", "HookSucceeded")], "s1");
        let ctx = ctx("s1");
        let mut results = Vec::new();
        block_on(advance(&cluster, &tasks, &mut results, &ctx));
        cluster.catch_up();
        // Someone deletes it: the finalizer keeps it visible, terminating.
        let key = tasks[0].key.clone();
        block_on(cluster.delete(&key, "batch/v1", "background")).unwrap();
        let outcome = run_to_end(&cluster, &tasks, &mut results, &ctx, |_| {});
        match outcome {
            Outcome::Failed(message) => assert!(message.contains("deleted before it completed")),
            other => panic!("{other:?}"),
        }
        assert!(cluster.get("migrate").is_none(), "released and gone");
    }

    #[test]
    fn before_hook_creation_replaces_a_held_previous_instance() {
        let cluster = Fake::default();
        let tasks1 = tasks(
            &[job("migrate", false, "PreSync", "BeforeHookCreation")],
            "s1",
        );
        let mut results = Vec::new();
        let first = run_to_end(&cluster, &tasks1, &mut results, &ctx("s1"), |c| {
            c.complete("migrate", "ok")
        });
        assert!(matches!(first, Outcome::Succeeded(_)));
        let kept = cluster.get("migrate").expect("BeforeHookCreation keeps it");
        assert!(!has_finalizer(&kept), "released");
        // A crash left the previous instance holding the finalizer.
        cluster.objects.lock().unwrap().values_mut().for_each(|v| {
            v["metadata"]["finalizers"] = json!([HOOK_FINALIZER]);
        });
        cluster.catch_up();
        let tasks2 = tasks(
            &[job("migrate", false, "PreSync", "BeforeHookCreation")],
            "s2",
        );
        let mut results = Vec::new();
        let second = run_to_end(&cluster, &tasks2, &mut results, &ctx("s2"), |c| {
            if c.get("migrate")
                .is_some_and(|v| sync_id_of(&v) == Some("s2"))
            {
                c.complete("migrate", "ok");
            }
        });
        assert!(matches!(second, Outcome::Succeeded(_)), "{second:?}");
        assert_eq!(
            sync_id_of(&cluster.get("migrate").unwrap()),
            Some("s2"),
            "the new instance replaced the old"
        );
        assert_eq!(cluster.creates().len(), 2);
    }

    #[test]
    fn terminating_deletes_running_hooks_and_releases_finished_ones() {
        let cluster = Fake::default();
        let tasks = tasks(
            &[
                job("done", false, "PreSync", "BeforeHookCreation"),
                job("slow", false, "PreSync", "BeforeHookCreation"),
            ],
            "s1",
        );
        let ctx = ctx("s1");
        let mut results = Vec::new();
        block_on(advance(&cluster, &tasks, &mut results, &ctx));
        cluster.complete("done", "ok");
        cluster.catch_up();
        block_on(advance(&cluster, &tasks, &mut results, &ctx));
        cluster.catch_up();
        block_on(terminate(&cluster, &mut results, &ctx)).unwrap();
        assert!(cluster.get("slow").is_none(), "the running hook is deleted");
        let done = cluster
            .get("done")
            .expect("a finished hook stays (its policy)");
        assert!(!has_finalizer(&done));
        let slow = results.iter().find(|r| r.name == "slow").unwrap();
        assert_eq!(slow.hook_phase, "Failed");
        assert!(slow.message.contains("terminated"));
    }
}
