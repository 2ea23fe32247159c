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
pub mod appset;
pub mod cache;
pub mod clusters;
pub mod compare;
pub mod discovery;
pub mod drift;
pub mod events;
pub mod manifests;
pub mod metrics;
pub mod notify;
mod operation;
pub mod pause;
mod poll;
pub mod project;
pub mod queue;
mod reconcile;
pub mod settings;
mod status;
pub mod webhook;
pub mod windows;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tiphys_model::{AppProject, Application, ApplicationSet};

pub use reconcile::{AppMemory, Desired, compare_app};
pub use settings::Settings;

/// Aborts the tasks it holds when dropped, so dropping `serve` stops every worker.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

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
    pub appsets: Store<ApplicationSet>,
    pub appset_queue: queue::Queue,
    pub metrics: metrics::Metrics,
    pub memory: Mutex<std::collections::HashMap<String, AppMemory>>,
    pub notify_configs: Store<ConfigMap>,
    pub notify_secrets: Store<Secret>,
    pub notifier: notify::Notifier,
    /// Kubernetes Events, posted in the background.
    pub events: events::Recorder,
    /// Has the notifier look at an app (or all of them).
    pub notify_wake: tokio::sync::mpsc::UnboundedSender<notify::Wake>,
    /// The Application watch; `serve` runs as long as it does.
    watches: Mutex<Option<tokio::task::JoinHandle<()>>>,
    _background: AbortOnDrop,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("watching {what}: {message}")]
    Watch { what: &'static str, message: String },
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// A store kept current by a watch; `on_change` sees every object once the store has it (or,
/// deleted — the second argument —, no longer has it).
fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    on_change: impl Fn(&K, bool) + Send + 'static,
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
    // managedFields are never read here, and they are most of an object's memory.
    let objects = watcher(api, config)
        .default_backoff()
        .modify(|o| o.meta_mut().managed_fields = None);
    let stream = reflector::reflector(writer, objects).for_each(move |event| {
        match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                on_change(&object, false)
            }
            Ok(watcher::Event::Delete(object)) => on_change(&object, true),
            Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
        }
        futures::future::ready(())
    });
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
        // Application changes wake the app, once the store already holds the change, and
        // have its notifications looked at (apart from the reconciles).
        let app_wake = wake_tx.clone();
        let (notify_tx, mut notify_rx) = tokio::sync::mpsc::unbounded_channel::<notify::Wake>();
        let app_notify = notify_tx.clone();
        // The notifier's own writes of its sent state wake nothing.
        let own_writes = notify::OwnWrites::default();
        let notifier_writes = own_writes.clone();
        // Which version of each app the store holds: the copies this controller wrote are let
        // go once the store has caught up with them.
        let (stored_tx, mut stored_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let (apps, apps_task) = spawn_reflector(
            Api::<Application>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            move |app: &Application, deleted| {
                if let (Some(name), Some(rv)) = (&app.metadata.name, &app.metadata.resource_version)
                {
                    let _ = stored_tx.send((name.clone(), rv.clone()));
                }
                if let Some(name) = &app.metadata.name
                    && !notifier_writes.is_ours(app)
                {
                    let _ = app_wake.send(name.clone());
                    // Only a deleted app is handed over whole (the store no longer has it);
                    // a copy of every changed one was a second store's worth of memory
                    // queued at a restart.
                    let _ = app_notify.send(if deleted {
                        notify::Wake::Deleted(Arc::new(app.clone()))
                    } else {
                        notify::Wake::App(name.clone())
                    });
                }
            },
        );
        // The notifications' ConfigMap and Secret: a change has every app looked at again.
        let config_notify = notify_tx.clone();
        let (notify_configs, notify_configs_task) = spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &ns),
            watcher::Config::default()
                .fields(&format!("metadata.name={}", notify::NOTIFICATIONS_CM)),
            move |_, _| {
                let _ = config_notify.send(notify::Wake::All);
            },
        );
        let secret_notify = notify_tx.clone();
        let (notify_secrets, notify_secrets_task) = spawn_reflector(
            Api::<Secret>::namespaced(client.clone(), &ns),
            watcher::Config::default()
                .fields(&format!("metadata.name={}", notify::NOTIFICATIONS_SECRET)),
            move |_, _| {
                let _ = secret_notify.send(notify::Wake::All);
            },
        );
        let (appset_tx, mut appset_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (appsets, appsets_task) = spawn_reflector(
            Api::<ApplicationSet>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            move |set: &ApplicationSet, _| {
                if let Some(name) = &set.metadata.name {
                    let _ = appset_tx.send(name.clone());
                }
            },
        );
        // A changed project (its windows, destinations, sources) wakes its apps.
        let (project_tx, mut project_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (projects, projects_task) = spawn_reflector(
            Api::<AppProject>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            move |project: &AppProject, _| {
                if let Some(name) = &project.metadata.name {
                    let _ = project_tx.send(name.clone());
                }
            },
        );
        let (secrets, secrets_task) = spawn_reflector(
            Api::<Secret>::namespaced(client.clone(), &ns),
            watcher::Config::default().labels(clusters::SECRET_TYPE_LABEL),
            |_, _| {},
        );
        let (configs, configs_task) = spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &ns),
            watcher::Config::default().fields(&format!("metadata.name={}", settings::ARGOCD_CM)),
            |_, _| {},
        );
        for (store, what) in [
            (
                apps.clone().wait_until_ready().await.is_err(),
                "applications",
            ),
            (projects.wait_until_ready().await.is_err(), "appprojects"),
            (secrets.wait_until_ready().await.is_err(), "secrets"),
            (configs.wait_until_ready().await.is_err(), "configmaps"),
            (
                notify_configs.wait_until_ready().await.is_err(),
                "configmaps",
            ),
            (notify_secrets.wait_until_ready().await.is_err(), "secrets"),
        ] {
            if store {
                return Err(ControllerError::Watch {
                    what,
                    message: "the watch ended before its first list".into(),
                });
            }
        }
        let metrics = metrics::Metrics::default();
        let events = events::Recorder::new(client.clone(), metrics.events_dropped.clone());
        let controller = Arc::new(Controller {
            clusters: clusters::Clusters::new(client.clone(), tracking, wake_tx),
            repo: {
                let repo = manifests::RepoServer::new(settings.cache_dir.clone());
                // A chart repository's index is asked for once per refresh interval, however
                // many apps use it.
                repo.charts.set_max_age(settings.resync);
                Arc::new(repo)
            },
            settings,
            client,
            apps,
            projects,
            secrets,
            configs,
            queue: queue::Queue::default(),
            appsets,
            appset_queue: queue::Queue::default(),
            metrics,
            memory: Mutex::new(Default::default()),
            notify_configs,
            notify_secrets,
            notifier: notify::Notifier::new(own_writes),
            events,
            notify_wake: notify_tx,
            watches: Mutex::new(Some(apps_task)),
            _background: AbortOnDrop(vec![
                notify_configs_task.abort_handle(),
                notify_secrets_task.abort_handle(),
                appsets_task.abort_handle(),
                projects_task.abort_handle(),
                secrets_task.abort_handle(),
                configs_task.abort_handle(),
            ]),
        });
        let weak = Arc::downgrade(&controller);
        tokio::spawn(async move {
            while let Some(set) = appset_rx.recv().await {
                let Some(c) = weak.upgrade() else { return };
                c.appset_queue.add(&set);
            }
        });
        let weak = Arc::downgrade(&controller);
        tokio::spawn(async move {
            while let Some(project) = project_rx.recv().await {
                let Some(c) = weak.upgrade() else { return };
                for app in c.apps.state() {
                    let of = if app.spec.project.is_empty() {
                        "default"
                    } else {
                        app.spec.project.as_str()
                    };
                    if of == project
                        && let Some(name) = &app.metadata.name
                    {
                        c.queue.add(name);
                    }
                }
            }
        });
        let weak = Arc::downgrade(&controller);
        let notify_ns = ns.clone();
        tokio::spawn(async move {
            while let Some(first) = notify_rx.recv().await {
                let Some(c) = weak.upgrade() else { return };
                // What queued up meanwhile is looked at once per app, as it is now: a busy
                // app's many writes cost one look, not one each.
                let mut everything = false;
                let mut changed: std::collections::BTreeMap<String, Option<Arc<Application>>> =
                    Default::default();
                let mut wake = Some(first);
                while let Some(w) = wake {
                    match w {
                        notify::Wake::All => everything = true,
                        notify::Wake::App(name) => {
                            changed.insert(name, None);
                        }
                        notify::Wake::Deleted(app) => {
                            let name = app.metadata.name.clone().unwrap_or_default();
                            changed.insert(name, Some(app));
                        }
                    }
                    wake = notify_rx.try_recv().ok();
                }
                if everything {
                    for app in c.apps.state() {
                        notify::evaluate(&c, &app, false).await;
                    }
                }
                for (name, last_seen) in changed {
                    match c.apps.get(&ObjectRef::new(&name).within(&notify_ns)) {
                        Some(_) if everything => {}
                        Some(current) => notify::evaluate(&c, &current, false).await,
                        None => {
                            if let Some(last_seen) = last_seen {
                                notify::evaluate(&c, &last_seen, true).await;
                            }
                            c.notifier.forget(&name);
                        }
                    }
                }
            }
        });
        let weak = Arc::downgrade(&controller);
        tokio::spawn(async move {
            while let Some((app, rv)) = stored_rx.recv().await {
                let Some(c) = weak.upgrade() else { return };
                let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(m) = memory.get_mut(&app) {
                    m.freshest.stored(&rv);
                }
            }
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
        let Some(feeder) = self
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Err(ControllerError::Watch {
                what: "applications",
                message: "serve called twice".into(),
            });
        };
        let me = self.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                me.queue.promote_due();
                me.appset_queue.promote_due();
            }
        });
        let poller = tokio::spawn(poll::run(Arc::downgrade(&self)));
        let mut tasks = AbortOnDrop(vec![ticker.abort_handle(), poller.abort_handle()]);
        for _ in 0..self.settings.workers.max(1) {
            let me = self.clone();
            tasks.0.push(
                tokio::spawn(async move {
                    while let Some(app) = me.queue.next().await {
                        let started = std::time::Instant::now();
                        tracing::debug!(app = %app, "reconcile");
                        reconcile::reconcile(&me, &app).await;
                        tracing::debug!(app = %app, elapsed = ?started.elapsed(), "reconciled");
                        me.metrics
                            .reconcile_seconds
                            .observe(started.elapsed().as_secs_f64());
                        me.queue.done(&app);
                    }
                })
                .abort_handle(),
            );
        }
        for _ in 0..2 {
            let me = self.clone();
            tasks.0.push(
                tokio::spawn(async move {
                    while let Some(set) = me.appset_queue.next().await {
                        appset::reconcile(&me, &set).await;
                        me.appset_queue.done(&set);
                    }
                })
                .abort_handle(),
            );
        }
        tasks.0.push(feeder.abort_handle());
        let _ = feeder.await;
        drop(tasks);
        Err(ControllerError::Watch {
            what: "applications",
            message: "the watch stream ended".into(),
        })
    }

    /// Ask for a refresh of `app` (webhook, CLI): the next reconcile re-resolves its revision
    /// from the repositories as they are now.
    pub fn refresh(&self, app: &str, hard: bool) {
        self.refresh_since(app, hard, std::time::Instant::now());
    }

    /// Ask for a refresh of `app` that must see the repositories as they were at `since` or
    /// later (the repository poller passes the moment of the advertisement it saw).
    pub fn refresh_since(&self, app: &str, hard: bool, since: std::time::Instant) {
        {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            let m = memory.entry(app.to_string()).or_default();
            m.refresh_requested = true;
            m.hard_refresh |= hard;
            m.refs_since = Some(m.refs_since.map_or(since, |t| t.max(since)));
        }
        self.queue.add(app);
    }

    /// Every Application currently known.
    pub fn applications(&self) -> Vec<Arc<Application>> {
        self.apps.state()
    }
}
