//! A chart repository's `index.yaml`: for each chart, its versions with the archive URLs and
//! digests. Only those fields are read; the rest of an index (often megabytes) is skipped.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SourceError;

/// One published version of a chart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartVersion {
    pub version: String,
    /// Where the archive is (absolute, or relative to the repository URL).
    pub urls: Vec<String>,
    /// The archive's SHA-256, hex; empty when the index gives none.
    pub digest: String,
}

/// Chart name → its versions.
pub type Listing = BTreeMap<String, Vec<ChartVersion>>;

#[derive(Deserialize)]
struct IndexFile {
    #[serde(default)]
    entries: BTreeMap<String, Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    // A scalar of any YAML type: `version: 1.0` is a float to YAML but a version here.
    #[serde(default)]
    version: serde_json::Value,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: String,
}

pub fn parse(url: &str, text: &str) -> Result<Listing, SourceError> {
    let index: IndexFile = serde_saphyr::from_str(text).map_err(|e| SourceError::Git {
        url: url.to_string(),
        message: format!("invalid index.yaml: {e}"),
    })?;
    Ok(index
        .entries
        .into_iter()
        .map(|(name, entries)| {
            let versions = entries
                .into_iter()
                .map(|e| ChartVersion {
                    version: match e.version {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    },
                    urls: e.urls,
                    digest: e.digest,
                })
                .filter(|v| !v.version.is_empty())
                .collect();
            (name, versions)
        })
        .collect())
}

/// The absolute URL of an archive the index at `repo_url` names.
pub fn archive_url(repo_url: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!(
            "{}/{}",
            repo_url.trim_end_matches('/'),
            url.trim_start_matches("./").trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_urls_and_digests() {
        let text = "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.0\n    urls: [web-1.0.tgz]\n    digest: abc\n    created: 2026-01-01T00:00:00Z\n    maintainers: [{name: x}]\n  - version: 1.1.0\n    urls: [https://cdn.example.com/web-1.1.0.tgz]\n  db: []\ngenerated: 2026-01-01T00:00:00Z\n";
        let listing = parse("https://charts.example.com", text).unwrap();
        let web = &listing["web"];
        assert_eq!(web[0].version, "1.0");
        assert_eq!(web[0].digest, "abc");
        assert_eq!(web[1].urls, vec!["https://cdn.example.com/web-1.1.0.tgz"]);
        assert!(listing["db"].is_empty());
        assert_eq!(
            archive_url("https://charts.example.com/stable/", "web-1.0.tgz"),
            "https://charts.example.com/stable/web-1.0.tgz"
        );
        assert_eq!(
            archive_url("https://x", "https://cdn/y.tgz"),
            "https://cdn/y.tgz"
        );
        let err = parse("https://charts.example.com", "entries: [").unwrap_err();
        assert!(
            err.to_string()
                .contains("https://charts.example.com: invalid index.yaml")
        );
    }
}
