//! Trigger conditions: Argo CD writes `when` and `oncePer` in the expr language
//! (expr-lang.org), evaluated here by `expr-lang`. Argo adds namespaces of Go functions
//! (`time.Now()`, `time.Parse(s)`, `strings.ToUpper(s)`, …); expr-lang spells the same
//! builtins without a namespace, so a condition is rewritten to them before it is compiled.

use ::expr::{Context, Program, Value};

/// A compiled expression, with its source for messages.
pub struct Expression {
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Argo's function namespaces, as expr-lang's builtins.
const REWRITES: &[(&str, &str)] = &[
    ("time.Now(", "now("),
    ("time.Parse(", "date("),
    ("strings.ReplaceAll(", "replace("),
    ("strings.ToUpper(", "upper("),
    ("strings.ToLower(", "lower("),
    ("strings.TrimSpace(", "trim("),
];

/// `source` with Argo's namespaced functions renamed, string literals left alone.
fn rewrite(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut quote: Option<char> = None;
    let mut rest = source;
    'outer: while let Some(c) = rest.chars().next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    let escaped: String = rest.chars().take(2).collect();
                    out.push_str(&escaped);
                    rest = &rest[escaped.len()..];
                    continue;
                }
                if c == q {
                    quote = None;
                }
            }
            None => {
                if matches!(c, '\'' | '"' | '`') {
                    quote = Some(c);
                } else {
                    let boundary = !out
                        .chars()
                        .last()
                        .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.');
                    for (argo, ours) in REWRITES {
                        if boundary && rest.starts_with(argo) {
                            out.push_str(ours);
                            rest = &rest[argo.len()..];
                            continue 'outer;
                        }
                    }
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Expression {
    /// Compile `source`; the error is the parser's, on one line.
    pub fn compile(source: &str) -> Result<Expression, String> {
        let program = ::expr::compile(&rewrite(source)).map_err(|e| one_line(&e.to_string()))?;
        Ok(Expression {
            source: source.to_string(),
            program,
        })
    }

    pub fn eval(&self, env: &Env) -> Result<Value, String> {
        ::expr::run(&self.program, &env.0).map_err(|e| one_line(&e.to_string()))
    }

    /// The condition's answer: `true` or `false`, anything else is an error (as in Argo).
    pub fn eval_bool(&self, env: &Env) -> Result<bool, String> {
        match self.eval(env)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("the condition gave {other}, not true or false")),
        }
    }

    /// A value as `oncePer` keys on it: strings as they are, nil as empty.
    pub fn eval_key(&self, env: &Env) -> Result<String, String> {
        Ok(match self.eval(env)? {
            Value::String(s) => s,
            Value::Nil => String::new(),
            other => other.to_string(),
        })
    }
}

/// Error text fit for an Event or a log line.
fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == '-'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The variables a condition sees (`app`, and Tiphys's `drift` and `pause`).
#[derive(Default)]
pub struct Env(Context);

impl Env {
    pub fn insert(&mut self, name: &str, value: &serde_json::Value) {
        self.0.insert(name.to_string(), from_json(value));
    }
}

pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(app: serde_json::Value) -> Env {
        let mut env = Env::default();
        env.insert("app", &app);
        env
    }

    #[test]
    fn argo_default_conditions_evaluate() {
        let app = json!({"metadata": {"name": "a"}, "status": {
            "operationState": {"phase": "Succeeded", "syncResult": {"revision": "abc"}},
            "health": {"status": "Healthy"}}});
        let env = env(app);
        let deployed = Expression::compile("app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and app.status.health.status == 'Healthy'").unwrap();
        assert!(deployed.eval_bool(&env).unwrap());
        let once = Expression::compile("app.status.operationState?.syncResult?.revision").unwrap();
        assert_eq!(once.eval_key(&env).unwrap(), "abc");
        let deleted = Expression::compile("app.metadata.deletionTimestamp != nil").unwrap();
        assert!(!deleted.eval_bool(&env).unwrap());
    }

    #[test]
    fn argo_time_functions_are_rewritten_outside_strings() {
        assert_eq!(
            rewrite("time.Now().Sub(time.Parse(x)) and 'time.Now()' == y"),
            "now().Sub(date(x)) and 'time.Now()' == y"
        );
        assert_eq!(rewrite("mytime.Now()"), "mytime.Now()");
        let env = env(json!({"status": {"operationState": {"startedAt": "2020-01-01T00:00:00Z"}}}));
        let old = Expression::compile(
            "time.Now().Sub(time.Parse(app.status.operationState.startedAt)).Minutes() >= 5",
        )
        .unwrap();
        assert!(old.eval_bool(&env).unwrap());
    }

    #[test]
    fn errors_are_one_line_and_non_booleans_are_refused() {
        let err = Expression::compile("app.status ==").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        let e = Expression::compile("app.metadata").unwrap();
        assert!(e.eval_bool(&env(json!({"metadata": {}}))).is_err());
    }
}
