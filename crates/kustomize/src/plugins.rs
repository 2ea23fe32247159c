//! `generators` and `transformers`: kustomize's built-in plugins configured as objects
//! (`apiVersion: builtin`, `kind: LabelTransformer`, ...), inline, in files or in
//! kustomization directories. Each runs through the same code as the matching kustomization
//! field, with the field specs its configuration lists instead of the defaults. Exec, Go and
//! KRM-function plugins are refused by name.

use serde_json::{Map, Value, json};

use crate::config::{FieldSpec, TransformerConfig, parse_field_spec};
use crate::kustomization::{Context, Kustomization, load_entry, read_manifests_text};
use crate::{KustomizeError, Resource, generators, helm, patches, replacements, transformers};

/// Run this level's `generators` (after the built-in ones).
pub fn generate(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    ctx: &mut Context<'_>,
) -> Result<(), KustomizeError> {
    for (at, file, config) in configs(k, "generators", ctx)? {
        let kind = plugin(k, &at, &config)?;
        if kind == "IAMPolicyGenerator" {
            resources.push(iam_service_account(k, &at, file, &config)?);
            continue;
        }
        let entry = generator_entry(&config);
        let spec = match kind {
            "ConfigMapGenerator" => json!({ "configMapGenerator": [entry] }),
            "SecretGenerator" => json!({ "secretGenerator": [entry] }),
            "HelmChartInflationGenerator" => json!({ "helmCharts": [entry] }),
            other => return Err(unsupported(k, &at, &format!("built-in plugin {other}"))),
        };
        let level = k.with_plugin(spec, file, plugin_name(&config));
        generators::run(&level, resources)?;
        helm::run(&level, resources)?;
    }
    Ok(())
}

/// Run this level's `transformers` (after the built-in ones).
pub fn transform(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    ctx: &mut Context<'_>,
) -> Result<(), KustomizeError> {
    for (at, file, config) in configs(k, "transformers", ctx)? {
        let kind = plugin(k, &at, &config)?;
        let specs = field_specs(k, &at, &config)?;
        let only = |set: fn(&mut TransformerConfig) -> &mut Vec<FieldSpec>| {
            let mut c = TransformerConfig::default();
            *set(&mut c) = specs.clone();
            c
        };
        match kind {
            "LabelTransformer" => {
                let level = k.with_spec(json!({ "commonLabels": config["labels"] }));
                transformers::labels(&level, resources, &only(|c| &mut c.common_labels))?;
            }
            "AnnotationsTransformer" => {
                let level = k.with_spec(json!({ "commonAnnotations": config["annotations"] }));
                transformers::annotations(&level, resources, &only(|c| &mut c.common_annotations));
            }
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let level = k.with_spec(json!({
                    "namePrefix": config["prefix"],
                    "nameSuffix": config["suffix"],
                }));
                let c = TransformerConfig {
                    name_prefix: specs.clone(),
                    name_suffix: specs,
                    ..TransformerConfig::default()
                };
                transformers::prefix_suffix(&level, resources, &c);
                resources.iter_mut().for_each(Resource::note_rename);
            }
            "NamespaceTransformer" => {
                let subjects = match config["setRoleBindingSubjects"].as_str() {
                    None | Some("" | "defaultOnly") => transformers::Subjects::DefaultOnly,
                    Some("allServiceAccounts") => transformers::Subjects::AllServiceAccounts,
                    Some("none") => transformers::Subjects::None,
                    Some(other) => {
                        return Err(KustomizeError::Invalid {
                            path: k.path(),
                            field: format!("{at}.setRoleBindingSubjects"),
                            message: format!(
                                "{other:?}: must be defaultOnly, allServiceAccounts or none"
                            ),
                        });
                    }
                };
                let options = transformers::NamespaceOptions {
                    unset_only: config["unsetOnly"] == true,
                    subjects,
                };
                let level = k.with_spec(json!({ "namespace": config["metadata"]["namespace"] }));
                let specs = only(|c| &mut c.namespace);
                transformers::namespace_with(&level, resources, &specs, options);
            }
            "ImageTagTransformer" => {
                let level = k.with_spec(json!({ "images": [config["imageTag"]] }));
                transformers::images(&level, resources, &only(|c| &mut c.images))?;
            }
            "ReplicaCountTransformer" => {
                let level = k.with_spec(json!({ "replicas": [config["replica"]] }));
                transformers::replicas(&level, resources, &only(|c| &mut c.replicas))?;
            }
            "PatchTransformer" => {
                let mut entry = Map::new();
                for key in ["patch", "path", "target", "options"] {
                    if let Some(v) = config.get(key) {
                        entry.insert(key.into(), v.clone());
                    }
                }
                patches::patches(&k.with_spec(json!({ "patches": [entry] })), resources)?;
                resources.iter_mut().for_each(Resource::note_rename);
            }
            "PatchStrategicMergeTransformer" => {
                let mut entries: Vec<Value> =
                    config["paths"].as_array().cloned().unwrap_or_default();
                if let Some(inline) = config["patches"].as_str() {
                    entries.push(json!(inline));
                }
                let level = k.with_spec(json!({ "patchesStrategicMerge": entries }));
                patches::strategic_merge_files(&level, resources)?;
                resources.iter_mut().for_each(Resource::note_rename);
            }
            "PatchJson6902Transformer" => {
                let mut entry = json!({ "target": config["target"] });
                if let Some(path) = config.get("path") {
                    entry["path"] = path.clone();
                }
                if let Some(ops) = config.get("jsonOp") {
                    entry["patch"] = ops.clone();
                }
                patches::json6902(
                    &k.with_spec(json!({ "patchesJson6902": [entry] })),
                    resources,
                )?;
                resources.iter_mut().for_each(Resource::note_rename);
            }
            "ReplacementTransformer" => {
                let level = k.with_spec(json!({ "replacements": config["replacements"] }));
                replacements::run(&level, resources)?;
            }
            other => return Err(unsupported(k, &at, &format!("built-in plugin {other}"))),
        }
        if ctx.record_transformers {
            let done = crate::Transformation {
                file,
                kind: kind.to_string(),
                name: plugin_name(&config),
            };
            for r in resources.iter_mut() {
                r.transformations.push(done.clone());
            }
        }
    }
    Ok(())
}

