//! Compare an app's desired objects with what is live in its destination cluster.
//!
//! Each desired object is predicted by a server-side-apply dry run and compared with the live
//! one (see tiphys-diff); the verdict is memoised on (desired content, live resourceVersion),
//! so an unchanged object costs no API call on the next reconcile.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;
use tiphys_diff::{Comparison, IgnoreRules};
use tiphys_health::Health;
use tiphys_model::AppProject;
use tiphys_model::application::{HealthStatusCode, SyncStatusCode};
use tiphys_render::Manifest;
use tiphys_sync::ObjectKey;
use tiphys_sync::annotations::{self, Role};

use crate::apply::{Writer, api_message, is_not_found};
use crate::clusters::ClusterHandle;

/// One object of the app, desired and/or live.
#[derive(Clone, Debug, Default)]
pub struct CompareItem {
    pub key: ObjectKey,
    pub version: String,
    pub desired: Option<Value>,
    pub live: Option<Arc<Value>>,
    pub origin: Option<String>,
    pub status: SyncStatusCode,
    pub diff: String,
    /// Where live departs from desired (the first few fields).
    pub changed: Vec<tiphys_diff::FieldPath>,
    pub health: Option<Health>,
    pub hook: bool,
    pub requires_pruning: bool,
    /// `compare-options: IgnoreExtraneous`: never makes the app OutOfSync.
    pub ignore_extraneous: bool,
    pub wave: i64,
}

/// The app-level result.
#[derive(Clone, Debug)]
pub struct Compared {
    pub items: Vec<CompareItem>,
    pub sync: SyncStatusCode,
    pub health: Health,
    /// (condition type, message) warnings: shared resources, secrets in Git.
    pub warnings: Vec<(String, String)>,
    /// Kinds whose watches are up: the only kinds whose absence proves anything.
    pub complete: bool,
}

/// Why an app could not be compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// InvalidSpecError or ComparisonError.
    pub kind: &'static str,
    pub message: String,
}

impl Problem {
    pub fn comparison(message: impl Into<String>) -> Problem {
        Problem {
            kind: "ComparisonError",
            message: message.into(),
        }
    }

    pub fn spec(message: impl Into<String>) -> Problem {
        Problem {
            kind: "InvalidSpecError",
            message: message.into(),
        }
    }
}

/// Memoised verdicts of one app: for each object, the verdict on (desired content hash, live
/// resourceVersion). Kept sorted by key in a vector rather than a map: most apps have a few
/// objects, and a map's smallest table is several times the size of one entry — at thousands
/// of apps that was megabytes.
#[derive(Default)]
pub struct Memo {
    verdicts: Vec<(ObjectKey, u64, Box<str>, Comparison)>,
}

impl Memo {
    fn get(&self, key: &ObjectKey, hash: u64, rv: &str) -> Option<&Comparison> {
        let i = self.verdicts.binary_search_by(|v| v.0.cmp(key)).ok()?;
        let (_, h, r, c) = &self.verdicts[i];
        (*h == hash && &**r == rv).then_some(c)
    }

    fn insert(&mut self, key: &ObjectKey, hash: u64, rv: &str, verdict: Comparison) {
        let entry = (key.clone(), hash, rv.into(), verdict);
        match self.verdicts.binary_search_by(|v| v.0.cmp(key)) {
            Ok(i) => self.verdicts[i] = entry,
            Err(i) => self.verdicts.insert(i, entry),
        }
    }

    /// Forget the objects the app no longer has.
    fn keep(&mut self, items: &[CompareItem]) {
        let current: std::collections::HashSet<&ObjectKey> = items.iter().map(|i| &i.key).collect();
        self.verdicts.retain(|v| current.contains(&v.0));
        self.verdicts.shrink_to_fit();
    }
}

