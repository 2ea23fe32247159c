//! `tiphys local-cluster`: the embedded Kubernetes API server as a standalone process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tiphys_local_cluster::{Config, LocalCluster};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for kubectl and kube-rs clients.
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// Keep state here (objects, CA, token); in memory when omitted.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Do not simulate workload controllers (Deployments stay unready, Jobs never finish).
    #[arg(long)]
    no_simulate: bool,
    /// How long simulated workloads take to become ready, in milliseconds.
    #[arg(long, default_value_t = 200)]
    simulate_delay_ms: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config {
        listen: args.listen,
        data_dir: args.data_dir,
        tls: !args.plain_http,
        simulate: (!args.no_simulate).then(|| Duration::from_millis(args.simulate_delay_ms)),
        ..Config::default()
    };
    let cluster = LocalCluster::start(config)
        .await
        .context("starting the local cluster")?;
    cluster
        .write_kubeconfig(&args.kubeconfig_out)
        .with_context(|| format!("writing kubeconfig to {}", args.kubeconfig_out.display()))?;
    tracing::info!(url = cluster.url(), kubeconfig = %args.kubeconfig_out.display(), "local cluster serving");
    shutdown_signal().await
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
