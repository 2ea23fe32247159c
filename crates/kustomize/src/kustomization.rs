//! Reading a kustomization and accumulating its resources: files, directories (nested
//! kustomizations), components, then this level's generators and transformers.

use std::path::{Path, PathBuf};

use serde_json::Value;

use tiphys_patch::openapi::Schema;

use crate::config::TransformerConfig;
use crate::vars::{self, Var};
use crate::yaml::parse_documents;
use crate::{
    KustomizeError, Resource, build_metadata, crds, display, generators, helm, io,
    kustomization_file, patches, plugins, replacements, transformers,
};

/// The fields this engine implements; anything else in a kustomization is refused by name.
const SUPPORTED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "replacements",
    "helmCharts",
    "helmChartInflationGenerator",
    "helmGlobals",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "sortOptions",
    "buildMetadata",
    "configurations",
    "crds",
    "vars",
    "generators",
    "transformers",
    "openapi",
];

/// A parsed kustomization and the directory it lives in.
pub struct Kustomization {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub spec: Value,
    /// kustomize's default `LoadRestrictionsRootOnly`: files it names must lie in or below
    /// its directory.
    pub restricted: bool,
    /// The custom OpenAPI schema in effect for its strategic merge patches (`openapi`).
    pub openapi: Option<&'static Schema>,
    /// When this carries a plugin's configuration (`generators`/`transformers`): the
    /// plugin's `metadata.name`, for build metadata (`file` is then where it is configured).
    pub plugin: Option<String>,
}

impl Kustomization {
    pub fn load(dir: &Path) -> Result<Kustomization, KustomizeError> {
        crate::check_one_kustomization_file(dir)?;
        let file = kustomization_file(dir)
            .ok_or_else(|| KustomizeError::NoKustomization { path: display(dir) })?;
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let parsed = crate::yaml::parse_kustomization(&text).map_err(|e| KustomizeError::Yaml {
            path: display(&file),
            line: e.line,
            message: e.message,
        })?;
        let Some(spec) = parsed else {
            return Err(KustomizeError::Invalid {
                path: display(&file),
                field: "(root)".into(),
                message: "kustomization.yaml is empty".into(),
            });
        };
        let Some(map) = spec.as_object() else {
            return Err(KustomizeError::Invalid {
                path: display(&file),
                field: "(root)".into(),
                message: "expected a mapping".into(),
            });
        };
        // kustomize reads the file through Go's JSON decoding, which matches field names
        // regardless of case (`nameprefix` is `namePrefix`); an exact name wins.
        let mut fields = serde_json::Map::new();
        for (key, value) in map {
            let canonical = if SUPPORTED.contains(&key.as_str()) {
                key.as_str()
            } else {
                match SUPPORTED.iter().find(|f| f.eq_ignore_ascii_case(key)) {
                    Some(field) => field,
                    None => {
                        return Err(KustomizeError::Unsupported {
                            path: display(&file),
                            field: key.clone(),
                        });
                    }
                }
            };
            if canonical == key || !map.contains_key(canonical) {
                fields.insert(canonical.to_string(), value.clone());
            }
        }
        let mut spec = Value::Object(fields);
        crate::typed::check(&mut spec).map_err(|(field, message)| KustomizeError::Invalid {
            path: display(&file),
            field,
            message: format!("invalid Kustomization: {message}"),
        })?;
        if spec["kind"] == "Component"
            && spec["apiVersion"]
                .as_str()
                .is_some_and(|v| v != COMPONENT_API_VERSION)
        {
            return Err(KustomizeError::Invalid {
                path: display(&file),
                field: "apiVersion".into(),
                message: format!("apiVersion for Component should be {COMPONENT_API_VERSION}"),
            });
        }
        if spec["sortOptions"]["order"]
            .as_str()
            .is_some_and(|o| o != "legacy" && o != "fifo")
        {
            return Err(KustomizeError::Invalid {
                path: display(&file),
                field: "sortOptions.order".into(),
                message: "must be legacy or fifo".into(),
            });
        }
        if spec["sortOptions"]["order"] == "fifo"
            && !spec["sortOptions"]["legacySortOptions"].is_null()
        {
            return Err(KustomizeError::Invalid {
                path: display(&file),
                field: "sortOptions.legacySortOptions".into(),
                message: "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'".into(),
            });
        }
        Ok(Kustomization {
            dir: dir.to_path_buf(),
            file,
            spec,
            restricted: true,
            openapi: None,
            plugin: None,
        })
    }

