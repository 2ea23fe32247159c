//! The two ways `tiphys app` reaches Applications: the Kubernetes API (core mode, the caller's
//! kubeconfig rights) or the API server (the logged-in user's RBAC, recorded as the initiator).
//! Every command is written once against [`Apps`].

use std::time::Duration;

use anyhow::{Context, bail};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use reqwest::Method;
use serde_json::{Value, json};
use tiphys_model::Application;
use tiphys_model::application::RevisionHistory;

use crate::remote::{ApiClient, ServerError};

// One per command run: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Apps {
    Core {
        api: Api<Application>,
        client: kube::Client,
        namespace: String,
    },
    Server(ApiClient),
}

/// What `tiphys app sync` asks for.
pub struct SyncRequest {
    pub prune: bool,
    pub dry_run: bool,
    /// `{group, kind, namespace, name}` each.
    pub resources: Vec<Value>,
    pub revision: String,
    pub sync_options: Vec<String>,
    /// Objects to sync instead of Git's (`--local`), as JSON texts.
    pub manifests: Vec<String>,
}

fn path(name: &str, rest: &str) -> String {
    let name = crate::remote::client::segment(name);
    format!("/api/v1/applications/{name}{rest}")
}

/// Whether `e` says the Application is not there (or not there for this caller).
pub fn is_absent(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ServerError>()
        .is_some_and(|s| s.is_absent())
        || e.downcast_ref::<kube::Error>()
            .is_some_and(|k| matches!(k, kube::Error::Api(s) if s.code == 404))
}

impl Apps {
    pub async fn list(&self) -> anyhow::Result<Vec<Application>> {
        match self {
            Apps::Core { api, .. } => Ok(api
                .list(&Default::default())
                .await
                .context("listing applications")?
                .items),
            Apps::Server(server) => {
                let answer: Value = server.get("/api/v1/applications", &[]).await?;
                let items = answer.get("items").cloned().unwrap_or(Value::Null);
                if items.is_null() {
                    return Ok(Vec::new());
                }
                serde_json::from_value(items).context("GET /api/v1/applications: unexpected answer")
            }
        }
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<Application> {
        match self {
            Apps::Core { api, .. } => api
                .get(name)
                .await
                .with_context(|| format!("application {name}")),
            Apps::Server(server) => server.get(&path(name, ""), &[]).await,
        }
    }

    /// Every version of `name` from now on; `None` once it is gone. Interruptions are resumed
    /// inside; an error ends the watch.
    pub async fn watch(
        &self,
        name: &str,
    ) -> anyhow::Result<BoxStream<'static, anyhow::Result<Option<Application>>>> {
        match self {
            Apps::Core { api, .. } => Ok(watcher::watch_object(api.clone(), name)
                .filter_map(|event| async move {
                    match event {
                        Ok(app) => Some(Ok(app)),
                        Err(e) => {
                            tracing::debug!(error = %e, "watch interrupted; resuming");
                            None
                        }
                    }
                })
                .boxed()),
            Apps::Server(server) => {
                // The stream says nothing about an app that does not exist: ask first.
                self.get(name).await?;
                let events = server.events("/api/v1/stream/applications", &[("name", name)])?;
                Ok(events
                    .and_then(|event| async move {
                        if event["type"] == "DELETED" {
                            return Ok(None);
                        }
                        let app = serde_json::from_value(event["application"].clone())
                            .context("application stream: unexpected event")?;
                        Ok(Some(app))
                    })
                    .boxed())
            }
        }
    }

    /// Create `app`; an existing one with the same spec is left alone, one with another spec
    /// is refused unless `upsert` (Argo CD's create).
    pub async fn create(&self, app: &Application, upsert: bool) -> anyhow::Result<()> {
        let api = match self {
            Apps::Core { api, .. } => api,
            Apps::Server(server) => {
                let upsert = upsert.to_string();
                server
                    .call(
                        Method::POST,
                        "/api/v1/applications",
                        &[("upsert", upsert.as_str())],
                        Some(&serde_json::to_value(app)?),
                    )
                    .await?;
                return Ok(());
            }
        };
        crate::upsert::create_or_upsert(api, app, upsert, |existing| existing.upserted(app)).await
    }

