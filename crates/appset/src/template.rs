//! Rendering templates with generator parameters: Argo CD's default `{{param}}` substitution
//! (fasttemplate: unknown parameters stay as written) and, with `goTemplate: true`, Go
//! text/template with the Sprig functions ApplicationSets commonly use plus `normalize` and
//! `slugify`.

use gtmpl::{Context, FuncError, Template, Value as GoValue};
use serde_json::{Map, Value};

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

fn to_go(value: &Value) -> GoValue {
    match value {
        Value::Null => GoValue::Nil,
        Value::Bool(b) => GoValue::from(*b),
        Value::Number(n) => n
            .as_i64()
            .map(GoValue::from)
            .or_else(|| n.as_f64().map(GoValue::from))
            .unwrap_or(GoValue::Nil),
        Value::String(s) => GoValue::from(s.clone()),
        Value::Array(items) => GoValue::Array(items.iter().map(to_go).collect()),
        Value::Object(map) => {
            GoValue::Map(map.iter().map(|(k, v)| (k.clone(), to_go(v))).collect())
        }
    }
}

fn go_string(v: &GoValue) -> String {
    match v {
        GoValue::NoValue | GoValue::Nil => String::new(),
        GoValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arg<'a>(args: &'a [GoValue], i: usize, name: &str) -> Result<&'a GoValue, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::Generic(format!("{name}: missing argument {}", i + 1)))
}

fn string_fn(
    args: &[GoValue],
    name: &str,
    f: impl Fn(&str) -> String,
) -> Result<GoValue, FuncError> {
    Ok(GoValue::from(f(&go_string(arg(
        args,
        args.len().saturating_sub(1),
        name,
    )?))))
}

