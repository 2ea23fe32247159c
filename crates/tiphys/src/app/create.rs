//! `tiphys app create`: an Application from a manifest (`-f`), from flags, or a manifest with
//! flags overriding it — `argocd app create`'s flags, for the fields people set by hand.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use tiphys_model::Application;

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The Application's name (default: the manifest's).
    name: Option<String>,
    /// A manifest of one Application.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Replace the spec of an existing Application that differs (else that is refused).
    #[arg(long)]
    upsert: bool,
    /// Repository URL (git, a Helm chart repository, or an OCI registry).
    #[arg(long)]
    repo: Option<String>,
    /// Path in the repository.
    #[arg(long)]
    path: Option<String>,
    /// Branch, tag, commit or chart version.
    #[arg(long)]
    revision: Option<String>,
    /// A chart of a Helm repository (instead of --path).
    #[arg(long)]
    helm_chart: Option<String>,
    /// Destination cluster by URL.
    #[arg(long)]
    dest_server: Option<String>,
    /// Destination cluster by name.
    #[arg(long, conflicts_with = "dest_server")]
    dest_name: Option<String>,
    /// Destination namespace.
    #[arg(long)]
    dest_namespace: Option<String>,
    /// The AppProject (default: default).
    #[arg(long)]
    project: Option<String>,
    /// `automated` (also `auto`, `automatic`), or `none` / `manual`.
    #[arg(long)]
    sync_policy: Option<String>,
    /// With automated sync: delete what Git no longer has.
    #[arg(long)]
    auto_prune: bool,
    /// With automated sync: revert changes made in the cluster.
    #[arg(long)]
    self_heal: bool,
    /// A sync option (CreateNamespace=true, ServerSideApply=true, ...); repeatable.
    #[arg(long = "sync-option")]
    sync_options: Vec<String>,
    /// A label of the Application, KEY=VALUE; repeatable.
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// A Helm values file in the source; repeatable.
    #[arg(long = "values")]
    values: Vec<String>,
    /// A Helm parameter, NAME=VALUE; repeatable.
    #[arg(long = "helm-set")]
    helm_set: Vec<String>,
    /// Helm release name.
    #[arg(long)]
    release_name: Option<String>,
    /// Kustomize image override (`nginx=nginx:1.27`); repeatable.
    #[arg(long = "kustomize-image")]
    kustomize_images: Vec<String>,
    /// Kustomize name prefix.
    #[arg(long)]
    nameprefix: Option<String>,
    /// Kustomize name suffix.
    #[arg(long)]
    namesuffix: Option<String>,
    /// Directory sources: read subdirectories too.
    #[arg(long)]
    directory_recurse: bool,
}

impl CreateArgs {
    pub fn upsert(&self) -> bool {
        self.upsert
    }

