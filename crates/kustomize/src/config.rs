//! Transformer configuration: *where* each built-in transformer writes (field specs), and which
//! fields refer to which kinds by name. kustomize's built-in defaults live here as data; a
//! kustomization extends them with `configurations` files and `crds` (OpenAPI definitions),
//! and the extensions of a base reach every kustomization above it.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::Value;

use crate::Resource;

/// A selector for resources by group, version and kind; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gvk {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
}

impl Gvk {
    pub fn kind(kind: &str) -> Gvk {
        Gvk {
            kind: Some(kind.to_string()),
            ..Gvk::default()
        }
    }

    fn with_group(mut self, group: &str) -> Gvk {
        self.group = Some(group.to_string());
        self
    }

    fn with_version(mut self, version: &str) -> Gvk {
        self.version = Some(version.to_string());
        self
    }

    pub fn selects(&self, group: &str, version: &str, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.kind.as_deref().is_none_or(|k| k == kind)
    }

    pub fn selects_resource(&self, r: &Resource) -> bool {
        self.selects(r.group(), r.version(), r.kind())
    }
}

/// One place a transformer writes: a path (`spec/template/metadata/labels`, `[]` or an
/// implicit walk over every element of a list) within the resources `gvk` selects.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: Vec<String>,
    /// Create the missing maps on the way (and the field itself).
    pub create: bool,
}

impl FieldSpec {
    pub fn new(gvk: Gvk, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk,
            path: split_path(path),
            create,
        }
    }
}

/// Split a field-spec path at `/`; `\/` is a slash inside a key (annotation names).
pub fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push('/')
                }
            }
            '/' => parts.push(String::new()),
            c => {
                if let Some(p) = parts.last_mut() {
                    p.push(c)
                }
            }
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Fields of `referrers` that hold the name of an object `target` selects.
#[derive(Debug, Clone, PartialEq)]
pub struct NameReference {
    pub target: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// The transformer configuration of one build level. Field specs are kustomize's defaults
/// plus whatever `configurations` and `crds` added here or below.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    /// Extra fields for the `labels` field's pairs (a `configurations` file's `labels:`;
    /// `commonLabels` does not use them, as in kustomize).
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameReference>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    /// Fields where `$(VAR)` is expanded.
    pub var_reference: Vec<FieldSpec>,
}

impl TransformerConfig {
    /// kustomize's built-in configuration (built once).
    pub fn builtin() -> &'static TransformerConfig {
        static BUILTIN: OnceLock<TransformerConfig> = OnceLock::new();
        BUILTIN.get_or_init(builtin)
    }

    /// Add `other`'s field specs that are not here yet; name references to the same target
    /// share one entry.
    pub fn merge(&mut self, other: &TransformerConfig) {
        fn add(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) {
            for fs in from {
                if !into.contains(fs) {
                    into.push(fs.clone());
                }
            }
        }
        add(&mut self.name_prefix, &other.name_prefix);
        add(&mut self.name_suffix, &other.name_suffix);
        add(&mut self.namespace, &other.namespace);
        add(&mut self.common_labels, &other.common_labels);
        add(&mut self.template_labels, &other.template_labels);
        add(&mut self.labels, &other.labels);
        add(&mut self.common_annotations, &other.common_annotations);
        add(&mut self.images, &other.images);
        add(&mut self.replicas, &other.replicas);
        add(&mut self.var_reference, &other.var_reference);
        for reference in &other.name_reference {
            match self
                .name_reference
                .iter_mut()
                .find(|r| r.target == reference.target)
            {
                Some(existing) => add(&mut existing.referrers, &reference.referrers),
                None => self.name_reference.push(reference.clone()),
            }
        }
    }

    /// Read a `configurations` file (kustomize's TransformerConfig format).
    pub fn parse(value: &Value) -> Result<TransformerConfig, String> {
        let Some(map) = value.as_object() else {
            return Err("expected a mapping".into());
        };
        let mut config = TransformerConfig::default();
        for (key, entries) in map {
            let list = match key.as_str() {
                "namePrefix" => &mut config.name_prefix,
                "nameSuffix" => &mut config.name_suffix,
                "namespace" => &mut config.namespace,
                "commonLabels" => &mut config.common_labels,
                "templateLabels" => &mut config.template_labels,
                "labels" => &mut config.labels,
                "commonAnnotations" => &mut config.common_annotations,
                "images" => &mut config.images,
                "replicas" => &mut config.replicas,
                "nameReference" => {
                    for (i, entry) in array(entries, key)?.iter().enumerate() {
                        let at = format!("nameReference[{i}]");
                        let referrers = array(&entry["fieldSpecs"], &format!("{at}.fieldSpecs"))?
                            .iter()
                            .enumerate()
                            .map(|(j, fs)| parse_field_spec(fs, &format!("{at}.fieldSpecs[{j}]")))
                            .collect::<Result<Vec<_>, _>>()?;
                        config.merge(&TransformerConfig {
                            name_reference: vec![NameReference {
                                target: parse_gvk(entry),
                                referrers,
                            }],
                            ..TransformerConfig::default()
                        });
                    }
                    continue;
                }
                "varReference" => &mut config.var_reference,
                other => return Err(format!("{other}: not a transformer configuration field")),
            };
            for (i, fs) in array(entries, key)?.iter().enumerate() {
                let spec = parse_field_spec(fs, &format!("{key}[{i}]"))?;
                if !list.contains(&spec) {
                    list.push(spec);
                }
            }
        }
        Ok(config)
    }
}

