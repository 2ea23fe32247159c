//! Rendering templates with generator parameters: Argo CD's default `{{param}}` substitution
//! (fasttemplate: unknown parameters stay as written) and, with `goTemplate: true`, Go
//! text/template with the Sprig functions ApplicationSets commonly use plus `normalize` and
//! `slugify`.

use gtmpl::Context;
use serde_json::{Map, Value};
use tiphys_gotemplate::to_value as to_go;
pub use tiphys_gotemplate::{normalize, slugify};

use crate::AppSetError;

/// Parameters of one generated Application.
pub type Params = Map<String, Value>;

/// How strings are rendered.
#[derive(Clone, Debug, Default)]
pub struct Renderer {
    pub go_template: bool,
    /// `goTemplateOptions: ["missingkey=error"]`.
    pub missing_key_error: bool,
}

impl Renderer {
    /// Render every string in `value` (keys too, as Argo CD does for labels).
    pub fn render_value(&self, value: &Value, params: &Params) -> Result<Value, AppSetError> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s, params)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, params))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(self.render(k, params)?, self.render_value(v, params)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    pub fn render(&self, text: &str, params: &Params) -> Result<String, AppSetError> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        if self.go_template {
            go_render(text, params, self.missing_key_error)
        } else {
            Ok(fast_render(text, params))
        }
    }
}

/// `{{name}}` / `{{ name }}` replaced by the flat parameter `name`; others left alone.
pub fn fast_render(text: &str, params: &Params) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match params.get(key) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) => {}
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Flatten nested parameters to dotted keys with string values (the default templating's
/// view of git-file and list parameters).
pub fn flatten(params: &Params) -> Params {
    fn walk(prefix: &str, value: &Value, out: &mut Params) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_string(), Value::String(s.clone()));
            }
            Value::Null => {
                out.insert(prefix.to_string(), Value::String(String::new()));
            }
            other => {
                out.insert(prefix.to_string(), Value::String(other.to_string()));
            }
        }
    }
    let mut out = Params::new();
    for (k, v) in params {
        walk(k, v, &mut out);
    }
    out
}

/// Render `text` as a Go template over `params`.
pub fn go_render(
    text: &str,
    params: &Params,
    missing_key_error: bool,
) -> Result<String, AppSetError> {
    let template = tiphys_gotemplate::parse(text).map_err(|message| AppSetError::Template {
        template: text.to_string(),
        message,
    })?;
    let context = Context::from(to_go(&Value::Object(params.clone())));
    let out = template
        .render(&context)
        .map_err(|e| AppSetError::Template {
            template: text.to_string(),
            message: e.to_string(),
        })?;
    // Go's default (missingkey=default) prints "<no value>", as Argo CD's templates do.
    if missing_key_error && out.contains("<no value>") {
        let message = match missing_key(text, params) {
            Some(key) => format!("map has no entry for key {key:?} (missingkey=error)"),
            None => "map has no entry for a key (missingkey=error)".into(),
        };
        return Err(AppSetError::Template {
            template: text.to_string(),
            message,
        });
    }
    Ok(out)
}

/// The first key a field chain in `text` (`.a.b.c` inside an action) asks of `params` that
/// is not there — what Go names in "map has no entry for key".
fn missing_key(text: &str, params: &Params) -> Option<String> {
    // Inside range and with, `.` is something else than the parameters.
    if text.contains("range") || text.contains("with") {
        return None;
    }
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        let action = &after[..end];
        let bytes = action.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // A chain starts at a `.` not preceded by a word character (`$x.a` is a variable).
            let starts = bytes[i] == b'.'
                && (i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric()
                        || bytes[i - 1] == b'_'
                        || bytes[i - 1] == b'$'
                        || bytes[i - 1] == b')'));
            if !starts {
                i += 1;
                continue;
            }
            let chain_end = action[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .map_or(action.len(), |n| i + n);
            let chain = &action[i + 1..chain_end];
            let mut current: Option<&Value> = None;
            for (depth, key) in chain.split('.').filter(|k| !k.is_empty()).enumerate() {
                let next = if depth == 0 {
                    params.get(key)
                } else {
                    current.and_then(|v| v.get(key))
                };
                match next {
                    Some(v) => current = Some(v),
                    None if depth == 0 || current.is_some_and(Value::is_object) => {
                        return Some(key.to_string());
                    }
                    None => break,
                }
            }
            i = chain_end.max(i + 1);
        }
        rest = &after[end.min(after.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(v: Value) -> Params {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn default_templating_substitutes_known_and_keeps_unknown() {
        let p =
            params(json!({"service": "payment-service", "env": "prod", "path.basename": "web"}));
        assert_eq!(
            fast_render("{{service}}-{{ env }}", &p),
            "payment-service-prod"
        );
        assert_eq!(
            fast_render("{{path.basename}}/{{missing}}", &p),
            "web/{{missing}}"
        );
        assert_eq!(fast_render("no braces {{", &p), "no braces {{");
    }

    #[test]
    fn flattening_nested_parameters() {
        let p = params(json!({"cluster": {"name": "eu", "replicas": 3, "tags": ["a"]}, "x": null}));
        let flat = flatten(&p);
        assert_eq!(flat["cluster.name"], "eu");
        assert_eq!(flat["cluster.replicas"], "3");
        assert_eq!(flat["cluster.tags"], "[\"a\"]");
        assert_eq!(flat["x"], "");
    }

    #[test]
    fn go_templates_with_functions_and_missing_keys() {
        let p = params(
            json!({"path": {"basename": "My App", "segments": ["apps", "my app"]}, "env": "Prod"}),
        );
        assert_eq!(
            go_render(
                "{{ .path.basename | normalize }}-{{ lower .env }}",
                &p,
                false
            )
            .unwrap(),
            "my-app-prod"
        );
        assert_eq!(
            go_render("{{ index .path.segments 1 }}", &p, false).unwrap(),
            "my app"
        );
        assert_eq!(
            go_render("{{ default \"dev\" .nothing }}", &p, false).unwrap(),
            "dev"
        );
        assert_eq!(
            go_render(
                "{{ if eq .env \"Prod\" }}live{{ else }}test{{ end }}",
                &p,
                false
            )
            .unwrap(),
            "live"
        );
        let err = go_render("{{ .env }}-{{ .path.dirname }}", &p, true).unwrap_err();
        assert!(
            err.to_string().contains("no entry for key \"dirname\""),
            "the error names the key: {err}"
        );
        assert_eq!(
            go_render(
                "{{ dig \"path\" \"basename\" \"none\" . }}/{{ dig \"path\" \"x\" \"none\" . }}",
                &p,
                true
            )
            .unwrap(),
            "My App/none"
        );
        let err = go_render("{{ .env ", &p, false).unwrap_err();
        assert!(err.to_string().contains("{{ .env"), "{err}");
    }

    #[test]
    fn normalize_and_slugify_like_argo() {
        assert_eq!(normalize("Feature/My_Branch"), "feature-my-branch");
        assert_eq!(normalize("--a..b--"), "a..b");
        assert_eq!(
            slugify("Hello World, this is long", 13, true),
            "hello-world"
        );
        assert_eq!(
            slugify("Hello World, this is long", 13, false),
            "hello-world-t"
        );
    }
}
