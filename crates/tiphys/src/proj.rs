//! `tiphys proj …`: AppProjects through the API server or, with `--core`, the Kubernetes API;
//! project role tokens through the server.

use std::path::PathBuf;

use anyhow::{Context, bail};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use reqwest::Method;
use serde_json::json;
use tiphys_model::AppProject;

use crate::remote::client::segment;
use crate::remote::{ApiClient, ConnectionArgs, Target};
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
    /// List AppProjects.
    List,
    /// Show an AppProject: sources, destinations, roles, windows.
    Get { name: String },
    /// Create an AppProject from a manifest.
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Replace it when it exists.
        #[arg(long)]
        upsert: bool,
    },
    /// Delete an AppProject (refused while Applications use it).
    Delete { name: String },
    /// Project roles' tokens (through the API server).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Sync windows.
    #[command(subcommand)]
    Windows(WindowsCommand),
}

#[derive(clap::Subcommand)]
enum WindowsCommand {
    /// PROJECT's sync windows, each with whether it is active now.
    List { project: String },
}

#[derive(clap::Subcommand)]
enum RoleCommand {
    /// Make a token for PROJECT's ROLE and print it.
    CreateToken {
        project: String,
        role: String,
        /// Seconds, or 30d / 12h / 90m (default: never expires).
        #[arg(long, short = 'e')]
        expires_in: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
    /// Revoke the token of PROJECT's ROLE issued at IAT (seconds).
    DeleteToken {
        project: String,
        role: String,
        iat: i64,
    },
}

enum Projects {
    Core(Api<AppProject>),
    Server(ApiClient),
}

fn path(name: &str, rest: &str) -> String {
    let name = segment(name);
    format!("/api/v1/projects/{name}{rest}")
}

impl Projects {
    async fn list(&self) -> anyhow::Result<Vec<AppProject>> {
        match self {
            Projects::Core(api) => Ok(api
                .list(&Default::default())
                .await
                .context("listing projects")?
                .items),
            Projects::Server(server) => {
                let answer = server
                    .call(Method::GET, "/api/v1/projects", &[], None)
                    .await?;
                match answer.get("items") {
                    Some(items) if !items.is_null() => serde_json::from_value(items.clone())
                        .context("GET /api/v1/projects: unexpected answer"),
                    _ => Ok(Vec::new()),
                }
            }
        }
    }

    async fn get(&self, name: &str) -> anyhow::Result<AppProject> {
        match self {
            Projects::Core(api) => api
                .get(name)
                .await
                .with_context(|| format!("project {name}")),
            Projects::Server(server) => server.get(&path(name, ""), &[]).await,
        }
    }

