//! What the server knows, all of it from the cluster: watch caches of the control namespace's
//! Applications, ApplicationSets, AppProjects, Secrets and ConfigMaps. Nothing is kept only
//! in memory that another replica would need (login failures aside, as in Argo CD).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tiphys_model::{AppProject, Application, ApplicationSet};

use tiphys_controller::clusters::{ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use tiphys_model::application::ApplicationDestination;
use tiphys_source::credentials::{RepoSecret, SecretKind};

use crate::auth::ratelimit::LoginLimiter;
use crate::error::{ApiError, ApiResult};
use crate::rbac::{Policy, PolicySources};

pub const ARGOCD_CM: &str = "argocd-cm";
pub const ARGOCD_RBAC_CM: &str = "argocd-rbac-cm";
pub const ARGOCD_SECRET: &str = "argocd-secret";
pub const INITIAL_ADMIN_SECRET: &str = "argocd-initial-admin-secret";

/// A change to an Application, as the watch streams send it.
#[derive(Clone, Debug)]
pub struct AppEvent {
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    pub app: Arc<Application>,
}

pub struct State {
    pub client: kube::Client,
    pub namespace: String,
    pub apps: Store<Application>,
    pub appsets: Store<ApplicationSet>,
    pub projects: Store<AppProject>,
    pub secrets: Store<Secret>,
    pub configs: Store<ConfigMap>,
    /// Whether the server is reached over TLS (cookies are then `Secure`).
    pub tls: bool,
    pub limiter: LoginLimiter,
    /// Sessions this replica ended (the cluster's record reaches it through the watch).
    pub revoked: crate::auth::revoked::Revoked,
    pub metrics: crate::metrics::Metrics,
    /// Repositories and renders (repository checks, ApplicationSet previews, manifests).
    pub repo: Arc<tiphys_controller::manifests::RepoServer>,
    /// Every Application change, for the streams.
    pub app_events: tokio::sync::broadcast::Sender<AppEvent>,
    /// The newest resourceVersion the Application watch has delivered (0: none yet).
    apps_version: Arc<AtomicU64>,
    policy: Mutex<Option<(String, Arc<Policy>)>>,
    /// Clients for destination clusters declared by Secrets, with the declaration they were
    /// made from (a changed Secret makes a new client).
    destinations: Mutex<BTreeMap<String, (ClusterSecret, kube::Client)>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for State {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn reflect<K>(api: Api<K>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watch(api)).for_each(|_| futures::future::ready(()));
    (reader, tokio::spawn(stream))
}

/// A watch whose objects arrive without `managedFields`: nothing here reads them, and they
/// are about half of what an object weighs in memory and in answers.
fn watch<K>(
    api: Api<K>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .modify(|o: &mut K| {
            o.meta_mut().managed_fields = None;
        })
        .default_backoff()
}

/// The Application watch, also telling the streams what changed.
fn reflect_apps(
    api: Api<Application>,
    events: tokio::sync::broadcast::Sender<AppEvent>,
    version: Arc<AtomicU64>,
) -> (Store<Application>, tokio::task::JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let mut known = std::collections::HashSet::new();
    let stream = reflector::reflector(writer, watch(api)).for_each(move |event| {
        let (kind, app) = match event {
            Ok(watcher::Event::Apply(app) | watcher::Event::InitApply(app)) => {
                let name = app.metadata.name.clone().unwrap_or_default();
                let kind = if known.insert(name) {
                    "ADDED"
                } else {
                    "MODIFIED"
                };
                // The store's copy (already updated): events hold no second one.
                let shared = store
                    .get(&ObjectRef::from_obj(&app))
                    .unwrap_or_else(|| Arc::new(app));
                (kind, shared)
            }
            Ok(watcher::Event::Delete(app)) => {
                known.remove(app.metadata.name.as_deref().unwrap_or_default());
                ("DELETED", Arc::new(app))
            }
            _ => return futures::future::ready(()),
        };
        if let Some(v) = app
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
        {
            version.fetch_max(v, Ordering::Relaxed);
        }
        if events.receiver_count() > 0 {
            let _ = events.send(AppEvent { kind, app });
        }
        futures::future::ready(())
    });
    (reader, tokio::spawn(stream))
}

impl State {
    /// Start the watches and wait for their first lists.
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        tls: bool,
        cache_dir: std::path::PathBuf,
    ) -> ApiResult<State> {
        let (app_events, _) = tokio::sync::broadcast::channel(1024);
        let apps_version = Arc::new(AtomicU64::new(0));
        let (apps, t1) = reflect_apps(
            Api::<Application>::namespaced(client.clone(), namespace),
            app_events.clone(),
            apps_version.clone(),
        );
        let (appsets, t2) = reflect(Api::<ApplicationSet>::namespaced(client.clone(), namespace));
        let (projects, t3) = reflect(Api::<AppProject>::namespaced(client.clone(), namespace));
        let (secrets, t4) = reflect(Api::<Secret>::namespaced(client.clone(), namespace));
        let (configs, t5) = reflect(Api::<ConfigMap>::namespaced(client.clone(), namespace));
        let tasks = [t1, t2, t3, t4, t5]
            .iter()
            .map(|t| t.abort_handle())
            .collect();
        let state = State {
            client,
            namespace: namespace.to_string(),
            apps,
            appsets,
            projects,
            secrets,
            configs,
            tls,
            limiter: LoginLimiter::default(),
            revoked: Default::default(),
            metrics: crate::metrics::Metrics::default(),
            repo: Arc::new(tiphys_controller::manifests::RepoServer::new(cache_dir)),
            app_events,
            apps_version,
            policy: Mutex::new(None),
            destinations: Mutex::new(BTreeMap::new()),
            tasks,
        };
        for ready in [
            state.apps.wait_until_ready().await.is_ok(),
            state.appsets.wait_until_ready().await.is_ok(),
            state.projects.wait_until_ready().await.is_ok(),
            state.secrets.wait_until_ready().await.is_ok(),
            state.configs.wait_until_ready().await.is_ok(),
        ] {
            if !ready {
                return Err(ApiError::internal(
                    "watching the control namespace failed before its first list",
                ));
            }
        }
        Ok(state)
    }

    fn key<K: kube::Resource<DynamicType = ()>>(&self, name: &str) -> ObjectRef<K> {
        ObjectRef::new(name).within(&self.namespace)
    }

    /// What an Application list answers as its `resourceVersion`: the watch's newest, as
    /// Argo CD answers its informer's (empty before the first).
    pub fn apps_version(&self) -> String {
        match self.apps_version.load(Ordering::Relaxed) {
            0 => String::new(),
            v => v.to_string(),
        }
    }

    pub fn app(&self, name: &str) -> Option<Arc<Application>> {
        self.apps.get(&self.key(name))
    }

    pub fn project(&self, name: &str) -> Option<Arc<AppProject>> {
        self.projects.get(&self.key(name))
    }

    pub fn appset(&self, name: &str) -> Option<Arc<ApplicationSet>> {
        self.appsets.get(&self.key(name))
    }

    /// A ConfigMap's data (empty when it does not exist).
    pub fn config(&self, name: &str) -> BTreeMap<String, String> {
        self.configs
            .get(&self.key(name))
            .and_then(|c| c.data.clone())
            .unwrap_or_default()
    }

    /// Whether ConfigMap `name` has `key`, without copying its data.
    pub fn config_has(&self, name: &str, key: &str) -> bool {
        self.configs
            .get(&self.key(name))
            .is_some_and(|c| c.data.as_ref().is_some_and(|d| d.contains_key(key)))
    }

    /// A Secret's data as text (empty when it does not exist).
    pub fn secret(&self, name: &str) -> BTreeMap<String, String> {
        self.secrets
            .get(&self.key(name))
            .map(|s| secret_text(&s))
            .unwrap_or_default()
    }

    /// Repository credentials and credential templates, for reading git.
    pub fn repo_secrets(&self) -> Vec<(SecretKind, RepoSecret)> {
        self.secrets
            .state()
            .iter()
            .filter_map(|s| {
                RepoSecret::from_secret(
                    s.metadata.name.as_deref().unwrap_or_default(),
                    s.metadata.labels.as_ref()?,
                    &secret_text(s),
                )
            })
            .collect()
    }

    /// Clusters declared by Secrets.
    pub fn cluster_secrets(&self) -> Vec<ClusterSecret> {
        self.secrets
            .state()
            .iter()
            .filter_map(|s| ClusterSecret::from_secret(s))
            .collect()
    }

    /// How sources render here, as the controller renders them (argocd-cm's Kustomize
    /// options). Helm sees default capabilities: the server does not discover destinations.
    /// argocd-cm as the cache has it.
    pub fn argocd_cm(&self) -> Option<Arc<ConfigMap>> {
        self.configs.get(&self.key(ARGOCD_CM))
    }

    pub fn render_settings(&self) -> ApiResult<tiphys_controller::manifests::RenderSettings> {
        let cm = self.argocd_cm();
        let kustomize = tiphys_controller::settings::kustomize_build_options(cm.as_deref())
            .map_err(|e| ApiError::new(crate::error::Code::FailedPrecondition, e))?;
        Ok(tiphys_controller::manifests::RenderSettings {
            kustomize,
            capabilities: None,
        })
    }

    /// A client for the cluster `dest` names: this one for the in-cluster destination, else
    /// one made from its cluster Secret (and kept while the Secret stays the same).
    pub async fn destination_client(
        &self,
        dest: &ApplicationDestination,
    ) -> ApiResult<kube::Client> {
        let declared = self.cluster_secrets().into_iter().find(|s| {
            (!dest.server.is_empty() && s.server == dest.server)
                || (!dest.name.is_empty() && s.name == dest.name)
        });
        let Some(declared) = declared.filter(|d| d.server != IN_CLUSTER_SERVER) else {
            if dest.server == IN_CLUSTER_SERVER
                || (dest.server.is_empty() && dest.name == IN_CLUSTER_NAME)
            {
                return Ok(self.client.clone());
            }
            return Err(ApiError::invalid(format!(
                "there is no cluster {}",
                if dest.server.is_empty() {
                    &dest.name
                } else {
                    &dest.server
                }
            )));
        };
        if let Some((known, client)) = self
            .destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&declared.server)
            && *known == declared
        {
            return Ok(client.clone());
        }
        let client = declared
            .client()
            .await
            .map_err(|e| ApiError::new(crate::error::Code::Unavailable, e))?;
        self.destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(declared.server.clone(), (declared, client.clone()));
        Ok(client)
    }

    /// `server.secretkey`: the key sessions and tokens are signed with.
    pub fn signing_key(&self) -> ApiResult<Vec<u8>> {
        self.secrets
            .get(&self.key(ARGOCD_SECRET))
            .and_then(|s| s.data.clone())
            .and_then(|d| d.get("server.secretkey").map(|v| v.0.clone()))
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    crate::error::Code::Unavailable,
                    "the server has no signing key yet (argocd-secret server.secretkey)",
                )
            })
    }

    /// The policy of argocd-rbac-cm and the AppProjects' roles, rebuilt when either changed.
    pub fn policy(&self) -> ApiResult<Arc<Policy>> {
        let rbac = self.configs.get(&self.key(ARGOCD_RBAC_CM));
        let projects = self.projects.state();
        let mut version = rbac
            .as_ref()
            .and_then(|c| c.metadata.resource_version.clone())
            .unwrap_or_default();
        for p in &projects {
            version.push('/');
            version.push_str(p.metadata.resource_version.as_deref().unwrap_or_default());
        }
        {
            let cached = self.policy.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((v, policy)) = cached.as_ref()
                && *v == version
            {
                return Ok(policy.clone());
            }
        }
        let sources = PolicySources {
            config: rbac.and_then(|c| c.data.clone()).unwrap_or_default(),
            projects: projects.iter().flat_map(|p| project_policy(p)).collect(),
        };
        let policy = Arc::new(
            Policy::build(&sources).map_err(|e| ApiError::internal(format!("RBAC policy: {e}")))?,
        );
        *self.policy.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, policy.clone()));
        Ok(policy)
    }
}

pub fn secret_text(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The policy lines an AppProject's roles contribute. A role may only speak for itself and
/// about its own project: lines naming another subject, or objects outside the project, are
/// left out (and logged) — a project's editor cannot grant rights elsewhere.
pub fn project_policy(project: &AppProject) -> Vec<(String, String)> {
    let name = project.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for role in &project.spec.roles {
        let subject = format!("proj:{name}:{}", role.name);
        let mut lines = String::new();
        for line in &role.policies {
            if crate::rbac::project_line_ok(&name, &role.name, line) {
                lines.push_str(line);
                lines.push('\n');
            } else {
                tracing::warn!(project = %name, role = %role.name, policy = %line, "project role policy ignored: it must be `p, {subject}, <resource>, <action>, {name}/<object>[, allow|deny]`");
            }
        }
        for group in &role.groups {
            lines.push_str(&format!("g, {group}, {subject}\n"));
        }
        out.push((format!("AppProject {name} role {}", role.name), lines));
    }
    out
}
