//! Who wants what: subscriptions from annotations on an Application or its AppProject
//! (`notifications.argoproj.io/subscribe.<trigger>.<service>: r1;r2`,
//! `notifications.argoproj.io/subscribe.<service>` for the default triggers, and the YAML list
//! in `notifications.argoproj.io/subscriptions`), and from the ConfigMap's `subscriptions`
//! (`service:recipient`, with a label selector).

use std::collections::BTreeMap;

use serde::Deserialize;
use tiphys_model::selector::LabelSelector;

pub const SUBSCRIBE: &str = "notifications.argoproj.io/subscribe.";
pub const SUBSCRIPTIONS: &str = "notifications.argoproj.io/subscriptions";

/// One subscription: these triggers (none: the default ones) to these destinations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subscription {
    pub triggers: Vec<String>,
    /// `(service, recipient)`.
    pub destinations: Vec<(String, String)>,
    pub selector: Option<LabelSelector>,
}

/// One destination of one trigger, as the plan walks them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub trigger: String,
    pub service: String,
    pub recipient: String,
}

fn recipients(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split([';', ',', '\n'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

#[derive(Deserialize)]
struct AnnotationEntry {
    #[serde(default)]
    trigger: Vec<String>,
    #[serde(default)]
    destinations: Vec<AnnotationDestination>,
}

#[derive(Deserialize)]
struct AnnotationDestination {
    service: String,
    #[serde(default)]
    recipients: Vec<String>,
}

impl Subscription {
    /// The ConfigMap's form: recipients as `service:recipient`.
    pub fn from_config(
        recipients: &[String],
        triggers: &[String],
        selector: &str,
    ) -> Result<Subscription, String> {
        let mut destinations = Vec::new();
        for r in recipients {
            let (service, recipient) = r.split_once(':').ok_or_else(|| {
                format!("recipient {r:?} is not service:recipient (e.g. slack:my-channel)")
            })?;
            destinations.push((service.trim().to_string(), recipient.trim().to_string()));
        }
        let selector = if selector.trim().is_empty() {
            None
        } else {
            Some(LabelSelector::parse(selector)?)
        };
        Ok(Subscription {
            triggers: triggers.to_vec(),
            destinations,
            selector,
        })
    }
}

/// Whether these annotations subscribe to anything (cheap: no parsing).
pub fn any_in(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .keys()
        .any(|k| k.starts_with(SUBSCRIBE) || k == SUBSCRIPTIONS)
}

/// The subscriptions annotations declare; what cannot be read is an error naming the key.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
) -> (Vec<Subscription>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (key, value) in annotations {
        if key == SUBSCRIPTIONS {
            match serde_saphyr::from_str::<Vec<AnnotationEntry>>(value) {
                Ok(entries) => {
                    for entry in entries {
                        let destinations = entry
                            .destinations
                            .iter()
                            .flat_map(|d| {
                                d.recipients
                                    .iter()
                                    .flat_map(|r| recipients(r))
                                    .map(|r| (d.service.clone(), r))
                            })
                            .collect();
                        out.push(Subscription {
                            triggers: entry.trigger,
                            destinations,
                            selector: None,
                        });
                    }
                }
                Err(e) => errors.push(format!("annotation {key}: {e}")),
            }
            continue;
        }
        let Some(rest) = key.strip_prefix(SUBSCRIBE) else {
            continue;
        };
        // `<trigger>.<service>`, or only `<service>` (the default triggers). Service names
        // have no dots; trigger names may.
        let (triggers, service) = match rest.rsplit_once('.') {
            Some((trigger, service)) if !trigger.is_empty() => (vec![trigger.to_string()], service),
            Some((_, service)) => (Vec::new(), service),
            None => (Vec::new(), rest),
        };
        let mut destinations: Vec<(String, String)> = recipients(value)
            .map(|r| (service.to_string(), r))
            .collect();
        // Services that need no recipient (GitHub) are subscribed with an empty one.
        if destinations.is_empty() {
            destinations.push((service.to_string(), String::new()));
        }
        out.push(Subscription {
            triggers,
            destinations,
            selector: None,
        });
    }
    (out, errors)
}

/// Every (trigger, service, recipient) these subscriptions ask for, for an app with these
/// labels; a subscription naming no trigger takes `defaults(service)`.
pub fn destinations<'a>(
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
    labels: &BTreeMap<String, String>,
    defaults: impl Fn(&str) -> Vec<String>,
) -> Vec<Destination> {
    let mut out = Vec::new();
    for s in subscriptions {
        if s.selector.as_ref().is_some_and(|sel| !sel.matches(labels)) {
            continue;
        }
        for (service, recipient) in &s.destinations {
            let triggers = if s.triggers.is_empty() {
                defaults(service)
            } else {
                s.triggers.clone()
            };
            for trigger in triggers {
                out.push(Destination {
                    trigger,
                    service: service.clone(),
                    recipient: recipient.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations_of_every_form() {
        let (subs, errors) = from_annotations(&map(&[
            (
                "notifications.argoproj.io/subscribe.on-sync-succeeded.slack",
                "a; b",
            ),
            ("notifications.argoproj.io/subscribe.hooks", "ops"),
            (
                SUBSCRIPTIONS,
                "- trigger: [on-deployed]\n  destinations:\n  - service: email\n    recipients: [x@example.com]\n",
            ),
            ("unrelated", "x"),
        ]));
        assert!(errors.is_empty());
        let got = destinations(&subs, &BTreeMap::new(), |s| {
            vec![format!("default-for-{s}")]
        });
        let got: Vec<String> = got
            .iter()
            .map(|d| format!("{}:{}:{}", d.trigger, d.service, d.recipient))
            .collect();
        assert_eq!(
            got,
            [
                "default-for-hooks:hooks:ops",
                "on-deployed:email:x@example.com",
                "on-sync-succeeded:slack:a",
                "on-sync-succeeded:slack:b"
            ]
        );
    }

    #[test]
    fn config_subscriptions_select_by_label() {
        let sub = Subscription::from_config(
            &["slack:ops".into()],
            &["on-sync-failed".into()],
            "team=web",
        )
        .unwrap();
        let web = map(&[("team", "web")]);
        assert_eq!(destinations([&sub], &web, |_| vec![]).len(), 1);
        assert!(destinations([&sub], &BTreeMap::new(), |_| vec![]).is_empty());
        assert!(Subscription::from_config(&["nocolon".into()], &[], "").is_err());
    }
}
