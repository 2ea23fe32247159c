//! `/api/v1/repositories` and `/api/v1/repocreds`: Argo CD repository Secrets. What is
//! stored stays in the Secret: usernames, passwords, keys and certificates are accepted and
//! never returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_source::Access;
use tiphys_source::credentials::{RepoSecret, SECRET_TYPE_LABEL, SecretKind, secret_name};

use crate::api::{Body, enforce};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::{State, secret_text};

/// Every repository or credential template Secret, with the Secret itself.
fn all(state: &State, kind: SecretKind) -> Vec<(RepoSecret, Arc<Secret>)> {
    state
        .secrets
        .state()
        .into_iter()
        .filter_map(|s| {
            let labels = s.metadata.labels.clone().unwrap_or_default();
            let (k, repo) = RepoSecret::from_secret(
                s.metadata.name.as_deref().unwrap_or_default(),
                &labels,
                &secret_text(&s),
            )?;
            (k == kind).then_some((repo, s))
        })
        .collect()
}

/// The RBAC object of a repository: `<project>/<url>` when it belongs to a project.
fn object(repo: &RepoSecret) -> String {
    if repo.project.is_empty() {
        repo.url.clone()
    } else {
        format!("{}/{}", repo.project, repo.url)
    }
}

fn shape(repo: &RepoSecret, secret: &Secret, state: Option<Value>) -> Value {
    let data = secret_text(secret);
    let mut out = json!({
        "repo": repo.url,
        "type": data.get("type").cloned().unwrap_or_else(|| "git".into()),
        "name": data.get("name").cloned().unwrap_or_default(),
        "project": repo.project,
        "insecure": repo.insecure,
        "enableOCI": repo.enable_oci,
        "inheritedCreds": false,
        "proxy": without_userinfo(&repo.proxy),
        "noProxy": repo.no_proxy,
    });
    if let Some(s) = state {
        out["connectionState"] = s;
    }
    out
}

/// A proxy URL with any `user:password@` left out: credentials are never returned.
fn without_userinfo(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..host_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..after_scheme], &url[after_scheme + at + 1..]),
        None => url.to_string(),
    }
}

