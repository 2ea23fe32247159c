//! Services: where notifications go. `service.<type>` or `service.<type>.<name>` in the
//! ConfigMap; the types are Argo CD's `webhook`, `slack`, `email` and `github`.
//!
//! Sending blocks (the caller runs it off the async workers) and retries a failure that may
//! pass — a connection error, a 5xx, a 429 — a few times with backoff. Errors never carry a
//! service's URL or credentials: webhook URLs often hold a token.

mod email;
mod github;
mod slack;
mod webhook;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use email::Email;
pub use github::GitHub;
pub use slack::Slack;
pub use webhook::Webhook;

use crate::template::Notification;

#[derive(Debug)]
pub enum Service {
    Webhook(Webhook),
    Slack(Slack),
    Email(Email),
    GitHub(GitHub),
}

/// One notification on its way to one recipient.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub notification: Notification,
    pub recipient: String,
    pub trigger: String,
    pub app: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{service}: HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Http {
        service: String,
        status: u16,
        detail: String,
    },
    #[error("{service}: {message}")]
    Transport { service: String, message: String },
    #[error("{service}: refused: {message}")]
    Refused { service: String, message: String },
}

impl DeliveryError {
    fn worth_retrying(&self) -> bool {
        match self {
            DeliveryError::Http { status, .. } => *status >= 500 || *status == 429,
            DeliveryError::Transport { .. } => true,
            DeliveryError::Refused { .. } => false,
        }
    }
}

fn settings<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("{kind} service settings: {e}"))
}

impl Service {
    pub fn from_settings(kind: &str, value: serde_json::Value) -> Result<Service, String> {
        Ok(match kind {
            "webhook" => Service::Webhook(settings(kind, value)?),
            "slack" => Service::Slack(settings(kind, value)?),
            "email" => Service::Email(settings(kind, value)?),
            "github" => Service::GitHub(settings(kind, value)?),
            other => {
                return Err(format!(
                    "service type {other:?} is not supported (webhook, slack, email, github)"
                ));
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Service::Webhook(_) => "webhook",
            Service::Slack(_) => "slack",
            Service::Email(_) => "email",
            Service::GitHub(_) => "github",
        }
    }

    fn send_once(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        match self {
            Service::Webhook(s) => s.send(name, delivery),
            Service::Slack(s) => s.send(name, delivery),
            Service::Email(s) => s.send(name, delivery),
            Service::GitHub(s) => s.send(name, delivery),
        }
    }

    /// Send, retrying what may pass on a second try; the last error when none succeeds.
    pub fn send(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        let mut attempt = 0u32;
        loop {
            match self.send_once(name, delivery) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 2 && e.worth_retrying() => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(500 * 2u64.pow(attempt)));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The process's HTTP clients (one verifying certificates, one not), made once: a blocking
/// client starts a thread and loads the trust roots, far too much to do per notification.
fn http_client(service: &str, insecure: bool) -> Result<reqwest::blocking::Client, DeliveryError> {
    static CLIENTS: OnceLock<Mutex<[Option<reqwest::blocking::Client>; 2]>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let slot = &mut clients[usize::from(insecure)];
    if let Some(client) = slot {
        return Ok(client.clone());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| DeliveryError::Transport {
            service: service.to_string(),
            message: e.without_url().to_string(),
        })?;
    *slot = Some(client.clone());
    Ok(client)
}

/// Send a request; a non-2xx answer is an error with the start of its body.
fn call(
    service: &str,
    request: reqwest::blocking::RequestBuilder,
) -> Result<reqwest::blocking::Response, DeliveryError> {
    let response = request.send().map_err(|e| DeliveryError::Transport {
        service: service.to_string(),
        message: e.without_url().to_string(),
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let detail: String = response
        .text()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(DeliveryError::Http {
        service: service.to_string(),
        status: status.as_u16(),
        detail: detail.trim().to_string(),
    })
}
