//! Sessions ended by logging out. Argo CD keeps revoked token ids in Redis; Tiphys keeps them
//! in the cluster, so every replica refuses them: the ConfigMap `tiphys-revoked-sessions` maps
//! each id to when the token would have expired anyway (then the entry is dropped). The
//! replica that revoked also remembers it at once, before its watch delivers the write.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;

use crate::auth::jwt;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

pub const REVOKED_SESSIONS: &str = "tiphys-revoked-sessions";

/// What this replica revoked itself: token id → expiry (unix seconds).
#[derive(Default)]
pub struct Revoked(Mutex<BTreeMap<String, i64>>);

impl Revoked {
    fn remember(&self, id: &str, exp: i64) {
        if let Ok(mut local) = self.0.lock() {
            let now = jwt::now();
            local.retain(|_, e| *e > now);
            local.insert(id.to_string(), exp);
        }
    }

    fn knows(&self, id: &str) -> bool {
        self.0.lock().is_ok_and(|local| local.contains_key(id))
    }
}

/// Whether the token with this id was revoked (by any replica).
pub fn is_revoked(state: &State, id: &str) -> bool {
    state.revoked.knows(id) || state.config_has(REVOKED_SESSIONS, id)
}

/// Revoke the token `id` until `exp`; expired entries are dropped in the same write.
pub async fn revoke(state: &State, id: &str, exp: i64) -> ApiResult<()> {
    state.revoked.remember(id, exp);
    let api: Api<ConfigMap> = Api::namespaced(state.client.clone(), &state.namespace);
    let now = jwt::now();
    for _ in 0..5 {
        let existing = api.get_opt(REVOKED_SESSIONS).await?;
        let mut map = existing.clone().unwrap_or_default();
        let data = map.data.get_or_insert_with(BTreeMap::new);
        data.retain(|_, e| e.parse::<i64>().is_ok_and(|e| e > now));
        data.insert(id.to_string(), exp.to_string());
        let written = match existing {
            None => {
                map.metadata.name = Some(REVOKED_SESSIONS.into());
                api.create(&PostParams::default(), &map).await
            }
            Some(_) => {
                api.replace(REVOKED_SESSIONS, &PostParams::default(), &map)
                    .await
            }
        };
        match written {
            Ok(_) => return Ok(()),
            // Another replica wrote (or created) it meanwhile: read it again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        format!("{REVOKED_SESSIONS} kept changing; try again"),
    ))
}

/// End the session `token` names, if it is one of ours: its id is revoked until it expires.
/// API and project tokens are left alone (they are revoked by deleting them).
pub async fn end_session(state: &State, token: &str) -> ApiResult<Option<jwt::Claims>> {
    let Ok(claims) = jwt::verify(&state.signing_key()?, token) else {
        return Ok(None);
    };
    let is_session = !claims.sub.ends_with(":apiKey") && !claims.sub.starts_with("proj:");
    if let (true, Some(id), Some(exp)) = (is_session, claims.jti.as_deref(), claims.exp) {
        revoke(state, id, exp).await?;
        tracing::info!(user = %claims.sub, "logged out");
    }
    Ok(Some(claims))
}
