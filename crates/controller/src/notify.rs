//! Notifications, as Argo CD's notifications controller reads them from
//! `argocd-notifications-cm` and `argocd-notifications-secret` — the first part: webhook
//! services, the default trigger catalogue plus Tiphys's drift and paused-too-long alerts,
//! subscriptions by annotation, templates with `{{.app.…}}`/`{{.context.…}}` fields, and each
//! notification sent once per trigger state (remembered on the Application in Argo's
//! `notified.notifications.argoproj.io` annotation), retried, and never in a reconcile's way.
//!
//! Not yet: `trigger.<name>` entries with `when` expressions, the full Go-template language,
//! and the Slack, email and GitHub services.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tiphys_model::Application;
use tiphys_model::application::{HealthStatusCode, OperationPhase, SyncStatusCode};

pub const NOTIFICATIONS_CM: &str = "argocd-notifications-cm";
pub const NOTIFICATIONS_SECRET: &str = "argocd-notifications-secret";
pub const SUBSCRIBE: &str = "notifications.argoproj.io/subscribe.";
/// Where sent notifications are remembered (Argo CD's annotation).
pub const NOTIFIED: &str = "notified.notifications.argoproj.io";
/// argocd-notifications-cm's key for how long a pause may last before it is reported.
pub const PAUSED_TOO_LONG: &str = "tiphys.trigger.on-auto-sync-paused-too-long.after";

/// A webhook service: where to POST, with which headers.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub headers: Vec<Header>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A template: the message, and per webhook service a body.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct Template {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub webhook: BTreeMap<String, WebhookTemplate>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct WebhookTemplate {
    #[serde(default)]
    pub body: String,
}

/// What argocd-notifications-cm configures, and what in it could not be read (key: why).
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub services: BTreeMap<String, Webhook>,
    pub templates: BTreeMap<String, Template>,
    pub context: Value,
    pub paused_too_long: Duration,
    pub errors: Vec<String>,
}

/// `$key` in a service's settings is the secret's `key`.
fn secret_value(text: &str, secret: &BTreeMap<String, String>) -> String {
    match text.strip_prefix('$') {
        Some(key) => secret.get(key).cloned().unwrap_or_default(),
        None => text.to_string(),
    }
}