    /// Ask for a sync; the Application as written, its `.operation` set.
    pub async fn sync(
        &self,
        name: &str,
        request: &SyncRequest,
        user: &str,
    ) -> anyhow::Result<Application> {
        match self {
            Apps::Core { .. } => {
                if !request.manifests.is_empty() && !request.dry_run {
                    let app = self.get(name).await?;
                    if app.auto_sync_enabled() {
                        bail!(
                            "cannot use local sync when automated sync is enabled except with --dry-run"
                        );
                    }
                }
                let op = json!({
                    "sync": {"prune": request.prune, "dryRun": request.dry_run,
                             "resources": request.resources, "revision": request.revision,
                             "syncOptions": request.sync_options, "manifests": request.manifests},
                    "initiatedBy": {"username": user},
                });
                self.start_operation(name, op).await
            }
            Apps::Server(server) => {
                let body = json!({
                    "name": name, "prune": request.prune, "dryRun": request.dry_run,
                    "resources": request.resources, "revision": request.revision,
                    "syncOptions": {"items": request.sync_options},
                    "manifests": request.manifests,
                });
                let app = server
                    .call(Method::POST, &path(name, "/sync"), &[], Some(&body))
                    .await?;
                serde_json::from_value(app).context("sync: unexpected answer")
            }
        }
    }

    /// Sync back to a history entry.
    pub async fn rollback(
        &self,
        name: &str,
        entry: &RevisionHistory,
        prune: bool,
        user: &str,
    ) -> anyhow::Result<Application> {
        match self {
            Apps::Core { .. } => {
                let op = json!({
                    "sync": {"revision": entry.revision, "source": entry.source, "prune": prune},
                    "initiatedBy": {"username": user},
                });
                self.start_operation(name, op).await
            }
            Apps::Server(server) => {
                let body = json!({"name": name, "id": entry.id, "prune": prune});
                let app = server
                    .call(Method::POST, &path(name, "/rollback"), &[], Some(&body))
                    .await?;
                serde_json::from_value(app).context("rollback: unexpected answer")
            }
        }
    }

