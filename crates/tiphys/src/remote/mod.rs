//! Where a CLI command goes: through an API server the user logged in to (`tiphys login`), or
//! straight to the cluster with a kubeconfig (`--core`, `--kubeconfig`, `--context`, or no login
//! at all), as `argocd` and `argocd --core` do.

pub mod client;
pub mod config;
pub mod login;

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::kubeconfig::ClientArgs;
pub use client::{ApiClient, ServerError};
use config::{CliConfig, ServerEntry};

/// The connection flags of every command that can go either way.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub kube: ClientArgs,
    /// Talk to the cluster directly with a kubeconfig, not through an API server.
    #[arg(long, global = true)]
    pub core: bool,
    /// The API server (host:port), instead of the current context's.
    #[arg(long, global = true, env = "TIPHYS_SERVER")]
    pub server: Option<String>,
    /// A token for --server (an API or project role token), instead of a login's.
    #[arg(long, global = true, env = "TIPHYS_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Accept the server's certificate whoever signed it (with --server).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Plain HTTP (with --server; a server started with --insecure).
    #[arg(long, global = true)]
    pub plaintext: bool,
    /// The CLI's contexts file (default ~/.config/tiphys/config).
    #[arg(long, global = true, env = "TIPHYS_CONFIG")]
    pub config: Option<PathBuf>,
}

pub enum Target {
    Core(kube::Client),
    Server(ApiClient),
}

impl ConnectionArgs {
    pub fn config_path(&self) -> anyhow::Result<PathBuf> {
        config::path_or_default(self.config.as_ref())
    }

    fn direct(&self) -> bool {
        self.core || self.kube.kubeconfig.is_some() || self.kube.context.is_some()
    }

    /// Kubeconfig flags or `--core` mean the cluster; `--server` or a current context mean
    /// that API server; with neither, the cluster from the environment's kubeconfig.
    pub async fn target(&self) -> anyhow::Result<Target> {
        if self.direct() {
            if self.server.is_some() {
                bail!("--server and --core/--kubeconfig/--context exclude each other");
            }
            return Ok(Target::Core(self.kube.client().await?));
        }
        match self.api_server()? {
            Some(server) => Ok(Target::Server(server)),
            None => Ok(Target::Core(self.kube.client().await?)),
        }
    }

    /// The API server, for commands that only exist there.
    pub async fn server(&self, what: &str) -> anyhow::Result<ApiClient> {
        if !self.direct()
            && let Some(server) = self.api_server()?
        {
            return Ok(server);
        }
        bail!(
            "{what} goes through the API server: tiphys login SERVER (or --server with --auth-token)"
        )
    }

    /// `--server` (with `--auth-token` or a context's token for it), else the current context.
    fn api_server(&self) -> anyhow::Result<Option<ApiClient>> {
        if let Some(server) = &self.server {
            let entry = ServerEntry {
                server: server.clone(),
                insecure: self.insecure,
                plain_text: self.plaintext,
            };
            let token = match &self.auth_token {
                Some(token) => token.clone(),
                None => {
                    let config = CliConfig::load(&self.config_path()?)?;
                    let context = config.contexts.iter().find(|c| &c.server == server);
                    context
                        .and_then(|c| config.resolve(Some(&c.name)))
                        .map(|r| r.token)
                        .unwrap_or_default()
                }
            };
            return Ok(Some(ApiClient::new(&entry, &token)?));
        }
        if self.auth_token.is_some() {
            bail!("--auth-token needs --server");
        }
        let path = self.config_path()?;
        let config = CliConfig::load(&path)?;
        match config.resolve(None) {
            Some(context) if context.token.is_empty() => bail!(
                "logged out of {} (context {}): tiphys login {} — or --core for the cluster",
                context.server.server,
                context.name,
                context.server.server
            ),
            Some(context) => Ok(Some(
                ApiClient::new(&context.server, &context.token)
                    .with_context(|| format!("context {} in {}", context.name, path.display()))?,
            )),
            None => Ok(None),
        }
    }
}
