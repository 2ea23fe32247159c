//! The Application controller: watches Applications, renders their sources, compares with the
//! live state of their destination clusters, syncs (automatically or on request), and writes
//! `Application.status` the way Argo CD does.
//!
//! ```text
//!  Applications ─┐                        ┌─► status (sync, health, resources, conditions)
//!  AppProjects  ─┤  queue ─► reconcile ───┼─► operation (sync steps: tiphys-sync)
//!  Secrets      ─┘    ▲        │          └─► Events
//!                     │        ▼
//!  live caches ───────┘  repo server (git + render cache, blocking pool)
//!  (one watch per kind per cluster; changes wake the owning app)
//! ```
#![forbid(unsafe_code)]

pub mod apply;
pub mod cache;
pub mod clusters;
pub mod compare;
pub mod discovery;
mod events;
pub mod manifests;
pub mod metrics;
pub mod project;
pub mod queue;
mod reconcile;
pub mod settings;
pub mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tiphys_model::{AppProject, Application};

pub use reconcile::{AppMemory, Desired, compare_app};
pub use settings::Settings;

/// Everything the reconcilers share.
pub struct Controller {
    pub settings: Settings,
    pub client: kube::Client,
    pub apps: Store<Application>,
    pub projects: Store<AppProject>,
    pub secrets: Store<Secret>,
    pub configs: Store<ConfigMap>,
    pub clusters: clusters::Clusters,
    pub repo: Arc<manifests::RepoServer>,
    pub queue: queue::Queue,
    pub metrics: metrics::Metrics,
    pub memory: Mutex<std::collections::HashMap<String, AppMemory>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("watching {what}: {message}")]
    Watch { what: &'static str, message: String },
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, tokio::task::JoinHandle<()>)
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
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff())
        .applied_objects()
        .for_each(|_| futures::future::ready(()));
    (reader, tokio::spawn(stream))
}

impl Controller {
    /// Start watching and reconciling; runs until the returned future is dropped or the
    /// process ends.
    pub async fn run(client: kube::Client, settings: Settings) -> Result<(), ControllerError> {
        let controller = Controller::start(client, settings).await?;
        controller.serve().await
    }

    /// Build the controller and start its watches (not yet reconciling).
    pub async fn start(
        client: kube::Client,
        settings: Settings,
    ) -> Result<Arc<Controller>, ControllerError> {
        let ns = settings.namespace.clone();
        let cm: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let argocd_cm = cm.get_opt(settings::ARGOCD_CM).await?;
        let tracking = settings::tracking(argocd_cm.as_ref());
        let (wake_tx, mut wake_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (apps, _) = spawn_reflector(
            Api::<Application>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
        );
        let (projects, _) = spawn_reflector(
            Api::<AppProject>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
        );
        let (secrets, _) = spawn_reflector(
            Api::<Secret>::namespaced(client.clone(), &ns),
            watcher::Config::default().labels(clusters::SECRET_TYPE_LABEL),
        );
        let (configs, _) = spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &ns),
            watcher::Config::default().fields(&format!("metadata.name={}", settings::ARGOCD_CM)),
        );
        for (store, what) in [
            (
                apps.clone().wait_until_ready().await.is_err(),
                "applications",
            ),
            (projects.wait_until_ready().await.is_err(), "appprojects"),
            (secrets.wait_until_ready().await.is_err(), "secrets"),
            (configs.wait_until_ready().await.is_err(), "configmaps"),
        ] {
            if store {
                return Err(ControllerError::Watch {
                    what,
                    message: "the watch ended before its first list".into(),
                });
            }
        }
        let controller = Arc::new(Controller {
            clusters: clusters::Clusters::new(client.clone(), tracking, wake_tx),
            repo: Arc::new(manifests::RepoServer::new(settings.cache_dir.clone())),
            settings,
            client,
            apps,
            projects,
            secrets,
            configs,
            queue: queue::Queue::default(),
            metrics: metrics::Metrics::default(),
            memory: Mutex::new(Default::default()),
        });
        // Live-object changes wake their app.
        let weak = Arc::downgrade(&controller);
        tokio::spawn(async move {
            while let Some(app) = wake_rx.recv().await {
                let Some(c) = weak.upgrade() else { return };
                c.queue.add(&app);
            }
        });
        Ok(controller)
    }

    /// Reconcile until dropped: an Application watch feeding the queue, a ticker for periodic
    /// refreshes and delayed wake-ups, and the workers.
    pub async fn serve(self: Arc<Self>) -> Result<(), ControllerError> {
        let ns = self.settings.namespace.clone();
        let events = watcher(
            Api::<Application>::namespaced(self.client.clone(), &ns),
            watcher::Config::default(),
        )
        .default_backoff()
        .touched_objects();
        let me = self.clone();
        let feeder = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                if let Ok(app) = event
                    && let Some(name) = app.metadata.name.as_deref()
                {
                    me.queue.add(name);
                }
            }
        });
        let me = self.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                me.queue.promote_due();
            }
        });
        let mut workers = Vec::new();
        for _ in 0..self.settings.workers.max(1) {
            let me = self.clone();
            workers.push(tokio::spawn(async move {
                while let Some(app) = me.queue.next().await {
                    let started = std::time::Instant::now();
                    reconcile::reconcile(&me, &app).await;
                    me.metrics
                        .reconcile_seconds
                        .observe(started.elapsed().as_secs_f64());
                    me.queue.done(&app);
                }
            }));
        }
        let _ = feeder.await;
        ticker.abort();
        for w in workers {
            w.abort();
        }
        Err(ControllerError::Watch {
            what: "applications",
            message: "the watch stream ended".into(),
        })
    }

    /// Ask for a refresh of `app` (webhook, CLI): the next reconcile re-resolves its revision.
    pub fn refresh(&self, app: &str, hard: bool) {
        {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            let m = memory.entry(app.to_string()).or_default();
            m.refresh_requested = true;
            m.hard_refresh |= hard;
        }
        self.queue.add(app);
    }

    /// Every Application currently known.
    pub fn applications(&self) -> Vec<Arc<Application>> {
        self.apps.state()
    }
}
