//! Prometheus metrics with Argo CD's names where Argo CD has one: `argocd_app_info`,
//! `argocd_app_sync_total`, `argocd_app_reconcile`, `argocd_git_request_duration_seconds`,
//! `argocd_git_request_total` (by repository and `ls-remote`/`fetch`), plus
//! `tiphys_render_duration_seconds`, `tiphys_live_objects` and `tiphys_events_dropped_total`.

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
    /// Kubernetes Events dropped because too many were waiting to be posted.
    pub events_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = || Histogram::new(exponential_buckets(0.001, 2.5, 14));
        Metrics {
            reconcile_seconds: buckets(),
            git_seconds: buckets(),
            render_seconds: buckets(),
            syncs: Family::default(),
            events_dropped: Counter::default(),
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
    pub fn render(
        &self,
        apps: &[std::sync::Arc<Application>],
        live_objects: usize,
        git_requests: &[(String, tiphys_source::RequestKind, u64)],
        queue: crate::queue::QueueCounts,
    ) -> String {
        let mut registry = Registry::default();
        // client-go's workqueue metrics, under the queue name Argo CD uses.
        let queue_labels = vec![("name".to_string(), "app_reconciliation_queue".to_string())];
        let depth: Family<Labels, Gauge> = Family::default();
        depth.get_or_create(&queue_labels).set(queue.depth as i64);
        registry.register("workqueue_depth", "Apps waiting to be reconciled", depth);
        let adds: Family<Labels, Counter> = Family::default();
        adds.get_or_create(&queue_labels).inc_by(queue.adds);
        registry.register("workqueue_adds", "Apps put in the queue", adds);
        let running: Family<Labels, Gauge> = Family::default();
        running
            .get_or_create(&queue_labels)
            .set(queue.running as i64);
        registry.register(
            "tiphys_workqueue_running",
            "Apps being reconciled now",
            running,
        );
        let requests: Family<Labels, Counter> = Family::default();
        for (repo, kind, count) in git_requests {
            requests
                .get_or_create(&vec![
                    ("repo".into(), repo.clone()),
                    ("request_type".into(), kind.label().into()),
                ])
                .inc_by(*count);
        }
        registry.register(
            "argocd_git_request",
            "Requests made to git remotes (ls-remote, fetch)",
            requests,
        );
        let paused: Family<Labels, Gauge> = Family::default();
        for app in apps {
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
        registry.register(
            "tiphys_events_dropped",
            "Kubernetes Events not posted because too many were already waiting",
            self.events_dropped.clone(),
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
        // One line per app, written directly: at 10,000 apps a metric family built per
        // scrape costs a hundred times more than the text.
        let info = app_info(apps);
        match out.rfind("# EOF") {
            Some(end) => out.insert_str(end, &info),
            None => out.push_str(&info),
        }
        out
    }
}

/// `argocd_app_info`, one gauge line per app with Argo CD's labels.
fn app_info(apps: &[std::sync::Arc<Application>]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(128 + apps.len() * 320);
    out.push_str("# HELP argocd_app_info Information about Applications.\n");
    out.push_str("# TYPE argocd_app_info gauge\n");
    for app in apps {
        let status = app.status.as_ref();
        let sync = status.map(|s| s.sync.status).unwrap_or_default();
        let health = status.map(|s| s.health.status).unwrap_or_default();
        let labels = [
            ("name", app.metadata.name.as_deref().unwrap_or_default()),
            (
                "namespace",
                app.metadata.namespace.as_deref().unwrap_or_default(),
            ),
            ("project", &app.spec.project),
            (
                "repo",
                app.sources()
                    .first()
                    .map(|s| s.repo_url.as_str())
                    .unwrap_or_default(),
            ),
            ("dest_server", &app.spec.destination.server),
            ("dest_namespace", &app.spec.destination.namespace),
            ("sync_status", &format!("{sync:?}")),
            ("health_status", &format!("{health:?}")),
            (
                "autosync_enabled",
                if app.auto_sync_enabled() {
                    "true"
                } else {
                    "false"
                },
            ),
        ];
        out.push_str("argocd_app_info{");
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"");
            for ch in value.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    other => out.push(other),
                }
            }
            out.push('"');
        }
        out.push_str("} 1\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_info_escapes_label_values_and_keeps_the_exposition_valid() {
        let mut app = Application::default();
        app.metadata.name = Some("web".into());
        app.metadata.namespace = Some("argocd".into());
        app.spec.project = "team \"a\"\\b\nc".into();
        let text =
            Metrics::default().render(&[std::sync::Arc::new(app)], 0, &[], Default::default());
        assert!(
            text.contains(
                r#"argocd_app_info{name="web",namespace="argocd",project="team \"a\"\\b\nc","#
            ),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert_eq!(text.matches("# TYPE argocd_app_info gauge").count(), 1);
    }
}
