//! `tiphys app list|get|create|diff|sync|wait|history|rollback|delete|terminate-op|pause|resume`:
//! Applications through the API server the user logged in to, or the Kubernetes API (`--core`,
//! like `argocd --core`).

use std::time::Duration;

mod backend;
mod create;

use anyhow::{Context, bail};
use futures::StreamExt;
use kube::api::Api;
use serde_json::json;
use tiphys_model::Application;
use tiphys_model::application::{OperationPhase, SyncStatusCode};

use crate::remote::{ConnectionArgs, Target};
use crate::table::Table;
use backend::{Apps, SyncRequest};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The control namespace (core mode).
    #[arg(long, short = 'n', global = true, default_value = "argocd")]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List Applications.
    List,
    /// Show an Application: source, destination, status, conditions and resources.
    Get { name: String },
    /// Create an Application from a manifest (-f), flags, or both (flags win), as
    /// `argocd app create`.
    Create(Box<create::CreateArgs>),
    /// Show what a sync would change (exit code 1 when out of sync, 2 on errors).
    Diff {
        name: String,
        /// Where fetched repositories are cached.
        #[arg(long, env = "TIPHYS_CACHE_DIR")]
        cache_dir: Option<std::path::PathBuf>,
    },
    /// Sync an Application and wait for the operation to finish.
    Sync {
        name: String,
        /// Delete resources no longer in Git.
        #[arg(long)]
        prune: bool,
        /// Preview only: server-side dry run, nothing changes.
        #[arg(long)]
        dry_run: bool,
        /// Sync only these resources: GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME.
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Sync to this revision instead of the target revision.
        #[arg(long)]
        revision: Option<String>,
        /// Extra sync options (CreateNamespace=true, ServerSideApply=true, ...).
        #[arg(long = "sync-option")]
        sync_options: Vec<String>,
        /// Sync what this local directory renders to instead of Git (`argocd app sync
        /// --local`; needs the `override` permission, and auto-sync off unless --dry-run).
        #[arg(long, conflicts_with = "revision")]
        local: Option<std::path::PathBuf>,
        /// The repository root --local is inside (default: --local itself), for Kustomize
        /// bases and Helm values outside the app's directory.
        #[arg(long, requires = "local")]
        local_repo_root: Option<std::path::PathBuf>,
        /// Return once the sync is requested.
        #[arg(long = "async")]
        no_wait: bool,
        /// Seconds to wait (0: forever).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// Wait until an Application is synced, healthy and idle.
    Wait {
        name: String,
        #[arg(long)]
        health: bool,
        #[arg(long)]
        sync: bool,
        /// Wait for a running operation to finish.
        #[arg(long)]
        operation: bool,
        /// Seconds to wait (0: forever).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// Show the deployment history.
    History { name: String },
    /// Sync back to a revision from the history.
    Rollback {
        name: String,
        /// The history ID (default: the previous deployment).
        id: Option<i64>,
        #[arg(long)]
        prune: bool,
    },
    /// Delete an Application (with its resources unless --cascade=false).
    Delete {
        name: String,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        cascade: bool,
        /// foreground or background cascading.
        #[arg(long, default_value = "foreground")]
        propagation_policy: String,
        /// Wait until the Application (and, cascading, its resources) is gone.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait (0: forever).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
    /// Stop the operation in progress: hooks still running are deleted, and the operation
    /// ends as Failed ("Operation terminated").
    TerminateOp { name: String },
    /// Pause auto-sync (and self-heal) for a while: `--for 2h` or `--until TIME`; drift is
    /// still shown. Pausing a paused app moves the end of its pause.
    Pause {
        name: String,
        /// How long (`90s`, `30m`, `2h`, `1h30m`).
        #[arg(
            long = "for",
            required_unless_present = "until",
            conflicts_with = "until"
        )]
        duration: Option<String>,
        /// Until when (RFC 3339, e.g. 2026-12-01T18:00:00Z).
        #[arg(long)]
        until: Option<String>,
        /// Why, for the team (shown with the pause everywhere).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a pause of auto-sync now.
    Resume { name: String },
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let apps = match args.connection.target().await? {
        Target::Core(client) => Apps::Core {
            api: Api::namespaced(client.clone(), &args.namespace),
            client,
            namespace: args.namespace.clone(),
        },
        Target::Server(server) => Apps::Server(server),
    };
    match args.command {
        Command::List => list(&apps).await,
        Command::Get { name } => get(&apps, &name).await,
        Command::Create(create) => {
            let app = create.application()?;
            apps.create(&app, create.upsert()).await?;
            let name = app.metadata.name.unwrap_or_default();
            println!("application '{name}' created");
            Ok(0)
        }
        Command::Diff { name, cache_dir } => {
            // As Argo CD's CLI: 0 in sync, 1 differences, 2 anything went wrong.
            match diff(&apps, &name, cache_dir).await {
                Ok(code) => Ok(code),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    Ok(2)
                }
            }
        }
        Command::Sync {
            name,
            prune,
            dry_run,
            resources,
            revision,
            sync_options,
            local,
            local_repo_root,
            no_wait,
            timeout,
        } => {
            let manifests = match local {
                Some(dir) => {
                    let app = apps.get(&name).await?;
                    render_local(app, dir, local_repo_root).await?
                }
                None => Vec::new(),
            };
            let request = SyncRequest {
                manifests,
                prune,
                dry_run,
                resources: resources
                    .iter()
                    .map(|r| parse_resource(r))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                revision: revision.unwrap_or_default(),
                sync_options,
            };
            let written = apps.sync(&name, &request, &user()).await?;
            if no_wait {
                println!("sync of {name} requested");
                return Ok(0);
            }
            follow(&apps, &name, &written, timeout).await
        }
        Command::Wait {
            name,
            health,
            sync,
            operation,
            timeout,
        } => {
            let all = !health && !sync && !operation;
            let done = wait(&apps, &name, timeout, |app| {
                let status = app.status.clone().unwrap_or_default();
                ((!health && !all)
                    || status.health.status == tiphys_model::application::HealthStatusCode::Healthy)
                    && ((!sync && !all) || status.sync.status == SyncStatusCode::Synced)
                    && ((!operation && !all) || app.operation.is_none())
            })
            .await?;
            if let Some(app) = done {
                print_summary(&app);
                Ok(0)
            } else {
                eprintln!("timed out waiting for application {name}");
                Ok(1)
            }
        }
        Command::History { name } => {
            let app = apps.get(&name).await?;
            let mut table = Table::new(&["ID", "DATE", "REVISION"]);
            for h in app.status.unwrap_or_default().history {
                let source = h
                    .source
                    .as_ref()
                    .map(|s| format!(" ({}, path {})", s.repo_url, s.path))
                    .unwrap_or_default();
                table.row(vec![
                    h.id.to_string(),
                    h.deployed_at.clone(),
                    format!("{}{source}", h.revision),
                ]);
            }
            table.print();
            Ok(0)
        }
        Command::Rollback { name, id, prune } => {
            let app = apps.get(&name).await?;
            if app.auto_sync_enabled() {
                bail!("rollback cannot be initiated when auto-sync is enabled");
            }
            let Some(entry) = app.rollback_target(id) else {
                bail!(
                    "application {name} has no history entry {}",
                    id.map(|i| i.to_string())
                        .unwrap_or_else(|| "before the current one".into())
                );
            };
            let written = apps.rollback(&name, entry, prune, &user()).await?;
            follow(&apps, &name, &written, 0).await
        }
        Command::TerminateOp { name } => {
            apps.terminate(&name).await?;
            println!("Application '{name}' operation terminating");
            Ok(0)
        }
        Command::Pause {
            name,
            duration,
            until,
            reason,
        } => {
            let until = pause_end(duration.as_deref(), until.as_deref())?;
            let app = apps.pause(&name, until, &reason, &user()).await?;
            let pause = app
                .pause()
                .context("the pause was not recorded on the application")?;
            println!(
                "application '{name}': {}",
                tiphys_controller::pause::describe(&pause)
            );
            Ok(0)
        }
        Command::Resume { name } => {
            apps.resume(&name, &user()).await?;
            println!("application '{name}': auto-sync resumed");
            Ok(0)
        }
        Command::Delete {
            name,
            cascade,
            propagation_policy,
            wait: wait_gone,
            timeout,
        } => {
            apps.delete(&name, cascade, &propagation_policy).await?;
            println!(
                "application.argoproj.io/{name} deleted{}",
                if cascade { " (resources cascade)" } else { "" }
            );
            if wait_gone && !apps.wait_deleted(&name, timeout).await? {
                eprintln!("timed out waiting for application {name} to be deleted");
                return Ok(1);
            }
            Ok(0)
        }
    }
}

