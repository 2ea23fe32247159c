//! A local cluster with Tiphys installed and a `tiphys controller` process, as the end-to-end
//! tests use it, and the manifests they build from.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watch_object};
use tiphys_local_cluster::{Config, LocalCluster};
use tiphys_model::Application;
use tiphys_model::application::{HealthStatusCode, SyncStatusCode};

use super::{git, write};

pub const WAIT: Duration = Duration::from_secs(90);

/// Where the API server runs: in this process, or as a `tiphys local-cluster` process that a
/// test can kill and restart (its state in a data directory, on a fixed port).
pub enum ClusterRun {
    InProcess(LocalCluster),
    Process { child: Option<Child>, port: u16 },
}

pub struct Env {
    pub cluster: ClusterRun,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    pub controller: Option<Child>,
    pub port: u16,
    /// `--repo-poll-interval` of the controllers this Env starts: 0 (off) unless a test
    /// turns it on, so that tests of webhooks and refreshes see no other cause.
    pub repo_poll: u64,
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
        let mut env = Env::without_controller(simulate).await;
        env.start_controller().await;
        env
    }

    /// The cluster with Tiphys installed, no controller running yet (objects created now
    /// are there before it starts, as after a restart in production).
    pub async fn without_controller(simulate: Duration) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::start(Config {
            simulate: Some(simulate),
            ..Config::default()
        })
        .await
        .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        Env::finish_start(ClusterRun::InProcess(cluster), dir, kubeconfig).await
    }

    /// An Env whose API server is a `tiphys local-cluster` process with a data directory,
    /// which [`Env::restart_cluster`] kills and starts again.
    pub async fn start_restartable(simulate: Duration) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let port = free_port();
        let child = spawn_cluster(dir.path(), port, simulate);
        wait_ready(&kubeconfig, &child_log(dir.path())).await;
        let mut env = Env::finish_start(
            ClusterRun::Process {
                child: Some(child),
                port,
            },
            dir,
            kubeconfig,
        )
        .await;
        env.start_controller().await;
        env
    }

    /// Kill the API server (`kill -9`) and start it again on the same address and data.
    pub async fn restart_cluster(&mut self) {
        let simulate = self.simulate_delay();
        let ClusterRun::Process { child, port } = &mut self.cluster else {
            panic!("restart_cluster needs Env::start_restartable");
        };
        if let Some(mut old) = child.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let _ = std::fs::remove_file(&self.kubeconfig);
        *child = Some(spawn_cluster(self.dir.path(), *port, simulate));
        wait_ready(&self.kubeconfig, &child_log(self.dir.path())).await;
    }

    fn simulate_delay(&self) -> Duration {
        std::fs::read_to_string(self.dir.path().join("simulate-ms"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(200))
    }

    async fn finish_start(cluster: ClusterRun, dir: tempfile::TempDir, kubeconfig: PathBuf) -> Env {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let env = Env {
            cluster,
            dir,
            kubeconfig,
            client,
            controller: None,
            port: free_port(),
            repo_poll: 0,
        };
        let out = env.tiphys(&["install"]);
        assert!(
            out.status.success(),
            "install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
                "--repo-poll-interval",
            ])
            .arg(self.repo_poll.to_string())
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

    /// `tiphys ARGS`: whether it succeeded, and its stdout and stderr together.
    pub fn tiphys_text(&self, args: &[&str]) -> (bool, String) {
        let out = self.tiphys(args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
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

    /// What someone does by hand: `data.key` of the ConfigMap `config` in `namespace` set to
    /// `value` with `kubectl patch`.
    pub fn change_config_by_hand(&self, namespace: &str, value: &str) {
        let patch = serde_json::json!({"data": {"key": value}}).to_string();
        let out = self.kubectl(
            &[
                "-n",
                namespace,
                "patch",
                "configmap",
                "config",
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Ask for a refresh of `app` (`normal` or `hard`), as `argocd app get --refresh` does.
    pub fn refresh(&self, app: &str, kind: &str) {
        let annotation = format!("argocd.argoproj.io/refresh={kind}");
        let out = self.kubectl(
            &[
                "-n",
                "argocd",
                "annotate",
                "--overwrite",
                "application",
                app,
                &annotation,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        if let ClusterRun::Process {
            child: Some(child), ..
        } = &mut self.cluster
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn child_log(dir: &Path) -> PathBuf {
    dir.join("local-cluster.log")
}

/// `tiphys local-cluster` on `port` with its data under `dir`.
fn spawn_cluster(dir: &Path, port: u16, simulate: Duration) -> Child {
    std::fs::write(dir.join("simulate-ms"), simulate.as_millis().to_string()).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(child_log(dir))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(["local-cluster", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("cluster-data"))
        .arg("--kubeconfig-out")
        .arg(dir.join("kubeconfig"))
        .arg("--simulate-delay-ms")
        .arg(simulate.as_millis().to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Wait (with a deadline) until the kubeconfig is written and the server answers.
async fn wait_ready(kubeconfig: &Path, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if kubeconfig.exists()
            && let Ok(kc) = kube::config::Kubeconfig::read_from(kubeconfig)
            && let Ok(config) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await
            && let Ok(client) = kube::Client::try_from(config)
            && client.apiserver_version().await.is_ok()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "local cluster did not come up: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn http_get(url: &str) -> Option<String> {
    http(url, "GET", &[], "")
}

pub fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    http(url, "POST", headers, body)
}

/// The whole response (head and body) when the status is 200.
pub fn http(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    let r = super::http::send(url, method, headers, body.as_bytes())?;
    (r.status == 200).then(|| {
        let head: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("HTTP/1.1 200\r\n{}\r\n\r\n{}", head.join("\r\n"), r.body)
    })
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

/// The commit `repo`'s HEAD is at.
pub fn head(repo: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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

/// A smart-HTTP git server (`git http-backend` behind Basic auth `alice`/`s3cret`) serving the
/// bare repositories under `root`, on a port it keeps across [`GitServer::stop`] and
/// [`GitServer::start`] — an outage a test can switch on and off.
pub struct GitServer {
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl GitServer {
    pub fn new(root: &Path) -> GitServer {
        let mut server = GitServer {
            root: root.to_path_buf(),
            port: free_port(),
            child: None,
        };
        server.start();
        server
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    pub fn start(&mut self) {
        let port_file = self.root.join(format!("port-{}", self.port));
        let _ = std::fs::remove_file(&port_file);
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../source/tests/support/git_http_server.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&self.root)
            .args(["alice", "s3cret"])
            .arg(&port_file)
            .env("GIT_HTTP_PORT", self.port.to_string())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !port_file.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "git HTTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bare clone of `work` at `root/<name>`, served by [`GitServer`]; `push` updates it.
pub fn bare_clone(work: &Path, root: &Path, name: &str) -> PathBuf {
    let bare = root.join(name);
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}

/// Synced, healthy, its one operation succeeded and recorded in history.
pub fn done(a: &Application) -> bool {
    let s = status(a);
    s.sync.status == SyncStatusCode::Synced
        && s.health.status == HealthStatusCode::Healthy
        && a.operation.is_none()
        && s.operation_state
            .as_ref()
            .is_some_and(|o| o.phase == tiphys_model::application::OperationPhase::Succeeded)
        && !s.history.is_empty()
}

/// The hook results of an app's last operation.
pub fn hook_results(a: &Application) -> Vec<tiphys_model::application::ResourceResult> {
    status(a)
        .operation_state
        .and_then(|o| o.sync_result)
        .map(|r| r.resources)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.hook_type.is_empty())
        .collect()
}

/// Names of `kind` objects anywhere that still carry the hook finalizer.
pub async fn held_hooks<K>(client: &kube::Client) -> Vec<String>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|o| {
            o.meta()
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == tiphys_sync::HOOK_FINALIZER))
        })
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

/// Every (namespace, name) → the uids created under it, seen by a watch that started before
/// anything was applied: a hook created twice shows two uids.
pub fn record_creations<K>(
    api: Api<K>,
) -> std::sync::Arc<std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects()
        );
        while let Some(event) = stream.next().await {
            if let Ok(obj) = event {
                let meta = obj.meta();
                let key = format!(
                    "{}/{}",
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default()
                );
                sink.lock()
                    .unwrap()
                    .entry(key)
                    .or_insert_with(BTreeSet::new)
                    .insert(meta.uid.clone().unwrap_or_default());
            }
        }
    });
    seen
}
