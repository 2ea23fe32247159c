//! `configMapGenerator` and `secretGenerator`: literals, files and env files, behaviours
//! create/merge/replace, `generatorOptions`, and the content-hash name suffix kustomize adds.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource, io};

pub fn run(k: &Kustomization, resources: &mut Vec<Resource>) -> Result<(), KustomizeError> {
    let options = &k.spec["generatorOptions"];
    for (field, kind) in [
        ("configMapGenerator", "ConfigMap"),
        ("secretGenerator", "Secret"),
    ] {
        let Some(generators) = k.spec[field].as_array() else {
            continue;
        };
        for (i, g) in generators.iter().enumerate() {
            let at = format!("{field}[{i}]");
            generate(k, resources, g, kind, options, &at)?;
        }
    }
    Ok(())
}

fn invalid(k: &Kustomization, field: &str, message: impl Into<String>) -> KustomizeError {
    KustomizeError::Invalid {
        path: k.path(),
        field: field.into(),
        message: message.into(),
    }
}

/// `KEY=VALUE`, with surrounding quotes removed from the value as kustomize does; the value
/// is not trimmed (a literal ending in a newline keeps it).
fn split_literal(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let unquoted = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Some((k.trim().to_string(), unquoted.to_string()))
}

fn generate(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    g: &Value,
    kind: &str,
    options: &Value,
    at: &str,
) -> Result<(), KustomizeError> {
    let name = g["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(k, at, "name is required"))?;
    let namespace = g["namespace"].as_str().unwrap_or_default();
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    let mut binary: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for file in g["envs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(g["env"].as_str().map(|_| &g["env"]))
    {
        let rel = file.as_str().unwrap_or_default();
        let path = k.local_file(rel, at)?;
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        for (n, line) in text.lines().enumerate() {
            // Like kustomize: leading whitespace goes; the key (up to `=`) and the value
            // (quotes and trailing spaces included) are kept verbatim.
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // kustomize would read a bare `KEY` from its own environment; a render must not
            // leak the controller's environment into manifests, so that is refused.
            let (key, value) = line.split_once('=').ok_or_else(|| {
                invalid(
                    k,
                    at,
                    format!(
                        "{rel}:{}: {line:?} has no '=' (taking the value from the environment is not supported)",
                        n + 1
                    ),
                )
            })?;
            data.insert(key.to_string(), value.to_string());
        }
    }
    for literal in g["literals"].as_array().into_iter().flatten() {
        let s = literal.as_str().unwrap_or_default();
        let (key, value) = split_literal(s)
            .ok_or_else(|| invalid(k, at, format!("literal {s:?} is not KEY=VALUE")))?;
        data.insert(key, value);
    }
    for file in g["files"].as_array().into_iter().flatten() {
        let spec = file.as_str().unwrap_or_default();
        let (key, rel) = match spec.split_once('=') {
            Some((key, rel)) => (key.to_string(), rel.to_string()),
            None => (
                std::path::Path::new(spec)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                spec.to_string(),
            ),
        };
        let path = k.local_file(&rel, at)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        match String::from_utf8(bytes) {
            Ok(text) => {
                data.insert(key, text);
            }
            Err(e) => {
                binary.insert(key, e.into_bytes());
            }
        }
    }

    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        meta.insert("namespace".into(), json!(namespace));
    }
    let labels = merged_map(&options["labels"], &g["options"]["labels"]);
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    let annotations = merged_map(&options["annotations"], &g["options"]["annotations"]);
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    let mut object = json!({"apiVersion": "v1", "kind": kind, "metadata": meta});
    let encode = |v: &[u8]| wrapped_base64(v);
    if kind == "Secret" {
        let mut d: Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.clone(), json!(encode(v.as_bytes()))))
            .collect();
        d.extend(binary.iter().map(|(k, v)| (k.clone(), json!(encode(v)))));
        object["data"] = Value::Object(d);
        object["type"] = json!(g["type"].as_str().unwrap_or("Opaque"));
    } else {
        if !data.is_empty() {
            object["data"] =
                Value::Object(data.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
        }
        if !binary.is_empty() {
            object["binaryData"] = Value::Object(
                binary
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(encode(v))))
                    .collect(),
            );
        }
    }
    let immutable = g["options"]["immutable"]
        .as_bool()
        .or(options["immutable"].as_bool())
        .unwrap_or(false);
    if immutable {
        object["immutable"] = json!(true);
    }
    let disable_hash = g["options"]["disableNameSuffixHash"]
        .as_bool()
        .or(options["disableNameSuffixHash"].as_bool())
        .unwrap_or(false);

    let behavior = g["behavior"].as_str().unwrap_or("create");
    // The object a generator merges into or replaces is the one with its kind, a name and
    // a namespace it has or had (an empty namespace is `default`), as kustomize matches ids.
    let effective = |ns: &str| if ns.is_empty() { "default" } else { ns }.to_string();
    let existing = resources.iter().position(|r| {
        r.kind() == kind
            && (r.origin_name == name || r.has_had_name(name))
            && (effective(r.namespace()) == effective(namespace)
                || effective(&r.origin_namespace) == effective(namespace))
    });
    match (behavior, existing) {
        ("create", Some(_)) => Err(KustomizeError::DuplicateId {
            path: k.path(),
            id: format!("{kind} {name}"),
        }),
        ("create", None) => {
            let generator = if kind == "Secret" {
                "SecretGenerator"
            } else {
                "ConfigMapGenerator"
            };
            let mut r = Resource::new(
                object,
                crate::Source::Generated {
                    kustomization: k.file.clone(),
                    generator,
                    name: k.plugin.clone(),
                },
            );
            r.hash_suffix = !disable_hash;
            resources.push(r);
            Ok(())
        }
        ("merge" | "replace", None) => Err(invalid(
            k,
            at,
            format!("behavior {behavior}: no {kind} {name} to {behavior} with"),
        )),
        ("merge", Some(i)) => {
            let target = &mut resources[i].object;
            for field in ["data", "binaryData"] {
                if let Some(Value::Object(new)) = object.get(field) {
                    let entry = target
                        .as_object_mut()
                        .map(|m| m.entry(field.to_string()).or_insert_with(|| json!({})));
                    if let Some(Value::Object(old)) = entry {
                        old.extend(new.clone());
                    }
                }
            }
            for field in ["labels", "annotations"] {
                if let Some(Value::Object(new)) = object["metadata"].get(field) {
                    let meta = target["metadata"].as_object_mut();
                    if let Some(Value::Object(old)) =
                        meta.map(|m| m.entry(field.to_string()).or_insert_with(|| json!({})))
                    {
                        old.extend(new.clone());
                    }
                }
            }
            resources[i].hash_suffix = resources[i].hash_suffix && !disable_hash;
            Ok(())
        }
        ("replace", Some(i)) => {
            // The replacement keeps the old object's identity (name, namespace) and merges
            // its labels and annotations over the old ones, as kustomize does.
            let old_meta = resources[i].object["metadata"].clone();
            object["metadata"]["name"] = old_meta["name"].clone();
            if let Some(ns) = old_meta.get("namespace") {
                object["metadata"]["namespace"] = ns.clone();
            }
            for field in ["labels", "annotations"] {
                if let Some(Value::Object(old)) = old_meta.get(field) {
                    let mut merged = old.clone();
                    if let Some(Value::Object(new)) = object["metadata"].get(field) {
                        merged.extend(new.clone());
                    }
                    object["metadata"][field] = Value::Object(merged);
                }
            }
            resources[i].object = object;
            // As with merge, the suffix stays off if the replaced object had it off.
            resources[i].hash_suffix = resources[i].hash_suffix && !disable_hash;
            Ok(())
        }
        (other, _) => Err(invalid(
            k,
            at,
            format!("behavior must be create, merge or replace, not {other:?}"),
        )),
    }
}

