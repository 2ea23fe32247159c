//! A Kubernetes-API-compatible server embedded in Tiphys, for `tiphys up` and for tests.
//!
//! It behaves like kube-apiserver plus the parts of kube-controller-manager a GitOps engine
//! depends on (garbage collection, namespace deletion) and, optionally, simulated workloads.
//! It knows nothing about GitOps.
//!
//! # Layout
//!
//! ```text
//!  server ──► request (route, negotiate) ──► api (verbs) ──► write (defaults, validation,
//!    │                                          │              managed fields) ──► store
//!    ├─► discovery, openapi                     └─► watch ◄──── store events ◄─────┘
//!    └─► tls, auth                 lifecycle (GC, namespaces), simulate, crd ◄── store events
//! ```
//!
//! * `store` — objects as JSON bytes, one resourceVersion counter, bounded event history;
//!   `persist` makes it durable with `--data-dir`.
//! * `resources` — the served types (built-in table + CRDs); `crd` — CRD registration and
//!   structural-schema pruning/validation.
//! * `defaults`, `quantity` — server-side defaulting and the typed round-trip.
//! * `fields` — managedFields and server-side apply.
//! * `protobuf` — decoding the Protobuf bodies kubectl sends for `create`.
#![forbid(unsafe_code)]

mod api;
mod clock;
mod crd;
mod defaults;
mod discovery;
pub mod error;
mod fields;
pub mod kubeconfig;
mod lifecycle;
mod openapi;
mod persist;
mod protobuf;
mod quantity;
mod request;
mod resources;
mod selector;
mod server;
mod simulate;
mod store;
mod table;
mod tls;
mod typed;
mod watch;
mod write;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use simulate::SIMULATE_ANNOTATION;

/// How to start a local cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Keep objects, the CA and the token here; in memory when None.
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS (the default) or plain HTTP.
    pub tls: bool,
    /// Simulate workload controllers, reporting progress after this delay; None disables.
    pub simulate: Option<Duration>,
    /// Events kept for watches resuming from a resourceVersion; older ones get 410 Expired.
    pub watch_history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            tls: true,
            simulate: Some(Duration::from_millis(200)),
            watch_history: store::DEFAULT_HISTORY,
        }
    }
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    #[error("reading or writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("loading stored objects: {0}")]
    Load(error::ApiError),
}

/// Shared state of a running cluster.
pub struct Cluster {
    store: store::Store,
    registry: resources::Registry,
    allocator: defaults::SequentialAllocator,
    lifecycle: Arc<Notify>,
    token: String,
    /// `host:port` clients reach us at (for `/api` serverAddressByClientCIDRs).
    address: String,
}

/// A running local cluster. Dropping it stops accepting connections.
pub struct LocalCluster {
    addr: SocketAddr,
    url: String,
    token: String,
    ca_pem: Option<String>,
    cluster: Arc<Cluster>,
    tasks: Vec<JoinHandle<()>>,
}

fn load_or_create_token(dir: Option<&Path>) -> Result<String, StartError> {
    use rand::Rng;
    let fresh = || -> String {
        let mut rng = rand::rng();
        (0..40)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect()
    };
    let Some(dir) = dir else { return Ok(fresh()) };
    let path = dir.join("token");
    let io = |source| StartError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        return Ok(std::fs::read_to_string(&path)
            .map_err(io)?
            .trim()
            .to_string());
    }
    let token = fresh();
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    std::fs::write(&path, &token).map_err(io)?;
    Ok(token)
}

impl LocalCluster {
    /// Start serving. Returns once the listener is bound.
    pub async fn start(config: Config) -> Result<LocalCluster, StartError> {
        let dir = config.data_dir.as_deref();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let token = load_or_create_token(dir)?;
        let persistence = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| StartError::Io {
                    path: d.display().to_string(),
                    source,
                })?;
                Some(persist::Persistence::open(d)?)
            }
            None => None,
        };
        let store =
            store::Store::new(persistence, config.watch_history).map_err(StartError::Load)?;
        let cluster = Arc::new(Cluster {
            store,
            registry: resources::Registry::default(),
            allocator: defaults::SequentialAllocator::default(),
            lifecycle: Arc::new(Notify::new()),
            token: token.clone(),
            address: addr.to_string(),
        });
        crd::restore(&cluster);
        bootstrap(&cluster);

        let (tls_config, ca_pem) = if config.tls {
            let tls = tls::setup(dir, &[addr.ip()])?;
            (Some(tls.server_config), Some(tls.ca_pem))
        } else {
            (None, None)
        };
        let scheme = if config.tls { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = format!("{scheme}://{host}:{}", addr.port());

        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            cluster.clone(),
            tls_config,
        ))];
        tasks.push(tokio::spawn(lifecycle::run(Arc::downgrade(&cluster))));
        if let Some(delay) = config.simulate {
            tasks.push(tokio::spawn(simulate::run(Arc::downgrade(&cluster), delay)));
        }
        Ok(LocalCluster {
            addr,
            url,
            token,
            ca_pem,
            cluster,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM) that signs the serving certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn kubeconfig(&self) -> String {
        kubeconfig::render(&self.url, self.ca_pem.as_deref(), &self.token)
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, self.kubeconfig())
    }

    /// Objects stored and the bytes of JSON they take (for benchmarks).
    pub fn footprint(&self) -> (usize, usize) {
        self.cluster.store.footprint()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The objects every cluster starts with.
fn bootstrap(cluster: &Arc<Cluster>) {
    let namespaces = resources::GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    };
    let Some(ns_type) = cluster.registry.lookup("", "v1", "namespaces") else {
        return;
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if cluster.store.get(&namespaces, "", name).is_some() {
            continue;
        }
        let mut opts = write::WriteOptions {
            field_manager: "kube-apiserver".into(),
            ..Default::default()
        };
        if let Ok(obj) = cluster.prepare_create(
            &ns_type,
            None,
            json!({"metadata": {"name": name}}),
            &mut opts,
            false,
        ) {
            let _ = cluster.store.put(&namespaces, obj, None);
        }
    }
    let services = resources::GroupResource {
        group: String::new(),
        resource: "services".into(),
    };
    if cluster
        .store
        .get(&services, "default", "kubernetes")
        .is_none()
        && let Some(svc_type) = cluster.registry.lookup("", "v1", "services")
    {
        let mut opts = write::WriteOptions {
            field_manager: "kube-apiserver".into(),
            ..Default::default()
        };
        let svc = json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
        if let Ok(obj) = cluster.prepare_create(&svc_type, Some("default"), svc, &mut opts, false) {
            let _ = cluster.store.put(&services, obj, None);
        }
    }
}
