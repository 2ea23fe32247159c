//! Prometheus metrics with Argo CD's names where Argo CD has one: `argocd_app_info`,
//! `argocd_app_sync_total`, `argocd_app_reconcile`, `argocd_git_request_duration_seconds`, plus
//! `tiphys_render_duration_seconds` and `tiphys_live_objects`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tiphys_model::Application;

type Labels = Vec<(String, String)>;

#[derive(Clone)]
pub struct Metrics {
    pub reconcile_seconds: Histogram,
    pub git_seconds: Histogram,
    pub render_seconds: Histogram,
    pub syncs: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = || Histogram::new(exponential_buckets(0.001, 2.5, 14));
        Metrics {
            reconcile_seconds: buckets(),
            git_seconds: buckets(),
            render_seconds: buckets(),
            syncs: Family::default(),
        }
    }
}

impl Metrics {
    pub fn sync_finished(&self, app: &Application, phase: &str) {
        self.syncs
            .get_or_create(&vec![
                ("name".into(), app.metadata.name.clone().unwrap_or_default()),
                (
                    "namespace".into(),
                    app.metadata.namespace.clone().unwrap_or_default(),
                ),
                ("project".into(), app.spec.project.clone()),
                ("phase".into(), phase.into()),
                ("dest_server".into(), app.spec.destination.server.clone()),
            ])
            .inc();
    }

    /// The text exposition: persistent metrics plus app info built from the current apps.
    pub fn render(&self, apps: &[std::sync::Arc<Application>], live_objects: usize) -> String {
        let mut registry = Registry::default();
        let info: Family<Labels, Gauge> = Family::default();
        let paused: Family<Labels, Gauge> = Family::default();
        for app in apps {
            let status = app.status.clone().unwrap_or_default();
            let source = app
                .sources()
                .first()
                .map(|s| s.repo_url.clone())
                .unwrap_or_default();
            info.get_or_create(&vec![
                ("name".into(), app.metadata.name.clone().unwrap_or_default()),
                (
                    "namespace".into(),
                    app.metadata.namespace.clone().unwrap_or_default(),
                ),
                ("project".into(), app.spec.project.clone()),
                ("repo".into(), source),
                ("dest_server".into(), app.spec.destination.server.clone()),
                (
                    "dest_namespace".into(),
                    app.spec.destination.namespace.clone(),
                ),
                ("sync_status".into(), format!("{:?}", status.sync.status)),
                (
                    "health_status".into(),
                    format!("{:?}", status.health.status),
                ),
                (
                    "autosync_enabled".into(),
                    app.auto_sync_enabled().to_string(),
                ),
            ])
            .set(1);
            if let Some(pause) = app.pause() {
                paused
                    .get_or_create(&vec![
                        ("name".into(), app.metadata.name.clone().unwrap_or_default()),
                        (
                            "namespace".into(),
                            app.metadata.namespace.clone().unwrap_or_default(),
                        ),
                        ("project".into(), app.spec.project.clone()),
                        ("paused_by".into(), pause.by.clone()),
                    ])
                    .set(pause.until.as_second());
            }
        }
        registry.register(
            "tiphys_app_auto_sync_paused_until_seconds",
            "Paused Applications: when the pause of auto-sync ends (Unix time)",
            paused,
        );
        registry.register("argocd_app_info", "Information about Applications", info);
        registry.register(
            "argocd_app_sync",
            "Sync operations by phase",
            self.syncs.clone(),
        );
        registry.register(
            "argocd_app_reconcile",
            "Application reconciliation duration in seconds",
            self.reconcile_seconds.clone(),
        );
        registry.register(
            "argocd_git_request_duration_seconds",
            "Git revision checks and fetches",
            self.git_seconds.clone(),
        );
        registry.register(
            "tiphys_render_duration_seconds",
            "Manifest generation (render cache misses and hits)",
            self.render_seconds.clone(),
        );
        let objects: Gauge = Gauge::default();
        objects.set(live_objects as i64);
        registry.register(
            "tiphys_live_objects",
            "Objects held by the live-state caches",
            objects,
        );
        let mut out = String::new();
        let _ = encode(&mut out, &registry);
        out
    }
}
