//! The resource types the cluster serves: the built-in table and those added by CRDs.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Where a `/scale` subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    /// Plural name as it appears in URLs.
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    pub status_subresource: bool,
    pub scale: Option<ScalePaths>,
    /// Built-in types get strategic merge patch and typed defaulting; custom resources do not.
    pub builtin: bool,
    /// Whether `metadata.generation` is maintained.
    pub tracks_generation: bool,
    /// The structural schema of a custom resource version (`openAPIV3Schema`).
    pub schema: Option<Arc<Value>>,
    /// Printer columns of a custom resource version.
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage identity shared by all versions of a resource.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }
}

/// A resource independent of version: the unit of storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names,
        categories: &[],
        status: false,
        scale: false,
        generation: false,
    }
}

impl Builtin {
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
}

/// The built-in types, as a Kubernetes 1.32 API server lists them in discovery.
const BUILTINS: &[Builtin] = &[
    b("", "v1", "namespaces", "Namespace", false, &["ns"]).status(),
    b("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
    b("", "v1", "secrets", "Secret", true, &[]),
    b("", "v1", "services", "Service", true, &["svc"])
        .status()
        .all(),
    b("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
    b("", "v1", "pods", "Pod", true, &["po"]).status().all(),
    b("", "v1", "podtemplates", "PodTemplate", true, &[]),
    b("", "v1", "endpoints", "Endpoints", true, &["ep"]),
    b("", "v1", "events", "Event", true, &["ev"]),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
    )
    .status(),
    b(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["pv"],
    )
    .status(),
    b("", "v1", "limitranges", "LimitRange", true, &["limits"]),
    b(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        &["quota"],
    )
    .status(),
    b(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        &["rc"],
    )
    .status()
    .scale()
    .all()
    .generation(),
    b("", "v1", "nodes", "Node", false, &["no"]).status(),
    b("apps", "v1", "deployments", "Deployment", true, &["deploy"])
        .status()
        .scale()
        .all()
        .generation(),
    b("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"])
        .status()
        .scale()
        .all()
        .generation(),
    b("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"])
        .status()
        .all()
        .generation(),
    b("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"])
        .status()
        .scale()
        .all()
        .generation(),
    b(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
    ),
    b("batch", "v1", "jobs", "Job", true, &[])
        .status()
        .all()
        .generation(),
    b("batch", "v1", "cronjobs", "CronJob", true, &["cj"])
        .status()
        .all()
        .generation(),
    b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
    )
    .status()
    .generation(),
    b(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
    )
    .generation(),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
    )
    .generation(),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
    )
    .status()
    .generation(),
    b("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
    )
    .status()
    .generation(),
    b(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    )
    .status()
    .all(),
    b(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    )
    .status()
    .all(),
    b(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
    ),
    b("events.k8s.io", "v1", "events", "Event", true, &["ev"]),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
    ),
    b(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
        &["pc"],
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
    )
    .generation(),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
    )
    .generation(),
    b(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        "APIService",
        false,
        &[],
    )
    .status(),
];

fn builtin_type(def: &Builtin) -> ResourceType {
    let scale = def.scale.then(|| ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: Some(".status.selector".into()),
    });
    ResourceType {
        group: def.group.into(),
        version: def.version.into(),
        plural: def.plural.into(),
        singular: def.kind.to_lowercase(),
        kind: def.kind.into(),
        list_kind: format!("{}List", def.kind),
        namespaced: def.namespaced,
        short_names: def.short_names.iter().map(|s| s.to_string()).collect(),
        categories: def.categories.iter().map(|s| s.to_string()).collect(),
        verbs: if def.plural == "namespaces" {
            ALL_VERBS
                .iter()
                .copied()
                .filter(|v| *v != "deletecollection")
                .collect()
        } else {
            ALL_VERBS.to_vec()
        },
        status_subresource: def.status,
        scale,
        builtin: true,
        tracks_generation: def.generation,
        schema: None,
        printer_columns: Vec::new(),
    }
}

/// Group ordering as the real server lists it in `/apis` (by priority, then name).
fn group_rank(group: &str) -> usize {
    const ORDER: &[&str] = &[
        "apiregistration.k8s.io",
        "apps",
        "events.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "flowcontrol.apiserver.k8s.io",
    ];
    ORDER
        .iter()
        .position(|g| *g == group)
        .unwrap_or(ORDER.len())
}

/// All served types; CRDs add and remove entries at run time.
#[derive(Debug)]
pub struct Registry {
    builtin: Vec<Arc<ResourceType>>,
    /// CRD name → its served versions.
    custom: RwLock<BTreeMap<String, Vec<Arc<ResourceType>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            builtin: BUILTINS.iter().map(|d| Arc::new(builtin_type(d))).collect(),
            custom: RwLock::default(),
        }
    }
}

impl Registry {
    /// Every served type, built-ins first.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        let mut all = self.builtin.clone();
        if let Ok(custom) = self.custom.read() {
            all.extend(custom.values().flatten().cloned());
        }
        all
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Any version of a resource (for storage-level work such as garbage collection).
    pub fn any_version(&self, gr: &GroupResource) -> Option<Arc<ResourceType>> {
        self.all()
            .into_iter()
            .find(|t| t.group == gr.group && t.plural == gr.resource)
    }

    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .into_iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// Group-versions in discovery order: `(group, versions)` with the preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.all() {
            if t.group.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups.sort_by_key(|(g, _)| (group_rank(g), g.clone()));
        groups
    }

    pub fn set_custom(&self, crd_name: &str, versions: Vec<Arc<ResourceType>>) {
        if let Ok(mut custom) = self.custom.write() {
            if versions.is_empty() {
                custom.remove(crd_name);
            } else {
                custom.insert(crd_name.to_string(), versions);
            }
        }
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (level, major, n.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_ga_beta_alpha() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn registry_finds_builtins() {
        let r = Registry::default();
        let d = r.lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert!(d.scale.is_some());
        assert!(
            r.groups()
                .iter()
                .any(|(g, v)| g == "autoscaling" && v[0] == "v2")
        );
    }
}