/// Whether the repository answers with `access` (on the blocking pool); `kind` is its
/// `type` (`git` or `helm`).
async fn connect(state: &State, url: &str, kind: &str, access: Access) -> Result<(), String> {
    let repo = state.repo.clone();
    let (url, kind) = (url.to_string(), kind.to_string());
    tokio::task::spawn_blocking(move || {
        repo.check_connection(&url, &kind, &access)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn connection_state(result: &Result<(), String>) -> Value {
    let at = crate::auth::now_rfc3339();
    match result {
        Ok(_) => json!({"status": "Successful", "message": "", "attemptedAt": at}),
        Err(e) => {
            json!({"status": "Failed", "message": format!("Unable to connect to repository: {e}"), "attemptedAt": at})
        }
    }
}

/// The access a repository has through the Secrets (its own, or a credential template).
fn access_for(state: &State, url: &str) -> Access {
    let secrets: Vec<(SecretKind, RepoSecret)> = all(state, SecretKind::Repository)
        .into_iter()
        .map(|(r, _)| (SecretKind::Repository, r))
        .chain(
            all(state, SecretKind::RepoCreds)
                .into_iter()
                .map(|(r, _)| (SecretKind::RepoCreds, r)),
        )
        .collect();
    tiphys_source::credentials::secret_for(url, &secrets)
        .map(RepoSecret::access)
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(default)]
    force_refresh: bool,
}

async fn list(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let visible: Vec<(RepoSecret, Arc<Secret>)> = all(&state, SecretKind::Repository)
        .into_iter()
        .filter(|(r, _)| grants.allows("repositories", "get", &object(r)))
        .collect();
    // Connection states are checked in parallel; the list answers with all of them.
    let checks = visible.iter().map(|(r, _)| {
        let state = state.clone();
        let (url, kind) = (r.url.clone(), r.repo_type.clone());
        let access = r.access();
        async move { connection_state(&connect(&state, &url, &kind, access).await) }
    });
    let states: Vec<Value> = if q.force_refresh || visible.len() <= 50 {
        futures::future::join_all(checks).await
    } else {
        visible
            .iter()
            .map(|_| json!({"status": "Unknown", "message": "", "attemptedAt": crate::auth::now_rfc3339()}))
            .collect()
    };
    let items: Vec<Value> = visible
        .iter()
        .zip(states)
        .map(|((r, s), state)| shape(r, s, Some(state)))
        .collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

fn find(state: &State, url: &str) -> Option<(RepoSecret, Arc<Secret>)> {
    let wanted = tiphys_source::normalize(url);
    all(state, SecretKind::Repository)
        .into_iter()
        .find(|(r, _)| tiphys_source::normalize(&r.url) == wanted)
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
) -> ApiResult<Json<Value>> {
    let (repo, secret) = find(&state, &url).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "get", &object(&repo))?;
    let result = connect(&state, &repo.url, &repo.repo_type, repo.access()).await;
    Ok(Json(shape(&repo, &secret, Some(connection_state(&result)))))
}

/// What a client sends to add a repository or a credential template.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepoRequest {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    ssh_private_key: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    tls_client_cert_data: String,
    #[serde(default)]
    tls_client_cert_key: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    enable_lfs: bool,
    #[serde(default, rename = "enableOCI")]
    enable_oci: bool,
    #[serde(default)]
    force_http_basic_auth: bool,
    #[serde(default)]
    pass_credentials: bool,
    #[serde(default, rename = "insecureOCIForceHttp")]
    insecure_oci_force_http: bool,
    #[serde(default)]
    proxy: String,
    #[serde(default)]
    no_proxy: String,
    #[serde(default)]
    connection_state: Option<Value>,
    #[serde(default)]
    inherited_creds: bool,
}

impl RepoRequest {
    /// The repository Secret this request describes, for `url`.
    fn secret(&self, url: &str) -> RepoSecret {
        RepoSecret {
            url: url.to_string(),
            username: self.username.clone(),
            password: self.password.clone(),
            ssh_private_key: self.ssh_private_key.clone(),
            insecure: self.insecure,
            tls_client_cert_data: self.tls_client_cert_data.clone(),
            tls_client_cert_key: self.tls_client_cert_key.clone(),
            project: self.project.clone(),
            repo_type: self.kind.clone(),
            enable_oci: self.enable_oci,
            force_http_basic_auth: self.force_http_basic_auth,
            pass_credentials: self.pass_credentials,
            insecure_oci_force_http: self.insecure_oci_force_http,
            proxy: self.proxy.clone(),
            no_proxy: self.no_proxy.clone(),
            ..Default::default()
        }
    }

    fn access(&self) -> Access {
        self.secret("").access()
    }

    fn data(&self, url: &str) -> BTreeMap<String, String> {
        let mut data = self.secret(url).string_data();
        for (key, value) in [("name", &self.name)] {
            if !value.is_empty() {
                data.insert(key.to_string(), value.clone());
            }
        }
        if self.enable_lfs {
            data.insert("enableLfs".into(), "true".into());
        }
        data
    }
}

async fn write_secret(
    state: &State,
    name: &str,
    kind: &str,
    data: BTreeMap<String, String>,
    upsert: bool,
) -> ApiResult<()> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": state.namespace,
            "labels": {SECRET_TYPE_LABEL: kind}},
        "type": "Opaque",
        "stringData": data,
    }))
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let api: Api<Secret> = Api::namespaced(state.client.clone(), &state.namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 && upsert => {
            let existing = api.get(name).await?;
            let mut replacement = secret;
            replacement.metadata.resource_version = existing.metadata.resource_version;
            api.replace(name, &PostParams::default(), &replacement)
                .await?;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Err(ApiError::new(
            Code::AlreadyExists,
            "existing repository spec is different; use upsert flag to force update",
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertQuery {
    #[serde(default)]
    upsert: bool,
    #[serde(default)]
    creds_only: bool,
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<UpsertQuery>,
    Body(req): Body<RepoRequest>,
) -> ApiResult<Json<Value>> {
    let _ = (&req.connection_state, req.inherited_creds);
    if req.repo.is_empty() {
        return Err(ApiError::invalid("repo is required"));
    }
    let probe = RepoSecret {
        url: req.repo.clone(),
        project: req.project.clone(),
        ..Default::default()
    };
    enforce(&state, &caller, "repositories", "create", &object(&probe))?;
    if !q.creds_only {
        // As Argo CD: a repository that cannot be reached is not added.
        let access = if req.access() == Access::default() {
            access_for(&state, &req.repo)
        } else {
            req.access()
        };
        if let Err(e) = connect(&state, &req.repo, &req.kind, access).await {
            return Err(ApiError::invalid(format!(
                "Unable to connect to repository: {e}"
            )));
        }
    }
    write_secret(
        &state,
        &secret_name("repo", &req.repo),
        "repository",
        req.data(&req.repo),
        q.upsert,
    )
    .await?;
    tracing::info!(user = %caller.subject, repo = %req.repo, "repository added");
    Ok(Json(
        json!({"repo": req.repo, "type": if req.kind.is_empty() { "git" } else { &req.kind },
        "name": req.name, "project": req.project, "insecure": req.insecure}),
    ))
}

/// The credential fields a request may leave out on an update: they are never returned, so
/// a client that read, changed and sent back a repository would otherwise erase them.
const CREDENTIAL_KEYS: &[&str] = &[
    "username",
    "password",
    "sshPrivateKey",
    "tlsClientCertData",
    "tlsClientCertKey",
];

/// `data` for an update of `existing`: the request's fields, with stored credentials kept
/// where the request carries none.
fn updated_data(existing: &Secret, req: &RepoRequest, url: &str) -> BTreeMap<String, String> {
    let stored = secret_text(existing);
    let mut data = req.data(url);
    for key in CREDENTIAL_KEYS {
        if !data.contains_key(*key)
            && let Some(value) = stored.get(*key)
        {
            data.insert((*key).to_string(), value.clone());
        }
    }
    data
}

/// `PUT /api/v1/repositories/{url}`: change a repository (project, name, type, flags,
/// credentials). Credentials left out stay as they are.
async fn update(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
    Body(req): Body<RepoRequest>,
) -> ApiResult<Json<Value>> {
    if !req.repo.is_empty() && tiphys_source::normalize(&req.repo) != tiphys_source::normalize(&url)
    {
        return Err(ApiError::invalid("repo in the body differs from the path"));
    }
    let (repo, secret) = find(&state, &url).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "update", &object(&repo))?;
    // Moving it into a project needs the right there too.
    let moved = RepoSecret {
        url: repo.url.clone(),
        project: req.project.clone(),
        ..Default::default()
    };
    enforce(&state, &caller, "repositories", "update", &object(&moved))?;
    let data = updated_data(&secret, &req, &repo.url);
    crate::api::replace_secret_data(&state, &secret, data, None, None).await?;
    tracing::info!(user = %caller.subject, repo = %repo.url, "repository updated");
    Ok(Json(
        json!({"repo": repo.url, "type": if req.kind.is_empty() { "git" } else { &req.kind },
        "name": req.name, "project": req.project, "insecure": req.insecure}),
    ))
}

/// `PUT /api/v1/repocreds/{url}`: change a credential template (credentials left out stay).
async fn update_creds(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
    Body(req): Body<RepoRequest>,
) -> ApiResult<Json<Value>> {
    if !req.url.is_empty() && req.url != url {
        return Err(ApiError::invalid("url in the body differs from the path"));
    }
    let (creds, secret) = all(&state, SecretKind::RepoCreds)
        .into_iter()
        .find(|(r, _)| r.url == url)
        .ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "update", &creds.url)?;
    let data = updated_data(&secret, &req, &creds.url);
    crate::api::replace_secret_data(&state, &secret, data, None, None).await?;
    Ok(Json(json!({"url": creds.url})))
}

async fn delete_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
) -> ApiResult<Json<Value>> {
    let (repo, secret) = find(&state, &url).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "delete", &object(&repo))?;
    crate::api::delete_secret(&state, &secret).await?;
    Ok(Json(json!({})))
}

