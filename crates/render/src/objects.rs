//! Turning parsed documents into objects: `List` flattening and the checks every object must
//! pass (a mapping with apiVersion, kind and metadata.name; no two objects with one identity).

use std::collections::HashMap;

use serde_json::Value;

use crate::yaml::{Document, parse_documents};
use crate::{Manifest, Origin, RenderError};

/// The objects in `text` — one JSON document, or a YAML stream (`List` kinds unpacked) —
/// with `file` as their origin.
pub fn parse(text: &str, file: &str, json: bool) -> Result<Vec<Manifest>, RenderError> {
    let documents = if json {
        let value = serde_json::from_str(text).map_err(|e| RenderError::Json {
            file: file.to_string(),
            line: e.line(),
            message: e.to_string(),
        })?;
        vec![Document {
            index: 0,
            line: 1,
            value,
            source: None,
        }]
    } else {
        parse_documents(text).map_err(|e| RenderError::Yaml {
            file: file.to_string(),
            line: e.line,
            message: e.message,
        })?
    };
    Ok(documents
        .into_iter()
        .flat_map(|doc| from_document(doc, file))
        .collect())
}

/// Objects given as texts, each JSON or a YAML stream (what `argocd app sync --local` sends
/// as `manifests`), checked like rendered ones; errors name `manifests[i]`.
pub fn parse_texts(texts: &[String]) -> Result<Vec<Manifest>, RenderError> {
    let mut out = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let json = text.trim_start().starts_with('{');
        out.extend(parse(text, &format!("manifests[{i}]"), json)?);
    }
    check_objects(&out)?;
    Ok(out)
}

/// The objects in one document: a `*List` kind with `items` is flattened.
pub fn from_document(doc: Document, file: &str) -> Vec<Manifest> {
    let origin = Origin {
        file: doc.source.clone().unwrap_or_else(|| file.to_string()),
        document: doc.index,
        line: doc.line,
    };
    let is_list = doc.value["kind"]
        .as_str()
        .is_some_and(|k| k.ends_with("List"))
        && doc.value["items"].is_array();
    if is_list {
        let items = doc.value["items"].as_array().cloned().unwrap_or_default();
        return items
            .into_iter()
            .map(|object| Manifest {
                object,
                origin: origin.clone(),
            })
            .collect();
    }
    vec![Manifest {
        object: doc.value,
        origin,
    }]
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// `group/Kind namespace/name`, the identity two objects may not share.
pub fn identity(object: &Value) -> String {
    let group = group_of(object["apiVersion"].as_str().unwrap_or_default());
    let kind = object["kind"].as_str().unwrap_or_default();
    let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let gk = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{group}/{kind}")
    };
    if ns.is_empty() {
        format!("{gk} {name}")
    } else {
        format!("{gk} {ns}/{name}")
    }
}

pub fn check_objects(manifests: &[Manifest]) -> Result<(), RenderError> {
    let mut seen: HashMap<String, &Origin> = HashMap::new();
    for m in manifests {
        let not_object = |message: &str| RenderError::NotAnObject {
            origin: m.origin.clone(),
            message: message.to_string(),
        };
        let Some(map) = m.object.as_object() else {
            return Err(not_object("expected a mapping"));
        };
        if map
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(not_object("apiVersion is missing"));
        }
        if map
            .get("kind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(not_object("kind is missing"));
        }
        let meta = &m.object["metadata"];
        let named = meta["name"].as_str().is_some_and(|n| !n.is_empty());
        let generated = meta["generateName"].as_str().is_some_and(|n| !n.is_empty());
        if !named && !generated {
            return Err(not_object("metadata.name is missing"));
        }
        if named {
            let id = identity(&m.object);
            if let Some(first) = seen.get(&id) {
                return Err(RenderError::Duplicate {
                    id,
                    first: (*first).clone(),
                    second: m.origin.clone(),
                });
            }
            seen.insert(id, &m.origin);
        }
    }
    Ok(())
}
