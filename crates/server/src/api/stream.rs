//! `/api/v1/stream/applications` and `/api/v1/stream/applications/{name}/resource-tree`:
//! server-sent events as Argo CD's gateway sends them (`data: {"result": ...}`), first the
//! current state, then every change the caller may see.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State as AxumState};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::api::applications::{AppQuery, object, outward};
use crate::api::enforce;
use crate::api::tree::tree;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::State;

/// How often an open tree stream looks again at what the app's resources own.
const TREE_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

fn data(value: serde_json::Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(json!({"result": value}).to_string()))
}

async fn applications(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let q = AppQuery::parse(&pairs)?;
    let send_current = q.min_version.is_none() || q.names_one();
    // Subscribed before the current state is read: nothing falls between the two.
    let mut changes = state.app_events.subscribe();
    let wanted = move |app: &tiphys_model::Application, state: &State| -> bool {
        q.matches(app)
            && state
                .policy()
                .is_ok_and(|p| caller.check(&p).allows("applications", "get", &object(app)))
    };
    // As Argo CD: the current state first, unless the watch continues from a version (a
    // list's) — a watch of one app by name always gets it, so an operation is never missed.
    let initial: Vec<Result<Event, Infallible>> = if send_current {
        let mut current: Vec<_> = state
            .apps
            .state()
            .into_iter()
            .filter(|a| wanted(a, &state))
            .collect();
        current.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        current
            .iter()
            .map(|a| data(json!({"type": "ADDED", "application": outward(a).as_ref()})))
            .collect()
    } else {
        Vec::new()
    };
    let stream = async_stream_of(
        state.metrics.watchers.clone(),
        initial,
        move |tx| async move {
            loop {
                match changes.recv().await {
                    Ok(event) => {
                        if wanted(&event.app, &state)
                            && tx
                                .send(data(
                                    json!({"type": event.kind, "application": outward(&event.app)}),
                                ))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                    // A slow reader missed events: it must start over, as after a watch expiry.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn resource_tree(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let mut changes = state.app_events.subscribe();
    let app = state.app(&name).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "applications", "get", &object(&app))?;
    let first = tree(&state, &app).await;
    let initial = vec![data(first.clone())];
    let stream = async_stream_of(
        state.metrics.watchers.clone(),
        initial,
        move |tx| async move {
            // The tree changes with the app, and also when only owned objects change (a Pod
            // restarts): those are looked at every few seconds, and sent when different.
            let mut last = first;
            let mut tick = tokio::time::interval(TREE_RECHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.reset();
            loop {
                let app = tokio::select! {
                    change = changes.recv() => match change {
                        Ok(event) if event.app.metadata.name.as_deref() == Some(name.as_str()) => {
                            if event.kind == "DELETED" {
                                return;
                            }
                            event.app.clone()
                        }
                        Ok(_) => continue,
                        Err(_) => return,
                    },
                    _ = tick.tick() => match state.app(&name) {
                        Some(app) => app,
                        None => return,
                    },
                };
                let next = tree(&state, &app).await;
                if next != last {
                    if tx.send(data(next.clone())).await.is_err() {
                        return;
                    }
                    last = next;
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `initial` items, then what `produce` sends, as one stream. The producer stops as soon as
/// the client goes away — not only when it next has something to send, which for a quiet
/// application could be never — and is counted in the open-streams gauge while it runs.
pub(crate) fn async_stream_of<F, Fut>(
    open: prometheus_client::metrics::gauge::Gauge,
    initial: Vec<Result<Event, Infallible>>,
    produce: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let watcher = tx.clone();
    let producing = produce(tx);
    open.inc();
    tokio::spawn(async move {
        tokio::select! {
            () = producing => {}
            () = watcher.closed() => {}
        }
        open.dec();
    });
    let rest =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    futures::StreamExt::chain(futures::stream::iter(initial), rest)
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/stream/applications", get(applications))
        .route(
            "/api/v1/stream/applications/{name}/resource-tree",
            get(resource_tree),
        )
}