async fn refs(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
) -> ApiResult<Json<Value>> {
    let (repo, _) = find(&state, &url).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "get", &object(&repo))?;
    let (repo_server, url, access) = (state.repo.clone(), repo.url.clone(), repo.access());
    let listed = crate::api::blocking(move || repo_server.git.ls_remote(&url, &access))
        .await?
        .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
    let pick = |prefix: &str| -> Vec<String> {
        let mut out: Vec<String> = listed
            .iter()
            .filter_map(|r| r.name.strip_prefix(prefix).map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    };
    Ok(Json(
        json!({"branches": pick("refs/heads/"), "tags": pick("refs/tags/")}),
    ))
}

async fn validate(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
    Body(req): Body<RepoRequest>,
) -> ApiResult<Json<Value>> {
    let probe = RepoSecret {
        url: url.clone(),
        project: req.project.clone(),
        ..Default::default()
    };
    enforce(&state, &caller, "repositories", "create", &object(&probe))?;
    connect(&state, &url, &req.kind, req.access())
        .await
        .map_err(|e| ApiError::invalid(format!("Unable to connect to repository: {e}")))?;
    Ok(Json(json!({})))
}

async fn list_creds(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let items: Vec<Value> = all(&state, SecretKind::RepoCreds)
        .iter()
        .filter(|(r, _)| grants.allows("repositories", "get", &r.url))
        .map(|(r, s)| {
            let data = secret_text(s);
            json!({"url": r.url, "type": data.get("type").cloned().unwrap_or_else(|| "git".into())})
        })
        .collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

async fn create_creds(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<UpsertQuery>,
    Body(req): Body<RepoRequest>,
) -> ApiResult<Json<Value>> {
    if req.url.is_empty() {
        return Err(ApiError::invalid("url is required"));
    }
    enforce(&state, &caller, "repositories", "create", &req.url)?;
    write_secret(
        &state,
        &secret_name("creds", &req.url),
        "repo-creds",
        req.data(&req.url),
        q.upsert,
    )
    .await?;
    Ok(Json(json!({"url": req.url})))
}

async fn delete_creds(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
) -> ApiResult<Json<Value>> {
    let (creds, secret) = all(&state, SecretKind::RepoCreds)
        .into_iter()
        .find(|(r, _)| r.url == url)
        .ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "repositories", "delete", &creds.url)?;
    crate::api::delete_secret(&state, &secret).await?;
    Ok(Json(json!({})))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/repositories", get(list).post(create))
        .route(
            "/api/v1/repositories/{url}",
            get(get_one).put(update).delete(delete_one),
        )
        .route("/api/v1/repositories/{url}/refs", get(refs))
        .route("/api/v1/repositories/{url}/validate", post(validate))
        .route("/api/v1/repocreds", get(list_creds).post(create_creds))
        .route(
            "/api/v1/repocreds/{url}",
            axum::routing::put(update_creds).delete(delete_creds),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_credentials_are_never_returned() {
        use super::without_userinfo;
        assert_eq!(
            without_userinfo("http://u:p@proxy.corp:3128/x@y"),
            "http://proxy.corp:3128/x@y"
        );
        assert_eq!(without_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(without_userinfo(""), "");
    }
}
