//! The CLI's contexts file: which API servers the user logged in to, with which token, and which
//! one is current. The same shape as `argocd`'s `~/.config/argocd/config`, so the two read alike:
//! `contexts` name a server and a user, `servers` say how to reach them, `users` hold tokens.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CliConfig {
    #[serde(default)]
    pub contexts: Vec<ContextRef>,
    #[serde(default)]
    pub current_context: String,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextRef {
    pub name: String,
    pub server: String,
    pub user: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServerEntry {
    /// `host:port` as given to `tiphys login`.
    pub server: String,
    /// Accept any TLS certificate (the self-signed one `tiphys server` makes).
    #[serde(default)]
    pub insecure: bool,
    /// Plain HTTP (a server started with `--insecure`).
    #[serde(default)]
    pub plain_text: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UserEntry {
    pub name: String,
    #[serde(default)]
    pub auth_token: String,
}

/// A context with everything needed to call its server.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub server: ServerEntry,
    pub token: String,
}

/// `--config` (or `$TIPHYS_CONFIG`, which clap reads into it) when given, else the default.
pub fn path_or_default(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => Ok(path.clone()),
        None => default_path(),
    }
}

/// `$XDG_CONFIG_HOME/tiphys/config`, else `~/.config/tiphys/config`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("tiphys").join("config"));
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        bail!("no place for the CLI's config: set HOME, XDG_CONFIG_HOME or --config");
    };
    Ok(PathBuf::from(home)
        .join(".config")
        .join("tiphys")
        .join("config"))
}

impl CliConfig {
    /// The file's contents; an empty configuration when it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<CliConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if text.trim().is_empty() {
            return Ok(CliConfig::default());
        }
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Write the file readable by its owner only: it holds tokens.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_saphyr::to_string(self).context("serialising the CLI config")?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Written beside and renamed over, so a crash never leaves half a file.
        let staging = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&staging)
            .with_context(|| format!("writing {}", staging.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("writing {}", staging.display()))?;
        drop(file);
        std::fs::rename(&staging, path).with_context(|| format!("writing {}", path.display()))
    }

    /// The named context (or the current one) with its server and token.
    pub fn resolve(&self, name: Option<&str>) -> Option<Resolved> {
        let name = name.unwrap_or(&self.current_context);
        let context = self.contexts.iter().find(|c| c.name == name)?;
        let server = self
            .servers
            .iter()
            .find(|s| s.server == context.server)?
            .clone();
        let token = self
            .users
            .iter()
            .find(|u| u.name == context.user)
            .map(|u| u.auth_token.clone())
            .unwrap_or_default();
        Some(Resolved {
            name: context.name.clone(),
            server,
            token,
        })
    }

    /// Record a login: the context `name` points at `server` with `token`, and becomes current.
    pub fn upsert(&mut self, name: &str, server: ServerEntry, token: &str) {
        let address = server.server.clone();
        match self.servers.iter_mut().find(|s| s.server == address) {
            Some(existing) => *existing = server,
            None => self.servers.push(server),
        }
        match self.users.iter_mut().find(|u| u.name == name) {
            Some(user) => user.auth_token = token.to_string(),
            None => self.users.push(UserEntry {
                name: name.to_string(),
                auth_token: token.to_string(),
            }),
        }
        let context = ContextRef {
            name: name.to_string(),
            server: address,
            user: name.to_string(),
        };
        match self.contexts.iter_mut().find(|c| c.name == name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
        self.current_context = name.to_string();
    }

    /// Forget the token of context `name` (its server stays known, as `argocd logout` does).
    /// False when there is no such context.
    pub fn logout(&mut self, name: &str) -> bool {
        let Some(context) = self.contexts.iter().find(|c| c.name == name) else {
            return false;
        };
        let user = context.user.clone();
        for u in self.users.iter_mut().filter(|u| u.name == user) {
            u.auth_token.clear();
        }
        true
    }

    /// Remove context `name` (and its user, and its server when no other context uses it).
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(index) = self.contexts.iter().position(|c| c.name == name) else {
            return false;
        };
        let context = self.contexts.remove(index);
        self.users.retain(|u| u.name != context.user);
        if !self.contexts.iter().any(|c| c.server == context.server) {
            self.servers.retain(|s| s.server != context.server);
        }
        if self.current_context == name {
            self.current_context.clear();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(address: &str) -> ServerEntry {
        ServerEntry {
            server: address.into(),
            insecure: true,
            plain_text: false,
        }
    }

    #[test]
    fn logins_add_contexts_and_the_last_one_is_current() {
        let mut config = CliConfig::default();
        config.upsert("prod", server("cd.example.com"), "t1");
        config.upsert("local", server("127.0.0.1:8443"), "t2");
        assert_eq!(config.current_context, "local");
        assert_eq!(config.resolve(None).unwrap().token, "t2");
        assert_eq!(config.resolve(Some("prod")).unwrap().token, "t1");
        // Logging in again replaces the token, not the context.
        config.upsert("prod", server("cd.example.com"), "t3");
        assert_eq!(config.contexts.len(), 2);
        assert_eq!(config.resolve(Some("prod")).unwrap().token, "t3");
        assert!(config.resolve(Some("nowhere")).is_none());
    }

    #[test]
    fn logout_keeps_the_context_but_not_the_token_and_remove_forgets_it() {
        let mut config = CliConfig::default();
        config.upsert("a", server("h:1"), "t");
        assert!(config.logout("a"));
        assert_eq!(config.resolve(Some("a")).unwrap().token, "");
        assert!(!config.logout("b"));
        assert!(config.remove("a"));
        assert!(config.contexts.is_empty() && config.servers.is_empty());
        assert_eq!(config.current_context, "");
    }

    #[test]
    fn the_file_round_trips_and_reads_argocds_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config");
        assert_eq!(CliConfig::load(&path).unwrap(), CliConfig::default());
        let mut config = CliConfig::default();
        config.upsert("local", server("127.0.0.1:8443"), "secret");
        config.save(&path).unwrap();
        assert_eq!(CliConfig::load(&path).unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "tokens readable by others: {mode:o}");
        }
        // What `argocd login` writes, with fields Tiphys does not use.
        let argocd = "contexts:\n- name: cd.argoproj.io\n  server: cd.argoproj.io\n  user: cd.argoproj.io\n\
                      current-context: cd.argoproj.io\nprompts-enabled: false\nservers:\n\
                      - grpc-web-root-path: \"\"\n  plain-text: true\n  server: cd.argoproj.io\n\
                      users:\n- auth-token: abc\n  name: cd.argoproj.io\n  refresh-token: def\n";
        std::fs::write(&path, argocd).unwrap();
        let read = CliConfig::load(&path).unwrap().resolve(None).unwrap();
        assert_eq!(read.token, "abc");
        assert!(read.server.plain_text && !read.server.insecure);
    }
}
