//! A Helm chart repository and an OCI registry to test chart sources against, built with the
//! real `helm` and Debian's `docker-registry`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tool;

/// A Helm chart repository for tests: charts packaged with the real `helm` into a directory
/// indexed by `helm repo index`, served over HTTP (optionally behind Basic auth, or over
/// HTTPS requiring a client certificate) by `support/chart_repo_server.py`.
pub struct ChartRepo {
    pub dir: PathBuf,
    pub url: String,
    log: PathBuf,
    child: std::process::Child,
}

/// Server certificate, key, and the CA client certificates must chain to (PEM files).
pub struct ServerTls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: &'a Path,
}

impl ChartRepo {
    /// Serve `dir` (created when missing); `basic` is the user and password it requires.
    pub fn start(dir: &Path, basic: Option<(&str, &str)>, tls: Option<ServerTls<'_>>) -> ChartRepo {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let state = tempfile_dir(dir, "server");
        let port_file = state.join("port");
        let log = state.join("requests.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/chart_repo_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(dir).arg(&port_file).arg(&log);
        let (user, password) = basic.unwrap_or(("-", "-"));
        cmd.args([user, password]);
        if let Some(t) = &tls {
            cmd.arg(t.cert).arg(t.key).arg(t.client_ca);
        }
        let child = cmd
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the chart repository: {e}"));
        let port = wait_for_file(&port_file, "the chart repository");
        let scheme = if tls.is_some() { "https" } else { "http" };
        ChartRepo {
            dir: dir.to_path_buf(),
            url: format!("{scheme}://127.0.0.1:{port}"),
            log,
            child,
        }
    }

    /// Package the chart in `chart_dir` into the repository and index it again.
    pub fn publish(&self, chart_dir: &Path) {
        helm(&["package", "--destination"], &[&self.dir, chart_dir]);
        helm(&["repo", "index"], &[&self.dir]);
    }

    /// How many requests for `path` (`/index.yaml`) got each status so far: (200s, 304s).
    pub fn requests(&self, path: &str) -> (usize, usize) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let count = |status: &str| {
            log.lines()
                .filter(|l| l.split_once(' ') == Some((status, path)))
                .count()
        };
        (count("200"), count("304"))
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CNCF distribution registry (Debian's `docker-registry`, installed when missing) on a
/// free port of 127.0.0.1, plain HTTP, storing under a directory of its own.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: std::process::Child,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        let program = tool("docker-registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let state = tempfile_dir(dir, "registry");
        let config = state.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                state.join("data").display()
            ),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting docker-registry: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Registry {
            host: format!("127.0.0.1:{port}"),
            child,
        }
    }

    /// Package `chart_dir` and `helm push` it to `oci://HOST/<path>`.
    pub fn push(&self, chart_dir: &Path, path: &str) {
        let out = tempfile_dir(chart_dir.parent().unwrap_or(chart_dir), "packaged");
        helm(&["package", "--destination"], &[&out, chart_dir]);
        for archive in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let target = format!("oci://{}/{path}", self.host);
            helm(
                &["push", "--plain-http"],
                &[&archive.path(), Path::new(&target)],
            );
            let _ = std::fs::remove_file(archive.path());
        }
    }
}

/// Pushes a directory to a registry as an OCI artifact of one tar layer (gzipped unless the
/// media type says plain `tar`), as `oras push` does (python3, standard library only): argv is
/// dir, host, repository, tag, layer media type, then manifest annotations as `key=value`;
/// prints the manifest digest.
const PUSH_ARTIFACT: &str = r#"
import hashlib, io, json, sys, tarfile, urllib.request
src, host, repo, tag, media = sys.argv[1:6]
annotations = dict(a.split("=", 1) for a in sys.argv[6:])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w" if media.endswith(".tar") else "w:gz") as tar:
    tar.add(src, arcname=".")
layer = buf.getvalue()
config = b"{}"
def push(blob):
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
    location = urllib.request.urlopen(start).headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{sep}digest={digest}", data=blob, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put)
    return digest
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.unknown.artifact.v1",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": push(config), "size": len(config)},
    "layers": [{"mediaType": media, "digest": push(layer), "size": len(layer),
                "annotations": {"org.opencontainers.image.title": "."}}],
    "annotations": annotations,
}).encode()
put = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
urllib.request.urlopen(put)
print("sha256:" + hashlib.sha256(manifest).hexdigest())
"#;

impl Registry {
    /// Push the files under `dir` as an OCI artifact `HOST/<repository>:<tag>` with one layer
    /// of `media_type` (`application/vnd.oci.image.layer.v1.tar+gzip` for manifests); the
    /// manifest's digest.
    pub fn push_artifact(
        &self,
        dir: &Path,
        repository: &str,
        tag: &str,
        media_type: &str,
    ) -> String {
        self.push_annotated_artifact(dir, repository, tag, media_type, &[])
    }

    /// [`Registry::push_artifact`] with these manifest annotations (`oras push -a k=v`).
    pub fn push_annotated_artifact(
        &self,
        dir: &Path,
        repository: &str,
        tag: &str,
        media_type: &str,
        annotations: &[(&str, &str)],
    ) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg(PUSH_ARTIFACT)
            .arg(dir)
            .args([self.host.as_str(), repository, tag, media_type])
            .args(annotations.iter().map(|(k, v)| format!("{k}={v}")))
            .output()
            .unwrap_or_else(|e| panic!("running python3: {e}"));
        assert!(
            out.status.success(),
            "pushing {} as {repository}:{tag}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the real `helm` with `args` then `paths`, with its configuration and caches kept out
/// of the user's home; panics with its output when it fails.
pub fn helm(args: &[&str], paths: &[&Path]) -> String {
    let home = std::env::temp_dir().join(format!("tiphys-helm-home-{}", std::process::id()));
    let out = Command::new(tool("helm"))
        .args(args)
        .args(paths)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("running helm: {e}"));
    assert!(
        out.status.success(),
        "helm {args:?} {paths:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh directory `<parent>/.<what>-<n>`.
fn tempfile_dir(parent: &Path, what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = parent.join(format!(".{what}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Wait (bounded) for a server to write its port into `file`.
fn wait_for_file(file: &Path, what: &str) -> u16 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(port) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return port;
        }
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
