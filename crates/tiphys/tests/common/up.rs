//! `tiphys up --demo` as a user starts it: the local cluster, controller and API server in one
//! process, on ports of the test's choosing, with the seed article's demo app.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::free_port;

pub struct Up {
    child: Child,
    /// What it printed until the demo app was announced.
    pub printed: String,
    pub server_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    /// Start it with its data, cache and log under `dir`; returns once it has printed the
    /// demo line (or panics with its log after two minutes).
    pub fn start(dir: &Path) -> Up {
        let (api, server, listen) = (free_port(), free_port(), free_port());
        let data = dir.join("data");
        let log = dir.join("up.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tiphys"))
            .args(["up", "--demo", "--data-dir"])
            .arg(&data)
            .args(["--api-listen", &format!("127.0.0.1:{api}")])
            .args(["--server-listen", &format!("127.0.0.1:{server}")])
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .env("TIPHYS_CACHE_DIR", dir.join("cache"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read on a thread for as long as it prints, so the pipe stays open.
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let mut printed = Vec::new();
        while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(120)) {
            let last = line.contains("demo:");
            printed.push(line);
            if last {
                break;
            }
        }
        Up {
            child,
            printed: printed.join("\n"),
            server_port: server,
            data,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server_port)
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A real `kubectl` against it, `stdin` piped in; its stdout (panics when it fails).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = Command::new(tiphys_testkit::tool("kubectl"))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The admin password, read as `tiphys up` tells a user to.
    pub fn admin_password(&self) -> String {
        use base64::Engine;
        let encoded = self.kubectl(
            &[
                "-n",
                "argocd",
                "get",
                "secret",
                "argocd-initial-admin-secret",
                "-o",
                "jsonpath={.data.password}",
            ],
            None,
        );
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .unwrap(),
        )
        .unwrap()
    }
}
