//! Gateway API (`gateway.networking.k8s.io`). Every object is judged by conditions its
//! controllers write — on routes once per parent gateway (`status.parents`), on policies once
//! per ancestor (`status.ancestors`), on gateways and listener sets for the whole object and
//! once per listener. A condition whose `observedGeneration` is older than the object's
//! generation describes an older spec and is left out.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::text;
use crate::Health;

/// Conditions that, False, mean the controller refused something.
const REFUSALS: [&str; 3] = ["Accepted", "ResolvedRefs", "Reconciled"];

pub(super) fn health(kind: &str, v: &Value) -> Option<Health> {
    let health = match kind {
        "GatewayClass" => gateway_class(v),
        "Gateway" | "ListenerSet" | "XListenerSet" => gateway(kind, v),
        kind if kind.ends_with("Route") => route(kind, v),
        kind if kind.ends_with("Policy") => policy(kind, v),
        _ => return None,
    };
    Some(health)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The conditions of `holder` written for the current generation.
fn current(holder: &Value, generation: Option<i64>) -> Vec<&Value> {
    list(holder, "conditions")
        .iter()
        .filter(|c| {
            let observed = c.get("observedGeneration").and_then(Value::as_i64);
            !matches!((observed, generation), (Some(o), Some(g)) if o < g)
        })
        .collect()
}

fn find<'a>(conditions: &[&'a Value], kind: &str) -> Option<&'a Value> {
    conditions
        .iter()
        .copied()
        .find(|c| text(c, "/type") == kind)
}

fn is(conditions: &[&Value], kind: &str, status: &str) -> bool {
    find(conditions, kind).is_some_and(|c| text(c, "/status") == status)
}

/// The first refusal among `conditions`, as "message" or, without one, the condition's name.
fn refusal(conditions: &[&Value]) -> Option<String> {
    REFUSALS.iter().find_map(|kind| {
        let c = find(conditions, kind).filter(|c| text(c, "/status") == "False")?;
        Some(crate::message_or(
            text(c, "/message").trim().to_string(),
            &format!("failed condition: {kind}"),
        ))
    })
}

fn generation(v: &Value) -> Option<i64> {
    v.pointer("/metadata/generation").and_then(Value::as_i64)
}

fn gateway_class(v: &Value) -> Health {
    let Some(status) = v.get("status") else {
        return Health::new(Progressing, "waiting for the GatewayClass status");
    };
    let conditions = current(status, generation(v));
    match find(&conditions, "Accepted").map(|c| (text(c, "/status"), c)) {
        Some(("True", _)) => Health::new(Healthy, "GatewayClass has been accepted"),
        Some(("False", c)) => Health::new(Degraded, text(c, "/message")),
        Some((_, c)) => Health::new(Progressing, text(c, "/message")),
        None => Health::new(Progressing, "waiting for the GatewayClass status"),
    }
}

/// A Gateway or ListenerSet: refused (for itself or a listener) or a listener in conflict is
/// Degraded; not yet programmed, or listeners not reported yet, Progressing.
fn gateway(kind: &str, v: &Value) -> Health {
    let waiting = || Health::new(Progressing, format!("waiting for the {kind} status"));
    let Some(status) = v.get("status") else {
        return waiting();
    };
    let generation = generation(v);
    let own = current(status, generation);
    if own.is_empty() {
        return waiting();
    }
    if let Some(message) = refusal(&own) {
        return Health::new(Degraded, message);
    }
    let listeners = list(status, "listeners");
    for listener in listeners {
        let conditions = current(listener, generation);
        let conflict = find(&conditions, "Conflicted").filter(|c| text(c, "/status") == "True");
        if let Some(message) =
            refusal(&conditions).or_else(|| conflict.map(|c| text(c, "/message").to_string()))
        {
            return Health::new(
                Degraded,
                format!("listener {}: {message}", text(listener, "/name")),
            );
        }
    }
    if let Some(c) = find(&own, "Programmed").filter(|c| text(c, "/status") != "True") {
        return Health::new(Progressing, text(c, "/message"));
    }
    for listener in listeners {
        let conditions = current(listener, generation);
        if conditions.is_empty() {
            return waiting();
        }
        if let Some(c) = find(&conditions, "Programmed").filter(|c| text(c, "/status") != "True") {
            return Health::new(
                Progressing,
                format!(
                    "listener {}: {}",
                    text(listener, "/name"),
                    text(c, "/message")
                ),
            );
        }
    }
    let declared = v
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if listeners.len() < declared {
        return waiting();
    }
    Health::new(Healthy, format!("{kind} is accepted and programmed"))
}

