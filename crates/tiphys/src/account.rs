//! `tiphys account …`: who you are, what you may do, passwords and API tokens — through the
//! API server (accounts are the server's, not the cluster's).

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::remote::client::segment;
use crate::remote::config::CliConfig;
use crate::remote::{ApiClient, ConnectionArgs};
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Who the server says you are: user name, issuer, groups.
    GetUserInfo,
    /// List the local accounts.
    List,
    /// Show an account (default: yours) with its tokens.
    Get {
        #[arg(long, short = 'a')]
        account: Option<String>,
    },
    /// Whether you may do ACTION on RESOURCE's SUBRESOURCE (`can-i sync applications 'team/*'`).
    CanI {
        action: String,
        resource: String,
        subresource: String,
    },
    /// Change a password (default: yours; then logs in again with the new one).
    UpdatePassword {
        #[arg(long, short = 'a')]
        account: Option<String>,
        #[arg(long, env = "TIPHYS_CURRENT_PASSWORD", hide_env_values = true)]
        current_password: String,
        #[arg(long, env = "TIPHYS_NEW_PASSWORD", hide_env_values = true)]
        new_password: String,
    },
    /// Make an API token and print it.
    GenerateToken {
        #[arg(long, short = 'a')]
        account: Option<String>,
        /// How long it is valid (`30d`, `12h`, `90m`; default: it never expires).
        #[arg(long, short = 'e')]
        expires_in: Option<String>,
        /// The token's ID (default: a random one).
        #[arg(long)]
        id: Option<String>,
    },
    /// Revoke an API token by its ID.
    DeleteToken {
        id: String,
        #[arg(long, short = 'a')]
        account: Option<String>,
    },
}

fn account_path(name: &str, rest: &str) -> String {
    let name = segment(name);
    format!("/api/v1/account/{name}{rest}")
}

async fn me(server: &ApiClient) -> anyhow::Result<String> {
    let info = server
        .call(Method::GET, "/api/v1/session/userinfo", &[], None)
        .await?;
    match info["username"].as_str() {
        Some(name) if info["loggedIn"] == true && !name.is_empty() => Ok(name.to_string()),
        _ => bail!("not logged in: tiphys login SERVER"),
    }
}

async fn named(server: &ApiClient, account: Option<String>) -> anyhow::Result<String> {
    match account {
        Some(a) => Ok(a),
        None => me(server).await,
    }
}

/// `30d`, `12h`, `1h30m`, or plain seconds.
pub fn seconds(text: &str) -> anyhow::Result<u64> {
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return Ok(days * 24 * 3600);
    }
    tiphys_model::validate::parse_duration(text)
        .map(|d| d.as_secs())
        .with_context(|| format!("--expires-in {text:?}: expected e.g. 30d, 12h, 90m"))
}

