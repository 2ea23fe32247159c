//! Calls to a Tiphys (or Argo CD) API server: JSON requests with a bearer token, Argo's error
//! shape turned into readable errors, and server-sent event streams.

use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use futures::channel::mpsc;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::ServerEntry;

/// An error answer from the API server, as Argo CD sends them (`{"error","code","message"}`).
#[derive(Debug, thiserror::Error)]
#[error("{method} {url}: {} ({status}): {message}{hint}", code_name(*.code), hint = hint(*.code))]
pub struct ServerError {
    pub method: Method,
    pub url: Url,
    pub status: u16,
    /// The gRPC status code.
    pub code: i64,
    pub message: String,
}

fn code_name(code: i64) -> &'static str {
    match code {
        1 => "Canceled",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

fn hint(code: i64) -> &'static str {
    if code == 16 {
        "\n(log in again: tiphys login SERVER)"
    } else {
        ""
    }
}

impl ServerError {
    /// Argo CD answers "permission denied" for objects that do not exist, so names cannot be
    /// probed: for the CLI both mean "not there for you".
    pub fn is_absent(&self) -> bool {
        self.code == 5 || self.code == 7
    }
}

#[derive(Clone)]
pub struct ApiClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(server: &ServerEntry, token: &str) -> anyhow::Result<ApiClient> {
        // reqwest is built on the workspace's rustls with ring; it needs the provider set once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = base_url(server)?;
        let http = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(server.insecure)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(ApiClient {
            base,
            token: token.to_string(),
            http,
        })
    }

    /// `path` (with `/api/...`) and query pairs under the server's address.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("{path}: not a path on {}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// One request; the answer's JSON, or the server's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = self.url(path, query)?;
        let mut request = self.http.request(method.clone(), url.clone());
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        if !status.is_success() {
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let message = answer["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ServerError {
                method,
                url,
                status: status.as_u16(),
                code: answer["code"].as_i64().unwrap_or(2),
                message,
            }
            .into());
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {url}: answer is not JSON"))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let value = self.call(Method::GET, path, query, None).await?;
        serde_json::from_value(value).with_context(|| format!("GET {path}: unexpected answer"))
    }

    /// The `result` of each server-sent event at `path`, until the server ends the stream or
    /// the receiver is dropped. A stream that breaks is reopened (the server sends the current
    /// state first, so nothing is missed); the stream ends with the error when it cannot be.
    pub fn events(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<impl Stream<Item = anyhow::Result<Value>> + use<>> {
        let url = self.url(path, query)?;
        let (mut tx, rx) = mpsc::channel(16);
        let client = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match client.read_events(&url, &mut tx).await {
                    // The receiver went away: nobody is listening any more.
                    Ok(false) => return,
                    Ok(true) => failures = 0,
                    Err(e) if failures >= 5 || e.downcast_ref::<ServerError>().is_some() => {
                        let _ = futures::SinkExt::send(&mut tx, Err(e)).await;
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::debug!(error = %e, "event stream interrupted; reopening");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Read one connection's events into `tx`: false once `tx` is closed, true when the server
    /// ended the stream.
    async fn read_events(
        &self,
        url: &Url,
        tx: &mut mpsc::Sender<anyhow::Result<Value>>,
    ) -> anyhow::Result<bool> {
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        let mut response = request.send().await.with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap_or_default();
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ServerError {
                method: Method::GET,
                url: url.clone(),
                status,
                code: answer["code"].as_i64().unwrap_or(2),
                message: answer["message"].as_str().unwrap_or_default().to_string(),
            }
            .into());
        }
        let mut parser = EventParser::default();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("GET {url}: reading events"))?
        {
            for data in parser.push(&chunk) {
                let value: Value = serde_json::from_str(&data)
                    .with_context(|| format!("GET {url}: event is not JSON"))?;
                let result = value.get("result").cloned().unwrap_or(value);
                if futures::SinkExt::send(tx, Ok(result)).await.is_err() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// `text` as one segment of a URL path (a name with `/` or `:` in it stays one segment).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `https://host:port/` (or `http://` for a plain-text server). A scheme given with the
/// address wins over the flags.
pub fn base_url(server: &ServerEntry) -> anyhow::Result<Url> {
    let address = server.server.trim_end_matches('/');
    let text = if address.starts_with("http://") || address.starts_with("https://") {
        format!("{address}/")
    } else if server.plain_text {
        format!("http://{address}/")
    } else {
        format!("https://{address}/")
    };
    Url::parse(&text).with_context(|| format!("server address {:?}", server.server))
}

/// Server-sent events split out of a byte stream: the `data:` lines of each event joined.
#[derive(Default)]
struct EventParser {
    pending: String,
}

impl EventParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending
            .push_str(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let block: String = self.pending.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_whatever_the_chunking() {
        let mut parser = EventParser::default();
        assert!(parser.push(b"data: {\"a\"").is_empty());
        assert_eq!(
            parser.push(b":1}\n\n: keep-alive\n\ndata: 2\r\n\r\n"),
            ["{\"a\":1}", "2"]
        );
        assert_eq!(parser.push(b"data: x\ndata: y\n\n"), ["x\ny"]);
    }

    #[test]
    fn addresses_become_urls_by_the_flags_unless_they_carry_a_scheme() {
        let entry = |server: &str, plain_text| ServerEntry {
            server: server.into(),
            insecure: false,
            plain_text,
        };
        assert_eq!(
            base_url(&entry("cd.example.com", false)).unwrap().as_str(),
            "https://cd.example.com/"
        );
        assert_eq!(
            base_url(&entry("127.0.0.1:8080", true)).unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            base_url(&entry("http://h:1/", false)).unwrap().as_str(),
            "http://h:1/"
        );
        assert!(base_url(&entry("not a host", false)).is_err());
    }
}
