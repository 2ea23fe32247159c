//! Triggers: `trigger.<name>` is a list of conditions, each with a `when` expression, the
//! templates it sends, and optionally `oncePer` (send once per value of that expression).
//! The default catalogue — Argo's eight plus Tiphys's drift and paused-too-long alerts — is
//! there without being declared; a `trigger.<name>` of the same name replaces one.

use serde::Deserialize;

use crate::condition::{Env, Expression};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSpec {
    pub when: String,
    #[serde(default)]
    pub send: Vec<String>,
    #[serde(default)]
    pub once_per: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug)]
pub struct Condition {
    pub when: Expression,
    pub send: Vec<String>,
    pub once_per: Option<Expression>,
    /// Stable per condition text (`[index].hash`), part of the remembered key.
    pub key: String,
}

#[derive(Debug)]
pub struct Trigger {
    pub name: String,
    pub conditions: Vec<Condition>,
}

/// A condition that holds: what to send, and the value it is sent once for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub condition: String,
    pub once_per: Option<String>,
    pub send: Vec<String>,
}

fn short_hash(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Trigger {
    /// Compile every condition; an error names the condition and says what is wrong.
    pub fn compile(name: &str, conditions: Vec<ConditionSpec>) -> Result<Trigger, String> {
        if conditions.is_empty() {
            return Err("a trigger needs at least one condition".into());
        }
        let mut out = Vec::new();
        for (i, spec) in conditions.into_iter().enumerate() {
            if spec.send.is_empty() {
                return Err(format!("condition {i}: `send` names no template"));
            }
            let when = Expression::compile(&spec.when)
                .map_err(|e| format!("condition {i}: `when` {:?}: {e}", spec.when))?;
            let once_per =
                if spec.once_per.trim().is_empty() {
                    None
                } else {
                    Some(Expression::compile(&spec.once_per).map_err(|e| {
                        format!("condition {i}: `oncePer` {:?}: {e}", spec.once_per)
                    })?)
                };
            out.push(Condition {
                key: format!("[{i}].{}", short_hash(&spec.when)),
                when,
                send: spec.send,
                once_per,
            });
        }
        Ok(Trigger {
            name: name.to_string(),
            conditions: out,
        })
    }

    /// Whether any condition's text mentions `word`.
    pub fn mentions(&self, word: &str) -> bool {
        self.conditions.iter().any(|c| {
            c.when.source.contains(word)
                || c.once_per.as_ref().is_some_and(|o| o.source.contains(word))
        })
    }

    /// The conditions that hold for `env`; an evaluation error names the trigger and
    /// condition (the other conditions are still looked at).
    pub fn evaluate(&self, env: &Env) -> (Vec<Fired>, Vec<String>) {
        let mut fired = Vec::new();
        let mut errors = Vec::new();
        for (i, c) in self.conditions.iter().enumerate() {
            match c.when.eval_bool(env) {
                Ok(true) => {
                    let once_per = match &c.once_per {
                        None => None,
                        Some(e) => match e.eval_key(env) {
                            Ok(v) => Some(v),
                            Err(e) => {
                                errors.push(format!(
                                    "trigger {} condition {i}: oncePer: {e}",
                                    self.name
                                ));
                                continue;
                            }
                        },
                    };
                    fired.push(Fired {
                        condition: c.key.clone(),
                        once_per,
                        send: c.send.clone(),
                    });
                }
                Ok(false) => {}
                Err(e) => errors.push(format!(
                    "trigger {} condition {i}: when {:?}: {e}",
                    self.name, c.when.source
                )),
            }
        }
        (fired, errors)
    }
}

const OPERATION: &str = "app.status.operationState != nil and app.status.operationState.phase";
/// Once per operation: a second sync's success is news even if nothing looked in between.
const PER_OPERATION: &str = "app.status.operationState?.startedAt";

/// The built-in triggers.
pub fn catalogue() -> Vec<(String, Vec<ConditionSpec>)> {
    let one = |when: String, send: &str, once_per: &str, description: &str| {
        vec![ConditionSpec {
            when,
            send: vec![send.to_string()],
            once_per: once_per.to_string(),
            description: description.to_string(),
        }]
    };
    vec![
        (
            "on-created".into(),
            one(
                "true".into(),
                "app-created",
                "app.metadata.name",
                "Application is created.",
            ),
        ),
        (
            "on-deleted".into(),
            one(
                "app.metadata.deletionTimestamp != nil".into(),
                "app-deleted",
                "app.metadata.name",
                "Application is deleted.",
            ),
        ),
        (
            "on-deployed".into(),
            one(
                format!("{OPERATION} in ['Succeeded'] and app.status.health.status == 'Healthy'"),
                "app-deployed",
                "app.status.operationState?.syncResult?.revision",
                "Application is synced and healthy. Triggered once per commit.",
            ),
        ),
        (
            "on-health-degraded".into(),
            one(
                "app.status.health.status == 'Degraded'".into(),
                "app-health-degraded",
                "",
                "Application has degraded",
            ),
        ),
        (
            "on-sync-failed".into(),
            one(
                format!("{OPERATION} in ['Error', 'Failed']"),
                "app-sync-failed",
                PER_OPERATION,
                "Application syncing has failed",
            ),
        ),
        (
            "on-sync-running".into(),
            one(
                format!("{OPERATION} in ['Running']"),
                "app-sync-running",
                PER_OPERATION,
                "Application is being synced",
            ),
        ),
        (
            "on-sync-status-unknown".into(),
            one(
                "app.status.sync.status == 'Unknown'".into(),
                "app-sync-status-unknown",
                "",
                "Application status is 'Unknown'",
            ),
        ),
        (
            "on-sync-succeeded".into(),
            one(
                format!("{OPERATION} in ['Succeeded']"),
                "app-sync-succeeded",
                PER_OPERATION,
                "Application syncing has succeeded",
            ),
        ),
        (
            "on-drift-detected".into(),
            one(
                "drift.detected".into(),
                "app-drift-detected",
                "drift.id",
                "Live state departed from Git: with auto-sync off or paused, or reverted by self-heal",
            ),
        ),
        (
            "on-auto-sync-paused-too-long".into(),
            one(
                "pause.paused and pause.pausedSeconds >= pause.limitSeconds".into(),
                "app-auto-sync-paused-too-long",
                "pause.until",
                "Auto-sync has been paused for longer than allowed",
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalogue_compiles_and_fires() {
        let mut env = Env::default();
        env.insert(
            "app",
            &json!({"metadata": {"name": "a"}, "status": {"sync": {"status": "Unknown"},
                "health": {"status": "Healthy"},
                "operationState": {"phase": "Succeeded", "startedAt": "t1", "syncResult": {"revision": "r1"}}}}),
        );
        env.insert("drift", &json!({"detected": false}));
        env.insert("pause", &json!({"paused": false}));
        let mut fired = Vec::new();
        for (name, conditions) in catalogue() {
            let trigger = Trigger::compile(&name, conditions).unwrap();
            let (f, errors) = trigger.evaluate(&env);
            assert!(errors.is_empty(), "{name}: {errors:?}");
            if let Some(f) = f.first() {
                fired.push((name, f.once_per.clone()));
            }
        }
        let names: Vec<&str> = fired.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "on-created",
                "on-deployed",
                "on-sync-status-unknown",
                "on-sync-succeeded"
            ]
        );
        assert_eq!(fired[1].1.as_deref(), Some("r1"));
    }

    #[test]
    fn errors_name_the_condition() {
        let bad = Trigger::compile(
            "t",
            vec![ConditionSpec {
                when: "app.x ==".into(),
                send: vec!["m".into()],
                ..Default::default()
            }],
        )
        .unwrap_err();
        assert!(bad.starts_with("condition 0: `when`"), "{bad}");
        let runtime = Trigger::compile(
            "t",
            vec![ConditionSpec {
                when: "app.metadata".into(),
                send: vec!["m".into()],
                ..Default::default()
            }],
        )
        .unwrap();
        let mut env = Env::default();
        env.insert("app", &json!({"metadata": {}}));
        let (fired, errors) = runtime.evaluate(&env);
        assert!(fired.is_empty());
        assert!(errors[0].contains("trigger t condition 0"), "{errors:?}");
    }
}