    pub fn path(&self) -> String {
        display(&self.file)
    }

    /// A file this kustomization names (`field` says where), checked against the load
    /// restriction: with it, the file — symlinks resolved — must lie in or below this
    /// kustomization's directory, so a tree cannot pull `/etc/...` or a token from the
    /// renderer's disk into a ConfigMap.
    pub fn local_file(&self, rel: &str, field: &str) -> Result<PathBuf, KustomizeError> {
        let path = self.dir.join(rel);
        if !self.restricted {
            return Ok(path);
        }
        let root = self.dir.canonicalize().map_err(io(&self.dir))?;
        let resolved = path.canonicalize().map_err(io(&path))?;
        if !resolved.starts_with(&root) {
            return Err(KustomizeError::Invalid {
                path: self.path(),
                field: field.into(),
                message: format!(
                    "security; file '{}' is not in or below '{}'",
                    resolved.display(),
                    root.display()
                ),
            });
        }
        Ok(path)
    }

    /// A list of strings, or an error naming the field.
    pub fn strings(&self, field: &str) -> Result<Vec<String>, KustomizeError> {
        match &self.spec[field] {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| KustomizeError::Invalid {
                            path: self.path(),
                            field: field.into(),
                            message: format!("expected a list of strings, found {i}"),
                        })
                })
                .collect(),
            other => Err(KustomizeError::Invalid {
                path: self.path(),
                field: field.into(),
                message: format!("expected a list, found {other}"),
            }),
        }
    }

    /// The same kustomization file with other content (a built-in plugin's configuration
    /// run as the field it stands for).
    pub fn with_spec(&self, spec: Value) -> Kustomization {
        Kustomization {
            dir: self.dir.clone(),
            file: self.file.clone(),
            spec,
            restricted: self.restricted,
            openapi: self.openapi,
            plugin: self.plugin.clone(),
        }
    }

    /// This level running a plugin configured in `file` (named `name`) with `spec`.
    pub fn with_plugin(&self, spec: Value, file: PathBuf, name: Option<String>) -> Kustomization {
        Kustomization {
            file,
            plugin: name,
            ..self.with_spec(spec)
        }
    }

    pub fn is_component(&self) -> bool {
        self.spec["kind"] == "Component"
    }
}

/// What a build carries down the tree: the directories being built (to find cycles) and
/// how to fetch remote bases.
pub struct Context<'a> {
    pub stack: Vec<PathBuf>,
    pub remote: Option<&'a dyn crate::RemoteLoader>,
    /// Load restrictions (`LoadRestrictionsRootOnly`) are on.
    pub restricted: bool,
    /// The custom OpenAPI schema last declared (kustomize keeps one for the whole build, set
    /// as each kustomization declaring one is entered).
    pub openapi: Option<&'static Schema>,
    /// The top kustomization asks for `buildMetadata: [transformerAnnotations]`.
    pub record_transformers: bool,
    /// Changes made to the top kustomization as it is read, as `kustomize edit` would make
    /// them to the file (an Argo CD Application's Kustomize overrides).
    pub edit_top: Option<crate::Edit<'a>>,
}

/// What building a directory yields: its resources, and the transformer configuration its
/// kustomizations added (which the levels above keep using).
#[derive(Default)]
pub struct Accumulated {
    pub resources: Vec<Resource>,
    pub config: TransformerConfig,
    /// `vars` declared here and below.
    pub vars: Vec<Var>,
}

/// Build `dir` into its resources. `stack` holds the directories being built (cycle check).
pub fn accumulate(dir: &Path, ctx: &mut Context<'_>) -> Result<Accumulated, KustomizeError> {
    let mut acc = Accumulated {
        resources: Vec::new(),
        config: TransformerConfig::builtin().clone(),
        vars: Vec::new(),
    };
    build_level(dir, &mut acc, ctx, false)?;
    Ok(acc)
}

