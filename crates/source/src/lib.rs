//! Git sources through gitoxide: normalised URLs, a bare-repository cache per repository,
//! cheap "did it move?" checks (one ref advertisement per repository), revision resolution to
//! a commit SHA, and trees exported per commit for rendering.
//!
//! ```text
//!   url ──► normalize ──► cache/repos/<key> (bare, one fetch at a time per repo)
//!              │                 │
//!              └─ ls_remote ─────┴─► resolve(revision) ──► sha ──► tree(sha) ──► cache/trees/<sha>
//! ```
//!
//! Revisions the remote advertises are fetched at depth 1 (their tip is all rendering
//! needs); any other commit deepens the cache to full history first.
#![forbid(unsafe_code)]

mod adverts;
pub mod charts;
pub mod credentials;
mod entry;
mod local;
pub mod remote_base;
pub mod remote_file;
mod trees;
mod url;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use entry::{EntryLocks, staging_name};
use trees::{Item, TreeError, Trees};

pub use adverts::RequestKind;
pub use url::normalize;

/// Why a source operation failed; the variants tell an operator what to fix.
/// Cloneable (an I/O error is shared behind an `Arc`): one failed request answers every
/// caller that waited for it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: authentication failed: {message}")]
    AuthFailed { url: String, message: String },
    #[error("{url}: repository not found: {message}")]
    RepoNotFound { url: String, message: String },
    #[error("{url}: revision {revision:?} not found")]
    RevisionNotFound { url: String, revision: String },
    #[error(
        "{url}: TLS failure (certificate not trusted, or a client certificate required): {message}"
    )]
    Tls { url: String, message: String },
    #[error("{url}: host unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: {message}")]
    Git { url: String, message: String },
    #[error("{url}: chart {chart:?} not found in the repository")]
    ChartNotFound { url: String, chart: String },
    #[error("{url}: chart {chart:?} has no version matching {constraint:?}{available}")]
    ChartVersionNotFound {
        url: String,
        chart: String,
        constraint: String,
        /// `" (it has: …)"`, or empty.
        available: String,
    },
    #[error("{url}: digest mismatch: the index says sha256 {expected}, the download is {actual}")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: Arc<std::io::Error>,
    },
}

/// Username and password (or token) for HTTPS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// How to reach a repository: what an Argo CD repository Secret configures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub credentials: Option<Credentials>,
    /// Skip TLS certificate verification (`insecure: "true"`).
    pub insecure: bool,
    /// A TLS client certificate and key, PEM (`tlsClientCertData`, `tlsClientCertKey`).
    pub tls_client_cert: Option<(String, String)>,
    /// A private key for ssh remotes (`sshPrivateKey`).
    pub ssh_private_key: Option<String>,
    /// Helm: send the credentials to chart archives on other hosts too (`passCredentials`).
    pub pass_credentials: bool,
    /// Helm OCI: plain HTTP to the registry (`insecureOCIForceHttp`).
    pub plain_http: bool,
    /// Helm: the repository is an OCI registry though its URL lacks `oci://` (`enableOCI`).
    pub oci: bool,
    /// The HTTP(S) proxy for this repository (`proxy`, `noProxy`); without one, the
    /// process's `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` apply, as for Argo CD.
    pub proxy: Option<Proxy>,
}

/// A repository's proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proxy {
    pub url: String,
    /// Hosts reached directly, as `NO_PROXY` lists them.
    pub no_proxy: String,
}

impl Proxy {
    /// As reqwest applies it: every scheme through `url`, except the `no_proxy` hosts.
    pub fn for_reqwest(&self, repo_url: &str) -> Result<reqwest::Proxy, SourceError> {
        let proxy = reqwest::Proxy::all(&self.url).map_err(|e| SourceError::Unreachable {
            url: repo_url.to_string(),
            message: format!("proxy {:?}: {e}", self.url),
        })?;
        Ok(proxy.no_proxy(reqwest::NoProxy::from_string(&self.no_proxy)))
    }
}

impl Access {
    pub fn basic(username: &str, password: &str) -> Access {
        Access {
            credentials: Some(Credentials {
                username: username.into(),
                password: password.into(),
            }),
            ..Default::default()
        }
    }
}

/// A reference the remote advertises, with the commit it points to (tags peeled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub commit: String,
}

/// A commit's author, time, message and tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitMetadata {
    pub sha: String,
    /// `Name <email>`, as Argo CD shows it.
    pub author: String,
    /// Seconds since the epoch.
    pub seconds: i64,
    pub message: String,
    pub tags: Vec<String>,
}

