//! Kubernetes Events about Applications (syncs, failures, status changes), as `kubectl get
//! events` and `kubectl describe application` show them.
//!
//! The controller's reconciles hand their events to a [`Recorder`] and go on: a few sender
//! tasks post them, each app's events always through the same sender, so they arrive in the
//! order they happened. The created Event is not read back (nobody needs it, and at thousands
//! of apps parsing every response costs more than posting).

use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Resource;
use kube::api::{ObjectMeta, PostParams};
use tiphys_model::Application;
use tokio::sync::mpsc;

/// Events posted at once (each app's in order).
const LANES: usize = 4;

/// Posts events in the background.
pub struct Recorder {
    lanes: Vec<mpsc::UnboundedSender<Event>>,
}

impl Recorder {
    /// Start the senders (on the current runtime); they end when the recorder is dropped.
    pub fn new(client: kube::Client) -> Recorder {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
                let client = client.clone();
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        post(&client, &event).await;
                    }
                });
                tx
            })
            .collect();
        Recorder { lanes }
    }

    /// Record an event about `app` (posted shortly, after the events recorded before it).
    pub fn record(&self, app: &Application, warning: bool, reason: &str, message: &str) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        app.metadata.name.hash(&mut hasher);
        let lane = (hasher.finish() % LANES as u64) as usize;
        let _ = self.lanes[lane].send(event(app, warning, reason, message));
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
    post(client, &event(app, warning, reason, message)).await;
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
async fn post(client: &kube::Client, event: &Event) {
    let namespace = event.metadata.namespace.as_deref();
    let request = serde_json::to_vec(event)
        .map_err(kube::Error::SerdeError)
        .and_then(|body| {
            kube::core::Request::new(Event::url_path(&(), namespace))
                .create(&PostParams::default(), body)
                .map_err(kube::Error::BuildRequest)
        });
    let result = match request {
        Ok(request) => client.request_text(request).await.map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, reason = ?event.reason, "recording an event failed");
    }
}