/// One kustomization (or component) into `acc`, in kustomize's order: its resources, its
/// configuration, generators, components, transformers and vars. A kustomization starts
/// from an empty `acc`; a component works on its parent's.
fn build_level(
    dir: &Path,
    acc: &mut Accumulated,
    ctx: &mut Context<'_>,
    as_component: bool,
) -> Result<(), KustomizeError> {
    let canonical = dir.canonicalize().map_err(io(dir))?;
    if ctx.stack.contains(&canonical) {
        return Err(KustomizeError::Cycle { path: display(dir) });
    }
    ctx.stack.push(canonical);
    let mut k = Kustomization::load(dir)?;
    if ctx.stack.len() == 1
        && let Some(edit) = ctx.edit_top
    {
        edit(&mut k.spec).map_err(|message| KustomizeError::Invalid {
            path: k.path(),
            field: "(Application overrides)".into(),
            message,
        })?;
    }
    k.restricted = ctx.restricted;
    load_openapi(&k, ctx)?;
    // A Component is built directly when it is the top of the build, as kustomize does.
    let top = ctx.stack.len() == 1;
    if k.is_component() != as_component && !(top && k.is_component()) {
        let message = if as_component {
            "components must have kind: Component"
        } else {
            "a Component can only be used under components"
        };
        return Err(KustomizeError::Invalid {
            path: k.path(),
            field: "kind".into(),
            message: message.into(),
        });
    }
    let mut entries = k.strings("resources")?;
    entries.extend(k.strings("bases")?);
    let mut ids: Ids = acc.resources.iter().map(Resource::id).collect();
    for entry in entries {
        let loaded = load_entry(&k, &entry, ctx)?;
        acc.config.merge(&loaded.config);
        merge_vars(&k, &mut acc.vars, loaded.vars)?;
        add_all(&mut acc.resources, &mut ids, loaded.resources, &k)?;
    }
    extend_config(&k, &mut acc.config)?;
    generators::run(&k, &mut acc.resources)?;
    helm::run(&k, &mut acc.resources)?;
    plugins::generate(&k, &mut acc.resources, ctx)?;
    for component in k.strings("components")? {
        build_level(&k.dir.join(component), acc, ctx, true)?;
    }
    k.openapi = ctx.openapi;
    apply_transformers(&k, acc, ctx)?;
    plugins::transform(&k, &mut acc.resources, ctx)?;
    vars::declare(&k, &mut acc.resources, &mut acc.vars)?;
    ctx.stack.pop();
    Ok(())
}

/// The only apiVersion kustomize accepts for a Component.
const COMPONENT_API_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";

/// The one OpenAPI version kustomize v5.5 builds in.
const BUILTIN_OPENAPI_VERSION: &str = "v1.21.2";

/// `openapi`: a custom schema for strategic merge (`path`, local or a URL); `version` picks
/// among kustomize's built-in schemas, which here are one.
fn load_openapi(k: &Kustomization, ctx: &mut Context<'_>) -> Result<(), KustomizeError> {
    let Some(openapi) = k.spec.get("openapi").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let invalid = |field: &str, message: String| KustomizeError::Invalid {
        path: k.path(),
        field: field.into(),
        message,
    };
    let Some(map) = openapi.as_object() else {
        return Err(invalid("openapi", "expected a mapping".into()));
    };
    if let Some(key) = map.keys().find(|key| *key != "path" && *key != "version") {
        return Err(invalid(
            &format!("openapi.{key}"),
            "not an openapi field".into(),
        ));
    }
    // kustomize's messages: one built-in version, and a custom schema excludes it.
    if let Some(version) = map.get("version").and_then(Value::as_str) {
        if map.contains_key("path") {
            return Err(invalid(
                "openapi",
                "builtin version and custom schema provided, cannot use both".into(),
            ));
        }
        if version != BUILTIN_OPENAPI_VERSION {
            return Err(invalid(
                "openapi.version",
                format!(
                    "the specified OpenAPI version is not built in (kustomize has {BUILTIN_OPENAPI_VERSION})"
                ),
            ));
        }
    }
    let Some(path) = map.get("path").and_then(Value::as_str) else {
        return Ok(());
    };
    let text = match ctx.remote {
        Some(loader) if is_remote(path) => loader
            .fetch_file(path)
            .map_err(|e| invalid("openapi.path", format!("{path}: {e}")))?
            .ok_or_else(|| invalid("openapi.path", format!("{path}: not a file URL")))?,
        _ if is_remote(path) => {
            return Err(KustomizeError::Remote {
                path: k.path(),
                url: path.to_string(),
            });
        }
        _ => {
            let file = k.local_file(path, "openapi.path")?;
            std::fs::read_to_string(&file).map_err(io(&file))?
        }
    };
    // Schemas are large JSON documents, parsed once per process.
    let parse = |text: &str| -> Result<Value, String> {
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(text).map_err(|e| e.to_string());
        }
        parse_documents(text)
            .map(|docs| {
                docs.into_iter()
                    .next()
                    .map(|d| d.value)
                    .unwrap_or(Value::Null)
            })
            .map_err(|e| format!("line {}: {}", e.line, e.message))
    };
    let schema = tiphys_patch::openapi::intern(&text, parse)
        .map_err(|e| invalid("openapi.path", format!("{path}: {e}")))?;
    ctx.openapi = Some(schema);
    Ok(())
}