/// An error with every cause in its chain, `outer: inner: ...`.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Classify a gitoxide error by what its chain says.
fn classify<E: std::error::Error + 'static>(url: &str, err: E) -> SourceError {
    let message = chain(&err);
    // Only the prose is read, not the URLs and paths in it: a temporary directory named
    // `.tmpKcdNSV` or a repository called `tls-config` says nothing about what failed.
    let lower = message
        .to_lowercase()
        .split_whitespace()
        .filter(|w| !w.contains('/'))
        .collect::<Vec<_>>()
        .join(" ");
    // Codes and short words are whole words: a port such as 40189 is not a 401.
    let word = |code: &str| {
        lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == code)
    };
    let status = word;
    let any = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let url = url.to_string();
    if any(&["certificate"]) || word("tls") || word("ssl") {
        SourceError::Tls { url, message }
    } else if status("401")
        || status("403")
        || any(&["authenticat", "credentials", "permission denied"])
    {
        SourceError::AuthFailed { url, message }
    } else if any(&[
        "connection refused",
        "could not resolve",
        "timed out",
        "unreachable",
    ]) || word("dns")
    {
        SourceError::Unreachable { url, message }
    } else if status("404")
        || any(&[
            "not found",
            "does not exist",
            "no such file",
            "not a git repository",
            "could not find",
            "valid git directory",
        ])
    {
        SourceError::RepoNotFound { url, message }
    } else {
        SourceError::Git { url, message }
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {}

    #[test]
    fn urls_and_paths_in_a_message_are_not_read_as_causes() {
        let u = "file:///tmp/.tmpKcdNSV/nope.git";
        let e = E(
            "Could not verify that \"file:///tmp/.tmpKcdNSV/nope.git\" is a valid git directory: \
             Could not retrieve metadata of \"/tmp/.tmpKcdNSV/nope.git/.git\": No such file or directory",
        );
        assert!(matches!(classify(u, e), SourceError::RepoNotFound { .. }));
        let u = "https://git.example.com/ssl/tls-config.git";
        let e = E("https://git.example.com/ssl/tls-config.git: Received HTTP status 404");
        assert!(matches!(classify(u, e), SourceError::RepoNotFound { .. }));
        let e = E("error trying to connect: dns error: failed to lookup address");
        assert!(matches!(classify(u, e), SourceError::Unreachable { .. }));
    }

    #[test]
    fn ports_are_not_status_codes() {
        let u = "https://127.0.0.1:40189/r.git";
        assert!(matches!(
            classify(
                u,
                E("https://127.0.0.1:40189/r.git: invalid peer certificate: UnknownIssuer")
            ),
            SourceError::Tls { .. }
        ));
        assert!(matches!(
            classify(u, E("Received HTTP status 401")),
            SourceError::AuthFailed { .. }
        ));
        assert!(matches!(
            classify(
                u,
                E("error sending request for url (http://127.0.0.1:40189/x)")
            ),
            SourceError::Git { .. }
        ));
        assert!(matches!(
            classify(u, E("HTTP status 404")),
            SourceError::RepoNotFound { .. }
        ));
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source: Arc::new(source),
    }
}

const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// The on-disk cache of repositories and exported trees, shared by all Applications (and by
/// processes sharing the directory).
///
/// Every entry has one writer at a time (threads and processes wait for it), is written
/// under a staging name unique to its writer and published by a rename, so a `kill -9` at any
/// moment leaves either the previous entry or none — never a half-written one under the
/// published name. See `entry.rs` and `trees.rs`.
pub struct GitCache {
    root: PathBuf,
    /// One writer per repository (init, fetch); different repositories proceed in parallel.
    repo_locks: Arc<EntryLocks>,
    trees: Trees,
    adverts: adverts::Adverts,
    requests: adverts::RequestCounts,
    /// Commits known to be in the cache repository (`<cache key>@<sha>`): resolving to one
    /// of them needs no opening of the repository, which at thousands of resolutions a
    /// minute would be most of their cost.
    present: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Cache repositories opened before, with when each was last marked used. Opening one
    /// reads its configuration and finds its object database: when every repository is
    /// asked for its refs every few seconds, that was most of the cost of asking.
    opened: std::sync::Mutex<
        std::collections::HashMap<PathBuf, (gix::ThreadSafeRepository, std::time::Instant)>,
    >,
}

/// The marker of a repository whose initialisation finished (inside the published entry).
const REPO_READY: &str = "tiphys-ready";

