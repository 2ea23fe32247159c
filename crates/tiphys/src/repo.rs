//! `tiphys repo add|list|rm`: repositories as Argo CD repository Secrets — written directly
//! with `--core` (after the same connection check the controller's repo server would make),
//! or through the API server's `/api/v1/repositories`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use reqwest::Method;
use serde_json::{Value, json};
use tiphys_controller::manifests::RepoServer;
use tiphys_source::credentials::{RepoSecret, SECRET_TYPE_LABEL, SecretKind, secret_name};

use crate::remote::client::segment;
use crate::remote::{ConnectionArgs, Target};
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The control namespace (core mode).
    #[arg(long, short = 'n', global = true, default_value = "argocd")]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Add a repository (git, a Helm chart repository, or an OCI registry) after checking
    /// that it answers with the credentials given.
    Add(Box<AddArgs>),
    /// List repositories with their connection state.
    List,
    /// Remove a repository.
    Rm { url: String },
}

#[derive(clap::Args)]
struct AddArgs {
    url: String,
    /// `git`, `helm`, or `oci` (an OCI artifact of manifests).
    #[arg(long = "type", default_value = "git")]
    kind: String,
    /// A display name (Helm repositories are named in Argo CD).
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long)]
    password: Option<String>,
    #[arg(long)]
    ssh_private_key_path: Option<PathBuf>,
    #[arg(long)]
    tls_client_cert_path: Option<PathBuf>,
    #[arg(long)]
    tls_client_cert_key_path: Option<PathBuf>,
    /// Skip verification of the server's TLS certificate.
    #[arg(long)]
    insecure_skip_server_verification: bool,
    /// A Helm repository that is an OCI registry.
    #[arg(long = "enable-oci")]
    enable_oci: bool,
    /// Plain HTTP to the OCI registry.
    #[arg(long = "insecure-oci-force-http")]
    insecure_oci_force_http: bool,
    #[arg(long)]
    force_http_basic_auth: bool,
    /// Send the credentials to chart archives on other hosts too.
    #[arg(long)]
    pass_credentials: bool,
    /// Reach the repository through this HTTP(S) proxy (as `argocd repo add --proxy`).
    #[arg(long)]
    proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated (as `argocd repo add --no-proxy`).
    #[arg(long)]
    no_proxy: Option<String>,
    /// The project the repository belongs to.
    #[arg(long)]
    project: Option<String>,
    /// Replace the repository when it exists.
    #[arg(long)]
    upsert: bool,
}

