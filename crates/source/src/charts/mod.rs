//! Helm charts from chart repositories, the way `spec.source.chart` names them: an HTTP(S)
//! repository (`index.yaml`) or an OCI registry (`oci://…`, or a repository Secret with
//! `enableOCI`); and OCI artifacts of manifests (`repoURL: oci://…` with no `chart`, as
//! Argo CD 3 reads them), resolved to a manifest digest and unpacked once per digest.
//!
//! ```text
//!   (repo, chart, targetRevision) ──► listing (index.yaml or tags; one request per repository
//!        │                             per max age, ETag-conditional, concurrent askers wait)
//!        └─► version ──► chart(repo, chart, version) ──► cache/charts/<entry>/tree/<chart>/
//!                         (downloaded once per version, digest checked, unpacked, published)
//! ```
//!
//! A resolved version plays the part a commit plays for git: it is what the controller
//! records as the revision and what the render cache is keyed by.

mod archive;
mod http;
pub mod index;
mod oci;
pub mod version;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ETAG, IF_NONE_MATCH};
use sha2::{Digest, Sha256};

use crate::trees::{TreeError, Trees};
use crate::{Access, SourceError};
use index::{ChartVersion, Listing};
pub use oci::is_oci;
use version::Constraint;

/// How long a repository's listing answers without asking the repository again, unless the
/// owner of the cache says otherwise (the controller uses its refresh interval).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
const MAX_INDEX: u64 = 256 << 20;
const MAX_ARCHIVE: u64 = 100 << 20;

struct CachedListing {
    fetched: Instant,
    /// The cache's generation when fetched: a hard refresh starts a new one, and older
    /// listings are asked for again.
    generation: u64,
    etag: Option<String>,
    listing: Arc<Listing>,
}

/// One listing per repository; its mutex is held while it is fetched, so concurrent askers
/// wait for that one request instead of sending their own.
type Slot = Arc<Mutex<Option<CachedListing>>>;

/// Chart listings and unpacked chart versions, shared by every Application.
pub struct ChartCache {
    trees: Trees,
    listings: Mutex<HashMap<String, Slot>>,
    clients: http::Clients,
    tokens: oci::Tokens,
    /// OCI artifact tags → manifest digest, with when and in which generation it was asked.
    tag_digests: Mutex<HashMap<String, (Instant, u64, String)>>,
    max_age_ms: AtomicU64,
    generation: AtomicU64,
    listing_requests: AtomicU64,
    downloads: AtomicU64,
    /// The layer media types an OCI artifact of manifests may have.
    layer_types: Vec<String>,
}

/// What a chart source asks for.
#[derive(Clone, Copy)]
pub struct ChartRef<'a> {
    pub repo_url: &'a str,
    pub chart: &'a str,
    pub access: &'a Access,
}

impl ChartRef<'_> {
    fn oci(&self) -> bool {
        is_oci(self.repo_url, self.access)
    }

    fn location(&self) -> oci::Location {
        oci::Location::new(self.repo_url, self.chart, self.access)
    }

    /// The listing's key: the repository for an index, the chart's repository for OCI.
    fn listing_key(&self) -> String {
        if self.oci() {
            let at = self.location();
            format!("{}/{}", at.base, at.name)
        } else {
            crate::normalize(self.repo_url)
        }
    }
}

impl ChartCache {
    pub fn new(dir: PathBuf) -> ChartCache {
        ChartCache {
            trees: Trees::new(dir),
            listings: Mutex::default(),
            clients: http::Clients::default(),
            tokens: oci::Tokens::default(),
            tag_digests: Mutex::default(),
            max_age_ms: AtomicU64::new(DEFAULT_MAX_AGE.as_millis() as u64),
            generation: AtomicU64::new(0),
            listing_requests: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            layer_types: oci::layer_types(std::env::var(oci::LAYER_TYPES_ENV).ok().as_deref()),
        }
    }

    /// Accept OCI artifacts whose layer has one of these media types (what
    /// `ARGOCD_REPO_SERVER_OCI_LAYER_MEDIA_TYPES` sets for a process).
    pub fn with_layer_types(mut self, types: &[&str]) -> ChartCache {
        self.layer_types = oci::layer_types(Some(&types.join(",")));
        self
    }

    /// How long a listing is used without asking the repository again.
    pub fn set_max_age(&self, age: Duration) {
        self.max_age_ms
            .store(age.as_millis() as u64, Ordering::Relaxed);
    }

