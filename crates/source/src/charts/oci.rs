//! Helm charts in OCI registries (the distribution API): tags are versions (`+` written as
//! `_`), a version's manifest names the chart layer, the layer is a blob checked against its
//! digest. Registries that want a token answer 401 with `WWW-Authenticate: Bearer`; the token
//! is fetched from the realm with the repository's credentials and kept per repository.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, LINK, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};

use super::http::{body, send, status_error};
use crate::{Access, SourceError};

const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const MAX_ARCHIVE: u64 = 100 << 20;

/// Whether a chart source's repository is an OCI registry.
pub fn is_oci(repo_url: &str, access: &Access) -> bool {
    repo_url.starts_with("oci://") || access.oci
}

/// Where a chart lives in a registry.
pub struct Location {
    /// `https://host:port` (or `http://` with `insecureOCIForceHttp`).
    pub base: String,
    /// The repository: the URL's path and the chart name.
    pub name: String,
    /// The repository URL as the source gives it, for messages.
    pub repo_url: String,
}

impl Location {
    pub fn new(repo_url: &str, chart: &str, access: &Access) -> Location {
        let rest = repo_url
            .strip_prefix("oci://")
            .unwrap_or(repo_url)
            .trim_end_matches('/');
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let scheme = if access.plain_http { "http" } else { "https" };
        let name = [path, chart]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        Location {
            base: format!("{scheme}://{host}"),
            name,
            repo_url: repo_url.to_string(),
        }
    }
}

/// How a registry repository wants to be asked.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    Basic,
}

/// Bearer tokens (or "use Basic") per registry repository.
#[derive(Default)]
pub struct Tokens {
    by_repository: Mutex<HashMap<String, Auth>>,
}

impl Tokens {
    fn get(&self, key: &str) -> Option<Auth> {
        self.by_repository
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: &str, value: Auth) {
        self.by_repository
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value);
    }
}

/// GET `url` of the registry, authenticating as the registry asks.
fn get(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    url: &str,
    accept: Option<&str>,
    access: &Access,
) -> Result<Response, SourceError> {
    let key = format!("{}/{}", at.base, at.name);
    let request = |auth: Option<&Auth>| {
        let mut r = client.get(url);
        if let Some(a) = accept {
            r = r.header(ACCEPT, a);
        }
        match (auth, &access.credentials) {
            (Some(Auth::Bearer(token)), _) => {
                r = r.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            (Some(Auth::Basic), Some(c)) => r = r.basic_auth(&c.username, Some(&c.password)),
            _ => {}
        }
        send(url, r)
    };
    let remembered = tokens.get(&key);
    let response = request(remembered.as_ref())?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let auth = if challenge.to_ascii_lowercase().starts_with("bearer") {
        Auth::Bearer(token(client, &challenge, at, access)?)
    } else if access.credentials.is_some() {
        Auth::Basic
    } else {
        return Err(SourceError::AuthFailed {
            url: url.to_string(),
            message: "the registry wants credentials and none are configured".into(),
        });
    };
    tokens.put(&key, auth.clone());
    let response = request(Some(&auth))?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Err(SourceError::AuthFailed {
            url: url.to_string(),
            message: "the registry refused the credentials (HTTP 401)".into(),
        });
    }
    Ok(response)
}

/// `key="value"` pairs of a `WWW-Authenticate: Bearer …` challenge.
fn challenge_params(challenge: &str) -> HashMap<String, String> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r);
    let mut out = HashMap::new();
    let mut remaining = rest;
    while let Some((key, after)) = remaining.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.insert(key, value.to_string());
        remaining = next;
    }
    out
}

