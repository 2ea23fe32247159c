//! `tiphys install` against the local cluster, twice, then the seed article's Application and
//! ApplicationSet applied verbatim through the installed CRDs with kubectl.

use std::path::Path;
use std::process::Command;

use tiphys_local_cluster::{Config, LocalCluster};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(tiphys_testkit::tool("kubectl"));
    cmd.env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", kubeconfig.with_extension("cache"));
    cmd
}

fn install(kubeconfig: &Path) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .arg("install")
        .arg("--kubeconfig")
        .arg(kubeconfig))
}

fn seed(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_serves_the_seed_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(Config::default()).await.unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc).unwrap();

    let first = tokio::task::spawn_blocking({
        let kc = kc.clone();
        move || install(&kc)
    })
    .await
    .unwrap();
    assert!(
        first.contains("appproject/default ready in argocd"),
        "{first}"
    );
    let again = tokio::task::spawn_blocking({
        let kc = kc.clone();
        move || install(&kc)
    })
    .await
    .unwrap();
    assert_eq!(first, again);

    let kc3 = kc.clone();
    tokio::task::spawn_blocking(move || {
        let project = run(kubectl(&kc3).args([
            "get",
            "appproject",
            "default",
            "-n",
            "argocd",
            "-o",
            "jsonpath={.spec.sourceRepos}",
        ]));
        assert_eq!(project, "[\"*\"]");
        // kubectl validates strictly against the installed schemas: the seed must pass unchanged.
        run(kubectl(&kc3).args(["apply", "-f", &seed("seed-application.yaml")]));
        run(kubectl(&kc3).args(["apply", "-f", &seed("seed-applicationset.yaml")]));
        let app = run(kubectl(&kc3).args([
            "get",
            "application",
            "payment-service",
            "-n",
            "argocd",
            "-o",
            "jsonpath={.spec.source.path}",
        ]));
        assert_eq!(app, "apps/payment-service/overlays/production");
        let table = run(kubectl(&kc3).args(["get", "apps", "-n", "argocd"]));
        assert!(
            table.contains("SYNC STATUS") && table.contains("payment-service"),
            "{table}"
        );
        let name = run(kubectl(&kc3).args([
            "get",
            "appset",
            "microservices",
            "-n",
            "argocd",
            "-o",
            "jsonpath={.spec.template.metadata.name}",
        ]));
        assert_eq!(name, "{{service}}-{{env}}");
    })
    .await
    .unwrap();
}
