//! GitHub commit statuses, as a GitHub App: a JWT signed with the app's private key buys an
//! installation token, which sets the status of the synced commit. `enterpriseBaseURL` points
//! at GitHub Enterprise's API (or a test server).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Delivery, DeliveryError, call, http_client};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHub {
    #[serde(rename = "appID", deserialize_with = "text")]
    pub app_id: String,
    #[serde(rename = "installationID", deserialize_with = "text")]
    pub installation_id: String,
    pub private_key: String,
    #[serde(default, rename = "enterpriseBaseURL")]
    pub enterprise_base_url: String,
}

/// IDs are written as numbers or strings.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[derive(serde::Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

impl GitHub {
    fn base(&self) -> &str {
        if self.enterprise_base_url.is_empty() {
            "https://api.github.com"
        } else {
            self.enterprise_base_url.trim_end_matches('/')
        }
    }

    fn refused(name: &str, message: impl Into<String>) -> DeliveryError {
        DeliveryError::Refused {
            service: name.to_string(),
            message: message.into(),
        }
    }

    fn app_jwt(&self, name: &str) -> Result<String, DeliveryError> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.as_bytes())
            .map_err(|e| Self::refused(name, format!("privateKey: {e}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // GitHub allows ten minutes and some clock skew.
        let claims = Claims {
            iat: now.saturating_sub(60),
            exp: now + 540,
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| Self::refused(name, format!("signing the app token: {e}")))
    }

    pub fn send(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        let Some(status) = &delivery.notification.github else {
            return Err(Self::refused(
                name,
                "the template has no `github` section to say which status to set",
            ));
        };
        let repo = crate::repo_url::full_name(&status.repo_url).ok_or_else(|| {
            Self::refused(
                name,
                format!("{:?} is not a GitHub repository URL", status.repo_url),
            )
        })?;
        if status.revision.is_empty() {
            return Err(Self::refused(name, "no revision to set a status on"));
        }
        let client = http_client(name, false)?;
        let jwt = self.app_jwt(name)?;
        let base = self.base();
        let token: Value = call(
            name,
            client
                .post(format!(
                    "{base}/app/installations/{}/access_tokens",
                    self.installation_id
                ))
                .bearer_auth(jwt)
                .header("Accept", "application/vnd.github+json")
                .header("User-Agent", "tiphys"),
        )
        .map(|r| serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null))?;
        let Some(token) = token["token"].as_str() else {
            return Err(Self::refused(
                name,
                "no installation token in GitHub's answer",
            ));
        };
        let description: String = delivery.notification.message.chars().take(140).collect();
        call(
            name,
            client
                .post(format!("{base}/repos/{repo}/statuses/{}", status.revision))
                .header("Authorization", format!("token {token}"))
                .header("Accept", "application/vnd.github+json")
                .header("User-Agent", "tiphys")
                .header("Content-Type", "application/json")
                .body(
                    json!({
                        "state": status.state,
                        "context": status.label,
                        "target_url": status.target_url,
                        "description": description,
                    })
                    .to_string(),
                ),
        )
        .map(|_| ())
    }
}
