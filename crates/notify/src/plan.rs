//! What to send for one Application now: its subscriptions (its own annotations, its
//! project's, the ConfigMap's), the triggers they name evaluated, and each fired condition
//! sent once per state — remembered as Argo CD does in the app's
//! `notified.notifications.argoproj.io` annotation (key → when it was sent). A condition that
//! stops holding is forgotten, so it is sent again the next time it holds; one with `oncePer`
//! is remembered per value, so it is sent once for each.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::condition::Env;
use crate::config::Config;
use crate::service::Delivery;
use crate::subscription::{self, Destination, Subscription};

/// Where sent notifications are remembered (Argo CD's annotation).
pub const NOTIFIED: &str = "notified.notifications.argoproj.io";
/// How many values of one `oncePer` condition are remembered per destination.
const ONCE_PER_KEPT: usize = 10;

/// Sent notifications by key, as the annotation's JSON holds them.
pub type Notified = BTreeMap<String, i64>;

/// The app as the plan sees it.
pub struct Subject<'a> {
    /// The Application as JSON (`.app` in templates and conditions).
    pub app: &'a Value,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub project_annotations: &'a BTreeMap<String, String>,
    /// The app's AppProject as JSON (`.appProject` in templates), null when there is none.
    pub project: &'a Value,
    /// Tiphys's drift report (`drift` in conditions and templates).
    pub drift: Value,
    /// Tiphys's pause of auto-sync (`pause`).
    pub pause: Value,
    /// What Argo's `repo` functions answer for this app (its commits, its source's details).
    pub lookups: crate::lent::Lookups,
    pub now: i64,
}

/// One notification to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The remembered key.
    pub key: String,
    pub service: String,
    pub template: String,
    pub delivery: Delivery,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub sends: Vec<Outgoing>,
    /// The annotation's new content.
    pub state: Notified,
    /// What went wrong (a trigger, a template, a service), one line each, naming it.
    pub problems: Vec<String>,
}