impl AddArgs {
    fn secret(&self) -> anyhow::Result<RepoSecret> {
        let read = |path: &Option<PathBuf>| -> anyhow::Result<String> {
            path.as_ref().map_or(Ok(String::new()), |p| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            })
        };
        Ok(RepoSecret {
            url: self.url.clone(),
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
            ssh_private_key: read(&self.ssh_private_key_path)?,
            insecure: self.insecure_skip_server_verification,
            tls_client_cert_data: read(&self.tls_client_cert_path)?,
            tls_client_cert_key: read(&self.tls_client_cert_key_path)?,
            project: self.project.clone().unwrap_or_default(),
            repo_type: self.kind.clone(),
            enable_oci: self.enable_oci,
            force_http_basic_auth: self.force_http_basic_auth,
            pass_credentials: self.pass_credentials,
            insecure_oci_force_http: self.insecure_oci_force_http,
            proxy: self.proxy.clone().unwrap_or_default(),
            no_proxy: self.no_proxy.clone().unwrap_or_default(),
            ..Default::default()
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Command::Add(add) = &args.command
        && !["git", "helm", "oci"].contains(&add.kind.as_str())
    {
        bail!("--type {:?}: must be git, helm or oci", add.kind);
    }
    match args.connection.target().await? {
        Target::Core(client) => core(client, &args.namespace, args.command).await,
        Target::Server(server) => match args.command {
            Command::Add(add) => {
                let secret = add.secret()?;
                let mut body = json!(secret.string_data());
                body["repo"] = json!(add.url);
                body["type"] = json!(add.kind);
                // The API takes the flags as booleans, not the Secret's strings.
                for key in [
                    "insecure",
                    "enableOCI",
                    "forceHttpBasicAuth",
                    "passCredentials",
                    "insecureOCIForceHttp",
                ] {
                    body[key] = json!(body.get(key).is_some_and(|v| v == "true"));
                }
                if let Some(name) = &add.name {
                    body["name"] = json!(name);
                }
                let upsert = add.upsert.to_string();
                server
                    .call(
                        Method::POST,
                        "/api/v1/repositories",
                        &[("upsert", &upsert)],
                        Some(&body),
                    )
                    .await?;
                println!("Repository '{}' added", add.url);
                Ok(())
            }
            Command::List => {
                let answer = server
                    .call(Method::GET, "/api/v1/repositories", &[], None)
                    .await?;
                let mut table = table();
                for item in answer["items"].as_array().into_iter().flatten() {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                    table.row(vec![
                        text(&item["type"]),
                        text(&item["name"]),
                        text(&item["repo"]),
                        item["insecure"].as_bool().unwrap_or(false).to_string(),
                        item["enableOCI"].as_bool().unwrap_or(false).to_string(),
                        text(&item["connectionState"]["status"]),
                        text(&item["connectionState"]["message"]),
                        text(&item["project"]),
                    ]);
                }
                table.print();
                Ok(())
            }
            Command::Rm { url } => {
                let path = format!("/api/v1/repositories/{}", segment(&url));
                server.call(Method::DELETE, &path, &[], None).await?;
                println!("Repository '{url}' removed");
                Ok(())
            }
        },
    }
}

fn table() -> Table {
    Table::new(&[
        "TYPE", "NAME", "REPO", "INSECURE", "OCI", "STATUS", "MESSAGE", "PROJECT",
    ])
}

async fn core(client: kube::Client, namespace: &str, command: Command) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let repos = Arc::new(RepoServer::new(crate::render::cache_dir(None)));
    match command {
        Command::Add(add) => {
            let secret = add.secret()?;
            let (check, url, kind, access) = (
                repos.clone(),
                add.url.clone(),
                add.kind.clone(),
                secret.access(),
            );
            tokio::task::spawn_blocking(move || check.check_connection(&url, &kind, &access))
                .await?
                .with_context(|| format!("unable to connect to repository {}", add.url))?;
            let mut data = secret.string_data();
            if let Some(name) = &add.name {
                data.insert("name".into(), name.clone());
            }
            let name = secret_name("repo", &add.url);
            let object: Secret = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": namespace,
                    "labels": {SECRET_TYPE_LABEL: "repository"}},
                "type": "Opaque",
                "stringData": data,
            }))?;
            match secrets.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 && add.upsert => {
                    let existing = secrets.get(&name).await?;
                    let mut replacement = object;
                    replacement.metadata.resource_version = existing.metadata.resource_version;
                    secrets
                        .replace(&name, &PostParams::default(), &replacement)
                        .await
                        .with_context(|| format!("replacing Secret {name}"))?;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    bail!(
                        "repository {} exists already (--upsert replaces it)",
                        add.url
                    )
                }
                Err(e) => return Err(e).with_context(|| format!("creating Secret {name}")),
            }
            println!("Repository '{}' added", add.url);
        }
        Command::List => {
            let mut table = table();
            for (repo, name) in repository_secrets(&secrets).await? {
                let (check, url, kind, access) = (
                    repos.clone(),
                    repo.url.clone(),
                    repo.repo_type.clone(),
                    repo.access(),
                );
                let state = tokio::task::spawn_blocking(move || {
                    check.check_connection(&url, &kind, &access)
                })
                .await?;
                let (status, message) = match state {
                    Ok(()) => ("Successful".to_string(), String::new()),
                    Err(e) => ("Failed".to_string(), e.to_string()),
                };
                table.row(vec![
                    if repo.repo_type.is_empty() {
                        "git".into()
                    } else {
                        repo.repo_type.clone()
                    },
                    name,
                    repo.url.clone(),
                    repo.insecure.to_string(),
                    repo.enable_oci.to_string(),
                    status,
                    message,
                    repo.project.clone(),
                ]);
            }
            table.print();
        }
        Command::Rm { url } => {
            let wanted = tiphys_source::normalize(&url);
            let found = repository_secrets(&secrets)
                .await?
                .into_iter()
                .find(|(r, _)| tiphys_source::normalize(&r.url) == wanted);
            let Some((repo, _)) = found else {
                bail!("repository {url} not found");
            };
            secrets
                .delete(&repo.name, &DeleteParams::default())
                .await
                .with_context(|| format!("deleting Secret {}", repo.name))?;
            println!("Repository '{url}' removed");
        }
    }
    Ok(())
}

/// The repository Secrets of the namespace, each with its display name.
async fn repository_secrets(secrets: &Api<Secret>) -> anyhow::Result<Vec<(RepoSecret, String)>> {
    let list = secrets
        .list(&ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=repository")))
        .await
        .context("listing repository Secrets")?;
    Ok(list
        .items
        .iter()
        .filter_map(|s| {
            let data: BTreeMap<String, String> = s
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            let labels = s.metadata.labels.clone().unwrap_or_default();
            let name = s.metadata.name.as_deref().unwrap_or_default();
            let (kind, repo) = RepoSecret::from_secret(name, &labels, &data)?;
            (kind == SecretKind::Repository)
                .then(|| (repo, data.get("name").cloned().unwrap_or_default()))
        })
        .collect())
}
