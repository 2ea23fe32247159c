//! `patches`, `patchesStrategicMerge` and `patchesJson6902`: strategic merge patches (with the
//! built-in kinds' merge keys from `tiphys-patch`) and RFC 6902 JSON patches, aimed by the
//! patch's own identity or by a target selector.

use serde_json::Value;

use crate::kustomization::Kustomization;
use crate::names::effective;
use crate::select::Selector;
use crate::yaml::parse_documents;
use crate::{KustomizeError, Resource, io};
use tiphys_patch::openapi::Schema;

fn patch_error(k: &Kustomization, message: String) -> KustomizeError {
    KustomizeError::Patch {
        path: k.path(),
        message,
    }
}

/// The text of a patch: inline, or a file relative to the kustomization.
fn patch_text(k: &Kustomization, entry: &Value, at: &str) -> Result<String, KustomizeError> {
    if entry["patch"].is_string() && entry["path"].is_string() {
        return Err(patch_error(
            k,
            format!("{at}: patch and path can't be set at the same time"),
        ));
    }
    if let Some(inline) = entry["patch"].as_str() {
        return Ok(inline.to_string());
    }
    let Some(rel) = entry["path"].as_str() else {
        return Err(patch_error(
            k,
            format!("{at}: one of path or patch is required"),
        ));
    };
    let path = k.local_file(rel, at)?;
    std::fs::read_to_string(&path).map_err(io(&path))
}

fn parse(k: &Kustomization, text: &str, at: &str) -> Result<Vec<Value>, KustomizeError> {
    let docs = parse_documents(text).map_err(|e| {
        patch_error(
            k,
            format!("{at}: invalid YAML at line {}: {}", e.line, e.message),
        )
    })?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

/// A patch's target, parsed; a bad regular expression or selector names its field.
fn target_selector(
    k: &Kustomization,
    target: &Value,
    at: &str,
) -> Result<Selector, KustomizeError> {
    Selector::parse(target).map_err(|(field, message)| KustomizeError::Invalid {
        path: k.path(),
        field: format!("{at}.target.{field}"),
        message,
    })
}

/// A patch's `options`: may it rename its target, or change its kind?
#[derive(Debug, Clone, Copy, Default)]
struct PatchOptions {
    allow_name_change: bool,
    allow_kind_change: bool,
}

impl PatchOptions {
    fn read(k: &Kustomization, entry: &Value, at: &str) -> Result<PatchOptions, KustomizeError> {
        let mut options = PatchOptions::default();
        let Some(map) = entry.get("options") else {
            return Ok(options);
        };
        for (key, value) in map.as_object().into_iter().flatten() {
            let flag = match key.as_str() {
                "allowNameChange" => &mut options.allow_name_change,
                "allowKindChange" => &mut options.allow_kind_change,
                _ => {
                    return Err(KustomizeError::Unsupported {
                        path: k.path(),
                        field: format!("{at}.options.{key}"),
                    });
                }
            };
            *flag = value.as_bool().ok_or_else(|| {
                patch_error(k, format!("{at}.options.{key}: expected true or false"))
            })?;
        }
        Ok(options)
    }
}

fn apply_strategic(
    r: &mut Resource,
    patch: &Value,
    options: PatchOptions,
    openapi: Option<&Schema>,
) -> Result<bool, String> {
    if patch["$patch"] == "delete" {
        return Ok(false);
    }
    // A custom schema (`openapi`) replaces the built-in one entirely, as in kustomize.
    let schema = match openapi {
        Some(custom) => custom.for_kind(r.group(), r.kind()),
        None => tiphys_patch::schema::for_kind(r.group(), r.kind()),
    };
    let mut p = patch.clone();
    // The patch names its target; its identity fields are not part of the change unless
    // the options say so. The namespace never changes.
    if let Some(meta) = p.get_mut("metadata").and_then(Value::as_object_mut) {
        if !options.allow_name_change {
            meta.remove("name");
        }
        meta.remove("namespace");
    }
    if !options.allow_kind_change
        && let Some(map) = p.as_object_mut()
    {
        map.remove("kind");
        map.remove("apiVersion");
    }
    // kustomize merges into the object's nodes in place: a label or annotation value the
    // patch changes in one field changes wherever that value is shared.
    let before = (!r.shared_values.is_empty()).then(|| r.object.clone());
    tiphys_patch::strategic::apply_with(
        &mut r.object,
        &p,
        schema,
        tiphys_patch::strategic::Flavor::Kustomize,
    )
    .map_err(|e| e.to_string())?;
    if let Some(before) = before {
        r.shared_values.settle(&before, &mut r.object);
    }
    Ok(true)
}

/// Apply RFC 6902 operations one by one. Like the JSON patch library kustomize uses, a
/// `replace` of a key missing from an existing object adds it.
fn apply_json6902(r: &mut Resource, ops: &Value) -> Result<(), String> {
    let Some(ops) = ops.as_array() else {
        return Err("invalid JSON 6902 patch: expected a list of operations".into());
    };
    for (i, op) in ops.iter().enumerate() {
        let mut op = op.clone();
        if op["op"] == "replace"
            && let Some(path) = op["path"].as_str()
            && let Some((parent, _)) = path.rsplit_once('/')
            && r.object.pointer(parent).is_some_and(Value::is_object)
            && r.object.pointer(path).is_none()
        {
            op["op"] = Value::from("add");
        }
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(vec![op]))
            .map_err(|e| format!("invalid JSON 6902 operation {i}: {e}"))?;
        json_patch::patch(&mut r.object, &patch).map_err(|e| format!("operation {i}: {e}"))?;
    }
    // kustomize applies JSON patches to the object's JSON and reads the result back: no
    // label or annotation value is shared between fields after that.
    r.shared_values.clear();
    Ok(())
}