    /// Make the next resolution of every repository ask it again (a hard refresh). Never
    /// waits, not even for a listing being fetched: callers may be on an async runtime.
    pub fn forget_listings(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests for listings (index.yaml or tags) made so far, including 304 answers.
    pub fn listing_requests(&self) -> u64 {
        self.listing_requests.load(Ordering::Relaxed)
    }

    /// Chart archives downloaded so far.
    pub fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    /// The version of the chart `target_revision` selects now.
    pub fn resolve(&self, at: ChartRef<'_>, target_revision: &str) -> Result<String, SourceError> {
        let constraint =
            Constraint::parse(target_revision).map_err(|message| SourceError::Git {
                url: at.repo_url.to_string(),
                message: format!("chart {}: targetRevision {message}", at.chart),
            })?;
        // A registry is asked for an exact version directly, without listing its tags.
        if at.oci() && matches!(constraint, Constraint::Exact(_)) {
            return Ok(target_revision.trim().to_string());
        }
        let listing = self.listing(at, false)?;
        let versions = listing
            .get(at.chart)
            .ok_or_else(|| SourceError::ChartNotFound {
                url: at.repo_url.to_string(),
                chart: at.chart.to_string(),
            })?;
        constraint
            .select(versions.iter().map(|v| v.version.as_str()))
            .map(str::to_string)
            .ok_or_else(|| SourceError::ChartVersionNotFound {
                url: at.repo_url.to_string(),
                chart: at.chart.to_string(),
                constraint: target_revision.to_string(),
                available: available(versions),
            })
    }

    /// The unpacked chart directory of `version` (downloaded the first time it is asked for).
    pub fn chart(&self, at: ChartRef<'_>, version: &str) -> Result<PathBuf, SourceError> {
        let name = entry_name(at, version);
        let tree = self
            .trees
            .get_or_export(&name, |dir| {
                let archive = self.download(at, version)?;
                archive::unpack(&archive, dir).map_err(|message| SourceError::Git {
                    url: at.repo_url.to_string(),
                    message: format!("chart {} {version}: {message}", at.chart),
                })
            })
            .map_err(tree_error)?;
        chart_dir(&tree, at.chart).ok_or_else(|| SourceError::Git {
            url: at.repo_url.to_string(),
            message: format!(
                "chart {} {version}: the archive holds no chart directory",
                at.chart
            ),
        })
    }

    /// The manifest digest an OCI artifact source (`repoURL: oci://registry/repo`, no `chart`)
    /// names with `target_revision` now: a digest as it is; a tag (`latest` when empty); a
    /// semver range, the newest tag it matches. A tag's digest is asked for once per max age
    /// (as a listing is), so many apps on one tag cost one request per refresh.
    pub fn resolve_artifact(
        &self,
        at: ChartRef<'_>,
        target_revision: &str,
    ) -> Result<String, SourceError> {
        let wanted = match target_revision.trim() {
            "" | "HEAD" => "latest",
            other => other,
        };
        if wanted.starts_with("sha256:") {
            return Ok(wanted.to_string());
        }
        let tag = match Constraint::parse(wanted) {
            Ok(Constraint::Exact(_)) | Err(_) => wanted.to_string(),
            Ok(constraint) => {
                let listing = self.listing(at, false)?;
                let tags = listing.get(at.chart).map(Vec::as_slice).unwrap_or_default();
                constraint
                    .select(tags.iter().map(|v| v.version.as_str()))
                    .map(|v| v.replace('+', "_"))
                    .ok_or_else(|| SourceError::RevisionNotFound {
                        url: at.repo_url.to_string(),
                        revision: format!("{wanted}{}", available(tags)),
                    })?
            }
        };
        let key = format!("{}:{tag}", at.listing_key());
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some((fetched, seen_generation, digest)) = self
            .tag_digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && *seen_generation == generation
            && fetched.elapsed() < self.max_age()
        {
            return Ok(digest.clone());
        }
        self.listing_requests.fetch_add(1, Ordering::Relaxed);
        let client = self.clients.client(at.repo_url, at.access)?;
        let digest = oci::artifact_digest(&client, &self.tokens, &at.location(), &tag, at.access)?;
        self.tag_digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), generation, digest.clone()));
        Ok(digest)
    }

    /// The unpacked OCI artifact with manifest `digest` (downloaded the first time): its single
    /// layer's files, or — a Helm chart layer — the chart's directory, so `path: .` is the chart.
    pub fn artifact(&self, at: ChartRef<'_>, digest: &str) -> Result<PathBuf, SourceError> {
        let name = entry_name(at, digest);
        let tree = self
            .trees
            .get_or_export(&name, |dir| {
                self.downloads.fetch_add(1, Ordering::Relaxed);
                let client = self.clients.client(at.repo_url, at.access)?;
                let archive = oci::pull_artifact(
                    &client,
                    &self.tokens,
                    &at.location(),
                    digest,
                    at.access,
                    &self.layer_types,
                )?;
                archive::unpack(&archive, dir).map_err(|message| SourceError::Git {
                    url: at.repo_url.to_string(),
                    message: format!("{digest}: {message}"),
                })
            })
            .map_err(tree_error)?;
        // A packaged chart is one directory holding Chart.yaml; anything else is used as it is.
        let entries: Vec<PathBuf> = std::fs::read_dir(&tree)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        match entries.as_slice() {
            [only] if !tree.join("Chart.yaml").exists() && only.join("Chart.yaml").is_file() => {
                Ok(only.clone())
            }
            _ => Ok(tree),
        }
    }

    /// The annotations of an OCI manifest: a chart version's (`reference` a version) or an
    /// artifact's (a tag or a digest). Asked for each time: this is the revision metadata
    /// someone looks at, not the render path.
    pub fn oci_annotations(
        &self,
        at: ChartRef<'_>,
        reference: &str,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        if !at.oci() {
            return Err(SourceError::Git {
                url: at.repo_url.to_string(),
                message: "not an OCI registry".to_string(),
            });
        }
        let client = self.clients.client(at.repo_url, at.access)?;
        let tag = reference.replace('+', "_");
        oci::annotations(&client, &self.tokens, &at.location(), &tag, at.access)
    }

    /// Whether the repository answers with these credentials (its index, or the registry).
    pub fn check(&self, at: ChartRef<'_>) -> Result<(), SourceError> {
        if at.oci() {
            let client = self.clients.client(at.repo_url, at.access)?;
            return oci::ping(&client, &self.tokens, &at.location(), at.access);
        }
        self.listing(at, true).map(|_| ())
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed))
    }

    /// The repository's listing: the cached one while it is young enough, else asked for
    /// (conditionally, with the ETag of the one held).
    fn listing(&self, at: ChartRef<'_>, always_ask: bool) -> Result<Arc<Listing>, SourceError> {
        let slot = self
            .listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(at.listing_key())
            .or_default()
            .clone();
        let mut cached = slot.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(c) = cached.as_ref()
            && !always_ask
            && c.generation == generation
            && c.fetched.elapsed() < self.max_age()
        {
            return Ok(c.listing.clone());
        }
        self.listing_requests.fetch_add(1, Ordering::Relaxed);
        let client = self.clients.client(at.repo_url, at.access)?;
        let (listing, etag) = if at.oci() {
            let versions =
                oci::versions(&client, &self.tokens, &at.location(), at.chart, at.access)?;
            let entries = versions
                .into_iter()
                .map(|version| ChartVersion {
                    version,
                    ..Default::default()
                })
                .collect();
            (
                Arc::new(Listing::from([(at.chart.to_string(), entries)])),
                None,
            )
        } else {
            let url = format!("{}/index.yaml", at.repo_url.trim_end_matches('/'));
            let mut request =
                http::with_credentials(client.get(&url), at.repo_url, &url, at.access);
            if let Some(etag) = cached.as_ref().and_then(|c| c.etag.as_deref()) {
                request = request.header(IF_NONE_MATCH, etag);
            }
            let response = http::send(&url, request)?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_MODIFIED
                && let Some(c) = cached.as_mut()
            {
                c.fetched = Instant::now();
                c.generation = generation;
                return Ok(c.listing.clone());
            }
            if status.as_u16() == 404 {
                return Err(SourceError::RepoNotFound {
                    url: at.repo_url.to_string(),
                    message: "no index.yaml (HTTP 404): not a Helm chart repository".into(),
                });
            }
            if !status.is_success() {
                return Err(http::status_error(&url, status));
            }
            let etag = response
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = http::body(&url, response, MAX_INDEX)?;
            let text = String::from_utf8_lossy(&bytes);
            (Arc::new(index::parse(&url, &text)?), etag)
        };
        *cached = Some(CachedListing {
            fetched: Instant::now(),
            generation,
            etag,
            listing: listing.clone(),
        });
        Ok(listing)
    }

    /// The archive of `version`, from the registry or from the URL the index gives, checked
    /// against the index's digest when it has one.
    fn download(&self, at: ChartRef<'_>, version: &str) -> Result<Vec<u8>, SourceError> {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let client = self.clients.client(at.repo_url, at.access)?;
        if at.oci() {
            return oci::pull(
                &client,
                &self.tokens,
                &at.location(),
                at.chart,
                version,
                at.access,
            );
        }
        let find = |listing: &Listing| {
            listing
                .get(at.chart)
                .and_then(|versions| versions.iter().find(|v| v.version == version))
                .cloned()
        };
        // The version came from a listing, possibly one this process no longer holds fresh
        // (a restart with the chart's version recorded in the Application's status).
        let cached = self.listing(at, false)?;
        let entry = match find(&cached) {
            Some(entry) => entry,
            None => {
                let fresh = self.listing(at, true)?;
                find(&fresh).ok_or_else(|| SourceError::ChartVersionNotFound {
                    url: at.repo_url.to_string(),
                    chart: at.chart.to_string(),
                    constraint: version.to_string(),
                    available: String::new(),
                })?
            }
        };
        let first = entry.urls.first().ok_or_else(|| SourceError::Git {
            url: at.repo_url.to_string(),
            message: format!(
                "chart {} {version}: the index gives no download URL",
                at.chart
            ),
        })?;
        let url = index::archive_url(at.repo_url, first);
        let request = http::with_credentials(client.get(&url), at.repo_url, &url, at.access);
        let response = http::send(&url, request)?;
        if !response.status().is_success() {
            return Err(http::status_error(&url, response.status()));
        }
        let archive = http::body(&url, response, MAX_ARCHIVE)?;
        if !entry.digest.is_empty() {
            let actual = oci::hex(&Sha256::digest(&archive));
            if !entry.digest.eq_ignore_ascii_case(&actual) {
                return Err(SourceError::DigestMismatch {
                    url,
                    expected: entry.digest,
                    actual,
                });
            }
        }
        Ok(archive)
    }
}

