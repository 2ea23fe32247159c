//! The generic webhook: the template's `webhook.<service>` gives method, path and body; with
//! none, Tiphys POSTs a small JSON document (`text`, `trigger`, `application`, `recipient`) so
//! the built-in triggers reach a webhook without a template of their own.

use serde::Deserialize;

use super::{Delivery, DeliveryError, call, http_client};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl Webhook {
    pub fn send(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        let client = http_client(name, self.insecure_skip_verify)?;
        let (method, path, body) = match delivery.notification.webhook.get(name) {
            Some((method, path, body)) => (method.clone(), path.clone(), body.clone()),
            None => (
                "POST".to_string(),
                String::new(),
                serde_json::json!({
                    "text": delivery.notification.message,
                    "trigger": delivery.trigger,
                    "application": delivery.app,
                    "recipient": delivery.recipient,
                })
                .to_string(),
            ),
        };
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| DeliveryError::Refused {
                service: name.to_string(),
                message: format!("{method:?} is not an HTTP method"),
            })?;
        let base = self.url.trim_end_matches('/');
        let url = match path.as_str() {
            "" => self.url.clone(),
            p if p.starts_with('/') => format!("{base}{p}"),
            p => format!("{base}/{p}"),
        };
        let mut request = client.request(method, url).body(body);
        let mut content_type = false;
        for h in &self.headers {
            content_type |= h.name.eq_ignore_ascii_case("content-type");
            request = request.header(&h.name, &h.value);
        }
        if !content_type {
            request = request.header("Content-Type", "application/json");
        }
        if let Some(auth) = &self.basic_auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        call(name, request).map(|_| ())
    }
}