/// What a desired object's content is, for memoising verdicts about it.
pub(crate) fn content_hash(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// What compare needs to know about the app.
pub struct Subject<'a> {
    pub app: &'a str,
    pub namespace: &'a str,
    pub project: Option<&'a AppProject>,
    pub rules: &'a IgnoreRules,
    /// Kinds the app managed before (status.resources), watched so they can be pruned.
    pub previous_kinds: &'a [(String, String)],
    /// argocd-cm's custom Lua health checks.
    pub health: &'a tiphys_health::CustomHealth,
}

/// Prepare desired objects (namespace, tracking) and compare them with the live state.
pub async fn compare(
    cluster: &Arc<ClusterHandle>,
    subject: &Subject<'_>,
    manifests: &[Manifest],
    memo: &mut Memo,
) -> Result<Compared, Problem> {
    let writer = Writer {
        cluster: cluster.clone(),
        health: subject.health.clone(),
    };
    let assess = |live: &Value| tiphys_health::assess_with(live, subject.health);
    let tracking = cluster.cache.tracking().clone();
    let mut warnings = Vec::new();
    let mut violations = Vec::new();
    // Kinds defined by CRDs in the same app may not be served yet.
    let crd_kinds: BTreeSet<(String, String)> = manifests
        .iter()
        .filter(|m| {
            m.object.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        })
        .filter_map(|m| {
            let s = |p: &str| {
                m.object
                    .pointer(p)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            Some((s("/spec/group")?, s("/spec/names/kind")?))
        })
        .collect();
    let mut desired: Vec<(ObjectKey, Value, String, bool)> = Vec::new();
    let mut watched = BTreeSet::new();
    for m in manifests {
        let mut obj = m.object.clone();
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let group = tiphys_sync::key::group_of(&api_version).to_string();
        let resolved = match cluster.resolver.resolve(&api_version, &kind).await {
            Ok(r) => Some(r),
            Err(_) if crd_kinds.contains(&(group.clone(), kind.clone())) => None,
            Err(e) => return Err(Problem::comparison(format!("{}: {e}", m.origin))),
        };
        let namespaced = resolved.as_ref().is_none_or(|r| r.namespaced);
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if namespaced {
                let empty = meta
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                if empty && !subject.namespace.is_empty() {
                    meta.insert("namespace".into(), Value::String(subject.namespace.into()));
                }
            } else {
                meta.remove("namespace");
            }
        }
        let key = ObjectKey::of(&obj);
        if let Some(project) = subject.project {
            if !crate::project::resource_permitted(project, &group, &kind, namespaced) {
                violations.push(format!(
                    "resource {group}:{kind} is not permitted in project {}",
                    project.metadata.name.as_deref().unwrap_or_default()
                ));
            } else if namespaced
                && !key.namespace.is_empty()
                && !crate::project::destination_permitted(
                    project,
                    &cluster.server,
                    &cluster.name,
                    &key.namespace,
                )
            {
                violations.push(format!(
                    "namespace {} is not permitted in project '{}'",
                    key.namespace,
                    project.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
        if key.kind == "Secret"
            && ["data", "stringData"].iter().any(|f| {
                obj.get(*f)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
            })
        {
            warnings.push((
                "SecretInGitWarning".to_string(),
                format!("{}: Secret {} has literal data in Git", m.origin, key),
            ));
        }
        tracking.stamp(&mut obj, subject.app, &key);
        if let Some(r) = &resolved {
            watched.insert((r.resource.api_version.clone(), r.resource.kind.clone()));
        }
        desired.push((key, obj, m.origin.to_string(), resolved.is_some()));
    }
    if !violations.is_empty() {
        violations.dedup();
        return Err(Problem::spec(violations.join("; ")));
    }
    let desired_keys: BTreeSet<ObjectKey> = desired.iter().map(|d| d.0.clone()).collect();
    for (group, kind) in subject.previous_kinds {
        if let Ok(r) = cluster.resolver.preferred(group, kind).await {
            watched.insert((r.resource.api_version.clone(), r.resource.kind.clone()));
        }
    }
    for (api_version, kind) in &watched {
        let resolved = cluster
            .resolver
            .resolve(api_version, kind)
            .await
            .map_err(|e| Problem::comparison(e.to_string()))?;
        cluster
            .cache
            .ensure(&resolved)
            .await
            .map_err(Problem::comparison)?;
    }
    let complete = !cluster.resolver.is_partial();
    if let Some(project) = subject.project
        && let Some(orphans) = &project.spec.orphaned_resources
        && orphans.warn != Some(false)
        && !subject.namespace.is_empty()
    {
        let count = orphaned(cluster, subject.namespace, &watched, orphans, &desired_keys).await;
        if count > 0 {
            warnings.push((
                "OrphanedResourceWarning".to_string(),
                format!("Application has {count} orphaned resources"),
            ));
        }
    }

    let mut tracked: HashMap<ObjectKey, Arc<Value>> =
        cluster.cache.objects_of(subject.app).into_iter().collect();
    let mut items = Vec::new();
    for (key, obj, origin, served) in desired {
        let version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(|v| tiphys_sync::key::split_version(v).to_string())
            .unwrap_or_default();
        let hook = matches!(annotations::role(&obj), Role::Hook(_) | Role::Skip);
        let mut live = tracked.remove(&key);
        if live.is_none() && served && !hook {
            // Not tracked by this app: maybe it exists already, or another app owns it.
            if let Some((owner, found)) = cluster.cache.get(&key) {
                warnings.push((
                    "SharedResourceWarning".to_string(),
                    format!("{key} is part of applications {owner} and {}", subject.app),
                ));
                live = Some(found);
            } else if cluster.cache.may_exist(&key)
                && let Ok(Some(found)) = writer.get(&obj).await
            {
                live = Some(Arc::new(found));
            }
        }
        let mut item = CompareItem {
            wave: annotations::wave(&obj),
            key: key.clone(),
            version,
            desired: Some(obj.clone()),
            live: live.clone(),
            origin: Some(origin),
            status: SyncStatusCode::OutOfSync,
            diff: String::new(),
            changed: Vec::new(),
            health: None,
            hook,
            requires_pruning: false,
            ignore_extraneous: false,
        };
        if hook {
            item.status = SyncStatusCode::Synced;
            item.health = live.as_deref().and_then(assess);
            items.push(item);
            continue;
        }
        match &live {
            None => {
                item.health = Some(Health::new(HealthStatusCode::Missing, ""));
                item.diff = tiphys_diff::unified(
                    "",
                    &tiphys_diff::to_yaml(&tiphys_diff::normalize(&obj)),
                    "live",
                    "desired",
                );
            }
            Some(live_obj) => {
                item.health = assess(live_obj);
                let hash = content_hash(&obj);
                let rv = live_obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let remembered = memo.get(&key, hash, &rv).cloned();
                let comparison = match remembered {
                    Some(c) => c,
                    // Exactly what this controller's apply of this content produced: a dry
                    // run would predict the object as it is.
                    None if cluster.cache.take_applied(&key, hash, &rv) => {
                        let c = Comparison {
                            in_sync: true,
                            diff: String::new(),
                            changed: Vec::new(),
                        };
                        memo.insert(&key, hash, &rv, c.clone());
                        c
                    }
                    None => {
                        let live_full = if subject.rules.0.iter().any(|r| !r.managers.is_empty()) {
                            writer
                                .get(&obj)
                                .await
                                .ok()
                                .flatten()
                                .unwrap_or_else(|| (**live_obj).clone())
                        } else {
                            (**live_obj).clone()
                        };
                        match writer.predict(&obj).await {
                            Ok(predicted) => {
                                let c = tiphys_diff::compare(&predicted, &live_full, subject.rules);
                                memo.insert(&key, hash, &rv, c.clone());
                                c
                            }
                            Err(e) if is_not_found(&e) => Comparison {
                                in_sync: false,
                                diff: String::new(),
                                changed: Vec::new(),
                            },
                            Err(e) => Comparison {
                                in_sync: false,
                                diff: format!("server-side dry run failed: {}", api_message(&e)),
                                changed: Vec::new(),
                            },
                        }
                    }
                };
                item.status = if comparison.in_sync {
                    SyncStatusCode::Synced
                } else {
                    SyncStatusCode::OutOfSync
                };
                item.diff = comparison.diff;
                item.changed = comparison.changed;
            }
        }
        items.push(item);
    }
    // Tracked but no longer desired: to be pruned.
    let mut extraneous: Vec<(ObjectKey, Arc<Value>)> = tracked.into_iter().collect();
    extraneous.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, live) in extraneous {
        let hook = annotations::role(&live) != Role::Resource;
        if hook {
            continue;
        }
        let version = live
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(|v| tiphys_sync::key::split_version(v).to_string())
            .unwrap_or_default();
        items.push(CompareItem {
            wave: annotations::wave(&live),
            ignore_extraneous: annotations::compare_option(&live, "IgnoreExtraneous"),
            key,
            version,
            desired: None,
            health: assess(&live),
            live: Some(live),
            origin: None,
            status: SyncStatusCode::OutOfSync,
            diff: String::new(),
            changed: Vec::new(),
            hook: false,
            requires_pruning: true,
        });
    }
    memo.keep(&items);
    let out_of_sync = items
        .iter()
        .any(|i| !i.hook && i.status == SyncStatusCode::OutOfSync && !i.ignore_extraneous);
    let health_codes: Vec<HealthStatusCode> = items
        .iter()
        .filter(|i| !i.hook)
        .filter_map(|i| i.health.as_ref().map(|h| h.status))
        .collect();
    let code = tiphys_health::aggregate(&health_codes);
    let message = items
        .iter()
        .filter(|i| !i.hook)
        .filter_map(|i| i.health.as_ref())
        .find(|h| h.status == code && !h.message.is_empty())
        .map(|h| h.message.clone())
        .unwrap_or_default();
    Ok(Compared {
        items,
        sync: if out_of_sync {
            SyncStatusCode::OutOfSync
        } else {
            SyncStatusCode::Synced
        },
        health: Health::new(code, message),
        warnings,
        complete,
    })
}

/// Objects in the app's destination namespace, of the kinds the app uses, that no app tracks
/// (the project's `orphanedResources` monitoring), not counting objects something else owns.
/// Kubernetes' own per-namespace objects (the
/// `default` ServiceAccount, `kube-root-ca.crt`) are not counted.
async fn orphaned(
    cluster: &Arc<ClusterHandle>,
    namespace: &str,
    kinds: &BTreeSet<(String, String)>,
    settings: &tiphys_model::project::OrphanedResourcesMonitorSettings,
    desired: &BTreeSet<ObjectKey>,
) -> usize {
    let glob = crate::project::glob;
    let mut count = 0;
    for (api_version, kind) in kinds {
        let Ok(resolved) = cluster.resolver.resolve(api_version, kind).await else {
            continue;
        };
        if !resolved.namespaced {
            continue;
        }
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(cluster.client.clone(), namespace, &resolved.resource);
        let Ok(list) = api.list_metadata(&Default::default()).await else {
            continue;
        };
        for item in list.items {
            // Only top-level objects can be orphans (as in Argo CD): a Pod of a ReplicaSet
            // belongs to its owner, not to nobody.
            if item
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|r| !r.is_empty())
            {
                continue;
            }
            let name = item.metadata.name.clone().unwrap_or_default();
            let key = ObjectKey {
                group: resolved.resource.group.clone(),
                kind: kind.clone(),
                namespace: namespace.to_string(),
                name: name.clone(),
            };
            let builtin = (kind == "ServiceAccount" && name == "default")
                || (kind == "ConfigMap" && name == "kube-root-ca.crt");
            let ignored = settings.ignore.iter().any(|i| {
                glob(if i.group.is_empty() { "*" } else { &i.group }, &key.group)
                    && glob(if i.kind.is_empty() { "*" } else { &i.kind }, kind)
                    && glob(if i.name.is_empty() { "*" } else { &i.name }, &name)
            });
            if !builtin && !ignored && !desired.contains(&key) && cluster.cache.get(&key).is_none()
            {
                count += 1;
            }
        }
    }
    count
}
