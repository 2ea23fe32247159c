//! Argo CD's JWTs: HS256, signed with `server.secretkey` from `argocd-secret`, issuer
//! `argocd`. Sessions carry `sub` (the user), API tokens `sub: <account>:apiKey` and their
//! `jti`, project role tokens `sub: proj:<project>:<role>` with `jti` and `iat`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const ISSUER: &str = "argocd";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// A session started through SSO: who the identity provider says the user is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<Federated>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Federated {
    /// The identity provider's issuer URL.
    pub issuer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The provider's ID token, for its logout (`{{token}}` in oidc.config `logoutURL`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id_token: String,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn sign(key: &[u8], claims: &Claims) -> ApiResult<String> {
    let key = EncodingKey::from_secret(key)
        .map_err(|e| ApiError::internal(format!("the signing key: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| ApiError::internal(format!("signing a token: {e}")))
}

/// The claims of `token` when it is ours: HS256 with our key (no other algorithm is
/// accepted), issued by us, not expired, not used before its time.
pub fn verify(key: &[u8], token: &str) -> ApiResult<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Tokens without expiry (API tokens made with expiresIn 0) are valid until revoked.
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    let key = DecodingKey::from_secret(key)
        .map_err(|e| ApiError::internal(format!("the signing key: {e}")))?;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        let why = match e.kind() {
            ErrorKind::ExpiredSignature => "token is expired".to_string(),
            ErrorKind::InvalidSignature => "token signature is invalid".to_string(),
            ErrorKind::InvalidAlgorithm => "token algorithm is not accepted".to_string(),
            ErrorKind::ImmatureSignature => "token is not valid yet".to_string(),
            ErrorKind::InvalidIssuer => "token was not issued by this server".to_string(),
            other => format!("invalid token: {other:?}"),
        };
        ApiError::unauthenticated(why)
    })?;
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn claims(exp: Option<i64>) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "admin".into(),
            iat: now(),
            nbf: Some(now()),
            exp,
            jti: None,
            federated: None,
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let key = b"0123456789abcdef0123456789abcdef";
        let token = sign(key, &claims(Some(now() + 60))).unwrap();
        assert_eq!(verify(key, &token).unwrap().sub, "admin");
        assert!(verify(b"another key", &token).is_err(), "wrong key");
        let expired = sign(key, &claims(Some(now() - 10))).unwrap();
        assert!(
            verify(key, &expired)
                .unwrap_err()
                .message
                .contains("expired")
        );
        // A payload changed after signing.
        let parts: Vec<&str> = token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
        let forged = engine.encode(payload.replace("admin", "root"));
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(verify(key, &tampered).is_err());
        // `alg: none` is not accepted.
        let none_header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(verify(key, &format!("{none_header}.{}.", parts[1])).is_err());
        // Without expiry: valid (an API token until revoked).
        let forever = sign(key, &claims(None)).unwrap();
        assert!(verify(key, &forever).is_ok());
    }
}
