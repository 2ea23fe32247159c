//! Local accounts as Argo CD keeps them: `admin` (enabled unless argocd-cm says
//! `admin.enabled: "false"`) and every `accounts.<name>: apiKey, login` in argocd-cm, with
//! their passwords (bcrypt), password change times and API tokens in argocd-secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An API token's record in argocd-secret (the token itself is never stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    #[serde(default, rename = "iat")]
    pub issued_at: i64,
    #[serde(default, rename = "exp", skip_serializing_if = "is_zero")]
    pub expires_at: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub enabled: bool,
    /// `login` and/or `apiKey`.
    pub capabilities: Vec<String>,
    pub password_hash: Option<String>,
    /// When the password last changed, in seconds (sessions issued before are void).
    pub password_changed: i64,
    pub tokens: Vec<TokenRecord>,
}

impl Account {
    pub fn can(&self, capability: &str) -> bool {
        self.enabled && self.capabilities.iter().any(|c| c == capability)
    }
}

/// The argocd-secret key of an account's `field` (`password`, `passwordMtime`, `tokens`).
pub fn secret_key(account: &str, field: &str) -> String {
    if account == "admin" {
        format!("admin.{field}")
    } else {
        format!("accounts.{account}.{field}")
    }
}

fn capabilities(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every account, from argocd-cm's and argocd-secret's data.
pub fn accounts(cm: &BTreeMap<String, String>, secret: &BTreeMap<String, String>) -> Vec<Account> {
    let mut names: Vec<String> = vec!["admin".into()];
    for key in cm.keys() {
        if let Some(name) = key.strip_prefix("accounts.")
            && !name.contains('.')
            && name != "admin"
        {
            names.push(name.to_string());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let (enabled, caps) = if name == "admin" {
                (
                    cm.get("admin.enabled").map(|v| v.trim()) != Some("false"),
                    cm.get("accounts.admin")
                        .map(|c| capabilities(c))
                        .unwrap_or_else(|| vec!["login".into()]),
                )
            } else {
                (
                    cm.get(&format!("accounts.{name}.enabled"))
                        .map(|v| v.trim())
                        != Some("false"),
                    cm.get(&format!("accounts.{name}"))
                        .map(|c| capabilities(c))
                        .unwrap_or_default(),
                )
            };
            let changed = secret
                .get(&secret_key(&name, "passwordMtime"))
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .map_or(0, |t| t.as_second());
            let tokens = secret
                .get(&secret_key(&name, "tokens"))
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            Account {
                password_hash: secret
                    .get(&secret_key(&name, "password"))
                    .filter(|h| !h.is_empty())
                    .cloned(),
                password_changed: changed,
                tokens,
                enabled,
                capabilities: caps,
                name,
            }
        })
        .collect()
}

/// Whether `password` is the account's (bcrypt). An account without a password never
/// matches.
pub fn password_matches(account: &Account, password: &str) -> bool {
    account
        .password_hash
        .as_deref()
        .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
}

/// Argo CD's default password rule (`passwordPattern`): 8 to 32 characters.
pub fn password_acceptable(password: &str) -> bool {
    (8..=32).contains(&password.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_come_from_argocd_cm_and_argocd_secret() {
        let hash = bcrypt::hash("s3cret-pass", 4).unwrap();
        let cm: BTreeMap<String, String> = [
            ("accounts.alice", "apiKey, login"),
            ("accounts.ci", "apiKey"),
            ("accounts.ci.enabled", "true"),
            ("accounts.old", "login"),
            ("accounts.old.enabled", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let secret: BTreeMap<String, String> = [
            ("admin.password", hash.as_str()),
            ("admin.passwordMtime", "2026-01-01T00:00:00Z"),
            ("accounts.ci.tokens", r#"[{"id":"t1","iat":100,"exp":200}]"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let all = accounts(&cm, &secret);
        let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["admin", "alice", "ci", "old"]);
        let admin = &all[0];
        assert!(admin.can("login") && !admin.can("apiKey"));
        assert!(password_matches(admin, "s3cret-pass"));
        assert!(!password_matches(admin, "wrong"));
        assert_eq!(admin.password_changed, 1767225600);
        assert!(all[1].can("apiKey") && all[1].can("login"));
        assert!(
            !password_matches(&all[1], ""),
            "no password set: never matches"
        );
        assert_eq!(all[2].tokens[0].id, "t1");
        assert!(!all[3].can("login"), "disabled");
        assert!(password_acceptable("12345678") && !password_acceptable("short"));
    }
}
