//! HTTP for chart repositories and registries: one client per TLS and proxy setting
//! (`insecure`, a client certificate, `proxy`/`noProxy`), Basic credentials only where they belong, bodies read with a bound,
//! and errors that say whether the host, TLS, the credentials or the path is the problem.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};

use crate::{Access, SourceError};

/// What a client is built for: `insecure`, the client certificate and key, the proxy.
type ClientSetting = (bool, Option<(String, String)>, Option<crate::Proxy>);

/// Clients by TLS and proxy configuration: building one loads the root store, so it happens
/// once.
#[derive(Default)]
pub(super) struct Clients {
    built: Mutex<HashMap<ClientSetting, Client>>,
}

impl Clients {
    pub fn client(&self, url: &str, access: &Access) -> Result<Client, SourceError> {
        let key = (
            access.insecure,
            access.tls_client_cert.clone(),
            access.proxy.clone(),
        );
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = built.get(&key) {
            return Ok(client.clone());
        }
        // The process-wide rustls provider (see `GitCache::new`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("tiphys/", env!("CARGO_PKG_VERSION")));
        if access.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some((cert, key)) = &access.tls_client_cert {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .map_err(|e| SourceError::Tls {
                    url: url.to_string(),
                    message: format!("TLS client certificate: {e}"),
                })?;
            builder = builder.identity(identity);
        }
        if let Some(proxy) = &access.proxy {
            builder = builder.proxy(proxy.for_reqwest(url)?);
        }
        let client = builder.build().map_err(|e| SourceError::Tls {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        built.insert(key, client.clone());
        Ok(client)
    }
}

/// `scheme://host:port` of a URL, for "is this the repository's own host?".
pub(super) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Add Basic credentials to a request for `url` when the repository's credentials apply
/// there: the repository's own host, or any host with `passCredentials` (as Helm does).
pub(super) fn with_credentials(
    request: RequestBuilder,
    repo_url: &str,
    url: &str,
    access: &Access,
) -> RequestBuilder {
    match &access.credentials {
        Some(c) if access.pass_credentials || origin(repo_url) == origin(url) => {
            request.basic_auth(&c.username, Some(&c.password))
        }
        _ => request,
    }
}

/// Send a request, mapping transport failures to what an operator fixes.
pub(super) fn send(url: &str, request: RequestBuilder) -> Result<Response, SourceError> {
    request.send().map_err(|e| transport_error(url, &e))
}

pub(super) fn transport_error(url: &str, err: &reqwest::Error) -> SourceError {
    let message = crate::chain(err);
    let lower = message.to_lowercase();
    if ["certificate", "tls", "handshake", "unknownissuer"]
        .iter()
        .any(|w| lower.contains(w))
    {
        SourceError::Tls {
            url: url.to_string(),
            message,
        }
    } else {
        SourceError::Unreachable {
            url: url.to_string(),
            message,
        }
    }
}

/// The error for a non-success status of `url`.
pub(super) fn status_error(url: &str, status: StatusCode) -> SourceError {
    match status.as_u16() {
        401 | 403 => SourceError::AuthFailed {
            url: url.to_string(),
            message: format!("HTTP {status}"),
        },
        _ => SourceError::Git {
            url: url.to_string(),
            message: format!("HTTP {status}"),
        },
    }
}

/// The body, refusing more than `limit` bytes (a chart repository is not trusted to be
/// small).
pub(super) fn body(url: &str, response: Response, limit: u64) -> Result<Vec<u8>, SourceError> {
    let mut out = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SourceError::Unreachable {
            url: url.to_string(),
            message: format!("reading the response: {e}"),
        })?;
    if out.len() as u64 > limit {
        return Err(SourceError::Git {
            url: url.to_string(),
            message: format!("response larger than {} MiB", limit >> 20),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://charts.example.com:8443/stable/x.tgz"),
            "https://charts.example.com:8443"
        );
        assert_eq!(origin("http://127.0.0.1:99"), "http://127.0.0.1:99");
        assert_ne!(
            origin("https://charts.example.com/a"),
            origin("https://cdn.example.com/a")
        );
    }
}