/// A route: Healthy until a parent says otherwise (a route attached to no gateway has no
/// one to report on it); a parent that refused it Degraded; one programming it, or that has
/// not written conditions for the current spec, Progressing.
fn route(kind: &str, v: &Value) -> Health {
    let parents = v
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let generation = generation(v);
    let mut answered = 0;
    for parent in parents {
        let name = text(parent, "/parentRef/name");
        let conditions = current(parent, generation);
        if conditions.is_empty() {
            // Only stale conditions: this parent reported on an older spec.
            if !list(parent, "conditions").is_empty() {
                continue;
            }
            return Health::new(
                Progressing,
                format!("parent {name}: waiting for its conditions"),
            );
        }
        answered += 1;
        if let Some(message) = refusal(&conditions) {
            return Health::new(Degraded, format!("parent {name}: {message}"));
        }
        if let Some(c) = find(&conditions, "Programmed").filter(|c| text(c, "/status") == "False") {
            return Health::new(
                Progressing,
                format!("parent {name}: {}", text(c, "/message")),
            );
        }
    }
    if answered == 0 && !parents.is_empty() {
        return Health::new(
            Progressing,
            "waiting for the parents to observe the latest spec",
        );
    }
    Health::new(Healthy, format!("{kind} is accepted"))
}

