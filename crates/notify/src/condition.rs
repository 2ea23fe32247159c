//! Trigger conditions: Argo CD writes `when` and `oncePer` in the expr language
//! (expr-lang.org), evaluated here by `expr-lang`. Argo adds namespaces of Go functions
//! (`time.Now()`, `time.Parse(s)`, `strings.ToUpper(s)`, …); expr-lang spells the same
//! builtins without a namespace, so a condition is rewritten to them before it is compiled.

use ::expr::{Context, ContextProvider, Environment, Program, Value};

/// A compiled expression, with its source for messages.
pub struct Expression {
    pub source: String,
    program: Program,
    /// The same expression with each `app.a.b` chain read as one variable, when it has such
    /// chains and uses `app` no other way: the engine copies what every member access passes
    /// through, so walking the chain here saves copying the app at each step.
    flat: Option<Flat>,
}

/// A member chain below `app`: its keys, each with whether it was reached with `?.`.
type Chain = Vec<(String, bool)>;

struct Flat {
    program: Program,
    /// Variable `tiphys_app_<i>` is chain `i`.
    chains: Vec<Chain>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Argo's function namespaces, as expr-lang's builtins or the functions of [`ENVIRONMENT`].
const REWRITES: &[(&str, &str)] = &[
    ("time.Now(", "now("),
    ("time.Parse(", "date("),
    ("strings.ReplaceAll(", "replace("),
    ("strings.ToUpper(", "upper("),
    ("strings.ToLower(", "lower("),
    ("strings.TrimSpace(", "trim("),
    ("repo.RepoURLToHTTPS(", "tiphys_repo_url_to_https("),
    ("repo.FullNameByRepoURL(", "tiphys_full_name_by_repo_url("),
    ("repo.QueryEscape(", "tiphys_query_escape("),
    ("repo.GetCommitMetadata(", "tiphys_get_commit_metadata("),
    ("repo.GetAppDetails(", "tiphys_get_app_details("),
    ("sync.GetInfoItem(", "tiphys_get_info_item("),
];

/// Methods of what Argo's functions return (expr-lang has methods only for dates): written
/// as a call of a function taking the receiver first.
const METHODS: &[(&str, &str)] = &[
    (".GetParameterValueByName(", "tiphys_helm_parameter_value("),
    (
        ".GetFileParameterPathByName(",
        "tiphys_helm_file_parameter_path(",
    ),
];

/// Stands for a method call while the source is rewritten (never in a condition's text
/// outside a string: it is a control character).
const METHOD_MARK: char = '\u{1}';

/// expr-lang's builtins and Argo's functions.
static ENVIRONMENT: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
    let mut env = Environment::new();
    let strings = |name: &str, args: &[Value], n: usize| -> ::expr::Result<Vec<String>> {
        if args.len() != n {
            return Err(::expr::Error::ExprError(format!(
                "{name} takes {n} argument(s), not {}",
                args.len()
            )));
        }
        Ok(args
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect())
    };
    let failed = |e: String| ::expr::Error::ExprError(e);
    env.add_function("tiphys_repo_url_to_https", move |c| {
        let a = strings("repo.RepoURLToHTTPS", &c.args, 1)?;
        Ok(Value::String(crate::repo_url::to_https(&a[0])))
    });
    env.add_function("tiphys_full_name_by_repo_url", move |c| {
        let a = strings("repo.FullNameByRepoURL", &c.args, 1)?;
        Ok(Value::String(
            crate::repo_url::full_name(&a[0]).unwrap_or_default(),
        ))
    });
    env.add_function("tiphys_query_escape", move |c| {
        let a = strings("repo.QueryEscape", &c.args, 1)?;
        Ok(Value::String(crate::functions::query_escape(&a[0])))
    });
    env.add_function("tiphys_get_commit_metadata", move |c| {
        let a = strings("repo.GetCommitMetadata", &c.args, 1)?;
        crate::lent::commit(&a[0])
            .map(|m| from_json(&m))
            .map_err(failed)
    });
    env.add_function("tiphys_get_app_details", move |c| {
        strings("repo.GetAppDetails", &c.args, 0)?;
        crate::lent::app_details()
            .map(|d| from_json(&d))
            .map_err(failed)
    });
    env.add_function("tiphys_get_info_item", move |c| {
        let [app, Value::String(name)] = c.args.as_slice() else {
            return Err(failed(
                "sync.GetInfoItem takes the app and an item name".into(),
            ));
        };
        crate::functions::info_item(&to_json(app), name)
            .map(|v| from_json(&v))
            .map_err(failed)
    });
    for (name, list, field) in [
        ("tiphys_helm_parameter_value", "Parameters", "Value"),
        ("tiphys_helm_file_parameter_path", "FileParameters", "Path"),
    ] {
        env.add_function(name, move |c| {
            let [helm, Value::String(wanted)] = c.args.as_slice() else {
                return Err(failed(format!("{name}: takes one parameter name")));
            };
            Ok(Value::String(crate::functions::helm_parameter(
                &to_json(helm),
                list,
                field,
                wanted,
            )))
        });
    }
    env
});