fn array<'a>(v: &'a Value, at: &str) -> Result<&'a [Value], String> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(&[]),
        other => Err(format!("{at}: expected a list, found {other}")),
    }
}

fn parse_gvk(v: &Value) -> Gvk {
    let field = |f: &str| v[f].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Gvk {
        group: field("group"),
        version: field("version"),
        kind: field("kind"),
    }
}

pub fn parse_field_spec(v: &Value, at: &str) -> Result<FieldSpec, String> {
    let Some(path) = v["path"].as_str() else {
        return Err(format!("{at}.path: required"));
    };
    Ok(FieldSpec {
        gvk: parse_gvk(v),
        path: split_path(path),
        create: v["create"].as_bool().unwrap_or(false),
    })
}

/// Visit every value `path` reaches in `value`, creating missing maps when `create` (the
/// last field is created as null for the visitor to fill). A list on the way is walked
/// element by element, as kustomize does (`containers/env/...`, `volumeClaimTemplates[]`).
pub fn visit(value: &mut Value, path: &[String], create: bool, f: &mut dyn FnMut(&mut Value)) {
    visit_at(value, path, create, &mut String::new(), &mut |_, v| f(v));
}

/// [`visit`], also telling the visitor the JSON pointer of each value it reaches (`at` is
/// where `value` is, and is left as it was).
pub fn visit_at(
    value: &mut Value,
    path: &[String],
    create: bool,
    at: &mut String,
    f: &mut dyn FnMut(&str, &mut Value),
) {
    let len = at.len();
    if let Value::Array(items) = value {
        for (i, item) in items.iter_mut().enumerate() {
            let _ = write!(at, "/{i}");
            visit_at(item, path, create, at, f);
            at.truncate(len);
        }
        return;
    }
    let Some((first, rest)) = path.split_first() else {
        f(at, value);
        return;
    };
    let key = first.strip_suffix("[]").unwrap_or(first);
    let Value::Object(map) = value else { return };
    if !map.contains_key(key) {
        // kustomize creates maps, never lists, on the way.
        if !create || key.len() != first.len() {
            return;
        }
        let new = if rest.is_empty() {
            Value::Null
        } else {
            Value::Object(Default::default())
        };
        map.insert(key.to_string(), new);
    }
    if let Some(next) = map.get_mut(key) {
        if next.is_null() && create && !rest.is_empty() {
            *next = Value::Object(Default::default());
        }
        at.push('/');
        if key.contains(['~', '/']) {
            at.push_str(&key.replace('~', "~0").replace('/', "~1"));
        } else {
            at.push_str(key);
        }
        visit_at(next, rest, create, at, f);
        at.truncate(len);
    }
}

/// Visit, for every field spec selecting `r`, the values its path reaches.
pub fn visit_specs(r: &mut Resource, specs: &[FieldSpec], f: &mut dyn FnMut(&mut Value)) {
    let (group, version, kind) = (
        r.group().to_string(),
        r.version().to_string(),
        r.kind().to_string(),
    );
    for spec in specs {
        if spec.gvk.selects(&group, &version, &kind) {
            visit(&mut r.object, &spec.path, spec.create, f);
        }
    }
}