/// Argo CD's `normalize`: lower case, every run of characters outside [a-z0-9.-] becomes `-`,
/// at most 253 characters, trimmed of `-` and `.`.
pub fn normalize(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.chars().take(253).collect();
    out.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// Argo CD's `slugify maxSize smartTruncate text`: lower case, runs of other characters become
/// `-`, cut at `maxSize` (default 50), on a word boundary when `smartTruncate`.
pub fn slugify(text: &str, max: usize, smart: bool) -> String {
    let mut slug = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.len() <= max {
        return slug;
    }
    let cut = &slug[..max];
    let cut = if smart {
        cut.rsplit_once('-').map_or(cut, |(head, _)| head)
    } else {
        cut
    };
    cut.trim_end_matches('-').to_string()
}

fn funcs() -> Vec<(&'static str, gtmpl_value::Func)> {
    fn lower(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "lower", str::to_lowercase)
    }
    fn upper(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "upper", str::to_uppercase)
    }
    fn trim(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "trim", |s| s.trim().to_string())
    }
    fn title(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "title", |s| {
            s.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(" ")
        })
    }
    fn normalize_fn(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "normalize", normalize)
    }
    fn quote(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "quote", |s| format!("{s:?}"))
    }
    fn squote(a: &[GoValue]) -> Result<GoValue, FuncError> {
        string_fn(a, "squote", |s| format!("'{s}'"))
    }
    fn b64enc(a: &[GoValue]) -> Result<GoValue, FuncError> {
        use base64::Engine;
        string_fn(a, "b64enc", |s| {
            base64::engine::general_purpose::STANDARD.encode(s)
        })
    }
    fn b64dec(a: &[GoValue]) -> Result<GoValue, FuncError> {
        use base64::Engine;
        string_fn(a, "b64dec", |s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        })
    }
    fn trim_prefix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let prefix = go_string(arg(a, 0, "trimPrefix")?);
        let s = go_string(arg(a, 1, "trimPrefix")?);
        Ok(GoValue::from(
            s.strip_prefix(&prefix).unwrap_or(&s).to_string(),
        ))
    }
    fn trim_suffix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let suffix = go_string(arg(a, 0, "trimSuffix")?);
        let s = go_string(arg(a, 1, "trimSuffix")?);
        Ok(GoValue::from(
            s.strip_suffix(&suffix).unwrap_or(&s).to_string(),
        ))
    }
    fn replace(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let (old, new, s) = (
            go_string(arg(a, 0, "replace")?),
            go_string(arg(a, 1, "replace")?),
            go_string(arg(a, 2, "replace")?),
        );
        Ok(GoValue::from(s.replace(&old, &new)))
    }
    fn has_prefix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            go_string(arg(a, 1, "hasPrefix")?).starts_with(&go_string(arg(a, 0, "hasPrefix")?)),
        ))
    }
    fn has_suffix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            go_string(arg(a, 1, "hasSuffix")?).ends_with(&go_string(arg(a, 0, "hasSuffix")?)),
        ))
    }
    fn contains(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            go_string(arg(a, 1, "contains")?).contains(&go_string(arg(a, 0, "contains")?)),
        ))
    }
    fn default(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let fallback = arg(a, 0, "default")?.clone();
        let given = a.get(1).cloned().unwrap_or(GoValue::NoValue);
        let empty = match &given {
            GoValue::NoValue | GoValue::Nil => true,
            GoValue::String(s) => s.is_empty(),
            GoValue::Bool(b) => !b,
            GoValue::Array(v) => v.is_empty(),
            GoValue::Map(m) => m.is_empty(),
            GoValue::Number(n) => n.as_i64() == Some(0),
            _ => false,
        };
        Ok(if empty { fallback } else { given })
    }
    fn join(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let sep = go_string(arg(a, 0, "join")?);
        let items: Vec<String> = match arg(a, 1, "join")? {
            GoValue::Array(items) => items.iter().map(go_string).collect(),
            other => vec![go_string(other)],
        };
        Ok(GoValue::from(items.join(&sep)))
    }
    fn split_list(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let sep = go_string(arg(a, 0, "splitList")?);
        let s = go_string(arg(a, 1, "splitList")?);
        Ok(GoValue::Array(
            s.split(sep.as_str())
                .map(|p| GoValue::from(p.to_string()))
                .collect(),
        ))
    }
    fn slugify_fn(a: &[GoValue]) -> Result<GoValue, FuncError> {
        // slugify TEXT, or slugify MAX SMART TEXT.
        let (max, smart, text) = match a.len() {
            1 => (50, true, go_string(&a[0])),
            3 => (
                go_string(&a[0]).parse().unwrap_or(50),
                go_string(&a[1]) == "true",
                go_string(&a[2]),
            ),
            n => {
                return Err(FuncError::Generic(format!(
                    "slugify takes 1 or 3 arguments, not {n}"
                )));
            }
        };
        Ok(GoValue::from(slugify(&text, max, smart)))
    }
    fn to_json(a: &[GoValue]) -> Result<GoValue, FuncError> {
        fn back(v: &GoValue) -> Value {
            match v {
                GoValue::NoValue | GoValue::Nil => Value::Null,
                GoValue::Bool(b) => Value::Bool(*b),
                GoValue::String(s) => Value::String(s.clone()),
                GoValue::Number(n) => n
                    .as_i64()
                    .map(Value::from)
                    .or_else(|| n.as_f64().map(Value::from))
                    .unwrap_or(Value::Null),
                GoValue::Array(items) => Value::Array(items.iter().map(back).collect()),
                GoValue::Map(m) => {
                    Value::Object(m.iter().map(|(k, v)| (k.clone(), back(v))).collect())
                }
                other => Value::String(other.to_string()),
            }
        }
        Ok(GoValue::from(back(arg(a, 0, "toJson")?).to_string()))
    }
    /// Sprig's `dig "a" "b" DEFAULT DICT`: the value at the nested keys, else DEFAULT.
    fn dig(a: &[GoValue]) -> Result<GoValue, FuncError> {
        if a.len() < 3 {
            return Err(FuncError::Generic(format!(
                "dig takes keys, a default and a dict; got {} arguments",
                a.len()
            )));
        }
        let (dict, rest) = a.split_last().unwrap_or((&GoValue::Nil, &[]));
        let (fallback, keys) = rest.split_last().unwrap_or((&GoValue::Nil, &[]));
        let mut current = dict;
        for key in keys {
            match current {
                GoValue::Map(map) => match map.get(&go_string(key)) {
                    Some(v) => current = v,
                    None => return Ok(fallback.clone()),
                },
                _ => return Ok(fallback.clone()),
            }
        }
        Ok(current.clone())
    }
    vec![
        ("dig", dig),
        ("lower", lower),
        ("upper", upper),
        ("trim", trim),
        ("title", title),
        ("normalize", normalize_fn),
        ("slugify", slugify_fn),
        ("quote", quote),
        ("squote", squote),
        ("b64enc", b64enc),
        ("b64dec", b64dec),
        ("trimPrefix", trim_prefix),
        ("trimSuffix", trim_suffix),
        ("replace", replace),
        ("hasPrefix", has_prefix),
        ("hasSuffix", has_suffix),
        ("contains", contains),
        ("default", default),
        ("join", join),
        ("splitList", split_list),
        ("toJson", to_json),
    ]
}

/// Render `text` as a Go template over `params`.
pub fn go_render(
    text: &str,
    params: &Params,
    missing_key_error: bool,
) -> Result<String, AppSetError> {
    // gtmpl loops forever on an action left open at the end of the text; refuse it first.
    if let Some(last) = text.rfind("{{")
        && !text[last..].contains("}}")
    {
        return Err(AppSetError::Template {
            template: text.to_string(),
            message: "unclosed action".into(),
        });
    }
    let mut template = Template::default();
    template.add_funcs(&funcs());
    template.parse(text).map_err(|e| AppSetError::Template {
        template: text.to_string(),
        message: e.to_string(),
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
