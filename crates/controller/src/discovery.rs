//! Which resources a cluster serves: group/version/kind → plural and scope, refreshed when an
//! unknown kind is asked for (a CRD that appeared later), at most once per few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use kube::discovery::{ApiResource, Discovery, Scope};

/// How often an unknown kind may trigger a fresh discovery.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

#[derive(Default)]
struct State {
    /// (group, version, kind) → resource.
    exact: HashMap<(String, String, String), Resolved>,
    /// (group, kind) → the preferred version's resource.
    preferred: HashMap<(String, String), Resolved>,
    refreshed: Option<Instant>,
    /// The last discovery failed: absence of a kind proves nothing.
    partial: bool,
    /// What the last full discovery found, for Helm's `.Capabilities`.
    capabilities: Option<std::sync::Arc<tiphys_render::Capabilities>>,
}

pub struct Resolver {
    client: Client,
    state: Mutex<State>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("API discovery failed: {0}")]
    Failed(String),
    #[error("the server does not serve {kind} in {api_version}")]
    Unknown { api_version: String, kind: String },
}

impl Resolver {
    pub fn new(client: Client) -> Resolver {
        Resolver {
            client,
            state: Mutex::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn lookup(&self, api_version: &str, kind: &str) -> Option<Resolved> {
        let (group, version) = split_api_version(api_version);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .exact
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .cloned()
    }

    /// The preferred version of (group, kind), for objects known only by group and kind.
    pub async fn preferred(&self, group: &str, kind: &str) -> Result<Resolved, DiscoveryError> {
        let find = |s: &State| {
            s.preferred
                .get(&(group.to_string(), kind.to_string()))
                .cloned()
        };
        if let Some(found) = find(&self.state.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(found);
        }
        self.refresh_if_stale().await?;
        find(&self.state.lock().unwrap_or_else(|p| p.into_inner())).ok_or_else(|| {
            DiscoveryError::Unknown {
                api_version: group.to_string(),
                kind: kind.to_string(),
            }
        })
    }

    /// Resolve `apiVersion`/`kind`; an unknown kind is looked up in its group version right
    /// away (one small request), so a CRD created a moment ago is found.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, DiscoveryError> {
        if let Some(found) = self.lookup(api_version, kind) {
            return Ok(found);
        }
        let (group, version) = split_api_version(api_version);
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, caps)) => {
                let resolved = Resolved {
                    namespaced: caps.scope == Scope::Namespaced,
                    resource,
                };
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.exact.insert(
                    (group.to_string(), version.to_string(), kind.to_string()),
                    resolved.clone(),
                );
                state
                    .preferred
                    .entry((group.to_string(), kind.to_string()))
                    .or_insert_with(|| resolved.clone());
                Ok(resolved)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Err(DiscoveryError::Unknown {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            }),
            Err(kube::Error::Discovery(_)) => Err(DiscoveryError::Unknown {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            }),
            Err(e) => Err(DiscoveryError::Failed(e.to_string())),
        }
    }

    /// The cluster's version and every `group/version` and `group/version/Kind` it serves
    /// (as Argo CD hands them to Helm), from one full discovery, renewed when discovery is.
    pub async fn capabilities(
        &self,
    ) -> Result<std::sync::Arc<tiphys_render::Capabilities>, DiscoveryError> {
        let known = |s: &State| s.capabilities.clone();
        if let Some(c) = known(&self.state.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(c);
        }
        let _one_at_a_time = self.refresh.lock().await;
        if let Some(c) = known(&self.state.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(c);
        }
        let never_listed = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refreshed
            .is_none();
        if never_listed {
            self.refresh().await?;
        }
        let version = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| DiscoveryError::Failed(e.to_string()))?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut api_versions: Vec<String> = state
            .exact
            .values()
            .flat_map(|r| {
                let gv = r.resource.api_version.clone();
                let gvk = format!("{gv}/{}", r.resource.kind);
                [gv, gvk]
            })
            .collect();
        api_versions.sort();
        api_versions.dedup();
        let capabilities = std::sync::Arc::new(tiphys_render::Capabilities {
            kube_version: version.git_version,
            api_versions,
        });
        state.capabilities = Some(capabilities.clone());
        Ok(capabilities)
    }

    /// Whether the last discovery was complete.
    pub fn is_partial(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).partial
    }

    async fn refresh_if_stale(&self) -> Result<(), DiscoveryError> {
        let _one_at_a_time = self.refresh.lock().await;
        let fresh = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refreshed
            .is_some_and(|t| t.elapsed() < REFRESH_INTERVAL);
        if fresh {
            return Ok(());
        }
        self.refresh().await
    }

    /// Run discovery now.
    pub async fn refresh(&self) -> Result<(), DiscoveryError> {
        let result = Discovery::new(self.client.clone()).run().await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.refreshed = Some(Instant::now());
        let discovery = match result {
            Ok(d) => d,
            Err(e) => {
                state.partial = true;
                return Err(DiscoveryError::Failed(e.to_string()));
            }
        };
        state.partial = false;
        state.capabilities = None;
        state.exact.clear();
        state.preferred.clear();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, caps) in group.versioned_resources(version) {
                    if resource.plural.contains('/') {
                        continue;
                    }
                    let resolved = Resolved {
                        namespaced: caps.scope == Scope::Namespaced,
                        resource: resource.clone(),
                    };
                    state.exact.insert(
                        (
                            resource.group.clone(),
                            resource.version.clone(),
                            resource.kind.clone(),
                        ),
                        resolved,
                    );
                }
            }
            for (resource, caps) in group.recommended_resources() {
                state.preferred.insert(
                    (resource.group.clone(), resource.kind.clone()),
                    Resolved {
                        namespaced: caps.scope == Scope::Namespaced,
                        resource,
                    },
                );
            }
        }
        Ok(())
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}