/// A base's vars join this level's; a name may be declared once in a whole build.
fn merge_vars(k: &Kustomization, vars: &mut Vec<Var>, new: Vec<Var>) -> Result<(), KustomizeError> {
    for var in new {
        if vars.iter().any(|v| v.name == var.name) {
            return Err(KustomizeError::Invalid {
                path: k.path(),
                field: "vars".into(),
                message: format!("var '{}' already encountered", var.name),
            });
        }
        vars.push(var);
    }
    Ok(())
}

/// This kustomization's `configurations` and `crds`, merged into `config`.
fn extend_config(k: &Kustomization, config: &mut TransformerConfig) -> Result<(), KustomizeError> {
    for (field, entries) in [
        ("configurations", k.strings("configurations")?),
        ("crds", k.strings("crds")?),
    ] {
        for entry in entries {
            let path = k.local_file(&entry, field)?;
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let invalid = |message: String| KustomizeError::Invalid {
                path: k.path(),
                field: field.into(),
                message: format!("{entry}: {message}"),
            };
            let doc = parse_documents(&text)
                .map_err(|e| invalid(format!("invalid YAML at line {}: {}", e.line, e.message)))?
                .into_iter()
                .next()
                .map(|d| d.value)
                .unwrap_or(Value::Null);
            let extra = if field == "crds" {
                crds::config_from_definitions(&doc)
            } else {
                TransformerConfig::parse(&doc)
            }
            .map_err(invalid)?;
            config.merge(&extra);
        }
    }
    Ok(())
}

/// This kustomization's transformers, in kustomize's order, with the configuration
/// accumulated so far.
fn apply_transformers(
    k: &Kustomization,
    acc: &mut Accumulated,
    ctx: &Context<'_>,
) -> Result<(), KustomizeError> {
    let (resources, config) = (&mut acc.resources, &acc.config);
    // Steps that may rename are followed by noting the renames, when they are configured.
    let noted = |resources: &mut Vec<Resource>, fields: &[&str]| {
        if fields.iter().any(|f| !k.spec[*f].is_null()) {
            resources.iter_mut().for_each(Resource::note_rename);
        }
    };
    patches::strategic_merge_files(k, resources)?;
    patches::patches(k, resources)?;
    noted(resources, &["patchesStrategicMerge", "patches"]);
    transformers::namespace(k, resources, config);
    if !k.spec["namespace"].is_null() {
        refuse_id_conflicts(k, resources, "namespace")?;
    }
    transformers::prefix_suffix(k, resources, config);
    noted(resources, &["namePrefix", "nameSuffix"]);
    transformers::labels(k, resources, config)?;
    transformers::annotations(k, resources, config);
    patches::json6902(k, resources)?;
    noted(resources, &["patchesJson6902"]);
    transformers::replicas(k, resources, config)?;
    transformers::images(k, resources, config)?;
    replacements::run(k, resources)?;
    noted(resources, &["replacements"]);
    if ctx.record_transformers {
        build_metadata::record_transformers(k, resources);
    }
    Ok(())
}

