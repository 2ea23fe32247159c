//! `tiphys login`, `tiphys logout` and `tiphys context`: sessions with API servers, kept as
//! contexts in the CLI's config file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::ApiClient;
use super::config::{self, CliConfig, ServerEntry};
use crate::table::Table;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The API server: host:port (or a URL with its scheme).
    server: String,
    #[arg(long)]
    username: Option<String>,
    /// Read from the terminal (without echo) or standard input when not given.
    #[arg(long, env = "TIPHYS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Log in through the server's single sign-on (argocd-cm oidc.config) in a browser.
    #[arg(long, conflicts_with_all = ["username", "password"])]
    sso: bool,
    /// The local port the browser comes back to after SSO.
    #[arg(long, default_value_t = 8085)]
    sso_port: u16,
    /// The context's name (default: the server's address).
    #[arg(long)]
    name: Option<String>,
    /// Accept the server's certificate whoever signed it (a self-signed `tiphys server`).
    #[arg(long)]
    insecure: bool,
    /// Plain HTTP (a server started with --insecure).
    #[arg(long)]
    plaintext: bool,
    #[command(flatten)]
    file: ConfigFile,
}

#[derive(clap::Args)]
pub struct ConfigFile {
    /// The CLI's contexts file (default ~/.config/tiphys/config).
    #[arg(long, env = "TIPHYS_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigFile {
    fn path(&self) -> anyhow::Result<PathBuf> {
        config::path_or_default(self.config.as_ref())
    }
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The context to log out of (default: the current one).
    context: Option<String>,
    #[command(flatten)]
    file: ConfigFile,
}

#[derive(clap::Args)]
pub struct ContextArgs {
    /// Switch to this context (without: list them).
    context: Option<String>,
    /// Remove the context instead.
    #[arg(long)]
    delete: bool,
    #[command(flatten)]
    file: ConfigFile,
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let server = ServerEntry {
        server: args.server.clone(),
        insecure: args.insecure,
        plain_text: args.plaintext,
    };
    let anonymous = ApiClient::new(&server, "")?;
    // Reaching the server at all, and what it offers (SSO), before asking for anything.
    let settings = anonymous
        .call(Method::GET, "/api/v1/settings", &[], None)
        .await
        .map_err(|e| {
            let certificate = format!("{e:#}").contains("certificate");
            if certificate && !args.insecure {
                e.context("the server's certificate is not trusted (a self-signed `tiphys server`? add --insecure)")
            } else {
                e
            }
        })?;
    let token = if args.sso {
        if settings["oidcConfig"].is_null() && settings["dexConfig"].is_null() {
            bail!(
                "{} has no single sign-on configured (argocd-cm oidc.config): log in with --username",
                args.server
            );
        }
        sso(&anonymous, args.sso_port).await?
    } else {
        let username = match args.username {
            Some(u) => u,
            None => prompt("Username: ", false)?,
        };
        let password = match args.password {
            Some(p) => p,
            None => prompt("Password: ", true)?,
        };
        let answer = anonymous
            .call(
                Method::POST,
                "/api/v1/session",
                &[],
                Some(&json!({"username": username, "password": password})),
            )
            .await?;
        answer["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .with_context(|| format!("{}: the login answered no token", args.server))?
            .to_string()
    };
    // Who the server says we are, which also proves the token works.
    let me = ApiClient::new(&server, &token)?
        .call(Method::GET, "/api/v1/session/userinfo", &[], None)
        .await?;
    let name = args.name.unwrap_or_else(|| args.server.clone());
    let path = args.file.path()?;
    let mut config = CliConfig::load(&path)?;
    config.upsert(&name, server, &token);
    config.save(&path)?;
    println!(
        "'{}' logged in successfully",
        me["username"].as_str().unwrap_or_default()
    );
    println!("Context '{name}' updated");
    Ok(())
}

/// Forget the context's token — after asking its server to end the session, so a copy of the
/// token is worthless too. An unreachable server does not keep the token here.
pub async fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let path = args.file.path()?;
    let mut config = CliConfig::load(&path)?;
    let name = args
        .context
        .unwrap_or_else(|| config.current_context.clone());
    let Some(context) = config.resolve(Some(&name)) else {
        bail!("no context {name:?} in {}", path.display());
    };
    if !context.token.is_empty() {
        let ended = match ApiClient::new(&context.server, &context.token) {
            Ok(server) => server
                .call(Method::DELETE, "/api/v1/session", &[], None)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = ended {
            eprintln!(
                "warning: {} did not end the session ({e:#}); the token is forgotten here",
                context.server.server
            );
        }
    }
    config.logout(&name);
    config.save(&path)?;
    println!("Logged out from '{name}'");
    Ok(())
}

pub fn context(args: ContextArgs) -> anyhow::Result<()> {
    let path = args.file.path()?;
    let mut config = CliConfig::load(&path)?;
    match (args.context, args.delete) {
        (None, true) => bail!("--delete needs the context's name"),
        (None, false) => {
            let mut table = Table::new(&["CURRENT", "NAME", "SERVER"]);
            for c in &config.contexts {
                let current = if c.name == config.current_context {
                    "*"
                } else {
                    ""
                };
                table.row(vec![current.into(), c.name.clone(), c.server.clone()]);
            }
            table.print();
        }
        (Some(name), true) => {
            if !config.remove(&name) {
                bail!("no context {name:?} in {}", path.display());
            }
            config.save(&path)?;
            println!("Context '{name}' deleted");
        }
        (Some(name), false) => {
            if config.resolve(Some(&name)).is_none() {
                bail!("no context {name:?} in {}", path.display());
            }
            config.current_context = name.clone();
            config.save(&path)?;
            println!("Switched to context '{name}'");
        }
    }
    Ok(())
}

/// A line from the terminal (echo off for secrets) or, in scripts, from standard input.
fn prompt(label: &str, secret: bool) -> anyhow::Result<String> {
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        eprint!("{label}");
        let _ = std::io::stderr().flush();
    }
    // `stty` rather than a terminal crate: one call, and only when a person is typing.
    let hidden = terminal
        && secret
        && std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    read.context("reading standard input")?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        bail!("{} is required", label.trim_end_matches([':', ' ']));
    }
    Ok(value)
}

