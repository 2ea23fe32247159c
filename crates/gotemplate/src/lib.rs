//! Go templates as Argo CD renders them (ApplicationSets with `goTemplate: true`, notification
//! templates): gtmpl's text/template with the Sprig functions users reach for most, and JSON
//! turned into template values.
#![forbid(unsafe_code)]

use gtmpl::{FuncError, Template, Value as GoValue};
use serde_json::Value;

/// `text` parsed with [`functions`]; the error is the parser's.
pub fn parse(text: &str) -> Result<Template, String> {
    parse_with(text, &[])
}

/// `text` parsed with [`functions`] and `extra` ones.
pub fn parse_with(text: &str, extra: &[(&str, gtmpl_value::Func)]) -> Result<Template, String> {
    // gtmpl loops forever on an action left open at the end of the text; refuse it first.
    if let Some(last) = text.rfind("{{")
        && !text[last..].contains("}}")
    {
        return Err("unclosed action".into());
    }
    let mut template = Template::default();
    template.add_funcs(&functions());
    template.add_funcs(extra);
    template.parse(text).map_err(|e| e.to_string())?;
    Ok(template)
}

/// A template value back as JSON (for `toJson`).
pub fn to_json_value(v: &GoValue) -> Value {
    match v {
        GoValue::NoValue | GoValue::Nil => Value::Null,
        GoValue::Bool(b) => Value::Bool(*b),
        GoValue::String(s) => Value::String(s.clone()),
        GoValue::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        GoValue::Array(items) => Value::Array(items.iter().map(to_json_value).collect()),
        GoValue::Map(m) | GoValue::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m
                .iter()
                .map(|(k, v)| (k.clone(), to_json_value(v)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        other => Value::String(other.to_string()),
    }
}

/// JSON as a template value.
pub fn to_value(value: &Value) -> GoValue {
    match value {
        Value::Null => GoValue::Nil,
        Value::Bool(b) => GoValue::from(*b),
        Value::Number(n) => n
            .as_i64()
            .map(GoValue::from)
            .or_else(|| n.as_f64().map(GoValue::from))
            .unwrap_or(GoValue::Nil),
        Value::String(s) => GoValue::from(s.clone()),
        Value::Array(items) => GoValue::Array(items.iter().map(to_value).collect()),
        Value::Object(map) => {
            GoValue::Map(map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

/// A value as text, as Go prints it in a template (`nil` as empty).
pub fn text(v: &GoValue) -> String {
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
    Ok(GoValue::from(f(&text(arg(
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

/// The functions every template gets: the Sprig ones Argo CD's users use most, and Argo's
/// `normalize` and `slugify`.
pub fn functions() -> Vec<(&'static str, gtmpl_value::Func)> {
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
        let prefix = text(arg(a, 0, "trimPrefix")?);
        let s = text(arg(a, 1, "trimPrefix")?);
        Ok(GoValue::from(
            s.strip_prefix(&prefix).unwrap_or(&s).to_string(),
        ))
    }
    fn trim_suffix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let suffix = text(arg(a, 0, "trimSuffix")?);
        let s = text(arg(a, 1, "trimSuffix")?);
        Ok(GoValue::from(
            s.strip_suffix(&suffix).unwrap_or(&s).to_string(),
        ))
    }
    fn replace(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let (old, new, s) = (
            text(arg(a, 0, "replace")?),
            text(arg(a, 1, "replace")?),
            text(arg(a, 2, "replace")?),
        );
        Ok(GoValue::from(s.replace(&old, &new)))
    }
    fn has_prefix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            text(arg(a, 1, "hasPrefix")?).starts_with(&text(arg(a, 0, "hasPrefix")?)),
        ))
    }
    fn has_suffix(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            text(arg(a, 1, "hasSuffix")?).ends_with(&text(arg(a, 0, "hasSuffix")?)),
        ))
    }
    fn contains(a: &[GoValue]) -> Result<GoValue, FuncError> {
        Ok(GoValue::from(
            text(arg(a, 1, "contains")?).contains(&text(arg(a, 0, "contains")?)),
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
        let sep = text(arg(a, 0, "join")?);
        let items: Vec<String> = match arg(a, 1, "join")? {
            GoValue::Array(items) => items.iter().map(text).collect(),
            other => vec![text(other)],
        };
        Ok(GoValue::from(items.join(&sep)))
    }
    fn split_list(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let sep = text(arg(a, 0, "splitList")?);
        let s = text(arg(a, 1, "splitList")?);
        Ok(GoValue::Array(
            s.split(sep.as_str())
                .map(|p| GoValue::from(p.to_string()))
                .collect(),
        ))
    }
    fn slugify_fn(a: &[GoValue]) -> Result<GoValue, FuncError> {
        // slugify TEXT, or slugify MAX SMART TEXT.
        let (max, smart, text) = match a.len() {
            1 => (50, true, text(&a[0])),
            3 => (
                text(&a[0]).parse().unwrap_or(50),
                text(&a[1]) == "true",
                text(&a[2]),
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
        Ok(GoValue::from(
            to_json_value(arg(a, 0, "toJson")?).to_string(),
        ))
    }
    fn to_pretty_json(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let value = to_json_value(arg(a, 0, "toPrettyJson")?);
        Ok(GoValue::from(
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        ))
    }
    /// Sprig's `trunc N S`: the first N characters (the last -N when negative).
    fn trunc(a: &[GoValue]) -> Result<GoValue, FuncError> {
        let n: i64 = text(arg(a, 0, "trunc")?)
            .parse()
            .map_err(|_| FuncError::Generic("trunc: the length is not a number".into()))?;
        let s = text(arg(a, 1, "trunc")?);
        let count = s.chars().count();
        let kept: String = if n >= 0 {
            s.chars().take(n as usize).collect()
        } else {
            s.chars()
                .skip(count.saturating_sub(n.unsigned_abs() as usize))
                .collect()
        };
        Ok(GoValue::from(kept))
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
                GoValue::Map(map) => match map.get(&text(key)) {
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
        ("toPrettyJson", to_pretty_json),
        ("trunc", trunc),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(text: &str, data: Value) -> String {
        parse(text)
            .unwrap()
            .render(&gtmpl::Context::from(to_value(&data)))
            .unwrap()
    }

    #[test]
    fn sprig_functions() {
        let data = json!({"name": "Guest Book", "list": ["a", "b"], "m": {"k": 1}});
        assert_eq!(
            render(
                "{{.name | lower}} {{join \",\" .list}} {{toJson .m}} {{trunc 3 .name}} {{default \"x\" .missing}}",
                data
            ),
            r#"guest book a,b {"k":1} Gue x"#
        );
    }

    #[test]
    fn an_unclosed_action_is_refused() {
        assert_eq!(parse("a {{ .b").err().as_deref(), Some("unclosed action"));
    }
}
