//! The ApplicationSet controller: generate, then create, update and delete the owned
//! Applications as `syncPolicy.applicationsSync` allows, and report in the ApplicationSet's
//! status. Generation is all-or-nothing: an error (bad template, invalid or duplicate name,
//! unreachable repository) changes no Application.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tiphys_appset::{ClusterInfo, Inputs, Repos};
use tiphys_model::application::ResourceStatus;
use tiphys_model::applicationset::{ApplicationSetCondition, ApplicationSetStatus};
use tiphys_model::{Application, ApplicationSet};

use crate::Controller;
use crate::clusters::{ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use crate::manifests::{RepoSecrets, RepoServer};

pub const FIELD_MANAGER: &str = "tiphys-applicationset";
const DEFAULT_REQUEUE: Duration = Duration::from_secs(180);
/// Like Argo CD's `--max-resources-status-count` default: a status listing 10,000
/// Applications would approach the API server's object size limit.
const MAX_STATUS_RESOURCES: usize = 5000;

/// Git trees for generators through the repo server (fetch + cache).
pub struct GitRepos<'a> {
    pub repo: &'a RepoServer,
    pub secrets: &'a RepoSecrets,
}

impl Repos for GitRepos<'_> {
    fn tree(&self, repo_url: &str, revision: &str) -> Result<PathBuf, String> {
        let source = tiphys_model::application::ApplicationSource {
            repo_url: repo_url.to_string(),
            target_revision: revision.to_string(),
            ..Default::default()
        };
        let commit = self
            .repo
            .resolve(&source, self.secrets)
            .map_err(|e| e.to_string())?;
        self.repo
            .git
            .tree(repo_url, &commit)
            .map_err(|e| e.to_string())
    }
}

/// One local directory standing in for every repository (`appset generate --repo-root`).
pub struct LocalTree(pub PathBuf);

impl Repos for LocalTree {
    fn tree(&self, _repo_url: &str, _revision: &str) -> Result<PathBuf, String> {
        Ok(self.0.clone())
    }
}

/// The clusters generator's view: the in-cluster entry plus every cluster Secret.
pub fn cluster_infos(secrets: &[(ClusterSecret, BTreeMap<String, String>)]) -> Vec<ClusterInfo> {
    let mut out = Vec::new();
    if !secrets.iter().any(|(s, _)| s.server == IN_CLUSTER_SERVER) {
        out.push(ClusterInfo {
            name: IN_CLUSTER_NAME.into(),
            server: IN_CLUSTER_SERVER.into(),
            ..Default::default()
        });
    }
    for (s, annotations) in secrets {
        out.push(ClusterInfo {
            name: s.name.clone(),
            server: s.server.clone(),
            labels: s.labels.clone(),
            annotations: annotations.clone(),
        });
    }
    out
}

fn clusters_of(c: &Controller) -> Vec<ClusterInfo> {
    let secrets: Vec<(ClusterSecret, BTreeMap<String, String>)> = c
        .secrets
        .state()
        .iter()
        .filter_map(|s| {
            Some((
                ClusterSecret::from_secret(s)?,
                s.metadata.annotations.clone().unwrap_or_default(),
            ))
        })
        .collect();
    cluster_infos(&secrets)
}

/// What `applicationsSync` permits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Policy {
    update: bool,
    delete: bool,
}

fn policy(set: &ApplicationSet) -> Policy {
    match set
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.applications_sync.as_deref())
    {
        Some("create-only") => Policy {
            update: false,
            delete: false,
        },
        Some("create-update") => Policy {
            update: true,
            delete: false,
        },
        Some("create-delete") => Policy {
            update: false,
            delete: true,
        },
        _ => Policy {
            update: true,
            delete: true,
        },
    }
}

fn requeue_after(set: &ApplicationSet) -> Duration {
    fn find(v: &Value, best: &mut Option<u64>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "requeueAfterSeconds"
                        && let Some(n) = child.as_u64()
                    {
                        *best = Some(best.map_or(n, |b| b.min(n)));
                    }
                    find(child, best);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| find(i, best)),
            _ => {}
        }
    }
    let mut best = None;
    for g in &set.spec.generators {
        find(g, &mut best);
    }
    best.map_or(DEFAULT_REQUEUE, |s| Duration::from_secs(s.max(1)))
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    previous: &[ApplicationSetCondition],
) -> ApplicationSetCondition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|p| p.kind == kind && p.status == status)
        .and_then(|p| p.last_transition_time.clone())
        .unwrap_or_else(crate::reconcile::now);
    ApplicationSetCondition {
        kind: kind.into(),
        message: message.into(),
        status: status.into(),
        reason: reason.into(),
        last_transition_time: Some(since),
    }
}

fn owned_by(app: &Application, set: &ApplicationSet) -> bool {
    app.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "ApplicationSet" && Some(&o.uid) == set.metadata.uid.as_ref())
}

