//! Patching Kubernetes objects: strategic merge patch and the merge metadata of the built-in
//! types. Shared by the local cluster (PATCH and server-side apply) and the Kustomize engine.
#![forbid(unsafe_code)]

pub mod openapi;
pub mod schema;
pub mod strategic;

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    #[error("{0} must be a JSON object")]
    NotAnObject(&'static str),
    #[error("unknown patch directive $patch: {0:?}")]
    UnknownDirective(String),
    #[error("map: {0} does not contain declared merge key")]
    MissingMergeKey(String),
}