    async fn create(&self, project: AppProject, upsert: bool) -> anyhow::Result<()> {
        let name = project.metadata.name.clone().unwrap_or_default();
        match self {
            Projects::Core(api) => {
                let created = api.create(&PostParams::default(), &project).await;
                match created {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 && upsert => {
                        let params = PatchParams::apply("tiphys-cli").force();
                        api.patch(&name, &params, &Patch::Apply(&project))
                            .await
                            .with_context(|| format!("updating project {name}"))?;
                        Ok(())
                    }
                    Err(e) => Err(e).with_context(|| format!("creating project {name}")),
                }
            }
            Projects::Server(server) => {
                server
                    .call(
                        Method::POST,
                        "/api/v1/projects",
                        &[],
                        Some(&json!({"project": project, "upsert": upsert})),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Projects::Core(api) => {
                api.delete(name, &DeleteParams::default())
                    .await
                    .with_context(|| format!("deleting project {name}"))?;
            }
            Projects::Server(server) => {
                server
                    .call(Method::DELETE, &path(name, ""), &[], None)
                    .await?;
            }
        }
        Ok(())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let projects = match args.connection.target().await? {
        Target::Core(client) => Projects::Core(Api::namespaced(client, &args.namespace)),
        Target::Server(server) => Projects::Server(server),
    };
    match args.command {
        Command::List => {
            let mut table =
                Table::new(&["NAME", "DESCRIPTION", "DESTINATIONS", "SOURCES", "ROLES"]);
            for p in projects.list().await? {
                let destinations: Vec<String> =
                    p.spec.destinations.iter().map(destination).collect();
                table.row(vec![
                    p.metadata.name.clone().unwrap_or_default(),
                    p.spec.description.clone(),
                    destinations.join(","),
                    p.spec.source_repos.join(","),
                    p.spec
                        .roles
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            table.print();
        }
        Command::Get { name } => print_project(&projects.get(&name).await?),
        Command::Create { file, upsert } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let project = AppProject::from_yaml(&text, &file.display().to_string())?;
            let name = project.metadata.name.clone().unwrap_or_default();
            if name.is_empty() {
                bail!("{}: the project has no metadata.name", file.display());
            }
            projects.create(project, upsert).await?;
            println!("appproject.argoproj.io/{name} created");
        }
        Command::Delete { name } => {
            projects.delete(&name).await?;
            println!("appproject.argoproj.io/{name} deleted");
        }
        Command::Windows(WindowsCommand::List { project }) => {
            let project = projects.get(&project).await?;
            print_windows(&project);
        }
        Command::Role(role) => {
            let server = args.connection.server("tiphys proj role").await?;
            role_command(&server, role).await?;
        }
    }
    Ok(())
}

async fn role_command(server: &ApiClient, command: RoleCommand) -> anyhow::Result<()> {
    match command {
        RoleCommand::CreateToken {
            project,
            role,
            expires_in,
            id,
        } => {
            let expires_in = expires_in
                .as_deref()
                .map(crate::account::seconds)
                .transpose()?
                .unwrap_or(0);
            let role_path = format!("/roles/{}/token", segment(&role));
            let answer = server
                .call(
                    Method::POST,
                    &path(&project, &role_path),
                    &[],
                    Some(
                        &json!({"project": project, "role": role, "expiresIn": expires_in,
                                 "id": id.unwrap_or_default()}),
                    ),
                )
                .await?;
            println!("{}", answer["token"].as_str().unwrap_or_default());
        }
        RoleCommand::DeleteToken { project, role, iat } => {
            let role_path = format!("/roles/{}/token/{iat}", segment(&role));
            server
                .call(Method::DELETE, &path(&project, &role_path), &[], None)
                .await?;
            println!("Token deleted");
        }
    }
    Ok(())
}

fn destination(d: &tiphys_model::application::ApplicationDestination) -> String {
    let cluster = if d.server.is_empty() {
        &d.name
    } else {
        &d.server
    };
    format!("{cluster},{}", d.namespace)
}

fn print_project(p: &AppProject) {
    println!(
        "Name:                        {}",
        p.metadata.name.clone().unwrap_or_default()
    );
    println!("Description:                 {}", p.spec.description);
    let destinations: Vec<String> = p.spec.destinations.iter().map(destination).collect();
    println!(
        "Destinations:                {}",
        destinations.join("\n                             ")
    );
    println!(
        "Repositories:                {}",
        p.spec.source_repos.join("\n                             ")
    );
    let kinds = |list: &[tiphys_model::project::GroupKind]| {
        if list.is_empty() {
            "<none>".to_string()
        } else {
            list.iter()
                .map(|g| format!("{}/{}", g.group, g.kind))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!(
        "Allowed Cluster Resources:   {}",
        kinds(&p.spec.cluster_resource_whitelist)
    );
    println!(
        "Denied Namespaced Resources: {}",
        kinds(&p.spec.namespace_resource_blacklist)
    );
    if !p.spec.roles.is_empty() {
        println!();
        let mut table = Table::new(&["ROLE", "GROUPS", "POLICIES", "TOKENS"]);
        for r in &p.spec.roles {
            table.row(vec![
                r.name.clone(),
                r.groups.join(","),
                r.policies.len().to_string(),
                r.jwt_tokens.len().to_string(),
            ]);
        }
        table.print();
    }
    if !p.spec.sync_windows.is_empty() {
        println!();
        let mut table = Table::new(&["KIND", "SCHEDULE", "DURATION", "APPLICATIONS", "MANUALSYNC"]);
        for w in &p.spec.sync_windows {
            table.row(vec![
                w.kind.clone(),
                w.schedule.clone(),
                w.duration.clone(),
                w.applications.join(","),
                if w.manual_sync { "Enabled" } else { "Disabled" }.into(),
            ]);
        }
        table.print();
    }
}

/// `proj windows list`, in Argo CD's columns.
fn print_windows(project: &AppProject) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "KIND",
        "SCHEDULE",
        "DURATION",
        "APPLICATIONS",
        "NAMESPACES",
        "CLUSTERS",
        "MANUALSYNC",
        "TIMEZONE",
        "USEANDOPERATOR",
    ]);
    let or_dash = |list: &[String]| {
        if list.is_empty() {
            "-".to_string()
        } else {
            list.join(",")
        }
    };
    for (id, w) in project.spec.sync_windows.iter().enumerate() {
        let status = match tiphys_controller::windows::active(w, now) {
            Ok((true, _)) => "Active".to_string(),
            Ok((false, _)) => "Inactive".to_string(),
            Err(e) => format!("Error: {e}"),
        };
        table.row(vec![
            id.to_string(),
            status,
            w.kind.clone(),
            w.schedule.clone(),
            w.duration.clone(),
            or_dash(&w.applications),
            or_dash(&w.namespaces),
            or_dash(&w.clusters),
            if w.manual_sync { "Enabled" } else { "Disabled" }.into(),
            if w.time_zone.is_empty() {
                "UTC".into()
            } else {
                w.time_zone.clone()
            },
            if w.and_operator {
                "Enabled"
            } else {
                "Disabled"
            }
            .into(),
        ]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_servers_project_answer_reads_as_an_appproject() {
        let answer: Value = json!({"metadata": {"name": "team"}, "spec": {
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "team-*"}],
            "sourceRepos": ["*"], "roles": [{"name": "ci", "policies": ["p, proj:team:ci, applications, sync, team/*, allow"]}]}});
        let p: AppProject = serde_json::from_value(answer).unwrap();
        assert_eq!(
            destination(&p.spec.destinations[0]),
            "https://kubernetes.default.svc,team-*"
        );
        assert_eq!(p.spec.roles[0].name, "ci");
    }
}
