//! From an Application's sources to desired objects: resolve the revision, fetch the tree,
//! render it (with the shared render cache). Blocking work (git, helm): callers on an async
//! runtime run it on the blocking pool. Shared by the controller, `tiphys render` and
//! `tiphys app diff`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tiphys_model::application::ApplicationSource;
use tiphys_render::{CacheKey, Manifest, RenderCache, RenderError, ValueRefs};
use tiphys_source::charts::{ChartCache, ChartRef};
use tiphys_source::credentials::{RepoSecret, SecretKind, secret_for};
use tiphys_source::{Access, GitCache, SourceError, remote_base};

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
    #[error("{}", chart_message(chart, repo, source))]
    Chart {
        chart: String,
        repo: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("no source to render (only `ref` sources, or no source at the index asked for)")]
    NoSource,
}

/// A chart error that names the chart once: errors about the chart itself already do.
fn chart_message(chart: &str, repo: &str, source: &SourceError) -> String {
    match source {
        SourceError::ChartNotFound { .. } | SourceError::ChartVersionNotFound { .. } => {
            source.to_string()
        }
        other => format!("chart {chart:?} from {repo}: {other}"),
    }
}

/// The desired state of an app at a revision.
#[derive(Debug, Default)]
pub struct Generated {
    /// The resolved revision of each source, in order: a commit, or a chart version.
    pub revisions: Vec<String>,
    /// Each source's type (`Helm`, `Kustomize`, `Directory`; empty for a `ref`-only source).
    pub source_types: Vec<String>,
    pub manifests: Vec<Manifest>,
}