/// A policy attached through `targetRefs` (BackendTLSPolicy, …): each ancestor's controller
/// reports on it. Progressing until one reported on the current spec; a refusal Degraded —
/// except a TargetNotFound from a controller that does not handle the target when another
/// controller accepted it (several implementations watch the same CRDs).
fn policy(kind: &str, v: &Value) -> Health {
    let waiting = || Health::new(Progressing, format!("waiting for the {kind} status"));
    let ancestors = v
        .pointer("/status/ancestors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ancestors.is_empty() {
        return waiting();
    }
    let generation = generation(v);
    let accepted_by = |controller: &str| {
        ancestors.iter().any(|a| {
            text(a, "/controllerName") != controller
                && is(&current(a, generation), "Accepted", "True")
        })
    };
    let mut answered = 0;
    for ancestor in ancestors {
        let conditions = current(ancestor, generation);
        if conditions.is_empty() {
            continue;
        }
        answered += 1;
        let name = text(ancestor, "/ancestorRef/name");
        let not_handled = find(&conditions, "Accepted").is_some_and(|c| {
            text(c, "/status") == "False" && text(c, "/reason") == "TargetNotFound"
        }) && accepted_by(text(ancestor, "/controllerName"));
        if not_handled {
            continue;
        }
        if let Some(message) = refusal(&conditions) {
            return Health::new(Degraded, format!("ancestor {name}: {message}"));
        }
    }
    if answered == 0 {
        return waiting();
    }
    Health::new(Healthy, format!("{kind} is accepted"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiphys_model::application::HealthStatusCode;

    use super::*;

    fn c(kind: &str, status: &str, generation: i64) -> Value {
        json!({"type": kind, "status": status, "reason": kind, "message": format!("{kind} {status}"), "observedGeneration": generation})
    }

    fn code(kind: &str, v: Value) -> HealthStatusCode {
        health(kind, &v).expect("a Gateway API kind").status
    }

    #[test]
    fn routes_by_their_parents_current_conditions() {
        let route = |generation: i64, parents: Value| json!({"metadata": {"generation": generation}, "status": {"parents": parents}});
        let parent =
            |conditions: Value| json!({"parentRef": {"name": "gw"}, "conditions": conditions});
        let accepted = parent(json!([
            c("Accepted", "True", 1),
            c("ResolvedRefs", "True", 1)
        ]));
        assert_eq!(
            code("HTTPRoute", route(1, json!([accepted.clone()]))),
            Healthy
        );
        assert_eq!(code("HTTPRoute", json!({"spec": {}})), Healthy);
        assert_eq!(
            code(
                "GRPCRoute",
                route(1, json!([parent(json!([c("ResolvedRefs", "False", 1)]))]))
            ),
            Degraded
        );
        assert_eq!(
            code(
                "TLSRoute",
                route(
                    1,
                    json!([parent(json!([
                        c("Programmed", "False", 1),
                        c("Accepted", "True", 1)
                    ]))])
                )
            ),
            Progressing
        );
        assert_eq!(
            code("HTTPRoute", route(1, json!([parent(json!([]))]))),
            Progressing
        );
        // A parent's refusal of generation 1 says nothing about generation 2.
        let stale_refusal = parent(json!([c("Accepted", "False", 1)]));
        let now_accepted = parent(json!([c("Accepted", "True", 2)]));
        assert_eq!(
            code("HTTPRoute", route(2, json!([stale_refusal, now_accepted]))),
            Healthy
        );
        assert_eq!(code("HTTPRoute", route(2, json!([accepted]))), Progressing);
    }

    #[test]
    fn gateways_listeners_and_classes() {
        let ok = json!([c("Accepted", "True", 1), c("Programmed", "True", 1)]);
        let gateway = |own: Value, listener: Value| {
            json!({"metadata": {"generation": 1}, "spec": {"listeners": [{"name": "http"}]},
            "status": {"conditions": own, "listeners": [{"name": "http", "conditions": listener}]}})
        };
        assert_eq!(code("Gateway", gateway(ok.clone(), ok.clone())), Healthy);
        assert_eq!(
            code(
                "Gateway",
                gateway(json!([c("Accepted", "False", 1)]), ok.clone())
            ),
            Degraded
        );
        assert_eq!(
            code(
                "ListenerSet",
                gateway(ok.clone(), json!([c("Conflicted", "True", 1)]))
            ),
            Degraded
        );
        assert_eq!(
            code(
                "Gateway",
                gateway(json!([c("Programmed", "False", 1)]), ok.clone())
            ),
            Progressing
        );
        assert_eq!(
            code(
                "ListenerSet",
                gateway(ok.clone(), json!([c("Programmed", "False", 1)]))
            ),
            Progressing
        );
        assert_eq!(code("Gateway", json!({"spec": {}})), Progressing);
        let class = |s: &str, generation: i64| json!({"metadata": {"generation": 2}, "status": {"conditions": [c("Accepted", s, generation)]}});
        assert_eq!(code("GatewayClass", class("True", 2)), Healthy);
        assert_eq!(code("GatewayClass", class("False", 2)), Degraded);
        assert_eq!(code("GatewayClass", class("True", 1)), Progressing);
    }

    #[test]
    fn policies_by_their_ancestors() {
        let policy = |ancestors: Value| json!({"metadata": {"generation": 1}, "status": {"ancestors": ancestors}});
        let ancestor = |controller: &str, conditions: Value| json!({"ancestorRef": {"name": "gw"}, "controllerName": controller, "conditions": conditions});
        let not_found = json!([{"type": "Accepted", "status": "False", "reason": "TargetNotFound", "observedGeneration": 1}]);
        assert_eq!(
            code(
                "BackendTLSPolicy",
                policy(json!([ancestor("a", json!([c("Accepted", "True", 1)]))]))
            ),
            Healthy
        );
        assert_eq!(
            code(
                "BackendTLSPolicy",
                policy(json!([
                    ancestor("a", json!([c("Accepted", "True", 1)])),
                    ancestor("b", not_found.clone())
                ]))
            ),
            Healthy
        );
        assert_eq!(
            code(
                "BackendTLSPolicy",
                policy(json!([ancestor("b", not_found)]))
            ),
            Degraded
        );
        assert_eq!(
            code(
                "BackendTLSPolicy",
                policy(json!([ancestor(
                    "a",
                    json!([c("ResolvedRefs", "False", 1)])
                )]))
            ),
            Degraded
        );
        assert_eq!(code("BackendTLSPolicy", json!({"spec": {}})), Progressing);
        assert_eq!(
            code(
                "BackendTLSPolicy",
                policy(json!([ancestor("a", json!([]))]))
            ),
            Progressing
        );
    }
}
