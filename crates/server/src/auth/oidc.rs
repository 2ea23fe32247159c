//! Single sign-on with an OpenID Connect provider, configured as Argo CD configures it
//! (argocd-cm `oidc.config`: `name`, `issuer`, `clientID`, `clientSecret` — a `$key` refers to
//! argocd-secret —, `requestedScopes`, `logoutURL`), without Dex.
//!
//! `GET /auth/login` sends the browser to the provider (authorization code flow with PKCE,
//! `state` and `nonce` kept in a short-lived signed cookie); `GET /auth/callback` exchanges the
//! code, verifies the ID token against the provider's keys (issuer, audience, expiry, nonce)
//! and starts a session: the server's own JWT carrying the user, their groups and the
//! provider's issuer, set as the `argocd.token` cookie.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State as AxumState};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::auth::{jwt, set_cookie};
use crate::error::{ApiError, ApiResult, Code};
use crate::state::{ARGOCD_CM, ARGOCD_SECRET, State};

const STATE_COOKIE: &str = "argocd.oauthstate";
/// How long a login may take at the provider.
const LOGIN_SECONDS: i64 = 600;

/// argocd-cm `oidc.config`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcConfig {
    #[serde(default)]
    pub name: String,
    pub issuer: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub requested_scopes: Vec<String>,
    #[serde(default, rename = "logoutURL")]
    pub logout_url: String,
}

/// The provider configuration, with `$key` secrets read from argocd-secret; None when SSO is
/// not configured.
pub fn config(state: &State) -> ApiResult<Option<OidcConfig>> {
    let Some(text) = state.config(ARGOCD_CM).get("oidc.config").cloned() else {
        return Ok(None);
    };
    let mut config: OidcConfig = serde_saphyr::from_str(&text)
        .map_err(|e| ApiError::internal(format!("argocd-cm oidc.config: {e}")))?;
    if let Some(key) = config.client_secret.strip_prefix('$') {
        let key = key.split(':').next_back().unwrap_or(key);
        config.client_secret = state
            .secret(ARGOCD_SECRET)
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("argocd-cm oidc.config: clientSecret refers to argocd-secret {key}, which is not there")))?;
    }
    if config.requested_scopes.is_empty() {
        config.requested_scopes = vec!["openid".into(), "profile".into(), "email".into()];
    }
    if !config.requested_scopes.iter().any(|s| s == "openid") {
        config.requested_scopes.insert(0, "openid".into());
    }
    Ok(Some(config))
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

fn http() -> ApiResult<reqwest::blocking::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ApiError::internal(format!("HTTP client: {e}")))
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        Code::Unavailable,
        format!("the identity provider: {what}: {e}"),
    )
}

/// GET a provider document (blocking; callers are on the blocking pool).
fn fetch_json(url: &str) -> ApiResult<Value> {
    let response = http()?.get(url).send().map_err(|e| unavailable(url, e))?;
    if !response.status().is_success() {
        return Err(unavailable(url, response.status()));
    }
    let text = response.text().map_err(|e| unavailable(url, e))?;
    serde_json::from_str(&text).map_err(|e| unavailable(url, e))
}

fn discover(issuer: &str) -> ApiResult<Discovery> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = fetch_json(&url)?;
    let discovery: Discovery = serde_json::from_value(doc).map_err(|e| unavailable(&url, e))?;
    if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(unavailable(
            &url,
            format!("it names issuer {}", discovery.issuer),
        ));
    }
    Ok(discovery)
}

