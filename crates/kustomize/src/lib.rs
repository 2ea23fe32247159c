//! A native Kustomize engine: `tiphys kustomize build DIR`, printing what `kubectl kustomize`
//! (kustomize v5.5) prints for the features it supports, and refusing the rest by name.
//!
//! ```text
//!   kustomization ──► resources (files, dirs, nested kustomizations, components)
//!                 ──► generators (configMap/secret, content hash suffix)
//!                 ──► transformers (patches, namespace, prefix/suffix, labels, annotations,
//!                                   images, replicas)
//!                 ──► name references (renamed ConfigMaps, Secrets, ... followed)
//!                 ──► legacy order ──► emit (go-yaml style)
//! ```
//!
//! **Invariant:** no I/O beyond reading the kustomization tree.
#![forbid(unsafe_code)]

mod build_metadata;
mod config;
mod crds;
pub mod emit;
mod generators;
pub mod helm;
mod kustomization;
mod names;
mod order;
mod patches;
mod plugins;
mod replacements;
mod select;
mod shared_values;
mod transformers;
mod typed;
mod vars;
pub mod yaml;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use kustomization::Kustomization;

#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    #[error("{path}: no kustomization.yaml, kustomization.yml or Kustomization in this directory")]
    NoKustomization { path: String },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML at line {line}: {message}")]
    Yaml {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: field {field} is not supported by tiphys kustomize yet")]
    Unsupported { path: String, field: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error("cycle: {path} includes itself")]
    Cycle { path: String },
    #[error("{path}: remote resource {url} is not supported yet")]
    Remote { path: String, url: String },
    #[error("{path}: may not add resource with an already registered id: {id}")]
    DuplicateId { path: String, id: String },
    #[error("{path}: patch: {message}")]
    Patch { path: String, message: String },
}

/// Where a resource came from, for `buildMetadata: [originAnnotations]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A manifest file (absolute path).
    File(PathBuf),
    /// A remote manifest file (its URL).
    Remote(String),
    /// Made by a generator configured in a kustomization file or a plugin configuration file
    /// (absolute path); `name` is the plugin configuration's.
    Generated {
        kustomization: PathBuf,
        generator: &'static str,
        name: Option<String>,
    },
}

/// A transformer that ran over a resource, for `buildMetadata: [transformerAnnotations]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformation {
    /// Where it is configured (absolute path).
    pub file: PathBuf,
    pub kind: String,
    /// A plugin configuration's `metadata.name`.
    pub name: Option<String>,
}

/// A resource and the name it had before transformations (for name references).
#[derive(Debug, Clone)]
pub struct Resource {
    pub object: Value,
    pub origin_name: String,
    /// The namespace it had when read (references in other namespaces follow a move).
    pub origin_namespace: String,
    /// Generated ConfigMaps and Secrets get a content-hash suffix at the end.
    pub hash_suffix: bool,
    pub source: Source,
    /// The transformers that ran over this resource, for
    /// `buildMetadata: [transformerAnnotations]`: `(kustomization file, transformer kind)`.
    pub transformations: Vec<Transformation>,
    /// Every prefix and suffix given to its name, in order (`prefix:a-`, `suffix:-top`): when a
    /// reference could mean several renamed objects, the one named alike wins, as in
    /// kustomize (a base reused under two prefixes).
    pub affixes: Vec<String>,
    /// Every name it had before its current one, oldest first (kustomize matches replicas,
    /// patches and name references against any of them).
    pub previous_names: Vec<String>,
    /// Every name and namespace (effective: `default` for none) it had before a rename or a
    /// namespace change, as pairs — kustomize's previous ids, which a patch naming the
    /// object must match as a pair.
    previous_ids: Vec<(String, String)>,
    /// The name when renames were last noted.
    noted_name: String,
    /// The `vars` that read their value from this resource.
    pub bound_vars: Vec<String>,
    /// Which of its label and annotation fields share one value (see `shared_values`).
    pub(crate) shared_values: shared_values::SharedValues,
}

