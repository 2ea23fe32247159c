//! Generators: each turns its spec into parameter sets. List, clusters, git (directories and
//! files), matrix and merge, with the post-`selector` every generator accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::template::{Params, Renderer, flatten, normalize};
use crate::{AppSetError, Inputs};

/// A cluster the clusters generator can target.
#[derive(Clone, Debug, Default)]
pub struct ClusterInfo {
    pub name: String,
    pub server: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Where git generators read trees.
pub trait Repos {
    /// The checked-out tree of `repo_url` at `revision`.
    fn tree(&self, repo_url: &str, revision: &str) -> Result<PathBuf, String>;
}

/// One generator's output: parameter sets, and the generator's own template override.
pub struct Generated {
    pub params: Vec<Params>,
    pub template: Option<Value>,
}

fn fail(generator: &str, message: impl Into<String>) -> AppSetError {
    AppSetError::Generator {
        generator: generator.to_string(),
        message: message.into(),
    }
}

/// Run one generator (`{"list": {...}}`, `{"matrix": {...}}`, …).
pub fn generate(
    spec: &Value,
    renderer: &Renderer,
    inputs: &Inputs<'_>,
) -> Result<Generated, AppSetError> {
    let Some((kind, body)) = spec
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| *k != "selector"))
    else {
        return Err(fail("?", "empty generator"));
    };
    let params = match kind.as_str() {
        "list" => list(body, renderer)?,
        "clusters" => clusters(body, renderer, inputs)?,
        "git" => git(body, renderer, inputs)?,
        "matrix" => matrix(body, renderer, inputs)?,
        "merge" => merge(body, renderer, inputs)?,
        other => return Err(fail(other, "this generator is not supported")),
    };
    let params = match spec.get("selector") {
        Some(selector) => params
            .into_iter()
            .filter(|p| selector_matches(selector, p))
            .collect(),
        None => params,
    };
    Ok(Generated {
        params,
        template: body.get("template").cloned(),
    })
}

/// Shape parameters for the renderer: nested for Go templates, flat strings otherwise.
fn shape(params: Params, renderer: &Renderer) -> Params {
    if renderer.go_template {
        params
    } else {
        flatten(&params)
    }
}

/// A generator's `values`, rendered with its own parameters, added under `values`.
fn with_values(
    mut params: Params,
    body: &Value,
    renderer: &Renderer,
) -> Result<Params, AppSetError> {
    if let Some(values) = body.get("values").and_then(Value::as_object) {
        let lookup = shape(params.clone(), renderer);
        let mut rendered = Map::new();
        for (k, v) in values {
            rendered.insert(k.clone(), renderer.render_value(v, &lookup)?);
        }
        params.insert("values".into(), Value::Object(rendered));
    }
    Ok(shape(params, renderer))
}

fn list(body: &Value, renderer: &Renderer) -> Result<Vec<Params>, AppSetError> {
    let mut elements: Vec<Value> = body
        .get("elements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(text) = body.get("elementsYaml").and_then(Value::as_str) {
        let parsed: Vec<Value> =
            serde_saphyr::from_str(text).map_err(|e| fail("list", format!("elementsYaml: {e}")))?;
        elements.extend(parsed);
    }
    elements
        .into_iter()
        .enumerate()
        .map(|(i, e)| match e {
            Value::Object(map) => Ok(shape(map, renderer)),
            other => Err(fail(
                "list",
                format!("element {i} is not an object: {other}"),
            )),
        })
        .collect()
}

fn clusters(
    body: &Value,
    renderer: &Renderer,
    inputs: &Inputs<'_>,
) -> Result<Vec<Params>, AppSetError> {
    let selector = body.get("selector");
    let mut out = Vec::new();
    for cluster in inputs.clusters {
        let labels: Params = cluster
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(selector) = selector
            && !selector_matches_labels(selector, &labels)
        {
            continue;
        }
        let annotations: Params = cluster
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut params = Params::new();
        params.insert("name".into(), Value::String(cluster.name.clone()));
        params.insert(
            "nameNormalized".into(),
            Value::String(normalize(&cluster.name)),
        );
        params.insert("server".into(), Value::String(cluster.server.clone()));
        params.insert(
            "metadata".into(),
            serde_json::json!({"labels": labels, "annotations": annotations}),
        );
        out.push(with_values(params, body, renderer)?);
    }
    Ok(out)
}