impl Config {
    pub fn read(cm: Option<&ConfigMap>, secret: Option<&Secret>) -> Config {
        let data = cm.and_then(|c| c.data.clone()).unwrap_or_default();
        let secret: BTreeMap<String, String> = secret
            .and_then(|s| s.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        let mut config = Config {
            templates: default_templates(),
            paused_too_long: Duration::from_secs(4 * 3600),
            ..Config::default()
        };
        for (key, value) in &data {
            if let Some(name) = key.strip_prefix("service.webhook.") {
                match serde_saphyr::from_str::<Webhook>(value) {
                    Ok(mut hook) => {
                        hook.url = secret_value(&hook.url, &secret);
                        for h in &mut hook.headers {
                            h.value = secret_value(&h.value, &secret);
                        }
                        config.services.insert(name.to_string(), hook);
                    }
                    Err(e) => config.errors.push(format!("{NOTIFICATIONS_CM} {key}: {e}")),
                }
            } else if let Some(name) = key.strip_prefix("template.") {
                match serde_saphyr::from_str::<Template>(value) {
                    Ok(t) => {
                        config.templates.insert(name.to_string(), t);
                    }
                    Err(e) => config.errors.push(format!("{NOTIFICATIONS_CM} {key}: {e}")),
                }
            } else if key == "context" {
                match serde_saphyr::from_str::<Value>(value) {
                    Ok(v) => config.context = v,
                    Err(e) => config.errors.push(format!("{NOTIFICATIONS_CM} {key}: {e}")),
                }
            } else if key == PAUSED_TOO_LONG {
                match tiphys_model::validate::parse_duration(value) {
                    Some(d) => config.paused_too_long = d,
                    None => config.errors.push(format!(
                        "{NOTIFICATIONS_CM} {key}: {value:?} is not a duration"
                    )),
                }
            } else if key.starts_with("trigger.") {
                config.errors.push(format!(
                    "{NOTIFICATIONS_CM} {key}: triggers with `when` expressions are not supported yet; the built-in ones are"
                ));
            }
        }
        config
    }
}

/// The built-in triggers, each with its default template (same name with `app-`/`on-` swapped).
pub const TRIGGERS: &[&str] = &[
    "on-created",
    "on-deployed",
    "on-health-degraded",
    "on-sync-failed",
    "on-sync-running",
    "on-sync-status-unknown",
    "on-sync-succeeded",
    "on-drift-detected",
    "on-auto-sync-paused-too-long",
];

fn default_templates() -> BTreeMap<String, Template> {
    let message = |text: &str| Template {
        message: text.to_string(),
        webhook: BTreeMap::new(),
    };
    BTreeMap::from([
        (
            "app-created".into(),
            message("Application {{.app.metadata.name}} has been created."),
        ),
        (
            "app-deployed".into(),
            message(
                "Application {{.app.metadata.name}} is now running revision {{.app.status.sync.revision}}.",
            ),
        ),
        (
            "app-health-degraded".into(),
            message(
                "Application {{.app.metadata.name}} has degraded: {{.app.status.health.message}}",
            ),
        ),
        (
            "app-sync-failed".into(),
            message(
                "The sync of application {{.app.metadata.name}} has failed: {{.app.status.operationState.message}}",
            ),
        ),
        (
            "app-sync-running".into(),
            message("The sync of application {{.app.metadata.name}} has started."),
        ),
        (
            "app-sync-status-unknown".into(),
            message("Application {{.app.metadata.name}} sync status is unknown."),
        ),
        (
            "app-sync-succeeded".into(),
            message(
                "Application {{.app.metadata.name}} has been successfully synced at {{.app.status.operationState.finishedAt}}.",
            ),
        ),
        (
            "app-drift-detected".into(),
            message("Application {{.app.metadata.name}} has drifted from Git: {{.drift}}"),
        ),
        (
            "app-auto-sync-paused-too-long".into(),
            message(
                "Auto-sync of application {{.app.metadata.name}} has been paused for over {{.pausedFor}}: {{.pause}}",
            ),
        ),
    ])
}

/// `{{.a.b.c}}` replaced by that field of `data` (a string as is, anything else as JSON; a
/// missing one as Go's `<no value>`).
pub fn render(template: &str, data: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let path = rest[start + 2..start + end].trim();
        let pointer = format!("/{}", path.trim_start_matches('.').replace('.', "/"));
        out.push_str(&match data.pointer(&pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "<no value>".into(),
            Some(other) => other.to_string(),
        });
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The triggers whose condition holds for `app` now, each with the state it fired for (a
/// trigger fires again only when that changes), and extra template fields.
pub fn fired(
    app: &Application,
    now: Timestamp,
    paused_too_long: Duration,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let status = app.status.clone().unwrap_or_default();
    let uid = app.metadata.uid.clone().unwrap_or_default();
    out.push(("on-created", uid));
    if let Some(op) = &status.operation_state {
        let at = op.started_at.clone();
        match op.phase {
            OperationPhase::Running => out.push(("on-sync-running", at)),
            OperationPhase::Succeeded => {
                out.push(("on-sync-succeeded", at));
                if status.health.status == HealthStatusCode::Healthy {
                    let revision = op
                        .sync_result
                        .as_ref()
                        .map(|r| r.revision.clone())
                        .unwrap_or_default();
                    out.push(("on-deployed", revision));
                }
            }
            OperationPhase::Failed | OperationPhase::Error => out.push(("on-sync-failed", at)),
            OperationPhase::Terminating => {}
        }
    }
    if status.health.status == HealthStatusCode::Degraded {
        out.push(("on-health-degraded", String::new()));
    }
    if status.sync.status == SyncStatusCode::Unknown {
        out.push(("on-sync-status-unknown", String::new()));
    }
    // Drift: live departs from Git after a deployment, with nothing to put it back.
    if status.sync.status == SyncStatusCode::OutOfSync
        && !status.history.is_empty()
        && !app.auto_sync_enabled()
    {
        out.push(("on-drift-detected", drift(app)));
    }
    if let Some(pause) = app.pause()
        && let Some(since) = status
            .conditions
            .iter()
            .find(|c| c.kind == crate::pause::CONDITION)
            .and_then(|c| c.last_transition_time.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok())
        && Duration::try_from(now.duration_since(since)).is_ok_and(|d| d >= paused_too_long)
    {
        out.push(("on-auto-sync-paused-too-long", pause.until.to_string()));
    }
    out
}

/// The drifted objects, as the drift alert names them.
fn drift(app: &Application) -> String {
    let status = app.status.clone().unwrap_or_default();
    let objects: Vec<String> = status
        .resources
        .iter()
        .filter(|r| r.status == Some(SyncStatusCode::OutOfSync))
        .map(|r| {
            let ns = if r.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", r.namespace)
            };
            format!("{} {ns}{}", r.kind, r.name)
        })
        .collect();
    objects.join(", ")
}

/// `(trigger, service, recipient)` for each subscription annotation on `app`.
pub fn subscriptions(app: &Application) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (key, value) in app.metadata.annotations.iter().flatten() {
        let Some(rest) = key.strip_prefix(SUBSCRIBE) else {
            continue;
        };
        let Some((trigger, service)) = rest.split_once('.') else {
            continue;
        };
        let recipients: Vec<&str> = value.split([';', ',']).map(str::trim).collect();
        for recipient in recipients {
            out.push((
                trigger.to_string(),
                service.to_string(),
                recipient.to_string(),
            ));
        }
    }
    out
}

fn template_for(trigger: &str) -> String {
    format!("app-{}", trigger.trim_start_matches("on-"))
}

/// One notification to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// `trigger:state:service:recipient`, as remembered on the app.
    pub key: String,
    pub service: String,
    pub body: String,
}