/// Repository access, git and chart caches and render cache: what Argo CD calls the repo
/// server.
pub struct RepoServer {
    pub git: GitCache,
    pub charts: ChartCache,
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

/// When a commit was made, as RFC 3339 text (revision metadata, notification templates).
pub fn commit_date(metadata: &tiphys_source::CommitMetadata) -> String {
    k8s_openapi::jiff::Timestamp::from_second(metadata.seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The access the repository Secrets give to `url`.
pub fn access_for(url: &str, secrets: &RepoSecrets) -> Access {
    secret_for(url, secrets)
        .map(RepoSecret::access)
        .unwrap_or_default()
}

/// A source that only lends its tree to others (`ref` without `path` or `chart`): it is
/// resolved, never rendered.
/// Whether a source is an OCI artifact of manifests (`repoURL: oci://…` without `chart`), as
/// Argo CD 3 reads them: its revision is a manifest digest, its tree the artifact's layer.
pub fn is_oci_artifact(source: &ApplicationSource) -> bool {
    source.chart.is_empty() && source.repo_url.starts_with("oci://")
}

pub fn is_ref_only(source: &ApplicationSource) -> bool {
    !source.reference.is_empty() && source.path.is_empty() && source.chart.is_empty()
}

impl RepoServer {
    pub fn new(cache_dir: impl Into<PathBuf>) -> RepoServer {
        let cache_dir = cache_dir.into();
        RepoServer {
            charts: ChartCache::new(cache_dir.join("charts")),
            git: GitCache::new(cache_dir),
            // Enough entries for every app of a large installation (a Helm app's render is its
            // own: the release name is the app's); the byte budget bounds the memory.
            renders: RenderCache::new(20_000),
        }
    }

    /// The revision `source` points at now: a commit (one ls-remote), or the chart version
    /// its `targetRevision` selects from the repository's index.
    pub fn resolve(
        &self,
        source: &ApplicationSource,
        secrets: &RepoSecrets,
    ) -> Result<String, ManifestError> {
        self.resolve_since(source, secrets, std::time::Instant::now())
    }

    /// [`RepoServer::resolve`] from a git ref advertisement that started at or after `since`,
    /// shared with every other asker of the repository (chart listings have their own max
    /// age).
    pub fn resolve_since(
        &self,
        source: &ApplicationSource,
        secrets: &RepoSecrets,
        since: std::time::Instant,
    ) -> Result<String, ManifestError> {
        let access = access_for(&source.repo_url, secrets);
        if !source.chart.is_empty() {
            return self
                .charts
                .resolve(chart_ref(source, &access), &source.target_revision)
                .map_err(|e| chart_error(source, e));
        }
        if is_oci_artifact(source) {
            return self
                .charts
                .resolve_artifact(chart_ref(source, &access), &source.target_revision)
                .map_err(|e| git_error(source, e));
        }
        self.git
            .resolve_since(&source.repo_url, source.revision(), &access, since)
            .map_err(|source_error| ManifestError::Source {
                repo: source.repo_url.clone(),
                source: Box::new(source_error),
            })
    }

    /// Whether a repository answers with `access`: a git remote's ref advertisement, a Helm
    /// repository's index, an OCI registry's API (`kind` is the Secret's `type`).
    pub fn check_connection(
        &self,
        url: &str,
        kind: &str,
        access: &Access,
    ) -> Result<(), SourceError> {
        if kind == "helm" || kind == "oci" || tiphys_source::charts::is_oci(url, access) {
            return self.charts.check(ChartRef {
                repo_url: url,
                chart: "",
                access,
            });
        }
        self.git.ls_remote(url, access).map(|_| ())
    }

    /// Argo CD's `ChartDetails` of a chart source at `revision` (a version, or a range the
    /// repository resolves): description, home page and maintainers from its Chart.yaml.
    pub fn chart_details(
        &self,
        source: &ApplicationSource,
        revision: &str,
        secrets: &RepoSecrets,
    ) -> Result<ChartDetails, ManifestError> {
        let access = access_for(&source.repo_url, secrets);
        let at = chart_ref(source, &access);
        let version = self
            .charts
            .resolve(at, revision)
            .map_err(|e| chart_error(source, e))?;
        let dir = self
            .charts
            .chart(at, &version)
            .map_err(|e| chart_error(source, e))?;
        let unreadable = |message: String| {
            chart_error(
                source,
                SourceError::Git {
                    url: source.repo_url.clone(),
                    message: format!("chart {} {version}: Chart.yaml: {message}", source.chart),
                },
            )
        };
        let text = std::fs::read_to_string(dir.join("Chart.yaml"))
            .map_err(|e| unreadable(e.to_string()))?;
        let chart: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        Ok(ChartDetails::from_chart_yaml(&chart))
    }

    /// Argo CD's `OCIMetadata` of an OCI source at `revision` (a chart version, or an
    /// artifact's tag or digest): its manifest's standard annotations.
    pub fn oci_metadata(
        &self,
        source: &ApplicationSource,
        revision: &str,
        secrets: &RepoSecrets,
    ) -> Result<OciMetadata, ManifestError> {
        let access = access_for(&source.repo_url, secrets);
        self.charts
            .oci_annotations(chart_ref(source, &access), revision)
            .map(|a| OciMetadata::from_annotations(&a))
            .map_err(|e| git_error(source, e))
    }

    /// Render every source at the given revisions (`revisions[i]` for `sources[i]`), `$ref`
    /// value files read from the trees of the `ref` sources.
    pub fn generate(
        &self,
        app_name: &str,
        namespace: &str,
        sources: &[ApplicationSource],
        revisions: &[String],
        secrets: &RepoSecrets,
        settings: &RenderSettings,
    ) -> Result<Generated, ManifestError> {
        let (refs, refs_key) = self.ref_trees(sources, revisions, secrets)?;
        let mut out = Generated::default();
        for (source, revision) in sources.iter().zip(revisions) {
            out.revisions.push(revision.clone());
            if is_ref_only(source) {
                out.source_types.push(String::new());
                continue;
            }
            let access = access_for(&source.repo_url, secrets);
            let chart = !source.chart.is_empty();
            let mut content = if chart {
                format!(
                    "chart:{}:{}@{revision}",
                    tiphys_source::normalize(&source.repo_url),
                    source.chart
                )
            } else {
                revision.clone()
            };
            if reads_refs(source) {
                content.push_str(&refs_key);
            }
            let key = CacheKey::new(
                &content,
                source,
                app_name,
                namespace,
                &settings.kustomize,
                settings.capabilities.as_deref(),
            );
            let render = || {
                let tree = self.source_tree(source, revision, &access)?;
                self.renders
                    .get_or_render(key.clone(), || {
                        render_tree(
                            &tree, source, app_name, namespace, &self.git, secrets, settings, &refs,
                        )
                    })
                    .map_err(|e| ManifestError::Render {
                        repo: source.repo_url.clone(),
                        path: if chart {
                            format!("chart {} {revision}", source.chart)
                        } else {
                            source.path.clone()
                        },
                        source: Box::new(e),
                    })
            };
            // A render that fails may have read a damaged cached tree (a path missing): the
            // tree is checked, and when it was damaged, exported again and rendered again.
            let rendered = match render() {
                Err(ManifestError::Render { .. })
                    if !chart && !is_oci_artifact(source) && self.git.recheck_tree(revision) =>
                {
                    render()
                }
                other => other,
            }?;
            out.source_types
                .push(rendered.source_type.as_str().to_string());
            out.manifests.extend(rendered.manifests);
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

impl RepoServer {
    /// The trees of the `ref` sources (for `$ref/…` value files), and what they are at — for
    /// the render cache: a source reading `$ref` files renders anew when one of them moves.
    fn ref_trees(
        &self,
        sources: &[ApplicationSource],
        revisions: &[String],
        secrets: &RepoSecrets,
    ) -> Result<(ValueRefs, String), ManifestError> {
        let mut refs = ValueRefs::new();
        let mut refs_key = String::new();
        for (source, commit) in sources.iter().zip(revisions) {
            if !source.reference.is_empty() && source.chart.is_empty() {
                let access = access_for(&source.repo_url, secrets);
                let tree = self.source_tree(source, commit, &access)?;
                refs.insert(source.reference.clone(), tree);
                refs_key.push_str(&format!("+{}={commit}", source.reference));
            }
        }
        Ok((refs, refs_key))
    }

    /// The checked-out tree of a git source, or the unpacked chart of a chart source.
    fn source_tree(
        &self,
        source: &ApplicationSource,
        revision: &str,
        access: &Access,
    ) -> Result<PathBuf, ManifestError> {
        if is_oci_artifact(source) {
            self.charts
                .artifact(chart_ref(source, access), revision)
                .map_err(|e| git_error(source, e))
        } else if source.chart.is_empty() {
            self.git
                .tree(&source.repo_url, revision)
                .map_err(|e| git_error(source, e))
        } else {
            self.charts
                .chart(chart_ref(source, access), revision)
                .map_err(|e| chart_error(source, e))
        }
    }

    /// Argo's app details (`call .repo.GetAppDetails` in notifications, the API server's
    /// `appdetails`) of source `index` — none: the first source that renders — at the given
    /// revisions. A Kustomize source's images come from its render, through the render cache.
    #[allow(clippy::too_many_arguments)]
    pub fn app_details(
        &self,
        app_name: &str,
        namespace: &str,
        sources: &[ApplicationSource],
        index: Option<usize>,
        revisions: &[String],
        secrets: &RepoSecrets,
        settings: &RenderSettings,
    ) -> Result<tiphys_render::AppDetails, ManifestError> {
        let found = match index {
            Some(i) => sources.get(i).map(|s| (i, s)),
            None => sources.iter().enumerate().find(|(_, s)| !is_ref_only(s)),
        };
        let Some((index, source)) = found else {
            return Err(ManifestError::NoSource);
        };
        let revision = revisions.get(index).ok_or(ManifestError::NoSource)?;
        let (refs, _) = self.ref_trees(sources, revisions, secrets)?;
        let access = access_for(&source.repo_url, secrets);
        let tree = self.source_tree(source, revision, &access)?;
        let remotes = GitRemotes {
            cache: &self.git,
            secrets,
        };
        let request = render_request(
            &tree, source, app_name, namespace, &remotes, settings, &refs,
        );
        let built = || {
            self.generate(
                app_name,
                namespace,
                std::slice::from_ref(source),
                std::slice::from_ref(revision),
                secrets,
                settings,
            )
            .map(|g| g.manifests)
            .map_err(|e| match e {
                ManifestError::Render { source, .. } => *source,
                other => RenderError::Unsupported(other.to_string()),
            })
        };
        tiphys_render::app_details(&request, built).map_err(|e| ManifestError::Render {
            repo: source.repo_url.clone(),
            path: source.path.clone(),
            source: Box::new(e),
        })
    }
}

/// What Argo CD's API tells about a chart version (`…/revisions/{rev}/chartdetails`).
#[derive(Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub home: String,
    /// `Name <email>`, or the name alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<String>,
}

impl ChartDetails {
    fn from_chart_yaml(chart: &serde_json::Value) -> ChartDetails {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().trim().to_string();
        let maintainers = chart["maintainers"].as_array().into_iter().flatten();
        ChartDetails {
            description: text(&chart["description"]),
            home: text(&chart["home"]),
            maintainers: maintainers
                .map(|m| match (text(&m["name"]), text(&m["email"])) {
                    (name, email) if email.is_empty() => name,
                    (name, email) => format!("{name} <{email}>").trim().to_string(),
                })
                .collect(),
        }
    }
}

/// What Argo CD's API tells about an OCI revision (`…/revisions/{rev}/ocimetadata`), from the
/// manifest's `org.opencontainers.image.*` annotations.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciMetadata {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub authors: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docs_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl OciMetadata {
    fn from_annotations(annotations: &std::collections::BTreeMap<String, String>) -> OciMetadata {
        let get = |name: &str| {
            annotations
                .get(&format!("org.opencontainers.image.{name}"))
                .cloned()
                .unwrap_or_default()
        };
        OciMetadata {
            created_at: get("created"),
            authors: get("authors"),
            image_url: get("url"),
            docs_url: get("documentation"),
            source_url: get("source"),
            version: get("version"),
            description: get("description"),
        }
    }
}

fn git_error(source: &ApplicationSource, e: SourceError) -> ManifestError {
    ManifestError::Source {
        repo: source.repo_url.clone(),
        source: Box::new(e),
    }
}

fn chart_ref<'a>(source: &'a ApplicationSource, access: &'a Access) -> ChartRef<'a> {
    ChartRef {
        repo_url: &source.repo_url,
        chart: &source.chart,
        access,
    }
}

fn chart_error(source: &ApplicationSource, e: SourceError) -> ManifestError {
    ManifestError::Chart {
        chart: source.chart.clone(),
        repo: source.repo_url.clone(),
        source: Box::new(e),
    }
}

/// Whether a source's Helm value files name another source's tree (`$ref/…`).
fn reads_refs(source: &ApplicationSource) -> bool {
    source
        .helm
        .as_ref()
        .is_some_and(|h| h.value_files.iter().any(|f| f.starts_with('$')))
}

/// Render one source from a checked-out tree (or an unpacked chart), fetching Kustomize
/// remote bases through `git`.
#[allow(clippy::too_many_arguments)]
pub fn render_tree(
    tree: &Path,
    source: &ApplicationSource,
    app_name: &str,
    namespace: &str,
    git: &GitCache,
    secrets: &RepoSecrets,
    settings: &RenderSettings,
    value_refs: &ValueRefs,
) -> Result<tiphys_render::Rendered, RenderError> {
    let remotes = GitRemotes {
        cache: git,
        secrets,
    };
    tiphys_render::render(&render_request(
        tree, source, app_name, namespace, &remotes, settings, value_refs,
    ))
}

/// What rendering a source needs, from the engine's settings: remote bases fetched through
/// the source cache, argocd-cm's build options, the destination's capabilities.
fn render_request<'a>(
    tree: &'a Path,
    source: &'a ApplicationSource,
    app_name: &'a str,
    namespace: &'a str,
    remotes: &'a GitRemotes<'a>,
    settings: &'a RenderSettings,
    value_refs: &'a ValueRefs,
) -> tiphys_render::Request<'a> {
    tiphys_render::Request {
        repo_root: tree,
        source,
        app_name,
        namespace,
        remote: Some(remotes),
        kustomize_options: settings.kustomize,
        capabilities: settings.capabilities.as_deref(),
        value_refs,
    }
}

/// Kustomize remote bases, fetched through the source cache with repository credentials.
pub struct GitRemotes<'a> {
    pub cache: &'a GitCache,
    pub secrets: &'a RepoSecrets,
}

impl tiphys_kustomize::RemoteLoader for GitRemotes<'_> {
    fn load(&self, url: &str) -> Result<PathBuf, String> {
        let base = remote_base::parse(url).ok_or_else(|| "not a remote base URL".to_string())?;
        let access = access_for(&base.repo, self.secrets);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chart_details_as_argo_cd_words_them() {
        let chart = json!({
            "name": "web", "version": "1.0.0", "description": "A web app",
            "home": "https://example.com/web",
            "maintainers": [{"name": "Ann", "email": "ann@example.com"}, {"name": "Bob"},
                            {"email": "team@example.com"}]
        });
        let details = ChartDetails::from_chart_yaml(&chart);
        assert_eq!(
            details.maintainers,
            ["Ann <ann@example.com>", "Bob", "<team@example.com>"]
        );
        assert_eq!(
            serde_json::to_value(&details).unwrap()["home"],
            "https://example.com/web"
        );
        // Empty fields are left out, as Argo CD's omitempty does.
        let bare = serde_json::to_value(ChartDetails::from_chart_yaml(&json!({}))).unwrap();
        assert_eq!(bare, json!({}));
    }

    #[test]
    fn oci_metadata_from_the_standard_annotations() {
        let annotations = [
            ("org.opencontainers.image.created", "2026-12-01T10:00:00Z"),
            (
                "org.opencontainers.image.documentation",
                "https://docs.example.com",
            ),
            ("org.opencontainers.image.url", "https://example.com"),
            ("org.opencontainers.image.title", "site"),
            ("com.example.other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let meta = serde_json::to_value(OciMetadata::from_annotations(&annotations)).unwrap();
        assert_eq!(
            meta,
            json!({"createdAt": "2026-12-01T10:00:00Z", "docsUrl": "https://docs.example.com",
                   "imageUrl": "https://example.com"})
        );
    }
}