    /// The Application to create: the manifest (if any) with the flags applied.
    pub fn application(&self) -> anyhow::Result<Application> {
        let (mut app, origin) = match &self.file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let app = Application::from_yaml(&text, &file.display().to_string())?;
                let value = serde_json::to_value(app).context("encoding the manifest")?;
                (value, file.display().to_string())
            }
            None => (
                json!({"apiVersion": tiphys_model::API_VERSION, "kind": "Application",
                       "metadata": {}, "spec": {"destination": {}}}),
                "the flags".to_string(),
            ),
        };
        self.apply_flags(&mut app)?;
        let app: Application = serde_json::from_value(app)
            .with_context(|| format!("the Application from {origin}"))?;
        let name = app.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            bail!("the Application needs a name: give NAME or metadata.name in the manifest");
        }
        if app.sources().iter().all(|s| s.repo_url.is_empty()) {
            bail!("application {name}: a source repository is required (--repo)");
        }
        let dest = &app.spec.destination;
        if dest.server.is_empty() && dest.name.is_empty() {
            bail!("application {name}: a destination is required (--dest-server or --dest-name)");
        }
        Ok(app)
    }

    fn apply_flags(&self, app: &mut Value) -> anyhow::Result<()> {
        if let Some(name) = &self.name {
            set(app, &["metadata", "name"], json!(name));
        }
        for label in &self.labels {
            let (k, v) = key_value(label, "--label")?;
            set(app, &["metadata", "labels", k], json!(v));
        }
        let source_flags = self.repo.is_some()
            || self.path.is_some()
            || self.revision.is_some()
            || self.helm_chart.is_some()
            || !self.values.is_empty()
            || !self.helm_set.is_empty()
            || self.release_name.is_some()
            || !self.kustomize_images.is_empty()
            || self.nameprefix.is_some()
            || self.namesuffix.is_some()
            || self.directory_recurse;
        if source_flags && app.pointer("/spec/sources").is_some_and(|s| !s.is_null()) {
            bail!("source flags apply to spec.source; this Application has spec.sources");
        }
        let source = ["spec", "source"];
        let at = |field: &'static str| -> Vec<&'static str> { [&source[..], &[field]].concat() };
        for (flag, field) in [
            (&self.repo, "repoURL"),
            (&self.path, "path"),
            (&self.revision, "targetRevision"),
            (&self.helm_chart, "chart"),
        ] {
            if let Some(value) = flag {
                set(app, &at(field), json!(value));
            }
        }
        if !self.values.is_empty() {
            set(
                app,
                &["spec", "source", "helm", "valueFiles"],
                json!(self.values),
            );
        }
        if !self.helm_set.is_empty() {
            let parameters = self
                .helm_set
                .iter()
                .map(|p| key_value(p, "--helm-set").map(|(k, v)| json!({"name": k, "value": v})))
                .collect::<anyhow::Result<Vec<_>>>()?;
            set(
                app,
                &["spec", "source", "helm", "parameters"],
                json!(parameters),
            );
        }
        if let Some(release) = &self.release_name {
            set(
                app,
                &["spec", "source", "helm", "releaseName"],
                json!(release),
            );
        }
        if !self.kustomize_images.is_empty() {
            set(
                app,
                &["spec", "source", "kustomize", "images"],
                json!(self.kustomize_images),
            );
        }
        if let Some(prefix) = &self.nameprefix {
            set(
                app,
                &["spec", "source", "kustomize", "namePrefix"],
                json!(prefix),
            );
        }
        if let Some(suffix) = &self.namesuffix {
            set(
                app,
                &["spec", "source", "kustomize", "nameSuffix"],
                json!(suffix),
            );
        }
        if self.directory_recurse {
            set(
                app,
                &["spec", "source", "directory", "recurse"],
                json!(true),
            );
        }
        if let Some(server) = &self.dest_server {
            set(app, &["spec", "destination", "server"], json!(server));
        }
        if let Some(name) = &self.dest_name {
            set(app, &["spec", "destination", "name"], json!(name));
        }
        if let Some(namespace) = &self.dest_namespace {
            set(app, &["spec", "destination", "namespace"], json!(namespace));
        }
        if let Some(project) = &self.project {
            set(app, &["spec", "project"], json!(project));
        }
        if app
            .pointer("/spec/project")
            .is_none_or(|p| p.as_str() == Some(""))
        {
            set(app, &["spec", "project"], json!("default"));
        }
        match self.sync_policy.as_deref() {
            None => {}
            Some("automated" | "automatic" | "auto") => {
                set(app, &["spec", "syncPolicy", "automated"], json!({}));
            }
            Some("none" | "manual") => {
                if let Some(policy) = app
                    .pointer_mut("/spec/syncPolicy")
                    .and_then(Value::as_object_mut)
                {
                    policy.remove("automated");
                }
            }
            Some(other) => bail!("--sync-policy {other:?}: expected automated or none"),
        }
        if self.auto_prune || self.self_heal {
            if app.pointer("/spec/syncPolicy/automated").is_none() {
                bail!("--auto-prune and --self-heal need automated sync (--sync-policy automated)");
            }
            if self.auto_prune {
                set(
                    app,
                    &["spec", "syncPolicy", "automated", "prune"],
                    json!(true),
                );
            }
            if self.self_heal {
                set(
                    app,
                    &["spec", "syncPolicy", "automated", "selfHeal"],
                    json!(true),
                );
            }
        }
        if !self.sync_options.is_empty() {
            set(
                app,
                &["spec", "syncPolicy", "syncOptions"],
                json!(self.sync_options),
            );
        }
        Ok(())
    }
}

