//! Kubernetes Events about Applications (syncs, failures, status changes), as `kubectl get
//! events` and `kubectl describe application` show them.
//!
//! The controller's reconciles hand their events to a [`Recorder`] and go on: a few sender
//! tasks post them, each app's events always through the same sender, so they arrive in the
//! order they happened; when a sender already has too many waiting, new ones are dropped and
//! counted. The created Event is not read back (nobody needs it, and at thousands of apps
//! parsing every response costs more than posting).

use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Resource;
use kube::api::{ObjectMeta, PostParams};
use tiphys_model::Application;
use tokio::sync::mpsc;

/// Events posted at once (each app's in order).
const LANES: usize = 4;

/// Events waiting to be posted, per lane. Beyond that they are dropped and counted, as
/// client-go's event broadcaster drops beyond its 1,000 queued events: a cold start of
/// thousands of apps records events faster than an API server takes them, and neither the
/// controller's memory nor its other requests should pay for the backlog.
const WAITING_PER_LANE: usize = 250;

/// Posts events in the background.
pub struct Recorder {
    lanes: Vec<mpsc::Sender<Serialized>>,
    dropped: prometheus_client::metrics::counter::Counter,
}

/// An Event as it waits for its turn: its namespace and JSON body. A typed Event is a
/// kilobyte of mostly empty fields plus a dozen strings; a cold start of thousands of apps
/// queues tens of thousands of them faster than they are posted.
struct Serialized {
    namespace: Option<String>,
    reason: Option<String>,
    body: Vec<u8>,
}

impl Serialized {
    fn new(event: &Event) -> Option<Serialized> {
        match serde_json::to_vec(event) {
            Ok(body) => Some(Serialized {
                namespace: event.metadata.namespace.clone(),
                reason: event.reason.clone(),
                body,
            }),
            Err(e) => {
                tracing::debug!(error = %e, reason = ?event.reason, "an event could not be written");
                None
            }
        }
    }
}

impl Recorder {
    /// Start the senders (on the current runtime); they end when the recorder is dropped.
    /// Events dropped for want of room are counted in `dropped`.
    pub fn new(
        client: kube::Client,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> Recorder {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, mut rx) = mpsc::channel::<Serialized>(WAITING_PER_LANE);
                let client = client.clone();
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        post(&client, event).await;
                    }
                });
                tx
            })
            .collect();
        Recorder { lanes, dropped }
    }

    /// Record an event about `app` (posted shortly, after the events recorded before it).
    pub fn record(&self, app: &Application, warning: bool, reason: &str, message: &str) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        app.metadata.name.hash(&mut hasher);
        let lane = (hasher.finish() % LANES as u64) as usize;
        if let Some(event) = Serialized::new(&event(app, warning, reason, message))
            && let Err(mpsc::error::TrySendError::Full(event)) = self.lanes[lane].try_send(event)
        {
            self.dropped.inc();
            tracing::debug!(reason = ?event.reason, "too many events waiting; one dropped");
        }
    }
}

/// Record an event about `app` now (outside the controller: pauses from the CLI or the API
/// server).
pub async fn record(
    client: &kube::Client,
    app: &Application,
    warning: bool,
    reason: &str,
    message: &str,
) {
    if let Some(event) = Serialized::new(&event(app, warning, reason, message)) {
        post(client, event).await;
    }
}

fn event(app: &Application, warning: bool, reason: &str, message: &str) -> Event {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now();
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}.",
                app.metadata.name.as_deref().unwrap_or("app")
            )),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(tiphys_model::API_VERSION.into()),
            kind: Some("Application".into()),
            name: app.metadata.name.clone(),
            namespace: Some(namespace),
            uid: app.metadata.uid.clone(),
            resource_version: app.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(if warning { "Warning" } else { "Normal" }.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        reporting_component: Some("tiphys-application-controller".into()),
        reporting_instance: Some("tiphys".into()),
        action: Some(reason.into()),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("tiphys-application-controller".into()),
            host: None,
        }),
        ..Default::default()
    }
}

/// Create `event`, not reading the created object back.
async fn post(client: &kube::Client, event: Serialized) {
    let request = kube::core::Request::new(Event::url_path(&(), event.namespace.as_deref()))
        .create(&PostParams::default(), event.body)
        .map_err(kube::Error::BuildRequest);
    let result = match request {
        Ok(request) => client.request_text(request).await.map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, reason = ?event.reason, "recording an event failed");
    }
}
