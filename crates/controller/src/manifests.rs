//! From an Application's sources to desired objects: resolve the revision, fetch the tree,
//! render it (with the shared render cache). Blocking work (git, helm): callers on an async
//! runtime run it on the blocking pool. Shared by the controller, `tiphys render` and
//! `tiphys app diff`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tiphys_model::application::ApplicationSource;
use tiphys_render::{CacheKey, Manifest, RenderCache, RenderError};
use tiphys_source::credentials::{RepoSecret, SecretKind, secret_for};
use tiphys_source::{GitCache, SourceError, remote_base};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{repo}: {source}")]
    Source {
        repo: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("rendering {repo} path {path:?}: {source}")]
    Render {
        repo: String,
        path: String,
        #[source]
        source: Box<RenderError>,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// The desired state of an app at a revision.
#[derive(Debug, Default)]
pub struct Generated {
    /// The resolved commit of each source, in order.
    pub revisions: Vec<String>,
    pub source_types: Vec<String>,
    pub manifests: Vec<Manifest>,
}

/// Repository access, git cache and render cache: what Argo CD calls the repo server.
pub struct RepoServer {
    pub git: GitCache,
    pub renders: RenderCache,
}

/// Repository credentials known to the engine.
pub type RepoSecrets = [(SecretKind, RepoSecret)];

/// How sources are rendered, beyond what the source itself says.
#[derive(Clone, Debug, Default)]
pub struct RenderSettings {
    /// argocd-cm `kustomize.buildOptions`.
    pub kustomize: tiphys_kustomize::BuildOptions,
    /// The destination cluster's, for Helm's `.Capabilities`.
    pub capabilities: Option<Arc<tiphys_render::Capabilities>>,
}

impl RepoServer {
    pub fn new(cache_dir: impl Into<PathBuf>) -> RepoServer {
        RepoServer {
            git: GitCache::new(cache_dir),
            renders: RenderCache::new(512),
        }
    }

    /// The commit `source` points at now (one ls-remote).
    pub fn resolve(
        &self,
        source: &ApplicationSource,
        secrets: &RepoSecrets,
    ) -> Result<String, ManifestError> {
        let access = secret_for(&source.repo_url, secrets)
            .map(RepoSecret::access)
            .unwrap_or_default();
        self.git
            .resolve(&source.repo_url, source.revision(), &access)
            .map_err(|source_error| ManifestError::Source {
                repo: source.repo_url.clone(),
                source: Box::new(source_error),
            })
    }

    /// Render every source at the given commits (`revisions[i]` for `sources[i]`).
    pub fn generate(
        &self,
        app_name: &str,
        namespace: &str,
        sources: &[ApplicationSource],
        revisions: &[String],
        secrets: &RepoSecrets,
        settings: &RenderSettings,
    ) -> Result<Generated, ManifestError> {
        let mut out = Generated::default();
        for (source, commit) in sources.iter().zip(revisions) {
            if !source.chart.is_empty() {
                return Err(ManifestError::Unsupported(format!(
                    "{}: Helm chart repositories (spec.source.chart) are not supported yet",
                    source.repo_url
                )));
            }
            let key = CacheKey::new(
                commit,
                source,
                app_name,
                namespace,
                &settings.kustomize,
                settings.capabilities.as_deref(),
            );
            let render = || {
                let tree =
                    self.git
                        .tree(&source.repo_url, commit)
                        .map_err(|e| ManifestError::Source {
                            repo: source.repo_url.clone(),
                            source: Box::new(e),
                        })?;
                self.renders
                    .get_or_render(key.clone(), || {
                        render_tree(
                            &tree, source, app_name, namespace, &self.git, secrets, settings,
                        )
                    })
                    .map_err(|e| ManifestError::Render {
                        repo: source.repo_url.clone(),
                        path: source.path.clone(),
                        source: Box::new(e),
                    })
            };
            // A render that fails may have read a damaged cached tree (a path missing): the
            // tree is checked, and when it was damaged, exported again and rendered again.
            let rendered = match render() {
                Err(ManifestError::Render { .. }) if self.git.recheck_tree(commit) => render(),
                other => other,
            }?;
            out.revisions.push(commit.clone());
            out.source_types
                .push(rendered.source_type.as_str().to_string());
            out.manifests.extend(rendered.manifests.iter().cloned());
        }
        tiphys_render::check_objects(&out.manifests).map_err(|e| ManifestError::Render {
            repo: sources
                .first()
                .map(|s| s.repo_url.clone())
                .unwrap_or_default(),
            path: sources.first().map(|s| s.path.clone()).unwrap_or_default(),
            source: Box::new(e),
        })?;
        Ok(out)
    }
}

/// Render one source from a checked-out tree, fetching Kustomize remote bases through `git`.
pub fn render_tree(
    tree: &Path,
    source: &ApplicationSource,
    app_name: &str,
    namespace: &str,
    git: &GitCache,
    secrets: &RepoSecrets,
    settings: &RenderSettings,
) -> Result<tiphys_render::Rendered, RenderError> {
    let remotes = GitRemotes {
        cache: git,
        secrets,
    };
    tiphys_render::render(&tiphys_render::Request {
        repo_root: tree,
        source,
        app_name,
        namespace,
        remote: Some(&remotes),
        kustomize_options: settings.kustomize,
        capabilities: settings.capabilities.as_deref(),
    })
}

/// Kustomize remote bases, fetched through the source cache with repository credentials.
pub struct GitRemotes<'a> {
    pub cache: &'a GitCache,
    pub secrets: &'a RepoSecrets,
}

impl tiphys_kustomize::RemoteLoader for GitRemotes<'_> {
    fn load(&self, url: &str) -> Result<PathBuf, String> {
        let base = remote_base::parse(url).ok_or_else(|| "not a remote base URL".to_string())?;
        let access = secret_for(&base.repo, self.secrets)
            .map(RepoSecret::access)
            .unwrap_or_default();
        let commit = self
            .cache
            .resolve(&base.repo, &base.revision, &access)
            .map_err(|e| e.to_string())?;
        let tree = self
            .cache
            .tree(&base.repo, &commit)
            .map_err(|e| e.to_string())?;
        let root = tree.canonicalize().map_err(|e| e.to_string())?;
        let dir = root
            .join(&base.path)
            .canonicalize()
            .map_err(|_| format!("{} has no directory {:?}", base.repo, base.path))?;
        if !dir.starts_with(&root) {
            return Err(format!("path {:?} escapes the repository", base.path));
        }
        Ok(dir)
    }

    fn fetch_file(&self, url: &str) -> Result<Option<String>, String> {
        if !tiphys_source::remote_file::is_file_url(url) {
            return Ok(None);
        }
        tiphys_source::remote_file::fetch(url)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Shared handle.
pub type SharedRepoServer = Arc<RepoServer>;