/// Set the field at `path`, making the objects on the way.
fn set(value: &mut Value, path: &[&str], new: Value) {
    let mut at = value;
    for key in path {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else {
            unreachable!("made an object above");
        };
        at = map.entry(key.to_string()).or_insert(Value::Null);
    }
    *at = new;
}

fn key_value<'a>(text: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .with_context(|| format!("{flag} {text:?}: expected NAME=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn create(args: &[&str]) -> anyhow::Result<Application> {
        let cli = Cli::try_parse_from(std::iter::once("create").chain(args.iter().copied()))?;
        cli.create.application()
    }

    #[test]
    fn flags_make_the_application_argocd_app_create_would() {
        let app = create(&[
            "guestbook",
            "--repo",
            "https://github.com/argoproj/argocd-example-apps.git",
            "--path",
            "guestbook",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            "default",
            "--sync-policy",
            "automated",
            "--self-heal",
            "--sync-option",
            "CreateNamespace=true",
            "--label",
            "team=web",
        ])
        .unwrap();
        let value = serde_json::to_value(&app).unwrap();
        assert_eq!(
            value["metadata"],
            json!({"name": "guestbook", "labels": {"team": "web"}})
        );
        assert_eq!(value["spec"]["project"], "default");
        assert_eq!(value["spec"]["source"]["path"], "guestbook");
        assert_eq!(value["spec"]["destination"]["namespace"], "default");
        assert_eq!(value["spec"]["syncPolicy"]["automated"]["selfHeal"], true);
        assert_eq!(
            value["spec"]["syncPolicy"]["syncOptions"],
            json!(["CreateNamespace=true"])
        );
    }

    #[test]
    fn flags_override_the_manifest_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.yaml");
        std::fs::write(
            &file,
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: from-file\nspec:\n  project: web\n  source:\n    repoURL: https://git.example/a.git\n    path: one\n    helm:\n      releaseName: r\n  destination:\n    server: https://kubernetes.default.svc\n  syncPolicy:\n    automated: {prune: true}\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let app = create(&[
            "-f",
            f,
            "--path",
            "two",
            "--helm-set",
            "a.b=1",
            "--sync-policy",
            "none",
        ])
        .unwrap();
        let value = serde_json::to_value(&app).unwrap();
        assert_eq!(value["metadata"]["name"], "from-file");
        assert_eq!(value["spec"]["project"], "web");
        assert_eq!(value["spec"]["source"]["path"], "two");
        assert_eq!(value["spec"]["source"]["helm"]["releaseName"], "r");
        assert_eq!(
            value["spec"]["source"]["helm"]["parameters"],
            json!([{"name": "a.b", "value": "1"}])
        );
        assert!(value["spec"]["syncPolicy"].get("automated").is_none());

        let refusal = |args: &[&str]| create(args).unwrap_err().to_string();
        assert!(refusal(&["--repo", "r", "--dest-server", "s"]).contains("needs a name"));
        assert!(refusal(&["x", "--dest-server", "s"]).contains("--repo"));
        assert!(refusal(&["x", "--repo", "r"]).contains("--dest-server"));
        assert!(
            refusal(&["x", "--repo", "r", "--dest-server", "s", "--self-heal"])
                .contains("--sync-policy automated")
        );
        assert!(
            refusal(&["x", "--repo", "r", "--dest-server", "s", "--helm-set", "a"])
                .contains("NAME=VALUE")
        );
        assert!(refusal(&["-f", "/nonexistent/app.yaml"]).contains("/nonexistent/app.yaml"));
    }
}