/// IAMPolicyGenerator: the Kubernetes ServiceAccount bound to a cloud service account (GKE
/// Workload Identity, the one cloud kustomize supports).
fn iam_service_account(
    k: &Kustomization,
    at: &str,
    file: std::path::PathBuf,
    config: &Value,
) -> Result<Resource, KustomizeError> {
    let invalid = |field: &str, message: String| KustomizeError::Invalid {
        path: k.path(),
        field: format!("{at}.{field}"),
        message,
    };
    let cloud = config["cloud"].as_str().unwrap_or_default();
    if cloud != "gke" {
        return Err(invalid(
            "cloud",
            format!("cloud provider {cloud:?} not supported yet (only gke)"),
        ));
    }
    let text = |pointer: &str| {
        config
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (account, project, name) = (
        text("/serviceAccount/name"),
        text("/serviceAccount/projectId"),
        text("/kubernetesService/name"),
    );
    for (value, field) in [
        (account, "serviceAccount.name"),
        (project, "serviceAccount.projectId"),
        (name, "kubernetesService.name"),
    ] {
        if value.is_empty() {
            return Err(invalid(field, "is required".into()));
        }
    }
    let mut metadata = json!({
        "annotations": {"iam.gke.io/gcp-service-account": format!("{account}@{project}.iam.gserviceaccount.com")},
        "name": name,
    });
    let namespace = text("/kubernetesService/namespace");
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    Ok(Resource::new(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}),
        crate::Source::Generated {
            kustomization: file,
            generator: "IAMPolicyGenerator",
            name: plugin_name(config),
        },
    ))
}

fn plugin_name(config: &Value) -> Option<String> {
    config["metadata"]["name"].as_str().map(str::to_string)
}

/// The plugin configurations a field lists: inline YAML, files, or kustomization
/// directories whose resources are configurations; each with the file it is written in.
fn configs(
    k: &Kustomization,
    field: &str,
    ctx: &mut Context<'_>,
) -> Result<Vec<(String, std::path::PathBuf, Value)>, KustomizeError> {
    let mut out = Vec::new();
    for (i, entry) in k.strings(field)?.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let objects = if entry.contains('\n') {
            let source = crate::Source::File(k.file.clone());
            read_manifests_text(&entry, &format!("{} {at}", k.path()), &source)?
        } else {
            load_entry(k, &entry, ctx)?.resources
        };
        out.extend(objects.into_iter().map(|r| {
            let file = match r.source {
                crate::Source::File(path) => path,
                _ => k.file.clone(),
            };
            (at.clone(), file, r.object)
        }));
    }
    Ok(out)
}

/// The built-in plugin a configuration names, or an error for any other plugin.
fn plugin<'v>(k: &Kustomization, at: &str, config: &'v Value) -> Result<&'v str, KustomizeError> {
    if config["apiVersion"] != "builtin" {
        return Err(unsupported(
            k,
            at,
            "plugins other than kustomize's built-in ones",
        ));
    }
    Ok(config["kind"].as_str().unwrap_or_default())
}

fn unsupported(k: &Kustomization, at: &str, what: &str) -> KustomizeError {
    KustomizeError::Unsupported {
        path: k.path(),
        field: format!("{at} ({what})"),
    }
}

fn field_specs(
    k: &Kustomization,
    at: &str,
    config: &Value,
) -> Result<Vec<FieldSpec>, KustomizeError> {
    config["fieldSpecs"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, fs)| {
            let field = format!("{at}.fieldSpecs[{i}]");
            parse_field_spec(fs, &field).map_err(|message| KustomizeError::Invalid {
                path: k.path(),
                field,
                message,
            })
        })
        .collect()
}

/// A generator plugin's configuration as a `configMapGenerator`/`secretGenerator`/
/// `helmCharts` entry: its name and namespace come from its metadata.
fn generator_entry(config: &Value) -> Value {
    let mut entry = config.as_object().cloned().unwrap_or_default();
    for key in ["apiVersion", "kind", "metadata"] {
        entry.remove(key);
    }
    if !entry.contains_key("name")
        && let Some(name) = config["metadata"]["name"].as_str()
    {
        entry.insert("name".into(), json!(name));
    }
    if let Some(ns) = config["metadata"]["namespace"].as_str() {
        entry.insert("namespace".into(), json!(ns));
    }
    Value::Object(entry)
}