/// kustomize's built-in field specs, written as the rules they follow.
fn builtin() -> TransformerConfig {
    let all = Gvk::default;
    let fs = FieldSpec::new;
    let apps = |kind: &str| Gvk::kind(kind).with_group("apps");
    let batch = |kind: &str| Gvk::kind(kind).with_group("batch");
    let core = |kind: &str| Gvk::kind(kind).with_version("v1");

    // Labels on objects and on the pod (and claim) templates inside them.
    let mut template_labels = vec![fs(all(), "metadata/labels", true)];
    let mut template_annotations = vec![fs(all(), "metadata/annotations", true)];
    for gvk in [
        core("ReplicationController"),
        Gvk::kind("Deployment"),
        Gvk::kind("ReplicaSet"),
        Gvk::kind("DaemonSet"),
        apps("StatefulSet"),
        batch("Job"),
    ] {
        template_labels.push(fs(gvk.clone(), "spec/template/metadata/labels", true));
        // Annotations select StatefulSets of any group.
        let gvk = if gvk.kind.as_deref() == Some("StatefulSet") {
            Gvk::kind("StatefulSet")
        } else {
            gvk
        };
        template_annotations.push(fs(gvk, "spec/template/metadata/annotations", true));
    }
    template_labels.push(fs(
        apps("StatefulSet"),
        "spec/volumeClaimTemplates[]/metadata/labels",
        true,
    ));
    for (what, list) in [
        ("labels", &mut template_labels),
        ("annotations", &mut template_annotations),
    ] {
        list.push(fs(
            batch("CronJob"),
            &format!("spec/jobTemplate/metadata/{what}"),
            true,
        ));
        list.push(fs(
            batch("CronJob"),
            &format!("spec/jobTemplate/spec/template/metadata/{what}"),
            true,
        ));
    }

    // commonLabels also go into selectors; created only where a selector is required.
    let mut common_labels = vec![
        fs(core("Service"), "spec/selector", true),
        fs(core("ReplicationController"), "spec/selector", true),
        fs(Gvk::kind("Deployment"), "spec/selector/matchLabels", true),
    ];
    let affinity_selectors = [
        "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
        "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
        "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
    ];
    common_labels.extend(
        affinity_selectors
            .iter()
            .map(|p| fs(apps("Deployment"), p, false)),
    );
    common_labels.extend([
        fs(Gvk::kind("ReplicaSet"), "spec/selector/matchLabels", true),
        fs(Gvk::kind("DaemonSet"), "spec/selector/matchLabels", true),
        fs(apps("StatefulSet"), "spec/selector/matchLabels", true),
        fs(
            apps("StatefulSet"),
            "spec/volumeClaimTemplates[]/metadata/labels",
            true,
        ),
    ]);
    common_labels.extend(
        affinity_selectors
            .iter()
            .map(|p| fs(apps("StatefulSet"), p, false)),
    );
    let policy = Gvk::kind("PodDisruptionBudget").with_group("policy");
    let netpol = Gvk::kind("NetworkPolicy").with_group("networking.k8s.io");
    common_labels.extend([
        fs(batch("Job"), "spec/selector/matchLabels", false),
        fs(
            batch("CronJob"),
            "spec/jobTemplate/spec/selector/matchLabels",
            false,
        ),
        fs(policy, "spec/selector/matchLabels", false),
        fs(netpol.clone(), "spec/podSelector/matchLabels", false),
        fs(
            netpol.clone(),
            "spec/ingress/from/podSelector/matchLabels",
            false,
        ),
        fs(netpol, "spec/egress/to/podSelector/matchLabels", false),
    ]);
    for spec in &template_labels {
        if !common_labels.contains(spec) {
            common_labels.push(spec.clone());
        }
    }

    let replicas = [
        "Deployment",
        "ReplicationController",
        "ReplicaSet",
        "StatefulSet",
    ]
    .iter()
    .map(|k| fs(Gvk::kind(k), "spec/replicas", true))
    .collect();

    TransformerConfig {
        name_prefix: vec![fs(all(), "metadata/name", false)],
        name_suffix: vec![fs(all(), "metadata/name", false)],
        namespace: vec![
            fs(all(), "metadata/namespace", true),
            fs(Gvk::kind("RoleBinding"), "subjects", false),
            fs(Gvk::kind("ClusterRoleBinding"), "subjects", false),
            fs(
                Gvk::kind("APIService").with_group("apiregistration.k8s.io"),
                "spec/service/namespace",
                true,
            ),
            fs(
                Gvk::kind("CustomResourceDefinition").with_group("apiextensions.k8s.io"),
                "spec/conversion/webhook/clientConfig/service/namespace",
                false,
            ),
        ],
        // Only what `configurations` add: the `labels` field's defaults are chosen per entry.
        labels: Vec::new(),
        common_labels,
        template_labels,
        common_annotations: template_annotations,
        name_reference: builtin_name_references(),
        // Containers anywhere are rewritten by the images transformer itself; kustomize
        // v5.5 lists no other place (image volumes are left alone).
        images: Vec::new(),
        replicas,
        var_reference: builtin_var_references(),
    }
}

