//! Git push webhooks (GitHub, GitLab, Bitbucket Cloud) and the HTTP endpoint serving them with
//! `/metrics` and `/healthz`.
//!
//! A push is validated with the secret argocd-secret holds (`webhook.github.secret`: HMAC-SHA256
//! signature; `webhook.gitlab.secret`: token header; `webhook.bitbucket.uuid`: hook UUID), then
//! exactly the apps whose source repository matches and whose target revision is the pushed
//! branch or tag (or HEAD, for the default branch) are refreshed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tiphys_source::normalize;

use crate::Controller;

/// What a push event says.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Push {
    pub repo_urls: Vec<String>,
    /// Branch or tag name (without `refs/heads/` or `refs/tags/`).
    pub revision: String,
    pub default_branch: Option<String>,
    pub changed_files: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("unknown webhook event (no GitHub, GitLab or Bitbucket event header)")]
    UnknownEvent,
    #[error("webhook secret mismatch")]
    Unauthorized,
    #[error("invalid payload: {0}")]
    Payload(String),
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison, so a signature cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn strip_ref(r: &str) -> String {
    r.strip_prefix("refs/heads/")
        .or_else(|| r.strip_prefix("refs/tags/"))
        .unwrap_or(r)
        .to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn changed_files(commits: Option<&Value>) -> Vec<String> {
    let mut files = Vec::new();
    for commit in commits.and_then(Value::as_array).into_iter().flatten() {
        for field in ["added", "modified", "removed"] {
            files.extend(strings(commit.get(field)));
        }
    }
    files
}

/// Validate and parse a push. `secrets` is argocd-secret's data.
pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &BTreeMap<String, String>,
) -> Result<Option<Push>, WebhookError> {
    let json =
        || serde_json::from_slice::<Value>(body).map_err(|e| WebhookError::Payload(e.to_string()));
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    if let Some(event) = header(headers, "x-github-event") {
        if let Some(secret) = secrets
            .get("webhook.github.secret")
            .filter(|s| !s.is_empty())
        {
            let signature =
                header(headers, "x-hub-signature-256").and_then(|s| s.strip_prefix("sha256="));
            let expected = hex(&hmac_sha256(secret.as_bytes(), body));
            if !signature.is_some_and(|sig| same(sig.as_bytes(), expected.as_bytes())) {
                return Err(WebhookError::Unauthorized);
            }
        }
        if event != "push" {
            return Ok(None);
        }
        let v = json()?;
        let repo_urls = [
            "/repository/html_url",
            "/repository/clone_url",
            "/repository/ssh_url",
            "/repository/git_url",
        ]
        .iter()
        .filter_map(|p| s(&v, p))
        .collect();
        return Ok(Some(Push {
            repo_urls,
            revision: strip_ref(&s(&v, "/ref").unwrap_or_default()),
            default_branch: s(&v, "/repository/default_branch"),
            changed_files: changed_files(v.get("commits")),
        }));
    }
    if let Some(event) = header(headers, "x-gitlab-event") {
        if let Some(secret) = secrets
            .get("webhook.gitlab.secret")
            .filter(|s| !s.is_empty())
            && !header(headers, "x-gitlab-token")
                .is_some_and(|t| same(t.as_bytes(), secret.as_bytes()))
        {
            return Err(WebhookError::Unauthorized);
        }
        if event != "Push Hook" && event != "Tag Push Hook" {
            return Ok(None);
        }
        let v = json()?;
        let repo_urls = [
            "/project/web_url",
            "/project/git_http_url",
            "/project/git_ssh_url",
            "/repository/homepage",
        ]
        .iter()
        .filter_map(|p| s(&v, p))
        .collect();
        return Ok(Some(Push {
            repo_urls,
            revision: strip_ref(&s(&v, "/ref").unwrap_or_default()),
            default_branch: s(&v, "/project/default_branch"),
            changed_files: changed_files(v.get("commits")),
        }));
    }
    if let Some(event) = header(headers, "x-event-key") {
        if let Some(uuid) = secrets
            .get("webhook.bitbucket.uuid")
            .filter(|s| !s.is_empty())
            && !header(headers, "x-hook-uuid").is_some_and(|t| same(t.as_bytes(), uuid.as_bytes()))
        {
            return Err(WebhookError::Unauthorized);
        }
        if event != "repo:push" {
            return Ok(None);
        }
        let v = json()?;
        let mut repo_urls: Vec<String> = s(&v, "/repository/links/html/href").into_iter().collect();
        if let Some(full_name) = s(&v, "/repository/full_name") {
            repo_urls.push(format!("https://bitbucket.org/{full_name}"));
            repo_urls.push(format!("git@bitbucket.org:{full_name}.git"));
        }
        let revision = v
            .pointer("/push/changes/0/new/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(Some(Push {
            repo_urls,
            revision,
            default_branch: s(&v, "/repository/mainbranch/name"),
            changed_files: Vec::new(),
        }));
    }
    Err(WebhookError::UnknownEvent)
}

