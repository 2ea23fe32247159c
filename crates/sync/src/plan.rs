//! The sync plan: which objects to apply, create (hooks) or prune, in what order.
//!
//! Order: phase (PreSync, Sync, PostSync), then wave (`sync-wave`, ascending), then Argo CD's
//! kind order (Namespaces and CRDs before what uses them), then name. Prunes run after the
//! applies of their wave, in reverse kind order; with PruneLast they run after every wave.

use serde_json::Value;

use crate::annotations::{self, DeletePolicy, Phase, Role};
use crate::key::ObjectKey;

/// One object the app manages, desired and/or live.
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub key: ObjectKey,
    /// The rendered object, None when only live (a candidate for pruning).
    pub desired: Option<Value>,
    pub live: Option<Value>,
    /// The comparison's verdict for desired objects.
    pub in_sync: bool,
}

/// What a sync is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub prune: bool,
    pub dry_run: bool,
    /// App-level `PruneLast=true`.
    pub prune_last: bool,
    /// `ApplyOutOfSyncOnly=true`: skip objects already in sync.
    pub apply_out_of_sync_only: bool,
    /// Selective sync: only these objects (all when empty). Hooks are skipped, as in Argo CD.
    pub selected: Vec<ObjectKey>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Apply,
    /// Create a hook object (after deleting the previous one by BeforeHookCreation).
    Hook(Vec<DeletePolicy>),
    Prune,
    /// Would prune, but pruning is off or the object forbids it; reported, not done.
    PruneSkipped(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub key: ObjectKey,
    pub phase: Phase,
    pub wave: i64,
    pub action: Action,
    /// The object to apply or create; the live object for prunes.
    pub object: Value,
}

impl Task {
    pub fn is_hook(&self) -> bool {
        matches!(self.action, Action::Hook(_))
    }
}

/// Argo CD's kind order for a wave (kinds not listed come after, by name).
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Tasks for `items`, in execution order.
pub fn plan(items: &[Item], options: &Options) -> Vec<Task> {
    let selected = |key: &ObjectKey| options.selected.is_empty() || options.selected.contains(key);
    let mut tasks = Vec::new();
    for item in items {
        match (&item.desired, &item.live) {
            (Some(desired), _) => match annotations::role(desired) {
                Role::Skip => {}
                Role::Hook(phases) => {
                    if !options.selected.is_empty() {
                        continue;
                    }
                    for phase in phases {
                        tasks.push(Task {
                            key: item.key.clone(),
                            phase,
                            wave: annotations::wave(desired),
                            action: Action::Hook(annotations::delete_policies(desired)),
                            object: desired.clone(),
                        });
                    }
                }
                Role::Resource => {
                    if !selected(&item.key) || (options.apply_out_of_sync_only && item.in_sync) {
                        continue;
                    }
                    tasks.push(Task {
                        key: item.key.clone(),
                        phase: Phase::Sync,
                        wave: annotations::wave(desired),
                        action: Action::Apply,
                        object: desired.clone(),
                    });
                }
            },
            (None, Some(live)) => {
                if !selected(&item.key) || annotations::role(live) != Role::Resource {
                    continue;
                }
                let action = if annotations::object_option(live, "Prune=false") {
                    Action::PruneSkipped("ignored (no prune: Prune=false)".into())
                } else if !options.prune {
                    Action::PruneSkipped("ignored (requires pruning)".into())
                } else {
                    Action::Prune
                };
                tasks.push(Task {
                    key: item.key.clone(),
                    phase: Phase::Sync,
                    wave: annotations::wave(live),
                    action,
                    object: live.clone(),
                });
            }
            (None, None) => {}
        }
    }
    // PruneLast (app-wide or per object) moves prunes after the last wave.
    let last_wave = tasks
        .iter()
        .filter(|t| t.phase == Phase::Sync)
        .map(|t| t.wave)
        .max()
        .unwrap_or(0);
    for task in &mut tasks {
        if task.action == Action::Prune
            && (options.prune_last || annotations::object_option(&task.object, "PruneLast=true"))
        {
            task.wave = last_wave + 1;
        }
    }
    tasks.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    tasks
}

fn order_key(t: &Task) -> (Phase, i64, u8, isize, &str, &str) {
    let pruning = matches!(t.action, Action::Prune | Action::PruneSkipped(_));
    let rank = kind_rank(&t.key.kind) as isize;
    // Prunes go last in their wave, most dependent kinds first.
    let rank = if pruning { -rank } else { rank };
    let kind = if rank as usize == KIND_ORDER.len() {
        t.key.kind.as_str()
    } else {
        ""
    };
    (t.phase, t.wave, u8::from(pruning), rank, kind, &t.key.name)
}

