//! Repository credentials from Argo CD-format Secrets: `argocd.argoproj.io/secret-type:
//! repository` for one repository, `repo-creds` as a template for every repository whose URL
//! starts with its `url` (the longest matching prefix wins).

use std::collections::BTreeMap;

use crate::{Access, Credentials, Proxy, url::normalize};

pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Repository,
    RepoCreds,
}

/// The fields of a repository Secret that matter for fetching (data already base64-decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoSecret {
    pub name: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub ssh_private_key: String,
    pub insecure: bool,
    pub tls_client_cert_data: String,
    pub tls_client_cert_key: String,
    pub project: String,
    /// `type`: `git` (the default) or `helm`.
    pub repo_type: String,
    /// `enableOCI`: a Helm repository that is an OCI registry (its URL without `oci://`).
    pub enable_oci: bool,
    /// `forceHttpBasicAuth`: send Basic credentials without waiting to be asked.
    pub force_http_basic_auth: bool,
    /// `passCredentials`: send the credentials to chart URLs on other hosts too.
    pub pass_credentials: bool,
    /// `insecureOCIForceHttp`: talk plain HTTP to the OCI registry.
    pub insecure_oci_force_http: bool,
    /// `proxy`: the HTTP(S) proxy to reach the repository through.
    pub proxy: String,
    /// `noProxy`: hosts (comma-separated, `.domain` suffixes, CIDRs) reached directly.
    pub no_proxy: String,
}

impl RepoSecret {
    /// Read a Secret's labels and decoded data; None when it is not a repository Secret.
    pub fn from_secret(
        name: &str,
        labels: &BTreeMap<String, String>,
        data: &BTreeMap<String, String>,
    ) -> Option<(SecretKind, RepoSecret)> {
        let kind = match labels.get(SECRET_TYPE_LABEL).map(String::as_str) {
            Some("repository") => SecretKind::Repository,
            Some("repo-creds") => SecretKind::RepoCreds,
            _ => return None,
        };
        let get = |k: &str| data.get(k).cloned().unwrap_or_default();
        let secret = RepoSecret {
            name: name.to_string(),
            url: get("url"),
            username: get("username"),
            password: get("password"),
            ssh_private_key: get("sshPrivateKey"),
            insecure: get("insecure") == "true",
            tls_client_cert_data: get("tlsClientCertData"),
            tls_client_cert_key: get("tlsClientCertKey"),
            project: get("project"),
            repo_type: get("type"),
            enable_oci: get("enableOCI") == "true",
            force_http_basic_auth: get("forceHttpBasicAuth") == "true",
            pass_credentials: get("passCredentials") == "true",
            insecure_oci_force_http: get("insecureOCIForceHttp") == "true",
            proxy: get("proxy"),
            no_proxy: get("noProxy"),
        };
        (!secret.url.is_empty()).then_some((kind, secret))
    }

    /// The Secret's `stringData` for these fields, in Argo CD's keys (the inverse of
    /// [`RepoSecret::from_secret`]; empty and false fields are left out).
    pub fn string_data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        for (key, value) in [
            ("url", self.url.as_str()),
            ("type", self.repo_type.as_str()),
            ("project", self.project.as_str()),
            ("username", self.username.as_str()),
            ("password", self.password.as_str()),
            ("sshPrivateKey", self.ssh_private_key.as_str()),
            ("tlsClientCertData", self.tls_client_cert_data.as_str()),
            ("tlsClientCertKey", self.tls_client_cert_key.as_str()),
            ("proxy", self.proxy.as_str()),
            ("noProxy", self.no_proxy.as_str()),
        ] {
            if !value.is_empty() {
                data.insert(key.to_string(), value.to_string());
            }
        }
        for (key, on) in [
            ("insecure", self.insecure),
            ("enableOCI", self.enable_oci),
            ("forceHttpBasicAuth", self.force_http_basic_auth),
            ("passCredentials", self.pass_credentials),
            ("insecureOCIForceHttp", self.insecure_oci_force_http),
        ] {
            if on {
                data.insert(key.to_string(), "true".to_string());
            }
        }
        data
    }

    pub fn credentials(&self) -> Option<Credentials> {
        (!self.username.is_empty() || !self.password.is_empty()).then(|| Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }

    /// Everything the Secret says about reaching the repository.
    pub fn access(&self) -> Access {
        let cert = (!self.tls_client_cert_data.is_empty() && !self.tls_client_cert_key.is_empty())
            .then(|| {
                (
                    self.tls_client_cert_data.clone(),
                    self.tls_client_cert_key.clone(),
                )
            });
        Access {
            credentials: self.credentials(),
            insecure: self.insecure,
            tls_client_cert: cert,
            ssh_private_key: (!self.ssh_private_key.is_empty())
                .then(|| self.ssh_private_key.clone()),
            pass_credentials: self.pass_credentials,
            plain_http: self.insecure_oci_force_http,
            oci: self.enable_oci,
            proxy: (!self.proxy.is_empty()).then(|| Proxy {
                url: self.proxy.clone(),
                no_proxy: self.no_proxy.clone(),
            }),
        }
    }
}

