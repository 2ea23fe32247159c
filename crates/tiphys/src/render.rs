//! `tiphys render -f APPLICATION.yaml` / `tiphys render --repo URL --revision REV --path PATH`
//! (or `--chart NAME` for a Helm chart repository): fetch, resolve and render every source as
//! the controller does, then print the desired manifests as a YAML stream.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tiphys_controller::manifests::{RepoServer, render_tree};
use tiphys_model::Application;
use tiphys_model::application::ApplicationSource;
use tiphys_source::GitCache;
use tiphys_source::credentials::{RepoSecret, SECRET_TYPE_LABEL, SecretKind};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["file", "repo"])))]
pub struct Args {
    /// An Application manifest.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// A repository URL (https, ssh, git, file:// or a local path).
    #[arg(long)]
    repo: Option<String>,
    /// Branch, tag, commit or HEAD.
    #[arg(long, default_value = "HEAD", requires = "repo")]
    revision: String,
    /// The path inside the repository.
    #[arg(long, default_value = ".", requires = "repo", conflicts_with = "chart")]
    path: String,
    /// A chart of the Helm chart repository (HTTP or `oci://`) given with --repo; --revision is
    /// then a version or a range (`1.x`).
    #[arg(long, requires = "repo")]
    chart: Option<String>,
    /// Render from this checked-out tree instead of fetching the Application's repoURL.
    #[arg(long)]
    repo_root: Option<PathBuf>,
    /// Where fetched repositories and trees are cached.
    #[arg(long, env = "TIPHYS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Destination namespace (Helm's --namespace) when rendering with --repo.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Release name (Helm) when rendering with --repo.
    #[arg(long, default_value = "app")]
    name: String,
    /// Read repository credentials from Argo CD repository Secrets in this cluster
    /// (`argocd.argoproj.io/secret-type: repository` or `repo-creds`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The namespace holding the repository Secrets.
    #[arg(long, default_value = "argocd")]
    secrets_namespace: String,
}

/// Repository Secrets from the cluster, when `--kubeconfig` is given.
fn repository_secrets(args: &Args) -> anyhow::Result<Vec<(SecretKind, RepoSecret)>> {
    let Some(kubeconfig) = &args.kubeconfig else {
        return Ok(Vec::new());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = crate::kubeconfig::ClientArgs {
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
        }
        .client()
        .await?;
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, &args.secrets_namespace);
        let selector = format!("{SECRET_TYPE_LABEL} in (repository,repo-creds)");
        let list = secrets
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("listing repository Secrets in {}", args.secrets_namespace))?;
        Ok(list
            .items
            .iter()
            .filter_map(|s| {
                let data: std::collections::BTreeMap<String, String> = s
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                RepoSecret::from_secret(
                    s.metadata.name.as_deref().unwrap_or_default(),
                    s.metadata.labels.as_ref()?,
                    &data,
                )
            })
            .collect())
    })
}

pub fn cache_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("tiphys")
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (sources, name, namespace) = match &args.file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let app = Application::from_yaml(&text, &file.display().to_string())?;
            let problems = tiphys_model::validate::application(&app);
            if !problems.is_empty() {
                let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                bail!(
                    "{}: invalid Application:\n  {}",
                    file.display(),
                    list.join("\n  ")
                );
            }
            let name = app.metadata.name.clone().unwrap_or_default();
            let namespace = app.spec.destination.namespace.clone();
            (
                app.sources().into_iter().cloned().collect::<Vec<_>>(),
                name,
                namespace,
            )
        }
        None => {
            let source = match &args.chart {
                Some(chart) => ApplicationSource {
                    repo_url: args.repo.clone().unwrap_or_default(),
                    target_revision: args.revision.clone(),
                    chart: chart.clone(),
                    ..Default::default()
                },
                None => ApplicationSource {
                    repo_url: args.repo.clone().unwrap_or_default(),
                    target_revision: args.revision.clone(),
                    path: args.path.clone(),
                    ..Default::default()
                },
            };
            (vec![source], args.name.clone(), args.namespace.clone())
        }
    };
    let secrets = repository_secrets(&args)?;
    let all = match &args.repo_root {
        // A checked-out tree stands in for the (one) source's repository.
        Some(root) => {
            let [source] = sources.as_slice() else {
                bail!("--repo-root renders an application of one source");
            };
            let cache = GitCache::new(cache_dir(args.cache_dir.clone()));
            render_tree(
                root,
                source,
                &name,
                &namespace,
                &cache,
                &secrets,
                &Default::default(),
                &Default::default(),
            )
            .with_context(|| format!("rendering {} path {:?}", source.repo_url, source.path))?
            .manifests
        }
        // What the controller does: resolve every source, then render them together (charts,
        // `$ref` value files).
        None => {
            let repo = RepoServer::new(cache_dir(args.cache_dir.clone()));
            let revisions = sources
                .iter()
                .map(|source| {
                    let revision = repo.resolve(source, &secrets)?;
                    tracing::info!(repo = %source.repo_url, target = source.revision(), %revision, "resolved");
                    Ok(revision)
                })
                .collect::<Result<Vec<_>, tiphys_controller::manifests::ManifestError>>()?;
            repo.generate(
                &name,
                &namespace,
                &sources,
                &revisions,
                &secrets,
                &Default::default(),
            )?
            .manifests
        }
    };
    tiphys_render::check_objects(&all)?;
    print!("{}", tiphys_render::to_yaml_stream(&all));
    Ok(())
}