/// A copy of `source` with string literals kept as they are; outside them, `replace` is asked
/// at each character (with the rest of the source and what was written so far) and may
/// answer with text to write instead of that many bytes.
fn outside_strings(
    source: &str,
    mut replace: impl FnMut(&str, &str) -> Option<(String, usize)>,
) -> String {
    let mut out = String::with_capacity(source.len());
    let mut quote: Option<char> = None;
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
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
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None => {
                if let Some((text, used)) = replace(rest, &out) {
                    out.push_str(&text);
                    rest = &rest[used..];
                    continue;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `source` with Argo's namespaced functions renamed and its methods written as functions
/// (`x.M(a)` → `f(x, a)`), string literals left alone.
fn rewrite(source: &str) -> String {
    if source.contains(METHOD_MARK) {
        // Not a condition anyone writes; left as it is, the engine refuses it.
        return source.to_string();
    }
    let marked = outside_strings(source, |rest, out| {
        if let Some(i) = METHODS.iter().position(|(argo, _)| rest.starts_with(argo)) {
            return Some((format!("{METHOD_MARK}{i}("), METHODS[i].0.len()));
        }
        let boundary = !out
            .chars()
            .last()
            .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.');
        REWRITES
            .iter()
            .find(|(argo, _)| boundary && rest.starts_with(argo))
            .map(|(argo, ours)| (ours.to_string(), argo.len()))
    });
    let mut out = marked;
    while let Some(at) = out.find(METHOD_MARK) {
        let start = crate::functions::receiver_start(&out[..at]);
        let index = out[at + 1..at + 2].parse::<usize>().unwrap_or_default();
        let function = METHODS[index].1;
        // `RECEIVER<mark>i(` → `function(RECEIVER, `; a call with no arguments loses the comma.
        let after = at + 3;
        let no_args = out[after..].trim_start().starts_with(')');
        let separator = if no_args { "" } else { ", " };
        let call = format!("{function}{}{separator}", &out[start..at]);
        out.replace_range(start..after, &call);
    }
    out
}

impl Expression {
    /// Compile `source`; the error is the parser's, on one line.
    pub fn compile(source: &str) -> Result<Expression, String> {
        let rewritten = rewrite(source);
        let program = ::expr::compile(&rewritten).map_err(|e| one_line(&e.to_string()))?;
        let flat = flatten(&rewritten).and_then(|(text, chains)| {
            Some(Flat {
                program: ::expr::compile(&text).ok()?,
                chains,
            })
        });
        Ok(Expression {
            source: source.to_string(),
            program,
            flat,
        })
    }

    pub fn eval(&self, env: &Env) -> Result<Value, String> {
        if let (Some(flat), Some(app)) = (&self.flat, &env.app) {
            // A chain the engine would refuse (a member of nil without `?.`) is left to the
            // engine, so the error reads the same.
            let chains: Option<Vec<Value>> = flat.chains.iter().map(|c| walk(app, c)).collect();
            if let Some(chains) = chains {
                let mut values = Context::default();
                for (i, value) in chains.into_iter().enumerate() {
                    values.insert(format!("{FLAT_PREFIX}{i}"), value);
                }
                let layered = Layered {
                    values,
                    parent: &env.vars,
                };
                return ENVIRONMENT
                    .run(&flat.program, &layered)
                    .map_err(|e| one_line(&e.to_string()));
            }
        }
        ENVIRONMENT
            .run(&self.program, &env.vars)
            .map_err(|e| one_line(&e.to_string()))
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
pub struct Env {
    vars: Context,
    /// `app` as JSON, for chains walked outside the engine.
    app: Option<serde_json::Value>,
}

impl Env {
    pub fn insert(&mut self, name: &str, value: &serde_json::Value) {
        if name == "app" {
            self.app = Some(value.clone());
        }
        self.vars.insert(name.to_string(), from_json(value));
    }
}

const FLAT_PREFIX: &str = "tiphys_app_";

/// `source` with every `app.a?.b` chain outside string literals replaced by a variable, and
/// the chains; none when `app` is used otherwise (alone, indexed) or has no chain at all.
fn flatten(source: &str) -> Option<(String, Vec<Chain>)> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut chains = Vec::new();
    let mut whole = false;
    let text = outside_strings(source, |rest, out| {
        if !rest.starts_with("app")
            || out.chars().last().is_some_and(|p| word(p) || p == '.')
            || rest[3..].chars().next().is_some_and(word)
        {
            return None;
        }
        let mut steps = Vec::new();
        let mut at = 3;
        loop {
            let tail = &rest[at..];
            let (skip, optional) = if tail.starts_with("?.") {
                (2, true)
            } else if tail.starts_with('.') {
                (1, false)
            } else {
                break;
            };
            let len: usize = tail[skip..]
                .chars()
                .take_while(|c| word(*c))
                .map(char::len_utf8)
                .sum();
            // `.Name(` is a method call on the value, not a member.
            if len == 0 || tail[skip + len..].starts_with('(') {
                break;
            }
            steps.push((tail[skip..skip + len].to_string(), optional));
            at += skip + len;
        }
        if steps.is_empty() {
            whole = true;
            return None;
        }
        chains.push(steps);
        Some((format!("{FLAT_PREFIX}{}", chains.len() - 1), at))
    });
    (!whole && !chains.is_empty()).then_some((text, chains))
}

/// The value at the end of `chain` in `app`, as the engine's member accesses would give it;
/// none where the engine would fail (a member of a non-map without `?.`).
fn walk(app: &serde_json::Value, chain: &Chain) -> Option<Value> {
    let mut at = Some(app);
    for (key, optional) in chain {
        at = match at {
            Some(serde_json::Value::Object(map)) => map.get(key),
            _ if *optional => None,
            _ => return None,
        };
    }
    Some(at.map_or(Value::Nil, from_json))
}

/// The chain variables of one evaluation over the environment's own.
struct Layered<'a> {
    values: Context,
    parent: &'a Context,
}

impl ContextProvider for Layered<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).or_else(|| self.parent.get(key))
    }

    fn to_context(&self) -> Context {
        let mut context = self.parent.clone();
        for i in 0.. {
            let key = format!("{FLAT_PREFIX}{i}");
            let Some(value) = self.values.get(&key) else {
                break;
            };
            context.insert(key, value.clone());
        }
        context
    }
}

