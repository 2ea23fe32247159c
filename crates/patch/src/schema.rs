//! Merge metadata of the Kubernetes built-in types.
//!
//! Kubernetes describes how lists and maps merge with struct tags on its Go types
//! (`patchStrategy`, `patchMergeKey`, `listType`, `listMapKeys`, `mapType`). Strategic merge
//! patch, server-side apply and Kustomize all need the same facts, so they live here once.
//! Only fields whose merge behaviour differs from the default appear, plus the structs that
//! lead to them; everything else merges as a plain object, and lists are atomic.

/// One struct type: the fields with non-default merge behaviour.
#[derive(Debug)]
pub struct TypeDef {
    pub fields: &'static [Field],
}

/// A field of a struct and how it merges.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
}

/// The merge behaviour of one field.
#[derive(Debug, Clone, Copy)]
pub enum FieldKind {
    /// A nested struct with its own metadata.
    Struct(&'static TypeDef),
    /// A struct replaced as a whole by server-side apply (`x-kubernetes-map-type: atomic`,
    /// `structType: atomic`), e.g. a `LabelSelector` or a Service's `selector`.
    AtomicMap,
    /// A string map whose keys are owned one by one (labels, annotations, data).
    GranularMap,
    /// A list of scalars merged as a set (`listType: set`, `patchStrategy: merge`).
    Set,
    /// A list of objects merged by key.
    Keyed(&'static ListKeys),
    /// A struct whose unmentioned keys are cleared on patch (`patchStrategy: retainKeys`).
    RetainKeys(&'static TypeDef),
}

/// Keys of a keyed list: strategic merge patch uses one merge key, server-side apply a
/// tuple of list-map keys (usually the same field).
#[derive(Debug)]
pub struct ListKeys {
    pub patch_merge_key: &'static str,
    pub map_keys: &'static [&'static str],
    /// Metadata of the list's items.
    pub item: &'static TypeDef,
    /// Defaults the server fills in key fields before comparing (a port's protocol).
    pub key_defaults: &'static [(&'static str, &'static str)],
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<FieldKind> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.kind)
    }
}

impl FieldKind {
    /// The struct metadata for the value of this field, when it is an object.
    pub fn object_type(self) -> &'static TypeDef {
        match self {
            FieldKind::Struct(t) | FieldKind::RetainKeys(t) => t,
            _ => &EMPTY,
        }
    }
}

const fn f(name: &'static str, kind: FieldKind) -> Field {
    Field { name, kind }
}

/// A struct with default merge behaviour throughout.
pub static EMPTY: TypeDef = TypeDef { fields: &[] };

static OWNER_REFERENCES: ListKeys = ListKeys {
    patch_merge_key: "uid",
    map_keys: &["uid"],
    item: &EMPTY,
    key_defaults: &[],
};

pub static OBJECT_META: TypeDef = TypeDef {
    fields: &[
        f("labels", FieldKind::GranularMap),
        f("annotations", FieldKind::GranularMap),
        f("finalizers", FieldKind::Set),
        f("ownerReferences", FieldKind::Keyed(&OWNER_REFERENCES)),
    ],
};

static LABEL_SELECTOR_FIELD: FieldKind = FieldKind::AtomicMap;

static RESOURCE_REQUIREMENTS: TypeDef = TypeDef {
    fields: &[
        f("limits", FieldKind::GranularMap),
        f("requests", FieldKind::GranularMap),
    ],
};

static CONTAINER_PORTS: ListKeys = ListKeys {
    patch_merge_key: "containerPort",
    map_keys: &["containerPort", "protocol"],
    item: &EMPTY,
    key_defaults: &[("protocol", "TCP")],
};
static ENV: ListKeys = ListKeys {
    patch_merge_key: "name",
    map_keys: &["name"],
    item: &EMPTY,
    key_defaults: &[],
};
static VOLUME_MOUNTS: ListKeys = ListKeys {
    patch_merge_key: "mountPath",
    map_keys: &["mountPath"],
    item: &EMPTY,
    key_defaults: &[],
};
static VOLUME_DEVICES: ListKeys = ListKeys {
    patch_merge_key: "devicePath",
    map_keys: &["devicePath"],
    item: &EMPTY,
    key_defaults: &[],
};

pub static CONTAINER: TypeDef = TypeDef {
    fields: &[
        f("ports", FieldKind::Keyed(&CONTAINER_PORTS)),
        f("env", FieldKind::Keyed(&ENV)),
        f("volumeMounts", FieldKind::Keyed(&VOLUME_MOUNTS)),
        f("volumeDevices", FieldKind::Keyed(&VOLUME_DEVICES)),
        f("resources", FieldKind::Struct(&RESOURCE_REQUIREMENTS)),
    ],
};

static CONTAINERS: ListKeys = ListKeys {
    patch_merge_key: "name",
    map_keys: &["name"],
    item: &CONTAINER,
    key_defaults: &[],
};
static VOLUMES: ListKeys = ListKeys {
    patch_merge_key: "name",
    map_keys: &["name"],
    item: &EMPTY,
    key_defaults: &[],
};
static NAMED: ListKeys = ListKeys {
    patch_merge_key: "name",
    map_keys: &["name"],
    item: &EMPTY,
    key_defaults: &[],
};
static HOST_ALIASES: ListKeys = ListKeys {
    patch_merge_key: "ip",
    map_keys: &["ip"],
    item: &EMPTY,
    key_defaults: &[],
};
static TOPOLOGY_SPREAD: ListKeys = ListKeys {
    patch_merge_key: "topologyKey",
    map_keys: &["topologyKey", "whenUnsatisfiable"],
    item: &EMPTY,
    key_defaults: &[],
};