fn random(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What the login keeps between leaving for the provider and coming back.
#[derive(Serialize, Deserialize)]
struct Pending {
    iss: String,
    exp: i64,
    state: String,
    verifier: String,
    nonce: String,
    return_url: String,
    redirect_uri: String,
    /// Set when `tiphys login --sso` started the login: the session goes to the CLI.
    #[serde(default)]
    cli: Option<CliReturn>,
}

/// Where the CLI waits for its session: a port on this machine's loopback (never another host,
/// so this is no open redirect) and the CLI's own `state`, which it checks.
#[derive(Clone, Serialize, Deserialize)]
struct CliReturn {
    port: u16,
    state: String,
}

/// This server's URL: argocd-cm `url`, else the scheme and `Host` the request came with.
fn base_url(state: &State, headers: &HeaderMap) -> String {
    if let Some(url) = state.config(ARGOCD_CM).get("url").filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Only a path of this server may be returned to after login (no open redirect).
fn safe_return(url: Option<&str>) -> String {
    match url {
        Some(u) if u.starts_with('/') && !u.starts_with("//") && !u.contains('\\') => u.to_string(),
        _ => "/".into(),
    }
}

pub(crate) fn redirect(to: &str, cookies: Vec<String>) -> Response {
    let mut headers: Vec<(axum::http::HeaderName, String)> =
        cookies.into_iter().map(|c| (SET_COOKIE, c)).collect();
    headers.push((LOCATION, to.to_string()));
    (StatusCode::SEE_OTHER, AppendHeaders(headers)).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    return_url: Option<String>,
    /// `tiphys login --sso`: the loopback port the CLI listens on, and its state.
    #[serde(default)]
    cli_port: Option<u16>,
    #[serde(default)]
    cli_state: Option<String>,
}

async fn login(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> ApiResult<Response> {
    let config = config(&state)?.ok_or_else(|| {
        ApiError::new(
            Code::FailedPrecondition,
            "SSO is not configured (argocd-cm oidc.config)",
        )
    })?;
    let issuer = config.issuer.clone();
    let discovery = tokio::task::spawn_blocking(move || discover(&issuer))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let redirect_uri = format!("{}/auth/callback", base_url(&state, &headers));
    let pending = Pending {
        iss: jwt::ISSUER.into(),
        exp: jwt::now() + LOGIN_SECONDS,
        state: random(32),
        verifier: random(64),
        nonce: random(32),
        return_url: safe_return(q.return_url.as_deref()),
        redirect_uri: redirect_uri.clone(),
        cli: match (q.cli_port, q.cli_state) {
            (Some(port), Some(state)) if port > 0 && !state.is_empty() => {
                Some(CliReturn { port, state })
            }
            (None, None) => None,
            _ => {
                return Err(ApiError::invalid(
                    "cli_port and cli_state go together (a port above 0, a state)",
                ));
            }
        },
    };
    let sealed = sign(&state.signing_key()?, &pending)?;
    let url = format!(
        "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        discovery.authorization_endpoint,
        if discovery.authorization_endpoint.contains('?') {
            "&"
        } else {
            "?"
        },
        encode(&config.client_id),
        encode(&redirect_uri),
        encode(&config.requested_scopes.join(" ")),
        encode(&pending.state),
        encode(&pending.nonce),
        pkce_challenge(&pending.verifier),
    );
    Ok(redirect(
        &url,
        vec![set_cookie(STATE_COOKIE, &sealed, LOGIN_SECONDS, state.tls)],
    ))
}

fn sign<T: Serialize>(key: &[u8], value: &T) -> ApiResult<String> {
    let key = jsonwebtoken::EncodingKey::from_secret(key)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), value, &key)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn unseal(key: &[u8], sealed: &str) -> ApiResult<Pending> {
    let key = DecodingKey::from_secret(key).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[jwt::ISSUER]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Pending>(sealed, &key, &validation)
        .map(|d| d.claims)
        .map_err(|_| {
            ApiError::unauthenticated("the login expired or was not started here; log in again")
        })
}

#[derive(Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The claims of a verified ID token that matter here.
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    groups: Option<Value>,
    #[serde(default)]
    exp: Option<i64>,
}

/// Exchange the code and verify the ID token (blocking): its claims, and the token itself.
fn exchange(config: &OidcConfig, pending: &Pending, code: &str) -> ApiResult<(IdClaims, String)> {
    let discovery = discover(&config.issuer)?;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}&client_id={}",
        encode(code),
        encode(&pending.redirect_uri),
        encode(&pending.verifier),
        encode(&config.client_id),
    );
    let mut request = http()?
        .post(&discovery.token_endpoint)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form);
    if !config.client_secret.is_empty() {
        request = request.basic_auth(&config.client_id, Some(&config.client_secret));
    }
    let response = request
        .send()
        .map_err(|e| unavailable(&discovery.token_endpoint, e))?;
    let status = response.status();
    let text = response
        .text()
        .map_err(|e| unavailable(&discovery.token_endpoint, e))?;
    if !status.is_success() {
        return Err(ApiError::unauthenticated(format!(
            "the identity provider refused the code: {status}: {text}"
        )));
    }
    let tokens: Value =
        serde_json::from_str(&text).map_err(|e| unavailable(&discovery.token_endpoint, e))?;
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| ApiError::unauthenticated("the identity provider sent no ID token"))?;
    let header = jsonwebtoken::decode_header(id_token)
        .map_err(|e| ApiError::unauthenticated(format!("invalid ID token: {e}")))?;
    let jwks: JwkSet = serde_json::from_value(fetch_json(&discovery.jwks_uri)?)
        .map_err(|e| unavailable(&discovery.jwks_uri, e))?;
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None => jwks.keys.first(),
    }
    .ok_or_else(|| {
        ApiError::unauthenticated(
            "the ID token was signed with a key the provider does not publish",
        )
    })?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| ApiError::unauthenticated(format!("the provider's key: {e}")))?;
    // Asymmetric algorithms only: a token "signed" with the client secret or none is refused.
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    ) {
        return Err(ApiError::unauthenticated(format!(
            "ID token algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[config.issuer.trim_end_matches('/'), config.issuer.as_str()]);
    validation.set_audience(&[config.client_id.as_str()]);
    let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
        .map_err(|e| ApiError::unauthenticated(format!("invalid ID token: {e}")))?
        .claims;
    if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
        return Err(ApiError::unauthenticated(
            "the ID token's nonce does not match this login",
        ));
    }
    Ok((claims, id_token.to_string()))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

async fn callback(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let finished = finish_login(&state, &headers, q).await;
    state.metrics.login(if finished.is_ok() {
        "success"
    } else {
        "failure"
    });
    finished
}

/// The provider sent the browser back: check the pending login, exchange the code and start
/// a session.
async fn finish_login(state: &State, headers: &HeaderMap, q: CallbackQuery) -> ApiResult<Response> {
    if let Some(error) = q.error {
        return Err(ApiError::unauthenticated(format!(
            "the identity provider said {error}: {}",
            q.error_description.unwrap_or_default()
        )));
    }
    let sealed = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == STATE_COOKIE)
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| ApiError::unauthenticated("the login was not started here; log in again"))?;
    let key = state.signing_key()?;
    let pending = unseal(&key, &sealed)?;
    if q.state.as_deref() != Some(pending.state.as_str()) {
        return Err(ApiError::unauthenticated(
            "the login's state does not match",
        ));
    }
    let code = q
        .code
        .ok_or_else(|| ApiError::invalid("no code in the callback"))?;
    let config = config(state)?.ok_or_else(|| {
        ApiError::new(
            Code::FailedPrecondition,
            "SSO is not configured (argocd-cm oidc.config)",
        )
    })?;
    let issuer = config.issuer.clone();
    let return_url = pending.return_url.clone();
    let cli = pending.cli.clone();
    let (claims, id_token) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || exchange(&config, &pending, &code))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    let now = jwt::now();
    let duration = state
        .config(ARGOCD_CM)
        .get("users.session.duration")
        .and_then(|d| tiphys_model::validate::parse_duration(d))
        .map_or(24 * 3600, |d| d.as_secs() as i64);
    // The session ends no later than the provider's ID token.
    let exp = claims
        .exp
        .map_or(now + duration, |e| e.min(now + duration).max(now + 60));
    let token = jwt::sign(
        &key,
        &jwt::Claims {
            iss: jwt::ISSUER.into(),
            sub: claims.sub.clone(),
            iat: now,
            nbf: Some(now),
            exp: Some(exp),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            federated: Some(jwt::Federated {
                issuer,
                email: claims.email.clone().unwrap_or_default(),
                groups: strings(claims.groups.as_ref()),
                id_token,
            }),
        },
    )?;
    tracing::info!(user = %claims.sub, email = ?claims.email, "logged in through SSO");
    if let Some(cli) = cli {
        // The CLI gets the session; the browser keeps no cookie of it.
        let to = format!(
            "http://127.0.0.1:{}/auth/token?state={}&token={}",
            cli.port,
            encode(&cli.state),
            encode(&token)
        );
        return Ok(redirect(
            &to,
            vec![set_cookie(STATE_COOKIE, "", 0, state.tls)],
        ));
    }
    Ok(redirect(
        &return_url,
        vec![
            set_cookie(crate::auth::COOKIE, &token, exp - now, state.tls),
            set_cookie(STATE_COOKIE, "", 0, state.tls),
        ],
    ))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_and_return_urls() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(safe_return(Some("/applications/web")), "/applications/web");
        for evil in ["https://evil.example.com", "//evil.example.com", "/\\evil"] {
            assert_eq!(safe_return(Some(evil)), "/", "{evil}");
        }
    }
}
