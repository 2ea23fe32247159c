//! `/api/v1/session`: log in (a session JWT, also set as the `argocd.token` cookie), log
//! out, and who am I; `/auth/logout`, the browser's log out (through the identity provider's
//! logout after a single sign-on, as Argo CD does).

use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Body;
use crate::auth::{COOKIE, MaybeCaller, accounts, jwt, revoked};
use crate::error::{ApiError, ApiResult, Code};
use crate::state::{ARGOCD_CM, ARGOCD_SECRET, State};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

/// How long a session lasts: argocd-cm `users.session.duration` (Go duration), else 24 h.
fn session_seconds(state: &State) -> i64 {
    state
        .config(ARGOCD_CM)
        .get("users.session.duration")
        .and_then(|d| tiphys_model::validate::parse_duration(d))
        .map_or(24 * 3600, |d| d.as_secs() as i64)
}

fn set_cookie(state: &State, token: &str, max_age: i64) -> String {
    crate::auth::set_cookie(COOKIE, token, max_age, state.tls)
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    Body(login): Body<Login>,
) -> ApiResult<impl IntoResponse> {
    if !login.token.is_empty() {
        // A token exchanged for a session: it must be one of ours and still valid.
        crate::auth::authenticate_token(&state, &login.token, false)?;
        let token = login.token;
        return Ok((
            AppendHeaders([(
                SET_COOKIE,
                set_cookie(&state, &token, session_seconds(&state)),
            )]),
            Json(json!({"token": token})),
        ));
    }
    if login.username.is_empty() || login.password.is_empty() {
        return Err(ApiError::unauthenticated(
            "username and password are required",
        ));
    }
    if !state.limiter.allowed(&login.username) {
        state.metrics.login("rate_limited");
        return Err(ApiError::new(
            Code::ResourceExhausted,
            "too many failed login attempts; try again later",
        ));
    }
    let all = accounts::accounts(&state.config(ARGOCD_CM), &state.secret(ARGOCD_SECRET));
    let account = all.iter().find(|a| a.name == login.username);
    let ok =
        account.is_some_and(|a| a.can("login") && accounts::password_matches(a, &login.password));
    if !ok {
        state.limiter.failed(&login.username);
        state.metrics.login("failure");
        tracing::info!(user = %login.username, "login failed");
        return Err(ApiError::unauthenticated("Invalid username or password"));
    }
    state.limiter.succeeded(&login.username);
    state.metrics.login("success");
    let now = jwt::now();
    let duration = session_seconds(&state);
    let token = jwt::sign(
        &state.signing_key()?,
        &jwt::Claims {
            iss: jwt::ISSUER.into(),
            sub: login.username.clone(),
            iat: now,
            nbf: Some(now),
            exp: Some(now + duration),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            federated: None,
        },
    )?;
    tracing::info!(user = %login.username, "logged in");
    Ok((
        AppendHeaders([(SET_COOKIE, set_cookie(&state, &token, duration))]),
        Json(json!({"token": token})),
    ))
}

/// Log out: the session presented (cookie or bearer) is revoked on every replica, and the
/// cookie removed.
async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    if let Some((token, _)) = crate::auth::token(&headers) {
        revoked::end_session(&state, &token).await?;
    }
    Ok((
        AppendHeaders([(SET_COOKIE, set_cookie(&state, "", 0))]),
        Json(json!({"token": ""})),
    ))
}

/// The browser's log out (Argo CD's `/auth/logout`): the session ends as with `DELETE
/// /api/v1/session`, then the browser goes to argocd-cm `url` — or, after a single sign-on
/// with oidc.config `logoutURL`, to the provider's logout, `{{token}}` there replaced by the
/// provider's ID token and `{{logoutRedirectURL}}` by `url`.
async fn logout(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let ended = match crate::auth::token(&headers) {
        Some((token, _)) => revoked::end_session(&state, &token).await?,
        None => None,
    };
    let base = state
        .config(ARGOCD_CM)
        .get("url")
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_default();
    // A broken oidc.config must not stand between a user and logging out.
    let provider_logout = crate::auth::oidc::config(&state)
        .ok()
        .flatten()
        .map(|c| c.logout_url)
        .filter(|u| !u.is_empty());
    let to = match (ended.and_then(|c| c.federated), provider_logout) {
        (Some(federated), Some(url)) => url
            .replace("{{token}}", &federated.id_token)
            .replace("{{logoutRedirectURL}}", &base),
        _ if base.is_empty() => "/".to_string(),
        _ => base,
    };
    Ok(crate::auth::oidc::redirect(
        &to,
        vec![set_cookie(&state, "", 0)],
    ))
}

async fn userinfo(MaybeCaller(caller): MaybeCaller) -> Json<Value> {
    Json(match caller {
        Some(c) => {
            json!({"loggedIn": true, "username": c.account, "iss": c.issuer, "groups": c.groups})
        }
        None => json!({"loggedIn": false}),
    })
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/session", post(create).delete(delete))
        .route("/api/v1/session/userinfo", get(userinfo))
        .route("/auth/logout", get(logout))
}