/// A repository URL reduced to host and path: the HTTPS and SSH URLs of one repository agree.
fn host_and_path(url: &str) -> String {
    let normalized = normalize(url);
    let rest = normalized
        .split_once("://")
        .map_or(normalized.as_str(), |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split_once(':').map_or(host, |(h, _)| h);
    format!("{host}/{path}")
}

/// Whether a push to `push` affects an app source at `repo_url`/`target_revision`.
pub fn matches(push: &Push, repo_url: &str, target_revision: &str) -> bool {
    let repo = host_and_path(repo_url);
    if !push.repo_urls.iter().any(|u| host_and_path(u) == repo) {
        return false;
    }
    let target = strip_ref(target_revision);
    match target.as_str() {
        "" | "HEAD" => push
            .default_branch
            .as_deref()
            .is_none_or(|d| d == push.revision),
        other => other == push.revision,
    }
}

/// The apps a push refreshes (honouring `manifest-generate-paths` when the event lists files).
pub fn affected(controller: &Controller, push: &Push) -> Vec<String> {
    affected_among(&controller.applications(), push)
}

/// The apps of `apps` a push refreshes (shared with the API server's webhook).
pub fn affected_among(apps: &[Arc<tiphys_model::Application>], push: &Push) -> Vec<String> {
    apps.iter()
        .filter(|app| {
            app.sources().iter().any(|s| {
                if !matches(push, &s.repo_url, &s.target_revision) {
                    return false;
                }
                let paths = app
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("argocd.argoproj.io/manifest-generate-paths"));
                match paths {
                    Some(paths) if !push.changed_files.is_empty() => {
                        let wanted = tiphys_render::generate_paths(paths, &s.path);
                        push.changed_files.iter().any(|f| {
                            wanted.iter().any(|w| {
                                w.is_empty()
                                    || f == w
                                    || f.starts_with(&format!("{}/", w.trim_end_matches('/')))
                            })
                        })
                    }
                    _ => true,
                }
            })
        })
        .filter_map(|a| a.metadata.name.clone())
        .collect()
}

