//! Email over SMTP (`lettre`): port 465 speaks TLS from the start, any other port upgrades
//! with STARTTLS when the server offers it; credentials when a username is configured.
//! Subject: the template's `email.subject`, else its title, else the message's first line.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::Deserialize;

use super::{Delivery, DeliveryError};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub from: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub html: bool,
    #[serde(default, alias = "insecure_skip_verify")]
    pub insecure_skip_verify: bool,
}

fn default_port() -> u16 {
    587
}

impl Email {
    fn failed(name: &str, message: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Transport {
            service: name.to_string(),
            message: message.to_string(),
        }
    }

    fn refused(name: &str, message: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Refused {
            service: name.to_string(),
            message: message.to_string(),
        }
    }

    pub fn message(&self, name: &str, delivery: &Delivery) -> Result<Message, DeliveryError> {
        let n = &delivery.notification;
        let subject = [&n.email_subject, &n.title]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| n.message.lines().next().unwrap_or_default().to_string());
        let from = self
            .from
            .parse()
            .map_err(|e| Self::refused(name, format!("from {:?}: {e}", self.from)))?;
        let mut builder = Message::builder().from(from).subject(subject.trim());
        for address in delivery.recipient.split(',').map(str::trim) {
            let to = address
                .parse()
                .map_err(|e| Self::refused(name, format!("recipient {address:?}: {e}")))?;
            builder = builder.to(to);
        }
        let content_type = if self.html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        };
        builder
            .header(content_type)
            .body(n.message.clone())
            .map_err(|e| Self::refused(name, e))
    }

    pub fn send(&self, name: &str, delivery: &Delivery) -> Result<(), DeliveryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let message = self.message(name, delivery)?;
        let parameters = TlsParameters::builder(self.host.clone())
            .dangerous_accept_invalid_certs(self.insecure_skip_verify)
            .build()
            .map_err(|e| Self::failed(name, e))?;
        let tls = if self.port == 465 {
            Tls::Wrapper(parameters)
        } else {
            Tls::Opportunistic(parameters)
        };
        let mut transport = SmtpTransport::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if !self.username.is_empty() {
            transport = transport.credentials(Credentials::new(
                self.username.clone(),
                self.password.clone(),
            ));
        }
        transport.build().send(&message).map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                Self::refused(name, e)
            } else {
                Self::failed(name, e)
            }
        })
    }
}
