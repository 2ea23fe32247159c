//! Kubernetes Events about Applications (syncs, failures, status changes), as `kubectl get
//! events` and `kubectl describe application` show them.

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, ObjectMeta, PostParams};
use tiphys_model::Application;

pub async fn record(
    client: &kube::Client,
    app: &Application,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now();
    let event = Event {
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
            namespace: Some(namespace.clone()),
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
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(error = %e, reason, "recording an event failed");
    }
}
