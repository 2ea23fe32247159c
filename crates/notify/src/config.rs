//! argocd-notifications-cm and argocd-notifications-secret, read as Argo CD's notifications
//! controller reads them. What cannot be read is a [`Problem`] naming its key; the rest of the
//! configuration keeps working.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::service::Service;
use crate::subscription::Subscription;
use crate::template::{Template, TemplateSpec};
use crate::trigger::{self, Trigger};

pub const NOTIFICATIONS_CM: &str = "argocd-notifications-cm";
pub const NOTIFICATIONS_SECRET: &str = "argocd-notifications-secret";
/// How long a pause may last before `on-auto-sync-paused-too-long` fires (Tiphys's key).
pub const PAUSED_TOO_LONG: &str = "tiphys.trigger.on-auto-sync-paused-too-long.after";

/// A key of the ConfigMap that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{NOTIFICATIONS_CM} {}: {}", self.key, self.message)
    }
}

/// Everything the notifications are configured with.
#[derive(Debug, Default)]
pub struct Config {
    pub services: BTreeMap<String, Service>,
    pub templates: BTreeMap<String, Template>,
    pub triggers: BTreeMap<String, Trigger>,
    /// `defaultTriggers`: what a subscription naming no trigger subscribes to.
    pub default_triggers: Vec<String>,
    /// `defaultTriggers.<service>`.
    pub default_triggers_by_service: BTreeMap<String, Vec<String>>,
    /// `subscriptions`: for every app the selector matches.
    pub subscriptions: Vec<Subscription>,
    pub context: Value,
    /// argocd-notifications-secret, for templates (`.secrets.<key>`).
    pub secrets: Value,
    pub paused_too_long: Duration,
    pub problems: Vec<Problem>,
    /// The bulky parts of an Application no trigger or template mentions, left out of what
    /// they see: the expression and template engines copy a value each time it is named.
    pub unused_bulk: Vec<&'static [&'static str]>,
    /// The fields of the app the conditions read (JSON pointers), when that can be told from
    /// their text; none when one reads the app as a whole or the clock.
    pub reads: Option<Vec<String>>,
    /// Whether a template or condition calls `GetCommitMetadata`: only then is the metadata
    /// of an app's revisions looked up for its notifications.
    pub wants_commit_metadata: bool,
    /// Whether a template or condition calls `GetAppDetails`: only then is the app's source
    /// read for its notifications.
    pub wants_app_details: bool,
}

/// The member chains `app.a.b` / `app?.a?.b` in `source` as JSON pointers; none when `app` is
/// used otherwise (indexed, passed whole) or the clock is read.
fn app_reads(source: &str) -> Option<Vec<String>> {
    // The clock, and what the repository says of the app's revisions, change with no field
    // of the app changing.
    if ["now(", "time.", "GetCommitMetadata", "GetAppDetails"]
        .iter()
        .any(|word| source.contains(word))
    {
        return None;
    }
    let bytes = source.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(found) = source[i..].find("app") {
        let start = i + found;
        let end = start + 3;
        i = end;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        if before.is_some_and(|b| word(b) || b == b'.' || b == b'\'' || b == b'"')
            || bytes.get(end).copied().is_some_and(word)
        {
            continue; // part of another name, a member, or a string
        }
        let mut pointer = String::new();
        let mut j = end;
        loop {
            let rest = &source[j..];
            let skip = if rest.starts_with("?.") {
                2
            } else if rest.starts_with('.') {
                1
            } else {
                break;
            };
            let name_len = rest[skip..].bytes().take_while(|b| word(*b)).count();
            if name_len == 0 {
                break;
            }
            pointer.push('/');
            pointer.push_str(&rest[skip..skip + name_len]);
            j += skip + name_len;
        }
        if pointer.is_empty() {
            return None; // `app` as a whole
        }
        out.push(pointer);
    }
    Some(out)
}

/// Parts of an Application that grow with the app (and the word that gives their use away).
const BULK: &[(&str, &[&str])] = &[
    ("resources", &["status", "resources"]),
    ("history", &["status", "history"]),
    ("managedFields", &["metadata", "managedFields"]),
    (
        "syncResult",
        &["status", "operationState", "syncResult", "resources"],
    ),
    (
        "last-applied-configuration",
        &[
            "metadata",
            "annotations",
            "kubectl.kubernetes.io/last-applied-configuration",
        ],
    ),
];