/// kustomize's base64 for generated data: lines of 70 characters, each ending in a newline
/// once the encoding needs more than one line.
fn wrapped_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines = encoded.len() / LINE + 1;
    if lines == 1 {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + lines);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn merged_map(base: &Value, over: &Value) -> Map<String, Value> {
    let mut m = base.as_object().cloned().unwrap_or_default();
    if let Some(o) = over.as_object() {
        m.extend(o.clone());
    }
    m
}

/// Append `-<hash>` to generated ConfigMaps and Secrets, after every other transformation.
pub fn apply_hash_suffixes(resources: &mut [Resource]) {
    for r in resources.iter_mut().filter(|r| r.hash_suffix) {
        let hash = content_hash(&r.object);
        let name = format!("{}-{hash}", r.name());
        r.object["metadata"]["name"] = json!(name);
    }
}

/// kustomize's hash: SHA-256 of a JSON encoding of kind, data (and type), with an empty
/// name, its first ten hex digits with some letters swapped to avoid words.
pub fn content_hash(object: &Value) -> String {
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    m.insert("kind", object["kind"].clone());
    m.insert("name", json!(""));
    // kustomize encodes a ConfigMap without data as `"data":""` (a Secret as `{}`).
    let data = object
        .get("data")
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let empty = if object["kind"] == "ConfigMap" {
        json!("")
    } else {
        json!({})
    };
    m.insert("data", data.map_or(empty, sorted));
    if object["kind"] == "Secret" {
        m.insert("type", object["type"].clone());
    }
    if let Some(binary) = object
        .get("binaryData")
        .filter(|b| b.as_object().is_some_and(|m| !m.is_empty()))
    {
        m.insert("binaryData", sorted(binary.clone()));
    }
    let encoded = go_json(&serde_json::to_value(&m).unwrap_or(Value::Null));
    let digest = Sha256::digest(encoded.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(b.into_iter().collect())
        }
        other => other,
    }
}

/// Go's `json.Marshal`: compact, sorted keys, `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_string(k), go_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_json).collect::<Vec<_>>().join(",")),
        Value::String(s) => go_string(s),
        other => other.to_string(),
    }
}

fn go_string(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_default();
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_kustomize() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"A": "1", "B": "two"}});
        assert_eq!(content_hash(&cm), "6b56fdfggc");
    }

    #[test]
    fn literals_lose_their_quotes() {
        assert_eq!(split_literal("A=\"x y\""), Some(("A".into(), "x y".into())));
        assert_eq!(split_literal("B=a=b"), Some(("B".into(), "a=b".into())));
        assert_eq!(split_literal("nope"), None);
    }
}
