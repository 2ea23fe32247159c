//! Checks on an Application's spec that a CRD schema cannot express, with errors that name
//! the field, as Argo CD reports them in an `InvalidSpecError` condition.

use crate::application::{Application, ApplicationSource};

/// One problem in a spec, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Known sync options and the values they take.
const SYNC_OPTIONS: &[(&str, &[&str])] = &[
    ("CreateNamespace", &["true", "false"]),
    ("PruneLast", &["true", "false"]),
    ("ApplyOutOfSyncOnly", &["true", "false"]),
    ("ServerSideApply", &["true", "false"]),
    ("Replace", &["true", "false"]),
    ("Validate", &["true", "false"]),
    ("RespectIgnoreDifferences", &["true", "false"]),
    ("FailOnSharedResource", &["true", "false"]),
    (
        "PrunePropagationPolicy",
        &["foreground", "background", "orphan"],
    ),
    ("Prune", &["true", "false", "confirm"]),
    ("Delete", &["true", "false", "confirm"]),
    ("SkipDryRunOnMissingResource", &["true", "false"]),
    ("ClientSideApplyMigration", &["true", "false"]),
    ("Force", &["true", "false"]),
];

pub fn validate_sync_option(option: &str) -> Result<(), String> {
    let Some((key, value)) = option.split_once('=') else {
        return Err(format!("{option:?} is not of the form Key=Value"));
    };
    match SYNC_OPTIONS.iter().find(|(k, _)| *k == key) {
        None => Err(format!("unknown sync option {key:?}")),
        Some((_, allowed)) if !allowed.contains(&value) => Err(format!(
            "{key} must be one of {}, not {value:?}",
            allowed.join(", ")
        )),
        Some(_) => Ok(()),
    }
}

/// A Go-style duration as Argo CD's retry backoff takes it (`5s`, `3m`, `1h30m`).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    (any && number.is_empty()).then(|| std::time::Duration::from_secs_f64(total))
}

fn check_source(source: &ApplicationSource, at: &str, out: &mut Vec<FieldError>) {
    if source.repo_url.trim().is_empty() {
        out.push(err(format!("{at}.repoURL"), "is required"));
    }
    if !source.chart.is_empty() && !source.path.is_empty() {
        out.push(err(
            format!("{at}.chart"),
            "chart and path are mutually exclusive",
        ));
    }
    if source.path.split('/').any(|seg| seg == "..") {
        out.push(err(
            format!("{at}.path"),
            format!("{:?} must not leave the repository", source.path),
        ));
    }
    if source.path.starts_with('/') {
        out.push(err(
            format!("{at}.path"),
            format!("{:?} must be relative to the repository root", source.path),
        ));
    }
}

/// Every problem found, empty when the spec is valid.
pub fn application(app: &Application) -> Vec<FieldError> {
    let mut out = Vec::new();
    let spec = &app.spec;
    match (&spec.source, spec.sources.is_empty()) {
        (None, true) => out.push(err(
            "spec.source",
            "one of spec.source or spec.sources is required",
        )),
        (Some(s), true) => check_source(s, "spec.source", &mut out),
        (_, false) => {
            let mut refs = std::collections::BTreeSet::new();
            for (i, s) in spec.sources.iter().enumerate() {
                check_source(s, &format!("spec.sources[{i}]"), &mut out);
                if s.reference.is_empty() {
                    continue;
                }
                if !s.chart.is_empty() {
                    out.push(err(
                        format!("spec.sources[{i}].ref"),
                        "a chart source cannot be a ref (it has no tree to lend)",
                    ));
                }
                if !refs.insert(s.reference.as_str()) {
                    out.push(err(
                        format!("spec.sources[{i}].ref"),
                        format!("{:?} names two sources", s.reference),
                    ));
                }
            }
        }
    }
    let d = &spec.destination;
    match (d.server.is_empty(), d.name.is_empty()) {
        (true, true) => out.push(err("spec.destination", "one of server or name is required")),
        (false, false) => out.push(err(
            "spec.destination",
            "server and name are mutually exclusive",
        )),
        _ => {}
    }
    if let Some(policy) = &spec.sync_policy {
        for (i, option) in policy.sync_options.iter().enumerate() {
            if let Err(e) = validate_sync_option(option) {
                out.push(err(format!("spec.syncPolicy.syncOptions[{i}]"), e));
            }
        }
        if let Some(backoff) = policy.retry.as_ref().and_then(|r| r.backoff.as_ref()) {
            for (field, value) in [
                ("duration", &backoff.duration),
                ("maxDuration", &backoff.max_duration),
            ] {
                if !value.is_empty() && parse_duration(value).is_none() {
                    out.push(err(
                        format!("spec.syncPolicy.retry.backoff.{field}"),
                        format!("{value:?} is not a duration"),
                    ));
                }
            }
        }
    }
    for (i, ignore) in spec.ignore_differences.iter().enumerate() {
        if ignore.kind.is_empty() {
            out.push(err(
                format!("spec.ignoreDifferences[{i}].kind"),
                "is required",
            ));
        }
        for (j, pointer) in ignore.json_pointers.iter().enumerate() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                out.push(err(
                    format!("spec.ignoreDifferences[{i}].jsonPointers[{j}]"),
                    format!("{pointer:?} is not a JSON pointer"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("3m"), Some(Duration::from_secs(180)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn sync_options() {
        assert!(validate_sync_option("CreateNamespace=true").is_ok());
        assert!(validate_sync_option("PrunePropagationPolicy=orphan").is_ok());
        assert!(validate_sync_option("CreateNamespace").is_err());
        assert!(validate_sync_option("Bogus=true").is_err());
        assert!(validate_sync_option("Prune=maybe").is_err());
    }

    #[test]
    fn refs_name_one_git_source_each() {
        let app = crate::Application::from_yaml(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  destination: {server: https://kubernetes.default.svc}\n  sources:\n  - {repoURL: https://charts.example.com, chart: web, ref: values}\n  - {repoURL: https://git.example.com/a, ref: values}\n",
            "app.yaml",
        )
        .unwrap();
        let problems: Vec<String> = application(&app).iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("spec.sources[0].ref"), "{problems:?}");
        assert!(problems[1].contains("names two sources"), "{problems:?}");
    }
}
