//! The path subset of jq that `jqPathExpressions` use in practice: field access (`.a.b`,
//! `.["a.b"]`), iteration (`[]`), indexes (`[0]`), optional `?`, pipes, and
//! `select(PATH == LITERAL)` / `select(PATH != LITERAL)`. Anything else is refused with an
//! error naming the expression, never silently ignored.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("jq path expression {expression:?}: {message}")]
pub struct JqError {
    pub expression: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Each,
}

#[derive(Clone, Debug, PartialEq)]
enum Stage {
    Path(Vec<Step>),
    Select {
        path: Vec<Step>,
        equal: bool,
        literal: Value,
    },
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct JqPath {
    stages: Vec<Stage>,
}

/// One concrete location in a document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Field(String),
    Index(usize),
}

impl JqPath {
    pub fn parse(expression: &str) -> Result<JqPath, JqError> {
        let fail = |message: &str| JqError {
            expression: expression.to_string(),
            message: message.to_string(),
        };
        let mut stages = Vec::new();
        for part in split_pipes(expression) {
            let part = part.trim();
            if let Some(inner) = part
                .strip_prefix("select(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                let (lhs, rhs, equal) = if let Some((l, r)) = inner.split_once("==") {
                    (l, r, true)
                } else if let Some((l, r)) = inner.split_once("!=") {
                    (l, r, false)
                } else {
                    return Err(fail("select() supports only == and != comparisons"));
                };
                let literal: Value = serde_json::from_str(rhs.trim())
                    .map_err(|_| fail("select() compares with a JSON literal"))?;
                stages.push(Stage::Select {
                    path: parse_path(lhs.trim()).map_err(|m| fail(&m))?,
                    equal,
                    literal,
                });
            } else {
                stages.push(Stage::Path(parse_path(part).map_err(|m| fail(&m))?));
            }
        }
        if stages.is_empty() {
            return Err(fail("empty expression"));
        }
        Ok(JqPath { stages })
    }

    /// Delete every location the expression selects in `doc`.
    pub fn delete(&self, doc: &mut Value) {
        let mut paths = self.locate(doc);
        // Later array items first, so earlier deletions do not shift later indexes.
        paths.sort();
        paths.dedup();
        for path in paths.iter().rev() {
            remove(doc, path);
        }
    }

    fn locate(&self, doc: &Value) -> Vec<Vec<Key>> {
        let mut current: Vec<Vec<Key>> = vec![Vec::new()];
        for stage in &self.stages {
            current = match stage {
                Stage::Path(steps) => current
                    .into_iter()
                    .flat_map(|base| walk(doc, base, steps))
                    .collect(),
                Stage::Select {
                    path,
                    equal,
                    literal,
                } => current
                    .into_iter()
                    .filter(|base| {
                        let Some(at) = get(doc, base) else {
                            return false;
                        };
                        let found = walk(at, Vec::new(), path)
                            .iter()
                            .any(|p| get(at, p) == Some(literal));
                        found == *equal
                    })
                    .collect(),
            };
        }
        current.retain(|p| !p.is_empty());
        current
    }
}

fn split_pipes(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_string, mut start) = (0i32, false, 0);
    for (i, c) in expression.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' | '[' if !in_string => depth += 1,
            ')' | ']' if !in_string => depth -= 1,
            '|' if !in_string && depth == 0 => {
                parts.push(&expression[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expression[start..]);
    parts
}

fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    let bytes: Vec<char> = text.chars().collect();
    if bytes.first() != Some(&'.') {
        return Err(format!("{text:?} is not a path (paths start with '.')"));
    }
    let mut steps = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_alphanumeric() || bytes[i] == '_' || bytes[i] == '-')
                {
                    i += 1;
                }
                if i > start {
                    steps.push(Step::Field(bytes[start..i].iter().collect()));
                }
            }
            '[' => {
                let close = bytes[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| p + i)
                    .ok_or("unclosed '['")?;
                let inner: String = bytes[i + 1..close].iter().collect();
                let inner = inner.trim();
                if inner.is_empty() {
                    steps.push(Step::Each);
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else if let Ok(Value::String(s)) = serde_json::from_str::<Value>(inner) {
                    steps.push(Step::Field(s));
                } else {
                    return Err(format!("unsupported index [{inner}]"));
                }
                i = close + 1;
            }
            '?' => i += 1,
            c if c.is_whitespace() => i += 1,
            c => return Err(format!("unsupported character {c:?}")),
        }
    }
    Ok(steps)
}

fn get<'a>(doc: &'a Value, path: &[Key]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, key| match key {
        Key::Field(f) => v.get(f),
        Key::Index(i) => v.get(i),
    })
}

fn walk(doc: &Value, base: Vec<Key>, steps: &[Step]) -> Vec<Vec<Key>> {
    let Some((step, rest)) = steps.split_first() else {
        return vec![base];
    };
    let Some(here) = get(doc, &base) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut descend = |key: Key| {
        let mut next = base.clone();
        next.push(key);
        out.extend(walk(doc, next, rest));
    };
    match step {
        Step::Field(f) if here.get(f).is_some() => descend(Key::Field(f.clone())),
        Step::Index(i) if here.get(i).is_some() => descend(Key::Index(*i)),
        Step::Each => match here {
            Value::Array(items) => (0..items.len()).for_each(|i| descend(Key::Index(i))),
            Value::Object(map) => map.keys().for_each(|k| descend(Key::Field(k.clone()))),
            _ => {}
        },
        _ => {}
    }
    out
}

fn remove(doc: &mut Value, path: &[Key]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut v = doc;
    for key in parent {
        let next = match key {
            Key::Field(f) => v.get_mut(f),
            Key::Index(i) => v.get_mut(*i),
        };
        let Some(next) = next else { return };
        v = next;
    }
    match (last, v) {
        (Key::Field(f), Value::Object(map)) => {
            map.remove(f);
        }
        (Key::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deletes_fields_items_and_selected_items() {
        let mut doc = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        JqPath::parse(".spec.replicas").unwrap().delete(&mut doc);
        assert!(doc.pointer("/spec/replicas").is_none());
        JqPath::parse(".spec.template.spec.containers[] | select(.name == \"b\") | .image")
            .unwrap()
            .delete(&mut doc);
        assert_eq!(
            doc.pointer("/spec/template/spec/containers/1"),
            Some(&json!({"name": "b"}))
        );
        assert_eq!(
            doc.pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("x"))
        );
        JqPath::parse(".spec.template.spec.containers[]?")
            .unwrap()
            .delete(&mut doc);
        assert_eq!(
            doc.pointer("/spec/template/spec/containers"),
            Some(&json!([]))
        );
    }

    #[test]
    fn bracketed_keys_and_missing_paths() {
        let mut doc = json!({"metadata": {"annotations": {"a.b/c": "1", "d": "2"}}});
        JqPath::parse(".metadata.annotations[\"a.b/c\"]")
            .unwrap()
            .delete(&mut doc);
        assert_eq!(doc, json!({"metadata": {"annotations": {"d": "2"}}}));
        JqPath::parse(".nothing.here").unwrap().delete(&mut doc);
        assert_eq!(doc, json!({"metadata": {"annotations": {"d": "2"}}}));
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        let err = JqPath::parse(".a | map(.b)").unwrap_err();
        assert!(
            err.to_string().contains("map(.b)") || err.to_string().contains(".a | map"),
            "{err}"
        );
        assert!(JqPath::parse("select(.a > 1)").is_err());
    }
}
