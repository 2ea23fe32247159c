//! The `tiphys` command: GitOps continuous delivery for Kubernetes.
#![forbid(unsafe_code)]

mod account;
mod app;
mod appset;
mod controller;
mod health;
mod install;
mod kubeconfig;
mod kustomize;
mod local_cluster;
mod proj;
mod remote;
mod render;
mod repo;
mod server;
mod table;
mod up;
mod upsert;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tiphys",
    version,
    about = "GitOps continuous delivery for Kubernetes, speaking Argo CD's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a Kubernetes-API-compatible endpoint until killed.
    LocalCluster(local_cluster::Args),
    /// Install the CRDs, the control namespace and the default AppProject. Idempotent.
    Install(install::Args),
    /// Print an Application's desired manifests as a YAML stream.
    Render(render::Args),
    /// Native Kustomize.
    #[command(subcommand)]
    Kustomize(kustomize::Command),
    /// The health an object gets, and which check decided it.
    Health(health::Args),
    /// Run the Application controller against a cluster until killed.
    Controller(controller::Args),
    /// Run the API server (Argo CD's REST API, login, RBAC) against a cluster until killed.
    Server(server::ServerArgs),
    /// Local cluster, install and controller in one process (`--demo` for the seed app).
    Up(up::Args),
    /// Log in to an API server; later commands go through it (its RBAC, your name on syncs).
    Login(remote::login::LoginArgs),
    /// Forget the token of a context (default: the current one).
    Logout(remote::login::LogoutArgs),
    /// List the contexts the CLI knows, or switch to one.
    Context(remote::login::ContextArgs),
    /// Operate on Applications: list, get, create, diff, sync, wait, history, rollback, delete.
    App(app::Args),
    /// ApplicationSets: list, get, create, delete, and generate (a preview without a cluster).
    Appset(appset::Args),
    /// AppProjects: list, get, create, delete, role tokens.
    Proj(proj::Args),
    /// Your account through the API server: user info, can-i, password, API tokens.
    Account(account::Args),
    /// Repositories (git, Helm chart repositories, OCI registries): add, list, rm.
    Repo(repo::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Rendering is blocking work (git, helm); it needs no runtime, and must not run inside one.
    let cli = match cli.command {
        Command::Render(args) => return render::run(args),
        Command::Context(args) => return remote::login::context(args),
        Command::Kustomize(command) => return kustomize::run(command),
        Command::Health(args) => return health::run(args),
        Command::Appset(args) => match appset::generate(&args) {
            Some(result) => return result,
            None => Cli {
                command: Command::Appset(args),
            },
        },
        other => Cli { command: other },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::LocalCluster(args) => local_cluster::run(args).await,
            Command::Install(args) => install::run(args).await,
            Command::Controller(args) => controller::run(args).await,
            Command::Server(args) => server::run(args).await,
            Command::Login(args) => remote::login::login(args).await,
            Command::Logout(args) => remote::login::logout(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Appset(args) => appset::run(args).await,
            Command::Proj(args) => proj::run(args).await,
            Command::Account(args) => account::run(args).await,
            Command::Repo(args) => repo::run(args).await,
            Command::App(args) => {
                let code = app::run(args).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Render(_)
            | Command::Kustomize(_)
            | Command::Health(_)
            | Command::Context(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks flag names only when a command is parsed: two flags with one name in a
    /// subcommand would make it panic at start. This checks every subcommand at once.
    #[test]
    fn every_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
