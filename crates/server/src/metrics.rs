//! `/metrics`: Prometheus text with the API server's own figures. Argo CD's
//! `argocd_login_request_total{status}` keeps its name; requests are counted per route
//! template (`/api/v1/applications/{name}`), never per concrete path, so the series stay few.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State as AxumState};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::State;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    logins: Family<Labels, Counter>,
    /// Open event streams.
    pub watchers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 14))
        });
        let logins = Family::<Labels, Counter>::default();
        let watchers = Gauge::default();
        let mut registry = Registry::default();
        registry.register(
            "tiphys_server_requests",
            "API requests answered, by method, route and HTTP status",
            requests.clone(),
        );
        registry.register(
            "tiphys_server_request_duration_seconds",
            "Time to answer an API request (streams: until their first byte)",
            durations.clone(),
        );
        registry.register(
            "argocd_login_request",
            "Logins with a password or through single sign-on, by outcome",
            logins.clone(),
        );
        registry.register(
            "tiphys_server_stream_watchers",
            "Event streams open now",
            watchers.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            logins,
            watchers,
        }
    }
}

impl Metrics {
    /// A login attempt ended: `success`, `failure` or `rate_limited`.
    pub fn login(&self, status: &str) {
        self.logins
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Middleware counting every request by its route template.
pub async fn track(
    AxumState(state): AxumState<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let code = response.status().as_u16().to_string();
    state
        .metrics
        .durations
        .get_or_create(&vec![("method", method.clone()), ("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .get_or_create(&vec![("method", method), ("route", route), ("code", code)])
        .inc();
    response
}

async fn metrics(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

pub fn router() -> axum::Router<Arc<State>> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}