/// A pull token from the challenge's realm, with Basic credentials when there are any.
fn token(
    client: &Client,
    challenge: &str,
    at: &Location,
    access: &Access,
) -> Result<String, SourceError> {
    let params = challenge_params(challenge);
    let realm = params.get("realm").cloned().unwrap_or_default();
    if realm.is_empty() {
        return Err(SourceError::AuthFailed {
            url: at.base.clone(),
            message: format!("unusable authentication challenge {challenge:?}"),
        });
    }
    let scope = params
        .get("scope")
        .cloned()
        .unwrap_or_else(|| format!("repository:{}:pull", at.name));
    let mut query = vec![("scope", scope)];
    if let Some(service) = params.get("service") {
        query.push(("service", service.clone()));
    }
    let token_url =
        reqwest::Url::parse_with_params(&realm, &query).map_err(|e| SourceError::AuthFailed {
            url: at.base.clone(),
            message: format!("token endpoint {realm:?}: {e}"),
        })?;
    let mut request = client.get(token_url);
    if let Some(c) = &access.credentials {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let response = send(&realm, request)?;
    if !response.status().is_success() {
        return Err(SourceError::AuthFailed {
            url: at.base.clone(),
            message: format!("token endpoint {realm} answered HTTP {}", response.status()),
        });
    }
    let answer: serde_json::Value = serde_json::from_slice(&body(&realm, response, 1 << 20)?)
        .map_err(|e| SourceError::AuthFailed {
            url: at.base.clone(),
            message: format!("token endpoint {realm}: {e}"),
        })?;
    let token = answer["token"]
        .as_str()
        .or_else(|| answer["access_token"].as_str())
        .unwrap_or_default();
    Ok(token.to_string())
}

/// The error for a failed registry answer: a missing repository is a missing chart.
fn answer_error(url: &str, at: &Location, chart: &str, response: Response) -> SourceError {
    match response.status().as_u16() {
        404 => SourceError::ChartNotFound {
            url: at.repo_url.clone(),
            chart: chart.to_string(),
        },
        _ => status_error(url, response.status()),
    }
}

/// Every version the registry has of the chart (its tags, `_` read back as `+`).
pub fn versions(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    chart: &str,
    access: &Access,
) -> Result<Vec<String>, SourceError> {
    let mut out = Vec::new();
    let mut next = Some(format!("{}/v2/{}/tags/list", at.base, at.name));
    // A registry pages long tag lists through `Link` headers; a bound keeps a loop finite.
    for _ in 0..100 {
        let Some(url) = next.take() else { break };
        let response = get(client, tokens, at, &url, None, access)?;
        if !response.status().is_success() {
            return Err(answer_error(&url, at, chart, response));
        }
        next = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(|link| link.split_once('<').and_then(|(_, r)| r.split_once('>')))
            .map(|(target, _)| {
                if target.starts_with("http") {
                    target.to_string()
                } else {
                    format!("{}{target}", at.base)
                }
            });
        let page: serde_json::Value = serde_json::from_slice(&body(&url, response, 16 << 20)?)
            .map_err(|e| SourceError::Git {
                url: url.clone(),
                message: format!("tag list: {e}"),
            })?;
        out.extend(
            page["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .map(|t| t.replace('_', "+")),
        );
    }
    Ok(out)
}

/// The chart archive of `version`, checked against the digest its manifest gives.
pub fn pull(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    chart: &str,
    version: &str,
    access: &Access,
) -> Result<Vec<u8>, SourceError> {
    let tag = version.replace('+', "_");
    let url = format!("{}/v2/{}/manifests/{tag}", at.base, at.name);
    let response = get(client, tokens, at, &url, Some(MANIFEST_TYPES), access)?;
    if response.status().as_u16() == 404 {
        return Err(SourceError::ChartVersionNotFound {
            url: at.repo_url.clone(),
            chart: chart.to_string(),
            constraint: version.to_string(),
            available: String::new(),
        });
    }
    if !response.status().is_success() {
        return Err(answer_error(&url, at, chart, response));
    }
    let manifest: serde_json::Value = serde_json::from_slice(&body(&url, response, 4 << 20)?)
        .map_err(|e| SourceError::Git {
            url: url.clone(),
            message: format!("manifest: {e}"),
        })?;
    let layer = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["mediaType"] == CHART_LAYER)
        .ok_or_else(|| SourceError::Git {
            url: url.clone(),
            message: format!(
                "{}:{tag} is not a Helm chart (no {CHART_LAYER} layer)",
                at.name
            ),
        })?;
    let digest = layer["digest"].as_str().unwrap_or_default();
    blob(client, tokens, at, digest, access, |url, response| {
        answer_error(url, at, chart, response)
    })
}

/// The blob `digest` of the repository, checked against its digest; `failed` names what a
/// refusal means.
fn blob(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    digest: &str,
    access: &Access,
    failed: impl FnOnce(&str, Response) -> SourceError,
) -> Result<Vec<u8>, SourceError> {
    let blob_url = format!("{}/v2/{}/blobs/{digest}", at.base, at.name);
    let response = get(client, tokens, at, &blob_url, None, access)?;
    if !response.status().is_success() {
        return Err(failed(&blob_url, response));
    }
    let archive = body(&blob_url, response, MAX_ARCHIVE)?;
    let expected = digest.strip_prefix("sha256:").unwrap_or(digest);
    let actual = hex(&Sha256::digest(&archive));
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(SourceError::DigestMismatch {
            url: blob_url,
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(archive)
}

/// Argo CD's repo-server setting for the layer media types an artifact of manifests may have
/// (comma-separated), read by every process that renders.
pub const LAYER_TYPES_ENV: &str = "ARGOCD_REPO_SERVER_OCI_LAYER_MEDIA_TYPES";

/// The layer media types an artifact of manifests may have: the list `setting` gives (the
/// value of [`LAYER_TYPES_ENV`]), or Argo CD's defaults — a tarball of files as `oras push`
/// makes it, or a Helm chart.
pub fn layer_types(setting: Option<&str>) -> Vec<String> {
    let given: Vec<String> = setting
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if given.is_empty() {
        vec![
            "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
            CHART_LAYER.to_string(),
        ]
    } else {
        given
    }
}

/// The manifest `reference` (a tag or a digest) names, and its digest (`sha256:…` of the
/// manifest as served, checked against a digest reference).
fn manifest(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    reference: &str,
    access: &Access,
) -> Result<(serde_json::Value, String), SourceError> {
    let url = format!("{}/v2/{}/manifests/{reference}", at.base, at.name);
    let response = get(client, tokens, at, &url, Some(MANIFEST_TYPES), access)?;
    if response.status().as_u16() == 404 {
        return Err(SourceError::RevisionNotFound {
            url: at.repo_url.clone(),
            revision: reference.to_string(),
        });
    }
    if !response.status().is_success() {
        return Err(status_error(&url, response.status()));
    }
    let bytes = body(&url, response, 4 << 20)?;
    let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
    if reference.starts_with("sha256:") && !reference.eq_ignore_ascii_case(&digest) {
        return Err(SourceError::DigestMismatch {
            url,
            expected: reference.to_string(),
            actual: digest,
        });
    }
    let manifest = serde_json::from_slice(&bytes).map_err(|e| SourceError::Git {
        url: url.clone(),
        message: format!("manifest: {e}"),
    })?;
    Ok((manifest, digest))
}

/// The digest of the manifest a tag names now.
pub fn artifact_digest(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    tag: &str,
    access: &Access,
) -> Result<String, SourceError> {
    manifest(client, tokens, at, tag, access).map(|(_, digest)| digest)
}

/// The annotations of the manifest `reference` names (a tag or a digest): the standard
/// `org.opencontainers.image.*` ones are what Argo CD shows about an OCI revision.
pub fn annotations(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    reference: &str,
    access: &Access,
) -> Result<BTreeMap<String, String>, SourceError> {
    let (manifest, _) = manifest(client, tokens, at, reference, access)?;
    let pairs = manifest["annotations"].as_object().into_iter().flatten();
    Ok(pairs
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect())
}

/// The single layer of the artifact with manifest `digest`, checked against its digest; its
/// media type must be one of `layer_types`.
pub fn pull_artifact(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    digest: &str,
    access: &Access,
    layer_types: &[String],
) -> Result<Vec<u8>, SourceError> {
    let (manifest, _) = manifest(client, tokens, at, digest, access)?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(SourceError::Git {
            url: at.repo_url.clone(),
            message: format!(
                "{}@{digest}: an artifact of manifests has exactly one layer, this one has {}",
                at.name,
                layers.len()
            ),
        });
    };
    let media_type = layer["mediaType"].as_str().unwrap_or_default().to_string();
    if !layer_types.contains(&media_type) {
        return Err(SourceError::Git {
            url: at.repo_url.clone(),
            message: format!(
                "{}@{digest}: layer media type {media_type:?} is not one of {} (accepted: {LAYER_TYPES_ENV})",
                at.name,
                layer_types.join(", ")
            ),
        });
    }
    let layer_digest = layer["digest"].as_str().unwrap_or_default();
    blob(client, tokens, at, layer_digest, access, |url, response| {
        status_error(url, response.status())
    })
}

/// Whether the registry answers for the repository at all (`GET /v2/`).
pub fn ping(
    client: &Client,
    tokens: &Tokens,
    at: &Location,
    access: &Access,
) -> Result<(), SourceError> {
    let url = format!("{}/v2/", at.base);
    let response = get(client, tokens, at, &url, None, access)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(status_error(&url, response.status()))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_from_repository_urls() {
        let plain = Access::default();
        let at = Location::new("oci://ghcr.io/org/charts", "web", &plain);
        assert_eq!(at.base, "https://ghcr.io");
        assert_eq!(at.name, "org/charts/web");
        let http = Access {
            plain_http: true,
            oci: true,
            ..Default::default()
        };
        let at = Location::new("127.0.0.1:5000", "web", &http);
        assert_eq!(at.base, "http://127.0.0.1:5000");
        assert_eq!(at.name, "web");
        assert!(is_oci("registry.example.com/x", &http));
        assert!(!is_oci("https://charts.example.com", &plain));
    }

    #[test]
    fn layer_types_are_argo_cds_defaults_unless_set() {
        let defaults = layer_types(None);
        assert_eq!(
            defaults,
            [
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
            ]
        );
        assert_eq!(layer_types(Some(" , ")), defaults);
        assert_eq!(
            layer_types(Some(
                "application/vnd.oci.image.layer.v1.tar, application/x-site"
            )),
            [
                "application/vnd.oci.image.layer.v1.tar",
                "application/x-site"
            ]
        );
    }

    #[test]
    fn bearer_challenges() {
        let params = challenge_params(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:org/web:pull""#,
        );
        assert_eq!(params["realm"], "https://auth.example.com/token");
        assert_eq!(params["service"], "registry.example.com");
        assert_eq!(params["scope"], "repository:org/web:pull");
    }
}