fn user() -> String {
    std::env::var("USER")
        .map(|u| format!("{u} (tiphys CLI)"))
        .unwrap_or_else(|_| "tiphys CLI".into())
}

/// When a pause asked for `--for DURATION` or `--until TIME` ends.
fn pause_end(
    duration: Option<&str>,
    until: Option<&str>,
) -> anyhow::Result<k8s_openapi::jiff::Timestamp> {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    match (duration, until) {
        (Some(d), _) => {
            let d = tiphys_model::validate::parse_duration(d)
                .with_context(|| format!("--for {d:?}: expected a duration like 90s, 30m, 2h"))?;
            let d = SignedDuration::try_from(d).context("--for: too long")?;
            Ok(Timestamp::now().checked_add(d).context("--for: too long")?)
        }
        (None, Some(t)) => t.parse::<Timestamp>().with_context(|| {
            format!("--until {t:?}: expected an RFC 3339 time like 2026-12-01T18:00:00Z")
        }),
        (None, None) => bail!("say how long: --for DURATION or --until TIME"),
    }
}

/// The SYNCPOLICY column and `Sync Policy:` line: Argo's words, and a pause when there is one.
fn policy_text(app: &Application, long: bool) -> String {
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.automated.as_ref());
    let Some(a) = automated else {
        return "Manual".into();
    };
    let base = match (long, a.prune) {
        (false, true) => "Auto-Prune".to_string(),
        (false, false) => "Auto".to_string(),
        (true, _) => format!(
            "Automated{}{}",
            if a.prune { " (Prune)" } else { "" },
            if a.self_heal { " (SelfHeal)" } else { "" }
        ),
    };
    match app.pause() {
        Some(p) if long => format!("{base}, {}", tiphys_controller::pause::describe(&p)),
        Some(_) => format!("{base} (paused)"),
        None if !app.auto_sync_enabled() => format!("{base} (disabled)"),
        None => base,
    }
}

/// GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME, as Argo CD's CLI takes them.
fn parse_resource(text: &str) -> anyhow::Result<serde_json::Value> {
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    let [group, kind, rest] = parts.as_slice() else {
        bail!("--resource {text:?}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME");
    };
    let (namespace, name) = rest.split_once('/').unwrap_or(("", rest));
    Ok(json!({"group": group, "kind": kind, "namespace": namespace, "name": name}))
}

async fn list(apps: &Apps) -> anyhow::Result<i32> {
    let apps = apps.list().await?;
    let mut table = Table::new(&[
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "SYNCPOLICY",
        "REPO",
        "PATH",
        "TARGET",
        "PAUSED-UNTIL",
    ]);
    for app in apps {
        let status = app.status.clone().unwrap_or_default();
        let source = app
            .sources()
            .first()
            .map(|s| (*s).clone())
            .unwrap_or_default();
        let cluster = if app.spec.destination.server.is_empty() {
            app.spec.destination.name.clone()
        } else {
            app.spec.destination.server.clone()
        };
        table.row(vec![
            app.metadata.name.clone().unwrap_or_default(),
            cluster,
            app.spec.destination.namespace.clone(),
            app.spec.project.clone(),
            format!("{:?}", status.sync.status),
            format!("{:?}", status.health.status),
            policy_text(&app, false),
            source.repo_url.clone(),
            source.path.clone(),
            source.revision().to_string(),
            app.pause().map(|p| p.until.to_string()).unwrap_or_default(),
        ]);
    }
    table.print();
    Ok(0)
}

fn print_summary(app: &Application) {
    let status = app.status.clone().unwrap_or_default();
    let source = app
        .sources()
        .first()
        .map(|s| (*s).clone())
        .unwrap_or_default();
    println!(
        "Name:               {}/{}",
        app.metadata.namespace.clone().unwrap_or_default(),
        app.metadata.name.clone().unwrap_or_default()
    );
    println!("Project:            {}", app.spec.project);
    println!(
        "Server:             {}",
        if app.spec.destination.server.is_empty() {
            &app.spec.destination.name
        } else {
            &app.spec.destination.server
        }
    );
    println!("Namespace:          {}", app.spec.destination.namespace);
    println!("Repo:               {}", source.repo_url);
    println!("Target:             {}", source.revision());
    println!("Path:               {}", source.path);
    println!("Sync Policy:        {}", policy_text(app, true));
    let revision = if status.sync.revision.is_empty() {
        String::new()
    } else {
        format!(" to {}", status.sync.revision)
    };
    println!("Sync Status:        {:?}{revision}", status.sync.status);
    let message = if status.health.message.is_empty() {
        String::new()
    } else {
        format!(" ({})", status.health.message)
    };
    println!("Health Status:      {:?}{message}", status.health.status);
    if let Some(op) = &status.operation_state {
        println!();
        println!("Operation:          Sync");
        println!("Phase:              {:?}", op.phase);
        println!("Start:              {}", op.started_at);
        println!(
            "Finished:           {}",
            op.finished_at.clone().unwrap_or_default()
        );
        println!("Message:            {}", op.message);
    }
    if !status.conditions.is_empty() {
        println!();
        let mut table = Table::new(&["CONDITION", "MESSAGE"]);
        for c in &status.conditions {
            table.row(vec![c.kind.clone(), c.message.clone()]);
        }
        table.print();
    }
}

