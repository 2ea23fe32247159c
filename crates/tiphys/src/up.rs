//! `tiphys up`: the local cluster, `install` and the controller in one process. With
//! `--demo`, a git repository laid out like the seed article (`apps/<service>/base`,
//! `apps/<service>/overlays/<env>`) and the seed's Application pointing at it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use tiphys_local_cluster::{Config, LocalCluster};

use crate::controller::Options;

#[derive(clap::Args)]
pub struct Args {
    /// Where the cluster keeps its state (and the demo repository): survives restarts.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The local cluster's API address.
    #[arg(long, default_value = "127.0.0.1:6443")]
    api_listen: SocketAddr,
    /// Create a demo repository and the seed article's Application.
    #[arg(long)]
    demo: bool,
    /// Where the API server and the web UI listen.
    #[arg(long, default_value = "127.0.0.1:8443")]
    server_listen: SocketAddr,
    #[command(flatten)]
    server: crate::server::ServerOptions,
    #[command(flatten)]
    options: Options,
}

/// The seed article's Application, verbatim; `--demo` only points its repoURL at the demo
/// repository.
const SEED_APPLICATION: &str = include_str!("../../model/tests/fixtures/seed-application.yaml");
const SEED_REPO: &str = "https://github.com/myorg/k8s-manifests";

fn data_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir)
            .join("tiphys")
    })
}

/// A status line on stdout. The cluster, controller and server keep running when nobody reads
/// them any more (`tiphys up | head -3`, a closed terminal): a failed write is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = data_dir(args.data_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cluster = LocalCluster::start(Config {
        listen: args.api_listen,
        data_dir: Some(dir.join("cluster")),
        simulate: Some(Duration::from_millis(500)),
        ..Config::default()
    })
    .await
    .context("starting the local cluster")?;
    let kubeconfig = dir.join("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig)
        .with_context(|| format!("writing {}", kubeconfig.display()))?;
    let client = crate::kubeconfig::ClientArgs {
        kubeconfig: Some(kubeconfig.clone()),
        context: None,
    }
    .client()
    .await?;
    crate::install::install(client.clone(), &args.options.namespace, false).await?;
    let server = crate::server::serve(
        client.clone(),
        &args.options.namespace,
        args.server_listen,
        &args.server,
    )
    .await?;
    say!("Tiphys is up: local cluster at {}", cluster.url());
    say!("  export KUBECONFIG={}", kubeconfig.display());
    say!("  API server at {}", server.url);
    say!("  web UI at {}/ (log in as admin)", server.url);
    say!(
        "  admin password: kubectl -n {} get secret argocd-initial-admin-secret -o jsonpath='{{.data.password}}' | base64 -d",
        args.options.namespace
    );
    say!(
        "  log in:   tiphys login {} --insecure --username admin   (then tiphys app/proj/account go through it)",
        server.url
    );
    say!("  webhook and metrics on http://{}", args.options.listen);
    if args.demo {
        let repo = dir.join("demo-repo");
        let repo =
            tokio::task::spawn_blocking(move || demo_repository(&repo).map(|()| repo)).await??;
        apply_demo(&client, &args.options.namespace, &repo).await?;
        say!(
            "  demo: Application payment-service syncing from {}",
            repo.display()
        );
        say!(
            "  try:  tiphys app get payment-service   |   tiphys app wait payment-service --health"
        );
    }
    tokio::select! {
        r = crate::controller::serve(client, &args.options) => r,
        () = server.wait() => bail!("the API server stopped"),
        r = crate::local_cluster::shutdown_signal() => r,
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Tiphys",
            "-c",
            "user.email=demo@tiphys.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Write the seed's layout into a new git repository (kept if it already exists).
pub fn demo_repository(repo: &Path) -> anyhow::Result<()> {
    if repo.join(".git").exists() {
        return Ok(());
    }
    for service in ["order-service", "inventory-service", "payment-service"] {
        let base = repo.join("apps").join(service).join("base");
        std::fs::create_dir_all(&base)?;
        std::fs::write(
            base.join("kustomization.yaml"),
            "resources:\n- deployment.yaml\n- service.yaml\n",
        )?;
        std::fs::write(
            base.join("deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {service}\n  labels:\n    app: {service}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {service}\n  template:\n    metadata:\n      labels:\n        app: {service}\n    spec:\n      containers:\n      - name: {service}\n        image: ghcr.io/myorg/{service}:1.0.0\n        ports:\n        - containerPort: 8080\n"
            ),
        )?;
        std::fs::write(
            base.join("service.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {service}\nspec:\n  selector:\n    app: {service}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
            ),
        )?;
        for (env, replicas) in [("staging", 1), ("production", 3)] {
            let overlay = repo.join("apps").join(service).join("overlays").join(env);
            std::fs::create_dir_all(&overlay)?;
            std::fs::write(
                overlay.join("kustomization.yaml"),
                format!(
                    "resources:\n- ../../base\nlabels:\n- pairs:\n    env: {env}\nreplicas:\n- name: {service}\n  count: {replicas}\n"
                ),
            )?;
        }
    }
    git(repo, &["init", "-q"])?;
    git(repo, &["add", "-A"])?;
    git(
        repo,
        &[
            "commit",
            "-q",
            "-m",
            "Seed layout: apps/<service>/base and overlays/<env>",
        ],
    )?;
    Ok(())
}

async fn apply_demo(client: &kube::Client, namespace: &str, repo: &Path) -> anyhow::Result<()> {
    let project = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "production", "namespace": namespace},
        "spec": {"description": "The seed article's production project",
                 "sourceRepos": ["*"],
                 "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
                 "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]},
    });
    let text = SEED_APPLICATION.replace(SEED_REPO, &format!("file://{}", repo.display()));
    let app: serde_json::Value = serde_saphyr_value(&text)?;
    let pp = PatchParams::apply("tiphys").force();
    let ar = |kind: &str, plural: &str| {
        kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
            plural,
        )
    };
    let projects: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ar("AppProject", "appprojects"));
    projects
        .patch("production", &pp, &Patch::Apply(&project))
        .await
        .context("applying AppProject production")?;
    let apps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ar("Application", "applications"),
    );
    apps.patch("payment-service", &pp, &Patch::Apply(&app))
        .await
        .context("applying the seed Application")?;
    Ok(())
}

fn serde_saphyr_value(text: &str) -> anyhow::Result<serde_json::Value> {
    let app = tiphys_model::Application::from_yaml(text, "seed Application")?;
    Ok(serde_json::to_value(app)?)
}
