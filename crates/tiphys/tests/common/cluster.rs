//! A local cluster with Tiphys installed and a `tiphys controller` process, as the end-to-end
//! tests use it, and the manifests they build from.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher::watch_object;
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::Application;
use tiphys_model::application::{HealthStatusCode, SyncStatusCode};

use super::{git, write};

pub const WAIT: Duration = Duration::from_secs(90);

pub struct Env {
    pub cluster: LocalCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    pub controller: Option<Child>,
    pub port: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(Duration::from_millis(100)).await
    }

    pub async fn start_with(simulate: Duration) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::start(Config {
            simulate: Some(simulate),
            ..Config::default()
        })
        .await
        .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let mut env = Env {
            cluster,
            dir,
            kubeconfig,
            client,
            controller: None,
            port: free_port(),
        };
        let out = env.tiphys(&["install"]);
        assert!(
            out.status.success(),
            "install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.start_controller().await;
        env
    }

    pub async fn start_controller(&mut self) {
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("controller-{}.log", self.port)),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tiphys"))
            .args([
                "controller",
                "--app-resync",
                "3600",
                "--app-resync-jitter",
                "0",
                "--self-heal-timeout",
                "1",
            ])
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("TIPHYS_CACHE_DIR", self.dir.path().join("cache"))
            .env("HELM", tiphys_testkit::tool("helm"))
            .env(
                "RUST_LOG",
                std::env::var("TEST_CONTROLLER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.controller = Some(child);
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while http_get(&url).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "controller did not come up: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill_controller(&mut self) {
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("controller-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn tiphys(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tiphys"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("TIPHYS_CACHE_DIR", self.dir.path().join("cli-cache"))
            .env("HELM", tiphys_testkit::tool("helm"))
            .output()
            .unwrap()
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(tiphys_testkit::tool("kubectl"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn apps(&self) -> Api<Application> {
        Api::namespaced(self.client.clone(), "argocd")
    }

    /// Watch the Application until `done` holds.
    pub async fn wait_app(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&Application) -> bool,
    ) -> Application {
        let mut stream = std::pin::pin!(watch_object(self.apps(), name));
        let mut last = None;
        let result = tokio::time::timeout(WAIT, async {
            while let Some(event) = stream.next().await {
                if let Ok(Some(app)) = event {
                    if done(&app) {
                        return Some(app);
                    }
                    last = Some(app);
                }
            }
            None
        })
        .await;
        match result {
            Ok(Some(app)) => app,
            _ => panic!(
                "application {name}: timed out waiting for {what}; last status: {}\ncontroller log:\n{}",
                serde_json::to_string_pretty(&last.and_then(|a| a.status)).unwrap(),
                self.log()
            ),
        }
    }

    /// Poll (with a deadline) until `check` returns Some.
    pub async fn eventually<T>(&self, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll the Applications (with a deadline) until every one named in `names` satisfies
    /// `done`; on timeout, fail showing the status of those that do not.
    pub async fn wait_all(
        &self,
        names: &[String],
        what: &str,
        timeout: Duration,
        done: impl Fn(&Application) -> bool,
    ) -> Vec<Application> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let apps = self.apps().list(&Default::default()).await.unwrap().items;
            let wanted: Vec<&Application> = apps
                .iter()
                .filter(|a| names.contains(a.metadata.name.as_ref().unwrap()))
                .collect();
            let pending: Vec<&&Application> = wanted.iter().filter(|a| !done(a)).collect();
            if wanted.len() == names.len() && pending.is_empty() {
                return apps;
            }
            if tokio::time::Instant::now() >= deadline {
                let shown: Vec<String> = pending
                    .iter()
                    .take(5)
                    .map(|a| {
                        format!(
                            "{}: operation {} status {}",
                            a.metadata.name.as_deref().unwrap_or_default(),
                            serde_json::to_string(&a.operation).unwrap(),
                            serde_json::to_string_pretty(&a.status).unwrap()
                        )
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}: {} of {} not there ({} found); first ones:\n{}\ncontroller log (tail):\n{}",
                    pending.len(),
                    names.len(),
                    wanted.len(),
                    shown.join("\n"),
                    tail(&self.log(), 200)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn webhook(&self, body: &str) -> String {
        http_post(
            &format!("http://127.0.0.1:{}/api/webhook", self.port),
            &[("X-GitHub-Event", "push")],
            body,
        )
        .expect("webhook answered")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_controller();
        let _ = &self.cluster;
    }
}

pub fn http_get(url: &str) -> Option<String> {
    http(url, "GET", &[], "")
}

pub fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    http(url, "POST", headers, body)
}

/// A minimal HTTP/1.1 client for the controller's endpoint.
pub fn http(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    use std::io::Read;
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}")))?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}

pub fn new_repo(root: &Path, files: &[(&str, &str)]) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for (path, text) in files {
        write(&repo, path, text);
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    repo
}

pub fn commit(repo: &Path, message: &str) {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
}

pub fn configmap(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\ndata:\n  key: value\n"
    )
}

pub fn application(name: &str, repo: &Path, path: &str, namespace: &str, policy: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: file://{}\n    targetRevision: HEAD\n    path: {path}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {namespace}\n  syncPolicy:\n{policy}",
        repo.display()
    )
}

pub const AUTOMATED: &str = "    automated:\n      prune: true\n      selfHeal: true\n    syncOptions:\n    - CreateNamespace=true\n";

pub fn status(app: &Application) -> tiphys_model::application::ApplicationStatus {
    app.status.clone().unwrap_or_default()
}

pub fn synced_and_healthy(app: &Application) -> bool {
    let s = status(app);
    s.sync.status == SyncStatusCode::Synced
        && s.health.status == HealthStatusCode::Healthy
        && app.operation.is_none()
}

pub fn condition<'a>(app: &'a Application, kind: &str) -> Option<&'a str> {
    app.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| c.message.as_str())
}

pub fn deployment(name: &str, replicas: u32, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
    )
}

pub fn hook(name: &str, phase: &str, extra_annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/hook: {phase}\n{extra_annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: busybox\n"
    )
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
