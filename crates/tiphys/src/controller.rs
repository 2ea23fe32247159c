//! `tiphys controller`: run the Application controller against any cluster until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tiphys_controller::{Controller, Settings};

use crate::kubeconfig::ClientArgs;

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub options: Options,
}

/// Controller tuning shared by `tiphys controller` and `tiphys up`.
#[derive(clap::Args, Clone)]
pub struct Options {
    /// The control namespace (Applications, AppProjects, Secrets, argocd-cm).
    #[arg(long, short = 'n', default_value = "argocd")]
    pub namespace: String,
    /// Webhook, metrics and health endpoint (`/api/webhook`, `/metrics`, `/healthz`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Periodic refresh, in seconds (argocd-cm `timeout.reconciliation` overrides).
    #[arg(long, default_value_t = 120)]
    pub app_resync: u64,
    /// Random extra delay added to each periodic refresh, in seconds.
    #[arg(long, default_value_t = 60)]
    pub app_resync_jitter: u64,
    /// How often each git repository is asked whether a branch or tag moved, in seconds:
    /// one ref advertisement per repository, and only the apps whose revision moved are
    /// refreshed (Argo CD refreshes every app every 180 s instead). 0 turns polling off.
    #[arg(long, default_value_t = 10)]
    pub repo_poll_interval: u64,
    /// How long selfHeal waits after a sync before correcting drift, in seconds.
    #[arg(long, default_value_t = 5)]
    pub self_heal_timeout: u64,
    /// Concurrent reconciles.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Refuse to sync Secrets with literal data found in Git (always reported).
    #[arg(long)]
    pub refuse_secrets_in_git: bool,
    /// Where fetched repositories and trees are cached.
    #[arg(long, env = "TIPHYS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl Options {
    pub fn settings(&self) -> Settings {
        Settings {
            namespace: self.namespace.clone(),
            resync: Duration::from_secs(self.app_resync),
            jitter: Duration::from_secs(self.app_resync_jitter),
            self_heal_timeout: Duration::from_secs(self.self_heal_timeout),
            cache_dir: crate::render::cache_dir(self.cache_dir.clone()),
            workers: self.workers,
            refuse_secrets_in_git: self.refuse_secrets_in_git,
            repo_poll: Duration::from_secs(self.repo_poll_interval),
            ..Settings::default()
        }
    }
}

/// Start the controller and its HTTP endpoint; runs until the controller stops.
pub async fn serve(client: kube::Client, options: &Options) -> anyhow::Result<()> {
    let controller: Arc<Controller> = Controller::start(client, options.settings())
        .await
        .context("starting the controller")?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    tracing::info!(listen = %options.listen, namespace = %options.namespace, "controller running");
    let router = tiphys_controller::webhook::router(controller.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "HTTP endpoint stopped");
        }
    });
    controller.serve().await.context("controller stopped")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.client.client().await?;
    tokio::select! {
        r = serve(client, &args.options) => r,
        r = crate::local_cluster::shutdown_signal() => r,
    }
}
