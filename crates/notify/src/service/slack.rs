//! Slack: `chat.postMessage` on the Web API (`apiURL`, default Slack's own, so a proxy or a
//! test server can stand in) with the bot `token`, or a Slack incoming webhook
//! (`incomingWebhook`, a Tiphys extension) with the same payload.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Delivery, DeliveryError, call, http_client};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slack {
    #[serde(default)]
    pub token: String,
    #[serde(default, rename = "apiURL")]
    pub api_url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub incoming_webhook: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A template field that holds JSON (attachments, blocks), parsed; empty is absent.
fn json_field(name: &str, field: &str, text: &str) -> Result<Option<Value>, DeliveryError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| DeliveryError::Refused {
            service: name.to_string(),
            message: format!("the template's slack.{field} is not JSON: {e}"),
        })
}

impl Slack {
    pub fn payload(&self, name: &str, delivery: &Delivery) -> Result<Value, DeliveryError> {
        let n = &delivery.notification;
        let mut payload = json!({"channel": delivery.recipient, "text": n.message});
        if let Some(a) = json_field(name, "attachments", &n.slack_attachments)? {
            payload["attachments"] = a;
        }
        if let Some(b) = json_field(name, "blocks", &n.slack_blocks)? {
            payload["blocks"] = b;
        }
        if !self.username.is_empty() {
            payload["username"] = json!(self.username);
        }
        if self.icon.starts_with(':') {
            payload["icon_emoji"] = json!(self.icon);
        } else if !self.icon.is_empty() {
            payload["icon_url"] = json!(self.icon);
        }
        Ok(payload)
    }

    pub fn send(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        let client = http_client(name, self.insecure_skip_verify)?;
        let payload = self.payload(name, delivery)?;
        if !self.incoming_webhook.is_empty() {
            return call(
                name,
                client
                    .post(&self.incoming_webhook)
                    .header("Content-Type", "application/json")
                    .body(payload.to_string()),
            )
            .map(|_| ());
        }
        if self.token.is_empty() {
            return Err(DeliveryError::Refused {
                service: name.to_string(),
                message: "no token (or incomingWebhook) configured".into(),
            });
        }
        let base = if self.api_url.is_empty() {
            "https://slack.com/api"
        } else {
            self.api_url.trim_end_matches('/')
        };
        let response = call(
            name,
            client
                .post(format!("{base}/chat.postMessage"))
                .bearer_auth(&self.token)
                .header("Content-Type", "application/json")
                .body(payload.to_string()),
        )?;
        // The Web API answers 200 with `ok: false` when it refuses.
        let answer: Value =
            serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or(Value::Null);
        if answer["ok"] == json!(true) {
            Ok(())
        } else {
            Err(DeliveryError::Refused {
                service: name.to_string(),
                message: answer["error"]
                    .as_str()
                    .unwrap_or("no `ok` in the answer")
                    .to_string(),
            })
        }
    }
}