fn when(seconds: &Value) -> String {
    match seconds.as_i64() {
        Some(0) | None => "never".into(),
        Some(s) => k8s_openapi::jiff::Timestamp::from_second(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| s.to_string()),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let server = args.connection.server("tiphys account").await?;
    match args.command {
        Command::GetUserInfo => {
            let info = server
                .call(Method::GET, "/api/v1/session/userinfo", &[], None)
                .await?;
            println!("Logged In: {}", info["loggedIn"] == true);
            if info["loggedIn"] == true {
                println!(
                    "Username: {}",
                    info["username"].as_str().unwrap_or_default()
                );
                println!("Issuer: {}", info["iss"].as_str().unwrap_or_default());
                let groups: Vec<&str> = info["groups"]
                    .as_array()
                    .map(|g| g.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                println!("Groups: {}", groups.join(","));
            }
        }
        Command::List => {
            let answer = server
                .call(Method::GET, "/api/v1/account", &[], None)
                .await?;
            let mut table = Table::new(&["NAME", "ENABLED", "CAPABILITIES"]);
            for a in answer["items"].as_array().into_iter().flatten() {
                table.row(vec![
                    a["name"].as_str().unwrap_or_default().to_string(),
                    a["enabled"].as_bool().unwrap_or_default().to_string(),
                    strings(&a["capabilities"]).join(", "),
                ]);
            }
            table.print();
        }
        Command::Get { account } => {
            let name = named(&server, account).await?;
            let a = server
                .call(Method::GET, &account_path(&name, ""), &[], None)
                .await?;
            println!(
                "Name:               {}",
                a["name"].as_str().unwrap_or_default()
            );
            println!(
                "Enabled:            {}",
                a["enabled"].as_bool().unwrap_or_default()
            );
            println!(
                "Capabilities:       {}",
                strings(&a["capabilities"]).join(", ")
            );
            println!();
            println!("Tokens:");
            let mut table = Table::new(&["ID", "ISSUED AT", "EXPIRING AT"]);
            for t in a["tokens"].as_array().into_iter().flatten() {
                table.row(vec![
                    t["id"].as_str().unwrap_or_default().to_string(),
                    when(&t["issuedAt"]),
                    when(&t["expiresAt"]),
                ]);
            }
            table.print();
        }
        Command::CanI {
            action,
            resource,
            subresource,
        } => {
            let path = format!(
                "/api/v1/account/can-i/{}/{}/{}",
                segment(&resource),
                segment(&action),
                segment(&subresource)
            );
            let answer = server.call(Method::GET, &path, &[], None).await?;
            println!("{}", answer["value"].as_str().unwrap_or("no"));
        }
        Command::UpdatePassword {
            account,
            current_password,
            new_password,
        } => {
            let me = me(&server).await?;
            let name = account.unwrap_or_else(|| me.clone());
            server
                .call(
                    Method::PUT,
                    "/api/v1/account/password",
                    &[],
                    Some(&json!({"name": name, "currentPassword": current_password,
                                 "newPassword": new_password})),
                )
                .await?;
            println!("Password updated");
            // A password change ends the account's older sessions, this one included.
            if name == me {
                relogin(&args.connection, &server, &name, &new_password).await?;
            }
        }
        Command::GenerateToken {
            account,
            expires_in,
            id,
        } => {
            let name = named(&server, account).await?;
            let expires_in = expires_in.as_deref().map(seconds).transpose()?.unwrap_or(0);
            let answer = server
                .call(
                    Method::POST,
                    &account_path(&name, "/token"),
                    &[],
                    Some(&json!({"name": name, "expiresIn": expires_in, "id": id.unwrap_or_default()})),
                )
                .await?;
            println!("{}", answer["token"].as_str().unwrap_or_default());
        }
        Command::DeleteToken { id, account } => {
            let name = named(&server, account).await?;
            server
                .call(
                    Method::DELETE,
                    &account_path(&name, &format!("/token/{}", segment(&id))),
                    &[],
                    None,
                )
                .await?;
            println!("Token deleted");
        }
    }
    Ok(())
}

/// Log in again after changing one's own password, keeping the current context usable.
async fn relogin(
    connection: &ConnectionArgs,
    server: &ApiClient,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    if connection.server.is_some() {
        return Ok(());
    }
    let path = connection.config_path()?;
    let mut config = CliConfig::load(&path)?;
    let Some(current) = config.resolve(None) else {
        return Ok(());
    };
    let answer = server
        .call(
            Method::POST,
            "/api/v1/session",
            &[],
            Some(&json!({"username": name, "password": password})),
        )
        .await?;
    let token = answer["token"].as_str().unwrap_or_default();
    config.upsert(&current.name, current.server, token);
    config.save(&path)?;
    println!("Context '{}' updated", current.name);
    Ok(())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_take_days_too() {
        assert_eq!(seconds("30d").unwrap(), 30 * 24 * 3600);
        assert_eq!(seconds("1h30m").unwrap(), 5400);
        assert_eq!(seconds("90").unwrap(), 90);
        assert!(seconds("soon").is_err());
    }
}