async fn get(apps: &Apps, name: &str) -> anyhow::Result<i32> {
    let app = apps.get(name).await?;
    print_summary(&app);
    println!("Sync Windows:       {}", apps.windows_summary(&app).await?);
    let status = app.status.clone().unwrap_or_default();
    println!();
    let mut table = Table::new(&[
        "GROUP",
        "KIND",
        "NAMESPACE",
        "NAME",
        "STATUS",
        "HEALTH",
        "HOOK",
        "MESSAGE",
    ]);
    let results = status
        .operation_state
        .as_ref()
        .and_then(|o| o.sync_result.as_ref())
        .map(|r| r.resources.clone())
        .unwrap_or_default();
    for r in &status.resources {
        let message = results
            .iter()
            .find(|x| {
                x.kind == r.kind
                    && x.name == r.name
                    && x.namespace == r.namespace
                    && x.group == r.group
                    && x.hook_type.is_empty()
            })
            .map(|x| x.message.clone())
            .unwrap_or_default();
        let sync = r.status.map(|s| format!("{s:?}")).unwrap_or_default();
        let sync = if r.requires_pruning {
            format!("{sync} (requires pruning)")
        } else {
            sync
        };
        table.row(vec![
            r.group.clone(),
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
            sync,
            r.health
                .as_ref()
                .map(|h| format!("{:?}", h.status))
                .unwrap_or_default(),
            String::new(),
            message,
        ]);
    }
    for x in results.iter().filter(|x| !x.hook_type.is_empty()) {
        table.row(vec![
            x.group.clone(),
            x.kind.clone(),
            x.namespace.clone(),
            x.name.clone(),
            x.hook_phase.clone(),
            String::new(),
            x.hook_type.clone(),
            x.message.clone(),
        ]);
    }
    table.print();
    Ok(0)
}