impl GitCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        // HTTPS remotes need a process-wide rustls provider; ring is the one the workspace
        // builds. Installing fails harmlessly when one is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let root = root.into();
        // Staging and trash directories of writers that died long ago (kill -9 mid-export):
        // entries are cleaned when next written, these would otherwise stay forever.
        for dir in ["trees", "repos", "charts"] {
            entry::remove_abandoned(&root.join(dir), GRACE);
        }
        GitCache {
            trees: Trees::new(root.join("trees")),
            root,
            repo_locks: Arc::default(),
            adverts: Default::default(),
            requests: Default::default(),
            present: Default::default(),
            opened: Default::default(),
        }
    }

    /// Whether `commit` is known to be in the cache repository of `url` (and the repository
    /// is still there, marked as used).
    fn known_present(&self, url: &str, commit: &str) -> bool {
        let key = format!("{}@{commit}", url::cache_key(url));
        let known = self
            .present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key);
        let dir = self.repo_dir(url);
        if known && dir.join(REPO_READY).exists() {
            self.mark_used(&dir);
            return true;
        }
        false
    }

    fn note_present(&self, url: &str, commit: &str) {
        let mut present = self.present.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: forgetting only costs opening the repository once more.
        if present.len() >= 100_000 {
            present.clear();
        }
        present.insert(format!("{}@{commit}", url::cache_key(url)));
    }

    /// The repository of `url` is being made anew: what it held is no longer known.
    fn forget_present(&self, url: &str) {
        let prefix = format!("{}@", url::cache_key(url));
        self.present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k| !k.starts_with(&prefix));
    }

    /// Where the bare cache repository for `url` lives.
    pub fn repo_dir(&self, url: &str) -> PathBuf {
        self.root.join("repos").join(url::cache_key(url))
    }

    fn open_or_init(&self, url: &str) -> Result<gix::Repository, SourceError> {
        let dir = self.repo_dir(url);
        if dir.join(REPO_READY).exists() {
            return self.open_ready(url, &dir);
        }
        self.forget_opened(&dir);
        self.forget_present(url);
        let repos = self.root.join("repos");
        let key = url::cache_key(url);
        let _guard = self.repo_locks.lock(&repos, &key).map_err(io(&repos))?;
        if dir.join(REPO_READY).exists() {
            return gix::open(&dir).map_err(|e| classify(url, e));
        }
        entry::remove_leftovers(&repos, &key);
        if dir.exists() {
            // An initialisation that died half-way, or an entry from an older layout.
            entry::remove_entry(&dir);
        }
        self.evict_repos();
        let staging = repos.join(staging_name(&key));
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        gix::init_bare(&staging).map_err(|e| classify(url, e))?;
        // Network timeouts for HTTP remotes: give up connecting after 10 s, and abort a
        // transfer that stays under 1 KB/s for 60 s (git's own lowSpeed settings).
        let config = staging.join("config");
        let mut text = std::fs::read_to_string(&config).map_err(io(&config))?;
        text.push_str("[http]\n\tlowSpeedLimit = 1000\n\tlowSpeedTime = 60\n[gitoxide \"http\"]\n\tconnectTimeout = 10000\n");
        std::fs::write(&config, text).map_err(io(&config))?;
        let ready = staging.join(REPO_READY);
        std::fs::write(&ready, "").map_err(io(&ready))?;
        std::fs::rename(&staging, &dir).map_err(io(&dir))?;
        gix::open(&dir).map_err(|e| classify(url, e))
    }

    /// The initialised cache repository at `dir`, opened once and then shared (each caller
    /// gets its own handle: configuration set on one stays with it). Marked used at most once
    /// a minute, which is all eviction needs.
    fn open_ready(&self, url: &str, dir: &Path) -> Result<gix::Repository, SourceError> {
        let now = std::time::Instant::now();
        let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((repo, _)) = opened.get(dir) {
            let handle = repo.to_thread_local();
            drop(opened);
            self.mark_used(dir);
            return Ok(handle);
        }
        drop(opened);
        touch(dir);
        let repo = gix::ThreadSafeRepository::open(dir).map_err(|e| classify(url, e))?;
        let handle = repo.to_thread_local();
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir.to_path_buf(), (repo, now));
        Ok(handle)
    }

    /// Mark the cache repository at `dir` used, at most every [`MARK_EVERY`] once this
    /// process has it open.
    fn mark_used(&self, dir: &Path) {
        let now = std::time::Instant::now();
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        match opened.get_mut(dir) {
            Some((_, marked)) if now.duration_since(*marked) <= MARK_EVERY => {}
            Some((_, marked)) => {
                *marked = now;
                touch(dir);
            }
            None => touch(dir),
        }
    }

    /// The repository at `dir` is being made anew (or was removed).
    fn forget_opened(&self, dir: &Path) {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(dir);
    }

    /// The cache repository for `url`, configured for this access (ssh key).
    fn repo_for(&self, url: &str, access: &Access) -> Result<gix::Repository, SourceError> {
        let mut repo = self.open_or_init(url)?;
        if let Some(key) = &access.ssh_private_key {
            let command = self.ssh_command(key, access.insecure)?;
            let mut config = repo.config_snapshot_mut();
            config
                .set_value(&gix::config::tree::Core::SSH_COMMAND, command.as_str())
                .map_err(|e| classify(url, e))?;
            config.commit().map_err(|e| classify(url, e))?;
        }
        Ok(repo)
    }

    /// `ssh` with the key written to the cache (mode 0600). Host keys are trusted on first
    /// use and remembered in the cache; `insecure` skips host key checking altogether.
    fn ssh_command(&self, key: &str, insecure: bool) -> Result<String, SourceError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.root.join("ssh");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let name = format!("key-{}", url::cache_key(key));
        let path = dir.join(&name);
        if !path.exists() {
            // Written whole under a private name, then published: a reader never finds half
            // a key (and a half-written one would never be rewritten).
            let staging = dir.join(staging_name(&name));
            let mut text = key.trim_end().to_string();
            text.push('\n');
            std::fs::write(&staging, text).map_err(io(&staging))?;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
                .map_err(io(&staging))?;
            std::fs::rename(&staging, &path).map_err(io(&path))?;
        }
        let host_checking = if insecure {
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null".to_string()
        } else {
            format!(
                "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
                dir.join("known_hosts").display()
            )
        };
        Ok(format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 {host_checking}",
            path.display()
        ))
    }

    /// The references the remote advertises (branches, tags, HEAD) in one round-trip.
    pub fn ls_remote(&self, url: &str, access: &Access) -> Result<Vec<RemoteRef>, SourceError> {
        if let Some(refs) = local::advertised_refs(url) {
            self.requests.add(url, RequestKind::LsRemote);
            return Ok(refs);
        }
        let repo = self.repo_for(url, access)?;
        let remote = repo
            .remote_at(url.to_string())
            .and_then(|r| {
                r.with_refspecs(
                    REFSPECS.iter().copied().chain(["HEAD"]),
                    gix::remote::Direction::Fetch,
                )
            })
            .map_err(|e| classify(url, e))?;
        self.requests.add(url, RequestKind::LsRemote);
        let connection = connect(&repo, &remote, url, access)?;
        let (ref_map, _) = connection
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(|e| classify(url, e))?;
        let mut refs = Vec::new();
        for r in &ref_map.remote_refs {
            use gix::protocol::handshake::Ref;
            let (name, commit) = match r {
                Ref::Peeled {
                    full_ref_name,
                    object,
                    ..
                } => (full_ref_name, object),
                Ref::Direct {
                    full_ref_name,
                    object,
                } => (full_ref_name, object),
                Ref::Symbolic {
                    full_ref_name,
                    object,
                    ..
                } => (full_ref_name, object),
                Ref::Unborn { .. } => continue,
            };
            refs.push(RemoteRef {
                name: name.to_string(),
                commit: commit.to_string(),
            });
        }
        Ok(refs)
    }

    /// Fetch every branch and tag, with full history, into the cache (force-pushes
    /// overwrite; a shallow cache is deepened).
    pub fn fetch(&self, url: &str, access: &Access) -> Result<(), SourceError> {
        self.fetch_scope(url, access, None)
    }

    /// Fetch what `scope` needs: one advertised ref at depth 1 (enough to render its tip), or
    /// everything (needed to find an arbitrary or abbreviated commit).
    fn fetch_scope(
        &self,
        url: &str,
        access: &Access,
        tip_of: Option<&str>,
    ) -> Result<(), SourceError> {
        // Initialised first: that may take the repository's lock itself.
        self.repo_for(url, access)?;
        let repos = self.root.join("repos");
        let key = url::cache_key(url);
        let _guard = self.repo_locks.lock(&repos, &key).map_err(io(&repos))?;
        // Holding the repository's lock, any git lock file in it was left by a writer that
        // died mid-fetch: it would block every fetch from now on.
        remove_stale_git_locks(&self.repo_dir(url));
        self.reopened_on_miss(url, || self.fetch_locked(url, access, tip_of))
    }

    /// Run `f`, and once more with the repository opened anew if it missed an object: the
    /// repository as this process had it open may predate a fetch made meanwhile (by another
    /// thread or process), so refs and commits name objects in a pack the open handle does not
    /// know. Opened anew, it sees them.
    fn reopened_on_miss<T>(
        &self,
        url: &str,
        f: impl Fn() -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        match f() {
            Err(e) if e.to_string().contains("could not be found") => {
                self.forget_opened(&self.repo_dir(url));
                f()
            }
            other => other,
        }
    }

    /// [`GitCache::fetch_scope`] once the repository's lock is held.
    fn fetch_locked(
        &self,
        url: &str,
        access: &Access,
        tip_of: Option<&str>,
    ) -> Result<(), SourceError> {
        use gix::remote::fetch::Shallow;
        let repo = self.repo_for(url, access)?;
        let (refspecs, shallow): (Vec<String>, Shallow) = match tip_of {
            Some(name) => (
                vec![format!("+{name}:{name}")],
                Shallow::DepthAtRemote(std::num::NonZeroU32::MIN),
            ),
            None if repo.is_shallow().unwrap_or(false) => (
                REFSPECS.iter().map(|s| s.to_string()).collect(),
                Shallow::undo(),
            ),
            None => (
                REFSPECS.iter().map(|s| s.to_string()).collect(),
                Shallow::NoChange,
            ),
        };
        let remote = repo
            .remote_at(url.to_string())
            .and_then(|r| {
                r.with_refspecs(
                    refspecs.iter().map(String::as_str),
                    gix::remote::Direction::Fetch,
                )
            })
            .map_err(|e| classify(url, e))?;
        self.requests.add(url, RequestKind::Fetch);
        let connection = connect(&repo, &remote, url, access)?;
        connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| classify(url, e))?
            .with_shallow(shallow)
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| classify(url, e))?;
        Ok(())
    }

    /// The references the remote advertises, from an advertisement that started at or after
    /// `since`: concurrent askers of one repository share one request (see `adverts.rs`).
    pub fn advertised(
        &self,
        url: &str,
        access: &Access,
        since: std::time::Instant,
    ) -> Result<Arc<Vec<RemoteRef>>, SourceError> {
        self.adverts.get(&url::cache_key(url), access, since, || {
            self.ls_remote(url, access)
        })
    }

    /// Requests made to each remote so far (`argocd_git_request_total`).
    pub fn request_counts(&self) -> Vec<(String, RequestKind, u64)> {
        self.requests.snapshot()
    }

    /// Resolve `revision` (HEAD, branch, tag, full ref, full or abbreviated SHA) to a commit,
    /// asking the remote now.
    pub fn resolve(
        &self,
        url: &str,
        revision: &str,
        access: &Access,
    ) -> Result<String, SourceError> {
        self.resolve_since(url, revision, access, std::time::Instant::now())
    }

    /// [`GitCache::resolve`] from a ref advertisement that started at or after `since`
    /// (shared with every other asker of the repository).
    pub fn resolve_since(
        &self,
        url: &str,
        revision: &str,
        access: &Access,
        since: std::time::Instant,
    ) -> Result<String, SourceError> {
        let wanted = if revision.is_empty() {
            "HEAD"
        } else {
            revision
        };
        // A full commit id names the same commit forever: when the cache has it, no round
        // trip is needed (an operation pinned to a commit asks on every step, also after a
        // force-push took it off every branch).
        if wanted.len() == 40
            && wanted.chars().all(|c| c.is_ascii_hexdigit())
            && let Some(found) = self.local_commit(url, wanted)
        {
            return Ok(found);
        }
        let refs = self.advertised(url, access, since)?;
        if let Some(r) = find_advertised(&refs, wanted) {
            return self.commit_of(url, r, access);
        }
        let is_hex = wanted.len() >= 4
            && wanted.len() <= 40
            && wanted.chars().all(|c| c.is_ascii_hexdigit());
        if !is_hex {
            return Err(SourceError::RevisionNotFound {
                url: url.to_string(),
                revision: wanted.to_string(),
            });
        }
        self.fetch(url, access)?;
        let repo = self.open_or_init(url)?;
        let found = repo
            .rev_parse_single(wanted)
            .ok()
            .and_then(|id| id.object().ok())
            .and_then(|o| o.peel_to_commit().ok());
        match found {
            Some(commit) => Ok(commit.id.to_string()),
            None => Err(SourceError::RevisionNotFound {
                url: url.to_string(),
                revision: wanted.to_string(),
            }),
        }
    }

    /// `id` when the cache holds it as a commit (or a tag of one), without asking the remote.
    fn local_commit(&self, url: &str, id: &str) -> Option<String> {
        if !self.repo_dir(url).join(REPO_READY).exists() {
            return None;
        }
        let repo = self.open_or_init(url).ok()?;
        let id = gix::ObjectId::from_hex(id.as_bytes()).ok()?;
        let commit = repo.find_object(id).ok()?.peel_to_commit().ok()?;
        Some(commit.id.to_string())
    }

    /// The commit an advertised ref (to a commit or an annotated tag) stands for; when the
    /// cache lacks it, a depth-1 fetch of just that ref is enough.
    fn commit_of(
        &self,
        url: &str,
        advertised: &RemoteRef,
        access: &Access,
    ) -> Result<String, SourceError> {
        if self.known_present(url, &advertised.commit) {
            return Ok(advertised.commit.clone());
        }
        let lookup = |repo: &gix::Repository| -> Option<String> {
            let id = gix::ObjectId::from_hex(advertised.commit.as_bytes()).ok()?;
            let commit = repo.find_object(id).ok()?.peel_to_commit().ok()?;
            let sha = commit.id.to_string();
            // Only a ref that names the commit itself (not an annotated tag) is remembered.
            if sha == advertised.commit {
                self.note_present(url, &sha);
            }
            Some(sha)
        };
        if let Some(sha) = lookup(&self.open_or_init(url)?) {
            return Ok(sha);
        }
        // `HEAD` is fetched as the branch it points to would be: by its own name.
        self.fetch_scope(url, access, Some(&advertised.name))?;
        lookup(&self.open_or_init(url)?).ok_or_else(|| SourceError::Git {
            url: url.to_string(),
            message: format!(
                "{} ({}) advertised by the remote is missing after fetch",
                advertised.name, advertised.commit
            ),
        })
    }

    /// The tree of `commit` as files on disk (exported once per commit, then reused; the
    /// least recently used trees beyond [`MAX_TREES`] are removed).
    pub fn tree(&self, url: &str, commit: &str) -> Result<PathBuf, SourceError> {
        let exported = self.trees.get_or_export(commit, |dir| {
            self.reopened_on_miss(url, || {
                // A first attempt may have written part of the tree before it missed.
                if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                    std::fs::remove_dir_all(dir).map_err(io(dir))?;
                    std::fs::create_dir_all(dir).map_err(io(dir))?;
                }
                let repo = self.open_or_init(url)?;
                let tree = find_commit(&repo, url, commit)?
                    .tree()
                    .map_err(|e| classify(url, e))?;
                let mut items = Vec::new();
                export(&repo, url, &tree, dir, "", &mut items)?;
                Ok(items)
            })
        });
        exported.map_err(|e| match e {
            TreeError::Io(path, source) => SourceError::Io {
                path: path.display().to_string(),
                source: Arc::new(source),
            },
            TreeError::Export(e) => e,
        })
    }

    /// A render found a path missing in `commit`'s tree: check the cached tree against what
    /// was exported (at most every few seconds per commit). True when it was damaged and
    /// dropped, so the next [`GitCache::tree`] exports it again.
    pub fn recheck_tree(&self, commit: &str) -> bool {
        self.trees.recheck(commit)
    }

    /// Who made the commit `revision` resolves to, when, why, and the tags pointing at it
    /// (Argo CD's revision metadata).
    pub fn commit_metadata(
        &self,
        url: &str,
        revision: &str,
        access: &Access,
    ) -> Result<CommitMetadata, SourceError> {
        self.commit_metadata_since(url, revision, access, std::time::Instant::now())
    }

    /// [`GitCache::commit_metadata`] from a ref advertisement (for the revision and the tags)
    /// that started at or after `asked`.
    pub fn commit_metadata_since(
        &self,
        url: &str,
        revision: &str,
        access: &Access,
        asked: std::time::Instant,
    ) -> Result<CommitMetadata, SourceError> {
        let sha = self.resolve_since(url, revision, access, asked)?;
        let (author, seconds, message) = self.reopened_on_miss(url, || {
            let repo = self.open_or_init(url)?;
            let commit = find_commit(&repo, url, &sha)?;
            let author = commit.author().map_err(|e| classify(url, e))?;
            let seconds = author.time().map_err(|e| classify(url, e))?.seconds;
            let message = commit
                .message_raw()
                .map_err(|e| classify(url, e))?
                .to_string();
            Ok((
                format!("{} <{}>", author.name, author.email),
                seconds,
                message,
            ))
        })?;
        let tags = self
            .advertised(url, access, asked)?
            .iter()
            .filter(|r| r.commit == sha)
            .filter_map(|r| r.name.strip_prefix("refs/tags/").map(str::to_string))
            .collect();
        Ok(CommitMetadata {
            sha,
            author,
            seconds,
            message: message.trim_end().to_string(),
            tags,
        })
    }
}

