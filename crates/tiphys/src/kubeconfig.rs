//! Standard Kubernetes client configuration: `--kubeconfig`, `KUBECONFIG`, `--context`, or
//! in-cluster config when running in a Pod.

use std::path::PathBuf;

use anyhow::Context;

/// The client flags every cluster-facing command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// Path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
}

impl ClientArgs {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("using kubeconfig {}", path.display()))?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("loading kubeconfig")?,
            None => kube::Config::infer()
                .await
                .context("finding a cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?,
        };
        kube::Client::try_from(config).context("building the Kubernetes client")
    }
}