/// When each notification was sent, by key (the `notified.notifications.argoproj.io` JSON).
pub type Notified = BTreeMap<String, i64>;

/// What `app` remembers having sent.
fn notified(app: &Application) -> Notified {
    app.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NOTIFIED))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// What to send: each subscription whose trigger fired and was not yet notified in this
/// state; and the new remembered state.
pub fn plan(app: &Application, config: &Config, now: Timestamp) -> (Vec<Outgoing>, Notified) {
    let notified = notified(app);
    let fired = fired(app, now, config.paused_too_long);
    let mut state = BTreeMap::new();
    let mut sends = Vec::new();
    let app_json = serde_json::to_value(app).unwrap_or(Value::Null);
    for (trigger, service, recipient) in subscriptions(app) {
        for (name, once) in fired.iter().filter(|(t, _)| *t == trigger) {
            let key = format!("{name}:{once}:{service}:{recipient}");
            if let Some(at) = notified.get(&key) {
                state.insert(key, *at);
                continue;
            }
            state.insert(key.clone(), now.as_second());
            let template = config
                .templates
                .get(&template_for(name))
                .cloned()
                .unwrap_or_default();
            let data = json!({
                "app": app_json,
                "context": config.context,
                "recipient": recipient,
                "drift": drift(app),
                "pause": app.pause().map(|p| crate::pause::describe(&p)).unwrap_or_default(),
                "pausedFor": tiphys_model::pause::human(config.paused_too_long.as_secs() as i64),
            });
            let message = render(&template.message, &data);
            let body = match template.webhook.get(&service) {
                Some(t) if !t.body.is_empty() => render(&t.body, &json!({"message": message, "app": data["app"], "context": data["context"], "recipient": recipient, "drift": data["drift"]})),
                _ => json!({"text": message, "trigger": name, "application": app.metadata.name, "recipient": recipient}).to_string(),
            };
            sends.push(Outgoing {
                key,
                service: service.clone(),
                body,
            });
        }
    }
    (sends, state)
}

/// POST `body` to the service, retried a few times; the last error when all fail.
fn post(hook: &Webhook, body: &str) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * 2u64.pow(attempt)));
        }
        let mut request = client
            .post(&hook.url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        for h in &hook.headers {
            request = request.header(&h.name, &h.value);
        }
        match request.send() {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            // Without the URL: a webhook URL often carries a token (Slack's do).
            Err(e) => last = e.without_url().to_string(),
        }
    }
    Err(last)
}

