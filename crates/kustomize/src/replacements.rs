//! `replacements`: copy a field of one resource into fields of others, with kustomize's field
//! paths (`spec.template.spec.containers.[name=app].image`, `*` wildcards, indexes) and the
//! `delimiter`/`index` and `create` options.

use serde_json::Value;

use crate::kustomization::Kustomization;
use crate::select::LabelSelector;
use crate::yaml::parse_documents;
use crate::{KustomizeError, Resource, io};

fn invalid(k: &Kustomization, field: &str, message: String) -> KustomizeError {
    KustomizeError::Invalid {
        path: k.path(),
        field: field.into(),
        message,
    }
}

pub fn run(k: &Kustomization, resources: &mut [Resource]) -> Result<(), KustomizeError> {
    let Some(list) = k.spec["replacements"].as_array() else {
        return Ok(());
    };
    for (i, entry) in list.iter().enumerate() {
        let at = format!("replacements[{i}]");
        let replacements = match entry["path"].as_str() {
            Some(rel) => {
                let path = k.local_file(rel, &at)?;
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                parse_documents(&text)
                    .map_err(|e| {
                        invalid(
                            k,
                            &at,
                            format!("{rel}: invalid YAML at line {}: {}", e.line, e.message),
                        )
                    })?
                    .into_iter()
                    .flat_map(|d| match d.value {
                        Value::Array(items) => items,
                        other => vec![other],
                    })
                    .collect()
            }
            None => vec![entry.clone()],
        };
        for r in replacements {
            apply(k, resources, &r, &at)?;
        }
    }
    Ok(())
}

/// Replacement sources and targets select by exact identity (names are not regular
/// expressions here, unlike patch targets), plus label and annotation selectors. An
/// unparsable selector selects nothing.
fn selects(r: &Resource, select: &Value) -> bool {
    let f = |key: &str| select[key].as_str().filter(|s| !s.is_empty());
    let meta = |key: &str, field: &str| {
        f(key).is_none_or(|s| {
            LabelSelector::parse(s).is_ok_and(|sel| sel.matches(&r.object["metadata"][field]))
        })
    };
    f("group").is_none_or(|g| g == r.group())
        && f("version").is_none_or(|v| v == r.version())
        && f("kind").is_none_or(|v| v == r.kind())
        && f("name").is_none_or(|v| r.has_had_name(v) || v == r.origin_name)
        && f("namespace").is_none_or(|v| v == r.namespace())
        && meta("labelSelector", "labels")
        && meta("annotationSelector", "annotations")
}

fn apply(
    k: &Kustomization,
    resources: &mut [Resource],
    replacement: &Value,
    at: &str,
) -> Result<(), KustomizeError> {
    let source = &replacement["source"];
    let sources: Vec<&Resource> = resources.iter().filter(|r| selects(r, source)).collect();
    let src = match sources.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(
                k,
                at,
                format!("nothing selected by source {source}"),
            ));
        }
        _ => {
            return Err(invalid(
                k,
                at,
                format!("more than one resource selected by source {source}"),
            ));
        }
    };
    let field_path = source["fieldPath"].as_str().unwrap_or("metadata.name");
    let mut found = Vec::new();
    lookup(&src.object, &parse_path(field_path), &mut found);
    let Some(mut value) = found.into_iter().next().cloned() else {
        return Err(invalid(
            k,
            at,
            format!("source fieldPath {field_path} not found in {}", src.id()),
        ));
    };
    if let (Some(delim), Some(s)) = (source["options"]["delimiter"].as_str(), value.as_str()) {
        let index = source["options"]["index"].as_i64().unwrap_or(0);
        let parts: Vec<&str> = s.split(delim).collect();
        let part = usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i))
            .copied()
            .unwrap_or_default();
        value = Value::String(part.to_string());
    }
    for (t, target) in replacement["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let rejects: Vec<&Value> = target["reject"]
            .as_array()
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        let create = target["options"]["create"].as_bool().unwrap_or(false);
        for r in resources.iter_mut() {
            if !selects(r, &target["select"]) || rejects.iter().any(|rej| selects(r, rej)) {
                continue;
            }
            // kustomize writes a replacement into the target's node in place: a label or
            // annotation value it changes in one field changes wherever that value is shared.
            let before = (!r.shared_values.is_empty()).then(|| r.object.clone());
            for path in target["fieldPaths"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let segments = parse_path(path);
                let written = set(&mut r.object, &segments, &value, &target["options"], create);
                if !written && !create {
                    return Err(invalid(
                        k,
                        &format!("{at}.targets[{t}]"),
                        format!("fieldPath {path} not found in {}", r.id()),
                    ));
                }
            }
            if let Some(before) = before {
                r.shared_values.settle(&before, &mut r.object);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Match(String, String),
    Any,
}

/// `a.b.[k=v].c`, `a.0.b`, `a.*.b`, with `[a.b]` escaping dots in a key.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut chars = path.chars().peekable();
    let mut current = String::new();
    let flush = |current: &mut String, segs: &mut Vec<Seg>| {
        if current.is_empty() {
            return;
        }
        let s = std::mem::take(current);
        segs.push(if s == "*" {
            Seg::Any
        } else if let Ok(i) = s.parse::<usize>() {
            Seg::Index(i)
        } else {
            Seg::Key(s)
        });
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut current, &mut segs),
            '[' => {
                flush(&mut current, &mut segs);
                let inner: String = chars.by_ref().take_while(|c| *c != ']').collect();
                match inner.split_once('=') {
                    Some((k, v)) => segs.push(Seg::Match(k.to_string(), v.to_string())),
                    None => segs.push(Seg::Key(inner)),
                }
            }
            c => current.push(c),
        }
    }
    flush(&mut current, &mut segs);
    segs
}

