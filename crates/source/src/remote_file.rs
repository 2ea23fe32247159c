//! Remote manifest files for Kustomize (`resources: [https://host/path/app.yaml]`), fetched
//! over HTTP(S) the way kustomize does: one GET, any non-2xx status is an error.

use std::time::Duration;

use crate::SourceError;

/// Is `url` a single remote file rather than a git repository? kustomize tries every
/// http(s) URL as a file first; a URL that says it is a repository (`//` subdirectory,
/// `?ref=`, `.git`) goes straight to git here.
pub fn is_file_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    !path.contains("//")
        && !path.ends_with(".git")
        && !path.contains(".git/")
        && !query
            .split('&')
            .any(|q| q.starts_with("ref=") || q.starts_with("version="))
}

/// The body of `url`.
pub fn fetch(url: &str) -> Result<String, SourceError> {
    // The process-wide rustls provider (see `GitCache::new`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fail = |message: String| SourceError::Unreachable {
        url: url.to_string(),
        message,
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client.get(url).send().map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(SourceError::Git {
            url: url.to_string(),
            message: format!("HTTP {status}"),
        });
    }
    response.text().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_repositories_are_told_apart() {
        assert!(is_file_url(
            "https://raw.example.com/org/repo/v1/deploy/crds.yaml"
        ));
        assert!(is_file_url("http://127.0.0.1:8080/cm.yaml"));
        assert!(!is_file_url("https://github.com/org/repo//deploy?ref=v1"));
        assert!(!is_file_url("https://github.com/org/repo.git"));
        assert!(!is_file_url("https://github.com/org/repo/deploy?ref=v1"));
        assert!(!is_file_url("git@github.com:org/repo//deploy"));
    }
}