async fn diff(
    apps: &Apps,
    name: &str,
    cache_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<i32> {
    let (client, namespace) = match apps {
        Apps::Core {
            client, namespace, ..
        } => (client, namespace),
        Apps::Server(server) => return server_diff(server, name).await,
    };
    let app = apps.get(name).await?;
    let settings = tiphys_controller::Settings {
        namespace: namespace.clone(),
        cache_dir: crate::render::cache_dir(cache_dir),
        ..Default::default()
    };
    let controller = tiphys_controller::Controller::start(client.clone(), settings)
        .await
        .context("reading the control namespace")?;
    let desired = tiphys_controller::compare_app(&controller, &app)
        .await
        .map_err(|p| anyhow::anyhow!("{}: {}", p.kind, p.message))?;
    let mut differs = false;
    for item in &desired.compared.items {
        if item.hook || item.status == SyncStatusCode::Synced || item.ignore_extraneous {
            continue;
        }
        differs = true;
        println!(
            "===== {}/{} {}/{} ======",
            item.key.group, item.key.kind, item.key.namespace, item.key.name
        );
        if item.requires_pruning {
            let live = item
                .live
                .as_deref()
                .map(tiphys_diff::normalize)
                .unwrap_or_default();
            print!(
                "{}",
                tiphys_diff::unified(&tiphys_diff::to_yaml(&live), "", "live", "desired")
            );
        } else {
            print!("{}", item.diff);
        }
    }
    Ok(i32::from(differs))
}

/// What `dir` renders to with `app`'s source settings (Kustomize, Helm values, directory
/// options), as JSON texts for the sync request's `manifests`.
async fn render_local(
    app: Application,
    dir: std::path::PathBuf,
    root: Option<std::path::PathBuf>,
) -> anyhow::Result<Vec<String>> {
    let sources: Vec<_> = app.sources().into_iter().cloned().collect();
    let [source] = sources.as_slice() else {
        bail!("--local works with an application of one source");
    };
    let mut source = source.clone();
    let dir = dir
        .canonicalize()
        .with_context(|| format!("--local {}", dir.display()))?;
    let root = match root {
        Some(r) => r
            .canonicalize()
            .with_context(|| format!("--local-repo-root {}", r.display()))?,
        None => dir.clone(),
    };
    let relative = dir.strip_prefix(&root).with_context(|| {
        format!(
            "--local {} is not inside --local-repo-root {}",
            dir.display(),
            root.display()
        )
    })?;
    source.path = match relative.to_string_lossy().as_ref() {
        "" => ".".to_string(),
        path => path.to_string(),
    };
    let name = app.metadata.name.clone().unwrap_or_default();
    let namespace = app.spec.destination.namespace.clone();
    tokio::task::spawn_blocking(move || {
        let cache = tiphys_source::GitCache::new(crate::render::cache_dir(None));
        let rendered = tiphys_controller::manifests::render_tree(
            &root,
            &source,
            &name,
            &namespace,
            &cache,
            &Vec::new(),
            &Default::default(),
            &Default::default(),
        )
        .with_context(|| format!("rendering {}", dir.display()))?;
        tiphys_render::check_objects(&rendered.manifests)?;
        Ok(rendered
            .manifests
            .iter()
            .map(|m| m.object.to_string())
            .collect())
    })
    .await?
}

/// `app diff` through the API server: its managed resources with their normalised live and
/// predicted states (the controller's comparison, made by the server), one diff per resource
/// that differs.
async fn server_diff(server: &crate::remote::ApiClient, name: &str) -> anyhow::Result<i32> {
    let path = format!(
        "/api/v1/applications/{}/managed-resources",
        crate::remote::client::segment(name)
    );
    let answer: serde_json::Value = server.get(&path, &[]).await?;
    let state = |item: &serde_json::Value, field: &str| -> serde_json::Value {
        item[field]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let mut differs = false;
    for item in answer["items"].as_array().into_iter().flatten() {
        if item["hook"] == true {
            continue;
        }
        let live = state(item, "normalizedLiveState");
        let predicted = state(item, "predictedLiveState");
        let extraneous_ignored = predicted.is_null()
            && state(item, "liveState")
                .pointer("/metadata/annotations/argocd.argoproj.io~1compare-options")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|o| o.contains("IgnoreExtraneous"));
        if live == predicted || extraneous_ignored {
            continue;
        }
        differs = true;
        let field = |f: &str| item[f].as_str().unwrap_or_default();
        println!(
            "===== {}/{} {}/{} ======",
            field("group"),
            field("kind"),
            field("namespace"),
            field("name")
        );
        print!(
            "{}",
            tiphys_diff::unified(
                &tiphys_diff::to_yaml(&live),
                &tiphys_diff::to_yaml(&predicted),
                "live",
                "desired"
            )
        );
    }
    Ok(i32::from(differs))
}

/// Watch one Application until `done` holds; None on timeout (0 waits forever).
async fn wait(
    apps: &Apps,
    name: &str,
    timeout: u64,
    done: impl Fn(&Application) -> bool,
) -> anyhow::Result<Option<Application>> {
    let deadline =
        (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(timeout));
    let Some(stream) = backend::before(deadline, apps.watch(name)).await else {
        return Ok(None);
    };
    let mut stream = stream?;
    loop {
        match backend::before(deadline, stream.next()).await {
            None => return Ok(None),
            Some(Some(Ok(Some(app)))) if done(&app) => return Ok(Some(app)),
            Some(Some(Ok(Some(_)))) => {}
            Some(Some(Ok(None))) => bail!("application {name} not found"),
            Some(Some(Err(e))) => return Err(e.context(format!("watching application {name}"))),
            Some(None) => bail!("watch on application {name} ended"),
        }
    }
}

/// Follow the operation `written` carries to its end with a progress line, then show the app.
async fn follow(
    apps: &Apps,
    name: &str,
    written: &Application,
    timeout: u64,
) -> anyhow::Result<i32> {
    let requested = written
        .operation
        .as_ref()
        .map(|op| op.sync.clone())
        .with_context(|| format!("{name}: the operation was not recorded"))?;
    let progress = indicatif::ProgressBar::new_spinner();
    progress.enable_steady_tick(Duration::from_millis(120));
    let finished = wait(apps, name, timeout, |app| {
        let state = app.status.as_ref().and_then(|s| s.operation_state.as_ref());
        if let Some(state) = state {
            progress.set_message(format!("{:?}: {}", state.phase, state.message));
        }
        app.operation.is_none()
            && state.is_some_and(|s| {
                s.operation.sync == requested && s.phase != OperationPhase::Running
            })
    })
    .await?;
    progress.finish_and_clear();
    let Some(app) = finished else {
        eprintln!("timed out waiting for the operation on {name}");
        return Ok(1);
    };
    get(apps, name).await?;
    let phase = app.status.and_then(|s| s.operation_state).map(|s| s.phase);
    Ok(if phase == Some(OperationPhase::Succeeded) {
        0
    } else {
        1
    })
}
