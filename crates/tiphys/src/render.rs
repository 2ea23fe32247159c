//! `tiphys render -f APPLICATION.yaml` / `tiphys render --repo URL --revision REV --path PATH`:
//! fetch, resolve and render, then print the desired manifests as a YAML stream.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tiphys_model::Application;
use tiphys_model::application::ApplicationSource;
use tiphys_source::{Access, GitCache};

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
    #[arg(long, default_value = ".", requires = "repo")]
    path: String,
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
}

fn cache_dir(explicit: Option<PathBuf>) -> PathBuf {
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
            let source = ApplicationSource {
                repo_url: args.repo.clone().unwrap_or_default(),
                target_revision: args.revision.clone(),
                path: args.path.clone(),
                ..Default::default()
            };
            (vec![source], args.name.clone(), args.namespace.clone())
        }
    };
    let cache = GitCache::new(cache_dir(args.cache_dir.clone()));
    let anon = Access::default();
    let mut all = Vec::new();
    for source in &sources {
        if !source.chart.is_empty() {
            bail!(
                "{}: Helm chart repositories (spec.source.chart) are not supported yet",
                source.repo_url
            );
        }
        let root = match &args.repo_root {
            Some(root) => root.clone(),
            None => {
                let commit = cache.resolve(&source.repo_url, source.revision(), &anon)?;
                tracing::info!(repo = %source.repo_url, revision = source.revision(), %commit, "resolved");
                cache.tree(&source.repo_url, &commit)?
            }
        };
        let rendered = tiphys_render::render(&tiphys_render::Request {
            repo_root: &root,
            source,
            app_name: &name,
            namespace: &namespace,
        })
        .with_context(|| format!("rendering {} path {:?}", source.repo_url, source.path))?;
        all.extend(rendered.manifests);
    }
    tiphys_render::check_objects(&all)?;
    print!("{}", tiphys_render::to_yaml_stream(&all));
    Ok(())
}