async fn argocd_secret(controller: &Controller) -> BTreeMap<String, String> {
    let api: kube::Api<Secret> =
        kube::Api::namespaced(controller.client.clone(), &controller.settings.namespace);
    let Ok(Some(secret)) = api.get_opt(crate::settings::ARGOCD_SECRET).await else {
        return BTreeMap::new();
    };
    secret
        .data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

async fn webhook(
    State(controller): State<Arc<Controller>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let secrets = argocd_secret(&controller).await;
    match parse(&headers, &body, &secrets) {
        Ok(Some(push)) => {
            let apps = affected(&controller, &push);
            tracing::info!(revision = %push.revision, repos = ?push.repo_urls, apps = ?apps, "push webhook");
            for app in &apps {
                controller.refresh(app, false);
            }
            (
                StatusCode::OK,
                format!("refreshing {} application(s)\n", apps.len()),
            )
        }
        Ok(None) => (StatusCode::OK, "event ignored\n".into()),
        Err(WebhookError::Unauthorized) => {
            (StatusCode::UNAUTHORIZED, "webhook secret mismatch\n".into())
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

async fn metrics(
    State(controller): State<Arc<Controller>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let live: usize = controller
        .clusters
        .all()
        .iter()
        .map(|c| c.cache.len())
        .sum();
    let text = controller.metrics.render(
        &controller.applications(),
        live,
        &controller.repo.git.request_counts(),
        controller.queue.counts(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// The controller's HTTP endpoints: `POST /api/webhook` (Argo CD's path), `GET /metrics`,
/// `GET /healthz`.
pub fn router(controller: Arc<Controller>) -> Router {
    Router::new()
        .route("/api/webhook", post(webhook))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn github_push_is_validated_and_matched() {
        let body = br#"{"ref":"refs/heads/main","repository":{"html_url":"https://github.com/myorg/k8s-manifests","clone_url":"https://github.com/myorg/k8s-manifests.git","default_branch":"main"},"commits":[{"added":["apps/a/x.yaml"],"modified":[],"removed":[]}]}"#;
        let secrets = BTreeMap::from([("webhook.github.secret".to_string(), "s3cret".to_string())]);
        let signature = format!("sha256={}", hex(&hmac_sha256(b"s3cret", body)));
        let push = parse(
            &headers(&[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
            ]),
            body,
            &secrets,
        )
        .unwrap()
        .unwrap();
        assert_eq!(push.revision, "main");
        assert_eq!(push.changed_files, vec!["apps/a/x.yaml".to_string()]);
        assert!(matches(
            &push,
            "https://github.com/myorg/k8s-manifests",
            "HEAD"
        ));
        assert!(matches(
            &push,
            "git@github.com:myorg/k8s-manifests.git",
            "main"
        ));
        assert!(!matches(
            &push,
            "https://github.com/myorg/k8s-manifests",
            "release"
        ));
        assert!(!matches(&push, "https://github.com/myorg/other", "main"));
        let bad = parse(
            &headers(&[
                ("x-github-event", "push"),
                ("x-hub-signature-256", "sha256=00"),
            ]),
            body,
            &secrets,
        );
        assert_eq!(bad, Err(WebhookError::Unauthorized));
    }

    #[test]
    fn gitlab_and_bitbucket() {
        let secrets = BTreeMap::from([("webhook.gitlab.secret".to_string(), "tok".to_string())]);
        let body = br#"{"ref":"refs/tags/v1","project":{"web_url":"https://gitlab.com/g/p","default_branch":"main"}}"#;
        let push = parse(
            &headers(&[
                ("x-gitlab-event", "Tag Push Hook"),
                ("x-gitlab-token", "tok"),
            ]),
            body,
            &secrets,
        )
        .unwrap()
        .unwrap();
        assert!(matches(&push, "https://gitlab.com/g/p.git", "v1"));
        assert_eq!(
            parse(
                &headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "no")]),
                body,
                &secrets
            ),
            Err(WebhookError::Unauthorized)
        );
        let body = br#"{"push":{"changes":[{"new":{"name":"main","type":"branch"}}]},"repository":{"full_name":"team/repo","links":{"html":{"href":"https://bitbucket.org/team/repo"}}}}"#;
        let push = parse(
            &headers(&[("x-event-key", "repo:push")]),
            body,
            &BTreeMap::new(),
        )
        .unwrap()
        .unwrap();
        assert!(matches(
            &push,
            "https://bitbucket.org/team/repo.git",
            "main"
        ));
        assert_eq!(
            parse(&HeaderMap::new(), b"{}", &BTreeMap::new()),
            Err(WebhookError::UnknownEvent)
        );
    }
}
