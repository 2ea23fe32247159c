//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>` and the per
//! group-version APIResourceLists, plus aggregated discovery (`apidiscovery.k8s.io/v2`).

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.13",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.23.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn all_groups(registry: &Registry) -> Vec<(String, Vec<String>)> {
    let mut groups = registry.groups();
    groups.extend(extra_groups());
    groups
}

pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = all_groups(registry)
        .iter()
        .map(|(g, v)| group_doc(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (g, v) = all_groups(registry).into_iter().find(|(g, _)| g == name)?;
    let mut doc = group_doc(&g, &v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut entries = vec![main];
    if t.status_subresource {
        entries.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
            "kind": t.kind, "verbs": ["get", "patch", "update"]}));
    }
    if t.scale.is_some() {
        entries.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    if t.plural == "namespaces" && t.group.is_empty() {
        entries.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
    }
    entries
}

/// The review kinds `kubectl auth can-i` posts to.
fn authorization_resources() -> Vec<Value> {
    ["selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"]
        .iter()
        .map(|r| {
            let kind = match *r {
                "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
                "selfsubjectrulesreviews" => "SelfSubjectRulesReview",
                _ => "SubjectAccessReview",
            };
            json!({"name": r, "singularName": kind.to_lowercase(), "namespaced": false, "kind": kind, "verbs": ["create"]})
        })
        .collect()
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = if group == "authorization.k8s.io" && version == "v1" {
        authorization_resources()
    } else if types.is_empty() {
        return None;
    } else {
        types.iter().flat_map(|t| resource_entries(t)).collect()
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// Groups served besides the resource table (review endpoints only).
pub fn extra_groups() -> Vec<(String, Vec<String>)> {
    vec![("authorization.k8s.io".to_string(), vec!["v1".to_string()])]
}

/// `apidiscovery.k8s.io/v2` APIGroupDiscoveryList, for `/api` (core) or `/apis`.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        all_groups(registry)
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let types: Vec<_> = registry.all().into_iter().filter(|t| &t.group == group && &t.version == v).collect();
                    let resources: Vec<Value> = if group == "authorization.k8s.io" {
                        vec![json!({"resource": "selfsubjectaccessreviews", "responseKind": {"group": "", "version": "", "kind": "SelfSubjectAccessReview"},
                            "scope": "Cluster", "singularResource": "selfsubjectaccessreview", "verbs": ["create"]})]
                    } else {
                        types.iter().map(|t| aggregated_resource(t)).collect()
                    };
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let mut r = json!({
        "resource": t.plural,
        "responseKind": {"group": "", "version": "", "kind": t.kind},
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    let mut subs = Vec::new();
    if t.status_subresource {
        subs.push(json!({"subresource": "status", "responseKind": {"group": "", "version": "", "kind": t.kind}, "verbs": ["get", "patch", "update"]}));
    }
    if t.scale.is_some() {
        subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}
