//! First start: a signing key (`server.secretkey`) and an admin password in argocd-secret, the
//! password's plain text in `argocd-initial-admin-secret` (`data.password`), as Argo CD does.
//! Safe with several replicas starting at once: writes are creates or guarded patches, and a
//! lost race re-reads what the winner wrote.

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rand::Rng;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::state::{ARGOCD_SECRET, INITIAL_ADMIN_SECRET};

/// A random password of `len` characters from an unambiguous alphabet.
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn hash_password(password: &str) -> ApiResult<String> {
    bcrypt::hash(password, bcrypt::DEFAULT_COST)
        .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
}

/// Make sure argocd-secret has a signing key and the admin a password.
pub async fn ensure_secrets(client: &kube::Client, namespace: &str) -> ApiResult<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..5 {
        let existing = secrets.get_opt(ARGOCD_SECRET).await?;
        let data = existing
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        let mut add = serde_json::Map::new();
        if data.get("server.secretkey").is_none_or(|k| k.0.is_empty()) {
            let key: [u8; 32] = rand::random();
            add.insert(
                "server.secretkey".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(key)),
            );
        }
        let mut initial = None;
        if data.get("admin.password").is_none_or(|p| p.0.is_empty()) {
            let password = random_password(16);
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            add.insert(
                "admin.password".into(),
                json!(b64(&hash_password(&password)?)),
            );
            add.insert(
                "admin.passwordMtime".into(),
                json!(b64(&crate::auth::now_rfc3339())),
            );
            initial = Some(password);
        }
        if add.is_empty() {
            return Ok(());
        }
        let written = match &existing {
            None => {
                let secret: Secret = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": ARGOCD_SECRET, "namespace": namespace,
                        "labels": {"app.kubernetes.io/name": ARGOCD_SECRET, "app.kubernetes.io/part-of": "argocd"}},
                    "type": "Opaque",
                    "data": add,
                }))
                .map_err(|e| ApiError::internal(e.to_string()))?;
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
            }
            Some(s) => {
                let patch = json!({
                    "metadata": {"resourceVersion": s.metadata.resource_version},
                    "data": add,
                });
                secrets
                    .patch(ARGOCD_SECRET, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
        };
        match written {
            Ok(()) => {
                if let Some(password) = initial {
                    write_initial(&secrets, namespace, &password).await?;
                }
                return Ok(());
            }
            // Another replica got there first: read what it wrote.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal(
        "argocd-secret kept changing while the server set it up",
    ))
}

async fn write_initial(secrets: &Api<Secret>, namespace: &str, password: &str) -> ApiResult<()> {
    let mut data = std::collections::BTreeMap::new();
    data.insert(
        "password".to_string(),
        ByteString(password.as_bytes().to_vec()),
    );
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(INITIAL_ADMIN_SECRET.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    // It is written once; replacing it would show a password that no longer works.
    match secrets
        .delete(INITIAL_ADMIN_SECRET, &Default::default())
        .await
    {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => return Err(e.into()),
    }
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}
