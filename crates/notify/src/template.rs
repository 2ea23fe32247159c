//! Templates: `template.<name>` in argocd-notifications-cm, each string field a Go template
//! (`gtmpl`) over `.app`, `.context`, `.recipient`, `.serviceType`, Tiphys's `.drift` and
//! `.pause`, and Argo's helper namespaces (`call .repo.RepoURLToHTTPS …`, `.repo`'s commit
//! metadata, `.sync.GetInfoItem`, `.strings`, `.time`), with the Sprig functions of
//! `tiphys-gotemplate`.

use std::collections::BTreeMap;

use gtmpl::{Func, FuncError, Value};

pub use crate::functions::commit_metadata;
use serde::Deserialize;

/// A template as written in the ConfigMap.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub email: Option<EmailSpec>,
    #[serde(default)]
    pub slack: Option<SlackSpec>,
    #[serde(default)]
    pub webhook: BTreeMap<String, WebhookSpec>,
    #[serde(default)]
    pub github: Option<GitHubSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmailSpec {
    #[serde(default)]
    pub subject: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlackSpec {
    #[serde(default)]
    pub attachments: String,
    #[serde(default)]
    pub blocks: String,
    #[serde(default)]
    pub grouping_key: String,
    #[serde(default)]
    pub notify_broadcast: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct WebhookSpec {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubSpec {
    #[serde(default)]
    #[serde(rename = "repoURLPath")]
    pub repo_url_path: String,
    #[serde(default)]
    pub revision_path: String,
    #[serde(default)]
    pub status: Option<GitHubStatusSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubStatusSpec {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub label: String,
    #[serde(default, rename = "targetURL")]
    pub target_url: String,
}

/// One compiled string field.
struct Field {
    source: String,
    template: gtmpl::Template,
}

/// A template, every field compiled.
pub struct Template {
    pub name: String,
    fields: BTreeMap<String, Field>,
    spec: TemplateSpec,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

/// What a template gives for one notification, every field rendered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notification {
    pub message: String,
    pub title: String,
    pub email_subject: String,
    pub slack_attachments: String,
    pub slack_blocks: String,
    pub slack_grouping_key: String,
    pub slack_notify_broadcast: bool,
    /// Per webhook service: method, path, body.
    pub webhook: BTreeMap<String, (String, String, String)>,
    pub github: Option<GitHubStatus>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitHubStatus {
    pub repo_url: String,
    pub revision: String,
    pub state: String,
    pub label: String,
    pub target_url: String,
}

impl Template {
    /// Compile every field; the error names the field (`webhook.<service>.body`, …).
    pub fn compile(name: &str, spec: TemplateSpec) -> Result<Template, String> {
        let mut sources: Vec<(String, String)> = vec![
            ("message".into(), spec.message.clone()),
            ("title".into(), spec.title.clone()),
        ];
        if let Some(email) = &spec.email {
            sources.push(("email.subject".into(), email.subject.clone()));
        }
        if let Some(slack) = &spec.slack {
            sources.push(("slack.attachments".into(), slack.attachments.clone()));
            sources.push(("slack.blocks".into(), slack.blocks.clone()));
            sources.push(("slack.groupingKey".into(), slack.grouping_key.clone()));
        }
        for (service, hook) in &spec.webhook {
            sources.push((format!("webhook.{service}.path"), hook.path.clone()));
            sources.push((format!("webhook.{service}.body"), hook.body.clone()));
        }
        if let Some(github) = &spec.github {
            sources.push(("github.repoURLPath".into(), github.repo_url_path.clone()));
            sources.push(("github.revisionPath".into(), github.revision_path.clone()));
            if let Some(status) = &github.status {
                sources.push(("github.status.state".into(), status.state.clone()));
                sources.push(("github.status.label".into(), status.label.clone()));
                sources.push(("github.status.targetURL".into(), status.target_url.clone()));
            }
        }
        let mut fields = BTreeMap::new();
        for (field, source) in sources {
            if source.is_empty() {
                continue;
            }
            let extra: Vec<(&str, Func)> = METHODS.iter().map(|(_, f, func)| (*f, *func)).collect();
            let template = tiphys_gotemplate::parse_with(&methods_as_functions(&source), &extra)
                .map_err(|e| format!("{field}: {e}"))?;
            fields.insert(field, Field { source, template });
        }
        Ok(Template {
            name: name.to_string(),
            fields,
            spec,
        })
    }

    /// Whether any field's text mentions `word`.
    pub fn mentions(&self, word: &str) -> bool {
        self.fields.values().any(|f| f.source.contains(word))
    }

    fn field(&self, field: &str, data: &gtmpl::Context) -> Result<String, String> {
        match self.fields.get(field) {
            Some(f) => f
                .template
                .render(data)
                .map_err(|e| format!("template {} {field} ({:?}): {e}", self.name, f.source)),
            None => Ok(String::new()),
        }
    }

    /// Render for one notification; `data` is the template's `.` as JSON.
    pub fn render(&self, data: &serde_json::Value) -> Result<Notification, String> {
        let mut value = tiphys_gotemplate::to_value(data);
        if let Value::Map(map) = &mut value {
            map.extend(helpers());
        }
        let data = gtmpl::Context::from(value);
        let mut out = Notification {
            message: self.field("message", &data)?,
            title: self.field("title", &data)?,
            email_subject: self.field("email.subject", &data)?,
            slack_attachments: self.field("slack.attachments", &data)?,
            slack_blocks: self.field("slack.blocks", &data)?,
            slack_grouping_key: self.field("slack.groupingKey", &data)?,
            slack_notify_broadcast: self.spec.slack.as_ref().is_some_and(|s| s.notify_broadcast),
            ..Notification::default()
        };
        for (service, hook) in &self.spec.webhook {
            let path = self.field(&format!("webhook.{service}.path"), &data)?;
            let body = self.field(&format!("webhook.{service}.body"), &data)?;
            // Unsaid, a request with a body is a POST.
            let method = if !hook.method.is_empty() {
                hook.method.to_uppercase()
            } else if body.is_empty() {
                "GET".to_string()
            } else {
                "POST".to_string()
            };

            out.webhook.insert(service.clone(), (method, path, body));
        }
        if self.spec.github.is_some() {
            // Argo's defaults: the app's repository and the synced revision.
            let or = |rendered: String, default: &str| {
                if rendered.is_empty() {
                    default.to_string()
                } else {
                    rendered
                }
            };
            let app = data_json_field(&data);
            out.github = Some(GitHubStatus {
                repo_url: or(self.field("github.repoURLPath", &data)?, &app.0),
                revision: or(self.field("github.revisionPath", &data)?, &app.1),
                state: self.field("github.status.state", &data)?,
                label: self.field("github.status.label", &data)?,
                target_url: self.field("github.status.targetURL", &data)?,
            });
        }
        Ok(out)
    }
}

/// The app's repository URL and synced revision (GitHub status defaults).
fn data_json_field(data: &gtmpl::Context) -> (String, String) {
    let mut t = gtmpl::Template::default();
    let text = "{{with .app.spec.source}}{{.repoURL}}{{end}}\n{{with .app.status.operationState}}{{with .syncResult}}{{.revision}}{{end}}{{end}}";
    if t.parse(text).is_err() {
        return Default::default();
    }
    let rendered = t.render(data).unwrap_or_default();
    let (repo, revision) = rendered.split_once('\n').unwrap_or((&rendered, ""));
    (repo.to_string(), revision.to_string())
}

fn strings(name: &str, args: &[Value], n: usize) -> Result<Vec<String>, FuncError> {
    if args.len() != n {
        return Err(FuncError::ExactlyXArgs(name.into(), n));
    }
    Ok(args.iter().map(tiphys_gotemplate::text).collect())
}

macro_rules! string_fn {
    ($name:ident, $go:literal, $n:literal, |$a:ident| $body:expr) => {
        fn $name(args: &[Value]) -> Result<Value, FuncError> {
            let $a = strings($go, args, $n)?;
            Ok(Value::from($body))
        }
    };
}

string_fn!(upper, "ToUpper", 1, |a| a[0].to_uppercase());
string_fn!(lower, "ToLower", 1, |a| a[0].to_lowercase());
string_fn!(go_replace_all, "ReplaceAll", 3, |a| a[0]
    .replace(&a[1], &a[2]));
string_fn!(repo_url_to_https, "RepoURLToHTTPS", 1, |a| {
    crate::repo_url::to_https(&a[0])
});
string_fn!(full_name_by_repo_url, "FullNameByRepoURL", 1, |a| {
    crate::repo_url::full_name(&a[0]).unwrap_or_default()
});

string_fn!(query_escape, "QueryEscape", 1, |a| {
    crate::functions::query_escape(&a[0])
});

fn get_commit_metadata(args: &[Value]) -> Result<Value, FuncError> {
    let [sha] = args else {
        return Err(FuncError::ExactlyXArgs("GetCommitMetadata".into(), 1));
    };
    crate::lent::commit(&tiphys_gotemplate::text(sha))
        .map(|m| tiphys_gotemplate::to_value(&m))
        .map_err(FuncError::Generic)
}

fn get_app_details(args: &[Value]) -> Result<Value, FuncError> {
    if !args.is_empty() {
        return Err(FuncError::ExactlyXArgs("GetAppDetails".into(), 0));
    }
    crate::lent::app_details()
        .map(|d| tiphys_gotemplate::to_value(&d))
        .map_err(FuncError::Generic)
}

/// Go templates call methods of the values Argo's functions return
/// (`(call .repo.GetAppDetails).Helm.GetParameterValueByName "image.tag"`); gtmpl has no
/// methods, so each is written as a function taking its receiver first.
const METHODS: &[(&str, &str, Func)] = &[
    (
        ".GetParameterValueByName",
        "tiphysHelmParameterValue",
        helm_parameter_value,
    ),
    (
        ".GetFileParameterPathByName",
        "tiphysHelmFileParameterPath",
        helm_file_parameter_path,
    ),
];

fn helm_parameter_value(args: &[Value]) -> Result<Value, FuncError> {
    helm_lookup(args, "GetParameterValueByName", "Parameters", "Value")
}

fn helm_file_parameter_path(args: &[Value]) -> Result<Value, FuncError> {
    helm_lookup(args, "GetFileParameterPathByName", "FileParameters", "Path")
}

/// `HELM.<method> NAME`: `field` of the entry of `list` named NAME.
fn helm_lookup(args: &[Value], method: &str, list: &str, field: &str) -> Result<Value, FuncError> {
    let [helm, name] = args else {
        return Err(FuncError::ExactlyXArgs(method.into(), 1));
    };
    let helm = tiphys_gotemplate::to_json_value(helm);
    let name = tiphys_gotemplate::text(name);
    Ok(Value::from(crate::functions::helm_parameter(
        &helm, list, field, &name,
    )))
}

/// `text` with every `RECEIVER.Method` of [`METHODS`] written `function RECEIVER`.
fn methods_as_functions(text: &str) -> String {
    let mut out = text.to_string();
    for (method, function, _) in METHODS {
        let mut from = 0;
        while let Some(found) = out[from..].find(method) {
            let at = from + found;
            let after = at + method.len();
            if out[after..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                from = after;
                continue; // a longer name
            }
            let start = crate::functions::receiver_start(&out[..at]);
            let rewritten = format!("{function} {}", &out[start..at]);
            out.replace_range(start..after, &rewritten);
            from = start + rewritten.len();
        }
    }
    out
}

/// Argo's `sync.GetInfoItem(app, name)`.
fn get_info_item(args: &[Value]) -> Result<Value, FuncError> {
    let [app, name] = args else {
        return Err(FuncError::ExactlyXArgs("GetInfoItem".into(), 2));
    };
    let app = tiphys_gotemplate::to_json_value(app);
    crate::functions::info_item(&app, &tiphys_gotemplate::text(name))
        .map(|v| tiphys_gotemplate::to_value(&v))
        .map_err(FuncError::Generic)
}

fn now(_: &[Value]) -> Result<Value, FuncError> {
    let now = jiff::Timestamp::now();
    let whole = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    Ok(Value::from(whole.to_string()))
}

fn identity(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args.first().cloned().unwrap_or(Value::Nil))
}

/// A namespace member as gtmpl sees it: reading `.repo.RepoURLToHTTPS` calls the stored
/// function with the namespace as its argument, so what is stored returns the real function,
/// which `call` then calls with the template's arguments (as Go's `call` does).
macro_rules! member {
    ($f:ident) => {{
        fn get(_: &[Value]) -> Result<Value, FuncError> {
            Ok(Value::from($f as Func))
        }
        get as Func
    }};
}

/// Argo's helper namespaces in the template data: `call .repo.RepoURLToHTTPS x`, ….
fn helpers() -> Vec<(String, Value)> {
    let namespace = |entries: &[(&str, Func)]| {
        Value::Map(
            entries
                .iter()
                .map(|(name, f)| (name.to_string(), Value::from(*f)))
                .collect(),
        )
    };
    vec![
        (
            "repo".into(),
            namespace(&[
                ("RepoURLToHTTPS", member!(repo_url_to_https)),
                ("FullNameByRepoURL", member!(full_name_by_repo_url)),
                ("QueryEscape", member!(query_escape)),
                ("GetCommitMetadata", member!(get_commit_metadata)),
                ("GetAppDetails", member!(get_app_details)),
            ]),
        ),
        (
            "sync".into(),
            namespace(&[("GetInfoItem", member!(get_info_item))]),
        ),
        (
            "strings".into(),
            namespace(&[
                ("ReplaceAll", member!(go_replace_all)),
                ("ToUpper", member!(upper)),
                ("ToLower", member!(lower)),
            ]),
        ),
        (
            "time".into(),
            namespace(&[("Now", member!(now)), ("Parse", member!(identity))]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(spec: &str, data: serde_json::Value) -> Result<Notification, String> {
        let spec: TemplateSpec = serde_saphyr::from_str(spec).unwrap();
        Template::compile("t", spec)?.render(&data)
    }

    #[test]
    fn go_template_conditions_ranges_and_functions() {
        let data = json!({"app": {"metadata": {"name": "guestbook"},
            "spec": {"source": {"repoURL": "git@github.com:org/repo.git"}},
            "status": {"health": {"status": "Degraded"}, "conditions": [{"type": "A"}, {"type": "B"}]}}});
        let n = render(
            r#"message: "{{if eq .app.status.health.status \"Healthy\"}}ok{{else}}{{.app.metadata.name | upper}} is {{.app.status.health.status}}{{end}}: {{range $i, $c := .app.status.conditions}}{{$i}}={{$c.type}} {{end}}{{call .repo.RepoURLToHTTPS .app.spec.source.repoURL}} {{.missing}}""#,
            data,
        )
        .unwrap();
        assert_eq!(
            n.message,
            "GUESTBOOK is Degraded: 0=A 1=B https://github.com/org/repo <no value>"
        );
    }

    #[test]
    fn webhook_bodies_per_service_and_github_defaults() {
        let data = json!({"app": {"metadata": {"name": "a"},
            "spec": {"source": {"repoURL": "https://github.com/org/repo.git"}},
            "status": {"operationState": {"syncResult": {"revision": "abc123"}}}}});
        let n = render(
            "webhook:\n  hook:\n    method: post\n    path: /apps/{{.app.metadata.name}}\n    body: '{\"app\": {{.app.metadata.name | toJson}}}'\ngithub:\n  status:\n    state: success\n    label: cd/{{.app.metadata.name}}\n",
            data,
        )
        .unwrap();
        assert_eq!(
            n.webhook["hook"],
            ("POST".into(), "/apps/a".into(), r#"{"app": "a"}"#.into())
        );
        let status = n.github.unwrap();
        assert_eq!(status.repo_url, "https://github.com/org/repo.git");
        assert_eq!(status.revision, "abc123");
        assert_eq!(status.label, "cd/a");
    }

    #[test]
    fn commit_metadata_info_items_and_query_escape() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let data = json!({"app": {"metadata": {"name": "a"},
            "status": {"sync": {"revision": sha}, "operationState": {"operation": {
                "info": [{"name": "reason", "value": "hotfix 42"}, {"name": "ticket", "value": "OPS-7"}]}}}}});
        let commits = json!({sha: commit_metadata(
            "Fix the thing\n\nLonger text", "Jane <jane@example.com>", "2026-12-01T10:00:00Z", &["v1.2".to_string()])});
        let spec: TemplateSpec = serde_saphyr::from_str(
            "message: '{{with call .repo.GetCommitMetadata .app.status.sync.revision}}{{.Author}} | {{.Date}} | {{index .Tags 0}}{{end}} | {{call .sync.GetInfoItem .app \"ticket\"}} | {{call .repo.QueryEscape \"a b&c/é\"}}'\n",
        )
        .unwrap();
        let template = Template::compile("t", spec).unwrap();
        let n = {
            let _loan = crate::lent::lend(&crate::lent::Lookups {
                commits,
                app_details: None,
            });
            template.render(&data).unwrap()
        };
        assert_eq!(
            n.message,
            "Jane <jane@example.com> | 2026-12-01T10:00:00Z | v1.2 | OPS-7 | a+b%26c%2F%C3%A9"
        );
        // What is not known is an error naming it, and nothing lent stays behind.
        let err = template.render(&data).unwrap_err();
        assert!(err.contains("not a revision of the application"), "{err}");
        let spec: TemplateSpec =
            serde_saphyr::from_str("message: '{{call .sync.GetInfoItem .app \"nope\"}}'\n")
                .unwrap();
        let err = Template::compile("t", spec)
            .unwrap()
            .render(&data)
            .unwrap_err();
        assert!(err.contains("no info item \"nope\""), "{err}");
    }

    #[test]
    fn app_details_and_their_methods() {
        let details = json!({"type": "Helm", "helm": {
            "parameters": [{"name": "image.tag", "value": "1.2"}],
            "fileParameters": [{"name": "cfg", "path": "files/c.txt"}]}});
        let spec: TemplateSpec = serde_saphyr::from_str(
            "message: '{{(call .repo.GetAppDetails).Helm.GetParameterValueByName \"image.tag\"}} {{with call .repo.GetAppDetails}}{{.Type}} {{.Helm.GetFileParameterPathByName \"cfg\"}} [{{.Helm.GetParameterValueByName \"nope\"}}]{{end}} {{$d := call .repo.GetAppDetails}}{{printf \"%s\" ($d.Helm.GetParameterValueByName \"image.tag\")}}'\n",
        )
        .unwrap();
        let template = Template::compile("t", spec).unwrap();
        let data = json!({"app": {"metadata": {"name": "a"}}});
        let lend = |details| {
            crate::lent::lend(&crate::lent::Lookups {
                commits: serde_json::Value::Null,
                app_details: details,
            })
        };
        {
            let _loan = lend(Some(Ok(details)));
            assert_eq!(
                template.render(&data).unwrap().message,
                "1.2 Helm files/c.txt [] 1.2"
            );
        }
        let _loan = lend(Some(
            Err("rendering r path \"p\": no such directory".into()),
        ));
        let err = template.render(&data).unwrap_err();
        assert!(err.contains("GetAppDetails: rendering r"), "{err}");
    }

    #[test]
    fn methods_are_rewritten_as_functions_of_their_receiver() {
        assert_eq!(
            methods_as_functions(
                "{{ (call .repo.GetAppDetails).Helm.GetParameterValueByName \"x\" }} {{$d.Helm.GetFileParameterPathByName \"y\"}} {{.GetParameterValueByNameX}}"
            ),
            "{{ tiphysHelmParameterValue (call .repo.GetAppDetails).Helm \"x\" }} {{tiphysHelmFileParameterPath $d.Helm \"y\"}} {{.GetParameterValueByNameX}}"
        );
    }

    #[test]
    fn syntax_errors_name_the_field() {
        let spec: TemplateSpec =
            serde_saphyr::from_str("message: ok\nemail:\n  subject: '{{if .x}}'\n").unwrap();
        let err = Template::compile("t", spec).unwrap_err();
        assert!(err.starts_with("email.subject"), "{err}");
    }
}