/// A tree store failure as the source error it is.
fn tree_error(e: TreeError<SourceError>) -> SourceError {
    match e {
        TreeError::Io(path, source) => SourceError::Io {
            path: path.display().to_string(),
            source: Arc::new(source),
        },
        TreeError::Export(e) => e,
    }
}

/// `" (it has: 1.2.0, 1.1.0, …)"`: the newest few versions, for an error message.
fn available(versions: &[ChartVersion]) -> String {
    if versions.is_empty() {
        return " (it has no versions)".into();
    }
    let mut parsed: Vec<_> = versions
        .iter()
        .map(|v| (version::parse(&v.version), v.version.as_str()))
        .collect();
    parsed.sort_by(|a, b| b.0.cmp(&a.0));
    let newest: Vec<&str> = parsed.iter().take(8).map(|(_, text)| *text).collect();
    let more = if versions.len() > newest.len() {
        ", …"
    } else {
        ""
    };
    format!(" (it has: {}{more})", newest.join(", "))
}

/// The cache entry of one chart version: readable, and unique per repository.
fn entry_name(at: ChartRef<'_>, version: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let source = format!("{}\n{}\n{version}", at.listing_key(), at.chart);
    let hash = oci::hex(&Sha256::digest(source.as_bytes()));
    format!("{}-{}-{}", clean(at.chart), clean(version), &hash[..16])
}

