//! A real OpenID Connect provider for the SSO tests: npm `oidc-provider`, run by
//! `tests/support/oidc-provider.mjs`, serving users alice and bob.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::free_port;

pub struct Provider {
    child: Child,
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the provider (its log and port file under `dir`), redirecting to `redirect_uri`;
/// returns once it listens.
pub fn start_provider(dir: &Path, redirect_uri: &str) -> Provider {
    let prefix = tiphys_testkit::npm_package("oidc-provider@9.13.3");
    let port = free_port();
    let port_file = dir.join(format!("oidc-{port}"));
    let log = dir.join("oidc.log");
    let child = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc-provider.mjs"))
        .env(
            "OIDC_PROVIDER_MODULE",
            prefix.join("node_modules/oidc-provider/lib/index.js"),
        )
        .env("PORT", port.to_string())
        .env("REDIRECT_URI", redirect_uri)
        .env("PORT_FILE", &port_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let provider = Provider {
        child,
        issuer: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !port_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the identity provider did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    provider
}