/// `path.Match`-style glob on one path (no `/` crossing for `*`); `**` crosses directories.
pub fn path_glob(pattern: &str, path: &str) -> bool {
    fn seg_match(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => seg_match(&p[1..], s) || (!s.is_empty() && seg_match(p, &s[1..])),
            (Some(b'?'), Some(_)) => seg_match(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => seg_match(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn parts(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => parts(&p[1..], s) || (!s.is_empty() && parts(p, &s[1..])),
            (Some(a), Some(b)) => seg_match(a.as_bytes(), b.as_bytes()) && parts(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let s: Vec<&str> = path.trim_matches('/').split('/').collect();
    parts(&p, &s)
}

/// Every directory (or file) under `root`, as repository-relative paths, `.git` skipped.
fn walk(root: &Path, dirs: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if kind.is_dir() {
                if dirs {
                    out.push(rel);
                }
                stack.push(path);
            } else if !dirs && kind.is_file() {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// The path parameters of a directory or file (`path`, `path.basename`, `path[N]`, …).
fn path_params(path: &str, file: Option<&str>, prefix: &str, renderer: &Renderer) -> Params {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let basename = segments.last().copied().unwrap_or("").to_string();
    let mut nested = Map::new();
    nested.insert("path".into(), Value::String(path.to_string()));
    nested.insert("basename".into(), Value::String(basename.clone()));
    nested.insert(
        "basenameNormalized".into(),
        Value::String(normalize(&basename)),
    );
    nested.insert(
        "segments".into(),
        Value::Array(
            segments
                .iter()
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
    );
    if let Some(file) = file {
        nested.insert("filename".into(), Value::String(file.to_string()));
        nested.insert("filenameNormalized".into(), Value::String(normalize(file)));
    }
    let mut params = Params::new();
    if renderer.go_template {
        let path = Value::Object(nested);
        if prefix.is_empty() {
            params.insert("path".into(), path);
        } else {
            params.insert(prefix.into(), serde_json::json!({"path": path}));
        }
    } else {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        params.insert(key("path"), Value::String(path.to_string()));
        params.insert(key("path.basename"), Value::String(basename.clone()));
        params.insert(
            key("path.basenameNormalized"),
            Value::String(normalize(&basename)),
        );
        for (i, s) in segments.iter().enumerate() {
            params.insert(key(&format!("path[{i}]")), Value::String(s.to_string()));
        }
        if let Some(file) = file {
            params.insert(key("path.filename"), Value::String(file.to_string()));
            params.insert(
                key("path.filenameNormalized"),
                Value::String(normalize(file)),
            );
        }
    }
    params
}

fn git(body: &Value, renderer: &Renderer, inputs: &Inputs<'_>) -> Result<Vec<Params>, AppSetError> {
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let repo = s("repoURL");
    let revision = match s("revision").as_str() {
        "" => "HEAD".to_string(),
        r => r.to_string(),
    };
    let prefix = s("pathParamPrefix");
    let tree = inputs
        .repos
        .tree(&repo, &revision)
        .map_err(|e| fail("git", format!("{repo} at {revision}: {e}")))?;
    let mut out = Vec::new();
    if let Some(directories) = body.get("directories").and_then(Value::as_array) {
        let include: Vec<&str> = directories
            .iter()
            .filter(|d| d.get("exclude").and_then(Value::as_bool) != Some(true))
            .filter_map(|d| d.get("path").and_then(Value::as_str))
            .collect();
        let exclude: Vec<&str> = directories
            .iter()
            .filter(|d| d.get("exclude").and_then(Value::as_bool) == Some(true))
            .filter_map(|d| d.get("path").and_then(Value::as_str))
            .collect();
        for dir in walk(&tree, true) {
            if include.iter().any(|p| path_glob(p, &dir))
                && !exclude.iter().any(|p| path_glob(p, &dir))
            {
                out.push(with_values(
                    path_params(&dir, None, &prefix, renderer),
                    body,
                    renderer,
                )?);
            }
        }
    }
    if let Some(files) = body.get("files").and_then(Value::as_array) {
        let patterns: Vec<&str> = files
            .iter()
            .filter_map(|f| f.get("path").and_then(Value::as_str))
            .collect();
        for file in walk(&tree, false) {
            if !patterns.iter().any(|p| path_glob(p, &file)) {
                continue;
            }
            let text = std::fs::read_to_string(tree.join(&file))
                .map_err(|e| fail("git", format!("{file}: {e}")))?;
            let parsed: Value = if file.ends_with(".json") {
                serde_json::from_str(&text).map_err(|e| fail("git", format!("{file}: {e}")))?
            } else {
                serde_saphyr::from_str(&text).map_err(|e| fail("git", format!("{file}: {e}")))?
            };
            let documents = match parsed {
                Value::Array(items) => items,
                other => vec![other],
            };
            let (dir, name) = file.rsplit_once('/').unwrap_or(("", file.as_str()));
            for doc in documents {
                let Value::Object(mut content) = doc else {
                    return Err(fail(
                        "git",
                        format!("{file}: expected an object or a list of objects"),
                    ));
                };
                for (k, v) in path_params(dir, Some(name), &prefix, renderer) {
                    if renderer.go_template {
                        content.insert(k, v);
                    } else {
                        content.entry(k).or_insert(v);
                    }
                }
                out.push(with_values(content, body, renderer)?);
            }
        }
    }
    Ok(out)
}

fn children(body: &Value, kind: &str) -> Result<Vec<Value>, AppSetError> {
    body.get("generators")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| fail(kind, "needs `generators`"))
}

fn matrix(
    body: &Value,
    renderer: &Renderer,
    inputs: &Inputs<'_>,
) -> Result<Vec<Params>, AppSetError> {
    let generators = children(body, "matrix")?;
    let [first, second] = generators.as_slice() else {
        return Err(fail(
            "matrix",
            format!(
                "takes exactly two child generators, found {}",
                generators.len()
            ),
        ));
    };
    let mut out = Vec::new();
    for left in generate(first, renderer, inputs)?.params {
        // The second generator may use the first's parameters (a git path from a list, say).
        let second = renderer.render_value(second, &left)?;
        for right in generate(&second, renderer, inputs)?.params {
            out.push(combine(&left, right, renderer.go_template)?);
        }
    }
    Ok(out)
}

/// One matrix combination: the parameter maps merge deeply. With Go templates the second
/// generator's values win (mergo's override, as in Argo CD); flat parameters — compared key by
/// flattened key there — may not disagree.
fn combine(left: &Params, right: Params, go_template: bool) -> Result<Params, AppSetError> {
    let mut combined = Value::Object(left.clone());
    deep_merge(&mut combined, Value::Object(right), go_template, "")?;
    match combined {
        Value::Object(map) => Ok(map),
        _ => Ok(left.clone()),
    }
}

/// Merge `overlay` into `base`: maps key by key; anything else replaced when `overwrite`,
/// else an error naming the (dotted) key unless both agree.
fn deep_merge(
    base: &mut Value,
    overlay: Value,
    overwrite: bool,
    at: &str,
) -> Result<(), AppSetError> {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (k, v) in overlay {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match base.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v, overwrite, &key)?,
                    None => {
                        base.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        (base, overlay) if overwrite || *base == overlay => {
            *base = overlay;
            Ok(())
        }
        (base, overlay) => Err(fail(
            "matrix",
            format!("found duplicate key {at} with different value, a: {base} ,b: {overlay}"),
        )),
    }
}

/// A parameter by dotted key: flat (`a.b`) first, then nested.
fn lookup<'a>(params: &'a Params, key: &str) -> Option<&'a Value> {
    params.get(key).or_else(|| {
        let mut parts = key.split('.');
        let first = params.get(parts.next()?)?;
        parts.try_fold(first, |v, k| v.get(k))
    })
}

fn merge(
    body: &Value,
    renderer: &Renderer,
    inputs: &Inputs<'_>,
) -> Result<Vec<Params>, AppSetError> {
    let generators = children(body, "merge")?;
    let keys: Vec<String> = body
        .get("mergeKeys")
        .and_then(Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(fail("merge", "needs `mergeKeys`"));
    }
    let mut iter = generators.iter();
    let Some(base) = iter.next() else {
        return Err(fail("merge", "needs at least one generator"));
    };
    let mut merged = generate(base, renderer, inputs)?.params;
    for other in iter {
        for overlay in generate(other, renderer, inputs)?.params {
            for target in merged.iter_mut() {
                if keys.iter().all(|k| {
                    lookup(target, k).is_some() && lookup(target, k) == lookup(&overlay, k)
                }) {
                    for (k, v) in &overlay {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    Ok(merged)
}

fn as_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`) over `labels`.
pub fn selector_matches_labels(selector: &Value, labels: &Params) -> bool {
    selector_with(selector, |k| as_text(labels.get(k)))
}

/// The post-generator selector over parameters (dotted keys reach nested ones).
fn selector_matches(selector: &Value, params: &Params) -> bool {
    selector_with(selector, |k| as_text(lookup(params, k)))
}

fn selector_with(selector: &Value, get: impl Fn(&str) -> Option<String>) -> bool {
    let labels_ok = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| get(k).as_deref() == v.as_str()));
    let expressions_ok = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let found = get(key);
                match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => found.is_some_and(|f| values.contains(&f.as_str())),
                    "NotIn" => found.is_none_or(|f| !values.contains(&f.as_str())),
                    "Exists" => found.is_some(),
                    "DoesNotExist" => found.is_none(),
                    _ => false,
                }
            })
        });
    labels_ok && expressions_ok
}
