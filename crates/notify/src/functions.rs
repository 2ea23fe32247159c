//! Argo's notification functions that need nothing but their arguments, shared by templates
//! and conditions (each engine converts its values to and from JSON around them).

use serde_json::Value;

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest `%XX`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What `call .repo.GetCommitMetadata SHA` gives for a commit: Argo's `CommitMetadata`
/// (`Message`, `Author`, `Date` — RFC 3339 here, a Go `time.Time` there —, `Tags`).
pub fn commit_metadata(
    message: &str,
    author: &str,
    date: &str,
    tags: &[String],
) -> serde_json::Value {
    serde_json::json!({"Message": message, "Author": author, "Date": date, "Tags": tags})
}

/// Argo's `sync.GetInfoItem(app, name)`: the value of the `info` item `name` of the app's
/// sync operation.
pub fn info_item(app: &Value, name: &str) -> Result<Value, String> {
    let operation = &app["status"]["operationState"]["operation"];
    if operation.is_null() {
        return Err("GetInfoItem: the application has no operation".into());
    }
    let Some(items) = operation["info"].as_array() else {
        return Err("GetInfoItem: the application's operation has no info items".into());
    };
    items
        .iter()
        .find(|item| item["name"] == name)
        .map(|item| item["value"].clone())
        .ok_or_else(|| {
            format!("GetInfoItem: the application's operation has no info item {name:?}")
        })
}

/// Argo's `Helm.GetParameterValueByName(name)` and `Helm.GetFileParameterPathByName(name)`:
/// the value (path) of the first parameter of that name in `helm`'s `list`, empty when none.
pub fn helm_parameter(helm: &Value, list: &str, field: &str, name: &str) -> String {
    helm[list]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["Name"] == name))
        .and_then(|p| p[field].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Where the operand ending at the end of `before` starts, for writing a method call on it as
/// a function call: a chain of names and members (`.Helm`, `$d.Helm`, `a?.b`), possibly after
/// a parenthesised or indexed part (`(call …).Helm`, `f(x).Helm`, `a[0].b`).
pub fn receiver_start(before: &str) -> usize {
    let bytes = before.as_bytes();
    let mut i = bytes.len();
    loop {
        while i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || b"_.?$#".contains(&bytes[i - 1])) {
            i -= 1;
        }
        let (open, close) = match i.checked_sub(1).map(|b| bytes[b]) {
            Some(b')') => (b'(', b')'),
            Some(b']') => (b'[', b']'),
            _ => return i,
        };
        let mut depth = 0;
        while i > 0 {
            i -= 1;
            if bytes[i] == close {
                depth += 1;
            } else if bytes[i] == open {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
        }
    }
}