/// Where `$(VAR)` is expanded: container commands, arguments, env values and mount paths in
/// pod specs, Ingress hosts and TLS secrets, Service ports, and labels and annotations
/// everywhere.
fn builtin_var_references() -> Vec<FieldSpec> {
    let mut specs = Vec::new();
    for (kind, prefix) in [
        ("CronJob", "spec/jobTemplate/spec/template/spec"),
        ("DaemonSet", "spec/template/spec"),
        ("Deployment", "spec/template/spec"),
        ("Job", "spec/template/spec"),
        ("Pod", "spec"),
        ("ReplicaSet", "spec/template/spec"),
        ("StatefulSet", "spec/template/spec"),
    ] {
        for containers in ["containers", "initContainers"] {
            for field in ["args", "command", "env/value", "volumeMounts/mountPath"] {
                specs.push(FieldSpec::new(
                    Gvk::kind(kind),
                    &format!("{prefix}/{containers}/{field}"),
                    false,
                ));
            }
        }
    }
    for (kind, path) in [
        ("Ingress", "spec/rules/host"),
        ("Ingress", "spec/tls/hosts"),
        ("Ingress", "spec/tls/secretName"),
        ("Service", "spec/ports/port"),
        ("Service", "spec/ports/targetPort"),
    ] {
        specs.push(FieldSpec::new(Gvk::kind(kind), path, false));
    }
    specs.push(FieldSpec::new(Gvk::default(), "metadata/labels", false));
    specs.push(FieldSpec::new(
        Gvk::default(),
        "metadata/annotations",
        false,
    ));
    specs
}

