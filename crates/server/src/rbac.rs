//! Argo CD's RBAC model, evaluated natively: `argocd-rbac-cm` (`policy.csv`, every
//! `policy.<name>.csv`, `policy.default`, `scopes`, `policy.matchMode`), the built-in
//! `role:readonly` and `role:admin`, and the roles of AppProjects (`proj:<project>:<role>`).
//!
//! The model is Argo CD's casbin model, fixed:
//!
//! ```text
//! request  r = sub, res, act, obj
//! policy   p = sub, res, act, obj, eft        (eft: allow, the default, or deny)
//! roles    g = _, _                            (users and groups to roles, roles to roles)
//! effect   some allow and no deny
//! matcher  g(r.sub, p.sub) && match(r.res, p.res) && match(r.act, p.act) && match(r.obj, p.obj)
//! ```
//!
//! where `match` is a glob (`tiphys_model::glob`: `*` crosses `/`, `?`, `[...]`, `{a,b}`) or,
//! with `policy.matchMode: regex`, an unanchored regular expression. Policies are read once
//! per policy set, and a subject's roles are resolved once per request, so checking every
//! Application of a large list costs a few glob matches each — a general casbin engine
//! evaluating the matcher per policy line measured 45 µs per check here.
//!
//! As in Argo CD, the default role (`policy.default`) is granted to every authenticated
//! subject in addition to their own policies, and a deny elsewhere does not take it away.

use std::collections::{BTreeSet, HashMap};

/// One `p` line, compiled.
#[derive(Debug, Clone)]
struct Rule {
    subject: String,
    resource: Pattern,
    action: Pattern,
    object: Pattern,
    allow: bool,
}

#[derive(Debug, Clone)]
enum Pattern {
    Any,
    /// A glob, matched by `tiphys_model::glob` (the same globs projects use).
    Glob(String),
    Regex(regex::Regex),
}

impl Pattern {
    fn compile(text: &str, regex_mode: bool) -> Result<Pattern, String> {
        if regex_mode {
            return regex::Regex::new(text)
                .map(Pattern::Regex)
                .map_err(|e| format!("invalid regular expression {text:?}: {e}"));
        }
        if text == "*" {
            return Ok(Pattern::Any);
        }
        Ok(Pattern::Glob(text.to_string()))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Glob(glob) => tiphys_model::glob::matches(glob, value),
            Pattern::Regex(re) => re.is_match(value),
        }
    }
}