    /// Core mode: write `.operation` unless one is under way (guarded by resourceVersion).
    async fn start_operation(&self, name: &str, op: Value) -> anyhow::Result<Application> {
        let Apps::Core { api, client, .. } = self else {
            unreachable!("only core mode writes operations itself");
        };
        let app = self.get(name).await?;
        if app.operation.is_some() {
            bail!("another operation is already in progress on {name}");
        }
        // What the API server refuses, refused here too (a dry run changes nothing).
        if op["sync"]["dryRun"] != json!(true)
            && let Some(why) = tiphys_controller::windows::manual_sync_blocked(client, &app).await?
        {
            bail!("cannot sync {name}: {why}");
        }
        let patch = json!({"metadata": {"resourceVersion": app.metadata.resource_version}, "operation": op});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("requesting an operation on {name}"))
    }

    /// Stop the operation in progress. Core mode does what the API server does: the recorded
    /// operation state's phase becomes Terminating (an optimistic write, retried on conflict).
    pub async fn terminate(&self, name: &str) -> anyhow::Result<()> {
        let api = match self {
            Apps::Core { api, .. } => api,
            Apps::Server(server) => {
                server
                    .call(Method::DELETE, &path(name, "/operation"), &[], None)
                    .await?;
                return Ok(());
            }
        };
        for _ in 0..10 {
            let app = self.get(name).await?;
            if !app.operation_running() {
                bail!("unable to terminate operation: no operation is in progress on {name}");
            }
            let patch: json_patch::Patch = serde_json::from_value(app.terminate_patch())?;
            match api
                .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(e).with_context(|| format!("terminating {name}'s operation")),
            }
        }
        bail!("{name} kept changing; try again")
    }

    /// What the sync windows of `app`'s project say about it now.
    pub async fn windows_summary(&self, app: &Application) -> anyhow::Result<String> {
        match self {
            Apps::Core { client, .. } => {
                let namespace = app.metadata.namespace.clone().unwrap_or_default();
                let project = if app.spec.project.is_empty() {
                    "default"
                } else {
                    app.spec.project.as_str()
                };
                let projects: Api<tiphys_model::AppProject> =
                    Api::namespaced(client.clone(), &namespace);
                let project = projects.get_opt(project).await?;
                let now = k8s_openapi::jiff::Timestamp::now();
                Ok(tiphys_controller::windows::evaluate(project.as_ref(), app, now).summary())
            }
            Apps::Server(server) => {
                let name = app.metadata.name.clone().unwrap_or_default();
                let answer = server
                    .call(Method::GET, &path(&name, "/syncwindows"), &[], None)
                    .await?;
                Ok(answer["summary"].as_str().unwrap_or("unknown").to_string())
            }
        }
    }

    /// Pause `name`'s auto-sync until `until` (see `tiphys_controller::pause`).
    pub async fn pause(
        &self,
        name: &str,
        until: k8s_openapi::jiff::Timestamp,
        reason: &str,
        by: &str,
    ) -> anyhow::Result<Application> {
        match self {
            Apps::Core {
                client, namespace, ..
            } => Ok(
                tiphys_controller::pause::pause(client, namespace, name, until, reason, by).await?,
            ),
            Apps::Server(server) => {
                let body = json!({"until": until.to_string(), "reason": reason});
                let answer = server
                    .call(Method::POST, &path(name, "/pause"), &[], Some(&body))
                    .await?;
                Ok(serde_json::from_value(answer)?)
            }
        }
    }

    /// End `name`'s pause now.
    pub async fn resume(&self, name: &str, by: &str) -> anyhow::Result<Application> {
        match self {
            Apps::Core {
                client, namespace, ..
            } => Ok(tiphys_controller::pause::resume(client, namespace, name, by).await?),
            Apps::Server(server) => {
                let answer = server
                    .call(Method::DELETE, &path(name, "/pause"), &[], None)
                    .await?;
                Ok(serde_json::from_value(answer)?)
            }
        }
    }

    /// Delete `name`; with `cascade` its resources go too (`foreground` or `background`).
    pub async fn delete(&self, name: &str, cascade: bool, policy: &str) -> anyhow::Result<()> {
        let api = match self {
            Apps::Core { api, .. } => api,
            Apps::Server(server) => {
                let cascade = cascade.to_string();
                server
                    .call(
                        Method::DELETE,
                        &path(name, ""),
                        &[("cascade", &cascade), ("propagationPolicy", policy)],
                        None,
                    )
                    .await?;
                return Ok(());
            }
        };
        let app = self.get(name).await?;
        let finalizer = match policy {
            "background" => "resources-finalizer.argocd.argoproj.io/background",
            _ => "resources-finalizer.argocd.argoproj.io",
        };
        let mut finalizers: Vec<String> = app
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !f.starts_with("resources-finalizer.argocd.argoproj.io"))
            .collect();
        if cascade {
            finalizers.push(finalizer.to_string());
        }
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
        )
        .await
        .with_context(|| format!("setting finalizers on {name}"))?;
        api.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {name}"))?;
        Ok(())
    }

    /// Wait until `name` no longer exists; false on timeout (0 waits forever).
    pub async fn wait_deleted(&self, name: &str, timeout: u64) -> anyhow::Result<bool> {
        let deadline =
            (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(timeout));
        match self {
            Apps::Core { api, .. } => {
                let mut stream = watcher::watch_object(api.clone(), name).boxed();
                loop {
                    match before(deadline, stream.next()).await {
                        None => return Ok(false),
                        Some(Some(Ok(None))) => return Ok(true),
                        Some(Some(Ok(Some(_)))) => {}
                        Some(Some(Err(e))) => {
                            tracing::debug!(error = %e, "watch interrupted; resuming")
                        }
                        Some(None) => bail!("watch on application {name} ended"),
                    }
                }
            }
            Apps::Server(_) => {
                // The stream cannot say "not there" about an app it never sent, so this asks.
                loop {
                    match self.get(name).await {
                        Err(e) if is_absent(&e) => return Ok(true),
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                    if before(deadline, tokio::time::sleep(Duration::from_secs(1)))
                        .await
                        .is_none()
                    {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// `future`'s output, or None when `deadline` passes first (no deadline: wait forever).
pub async fn before<F: std::future::Future>(
    deadline: Option<tokio::time::Instant>,
    future: F,
) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, future).await.ok(),
        None => Some(future.await),
    }
}