/// The commit `sha` (40 hex digits) in `repo`.
fn find_commit<'r>(
    repo: &'r gix::Repository,
    url: &str,
    sha: &str,
) -> Result<gix::Commit<'r>, SourceError> {
    let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(|e| classify(url, e))?;
    repo.find_object(id)
        .map_err(|e| classify(url, e))?
        .peel_to_commit()
        .map_err(|e| classify(url, e))
}

/// The advertised ref `revision` names (`HEAD`, a branch, a tag or a full ref name), as git
/// looks them up.
pub fn find_advertised<'r>(refs: &'r [RemoteRef], revision: &str) -> Option<&'r RemoteRef> {
    let wanted = if revision.is_empty() {
        "HEAD"
    } else {
        revision
    };
    [
        wanted.to_string(),
        format!("refs/heads/{wanted}"),
        format!("refs/tags/{wanted}"),
    ]
    .iter()
    .find_map(|candidate| refs.iter().find(|r| &r.name == candidate))
}

/// Remove git's `*.lock` files inside a repository (outside its objects). Only for a caller
/// holding the repository's entry lock: then no live writer owns them.
fn remove_stale_git_locks(repo: &Path) {
    fn walk(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && name != "objects" {
                walk(&path);
            } else if kind.is_file() && name.ends_with(".lock") {
                tracing::warn!(lock = %path.display(), "removing a lock left by an interrupted fetch");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    walk(repo);
}

/// Exported trees kept on disk.
pub const MAX_TREES: usize = 64;
/// Repositories kept in the cache.
pub const MAX_REPOS: usize = 256;
/// An entry used this recently is never evicted.
const GRACE: std::time::Duration = std::time::Duration::from_secs(600);

impl GitCache {
    fn evict_repos(&self) {
        evict_least_recently_used(&self.root.join("repos"), MAX_REPOS);
        // Some may be gone now.
        self.present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Remove the least recently used entries of `dir` beyond `max` (making room for one more),
/// sparing anything used within [`GRACE`]: a render or fetch may be using it.
fn evict_least_recently_used(dir: &Path, max: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if found.len() < max {
        return;
    }
    found.sort();
    let now = std::time::SystemTime::now();
    let excess = found.len() + 1 - max;
    for (used, path) in found.into_iter().take(excess) {
        if now.duration_since(used).unwrap_or_default() > GRACE {
            entry::remove_entry(&path);
        }
    }
}

/// How often an entry in use is marked used on disk: eviction needs no finer order.
const MARK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Mark a cache entry as just used (its directory's mtime orders eviction).
fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

type Connection<'a, 'repo> = gix::remote::Connection<
    'a,
    'static,
    'repo,
    Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
>;

/// Connect for fetching with the repository's access settings: credentials (never a prompt;
/// none configured means anonymous), TLS verification and client certificate for HTTPS, the
/// proxy.
fn connect<'a, 'repo>(
    repo: &'repo gix::Repository,
    remote: &'a gix::Remote<'repo>,
    url: &str,
    access: &Access,
) -> Result<Connection<'a, 'repo>, SourceError> {
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| classify(url, e))?;
    let connection = match https_options(repo, url, access)? {
        Some(options) => connection.with_transport_options(options),
        None => connection,
    };
    let Some(c) = access.credentials.clone() else {
        return Ok(connection.with_credentials(|_| Ok(None)));
    };
    Ok(connection.with_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(ctx) => {
            Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: c.username.clone(),
                    password: c.password.clone(),
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            }))
        }
        _ => Ok(None),
    }))
}