/// Which fields name which kinds, as kustomize ships them.
fn builtin_name_references() -> Vec<NameReference> {
    let fs = |gvk: Gvk, path: &str| FieldSpec::new(gvk, path, false);
    // Where a pod spec sits in each kind that holds one.
    const POD: (&str, &str) = ("Pod", "spec");
    const POD_TEMPLATE: (&str, &str) = ("PodTemplate", "template/spec");
    const DEPLOYMENT: (&str, &str) = ("Deployment", "spec/template/spec");
    const REPLICA_SET: (&str, &str) = ("ReplicaSet", "spec/template/spec");
    const DAEMON_SET: (&str, &str) = ("DaemonSet", "spec/template/spec");
    const STATEFUL_SET: (&str, &str) = ("StatefulSet", "spec/template/spec");
    const JOB: (&str, &str) = ("Job", "spec/template/spec");
    const CRON_JOB: (&str, &str) = ("CronJob", "spec/jobTemplate/spec/template/spec");
    const RC: (&str, &str) = ("ReplicationController", "spec/template/spec");
    // ConfigMaps and Secrets are followed into every pod holder but ReplicationControllers;
    // ServiceAccounts, claims and priority classes into every one but ReplicaSets and
    // PodTemplates.
    let env_holders = [
        POD,
        POD_TEMPLATE,
        DEPLOYMENT,
        REPLICA_SET,
        DAEMON_SET,
        STATEFUL_SET,
        JOB,
        CRON_JOB,
    ];
    let account_holders = [POD, STATEFUL_SET, DEPLOYMENT, RC, CRON_JOB, JOB, DAEMON_SET];
    let in_pods = |holders: &[(&str, &str)], pod_paths: &[&str]| -> Vec<FieldSpec> {
        let mut out = Vec::new();
        for (kind, prefix) in holders {
            let gvk = if *kind == "Pod" {
                Gvk::kind(kind).with_version("v1")
            } else {
                Gvk::kind(kind)
            };
            for p in pod_paths {
                out.push(fs(gvk.clone(), &format!("{prefix}/{p}")));
            }
        }
        out
    };
    let rbac = |kind: &str| Gvk::kind(kind).with_group("rbac.authorization.k8s.io");
    let target = |kind: &str, version: &str| Gvk::kind(kind).with_version(version);

    let mut config_map = in_pods(
        &env_holders,
        &[
            "volumes/configMap/name",
            "containers/env/valueFrom/configMapKeyRef/name",
            "initContainers/env/valueFrom/configMapKeyRef/name",
            "containers/envFrom/configMapRef/name",
            "initContainers/envFrom/configMapRef/name",
            "volumes/projected/sources/configMap/name",
        ],
    );
    config_map.extend([
        fs(Gvk::kind("Node"), "spec/configSource/configMap"),
        fs(Gvk::kind("Role"), "rules/resourceNames"),
        fs(Gvk::kind("ClusterRole"), "rules/resourceNames"),
        fs(
            Gvk::kind("Ingress"),
            "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
        ),
    ]);

    let mut secret = in_pods(
        &env_holders,
        &[
            "volumes/secret/secretName",
            "containers/env/valueFrom/secretKeyRef/name",
            "initContainers/env/valueFrom/secretKeyRef/name",
            "containers/envFrom/secretRef/name",
            "initContainers/envFrom/secretRef/name",
            "imagePullSecrets/name",
            "volumes/projected/sources/secret/name",
        ],
    );
    secret.extend([
        fs(Gvk::kind("Ingress"), "spec/tls/secretName"),
        fs(
            Gvk::kind("Ingress"),
            "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
        ),
        fs(
            Gvk::kind("Ingress"),
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
        ),
        fs(
            Gvk::kind("Ingress"),
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
        ),
        fs(Gvk::kind("ServiceAccount"), "imagePullSecrets/name"),
        fs(Gvk::kind("StorageClass"), "parameters/secretName"),
        fs(Gvk::kind("StorageClass"), "parameters/adminSecretName"),
        fs(Gvk::kind("StorageClass"), "parameters/userSecretName"),
        fs(Gvk::kind("StorageClass"), "parameters/secretRef"),
        fs(Gvk::kind("Role"), "rules/resourceNames"),
        fs(Gvk::kind("ClusterRole"), "rules/resourceNames"),
        fs(
            Gvk::kind("Service")
                .with_group("serving.knative.dev")
                .with_version("v1"),
            "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
        ),
        fs(Gvk::kind("PersistentVolume"), "spec/azureFile/secretName"),
    ]);

    let mut service_account = vec![
        fs(rbac("RoleBinding"), "subjects"),
        fs(rbac("ClusterRoleBinding"), "subjects"),
    ];
    service_account.extend(in_pods(&account_holders, &["serviceAccountName"]));
    // The bare "Pod" of this list is not pinned to v1 in kustomize's table.
    for spec in &mut service_account {
        if spec.gvk.kind.as_deref() == Some("Pod") {
            spec.gvk.version = None;
        }
    }
    let unpinned = |mut specs: Vec<FieldSpec>| {
        for spec in &mut specs {
            spec.gvk.version = None;
        }
        specs
    };

    let scale_target = |kind: &str| NameReference {
        target: Gvk::kind(kind),
        referrers: vec![fs(
            Gvk::kind("HorizontalPodAutoscaler"),
            "spec/scaleTargetRef/name",
        )],
    };
    let webhook_service = |kind: &str| {
        fs(
            Gvk::kind(kind).with_group("admissionregistration.k8s.io"),
            "webhooks/clientConfig/service",
        )
    };

    vec![
        scale_target("Deployment"),
        scale_target("ReplicationController"),
        scale_target("ReplicaSet"),
        scale_target("StatefulSet"),
        NameReference {
            target: target("ConfigMap", "v1"),
            referrers: config_map,
        },
        NameReference {
            target: target("Secret", "v1"),
            referrers: secret,
        },
        NameReference {
            target: target("Service", "v1"),
            referrers: vec![
                fs(apps_kind("StatefulSet"), "spec/serviceName"),
                fs(
                    Gvk::kind("Ingress"),
                    "spec/rules/http/paths/backend/serviceName",
                ),
                fs(Gvk::kind("Ingress"), "spec/backend/serviceName"),
                fs(
                    Gvk::kind("Ingress"),
                    "spec/rules/http/paths/backend/service/name",
                ),
                fs(Gvk::kind("Ingress"), "spec/defaultBackend/service/name"),
                fs(
                    Gvk::kind("APIService").with_group("apiregistration.k8s.io"),
                    "spec/service/name",
                ),
                webhook_service("ValidatingWebhookConfiguration"),
                webhook_service("MutatingWebhookConfiguration"),
                // Newer kustomize releases add HTTPRoute backendRefs; v5.5 does not follow them.
            ],
        },
        NameReference {
            target: rbac("Role"),
            referrers: vec![fs(rbac("RoleBinding"), "roleRef/name")],
        },
        NameReference {
            target: rbac("ClusterRole"),
            referrers: vec![
                fs(rbac("RoleBinding"), "roleRef/name"),
                fs(rbac("ClusterRoleBinding"), "roleRef/name"),
            ],
        },
        NameReference {
            target: target("ServiceAccount", "v1"),
            referrers: service_account,
        },
        NameReference {
            target: target("PersistentVolumeClaim", "v1"),
            referrers: unpinned(in_pods(
                &account_holders,
                &["volumes/persistentVolumeClaim/claimName"],
            )),
        },
        NameReference {
            target: target("PersistentVolume", "v1"),
            referrers: vec![
                fs(Gvk::kind("PersistentVolumeClaim"), "spec/volumeName"),
                fs(Gvk::kind("ClusterRole"), "rules/resourceNames"),
            ],
        },
        NameReference {
            target: target("StorageClass", "v1").with_group("storage.k8s.io"),
            referrers: vec![
                fs(Gvk::kind("PersistentVolume"), "spec/storageClassName"),
                fs(Gvk::kind("PersistentVolumeClaim"), "spec/storageClassName"),
                fs(
                    Gvk::kind("StatefulSet"),
                    "spec/volumeClaimTemplates/spec/storageClassName",
                ),
            ],
        },
        NameReference {
            target: target("PriorityClass", "v1").with_group("scheduling.k8s.io"),
            referrers: unpinned(in_pods(&account_holders, &["priorityClassName"])),
        },
        NameReference {
            target: Gvk::kind("ValidatingAdmissionPolicy")
                .with_group("admissionregistration.k8s.io"),
            referrers: vec![fs(
                Gvk::kind("ValidatingAdmissionPolicyBinding"),
                "spec/policyName",
            )],
        },
        // kustomize's table also lists IngressClass, under the group "networking.k8s.io/v1",
        // which no object has: renamed IngressClasses are not followed, so not listed here.
    ]
}