/// Moving objects into one namespace may make two of them the same object; kustomize
/// refuses that.
fn refuse_id_conflicts(
    k: &Kustomization,
    resources: &[Resource],
    field: &str,
) -> Result<(), KustomizeError> {
    let mut ids = Ids::new();
    for r in resources {
        let id = r.id();
        if ids.contains(&id) {
            return Err(KustomizeError::Invalid {
                path: k.path(),
                field: field.into(),
                message: format!("{field} transformation produces ID conflict: {id}"),
            });
        }
        ids.insert(id);
    }
    Ok(())
}

/// Add resources, refusing an id that is already there.
/// The ids already added at one level (built once per level: a kustomization listing a
/// thousand files must not re-read the ids a thousand times).
type Ids = std::collections::HashSet<String>;

fn add_all(
    resources: &mut Vec<Resource>,
    ids: &mut Ids,
    new: Vec<Resource>,
    k: &Kustomization,
) -> Result<(), KustomizeError> {
    for r in new {
        let id = r.id();
        if !ids.insert(id.clone()) {
            return Err(KustomizeError::DuplicateId { path: k.path(), id });
        }
        resources.push(r);
    }
    Ok(())
}

/// One `resources` entry: a file of manifests, or a directory holding a kustomization.
pub(crate) fn load_entry(
    k: &Kustomization,
    entry: &str,
    ctx: &mut Context<'_>,
) -> Result<Accumulated, KustomizeError> {
    if is_remote(entry) {
        let Some(loader) = ctx.remote else {
            return Err(KustomizeError::Remote {
                path: k.path(),
                url: entry.to_string(),
            });
        };
        let failed = |message: String| KustomizeError::Invalid {
            path: k.path(),
            field: "resources".into(),
            message: format!("{entry}: {message}"),
        };
        // Like kustomize: a URL is tried as a file first; a body that is not manifests (a
        // repository's web page) means it is a repository after all.
        let mut not_manifests = None;
        if let Some(text) = loader.fetch_file(entry).map_err(failed)? {
            let source = crate::Source::Remote(entry.to_string());
            match read_manifests_text(&text, entry, &source) {
                Ok(resources) => {
                    return Ok(Accumulated {
                        resources,
                        ..Accumulated::default()
                    });
                }
                Err(e) => not_manifests = Some(e),
            }
        }
        let dir = match (loader.load(entry), not_manifests) {
            (Ok(dir), _) => dir,
            (Err(_), Some(yaml_error)) => return Err(yaml_error),
            (Err(message), None) => return Err(failed(message)),
        };
        return accumulate(&dir, ctx);
    }
    let path = k.dir.join(entry);
    if path.is_dir() {
        return accumulate(&path, ctx);
    }
    if !path.exists() {
        return Err(KustomizeError::Invalid {
            path: k.path(),
            field: "resources".into(),
            message: format!("{entry}: no such file or directory"),
        });
    }
    let path = k.local_file(entry, "resources")?;
    Ok(Accumulated {
        resources: read_manifests(&path)?,
        ..Accumulated::default()
    })
}

/// The objects in a manifest file (`List` kinds flattened).
pub fn read_manifests(path: &Path) -> Result<Vec<Resource>, KustomizeError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    read_manifests_text(
        &text,
        &display(path),
        &crate::Source::File(path.to_path_buf()),
    )
}

/// The objects in manifest text; `origin` names it in errors.
pub fn read_manifests_text(
    text: &str,
    origin: &str,
    source: &crate::Source,
) -> Result<Vec<Resource>, KustomizeError> {
    let path = origin;
    let docs = parse_documents(text).map_err(|e| KustomizeError::Yaml {
        path: path.to_string(),
        line: e.line,
        message: e.message,
    })?;
    let mut out = Vec::new();
    for doc in docs {
        let value = doc.value;
        if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array()
        {
            for item in value["items"].as_array().cloned().unwrap_or_default() {
                out.push(Resource::new(item, source.clone()));
            }
        } else {
            if !value.is_object() || value["kind"].as_str().is_none() {
                return Err(KustomizeError::Invalid {
                    path: path.to_string(),
                    field: format!("document at line {}", doc.line),
                    message: "missing kind (not a Kubernetes object)".into(),
                });
            }
            out.push(Resource::new(value, source.clone()));
        }
    }
    Ok(out)
}

/// A resource that lives in another repository (`https://host/org/repo//path?ref=v1`,
/// `git@host:org/repo//path`, `github.com/org/repo/path`).
fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
}
