//! `tiphys appset list|get|create|delete|generate`: ApplicationSets through the API server or
//! the Kubernetes API (`--core`), and a cluster-free preview of what an ApplicationSet generates
//! (for pull requests).

use std::path::PathBuf;

use crate::remote::client::segment;
use crate::table::Table;
use anyhow::{Context, bail};
use kube::api::Api;
use reqwest::Method;
use tiphys_appset::Inputs;
use tiphys_controller::appset::{GitRepos, LocalTree, cluster_infos};
use tiphys_model::{Application, ApplicationSet};

use crate::remote::{ApiClient, ConnectionArgs, Target};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List ApplicationSets.
    List {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The control namespace (core mode).
        #[arg(long, short = 'n', default_value = "argocd")]
        namespace: String,
    },
    /// Show an ApplicationSet's conditions and the Applications it owns.
    Get {
        name: String,
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The control namespace (core mode).
        #[arg(long, short = 'n', default_value = "argocd")]
        namespace: String,
    },
    /// Create an ApplicationSet from a manifest (an existing one that differs is refused
    /// unless --upsert).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Replace the spec of an existing ApplicationSet that differs.
        #[arg(long)]
        upsert: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The control namespace (core mode).
        #[arg(long, short = 'n', default_value = "argocd")]
        namespace: String,
    },
    /// Delete an ApplicationSet (its Applications too, unless its policy keeps them).
    Delete {
        name: String,
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The control namespace (core mode).
        #[arg(long, short = 'n', default_value = "argocd")]
        namespace: String,
    },
    /// Print the Applications an ApplicationSet would create, without a cluster.
    Generate {
        /// The ApplicationSet manifest.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Read git generators from this checked-out tree instead of fetching.
        #[arg(long)]
        repo_root: Option<PathBuf>,
        /// Where fetched repositories are cached.
        #[arg(long, env = "TIPHYS_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// Blocking work (git) first: `generate` runs before any async runtime exists.
pub fn generate(args: &Args) -> Option<anyhow::Result<()>> {
    let Command::Generate {
        file,
        repo_root,
        cache_dir,
    } = &args.command
    else {
        return None;
    };
    Some((|| {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let set = ApplicationSet::from_yaml(&text, &file.display().to_string())?;
        let clusters = cluster_infos(&[]);
        let apps = match repo_root {
            Some(root) => tiphys_appset::applications(
                &set,
                &Inputs {
                    repos: &LocalTree(root.clone()),
                    clusters: &clusters,
                },
            ),
            None => {
                let repo = tiphys_controller::manifests::RepoServer::new(crate::render::cache_dir(
                    cache_dir.clone(),
                ));
                let repos = GitRepos {
                    repo: &repo,
                    secrets: &[],
                };
                tiphys_appset::applications(
                    &set,
                    &Inputs {
                        repos: &repos,
                        clusters: &clusters,
                    },
                )
            }
        }
        .with_context(|| format!("{}: generating Applications", file.display()))?;
        for app in &apps {
            print!(
                "---\n{}",
                serde_saphyr::to_string(app).context("writing YAML")?
            );
        }
        eprintln!("{} Application(s)", apps.len());
        Ok(())
    })())
}

/// Where ApplicationSets (and the Applications they own) are read from.
enum Sets {
    Core(kube::Client, String),
    Server(ApiClient),
}

impl Sets {
    async fn new(connection: &ConnectionArgs, namespace: &str) -> anyhow::Result<Sets> {
        Ok(match connection.target().await? {
            Target::Core(client) => Sets::Core(client, namespace.to_string()),
            Target::Server(server) => Sets::Server(server),
        })
    }

    async fn list(&self) -> anyhow::Result<Vec<ApplicationSet>> {
        match self {
            Sets::Core(client, namespace) => {
                let api: Api<ApplicationSet> = Api::namespaced(client.clone(), namespace);
                Ok(api
                    .list(&Default::default())
                    .await
                    .context("listing ApplicationSets")?
                    .items)
            }
            Sets::Server(server) => {
                let answer: serde_json::Value = server.get("/api/v1/applicationsets", &[]).await?;
                match answer.get("items") {
                    Some(items) if !items.is_null() => serde_json::from_value(items.clone())
                        .context("GET /api/v1/applicationsets: unexpected answer"),
                    _ => Ok(Vec::new()),
                }
            }
        }
    }

    async fn get(&self, name: &str) -> anyhow::Result<ApplicationSet> {
        match self {
            Sets::Core(client, namespace) => {
                let api: Api<ApplicationSet> = Api::namespaced(client.clone(), namespace);
                api.get(name)
                    .await
                    .with_context(|| format!("ApplicationSet {name}"))
            }
            Sets::Server(server) => {
                server
                    .get(&format!("/api/v1/applicationsets/{}", segment(name)), &[])
                    .await
            }
        }
    }

    async fn create(&self, set: &ApplicationSet, upsert: bool) -> anyhow::Result<()> {
        match self {
            Sets::Core(client, namespace) => {
                let api: Api<ApplicationSet> = Api::namespaced(client.clone(), namespace);
                crate::upsert::create_or_upsert(&api, set, upsert, |existing| {
                    existing.upserted(set)
                })
                .await
            }
            Sets::Server(server) => {
                let upsert = upsert.to_string();
                server
                    .call(
                        Method::POST,
                        "/api/v1/applicationsets",
                        &[("upsert", upsert.as_str())],
                        Some(&serde_json::to_value(set)?),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Sets::Core(client, namespace) => {
                let api: Api<ApplicationSet> = Api::namespaced(client.clone(), namespace);
                api.delete(name, &Default::default())
                    .await
                    .with_context(|| format!("deleting ApplicationSet {name}"))?;
            }
            Sets::Server(server) => {
                let path = format!("/api/v1/applicationsets/{}", segment(name));
                server.call(Method::DELETE, &path, &[], None).await?;
            }
        }
        Ok(())
    }

    /// The Application if it exists (and the caller may see it).
    async fn app(&self, name: &str) -> Option<Application> {
        match self {
            Sets::Core(client, namespace) => {
                let api: Api<Application> = Api::namespaced(client.clone(), namespace);
                api.get_opt(name).await.ok().flatten()
            }
            Sets::Server(server) => server
                .get(&format!("/api/v1/applications/{}", segment(name)), &[])
                .await
                .ok(),
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::List {
            connection,
            namespace,
        } => {
            let sets = Sets::new(&connection, &namespace).await?;
            let mut table = Table::new(&["NAME", "GENERATOR", "APPS", "CONDITIONS"]);
            for set in sets.list().await? {
                let status = set.status.clone().unwrap_or_default();
                let generator = set
                    .spec
                    .generators
                    .first()
                    .and_then(|g| g.as_object())
                    .and_then(|m| m.keys().next().cloned())
                    .unwrap_or_default();
                let conditions: Vec<String> = status
                    .conditions
                    .iter()
                    .filter(|c| c.status == "True")
                    .map(|c| c.kind.clone())
                    .collect();
                table.row(vec![
                    set.metadata.name.clone().unwrap_or_default(),
                    generator,
                    status.resources.len().to_string(),
                    conditions.join(","),
                ]);
            }
            table.print();
            Ok(())
        }
        Command::Get {
            name,
            connection,
            namespace,
        } => {
            let sets = Sets::new(&connection, &namespace).await?;
            let set = sets.get(&name).await?;
            let status = set.status.clone().unwrap_or_default();
            println!(
                "Name:        {}/{name}",
                set.metadata.namespace.as_deref().unwrap_or(&namespace)
            );
            println!("Generators:  {}", set.spec.generators.len());
            println!(
                "Sync policy: {}",
                set.spec
                    .sync_policy
                    .as_ref()
                    .and_then(|p| p.applications_sync.clone())
                    .unwrap_or_else(|| "sync".into())
            );
            println!();
            let mut table = Table::new(&["CONDITION", "STATUS", "REASON", "MESSAGE"]);
            for c in &status.conditions {
                table.row(vec![
                    c.kind.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]);
            }
            table.print();
            println!();
            let mut table = Table::new(&["APPLICATION", "STATUS", "HEALTH"]);
            for r in &status.resources {
                let s = sets
                    .app(&r.name)
                    .await
                    .and_then(|a| a.status)
                    .unwrap_or_default();
                table.row(vec![
                    r.name.clone(),
                    format!("{:?}", s.sync.status),
                    format!("{:?}", s.health.status),
                ]);
            }
            table.print();
            Ok(())
        }
        Command::Create {
            file,
            upsert,
            connection,
            namespace,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let set = ApplicationSet::from_yaml(&text, &file.display().to_string())?;
            let name = set.metadata.name.clone().unwrap_or_default();
            if name.is_empty() {
                bail!(
                    "{}: the ApplicationSet has no metadata.name",
                    file.display()
                );
            }
            Sets::new(&connection, &namespace)
                .await?
                .create(&set, upsert)
                .await?;
            println!("ApplicationSet '{name}' created");
            Ok(())
        }
        Command::Delete {
            name,
            connection,
            namespace,
        } => {
            Sets::new(&connection, &namespace)
                .await?
                .delete(&name)
                .await?;
            println!("applicationset.argoproj.io/{name} deleted");
            Ok(())
        }
        Command::Generate { .. } => bail!("handled before the runtime starts"),
    }
}