fn apps_kind(kind: &str) -> Gvk {
    Gvk::kind(kind).with_group("apps")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_at_unescaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret"),
            vec![
                "metadata",
                "annotations",
                "nginx.ingress.kubernetes.io/auth-secret"
            ]
        );
    }

    #[test]
    fn visit_walks_lists_and_creates_maps() {
        let mut v = json!({"spec": {"containers": [{"env": [{"name": "a"}, {"name": "b"}]}]}});
        let mut seen = Vec::new();
        visit(
            &mut v,
            &split_path("spec/containers/env/name"),
            false,
            &mut |x| seen.push(x.clone()),
        );
        assert_eq!(seen, vec![json!("a"), json!("b")]);
        let mut v = json!({});
        visit(&mut v, &split_path("spec/selector"), true, &mut |x| {
            *x = json!({"app": "x"})
        });
        assert_eq!(v, json!({"spec": {"selector": {"app": "x"}}}));
        let mut v = json!({});
        visit(&mut v, &split_path("spec/list[]/x"), true, &mut |x| {
            *x = json!(1)
        });
        assert_eq!(v, json!({"spec": {}}));
    }

    #[test]
    fn configurations_parse_and_merge_without_duplicates() {
        let file = json!({
            "nameReference": [{"kind": "Bee", "version": "v1beta1", "fieldSpecs": [
                {"path": "spec/beeRef/name", "kind": "MyKind"}]}],
            "commonLabels": [{"path": "spec/selectors", "create": true, "kind": "MyKind"}],
        });
        let extra = TransformerConfig::parse(&file).unwrap();
        let mut config = TransformerConfig::builtin().clone();
        let before = config.common_labels.len();
        config.merge(&extra);
        config.merge(&extra);
        assert_eq!(config.common_labels.len(), before + 1);
        assert!(
            config
                .name_reference
                .iter()
                .any(|r| r.target.kind.as_deref() == Some("Bee"))
        );
        assert!(TransformerConfig::parse(&json!({"vars": []})).is_err());
    }
}