/// Single sign-on through a browser: the server's `/auth/login` sends the browser to the
/// identity provider and, once logged in, back to this machine's loopback port with the
/// session, which is checked against the state only this process knows.
async fn sso(server: &ApiClient, port: u16) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("listening on 127.0.0.1:{port} for the SSO answer (--sso-port)")
        })?;
    let port = listener.local_addr()?.port();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = server.url(
        "/auth/login",
        &[("cli_port", &port.to_string()), ("cli_state", &state)],
    )?;
    println!("Opening the browser for single sign-on. If it does not open, visit:\n{url}");
    open_browser(url.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let (mut socket, _) = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .context("no answer from the browser within 5 minutes")?
            .context("accepting the browser's connection")?;
        let Some(target) = request_target(&mut socket).await else {
            continue;
        };
        let query: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x{target}"))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        let value = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let (Some(answer_state), Some(token)) = (value("state"), value("token")) else {
            respond(&mut socket, 404, "Not the SSO answer.").await;
            continue;
        };
        if answer_state != state {
            respond(&mut socket, 400, "This login was not started here.").await;
            continue;
        }
        respond(
            &mut socket,
            200,
            "Logged in to Tiphys. You can close this tab and return to the terminal.",
        )
        .await;
        return Ok(token);
    }
}

/// The path and query of one HTTP request on `socket`.
async fn request_target(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < 64 * 1024 {
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&buffer);
    let mut first = text.lines().next()?.split(' ');
    (first.next()? == "GET").then_some(())?;
    first.next().map(str::to_string)
}

async fn respond(socket: &mut tokio::net::TcpStream, status: u16, message: &str) {
    let body =
        format!("<!doctype html><meta charset=utf-8><title>Tiphys</title><p>{message}</p>\n");
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(answer.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    if std::env::var_os("TIPHYS_NO_BROWSER").is_some() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