/// Apply strategic merge patches that name their own target (kind/name/namespace).
fn apply_by_identity(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    patch: &Value,
    at: &str,
    options: PatchOptions,
) -> Result<(), KustomizeError> {
    let kind = patch["kind"].as_str().unwrap_or_default();
    let name = patch["metadata"]["name"].as_str().unwrap_or_default();
    // As kustomize matches a patch's id: a name and namespace the resource has had together,
    // a missing namespace being `default`; more than one match is an error, not a guess.
    let ns = effective(patch["metadata"]["namespace"].as_str().unwrap_or_default());
    let matching: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind() == kind && r.has_had_id(name, ns))
        .map(|(i, _)| i)
        .collect();
    let i = match matching.as_slice() {
        [one] => *one,
        [] => {
            return Err(patch_error(
                k,
                format!("{at}: no resource matches {kind} {name} in namespace {ns}"),
            ));
        }
        many => {
            return Err(patch_error(
                k,
                format!(
                    "{at}: failed to find unique target for patch {kind} {name}: {} resources match",
                    many.len()
                ),
            ));
        }
    };
    if !apply_strategic(&mut resources[i], patch, options, k.openapi)
        .map_err(|e| patch_error(k, format!("{at}: {e}")))?
    {
        resources.remove(i);
    }
    Ok(())
}

pub fn strategic_merge_files(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
) -> Result<(), KustomizeError> {
    for (i, entry) in k.spec["patchesStrategicMerge"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("patchesStrategicMerge[{i}]");
        let s = entry.as_str().unwrap_or_default();
        // An entry is a file path, or (when it contains a newline) the patch itself.
        let text = if s.contains('\n') {
            s.to_string()
        } else {
            let path = k.local_file(s, &at)?;
            std::fs::read_to_string(&path).map_err(io(&path))?
        };
        for patch in parse(k, &text, &at)? {
            apply_by_identity(k, resources, &patch, &at, PatchOptions::default())?;
        }
    }
    Ok(())
}

pub fn patches(k: &Kustomization, resources: &mut Vec<Resource>) -> Result<(), KustomizeError> {
    for (i, entry) in k.spec["patches"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("patches[{i}]");
        let options = PatchOptions::read(k, entry, &at)?;
        let text = patch_text(k, entry, &at)?;
        let docs = parse(k, &text, &at)?;
        let target = entry.get("target").filter(|t| t.is_object());
        let is_json6902 = docs.len() == 1 && docs[0].is_array();
        match (target, is_json6902) {
            (None, true) => {
                return Err(patch_error(
                    k,
                    format!("{at}: a JSON 6902 patch needs a target"),
                ));
            }
            (None, false) => {
                for patch in &docs {
                    apply_by_identity(k, resources, patch, &at, options)?;
                }
            }
            (Some(target), json6902) => {
                let selector = target_selector(k, target, &at)?;
                let mut deleted = Vec::new();
                for (idx, r) in resources.iter_mut().enumerate() {
                    if !selector.matches(r) {
                        continue;
                    }
                    if json6902 {
                        apply_json6902(r, &docs[0])
                            .map_err(|e| patch_error(k, format!("{at} on {}: {e}", r.id())))?;
                    } else {
                        for patch in &docs {
                            if !apply_strategic(r, patch, options, k.openapi)
                                .map_err(|e| patch_error(k, format!("{at} on {}: {e}", r.id())))?
                            {
                                deleted.push(idx);
                            }
                        }
                    }
                }
                for idx in deleted.into_iter().rev() {
                    resources.remove(idx);
                }
            }
        }
    }
    Ok(())
}

pub fn json6902(k: &Kustomization, resources: &mut [Resource]) -> Result<(), KustomizeError> {
    for (i, entry) in k.spec["patchesJson6902"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("patchesJson6902[{i}]");
        let text = patch_text(k, entry, &at)?;
        let docs = parse(k, &text, &at)?;
        let Some(ops) = docs.first() else { continue };
        // A target that selects nothing is accepted, as kustomize accepts it.
        let selector = target_selector(k, &entry["target"], &at)?;
        for r in resources.iter_mut().filter(|r| selector.matches(r)) {
            apply_json6902(r, ops)
                .map_err(|e| patch_error(k, format!("{at} on {}: {e}", r.id())))?;
        }
    }
    Ok(())
}