/// The chart inside an unpacked archive: the directory named after it, else the only one.
fn chart_dir(tree: &Path, chart: &str) -> Option<PathBuf> {
    let base = chart.rsplit('/').next().unwrap_or(chart);
    let named = tree.join(base);
    if named.join("Chart.yaml").is_file() {
        return Some(named);
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(tree)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    (dirs.len() == 1).then(|| dirs[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_differ_by_repository_and_version() {
        let access = Access::default();
        let at = |repo| ChartRef {
            repo_url: repo,
            chart: "web",
            access: &access,
        };
        let a = entry_name(at("https://a.example.com/charts"), "1.0.0");
        assert!(a.starts_with("web-1.0.0-"), "{a}");
        assert_ne!(a, entry_name(at("https://b.example.com/charts"), "1.0.0"));
        assert_ne!(a, entry_name(at("https://a.example.com/charts"), "1.0.1"));
        assert_eq!(a, entry_name(at("https://A.example.com/charts/"), "1.0.0"));
    }

    #[test]
    fn unknown_versions_name_what_there_is() {
        let versions: Vec<ChartVersion> = ["1.0.0", "1.2.0", "1.10.0"]
            .iter()
            .map(|v| ChartVersion {
                version: v.to_string(),
                ..Default::default()
            })
            .collect();
        assert_eq!(available(&versions), " (it has: 1.10.0, 1.2.0, 1.0.0)");
    }
}