fn lookup<'a>(value: &'a Value, path: &[Seg], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(value);
        return;
    };
    match (first, value) {
        (Seg::Key(k), Value::Object(m)) => {
            if let Some(v) = m.get(k) {
                lookup(v, rest, out);
            }
        }
        (Seg::Index(i), Value::Array(a)) => {
            if let Some(v) = a.get(*i) {
                lookup(v, rest, out);
            }
        }
        (Seg::Match(k, v), Value::Array(a)) => {
            for item in a
                .iter()
                .filter(|item| item[k.as_str()].as_str() == Some(v.as_str()))
            {
                lookup(item, rest, out);
            }
        }
        (Seg::Any, Value::Array(a)) => a.iter().for_each(|item| lookup(item, rest, out)),
        (Seg::Any, Value::Object(m)) => m.values().for_each(|item| lookup(item, rest, out)),
        _ => {}
    }
}

/// Write `value` at `path`; returns whether anything was written.
fn set(target: &mut Value, path: &[Seg], value: &Value, options: &Value, create: bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        match (
            options["delimiter"].as_str(),
            target.as_str(),
            value.as_str(),
        ) {
            (Some(delim), Some(current), Some(new)) => {
                let index = options["index"].as_i64().unwrap_or(0);
                let mut parts: Vec<String> = current.split(delim).map(str::to_string).collect();
                match usize::try_from(index) {
                    Ok(i) if i < parts.len() => parts[i] = new.to_string(),
                    Ok(_) => parts.push(new.to_string()),
                    Err(_) => parts.insert(0, new.to_string()),
                }
                *target = Value::String(parts.join(delim));
            }
            _ => *target = value.clone(),
        }
        return true;
    };
    match (first, target) {
        (Seg::Key(k), Value::Object(m)) => {
            if !m.contains_key(k) {
                if !create {
                    return false;
                }
                let fresh = if matches!(rest.first(), Some(Seg::Index(_) | Seg::Match(..))) {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Default::default())
                };
                m.insert(k.clone(), fresh);
            }
            m.get_mut(k)
                .is_some_and(|next| set(next, rest, value, options, create))
        }
        (Seg::Index(i), Value::Array(a)) => a
            .get_mut(*i)
            .is_some_and(|next| set(next, rest, value, options, create)),
        (Seg::Match(k, v), Value::Array(a)) => {
            let mut any = false;
            for item in a
                .iter_mut()
                .filter(|item| item[k.as_str()].as_str() == Some(v.as_str()))
            {
                any |= set(item, rest, value, options, create);
            }
            any
        }
        (Seg::Any, Value::Array(a)) => a.iter_mut().fold(false, |any, item| {
            set(item, rest, value, options, create) | any
        }),
        (Seg::Any, Value::Object(m)) => m.values_mut().fold(false, |any, item| {
            set(item, rest, value, options, create) | any
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        assert_eq!(
            parse_path("spec.template.spec.containers.[name=app].image"),
            vec![
                Seg::Key("spec".into()),
                Seg::Key("template".into()),
                Seg::Key("spec".into()),
                Seg::Key("containers".into()),
                Seg::Match("name".into(), "app".into()),
                Seg::Key("image".into())
            ]
        );
        assert_eq!(
            parse_path("metadata.annotations.[a.b/c]"),
            vec![
                Seg::Key("metadata".into()),
                Seg::Key("annotations".into()),
                Seg::Key("a.b/c".into())
            ]
        );
        assert_eq!(
            parse_path("spec.ports.0.port"),
            vec![
                Seg::Key("spec".into()),
                Seg::Key("ports".into()),
                Seg::Index(0),
                Seg::Key("port".into())
            ]
        );
    }
}