/// Annotation values are strings; kustomize reads a YAML number or boolean there as its text
/// (`replicas: 3` becomes `"3"`), and so does this.
pub(crate) fn stringify_annotations(object: &mut Value) {
    let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for value in annotations.values_mut() {
        match value {
            Value::Bool(b) => *value = Value::String(b.to_string()),
            Value::Number(n) => *value = Value::String(n.to_string()),
            _ => {}
        }
    }
}

/// `config.kubernetes.io/local-config`: an object the build reads but does not output. Any
/// value but `"false"` marks it, as in kustomize.
const LOCAL_CONFIG: &str = "config.kubernetes.io/local-config";

fn is_local_config(object: &Value) -> bool {
    object["metadata"]["annotations"]
        .get(LOCAL_CONFIG)
        .is_some_and(|v| v != "false")
}

impl Resource {
    fn new(mut object: Value, source: Source) -> Resource {
        stringify_annotations(&mut object);
        let origin_name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let origin_namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Resource {
            object,
            noted_name: origin_name.clone(),
            origin_namespace,
            previous_names: Vec::new(),
            previous_ids: Vec::new(),
            bound_vars: Vec::new(),
            shared_values: Default::default(),
            origin_name,
            hash_suffix: false,
            source,
            transformations: Vec::new(),
            affixes: Vec::new(),
        }
    }

    /// Is or was this resource called `name`?
    pub fn has_had_name(&self, name: &str) -> bool {
        self.name() == name || self.previous_names.iter().any(|n| n == name)
    }

    /// Remember the old name if the resource was renamed since the last call.
    pub fn note_rename(&mut self) {
        if self.name() != self.noted_name {
            let current = self.name().to_string();
            let old = std::mem::replace(&mut self.noted_name, current);
            let namespace = names::effective(self.namespace()).to_string();
            self.remember_id(old.clone(), namespace);
            self.previous_names.push(old);
        }
    }

    /// Remember its name and namespace now, before the namespace transformer moves it.
    pub fn note_namespace_change(&mut self) {
        let name = self.name().to_string();
        let namespace = names::effective(self.namespace()).to_string();
        self.remember_id(name, namespace);
    }

    fn remember_id(&mut self, name: String, namespace: String) {
        if !self
            .previous_ids
            .iter()
            .any(|(n, ns)| *n == name && *ns == namespace)
        {
            self.previous_ids.push((name, namespace));
        }
    }

    /// Is or was it `name` in `namespace` (`default` for none), both at once?
    pub fn has_had_id(&self, name: &str, namespace: &str) -> bool {
        let namespace = names::effective(namespace);
        (self.name() == name && names::effective(self.namespace()) == namespace)
            || self
                .previous_ids
                .iter()
                .any(|(n, ns)| n == name && ns == namespace)
    }

    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    }

    pub fn group(&self) -> &str {
        let av = self.object["apiVersion"].as_str().unwrap_or_default();
        av.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    pub fn version(&self) -> &str {
        let av = self.object["apiVersion"].as_str().unwrap_or_default();
        av.rsplit_once('/').map(|(_, v)| v).unwrap_or(av)
    }

    /// kustomize's resource id: `Kind.version.group/name.namespace`.
    pub fn id(&self) -> String {
        let ns = if self.namespace().is_empty() {
            "[noNs]"
        } else {
            self.namespace()
        };
        let group = if self.group().is_empty() {
            "[noGrp]"
        } else {
            self.group()
        };
        format!(
            "{}.{}.{}/{}.{}",
            self.kind(),
            self.version(),
            group,
            self.name(),
            ns
        )
    }
}

/// Build a kustomization directory into resources (in output order).
pub fn build(dir: &Path) -> Result<Vec<Value>, KustomizeError> {
    build_with(dir, None)
}

/// Fetches remote bases for a build: returns the local directory a remote resource URL
/// stands for. Implemented by the caller (the git source layer), so this crate does no I/O
/// beyond reading trees.
pub trait RemoteLoader {
    /// The directory a remote base (a git repository and path) stands for.
    fn load(&self, url: &str) -> Result<PathBuf, String>;