/// Evaluate `app`'s subscriptions and send what is due: the state is written first (guarded
/// by the version read, so two evaluations never both send), then the webhooks are called off
/// the async workers; a service that keeps failing is a Warning Event naming it.
pub async fn notify(
    client: &kube::Client,
    app: &Application,
    cm: Option<&ConfigMap>,
    secret: Option<&Secret>,
) {
    if subscriptions(app).is_empty() {
        return;
    }
    let config = Config::read(cm, secret);
    let name = app.metadata.name.clone().unwrap_or_default();
    for error in &config.errors {
        tracing::warn!(app = %name, error, "notification configuration");
    }
    let (sends, state) = plan(app, &config, Timestamp::now());
    let current = notified(app);
    if state != current {
        let namespace = app.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Application> = Api::namespaced(client.clone(), &namespace);
        let text = serde_json::to_string(&state).unwrap_or_default();
        let patch = json!({"metadata": {"resourceVersion": app.metadata.resource_version, "annotations": {NOTIFIED: text}}});
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            // Another writer came first: the next look at the app decides again.
            tracing::debug!(app = %name, error = %e, "notification state not written");
            return;
        }
    }
    for Outgoing { key, service, body } in sends {
        let Some(hook) = config.services.get(&service).cloned() else {
            let message = format!(
                "notification {key}: no service {service:?} in {NOTIFICATIONS_CM} (service.webhook.{service})"
            );
            crate::events::record(client, app, true, "NotificationFailed", &message).await;
            continue;
        };
        let failure = match tokio::task::spawn_blocking(move || post(&hook, &body)).await {
            Ok(Ok(())) => {
                tracing::info!(app = %name, notification = %key, "notification sent");
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => e.to_string(),
        };
        let message = format!("notification {key} to service {service}: {failure}");
        crate::events::record(client, app, true, "NotificationFailed", &message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(annotations: Value, status: Value) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd", "uid": "u1", "annotations": annotations},
            "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
                     "source": {"repoURL": "https://git.example.com/r", "path": "p"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn templates_fill_fields() {
        let data = json!({"app": {"metadata": {"name": "web"}, "n": 3}});
        assert_eq!(
            render(
                "{{.app.metadata.name}} has {{ .app.n }} and {{.app.missing}}",
                &data
            ),
            "web has 3 and <no value>"
        );
        assert_eq!(
            render("no fields {{ unclosed", &data),
            "no fields {{ unclosed"
        );
    }

    #[test]
    fn subscriptions_and_once_per_state() {
        let succeeded = json!({"sync": {"status": "Synced", "revision": "abc"}, "health": {"status": "Healthy"},
            "operationState": {"operation": {}, "phase": "Succeeded", "startedAt": "2026-12-01T10:00:00Z",
                               "syncResult": {"revision": "abc"}}});
        let subscribed = json!({"notifications.argoproj.io/subscribe.on-sync-succeeded.hook": "a; b",
                                "notifications.argoproj.io/subscribe.on-deployed.hook": "a"});
        let a = app(subscribed.clone(), succeeded.clone());
        assert_eq!(subscriptions(&a).len(), 3);
        let config = Config::read(None, None);
        let now = Timestamp::now();
        let (sends, state) = plan(&a, &config, now);
        assert_eq!(sends.len(), 3, "{sends:?}");
        let synced = sends
            .iter()
            .filter(|s| s.body.contains("has been successfully synced"))
            .count();
        assert_eq!(synced, 2, "{sends:?}");
        // Remembered: the same state sends nothing.
        let mut remembered = subscribed.clone();
        remembered[NOTIFIED] = json!(serde_json::to_string(&state).unwrap());
        let (sends, again) = plan(&app(remembered.clone(), succeeded.clone()), &config, now);
        assert!(sends.is_empty(), "{sends:?}");
        assert_eq!(again, state);
        // A new sync is a new state; a trigger whose condition ended is forgotten.
        let mut next = succeeded.clone();
        next["operationState"]["startedAt"] = json!("2026-12-01T11:00:00Z");
        next["health"]["status"] = json!("Progressing");
        let (sends, state) = plan(&app(remembered, next), &config, now);
        assert_eq!(
            sends.len(),
            2,
            "both recipients of the new sync, not on-deployed"
        );
        assert!(
            state.keys().all(|k| !k.starts_with("on-deployed")),
            "{state:?}"
        );
    }

    #[test]
    fn drift_needs_a_deployment_and_no_auto_sync() {
        let drifted = json!({"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"},
            "history": [{"revision": "abc", "deployedAt": "2026-12-01T10:00:00Z", "id": 0}],
            "resources": [{"version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "settings", "status": "OutOfSync"}]});
        let now = Timestamp::now();
        let day = Duration::from_secs(86400);
        let fired_names = |a: &Application| {
            fired(a, now, day)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>()
        };
        let a = app(json!({}), drifted.clone());
        assert!(fired_names(&a).contains(&"on-drift-detected"));
        assert_eq!(drift(&a), "ConfigMap web/settings");
        let mut never = drifted;
        never["history"] = json!([]);
        assert!(!fired_names(&app(json!({}), never)).contains(&"on-drift-detected"));
    }

    #[test]
    fn configuration_problems_name_the_key() {
        let cm: ConfigMap = serde_json::from_value(json!({"data": {
            "service.webhook.broken": "url: [unclosed",
            "trigger.on-custom": "- when: app.status.health.status == 'Degraded'\n  send: [x]",
            "service.webhook.ok": "url: $where",
        }}))
        .unwrap();
        let secret: Secret =
            serde_json::from_value(json!({"data": {"where": "aHR0cDovL2hvb2s="}})).unwrap();
        let config = Config::read(Some(&cm), Some(&secret));
        assert_eq!(config.services["ok"].url, "http://hook");
        assert!(
            config
                .errors
                .iter()
                .any(|e| e.contains("service.webhook.broken")),
            "{:?}",
            config.errors
        );
        assert!(
            config
                .errors
                .iter()
                .any(|e| e.contains("trigger.on-custom") && e.contains("not supported yet"))
        );
    }
}