#[derive(Deserialize)]
struct SubscriptionSpec {
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    triggers: Vec<String>,
    #[serde(default)]
    selector: String,
}

/// `$key` of the Secret replaced by its value, in every string of a service's settings
/// (a whole value `$token`, or inside one: `Bearer $token`).
fn with_secrets(value: &mut Value, secret: &[(String, String)]) {
    match value {
        Value::String(s) if s.contains('$') => {
            if let Some(key) = s.strip_prefix('$')
                && let Some((_, v)) = secret.iter().find(|(k, _)| k == key)
            {
                *s = v.clone();
                return;
            }
            // Longest keys first, so `$token-2` is not read as `$token` + "-2".
            for (k, v) in secret {
                *s = s.replace(&format!("${k}"), v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| with_secrets(v, secret)),
        Value::Object(map) => map.values_mut().for_each(|v| with_secrets(v, secret)),
        _ => {}
    }
}

impl Config {
    /// Read the ConfigMap's and the Secret's data (either may be absent).
    pub fn read(data: &BTreeMap<String, String>, secret: &BTreeMap<String, Vec<u8>>) -> Config {
        let mut secret: Vec<(String, String)> = secret
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        secret.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        let mut config = Config {
            secrets: Value::Object(
                secret
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
            paused_too_long: Duration::from_secs(4 * 3600),
            context: Value::Object(Default::default()),
            ..Config::default()
        };
        for (name, spec) in crate::defaults::templates() {
            if let Ok(t) = Template::compile(&name, spec) {
                config.templates.insert(name, t);
            }
        }
        for (name, conditions) in trigger::catalogue() {
            if let Ok(t) = Trigger::compile(&name, conditions) {
                config.triggers.insert(name, t);
            }
        }
        for (key, text) in data {
            if let Err(message) = config.read_key(key, text, &secret) {
                config.problems.push(Problem {
                    key: key.clone(),
                    message,
                });
            }
        }
        config.reads = config.condition_reads();
        let mentioned = |word: &str| {
            config.templates.values().any(|t| t.mentions(word))
                || config.triggers.values().any(|t| t.mentions(word))
        };
        config.wants_commit_metadata = mentioned("GetCommitMetadata");
        config.wants_app_details = mentioned("GetAppDetails");
        config.unused_bulk = BULK
            .iter()
            .filter(|(word, _)| {
                !config.triggers.values().any(|t| t.mentions(word))
                    && !config.templates.values().any(|t| t.mentions(word))
            })
            .map(|(_, path)| *path)
            .collect();
        config
    }

    fn condition_reads(&self) -> Option<Vec<String>> {
        let mut reads = Vec::new();
        for trigger in self.triggers.values() {
            for c in &trigger.conditions {
                reads.extend(app_reads(&c.when.source)?);
                if let Some(once) = &c.once_per {
                    reads.extend(app_reads(&once.source)?);
                }
            }
        }
        reads.sort();
        reads.dedup();
        Some(reads)
    }

    /// `app` as triggers and templates see it: the bulk they do not use left out.
    pub fn view_of(&self, app: &Value) -> Value {
        let mut app = app.clone();
        for path in &self.unused_bulk {
            let Some((last, parents)) = path.split_last() else {
                continue;
            };
            let pointer: String = parents.iter().map(|k| format!("/{k}")).collect();
            if let Some(map) = app.pointer_mut(&pointer).and_then(Value::as_object_mut) {
                map.remove(*last);
            }
        }
        app
    }

    fn read_key(
        &mut self,
        key: &str,
        text: &str,
        secret: &[(String, String)],
    ) -> Result<(), String> {
        let yaml = |text: &str| serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string());
        if let Some(rest) = key.strip_prefix("service.") {
            let (kind, name) = rest.split_once('.').unwrap_or((rest, rest));
            let mut settings = yaml(text)?;
            with_secrets(&mut settings, secret);
            let service = Service::from_settings(kind, settings)?;
            self.services.insert(name.to_string(), service);
        } else if let Some(name) = key.strip_prefix("template.") {
            let mut spec: TemplateSpec = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            // Overriding a built-in template for one service keeps its message and subject.
            if let Some((_, default)) = crate::defaults::templates()
                .into_iter()
                .find(|(n, _)| n == name)
            {
                if spec.message.is_empty() {
                    spec.message = default.message;
                }
                if spec.email.is_none() {
                    spec.email = default.email;
                }
            }
            self.templates
                .insert(name.to_string(), Template::compile(name, spec)?);
        } else if let Some(name) = key.strip_prefix("trigger.") {
            let conditions: Vec<trigger::ConditionSpec> =
                serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            self.triggers
                .insert(name.to_string(), Trigger::compile(name, conditions)?);
        } else if key == "defaultTriggers" {
            self.default_triggers = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        } else if let Some(service) = key.strip_prefix("defaultTriggers.") {
            let triggers = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            self.default_triggers_by_service
                .insert(service.to_string(), triggers);
        } else if key == "subscriptions" {
            let specs: Vec<SubscriptionSpec> =
                serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            for spec in specs {
                self.subscriptions.push(Subscription::from_config(
                    &spec.recipients,
                    &spec.triggers,
                    &spec.selector,
                )?);
            }
        } else if key == "context" {
            self.context = yaml(text)?;
        } else if key == PAUSED_TOO_LONG {
            self.paused_too_long = tiphys_model::validate::parse_duration(text.trim())
                .ok_or_else(|| format!("{text:?} is not a duration (say 90m, 4h, 1h30m)"))?;
        }
        Ok(())
    }

    /// The triggers a subscription naming none stands for, for `service`.
    pub fn defaults_for(&self, service: &str) -> &[String] {
        self.default_triggers_by_service
            .get(service)
            .unwrap_or(&self.default_triggers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)], secret: &[(&str, &str)]) -> Config {
        let data = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let secret = secret
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        Config::read(&data, &secret)
    }

    #[test]
    fn services_by_type_and_custom_name_with_secrets() {
        let config = read(
            &[
                ("service.slack", "token: $slack-token\n"),
                (
                    "service.webhook.hooks",
                    "url: https://example.com\nheaders:\n- name: Authorization\n  value: Bearer $token\n",
                ),
                ("service.email.gmail", "host: smtp\nport: 25\nfrom: a@b\n"),
            ],
            &[
                ("slack-token", "xoxb-1"),
                ("token", "t0k"),
                ("token-2", "no"),
            ],
        );
        assert!(config.problems.is_empty(), "{:?}", config.problems);
        assert_eq!(config.services["slack"].kind(), "slack");
        assert_eq!(config.services["gmail"].kind(), "email");
        let Service::Webhook(hook) = &config.services["hooks"] else {
            panic!("not a webhook")
        };
        assert_eq!(hook.headers[0].value, "Bearer t0k");
    }

    #[test]
    fn what_conditions_read_of_the_app() {
        assert_eq!(
            app_reads("app.status.operationState != nil and app?.status?.health.status in ['x'] and 'app.x' == y").unwrap(),
            ["/status/operationState", "/status/health/status"]
        );
        assert_eq!(
            app_reads("myapp.x and apps.y").unwrap(),
            Vec::<String>::new()
        );
        assert!(app_reads("toJSON(app) == ''").is_none());
        assert!(app_reads("time.Now().Sub(time.Parse(app.x)).Minutes() > 1").is_none());
        let config = read(&[], &[]);
        let reads = config.reads.unwrap();
        assert!(
            reads.contains(&"/status/operationState".to_string()),
            "{reads:?}"
        );
    }

    #[test]
    fn a_bad_key_is_a_problem_and_the_rest_still_works() {
        let config = read(
            &[
                (
                    "trigger.on-broken",
                    "- when: app.status.health.status ==\n  send: [x]\n",
                ),
                (
                    "trigger.on-fine",
                    "- when: app.status.health.status == 'Healthy'\n  send: [app-created]\n",
                ),
                ("template.bad", "message: '{{if .x}}'\n"),
                ("service.pager", "url: x\n"),
                (PAUSED_TOO_LONG, "soon"),
            ],
            &[],
        );
        let keys: Vec<&str> = config.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "service.pager",
                "template.bad",
                PAUSED_TOO_LONG,
                "trigger.on-broken"
            ]
        );
        assert!(config.triggers.contains_key("on-fine"));
        assert!(config.triggers.contains_key("on-deployed"));
    }
}