/// A value of the engine as JSON (dates and durations as their text).
fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items.iter().map(to_json).collect(),
        Value::Map(map) => map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
        other => other.to_string().into(),
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
    fn app_chains_are_read_outside_the_engine_with_its_answers() {
        let (text, chains) = flatten(
            "app.status.health.status == 'app.x' and app?.status?.sync?.status in ['Synced'] and len(app.metadata.name) > 0",
        )
        .unwrap();
        assert_eq!(
            text,
            "tiphys_app_0 == 'app.x' and tiphys_app_1 in ['Synced'] and len(tiphys_app_2) > 0"
        );
        assert_eq!(chains[1][0], ("status".to_string(), true));
        // `app` on its own, a method call, another name ending in app: not flattened.
        assert!(flatten("app != nil").is_none());
        assert_eq!(
            flatten("myapp.x == 1 and app.status.startedAt.Sub(y) > 0")
                .unwrap()
                .0,
            "myapp.x == 1 and tiphys_app_0.Sub(y) > 0"
        );
        // Same answers as the engine on the whole app, errors included.
        let app = json!({"metadata": {"name": "a"}, "status": {"health": {"status": "Healthy"}}});
        let flat = env(app.clone());
        for source in [
            "app.status.health.status == 'Healthy'",
            "app.status.operationState == nil",
            "app.status.operationState?.phase == nil",
            "app.status.operationState.phase == nil",
            "app.status.operationState?.syncResult.revision == nil",
            "app.metadata.name + '!' == 'a!'",
        ] {
            let e = Expression::compile(source).unwrap();
            assert!(e.flat.is_some(), "{source}");
            let whole = ::expr::run(&e.program, &flat.vars).map(|v| v.to_string());
            let fast = e.eval(&flat).map(|v| v.to_string());
            assert_eq!(
                whole.is_ok(),
                fast.is_ok(),
                "{source}: {whole:?} vs {fast:?}"
            );
            if let Ok(v) = whole {
                assert_eq!(Ok(v), fast, "{source}");
            }
        }
    }

    #[test]
    fn argo_time_functions_are_rewritten_outside_strings() {
        assert_eq!(
            rewrite("time.Now().Sub(time.Parse(x)) and 'time.Now()' == y"),
            "now().Sub(date(x)) and 'time.Now()' == y"
        );
        assert_eq!(rewrite("mytime.Now()"), "mytime.Now()");
        assert!(Expression::compile("x\u{1}é.GetParameterValueByName('a')").is_err());
        assert_eq!(
            rewrite(
                "a and repo.GetAppDetails().Helm.GetParameterValueByName('x.GetParameterValueByName(') == 'y'"
            ),
            "a and tiphys_helm_parameter_value(tiphys_get_app_details().Helm, 'x.GetParameterValueByName(') == 'y'"
        );
        let env = env(json!({"status": {"operationState": {"startedAt": "2020-01-01T00:00:00Z"}}}));
        let old = Expression::compile(
            "time.Now().Sub(time.Parse(app.status.operationState.startedAt)).Minutes() >= 5",
        )
        .unwrap();
        assert!(old.eval_bool(&env).unwrap());
    }

    #[test]
    fn argo_repo_and_sync_functions_work_in_conditions() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let env = env(json!({
            "spec": {"source": {"repoURL": "git@github.com:org/repo.git"}},
            "status": {"sync": {"revision": sha}, "operationState": {"operation": {
                "info": [{"name": "ticket", "value": "OPS-7"}]}}}}));
        let lookups = crate::lent::Lookups {
            commits: json!({sha: crate::functions::commit_metadata(
                "deploy: shop 1.2", "Jane <j@example.com>", "2026-12-01T10:00:00Z", &[])}),
            app_details: Some(Ok(json!({"type": "Helm", "helm": {
                "parameters": [{"name": "image.tag", "value": "1.2"}],
                "fileParameters": [{"name": "cfg", "path": "c.txt"}]}}))),
        };
        let _loan = crate::lent::lend(&lookups);
        for source in [
            "repo.GetCommitMetadata(app.status.sync.revision).Message startsWith 'deploy:'",
            "repo.GetAppDetails().Helm.GetParameterValueByName('image.tag') == '1.2'",
            "repo.GetAppDetails().Type == 'Helm' and repo.GetAppDetails().Helm.GetFileParameterPathByName('cfg') == 'c.txt'",
            "repo.GetAppDetails().Helm.GetParameterValueByName('nope') == ''",
            "sync.GetInfoItem(app, 'ticket') == 'OPS-7'",
            "repo.RepoURLToHTTPS(app.spec.source.repoURL) == 'https://github.com/org/repo'",
            "repo.FullNameByRepoURL(app.spec.source.repoURL) == 'org/repo'",
            "repo.QueryEscape('a b') == 'a+b'",
        ] {
            let e = Expression::compile(source).unwrap_or_else(|e| panic!("{source}: {e}"));
            assert_eq!(e.eval_bool(&env), Ok(true), "{source}");
        }
        let unknown = Expression::compile("repo.GetCommitMetadata('abc').Message == ''").unwrap();
        assert!(unknown.eval_bool(&env).unwrap_err().contains("\"abc\""));
        let missing = Expression::compile("sync.GetInfoItem(app, 'nope') == ''").unwrap();
        assert!(missing.eval_bool(&env).unwrap_err().contains("nope"));
    }

    #[test]
    fn errors_are_one_line_and_non_booleans_are_refused() {
        let err = Expression::compile("app.status ==").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        let e = Expression::compile("app.metadata").unwrap();
        assert!(e.eval_bool(&env(json!({"metadata": {}}))).is_err());
    }
}