/// Reconcile one ApplicationSet.
pub async fn reconcile(c: &Arc<Controller>, name: &str) {
    let key = ObjectRef::new(name).within(&c.settings.namespace);
    let Some(set) = c.appsets.get(&key) else {
        return;
    };
    if set.metadata.deletion_timestamp.is_some() {
        // Owned Applications go with it by garbage collection (ownerReferences).
        return;
    }
    let repo = c.repo.clone();
    let secrets = crate::reconcile::repo_secrets(c);
    let clusters = clusters_of(c);
    let set_for_generation = (*set).clone();
    let generated = tokio::task::spawn_blocking(move || {
        let repos = GitRepos {
            repo: &repo,
            secrets: &secrets,
        };
        tiphys_appset::applications(
            &set_for_generation,
            &Inputs {
                repos: &repos,
                clusters: &clusters,
            },
        )
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let previous = set.status.clone().unwrap_or_default();
    let mut status = ApplicationSetStatus {
        application_status: previous.application_status.clone(),
        ..Default::default()
    };
    match generated {
        Err(message) => {
            status.conditions = vec![
                condition(
                    "ErrorOccurred",
                    true,
                    "ApplicationGenerationFromParamsError",
                    &message,
                    &previous.conditions,
                ),
                condition(
                    "ParametersGenerated",
                    false,
                    "ErrorOccurred",
                    &message,
                    &previous.conditions,
                ),
                condition(
                    "ResourcesUpToDate",
                    false,
                    "ErrorOccurred",
                    &message,
                    &previous.conditions,
                ),
            ];
            status.resources = previous.resources.clone();
        }
        Ok(apps) => match apply(c, &set, &apps).await {
            Ok(()) => {
                status.conditions = vec![
                    condition(
                        "ErrorOccurred",
                        false,
                        "ApplicationSetUpToDate",
                        "Successfully generated parameters for all Applications",
                        &previous.conditions,
                    ),
                    condition(
                        "ParametersGenerated",
                        true,
                        "ParametersGenerated",
                        "Successfully generated parameters for all Applications",
                        &previous.conditions,
                    ),
                    condition(
                        "ResourcesUpToDate",
                        true,
                        "ApplicationSetUpToDate",
                        "ApplicationSet up to date",
                        &previous.conditions,
                    ),
                ];
                status.resources = apps
                    .iter()
                    .take(MAX_STATUS_RESOURCES)
                    .map(|a| {
                        let name = a.metadata.name.clone().unwrap_or_default();
                        let live = c
                            .apps
                            .get(&ObjectRef::new(&name).within(&c.settings.namespace));
                        let s = live.and_then(|l| l.status.clone()).unwrap_or_default();
                        ResourceStatus {
                            group: tiphys_model::GROUP.into(),
                            version: tiphys_model::VERSION.into(),
                            kind: "Application".into(),
                            namespace: c.settings.namespace.clone(),
                            name,
                            status: Some(s.sync.status),
                            health: Some(s.health),
                            ..Default::default()
                        }
                    })
                    .collect();
            }
            Err(message) => {
                status.conditions = vec![
                    condition(
                        "ErrorOccurred",
                        true,
                        "ApplicationSetApplicationsError",
                        &message,
                        &previous.conditions,
                    ),
                    condition(
                        "ParametersGenerated",
                        true,
                        "ParametersGenerated",
                        "Successfully generated parameters for all Applications",
                        &previous.conditions,
                    ),
                    condition(
                        "ResourcesUpToDate",
                        false,
                        "ApplicationSetApplicationsError",
                        &message,
                        &previous.conditions,
                    ),
                ];
                status.resources = previous.resources.clone();
            }
        },
    }
    if status != previous {
        let api: Api<ApplicationSet> = Api::namespaced(c.client.clone(), &c.settings.namespace);
        if let Err(e) = api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            tracing::warn!(appset = name, error = %e, "writing ApplicationSet status failed");
        }
    }
    c.appset_queue
        .add_at(name, Instant::now() + requeue_after(&set));
}

/// Create, update and delete owned Applications as the policy allows.
async fn apply(c: &Controller, set: &ApplicationSet, apps: &[Application]) -> Result<(), String> {
    let policy = policy(set);
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    let owner = OwnerReference {
        api_version: tiphys_model::API_VERSION.into(),
        kind: "ApplicationSet".into(),
        name: set.metadata.name.clone().unwrap_or_default(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let existing: BTreeMap<String, Arc<Application>> = c
        .apps
        .state()
        .into_iter()
        .filter(|a| owned_by(a, set))
        .filter_map(|a| Some((a.metadata.name.clone()?, a)))
        .collect();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut writes = Vec::new();
    for app in apps {
        let name = app.metadata.name.clone().unwrap_or_default();
        if existing.contains_key(&name) && !policy.update {
            continue;
        }
        if !existing.contains_key(&name) {
            // Never take over an Application that someone else created.
            if let Some(other) = c
                .apps
                .get(&ObjectRef::new(&name).within(&c.settings.namespace))
                && !owned_by(&other, set)
            {
                return Err(format!(
                    "Application {name} already exists and is not owned by this ApplicationSet"
                ));
            }
        }
        let mut object = serde_json::to_value(app).map_err(|e| e.to_string())?;
        object["metadata"]["ownerReferences"] = json!([owner]);
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
            map.remove("operation");
        }
        writes.push((name, object));
    }
    // Many small writes: keep several in flight (the API server handles them concurrently).
    let results: Vec<Result<(), String>> = futures::stream::iter(writes)
        .map(|(name, object)| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                api.patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        format!(
                            "applying Application {name}: {}",
                            crate::apply::api_message(&e)
                        )
                    })
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    if policy.delete {
        let wanted: BTreeSet<String> = apps
            .iter()
            .filter_map(|a| a.metadata.name.clone())
            .collect();
        for (name, _) in existing.iter().filter(|(n, _)| !wanted.contains(*n)) {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if crate::apply::is_not_found(&e) => {}
                Err(e) => {
                    return Err(format!(
                        "deleting Application {name}: {}",
                        crate::apply::api_message(&e)
                    ));
                }
            }
        }
    }
    Ok(())
}