/// HTTP transport options for `insecure`, TLS client certificates and the repository's proxy,
/// on top of what the git configuration says.
fn https_options(
    repo: &gix::Repository,
    url: &str,
    access: &Access,
) -> Result<Option<Box<dyn std::any::Any>>, SourceError> {
    use gix::protocol::transport::client::blocking_io::http;
    let http = url.starts_with("https://") || url.starts_with("http://");
    if !http || (!access.insecure && access.tls_client_cert.is_none() && access.proxy.is_none()) {
        return Ok(None);
    }
    let mut options: http::Options = repo
        .transport_options(url, None)
        .ok()
        .flatten()
        .and_then(|o| o.downcast::<http::Options>().ok())
        .map(|o| *o)
        .unwrap_or_default();
    // gix's reqwest backend reads neither `ssl_verify` nor client certificates from the
    // generic options; both go through its client hook.
    options.ssl_verify = !access.insecure;
    let insecure = access.insecure;
    let identity = match &access.tls_client_cert {
        Some((cert, key)) => Some(
            reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes()).map_err(|e| {
                SourceError::Git {
                    url: url.to_string(),
                    message: format!("TLS client certificate: {e}"),
                }
            })?,
        ),
        None => None,
    };
    // gix's reqwest backend does not read `proxy` from the options either.
    let proxy = access
        .proxy
        .as_ref()
        .map(|p| p.for_reqwest(url))
        .transpose()?;
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |mut builder| {
            if insecure {
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
            if let Some(identity) = &identity {
                builder = builder.identity(identity.clone());
            }
            if let Some(proxy) = &proxy {
                builder = builder.proxy(proxy.clone());
            }
            Ok(builder)
        })),
        configure_request: None,
    };
    options.backend = Some(Arc::new(std::sync::Mutex::new(backend)));
    Ok(Some(Box::new(options)))
}