    /// The text of a remote file (`https://host/path/app.yaml`), or `None` when `url` is
    /// not a file URL (it is then loaded as a base).
    fn fetch_file(&self, url: &str) -> Result<Option<String>, String> {
        let _ = url;
        Ok(None)
    }
}

/// How a build may read files.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// kustomize's `--load-restrictor`: `true` (LoadRestrictionsRootOnly, the default) keeps
    /// every file a kustomization names in or below its directory; `false` is
    /// LoadRestrictionsNone.
    pub load_restrictions: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            load_restrictions: true,
        }
    }
}

/// Build with remote bases fetched through `remote`.
pub fn build_with(
    dir: &Path,
    remote: Option<&dyn RemoteLoader>,
) -> Result<Vec<Value>, KustomizeError> {
    build_with_options(dir, remote, BuildOptions::default())
}

/// Build with remote bases fetched through `remote`, and the given options.
pub fn build_with_options(
    dir: &Path,
    remote: Option<&dyn RemoteLoader>,
    options: BuildOptions,
) -> Result<Vec<Value>, KustomizeError> {
    build_edited(dir, remote, options, None)
}

/// A change made to a kustomization's content as it is read; an error message when it cannot
/// be made.
pub type Edit<'a> = &'a dyn Fn(&mut Value) -> Result<(), String>;

/// Build with the top kustomization changed by `edit` as it is read — what `kustomize edit`
/// would have written to the file, without writing to the tree.
pub fn build_edited(
    dir: &Path,
    remote: Option<&dyn RemoteLoader>,
    options: BuildOptions,
    edit: Option<Edit<'_>>,
) -> Result<Vec<Value>, KustomizeError> {
    let mut top = Kustomization::load(dir)?;
    if let Some(edit) = edit {
        edit(&mut top.spec).map_err(|message| KustomizeError::Invalid {
            path: top.path(),
            field: "(Application overrides)".into(),
            message,
        })?;
    }
    let mut ctx = kustomization::Context {
        stack: Vec::new(),
        remote,
        restricted: options.load_restrictions,
        openapi: None,
        record_transformers: build_metadata::wants(&top, "transformerAnnotations"),
        edit_top: edit,
    };
    let kustomization::Accumulated {
        mut resources,
        config,
        vars,
    } = kustomization::accumulate(dir, &mut ctx)?;
    generators::apply_hash_suffixes(&mut resources);
    resources.iter_mut().for_each(Resource::note_rename);
    names::fix_references(&mut resources, &config)?;
    vars::resolve(&vars, &mut resources, &config.var_reference)?;
    build_metadata::apply(&top, dir, &mut resources)?;
    let mut objects: Vec<Value> = resources
        .into_iter()
        .map(|r| r.object)
        .filter(|o| !is_local_config(o))
        .collect();
    // The top kustomization's sortOptions decide the output order.
    let sort = top.spec["sortOptions"].clone();
    if sort["order"] != "fifo" {
        order::legacy_sort(&mut objects, &sort["legacySortOptions"]);
    }
    Ok(objects)
}

/// `kubectl kustomize DIR` output.
pub fn build_yaml(dir: &Path) -> Result<String, KustomizeError> {
    Ok(emit::stream(&build(dir)?))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KustomizeError + '_ {
    move |source| KustomizeError::Io {
        path: display(path),
        source,
    }
}

/// The kustomization file in `dir`, if any (the first of the names kustomize accepts; see
/// [`check_one_kustomization_file`] for a directory with several).
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// kustomize refuses a directory with more than one kustomization file.
pub fn check_one_kustomization_file(dir: &Path) -> Result<(), KustomizeError> {
    let found = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .filter(|n| dir.join(n).is_file())
        .count();
    if found > 1 {
        return Err(KustomizeError::Invalid {
            path: display(dir),
            field: "(directory)".into(),
            message: format!("Found multiple kustomization files under: {}", display(dir)),
        });
    }
    Ok(())
}