pub static POD_SPEC: TypeDef = TypeDef {
    fields: &[
        f("containers", FieldKind::Keyed(&CONTAINERS)),
        f("initContainers", FieldKind::Keyed(&CONTAINERS)),
        f("ephemeralContainers", FieldKind::Keyed(&CONTAINERS)),
        f("volumes", FieldKind::Keyed(&VOLUMES)),
        f("imagePullSecrets", FieldKind::Keyed(&NAMED)),
        f("schedulingGates", FieldKind::Keyed(&NAMED)),
        f("resourceClaims", FieldKind::Keyed(&NAMED)),
        f("hostAliases", FieldKind::Keyed(&HOST_ALIASES)),
        f(
            "topologySpreadConstraints",
            FieldKind::Keyed(&TOPOLOGY_SPREAD),
        ),
        f("nodeSelector", FieldKind::AtomicMap),
        f("overhead", FieldKind::GranularMap),
    ],
};

pub static POD_TEMPLATE_SPEC: TypeDef = TypeDef {
    fields: &[
        f("metadata", FieldKind::Struct(&OBJECT_META)),
        f("spec", FieldKind::Struct(&POD_SPEC)),
    ],
};

static CONDITIONS: ListKeys = ListKeys {
    patch_merge_key: "type",
    map_keys: &["type"],
    item: &EMPTY,
    key_defaults: &[],
};

/// Status of any kind whose `conditions` are keyed by `type`.
static CONDITION_STATUS: TypeDef = TypeDef {
    fields: &[f("conditions", FieldKind::Keyed(&CONDITIONS))],
};

static DEPLOYMENT_STRATEGY: TypeDef = TypeDef { fields: &[] };

static WORKLOAD_SPEC: TypeDef = TypeDef {
    fields: &[
        f("selector", LABEL_SELECTOR_FIELD),
        f("template", FieldKind::Struct(&POD_TEMPLATE_SPEC)),
        f("strategy", FieldKind::RetainKeys(&DEPLOYMENT_STRATEGY)),
    ],
};

static JOB_TEMPLATE_SPEC: TypeDef = TypeDef {
    fields: &[
        f("metadata", FieldKind::Struct(&OBJECT_META)),
        f("spec", FieldKind::Struct(&WORKLOAD_SPEC)),
    ],
};

static CRON_JOB_SPEC: TypeDef = TypeDef {
    fields: &[f("jobTemplate", FieldKind::Struct(&JOB_TEMPLATE_SPEC))],
};

static SERVICE_PORTS: ListKeys = ListKeys {
    patch_merge_key: "port",
    map_keys: &["port", "protocol"],
    item: &EMPTY,
    key_defaults: &[("protocol", "TCP")],
};

static SERVICE_SPEC: TypeDef = TypeDef {
    fields: &[
        f("ports", FieldKind::Keyed(&SERVICE_PORTS)),
        f("selector", FieldKind::AtomicMap),
    ],
};

static PVC_SPEC: TypeDef = TypeDef {
    fields: &[
        f("selector", LABEL_SELECTOR_FIELD),
        f("resources", FieldKind::Struct(&RESOURCE_REQUIREMENTS)),
    ],
};

static STATEFUL_SET_SPEC: TypeDef = TypeDef {
    fields: &[
        f("selector", LABEL_SELECTOR_FIELD),
        f("template", FieldKind::Struct(&POD_TEMPLATE_SPEC)),
    ],
};

static PDB_SPEC: TypeDef = TypeDef {
    fields: &[f("selector", LABEL_SELECTOR_FIELD)],
};

macro_rules! root_type {
    ($name:ident, $spec:expr, $status:expr) => {
        static $name: TypeDef = TypeDef {
            fields: &[
                f("metadata", FieldKind::Struct(&OBJECT_META)),
                f("spec", FieldKind::Struct($spec)),
                f("status", FieldKind::Struct($status)),
            ],
        };
    };
}

root_type!(POD, &POD_SPEC, &CONDITION_STATUS);
root_type!(WORKLOAD, &WORKLOAD_SPEC, &CONDITION_STATUS);
root_type!(STATEFUL_SET, &STATEFUL_SET_SPEC, &CONDITION_STATUS);
root_type!(CRON_JOB, &CRON_JOB_SPEC, &EMPTY);
root_type!(SERVICE, &SERVICE_SPEC, &CONDITION_STATUS);
root_type!(PVC, &PVC_SPEC, &CONDITION_STATUS);
root_type!(PDB, &PDB_SPEC, &CONDITION_STATUS);
root_type!(NAMESPACE, &EMPTY, &CONDITION_STATUS);
root_type!(GENERIC, &EMPTY, &EMPTY);

static POD_TEMPLATE: TypeDef = TypeDef {
    fields: &[
        f("metadata", FieldKind::Struct(&OBJECT_META)),
        f("template", FieldKind::Struct(&POD_TEMPLATE_SPEC)),
    ],
};

/// Top-level metadata for a built-in kind; custom resources and unknown kinds get the
/// generic shape (only `metadata` is known).
pub fn for_kind(group: &str, kind: &str) -> &'static TypeDef {
    match (group, kind) {
        ("", "Pod") => &POD,
        ("", "PodTemplate") => &POD_TEMPLATE,
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") | ("batch", "Job") => &WORKLOAD,
        ("", "ReplicationController") => &WORKLOAD,
        ("apps", "StatefulSet") => &STATEFUL_SET,
        ("batch", "CronJob") => &CRON_JOB,
        ("", "Service") => &SERVICE,
        ("", "PersistentVolumeClaim") => &PVC,
        ("policy", "PodDisruptionBudget") => &PDB,
        ("", "Namespace") => &NAMESPACE,
        _ => &GENERIC,
    }
}

/// Whether strategic merge patch applies to the kind (built-in types only; custom
/// resources answer 415 like a real API server).
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}