impl GitCache {
    /// A key that changes exactly when something under `paths` changes at `commit`: the
    /// object ids of those paths. Commits that touch none of them share the key — what
    /// `argocd.argoproj.io/manifest-generate-paths` promises.
    pub fn paths_fingerprint(
        &self,
        url: &str,
        commit: &str,
        paths: &[String],
    ) -> Result<String, SourceError> {
        self.reopened_on_miss(url, || {
            let repo = self.open_or_init(url)?;
            let tree = find_commit(&repo, url, commit)?
                .tree()
                .map_err(|e| classify(url, e))?;
            let mut parts = Vec::with_capacity(paths.len());
            for path in paths {
                let trimmed = path.trim_matches('/');
                let entry_id = if trimmed.is_empty() || trimmed == "." {
                    Some(tree.id.to_string())
                } else {
                    tree.lookup_entry_by_path(trimmed)
                        .map_err(|e| classify(url, e))?
                        .map(|e| e.object_id().to_string())
                };
                parts.push(format!(
                    "{trimmed}={}",
                    entry_id.unwrap_or_else(|| "-".into())
                ));
            }
            Ok(parts.join(";"))
        })
    }
}

/// Write a tree's blobs and symlinks under `dir` (`prefix` is its path in the tree), listing
/// each in `items`. Submodules are skipped.
fn export(
    repo: &gix::Repository,
    url: &str,
    tree: &gix::Tree<'_>,
    dir: &Path,
    prefix: &str,
    items: &mut Vec<Item>,
) -> Result<(), SourceError> {
    for entry in tree.iter() {
        let entry = entry.map_err(|e| classify(url, e))?;
        let name = entry.filename().to_string();
        if name.contains('/') || name == ".." || name == "." {
            return Err(SourceError::Git {
                url: url.to_string(),
                message: format!("tree entry {name:?} is not a plain name"),
            });
        }
        let path = dir.join(&name);
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let mode = entry.mode();
        let object = || {
            repo.find_object(entry.oid().to_owned())
                .map_err(|e| classify(url, e))
        };
        if mode.is_tree() {
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            let sub = object()?.peel_to_tree().map_err(|e| classify(url, e))?;
            items.push(Item::Dir(rel.clone()));
            export(repo, url, &sub, &path, &rel, items)?;
        } else if mode.is_link() {
            let target = String::from_utf8_lossy(&object()?.data).into_owned();
            std::os::unix::fs::symlink(&target, &path).map_err(io(&path))?;
            items.push(Item::Link(rel));
        } else if mode.is_blob() {
            let data = object()?.data.clone();
            std::fs::write(&path, &data).map_err(io(&path))?;
            items.push(Item::File(rel, data.len() as u64));
            if mode.is_executable() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_removes_the_least_recently_used_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for i in 0..5u64 {
            let path = dir.path().join(format!("entry-{i}"));
            std::fs::create_dir(&path).unwrap();
            let f = std::fs::File::open(&path).unwrap();
            f.set_modified(hour_ago + std::time::Duration::from_secs(i))
                .unwrap();
        }
        // A recently used entry survives even when it is over the bound.
        std::fs::create_dir(dir.path().join("fresh")).unwrap();
        evict_least_recently_used(dir.path(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["entry-4", "fresh"]);
    }
}
