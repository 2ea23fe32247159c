//! Notifications, configured as Argo CD's notifications controller is: services, templates
//! and triggers in `argocd-notifications-cm` (secrets from `argocd-notifications-secret`),
//! subscriptions by annotation or in the ConfigMap.
//!
//! ```text
//!  Config::read(cm, secret) ─┐
//!  Subject (app JSON, annotations, drift, pause) ─► plan() ─► Plan { sends, state, problems }
//!  Service::send(Delivery)   ◄─ the controller, off its async workers, after writing state
//! ```
//!
//! Pure apart from `service`, which talks to webhooks, Slack, SMTP and GitHub; nothing here
//! talks to the cluster.
#![forbid(unsafe_code)]

pub mod condition;
pub mod config;
mod defaults;
mod functions;
pub mod lent;
pub mod plan;
mod repo_url;
pub mod service;
pub mod subscription;
pub mod template;
pub mod trigger;

pub use config::{Config, NOTIFICATIONS_CM, NOTIFICATIONS_SECRET, PAUSED_TOO_LONG, Problem};
pub use lent::Lookups;
pub use plan::{NOTIFIED, Notified, Outgoing, Plan, Subject, digest, plan};
pub use service::{Delivery, DeliveryError, Service};
