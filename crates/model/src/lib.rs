//! Argo CD's declarative API in Rust: `argoproj.io/v1alpha1` Application, AppProject and
//! ApplicationSet, serialised with Argo CD's JSON field names, plus the CRDs that serve them.
//!
//! ```text
//!   Application ── spec (source(s), destination, project, syncPolicy, ignoreDifferences)
//!               ├─ operation (sync request)
//!               └─ status (sync, health, resources, history, operationState, conditions)
//!   AppProject  ── spec (sourceRepos, destinations, resource white/blacklists, roles, windows)
//!   ApplicationSet ── spec (generators, template, syncPolicy)
//! ```
//!
//! No I/O: parsing, validation and CRD generation only.
#![forbid(unsafe_code)]

pub mod application;
pub mod applicationset;
pub mod crd;
pub mod glob;
pub mod pause;
pub mod project;
pub mod schema;
pub mod selector;
pub mod validate;

pub use application::Application;
pub use applicationset::ApplicationSet;
pub use project::AppProject;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const GROUP: &str = "argoproj.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Why a manifest is not a valid object of one of our kinds.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{source_name}: invalid YAML: {message}")]
    Yaml {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: not a valid {kind}: {message}")]
    Shape {
        source_name: String,
        kind: &'static str,
        message: String,
    },
    #[error("{source_name}: expected kind {expected}, found {found:?}")]
    WrongKind {
        source_name: String,
        expected: &'static str,
        found: String,
    },
}

macro_rules! argo_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl $ty {
            /// Parse one manifest (YAML or JSON); `source_name` names it in errors.
            pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, ModelError> {
                let value: serde_json::Value =
                    serde_saphyr::from_str(text).map_err(|e| ModelError::Yaml {
                        source_name: source_name.to_string(),
                        message: e.to_string(),
                    })?;
                let found = value["kind"].as_str().unwrap_or_default().to_string();
                if found != $kind {
                    return Err(ModelError::WrongKind {
                        source_name: source_name.to_string(),
                        expected: $kind,
                        found,
                    });
                }
                serde_json::from_value(value).map_err(|e| ModelError::Shape {
                    source_name: source_name.to_string(),
                    kind: $kind,
                    message: e.to_string(),
                })
            }

            /// What creating `submitted` with `upsert` writes over this existing object (Argo
            /// CD's create): its spec, labels, annotations and finalizers; status, operation
            /// and version stay. `None` when all four are already equal — creating it again
            /// changes nothing.
            pub fn upserted(&self, submitted: &Self) -> Option<Self> {
                let (mine, theirs) = (&self.metadata, &submitted.metadata);
                if self.spec == submitted.spec
                    && mine.labels == theirs.labels
                    && mine.annotations == theirs.annotations
                    && mine.finalizers == theirs.finalizers
                {
                    return None;
                }
                let mut updated = self.clone();
                updated.spec = submitted.spec.clone();
                updated.metadata.labels = theirs.labels.clone();
                updated.metadata.annotations = theirs.annotations.clone();
                updated.metadata.finalizers = theirs.finalizers.clone();
                Some(updated)
            }
        }
    };
}

argo_resource!(Application, "Application", "applications");
argo_resource!(AppProject, "AppProject", "appprojects");
argo_resource!(ApplicationSet, "ApplicationSet", "applicationsets");

/// The `default` AppProject `tiphys install` creates: anything from anywhere to anywhere, as
/// in Argo CD.
pub fn default_project(namespace: &str) -> AppProject {
    AppProject {
        api_version: API_VERSION.into(),
        kind: "AppProject".into(),
        metadata: ObjectMeta {
            name: Some("default".into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: project::AppProjectSpec {
            source_repos: vec!["*".into()],
            destinations: vec![application::ApplicationDestination {
                server: "*".into(),
                namespace: "*".into(),
                name: String::new(),
            }],
            cluster_resource_whitelist: vec![project::GroupKind {
                group: "*".into(),
                kind: "*".into(),
            }],
            ..Default::default()
        },
        status: None,
    }
}