/// The distinct (phase, wave) steps of a plan, in order.
pub fn steps(tasks: &[Task]) -> Vec<(Phase, i64)> {
    let mut steps: Vec<(Phase, i64)> = tasks.iter().map(|t| (t.phase, t.wave)).collect();
    steps.sort();
    steps.dedup();
    steps
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(kind: &str, name: &str, annotations: Value) -> Value {
        let api_version = match kind {
            "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        };
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "ns", "annotations": annotations}})
    }

    fn item(desired: Option<Value>, live: Option<Value>) -> Item {
        let key = ObjectKey::of(desired.as_ref().or(live.as_ref()).unwrap());
        Item {
            key,
            desired,
            live,
            in_sync: false,
        }
    }

    fn names(tasks: &[Task]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| format!("{}:{}:{}", t.phase.as_str(), t.wave, t.key.name))
            .collect()
    }

    #[test]
    fn phases_waves_and_kinds_order_the_plan() {
        let items = vec![
            item(Some(obj("Deployment", "web", json!({}))), None),
            item(Some(obj("ConfigMap", "config", json!({}))), None),
            item(Some(obj("Namespace", "ns", json!({}))), None),
            item(
                Some(obj(
                    "Service",
                    "early",
                    json!({(annotations::SYNC_WAVE): "-1"}),
                )),
                None,
            ),
            item(
                Some(obj(
                    "Job",
                    "migrate",
                    json!({(annotations::HOOK): "PreSync"}),
                )),
                None,
            ),
            item(
                Some(obj(
                    "Job",
                    "smoke",
                    json!({(annotations::HOOK): "PostSync"}),
                )),
                None,
            ),
            item(
                Some(obj(
                    "ConfigMap",
                    "skipped",
                    json!({(annotations::HOOK): "Skip"}),
                )),
                None,
            ),
        ];
        let tasks = plan(&items, &Options::default());
        assert_eq!(
            names(&tasks),
            vec![
                "PreSync:0:migrate",
                "Sync:-1:early",
                "Sync:0:ns",
                "Sync:0:config",
                "Sync:0:web",
                "PostSync:0:smoke"
            ]
        );
    }

    #[test]
    fn pruning_respects_options_and_annotations() {
        let items = vec![
            item(Some(obj("Deployment", "web", json!({}))), None),
            item(None, Some(obj("ConfigMap", "old", json!({})))),
            item(
                None,
                Some(obj(
                    "Service",
                    "keep",
                    json!({(annotations::SYNC_OPTIONS): "Prune=false"}),
                )),
            ),
        ];
        let off = plan(&items, &Options::default());
        assert!(off.iter().all(|t| t.action != Action::Prune));
        let on = plan(
            &items,
            &Options {
                prune: true,
                ..Default::default()
            },
        );
        let actions: Vec<(&str, &Action)> = on
            .iter()
            .map(|t| (t.key.name.as_str(), &t.action))
            .collect();
        assert_eq!(actions[0], ("web", &Action::Apply));
        assert!(actions.contains(&("old", &Action::Prune)));
        assert!(matches!(
            actions.iter().find(|a| a.0 == "keep").unwrap().1,
            Action::PruneSkipped(_)
        ));
        let last = plan(
            &items,
            &Options {
                prune: true,
                prune_last: true,
                ..Default::default()
            },
        );
        assert_eq!(last.iter().find(|t| t.key.name == "old").unwrap().wave, 1);
    }

    #[test]
    fn selective_and_out_of_sync_only() {
        let mut synced = item(Some(obj("ConfigMap", "a", json!({}))), None);
        synced.in_sync = true;
        let items = vec![
            synced,
            item(Some(obj("ConfigMap", "b", json!({}))), None),
            item(
                Some(obj("Job", "hook", json!({(annotations::HOOK): "Sync"}))),
                None,
            ),
        ];
        let only = plan(
            &items,
            &Options {
                apply_out_of_sync_only: true,
                ..Default::default()
            },
        );
        assert_eq!(names(&only), vec!["Sync:0:b", "Sync:0:hook"]);
        let selected = plan(
            &items,
            &Options {
                selected: vec![items[0].key.clone()],
                ..Default::default()
            },
        );
        assert_eq!(names(&selected), vec!["Sync:0:a"]);
    }
}
