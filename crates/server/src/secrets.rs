//! Secret values never leave the server: in every answer that carries a Secret (live, desired,
//! normalised and predicted states, manifests), each value of `data` and `stringData` becomes
//! a run of `+`, as Argo CD does. Equal values across the states of one object get equal runs
//! and different values different ones, so a diff still shows which keys changed — and nothing
//! of what they hold.

use std::collections::BTreeMap;

use serde_json::Value;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn is_secret(object: &Value) -> bool {
    object["kind"] == "Secret" && object["apiVersion"] == "v1"
}

/// Mask the Secret values in `states` (the states of one object; nulls and non-Secrets are
/// left alone).
pub fn hide_secret_data(states: &mut [&mut Value]) {
    // Per key, the distinct values in order of first appearance.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for state in states.iter().filter(|s| is_secret(s)) {
        for field in ["data", "stringData"] {
            if let Some(map) = state[field].as_object() {
                for (key, value) in map {
                    let text = value.as_str().unwrap_or_default().to_string();
                    let values = seen.entry(key.clone()).or_default();
                    if !values.contains(&text) {
                        values.push(text);
                    }
                }
            }
        }
    }
    for state in states.iter_mut().filter(|s| is_secret(s)) {
        for field in ["data", "stringData"] {
            if let Some(map) = state.get_mut(field).and_then(Value::as_object_mut) {
                for (key, value) in map.iter_mut() {
                    let text = value.as_str().unwrap_or_default();
                    let index = seen
                        .get(key)
                        .and_then(|v| v.iter().position(|x| x == text))
                        .unwrap_or(0);
                    *value = Value::String("+".repeat(8 + index));
                }
            }
        }
        // The annotation kubectl leaves holds the whole Secret as written.
        if let Some(annotations) = state
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
    }
}

/// One object on its own (a live read, a rendered manifest).
pub fn hide_in(mut object: Value) -> Value {
    hide_secret_data(&mut [&mut object]);
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_masked_and_changes_still_show() {
        let mut desired =
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2FtZQ==", "b": "bmV3"}});
        let mut live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"annotations": {LAST_APPLIED: "{\"data\":{\"a\":\"c2FtZQ==\"}}", "keep": "x"}},
            "data": {"a": "c2FtZQ==", "b": "b2xk"}});
        hide_secret_data(&mut [&mut desired, &mut live]);
        assert_eq!(
            desired["data"]["a"], live["data"]["a"],
            "equal values, equal masks"
        );
        assert_ne!(
            desired["data"]["b"], live["data"]["b"],
            "a change still shows"
        );
        let text = format!("{desired}{live}");
        for secret in ["c2FtZQ==", "bmV3", "b2xk", "last-applied"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(live["metadata"]["annotations"]["keep"], "x");
    }

    #[test]
    fn other_objects_and_nulls_are_untouched() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(hide_in(cm.clone()), cm);
        assert_eq!(hide_in(Value::Null), Value::Null);
    }
}
