//! The typed decode of built-in kinds: what kube-apiserver's Go structs accept. Decoding into
//! the k8s-openapi types and encoding back tells which fields the type does not have (unknown
//! fields, handled per `fieldValidation`) and which values have the wrong type (400).

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v1 as autoscaling_v1,
    autoscaling::v2 as autoscaling_v2, batch::v1 as batch, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The result of decoding into the Go type.
pub enum Decoded {
    /// Paths of fields the type does not have (`spec.template.spec.containers[0].imagee`).
    Ok { unknown: Vec<Vec<Segment>> },
    /// A value of the wrong type.
    Invalid(String),
    /// Not a kind this table knows.
    Unchecked,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

pub fn display(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

pub fn decode(group: &str, version: &str, kind: &str, obj: &Value) -> Decoded {
    let result = match (group, version, kind) {
        ("", "v1", "Namespace") => round_trip::<core::Namespace>(obj),
        ("", "v1", "ConfigMap") => round_trip::<core::ConfigMap>(obj),
        ("", "v1", "Secret") => round_trip::<core::Secret>(obj),
        ("", "v1", "Service") => round_trip::<core::Service>(obj),
        ("", "v1", "ServiceAccount") => round_trip::<core::ServiceAccount>(obj),
        ("", "v1", "Pod") => round_trip::<core::Pod>(obj),
        ("", "v1", "PodTemplate") => round_trip::<core::PodTemplate>(obj),
        ("", "v1", "Endpoints") => round_trip::<core::Endpoints>(obj),
        ("", "v1", "Event") => round_trip::<core::Event>(obj),
        ("", "v1", "PersistentVolumeClaim") => round_trip::<core::PersistentVolumeClaim>(obj),
        ("", "v1", "PersistentVolume") => round_trip::<core::PersistentVolume>(obj),
        ("", "v1", "LimitRange") => round_trip::<core::LimitRange>(obj),
        ("", "v1", "ResourceQuota") => round_trip::<core::ResourceQuota>(obj),
        ("", "v1", "ReplicationController") => round_trip::<core::ReplicationController>(obj),
        ("", "v1", "Node") => round_trip::<core::Node>(obj),
        ("apps", "v1", "Deployment") => round_trip::<apps::Deployment>(obj),
        ("apps", "v1", "StatefulSet") => round_trip::<apps::StatefulSet>(obj),
        ("apps", "v1", "DaemonSet") => round_trip::<apps::DaemonSet>(obj),
        ("apps", "v1", "ReplicaSet") => round_trip::<apps::ReplicaSet>(obj),
        ("apps", "v1", "ControllerRevision") => round_trip::<apps::ControllerRevision>(obj),
        ("batch", "v1", "Job") => round_trip::<batch::Job>(obj),
        ("batch", "v1", "CronJob") => round_trip::<batch::CronJob>(obj),
        ("networking.k8s.io", "v1", "Ingress") => round_trip::<networking::Ingress>(obj),
        ("networking.k8s.io", "v1", "IngressClass") => round_trip::<networking::IngressClass>(obj),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            round_trip::<networking::NetworkPolicy>(obj)
        }
        ("rbac.authorization.k8s.io", "v1", "Role") => round_trip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => round_trip::<rbac::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => round_trip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            round_trip::<rbac::ClusterRoleBinding>(obj)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            round_trip::<apiextensions::CustomResourceDefinition>(obj)
        }
        ("coordination.k8s.io", "v1", "Lease") => round_trip::<coordination::Lease>(obj),
        ("policy", "v1", "PodDisruptionBudget") => round_trip::<policy::PodDisruptionBudget>(obj),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            round_trip::<autoscaling_v2::HorizontalPodAutoscaler>(obj)
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            round_trip::<autoscaling_v1::HorizontalPodAutoscaler>(obj)
        }
        ("storage.k8s.io", "v1", "StorageClass") => round_trip::<storage::StorageClass>(obj),
        ("events.k8s.io", "v1", "Event") => round_trip::<events::Event>(obj),
        ("discovery.k8s.io", "v1", "EndpointSlice") => round_trip::<discovery::EndpointSlice>(obj),
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            round_trip::<scheduling::PriorityClass>(obj)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => {
            round_trip::<admission::ValidatingWebhookConfiguration>(obj)
        }
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => {
            round_trip::<admission::MutatingWebhookConfiguration>(obj)
        }
        ("apiregistration.k8s.io", "v1", "APIService") => {
            round_trip::<apiregistration::APIService>(obj)
        }
        _ => return Decoded::Unchecked,
    };
    match result {
        Ok(back) => {
            let mut unknown = Vec::new();
            missing_keys(obj, &back, &mut Vec::new(), &mut unknown);
            Decoded::Ok { unknown }
        }
        // Go decodes a missing required field as its zero value and leaves the complaint to
        // validation (a 422 elsewhere), so a missing field is not a decoding error here.
        Err(e) if e.starts_with("missing field") => Decoded::Unchecked,
        Err(e) => Decoded::Invalid(e),
    }
}

/// Keys present (and non-null) in `input` but gone after the round trip.
fn missing_keys(input: &Value, back: &Value, path: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match (input, back) {
        (Value::Object(i), Value::Object(b)) => {
            for (k, v) in i {
                path.push(Segment::Key(k.clone()));
                match b.get(k) {
                    Some(bv) => missing_keys(v, bv, path, out),
                    None if !v.is_null() => out.push(path.clone()),
                    None => {}
                }
                path.pop();
            }
        }
        (Value::Array(i), Value::Array(b)) => {
            for (n, (iv, bv)) in i.iter().zip(b).enumerate() {
                path.push(Segment::Index(n));
                missing_keys(iv, bv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Remove a field found by [`decode`].
pub fn remove(obj: &mut Value, path: &[Segment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for s in parents {
        cur = match (s, cur) {
            (Segment::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Segment::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    if let (Segment::Key(k), Value::Object(m)) = (last, cur) {
        m.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_unknown_fields() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"any": "thing"}},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "imagee": "nginx"}]}}}});
        let Decoded::Ok { unknown } = decode("apps", "v1", "Deployment", &d) else {
            panic!("decodes")
        };
        let shown: Vec<String> = unknown.iter().map(|p| display(p)).collect();
        assert_eq!(shown, ["spec.template.spec.containers[0].imagee"]);
    }

    #[test]
    fn wrong_types_are_invalid() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}});
        assert!(matches!(
            decode("apps", "v1", "Deployment", &d),
            Decoded::Invalid(_)
        ));
    }
}
