//! Who is calling: a session or API token from `Authorization: Bearer` or the `argocd.token`
//! cookie, checked against its signature and against the cluster (the account still enabled,
//! the token not revoked, the password not changed since the session began).

pub mod accounts;
pub mod bootstrap;
pub mod jwt;
pub mod oidc;
pub mod ratelimit;
pub mod revoked;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use crate::error::{ApiError, ApiResult};
use crate::rbac::Grants;
use crate::state::{ARGOCD_CM, ARGOCD_SECRET, State};

pub const COOKIE: &str = "argocd.token";

pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user (`admin`, a local account), `<account>:apiKey` for API tokens, or
    /// `proj:<project>:<role>`.
    pub subject: String,
    /// The account an API token belongs to (its RBAC subject); the user otherwise.
    pub account: String,
    pub groups: Vec<String>,
    pub issuer: String,
    /// Authenticated by the cookie (so a write must come from our own origin).
    pub via_cookie: bool,
}

impl Caller {
    /// The names RBAC knows this caller by.
    pub fn subjects(&self) -> Vec<String> {
        let mut out = vec![self.account.clone()];
        out.extend(self.groups.iter().cloned());
        out
    }

    /// The caller's grants under the current policy.
    pub fn check<'p>(&self, policy: &'p crate::rbac::Policy) -> Grants<'p> {
        policy.grants(&self.subjects())
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value for one of the server's cookies (`max_age` 0 removes it).
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// The token a request carries, and whether it came as the cookie.
pub fn token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .map(|t| (t.trim().to_string(), false));
    }
    cookie(headers, COOKIE).map(|t| (t, true))
}

/// Check `token` against its signature and the cluster.
pub fn authenticate_token(state: &State, token: &str, via_cookie: bool) -> ApiResult<Caller> {
    let claims = jwt::verify(&state.signing_key()?, token)?;
    if claims
        .jti
        .as_deref()
        .is_some_and(|id| revoked::is_revoked(state, id))
    {
        return Err(ApiError::unauthenticated("token is revoked"));
    }
    if let Some(federated) = &claims.federated {
        // An SSO user: the groups RBAC knows them by are the claims `scopes` names.
        let scopes = state.policy()?.scopes.clone();
        let mut groups = Vec::new();
        for scope in &scopes {
            match scope.as_str() {
                "groups" => groups.extend(federated.groups.iter().cloned()),
                "email" if !federated.email.is_empty() => groups.push(federated.email.clone()),
                _ => {}
            }
        }
        if crate::auth::oidc::config(state)?.is_none() {
            return Err(ApiError::unauthenticated("SSO is no longer configured"));
        }
        return Ok(Caller {
            subject: claims.sub.clone(),
            account: claims.sub.clone(),
            groups,
            issuer: federated.issuer.clone(),
            via_cookie,
        });
    }
    let cm = state.config(ARGOCD_CM);
    let secret = state.secret(ARGOCD_SECRET);
    let all = accounts::accounts(&cm, &secret);
    let caller = |account: &str| Caller {
        subject: claims.sub.clone(),
        account: account.to_string(),
        groups: Vec::new(),
        issuer: claims.iss.clone(),
        via_cookie,
    };
    if let Some(name) = claims.sub.strip_suffix(":apiKey") {
        let account = all
            .iter()
            .find(|a| a.name == name)
            .filter(|a| a.can("apiKey"))
            .ok_or_else(|| {
                ApiError::unauthenticated("account is disabled or has no apiKey capability")
            })?;
        let id = claims.jti.as_deref().unwrap_or_default();
        if !account.tokens.iter().any(|t| t.id == id) {
            return Err(ApiError::unauthenticated("token is revoked"));
        }
        return Ok(caller(name));
    }
    if let Some(rest) = claims.sub.strip_prefix("proj:") {
        let (project, role) = rest
            .split_once(':')
            .ok_or_else(|| ApiError::unauthenticated("invalid project token subject"))?;
        let known = state.project(project).is_some_and(|p| {
            p.spec.roles.iter().any(|r| {
                r.name == role
                    && r.jwt_tokens.iter().any(|t| {
                        t.get("iat").and_then(serde_json::Value::as_i64) == Some(claims.iat)
                            && claims.jti.as_deref().is_none_or(|id| {
                                t.get("id")
                                    .and_then(serde_json::Value::as_str)
                                    .is_none_or(|stored| stored == id)
                            })
                    })
            })
        });
        if !known {
            return Err(ApiError::unauthenticated("token is revoked"));
        }
        let subject = claims.sub.clone();
        return Ok(caller(&subject));
    }
    let account = all
        .iter()
        .find(|a| a.name == claims.sub)
        .filter(|a| a.can("login"))
        .ok_or_else(|| ApiError::unauthenticated("account is disabled or may not log in"))?;
    if claims.iat < account.password_changed {
        return Err(ApiError::unauthenticated(
            "session was issued before the password changed",
        ));
    }
    Ok(caller(&account.name))
}

/// Requests authenticated by the cookie that change something must come from a page of this
/// server: a browser sends the cookie to any site's requests, not only ours (CSRF).
/// Over HTTP/2 the host is the request's `:authority`, not a `Host` header.
fn same_origin(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .or_else(|| headers.get(axum::http::header::REFERER))
        .and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
            .is_some_and(|authority| authority == host),
        _ => false,
    }
}

impl FromRequestParts<Arc<State>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> ApiResult<Caller> {
        let (token, via_cookie) = token(&parts.headers)
            .ok_or_else(|| ApiError::unauthenticated("no session information"))?;
        let caller = authenticate_token(state, &token, via_cookie)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe && !same_origin(&parts.headers, &parts.uri) {
            return Err(ApiError::denied());
        }
        Ok(caller)
    }
}

/// The caller when there is one (endpoints that also answer anonymous requests).
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<Arc<State>> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> ApiResult<MaybeCaller> {
        match token(&parts.headers) {
            None => Ok(MaybeCaller(None)),
            Some((token, via_cookie)) => Ok(MaybeCaller(
                authenticate_token(state, &token, via_cookie).ok(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_header_or_cookie_and_the_origin_rule() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; argocd.token=abc; b=2".parse().unwrap());
        assert_eq!(token(&h), Some(("abc".into(), true)));
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert_eq!(token(&h), Some(("xyz".into(), false)));
        let path: axum::http::Uri = "/api/v1/session".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "argocd.example.com".parse().unwrap());
        assert!(!same_origin(&h, &path), "no origin: refused");
        h.insert("origin", "https://evil.example.com".parse().unwrap());
        assert!(!same_origin(&h, &path));
        h.insert("origin", "https://argocd.example.com".parse().unwrap());
        assert!(same_origin(&h, &path));
        // HTTP/2: no Host header, the authority is in the request's URI.
        let h2: axum::http::Uri = "https://argocd.example.com/api/v1/session".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("origin", "https://argocd.example.com".parse().unwrap());
        assert!(same_origin(&h, &h2));
        h.insert("origin", "https://evil.example.com".parse().unwrap());
        assert!(!same_origin(&h, &h2));
    }
}
