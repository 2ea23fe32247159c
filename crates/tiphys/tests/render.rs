//! `tiphys render` end to end: a real git repository laid out like the seed article, the
//! seed's Application pointed at it, and bad input reported with file and line.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{git, write};

fn tiphys(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(args)
        .env("TIPHYS_CACHE_DIR", cache)
        .output()
        .unwrap()
}

#[test]
fn renders_the_seed_application_from_a_real_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("k8s-manifests");
    write(
        &repo,
        "apps/payment-service/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payment-service\nspec:\n  selector: {matchLabels: {app: payment}}\n  template:\n    metadata: {labels: {app: payment}}\n    spec:\n      containers:\n      - name: app\n        image: payment:1.0\n",
    );
    write(
        &repo,
        "apps/payment-service/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n",
    );
    write(
        &repo,
        "apps/payment-service/overlays/production/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: prod-\n",
    );
    write(
        &repo,
        "apps/broken/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nkind: ConfigMap\nmetadata:\n  name: no-api-version\n",
    );
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);

    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/seed-application.yaml"),
    )
    .unwrap();
    let app = seed.replace(
        "https://github.com/myorg/k8s-manifests",
        &format!("file://{}", repo.display()),
    );
    let app_file = tmp.path().join("app.yaml");
    std::fs::write(&app_file, app).unwrap();
    let cache = tmp.path().join("cache");

    let out = tiphys(&["render", "-f", app_file.to_str().unwrap()], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("name: prod-payment-service"), "{stdout}");
    assert!(stdout.starts_with("---\n"));

    let url = format!("file://{}", repo.display());
    let out = tiphys(
        &[
            "render",
            "--repo",
            &url,
            "--revision",
            "main",
            "--path",
            "apps/payment-service/base",
        ],
        &cache,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: payment-service"));

    let out = tiphys(&["render", "--repo", &url, "--path", "apps/broken"], &cache);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apps/broken/bad.yaml:6") && err.contains("apiVersion is missing"),
        "{err}"
    );

    let out = tiphys(
        &["render", "--repo", &url, "--revision", "no-such-branch"],
        &cache,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revision \"no-such-branch\" not found"));
}

/// Credentials come from an Argo CD `repo-creds` Secret in the cluster, matched by URL prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_repository_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    let work = tmp.path().join("work");
    write(
        &work,
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: private\n",
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "private"]);
    std::fs::create_dir_all(&served).unwrap();
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            served.join("private.git").to_str().unwrap(),
        ],
    );

    let port_file = tmp.path().join("port");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../source/tests/support/git_http_server.py");
    let mut server = Command::new("python3")
        .arg(script)
        .arg(&served)
        .args(["bob", "hunter2"])
        .arg(&port_file)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !port_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "git server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let port = std::fs::read_to_string(&port_file).unwrap();
    let url = format!("http://127.0.0.1:{port}/private.git");

    let cluster = tiphys_local_cluster::LocalCluster::start(Default::default())
        .await
        .unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let (kc_for_kubectl, kcache) = (kubeconfig.clone(), tmp.path().join("kcache"));
    let kubectl = move |args: &[&str], stdin: Option<String>| {
        let mut cmd = Command::new(tiphys_testkit::tool("kubectl"));
        cmd.args(args)
            .env("KUBECONFIG", &kc_for_kubectl)
            .env("KUBECACHEDIR", &kcache);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let prefix = format!("http://127.0.0.1:{port}/");
    let cache = tmp.path().join("cache");
    let (url2, kubeconfig2, cache2) = (url.clone(), kubeconfig.clone(), cache.clone());
    tokio::task::spawn_blocking(move || {
        kubectl(&["create", "namespace", "argocd"], None);
        let render = || {
            Command::new(env!("CARGO_BIN_EXE_tiphys"))
                .args(["render", "--repo", &url2, "--path", "app", "--kubeconfig"])
                .arg(&kubeconfig2)
                .env("TIPHYS_CACHE_DIR", &cache2)
                .output()
                .unwrap()
        };
        let out = render();
        assert!(!out.status.success(), "no Secret yet: anonymous access is refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains("authentication failed"), "{}", String::from_utf8_lossy(&out.stderr));

        let secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: repo-creds\nstringData:\n  url: {prefix}\n  username: bob\n  password: hunter2\n"
        );
        kubectl(&["apply", "-f", "-"], Some(secret));
        let out = render();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("name: private"));
    })
    .await
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
}

/// Kustomize needs no tool (the engine is native); without helm on PATH, rendering a chart
/// says helm is missing.
#[test]
fn kustomize_needs_no_tools_and_missing_helm_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "kust/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: native\n",
    );
    write(
        tmp.path(),
        "kust/kustomization.yaml",
        "resources: [cm.yaml]\nnamePrefix: k-\n",
    );
    write(
        tmp.path(),
        "chart/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    );
    let empty_path = tmp.path().join("no-tools");
    std::fs::create_dir_all(&empty_path).unwrap();
    let run = |path: &str| {
        Command::new(env!("CARGO_BIN_EXE_tiphys"))
            .args(["render", "--repo", "unused", "--path", path, "--repo-root"])
            .arg(tmp.path())
            .env("PATH", &empty_path)
            .env_remove("HELM")
            .output()
            .unwrap()
    };
    let out = run("kust");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: k-native"));
    let out = run("chart");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("helm is not installed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Argo CD's jsonnet-guestbook-tla shape through `tiphys render -f`: a Jsonnet function of
/// top-level arguments in a git repository, arguments from the Application.
#[test]
fn jsonnet_with_top_level_arguments_from_the_application() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write(
        &repo,
        "guestbook/guestbook.jsonnet",
        "function(name, port=80, replicas=1) [\n  { apiVersion: 'v1', kind: 'Service', metadata: { name: name }, spec: { ports: [{ port: port }] } },\n  { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: name }, spec: { replicas: replicas } },\n]\n",
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "jsonnet"]);
    let app = tmp.path().join("app.yaml");
    std::fs::write(
        &app,
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: jsonnet-guestbook-tla\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: file://{}\n    targetRevision: HEAD\n    path: guestbook\n    directory:\n      jsonnet:\n        tlas:\n        - name: name\n          value: $ARGOCD_APP_NAME\n        - name: replicas\n          value: \"3\"\n          code: true\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: default\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = tiphys(
        &["render", "-f", app.to_str().unwrap()],
        &tmp.path().join("cache"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("kind: Service") && text.contains("kind: Deployment"),
        "{text}"
    );
    assert!(text.contains("name: jsonnet-guestbook-tla"), "{text}");
    assert!(
        text.contains("replicas: 3") && text.contains("port: 80"),
        "{text}"
    );
}
