//! The CRD manifests `tiphys install` applies: the three argoproj.io/v1alpha1 kinds with
//! structural schemas generated from the Rust types.

use serde_json::{Value, json};

use crate::application::{ApplicationSpec, ApplicationStatus, Operation};
use crate::applicationset::{ApplicationSetSpec, ApplicationSetStatus};
use crate::project::{AppProjectSpec, AppProjectStatus};
use crate::schema::structural;

struct Names {
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
}

fn crd(
    names: Names,
    properties: Value,
    required: &[&str],
    printer_columns: Value,
    status_subresource: bool,
) -> Value {
    let mut props = json!({
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    });
    if let (Value::Object(p), Value::Object(extra)) = (&mut props, properties) {
        p.extend(extra);
    }
    let mut version = json!({
        "name": "v1alpha1",
        "served": true,
        "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "required": required, "properties": props}},
        "additionalPrinterColumns": printer_columns,
    });
    if status_subresource {
        version["subresources"] = json!({"status": {}});
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.argoproj.io", names.plural),
            "labels": {"app.kubernetes.io/name": format!("{}.argoproj.io", names.plural), "app.kubernetes.io/part-of": "argocd"},
        },
        "spec": {
            "group": "argoproj.io",
            "scope": "Namespaced",
            "names": {
                "kind": names.kind,
                "listKind": format!("{}List", names.kind),
                "plural": names.plural,
                "singular": names.singular,
                "shortNames": names.short_names,
            },
            "versions": [version],
        },
    })
}

/// Application: no status subresource, as in Argo CD (the controller writes status and
/// clears `operation` in one update).
pub fn application() -> Value {
    crd(
        Names {
            kind: "Application",
            plural: "applications",
            singular: "application",
            short_names: &["app", "apps"],
        },
        json!({
            "spec": structural::<ApplicationSpec>(),
            "operation": structural::<Operation>(),
            "status": structural::<ApplicationStatus>(),
        }),
        &["metadata", "spec"],
        json!([
            {"name": "Sync Status", "type": "string", "jsonPath": ".status.sync.status"},
            {"name": "Health Status", "type": "string", "jsonPath": ".status.health.status"},
            {"name": "Revision", "type": "string", "jsonPath": ".status.sync.revision", "priority": 10},
            {"name": "Project", "type": "string", "jsonPath": ".spec.project", "priority": 10},
        ]),
        false,
    )
}

pub fn app_project() -> Value {
    crd(
        Names {
            kind: "AppProject",
            plural: "appprojects",
            singular: "appproject",
            short_names: &["appproj", "appprojs"],
        },
        json!({"spec": structural::<AppProjectSpec>(), "status": structural::<AppProjectStatus>()}),
        &["metadata", "spec"],
        json!([]),
        false,
    )
}

pub fn application_set() -> Value {
    crd(
        Names {
            kind: "ApplicationSet",
            plural: "applicationsets",
            singular: "applicationset",
            short_names: &["appset", "appsets"],
        },
        json!({"spec": structural::<ApplicationSetSpec>(), "status": structural::<ApplicationSetStatus>()}),
        &["metadata", "spec"],
        json!([]),
        true,
    )
}

/// All three, in the order they should be installed.
pub fn all() -> Vec<Value> {
    vec![application(), app_project(), application_set()]
}
