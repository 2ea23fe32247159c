//! Destination clusters: the controller's own (`https://kubernetes.default.svc`,
//! `in-cluster`) and those declared by Argo CD cluster Secrets (`name`, `server`, `config`).
//! Each has its own client, discovery and live cache, built on first use and rebuilt when its
//! Secret changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tiphys_model::application::ApplicationDestination;

use crate::cache::{LiveCache, Tracking};
use crate::discovery::Resolver;

pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
pub const IN_CLUSTER_NAME: &str = "in-cluster";
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// One destination cluster.
pub struct ClusterHandle {
    pub name: String,
    pub server: String,
    pub client: kube::Client,
    pub resolver: Resolver,
    pub cache: Arc<LiveCache>,
}

/// A cluster declared by a Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSecret {
    pub name: String,
    pub server: String,
    pub config: Value,
    pub labels: BTreeMap<String, String>,
}

impl ClusterSecret {
    pub fn from_secret(secret: &Secret) -> Option<ClusterSecret> {
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        if labels.get(SECRET_TYPE_LABEL).map(String::as_str) != Some("cluster") {
            return None;
        }
        let field = |k: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k)).cloned())
        };
        let server = field("server")?;
        Some(ClusterSecret {
            name: field("name").unwrap_or_else(|| server.clone()),
            server,
            config: field("config")
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or(Value::Null),
            labels,
        })
    }

    /// A kube client for this cluster, from `config` (bearerToken, username/password,
    /// tlsClientConfig with insecure, caData, certData, keyData, serverName).
    pub async fn client(&self) -> Result<kube::Client, String> {
        let c = &self.config;
        let tls = c.get("tlsClientConfig").cloned().unwrap_or(Value::Null);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {
                "server": self.server,
                "certificate-authority-data": s(&tls, "caData"),
                "insecure-skip-tls-verify": tls.get("insecure").and_then(Value::as_bool),
                "tls-server-name": s(&tls, "serverName"),
            }}],
            "users": [{"name": "u", "user": {
                "token": s(c, "bearerToken"),
                "username": s(c, "username"),
                "password": s(c, "password"),
                "client-certificate-data": s(&tls, "certData"),
                "client-key-data": s(&tls, "keyData"),
            }}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        });
        let kubeconfig: kube::config::Kubeconfig =
            serde_json::from_value(strip_nulls(kubeconfig)).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| format!("cluster {}: {e}", self.server))?;
        kube::Client::try_from(config).map_err(|e| format!("cluster {}: {e}", self.server))
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

pub struct Clusters {
    in_cluster: Arc<ClusterHandle>,
    others: Mutex<HashMap<String, (ClusterSecret, Arc<ClusterHandle>)>>,
    tracking: Tracking,
    wake: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Clusters {
    pub fn new(
        client: kube::Client,
        tracking: Tracking,
        wake: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Clusters {
        let in_cluster = Arc::new(ClusterHandle {
            name: IN_CLUSTER_NAME.into(),
            server: IN_CLUSTER_SERVER.into(),
            resolver: Resolver::new(client.clone()),
            cache: LiveCache::new(client.clone(), tracking.clone(), wake.clone()),
            client,
        });
        Clusters {
            in_cluster,
            others: Mutex::new(HashMap::new()),
            tracking,
            wake,
        }
    }

    pub fn in_cluster(&self) -> Arc<ClusterHandle> {
        self.in_cluster.clone()
    }

    /// The cluster `dest` names, given the cluster Secrets that exist now.
    pub async fn find(
        &self,
        dest: &ApplicationDestination,
        secrets: &[ClusterSecret],
    ) -> Result<Arc<ClusterHandle>, String> {
        let declared = secrets.iter().find(|s| {
            (!dest.server.is_empty() && s.server == dest.server)
                || (!dest.name.is_empty() && s.name == dest.name)
        });
        let Some(declared) = declared else {
            if dest.server == IN_CLUSTER_SERVER
                || (dest.server.is_empty() && dest.name == IN_CLUSTER_NAME)
            {
                return Ok(self.in_cluster());
            }
            return Err(if dest.name.is_empty() {
                format!("there are no clusters with this URL: {}", dest.server)
            } else {
                format!("there are no clusters with this name: {}", dest.name)
            });
        };
        if declared.server == IN_CLUSTER_SERVER {
            return Ok(self.in_cluster());
        }
        if let Some((secret, handle)) = self
            .others
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&declared.server)
            && secret == declared
        {
            return Ok(handle.clone());
        }
        let client = declared.client().await?;
        let handle = Arc::new(ClusterHandle {
            name: declared.name.clone(),
            server: declared.server.clone(),
            resolver: Resolver::new(client.clone()),
            cache: LiveCache::new(client.clone(), self.tracking.clone(), self.wake.clone()),
            client,
        });
        self.others
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(declared.server.clone(), (declared.clone(), handle.clone()));
        Ok(handle)
    }

    /// Every cluster in use, for metrics.
    pub fn all(&self) -> Vec<Arc<ClusterHandle>> {
        let mut all = vec![self.in_cluster()];
        all.extend(
            self.others
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|(_, h)| h.clone()),
        );
        all
    }
}