/// What `annotations` remember having sent.
pub fn notified(annotations: &BTreeMap<String, String>) -> Notified {
    annotations
        .get(NOTIFIED)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// Every subscription that applies to the subject.
pub fn subscriptions(config: &Config, subject: &Subject) -> (Vec<Subscription>, Vec<String>) {
    let (mut subs, mut problems) = subscription::from_annotations(subject.annotations);
    let (project, project_problems) = subscription::from_annotations(subject.project_annotations);
    subs.extend(project);
    problems.extend(project_problems.into_iter().map(|p| format!("project {p}")));
    subs.extend(config.subscriptions.iter().cloned());
    (subs, problems)
}

/// A digest of everything in `subject` a plan depends on — the fields of the app the
/// conditions read, its annotations and labels, the project's annotations, the drift, whether
/// a pause is due — or none when that cannot be told (a condition reads the whole app or the
/// clock, or a pause is on). Equal digests plan the same, so a look can be skipped.
pub fn digest(config: &Config, subject: &Subject) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let reads = config.reads.as_ref()?;
    if subject.pause["paused"] == json!(true) {
        return None;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for pointer in reads {
        match subject.app.pointer(pointer) {
            Some(v) => v.to_string().hash(&mut hasher),
            None => 0u8.hash(&mut hasher),
        }
    }
    subject.annotations.hash(&mut hasher);
    subject.labels.hash(&mut hasher);
    subject.project_annotations.hash(&mut hasher);
    subject.drift.to_string().hash(&mut hasher);
    Some(hasher.finish())
}

pub fn plan(config: &Config, subject: &Subject) -> Plan {
    let notified = notified(subject.annotations);
    let (subs, mut problems) = subscriptions(config, subject);
    let destinations = subscription::destinations(&subs, subject.labels, |service| {
        config.defaults_for(service).to_vec()
    });
    let mut plan = Plan::default();
    if destinations.is_empty() {
        plan.problems = problems;
        return plan;
    }
    // Conditions and templates call Argo's `repo` functions through plain function pointers.
    let _loan = crate::lent::lend(&subject.lookups);
    // Conditions see only the fields they read (when that can be told): the expression
    // engine copies what a member access passes through, so a whole Application there would
    // be copied at every `app.…` of every condition. Templates, rendered only when a
    // notification fires, see the whole app.
    let view = std::cell::OnceCell::new();
    let full_view = || view.get_or_init(|| with_skeleton(config.view_of(subject.app)));
    let mut env = Env::default();
    match &config.reads {
        Some(reads) => env.insert("app", &with_skeleton(only(subject.app, reads))),
        None => env.insert("app", full_view()),
    }
    env.insert("drift", &subject.drift);
    env.insert("pause", &subject.pause);
    let mut by_trigger: BTreeMap<&str, Vec<&Destination>> = BTreeMap::new();
    for d in &destinations {
        by_trigger.entry(d.trigger.as_str()).or_default().push(d);
    }
    let app_name = subject.app["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (trigger_name, dests) in by_trigger {
        let Some(trigger) = config.triggers.get(trigger_name) else {
            let key = format!("trigger.{trigger_name}");
            if config.problems.iter().any(|p| p.key == key) {
                continue; // already reported as a configuration problem
            }
            problems.push(format!(
                "trigger {trigger_name:?} is subscribed to but not defined (trigger.{trigger_name})"
            ));
            continue;
        };
        let (fired, errors) = trigger.evaluate(&env);
        problems.extend(errors);
        for d in dests {
            let suffix = |condition: &str| {
                format!("{trigger_name}:{condition}:{}:{}", d.service, d.recipient)
            };
            // Values of `oncePer` conditions already sent stay remembered (the newest few).
            for c in trigger.conditions.iter().filter(|c| c.once_per.is_some()) {
                let tail = format!(":{}", suffix(&c.key));
                let mut kept: Vec<(&String, &i64)> = notified
                    .iter()
                    .filter(|(k, _)| k.ends_with(&tail))
                    .collect();
                kept.sort_by_key(|(_, at)| std::cmp::Reverse(**at));
                for (k, at) in kept.into_iter().take(ONCE_PER_KEPT) {
                    plan.state.insert(k.clone(), *at);
                }
            }
            for f in &fired {
                let key = match &f.once_per {
                    Some(value) => format!("{value}:{}", suffix(&f.condition)),
                    None => suffix(&f.condition),
                };
                if let Some(at) = notified.get(&key) {
                    plan.state.insert(key, *at);
                    continue;
                }
                let mut rendered_all = true;
                for template_name in &f.send {
                    match render(config, subject, full_view(), template_name, d) {
                        Ok(notification) => plan.sends.push(Outgoing {
                            key: key.clone(),
                            service: d.service.clone(),
                            template: template_name.clone(),
                            delivery: Delivery {
                                notification,
                                recipient: d.recipient.clone(),
                                trigger: trigger_name.to_string(),
                                app: app_name.clone(),
                            },
                        }),
                        Err(e) => {
                            problems.push(e);
                            rendered_all = false;
                        }
                    }
                }
                // A template that failed leaves the state as it was: fixed, it sends.
                if rendered_all {
                    plan.state.insert(key, subject.now);
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    plan.problems = problems;
    plan
}

/// The parts of `app` at `pointers` (whole subtrees), in an otherwise empty object.
fn only(app: &Value, pointers: &[String]) -> Value {
    let mut out = json!({});
    for pointer in pointers {
        let Some(value) = app.pointer(pointer) else {
            continue;
        };
        let mut node = &mut out;
        let mut keys = pointer.split('/').skip(1).peekable();
        while let Some(key) = keys.next() {
            let Some(map) = node.as_object_mut() else {
                break;
            };
            if keys.peek().is_none() {
                map.insert(key.to_string(), value.clone());
                break;
            }
            node = map.entry(key.to_string()).or_insert_with(|| json!({}));
        }
    }
    out
}

/// The app with the maps conditions reach into present even when empty — a new app has no
/// status yet, and `app.status.health.status` should then be nil, not an error.
fn with_skeleton(mut app: Value) -> Value {
    for path in [
        &["metadata"][..],
        &["metadata", "labels"],
        &["metadata", "annotations"],
        &["status"],
        &["status", "sync"],
        &["status", "health"],
    ] {
        let mut node = &mut app;
        for key in path {
            let Some(map) = node.as_object_mut() else {
                break;
            };
            node = map.entry(key.to_string()).or_insert_with(|| json!({}));
        }
    }
    app
}

fn render(
    config: &Config,
    subject: &Subject,
    app: &Value,
    template_name: &str,
    d: &Destination,
) -> Result<crate::template::Notification, String> {
    let template = config.templates.get(template_name).ok_or_else(|| {
        format!("template {template_name:?} is not defined (template.{template_name})")
    })?;
    let service_type = config
        .services
        .get(&d.service)
        .map(|s| s.kind())
        .unwrap_or_default();
    let data = json!({
        "app": app,
        "appProject": subject.project,
        "context": config.context,
        "secrets": config.secrets,
        "recipient": d.recipient,
        "serviceType": service_type,
        "notificationType": service_type,
        "trigger": d.trigger,
        "drift": subject.drift,
        "pause": subject.pause,
    });
    template.render(&data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let data = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::read(&data, &BTreeMap::new())
    }

    fn run(config: &Config, app: &Value, annotations: &BTreeMap<String, String>) -> Plan {
        let empty = BTreeMap::new();
        plan(
            config,
            &Subject {
                app,
                labels: &empty,
                annotations,
                project_annotations: &empty,
                project: &Value::Null,
                drift: json!({"detected": false}),
                pause: json!({"paused": false}),
                lookups: Default::default(),
                now: 100,
            },
        )
    }

    fn synced(phase: &str, started: &str) -> Value {
        json!({"metadata": {"name": "guestbook"}, "status": {
            "health": {"status": "Healthy"}, "sync": {"status": "Synced"},
            "operationState": {"phase": phase, "startedAt": started, "finishedAt": "f",
                "syncResult": {"revision": "r1"}}}})
    }

    #[test]
    fn sent_once_per_state_and_again_for_the_next_operation() {
        let config = config(&[("service.webhook.hook", "url: http://x\n")]);
        let mut annotations = BTreeMap::from([(
            "notifications.argoproj.io/subscribe.on-sync-succeeded.hook".to_string(),
            "ops".to_string(),
        )]);
        let first = run(&config, &synced("Succeeded", "t1"), &annotations);
        assert_eq!(first.sends.len(), 1);
        assert_eq!(
            first.sends[0].delivery.notification.message,
            "Application guestbook has been successfully synced at f."
        );
        annotations.insert(
            NOTIFIED.into(),
            serde_json::to_string(&first.state).unwrap(),
        );
        assert!(
            run(&config, &synced("Succeeded", "t1"), &annotations)
                .sends
                .is_empty()
        );
        assert_eq!(
            run(&config, &synced("Succeeded", "t2"), &annotations)
                .sends
                .len(),
            1
        );
    }

    #[test]
    fn conditions_see_only_what_they_read() {
        let app = json!({"metadata": {"name": "a", "labels": {"x": "1"}},
            "status": {"health": {"status": "Healthy", "message": "m"}, "resources": [1, 2]}});
        let seen = only(
            &app,
            &[
                "/status/health".to_string(),
                "/status/sync/status".to_string(),
            ],
        );
        assert_eq!(
            seen,
            json!({"status": {"health": {"status": "Healthy", "message": "m"}}})
        );
    }

    #[test]
    fn digests_change_with_what_conditions_read_only() {
        let config = config(&[]);
        let empty = BTreeMap::new();
        let digest_of = |app: &Value| {
            digest(
                &config,
                &Subject {
                    app,
                    labels: &empty,
                    annotations: &empty,
                    project_annotations: &empty,
                    project: &Value::Null,
                    drift: json!({"detected": false}),
                    pause: json!({"paused": false}),
                    lookups: Default::default(),
                    now: 100,
                },
            )
            .unwrap()
        };
        let app = synced("Succeeded", "t1");
        let mut refreshed = app.clone();
        refreshed["status"]["reconciledAt"] = json!("later");
        assert_eq!(digest_of(&app), digest_of(&refreshed));
        let mut degraded = app.clone();
        degraded["status"]["health"]["status"] = json!("Degraded");
        assert_ne!(digest_of(&app), digest_of(&degraded));
    }

    #[test]
    fn a_project_subscribes_its_apps() {
        let config = config(&[]);
        let project = BTreeMap::from([(
            "notifications.argoproj.io/subscribe.on-sync-succeeded.hook".to_string(),
            "team".to_string(),
        )]);
        let empty = BTreeMap::new();
        let app = synced("Succeeded", "t1");
        let plan = plan(
            &config,
            &Subject {
                app: &app,
                labels: &empty,
                annotations: &empty,
                project_annotations: &project,
                project: &Value::Null,
                drift: json!({"detected": false}),
                pause: json!({"paused": false}),
                lookups: Default::default(),
                now: 100,
            },
        );
        assert_eq!(plan.sends.len(), 1);
        assert_eq!(plan.sends[0].delivery.recipient, "team");
    }

    #[test]
    fn conditions_that_stop_holding_are_forgotten() {
        let config = config(&[(
            "trigger.on-healthy",
            "- when: app.status.health.status == 'Healthy'\n  send: [app-created]\n",
        )]);
        let mut annotations = BTreeMap::from([(
            "notifications.argoproj.io/subscribe.on-healthy.hook".to_string(),
            "ops".to_string(),
        )]);
        let first = run(&config, &synced("Succeeded", "t1"), &annotations);
        assert_eq!(first.state.len(), 1);
        // The service is not configured: the plan still sends; delivery reports it.
        assert_eq!(first.sends.len(), 1);
        annotations.insert(
            NOTIFIED.into(),
            serde_json::to_string(&first.state).unwrap(),
        );
        let mut degraded = synced("Succeeded", "t1");
        degraded["status"]["health"]["status"] = json!("Degraded");
        let second = run(&config, &degraded, &annotations);
        assert!(second.state.is_empty() && second.sends.is_empty());
    }

    #[test]
    fn problems_name_what_is_missing_and_others_still_send() {
        let config = config(&[
            (
                "trigger.on-bad",
                "- when: app.metadata\n  send: [app-created]\n",
            ),
            ("trigger.on-no-template", "- when: 'true'\n  send: [nope]\n"),
        ]);
        let annotations = BTreeMap::from([
            (
                "notifications.argoproj.io/subscribe.on-bad.hook".to_string(),
                "a".to_string(),
            ),
            (
                "notifications.argoproj.io/subscribe.on-undefined.hook".to_string(),
                "a".to_string(),
            ),
            (
                "notifications.argoproj.io/subscribe.on-no-template.hook".to_string(),
                "a".to_string(),
            ),
            (
                "notifications.argoproj.io/subscribe.on-created.hook".to_string(),
                "a".to_string(),
            ),
        ]);
        let plan = run(&config, &synced("Succeeded", "t1"), &annotations);
        assert_eq!(plan.sends.len(), 1, "on-created still sends");
        let problems = plan.problems.join("\n");
        assert!(
            problems.contains("trigger on-bad condition 0"),
            "{problems}"
        );
        assert!(problems.contains("trigger \"on-undefined\""), "{problems}");
        assert!(problems.contains("template \"nope\""), "{problems}");
    }
}
