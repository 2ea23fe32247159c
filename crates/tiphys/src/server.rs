//! `tiphys server`: the API server (Argo CD's REST API, login, RBAC) until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::kubeconfig::ClientArgs;

/// Server options shared by `tiphys server` and `tiphys up`.
#[derive(clap::Args, Clone)]
pub struct ServerOptions {
    /// Serve plain HTTP (behind a TLS-terminating proxy), as `argocd-server --insecure`.
    #[arg(long)]
    pub insecure: bool,
    /// A PEM certificate to serve HTTPS with (default: a self-signed one made at start).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where repositories fetched for checks and previews are cached.
    #[arg(long, env = "TIPHYS_CACHE_DIR")]
    pub server_cache_dir: Option<PathBuf>,
}

impl ServerOptions {
    pub fn settings(
        &self,
        namespace: &str,
        listen: SocketAddr,
    ) -> anyhow::Result<tiphys_server::Settings> {
        let tls = match (&self.tls_cert, &self.tls_key, self.insecure) {
            (Some(_), _, true) => bail!("--insecure and --tls-cert exclude each other"),
            (Some(cert), Some(key), false) => tiphys_server::Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, true) => tiphys_server::Tls::Insecure,
            _ => tiphys_server::Tls::SelfSigned,
        };
        Ok(tiphys_server::Settings {
            namespace: namespace.to_string(),
            listen,
            tls,
            cache_dir: crate::render::cache_dir(self.server_cache_dir.clone()).join("server"),
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The control namespace (Applications, AppProjects, argocd-cm, argocd-secret).
    #[arg(long, short = 'n', default_value = "argocd")]
    pub namespace: String,
    /// Where the API server listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub options: ServerOptions,
}

/// Start the server; runs until it stops.
pub async fn serve(
    client: kube::Client,
    namespace: &str,
    listen: SocketAddr,
    options: &ServerOptions,
) -> anyhow::Result<tiphys_server::Running> {
    let running = tiphys_server::start(client, options.settings(namespace, listen)?)
        .await
        .context("starting the API server")?;
    tracing::info!(url = %running.url, namespace, "API server running");
    Ok(running)
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let client = args.client.client().await?;
    let running = serve(client, &args.namespace, args.listen, &args.options).await?;
    println!("API server at {}", running.url);
    tokio::select! {
        () = running.wait() => bail!("the API server stopped"),
        r = crate::local_cluster::shutdown_signal() => r,
    }
}
