//! Desired manifests from a checked-out tree, with Argo CD's source-type detection:
//! a kustomization file means Kustomize, `Chart.yaml` means Helm, anything else is a
//! directory of YAML and JSON manifests.
//!
//! ```text
//!   repo tree + ApplicationSource ──► detect ──► directory | kustomize | helm
//!                                                   └──► objects (with file:line origins)
//!                                                          └──► checks (shape, duplicates)
//! ```
//!
//! **Invariant:** rendering never talks to a cluster: what it needs to know about one (Helm's
//! `.Capabilities`) is handed in. Helm runs as an external tool on local files only.
#![forbid(unsafe_code)]

pub mod cache;
mod details;
mod directory;
pub mod glob;
mod helm;
mod jsonnet;
mod kustomize;
mod objects;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tiphys_model::application::ApplicationSource;

pub use cache::{CacheKey, RenderCache, generate_paths};
pub use details::{AppDetails, app_details};
pub use objects::{check_objects, parse_texts as parse_manifest_texts};
pub use tiphys_kustomize::yaml;

/// Where an object came from: file (relative to the repository), document index, line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    /// `file:line`, or just the file when no line of it is known (a Helm template).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// What the destination cluster offers, for Helm's `.Capabilities`: its version
/// (`v1.32.0`) and every `group/version` and `group/version/Kind` it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    pub kube_version: String,
    pub api_versions: Vec<String>,
}

/// One desired object and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub object: Value,
    pub origin: Origin,
}

/// How a source is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    Directory,
    Kustomize,
    Helm,
}

impl SourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Directory => "Directory",
            SourceType::Kustomize => "Kustomize",
            SourceType::Helm => "Helm",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}:{line}: invalid YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: invalid JSON at line {line}: {message}")]
    Json {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: document {} is not a Kubernetes object: {message}", origin.document)]
    NotAnObject { origin: Origin, message: String },
    #[error("{first}: and {second}: both define {id}")]
    Duplicate {
        id: String,
        first: Origin,
        second: Origin,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("path {path:?} escapes the repository")]
    Escapes { path: String },
    #[error("{path}: no such directory in the repository")]
    MissingPath { path: String },
    #[error("{tool} is not installed (not found on PATH); {hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
    },
    #[error("{tool} failed on {path}: {message}")]
    ToolFailed {
        tool: String,
        path: String,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// What to render and where.
pub struct Request<'a> {
    /// The checked-out repository (or any tree standing in for it).
    pub repo_root: &'a Path,
    pub source: &'a ApplicationSource,
    /// The Application's name: Helm's default release name.
    pub app_name: &'a str,
    /// The destination namespace: Helm's `--namespace` unless the source overrides it.
    pub namespace: &'a str,
    /// How Kustomize fetches remote bases; None refuses them.
    pub remote: Option<&'a dyn tiphys_kustomize::RemoteLoader>,
    /// Kustomize build options (argocd-cm `kustomize.buildOptions`).
    pub kustomize_options: tiphys_kustomize::BuildOptions,
    /// The destination cluster's capabilities, when known (Helm's `.Capabilities`).
    pub capabilities: Option<&'a Capabilities>,
    /// The trees of the Application's `ref` sources, for `$ref/…` Helm value files.
    pub value_refs: &'a ValueRefs,
}

/// `ref` name → that source's tree.
pub type ValueRefs = std::collections::BTreeMap<String, PathBuf>;

/// The rendered manifests of a source.
#[derive(Debug)]
pub struct Rendered {
    pub source_type: SourceType,
    pub manifests: Vec<Manifest>,
}

/// Resolve `rel` inside `root`, refusing anything (`..`, absolute paths, symlinks) that lands
/// outside the repository.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, RenderError> {
    let root = root.canonicalize().map_err(|source| RenderError::Io {
        path: root.display().to_string(),
        source,
    })?;
    let joined = root.join(rel.trim_start_matches("./"));
    let resolved = joined
        .canonicalize()
        .map_err(|_| RenderError::MissingPath {
            path: rel.to_string(),
        })?;
    if !resolved.starts_with(&root) {
        return Err(RenderError::Escapes {
            path: rel.to_string(),
        });
    }
    Ok(resolved)
}

/// Argo CD's detection: explicit options first, then the files in the path.
pub fn detect(dir: &Path, source: &ApplicationSource) -> SourceType {
    if source.helm.is_some() || !source.chart.is_empty() {
        return SourceType::Helm;
    }
    if source.kustomize.is_some() {
        return SourceType::Kustomize;
    }
    if source.directory.is_some() {
        return SourceType::Directory;
    }
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| dir.join(f).is_file())
    {
        return SourceType::Kustomize;
    }
    if dir.join("Chart.yaml").is_file() {
        return SourceType::Helm;
    }
    SourceType::Directory
}

/// The repository root with links resolved, as paths inside it are compared with.
fn canonical_root(req: &Request<'_>) -> Result<PathBuf, RenderError> {
    req.repo_root
        .canonicalize()
        .map_err(|source| RenderError::Io {
            path: req.repo_root.display().to_string(),
            source,
        })
}

/// The directory a source's `path` names (`.` when empty), and that path; it must exist and
/// stay inside the repository.
fn source_dir<'a>(req: &'a Request<'_>) -> Result<(PathBuf, &'a str), RenderError> {
    let path = if req.source.path.is_empty() {
        "."
    } else {
        req.source.path.as_str()
    };
    let dir = resolve_inside(req.repo_root, path)?;
    if !dir.is_dir() {
        return Err(RenderError::MissingPath {
            path: path.to_string(),
        });
    }
    Ok((dir, path))
}

pub fn render(req: &Request<'_>) -> Result<Rendered, RenderError> {
    if req.source.plugin.is_some() {
        return Err(RenderError::Unsupported(
            "config management plugins are not supported".into(),
        ));
    }
    let (dir, path) = source_dir(req)?;
    let root = canonical_root(req)?;
    let source_type = detect(&dir, req.source);
    let manifests = match source_type {
        SourceType::Directory => {
            let env = jsonnet::BuildEnv {
                app_name: req.app_name,
                namespace: req.namespace,
                repo_url: &req.source.repo_url,
                path,
                target_revision: &req.source.target_revision,
            };
            directory::render(&root, &dir, req.source.directory.as_deref(), &env)?
        }
        SourceType::Kustomize => {
            kustomize::render(&root, &dir, req.source.kustomize.as_deref(), req)?
        }
        SourceType::Helm => helm::render(&root, &dir, req)?,
    };
    check_objects(&manifests)?;
    Ok(Rendered {
        source_type,
        manifests,
    })
}

/// Render manifests as a YAML stream (`---` between documents).
pub fn to_yaml_stream(manifests: &[Manifest]) -> String {
    let mut out = String::new();
    for m in manifests {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&m.object).unwrap_or_default());
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Path of `file` relative to `root`, with forward slashes.
fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}