/// The name of the Secret holding `url`'s repository (`prefix` `repo` or `creds`), stable for
/// every spelling of the URL.
pub fn secret_name(prefix: &str, url: &str) -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in normalize(url).bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!("{prefix}-{h}")
}

/// The Secret that applies to `url`: an exact `repository` match, else the `repo-creds`
/// template with the longest URL prefix.
pub fn secret_for<'a>(
    url: &str,
    secrets: &'a [(SecretKind, RepoSecret)],
) -> Option<&'a RepoSecret> {
    let wanted = normalize(url);
    if let Some((_, s)) = secrets
        .iter()
        .find(|(k, s)| *k == SecretKind::Repository && normalize(&s.url) == wanted)
    {
        return Some(s);
    }
    secrets
        .iter()
        .filter(|(k, s)| *k == SecretKind::RepoCreds && url.starts_with(s.url.as_str()))
        .max_by_key(|(_, s)| s.url.len())
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(kind: &str, url: &str, user: &str) -> (SecretKind, RepoSecret) {
        let labels = BTreeMap::from([(SECRET_TYPE_LABEL.to_string(), kind.to_string())]);
        let data = BTreeMap::from([
            ("url".to_string(), url.to_string()),
            ("username".to_string(), user.to_string()),
            ("password".to_string(), "pw".to_string()),
        ]);
        RepoSecret::from_secret("s", &labels, &data).unwrap()
    }

    #[test]
    fn exact_repository_beats_templates_and_longest_prefix_wins() {
        let secrets = vec![
            secret("repo-creds", "https://github.com/", "org-wide"),
            secret("repo-creds", "https://github.com/myorg/", "team"),
            secret(
                "repository",
                "https://github.com/myorg/special.git",
                "exact",
            ),
        ];
        let user = |url: &str| secret_for(url, &secrets).map(|s| s.username.clone());
        assert_eq!(
            user("https://github.com/myorg/special").as_deref(),
            Some("exact")
        );
        assert_eq!(
            user("https://github.com/myorg/k8s-manifests").as_deref(),
            Some("team")
        );
        assert_eq!(
            user("https://github.com/other/repo").as_deref(),
            Some("org-wide")
        );
        assert_eq!(user("https://gitlab.com/x/y"), None);
        assert_eq!(
            secret_for("https://github.com/myorg/x", &secrets)
                .unwrap()
                .credentials()
                .unwrap()
                .password,
            "pw"
        );
    }

    #[test]
    fn string_data_reads_back_as_the_same_secret() {
        let secret = RepoSecret {
            name: "s".into(),
            url: "https://charts.example.com".into(),
            username: "u".into(),
            password: "p".into(),
            repo_type: "helm".into(),
            enable_oci: true,
            pass_credentials: true,
            proxy: "http://proxy.corp:3128".into(),
            no_proxy: ".internal,10.0.0.0/8".into(),
            ..Default::default()
        };
        let labels = BTreeMap::from([(SECRET_TYPE_LABEL.to_string(), "repository".to_string())]);
        let data = secret.string_data();
        assert_eq!(data["enableOCI"], "true");
        assert_eq!(data["noProxy"], ".internal,10.0.0.0/8");
        let proxy = secret.access().proxy.unwrap();
        assert_eq!(proxy.url, "http://proxy.corp:3128");
        assert!(!data.contains_key("insecure"));
        let (_, read) = RepoSecret::from_secret("s", &labels, &data).unwrap();
        assert_eq!(read, secret);
        assert_eq!(
            secret_name("repo", "https://Charts.example.com/"),
            secret_name("repo", "https://charts.example.com")
        );
    }

    #[test]
    fn other_secrets_are_not_repositories() {
        let labels = BTreeMap::from([(SECRET_TYPE_LABEL.to_string(), "cluster".to_string())]);
        assert!(RepoSecret::from_secret("c", &labels, &BTreeMap::new()).is_none());
    }
}