/// The built-in roles, as Argo CD defines them.
const BUILTIN: &str = "\
p, role:readonly, applications, get, */*, allow
p, role:readonly, applicationsets, get, */*, allow
p, role:readonly, certificates, get, *, allow
p, role:readonly, clusters, get, *, allow
p, role:readonly, repositories, get, *, allow
p, role:readonly, write-repositories, get, *, allow
p, role:readonly, projects, get, *, allow
p, role:readonly, accounts, get, *, allow
p, role:readonly, gpgkeys, get, *, allow
p, role:readonly, logs, get, */*, allow
p, role:admin, applications, create, */*, allow
p, role:admin, applications, update, */*, allow
p, role:admin, applications, update/*, */*, allow
p, role:admin, applications, delete, */*, allow
p, role:admin, applications, delete/*, */*, allow
p, role:admin, applications, sync, */*, allow
p, role:admin, applications, override, */*, allow
p, role:admin, applications, action/*, */*, allow
p, role:admin, applicationsets, get, */*, allow
p, role:admin, applicationsets, create, */*, allow
p, role:admin, applicationsets, update, */*, allow
p, role:admin, applicationsets, delete, */*, allow
p, role:admin, certificates, create, *, allow
p, role:admin, certificates, update, *, allow
p, role:admin, certificates, delete, *, allow
p, role:admin, clusters, create, *, allow
p, role:admin, clusters, update, *, allow
p, role:admin, clusters, delete, *, allow
p, role:admin, repositories, create, *, allow
p, role:admin, repositories, update, *, allow
p, role:admin, repositories, delete, *, allow
p, role:admin, write-repositories, create, *, allow
p, role:admin, write-repositories, update, *, allow
p, role:admin, write-repositories, delete, *, allow
p, role:admin, projects, create, *, allow
p, role:admin, projects, update, *, allow
p, role:admin, projects, delete, *, allow
p, role:admin, accounts, update, *, allow
p, role:admin, gpgkeys, create, *, allow
p, role:admin, gpgkeys, delete, *, allow
p, role:admin, exec, create, */*, allow
g, role:admin, role:readonly
g, admin, role:admin
";

/// A compiled policy set: every rule, the role graph, the default role and the claims that
/// name a subject's groups.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    /// subject → the roles (and groups) it is a member of, directly.
    members_of: HashMap<String, Vec<String>>,
    pub default_role: String,
    /// Which token claims hold groups (`scopes`, default `[groups]`).
    pub scopes: Vec<String>,
}

/// A policy line that could not be read, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} line {line}: {message}")]
pub struct PolicyError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

/// What a policy set is made of.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    /// `argocd-rbac-cm` data.
    pub config: std::collections::BTreeMap<String, String>,
    /// Policy lines from AppProject roles (`p, proj:<p>:<r>, ...`, `g, <group>, proj:<p>:<r>`),
    /// each with the place it came from.
    pub projects: Vec<(String, String)>,
}

impl Policy {
    /// Build the policy of `sources`; lines that cannot be read are errors, never skipped.
    pub fn build(sources: &PolicySources) -> Result<Policy, PolicyError> {
        let regex_mode = sources.config.get("policy.matchMode").map(|m| m.trim()) == Some("regex");
        let mut policy = Policy {
            default_role: sources
                .config
                .get("policy.default")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            scopes: parse_scopes(sources.config.get("scopes").map(String::as_str)),
            ..Default::default()
        };
        policy.add_csv("builtin-policy.csv", BUILTIN, false)?;
        let mut csv_keys: Vec<&String> = sources
            .config
            .keys()
            .filter(|k| {
                k.as_str() == "policy.csv" || (k.starts_with("policy.") && k.ends_with(".csv"))
            })
            .collect();
        // policy.csv first, then the overlays by name, as Argo CD concatenates them.
        csv_keys.sort_by_key(|k| (k.as_str() != "policy.csv", k.to_string()));
        for key in csv_keys {
            policy.add_csv(
                &format!("argocd-rbac-cm {key}"),
                &sources.config[key],
                regex_mode,
            )?;
        }
        for (place, lines) in &sources.projects {
            policy.add_csv(place, lines, regex_mode)?;
        }
        Ok(policy)
    }

    fn add_csv(&mut self, source: &str, text: &str, regex_mode: bool) -> Result<(), PolicyError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| PolicyError {
                source_name: source.to_string(),
                line: index + 1,
                message,
            };
            let owned = csv_fields(line);
            let fields: Vec<&str> = owned.iter().map(String::as_str).collect();
            match fields.first().copied() {
                Some("p") => {
                    let (sub, res, act, obj, eft) = match fields.as_slice() {
                        [_, sub, res, act, obj] => (sub, res, act, obj, "allow"),
                        [_, sub, res, act, obj, eft] => (sub, res, act, obj, *eft),
                        _ => {
                            return Err(error(format!(
                                "a p line has 4 or 5 fields after p, found {}",
                                fields.len() - 1
                            )));
                        }
                    };
                    let allow = match eft {
                        "allow" | "" => true,
                        "deny" => false,
                        other => {
                            return Err(error(format!("effect {other:?} is not allow or deny")));
                        }
                    };
                    let compile = |t: &str| Pattern::compile(t, regex_mode).map_err(&error);
                    self.rules.push(Rule {
                        subject: sub.to_string(),
                        resource: compile(res)?,
                        action: compile(act)?,
                        object: compile(obj)?,
                        allow,
                    });
                }
                Some("g") => {
                    let [_, member, role] = fields.as_slice() else {
                        return Err(error(format!(
                            "a g line has 2 fields after g, found {}",
                            fields.len() - 1
                        )));
                    };
                    self.members_of
                        .entry(member.to_string())
                        .or_default()
                        .push(role.to_string());
                }
                Some(other) => {
                    return Err(error(format!("a line starts with p or g, not {other:?}")));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Every name `subjects` stand for: themselves and, transitively, their roles.
    fn expand(&self, subjects: &[String]) -> BTreeSet<String> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = subjects.to_vec();
        while let Some(s) = todo.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(roles) = self.members_of.get(&s) {
                todo.extend(roles.iter().cloned());
            }
        }
        seen
    }

    /// What a caller may do: its own subjects (user and groups) and the default role.
    pub fn grants(&self, subjects: &[String]) -> Grants<'_> {
        let own = self.expand(subjects);
        let default = if self.default_role.is_empty() {
            BTreeSet::new()
        } else {
            self.expand(std::slice::from_ref(&self.default_role))
        };
        let pick = |names: &BTreeSet<String>| -> Vec<&Rule> {
            self.rules
                .iter()
                .filter(|r| names.contains(&r.subject))
                .collect()
        };
        Grants {
            own: pick(&own),
            default: pick(&default),
        }
    }
}

/// The rules that apply to one caller, ready to answer many questions.
pub struct Grants<'a> {
    own: Vec<&'a Rule>,
    default: Vec<&'a Rule>,
}

impl Grants<'_> {
    /// May the caller do `action` on `resource` `object`?
    pub fn allows(&self, resource: &str, action: &str, object: &str) -> bool {
        decide(&self.default, resource, action, object)
            || decide(&self.own, resource, action, object)
    }
}

/// Some matching allow, and no matching deny.
fn decide(rules: &[&Rule], resource: &str, action: &str, object: &str) -> bool {
    let mut allowed = false;
    for rule in rules {
        if rule.resource.matches(resource)
            && rule.action.matches(action)
            && rule.object.matches(object)
        {
            if !rule.allow {
                return false;
            }
            allowed = true;
        }
    }
    allowed
}

/// The fields of a CSV line, trimmed; a field in double quotes may hold commas (`""` is a
/// quote), as casbin reads policy files.
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if current.trim().is_empty() => {
                current.clear();
                quoted = true;
            }
            ',' if !quoted => fields.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    fields.push(current.trim().to_string());
    fields
}

/// Whether a policy line of an AppProject role speaks only for that role and about that
/// project (`p, proj:<project>:<role>, <resource>, <action>, <project>/<object>[, effect]`):
/// a project's editor cannot grant rights elsewhere.
pub fn project_line_ok(project: &str, role: &str, line: &str) -> bool {
    let fields = csv_fields(line);
    fields.first().map(String::as_str) == Some("p")
        && fields.get(1).map(String::as_str) == Some(format!("proj:{project}:{role}").as_str())
        && fields
            .get(4)
            .is_some_and(|obj| obj.starts_with(&format!("{project}/")))
}

/// `scopes: '[groups, email]'` → the claim names; `[groups]` when unset.
fn parse_scopes(text: Option<&str>) -> Vec<String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return vec!["groups".into()];
    };
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(csv: &str, default: &str, mode: &str) -> Policy {
        let mut config = std::collections::BTreeMap::new();
        config.insert("policy.csv".to_string(), csv.to_string());
        config.insert("policy.default".to_string(), default.to_string());
        config.insert("policy.matchMode".to_string(), mode.to_string());
        Policy::build(&PolicySources {
            config,
            projects: Vec::new(),
        })
        .unwrap()
    }

    fn can(p: &Policy, who: &[&str], res: &str, act: &str, obj: &str) -> bool {
        let subjects: Vec<String> = who.iter().map(|s| s.to_string()).collect();
        p.grants(&subjects).allows(res, act, obj)
    }

    #[test]
    fn builtin_roles_and_the_admin_user() {
        let p = policy("", "", "glob");
        assert!(can(&p, &["admin"], "applications", "sync", "default/web"));
        assert!(can(
            &p,
            &["admin"],
            "applications",
            "delete/Pod",
            "default/web"
        ));
        assert!(!can(&p, &["alice"], "applications", "get", "default/web"));
        let p = policy("g, alice, role:readonly\n", "", "glob");
        assert!(can(&p, &["alice"], "applications", "get", "default/web"));
        assert!(can(&p, &["alice"], "clusters", "get", "https://k"));
        assert!(!can(&p, &["alice"], "applications", "sync", "default/web"));
    }

    #[test]
    fn groups_roles_deny_and_the_default_role() {
        let csv = "\
# developers read, CI syncs, platform admins everything
p, role:ci, applications, sync, */*, allow
p, role:ci, applications, get, */*, allow
p, role:payments, applications, *, payments/*, allow
p, role:payments, applications, delete, payments/prod-*, deny
g, my-org:platform, role:admin
g, ci-bot, role:ci
g, my-org:payments, role:payments
";
        let p = policy(csv, "role:readonly", "glob");
        // The default role: everyone reads.
        assert!(can(&p, &["dev"], "applications", "get", "shop/web"));
        assert!(!can(&p, &["dev"], "applications", "sync", "shop/web"));
        assert!(can(&p, &["ci-bot"], "applications", "sync", "shop/web"));
        assert!(!can(&p, &["ci-bot"], "applications", "delete", "shop/web"));
        assert!(can(
            &p,
            &["bob", "my-org:platform"],
            "projects",
            "delete",
            "x"
        ));
        // A team in one project; deny beats allow within its own rules.
        let team = ["carol", "my-org:payments"];
        assert!(can(
            &p,
            &team,
            "applications",
            "delete",
            "payments/staging-api"
        ));
        assert!(!can(
            &p,
            &team,
            "applications",
            "delete",
            "payments/prod-api"
        ));
        assert!(!can(&p, &team, "applications", "sync", "shop/web"));
        // ...but a deny does not take away what the default role grants.
        let p2 = policy(
            "p, mallory, applications, get, */*, deny\n",
            "role:readonly",
            "glob",
        );
        assert!(can(&p2, &["mallory"], "applications", "get", "a/b"));
    }

    #[test]
    fn globs_and_regular_expressions() {
        let p = policy(
            "p, u, applications, get, \"team-{a,b}/web-?\", allow\np, u, clusters, get, https://*.example.com, allow\n",
            "",
            "glob",
        );
        assert!(can(&p, &["u"], "applications", "get", "team-a/web-1"));
        assert!(!can(&p, &["u"], "applications", "get", "team-c/web-1"));
        assert!(!can(&p, &["u"], "applications", "get", "team-a/web-12"));
        assert!(can(
            &p,
            &["u"],
            "clusters",
            "get",
            "https://east.example.com"
        ));
        let r = policy(
            "p, u, applications, get, ^prod-[0-9]+/.*$, allow\n",
            "",
            "regex",
        );
        assert!(can(&r, &["u"], "applications", "get", "prod-12/web"));
        assert!(!can(&r, &["u"], "applications", "get", "staging/web"));
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let mut config = std::collections::BTreeMap::new();
        config.insert(
            "policy.csv".into(),
            "g, a, role:b\np, a, applications\n".into(),
        );
        let err = Policy::build(&PolicySources {
            config,
            projects: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("policy.csv line 2"), "{err}");
        assert_eq!(parse_scopes(Some("[groups, email]")), ["groups", "email"]);
        assert_eq!(parse_scopes(None), ["groups"]);
        assert_eq!(
            csv_fields(r#"p, a, "b, c", "say ""hi""""#),
            ["p", "a", "b, c", "say \"hi\""]
        );
    }

    #[test]
    fn project_roles_and_overlay_files() {
        let mut config = std::collections::BTreeMap::new();
        config.insert("policy.csv".into(), "g, alice, role:x\n".into());
        config.insert(
            "policy.overlay.csv".into(),
            "p, role:x, applications, get, */*, allow\n".into(),
        );
        let p = Policy::build(&PolicySources {
            config,
            projects: vec![(
                "AppProject team role deployer".into(),
                "p, proj:team:deployer, applications, sync, team/*, allow\ng, my-org:team, proj:team:deployer\n".into(),
            )],
        })
        .unwrap();
        assert!(can(&p, &["alice"], "applications", "get", "x/y"));
        assert!(can(
            &p,
            &["proj:team:deployer"],
            "applications",
            "sync",
            "team/web"
        ));
        assert!(can(
            &p,
            &["u", "my-org:team"],
            "applications",
            "sync",
            "team/web"
        ));
        assert!(!can(
            &p,
            &["u", "my-org:team"],
            "applications",
            "sync",
            "other/web"
        ));
    }
}
