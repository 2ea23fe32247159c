//! A repository laid out like Argo CD's example apps (`argoproj/argocd-example-apps`): the
//! same shapes — plain manifests, a Kustomize overlay with a name prefix, a Helm chart, hooks
//! by name and by `generateName`, Argo and Helm hook annotations, sync waves, an app of apps —
//! written for these tests.

use std::path::{Path, PathBuf};

use super::cluster::new_repo;

fn guestbook(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  revisionHistoryLimit: 3\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: web\n        image: gcr.io/heptio-images/ks-guestbook-demo:0.2\n        ports:\n        - containerPort: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n    targetPort: 80\n  selector:\n    app: {name}\n"
    )
}

/// A Job hook (`annotations` are extra lines under `metadata.annotations`); `identity` is
/// `name: x` or `generateName: x-`.
fn job(identity: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  {identity}\n  annotations:\n{annotations}spec:\n  backoffLimit: 0\n  template:\n    spec:\n      containers:\n      - name: main\n        image: alpine:3.20\n        command: [sleep, '1']\n      restartPolicy: Never\n"
    )
}

fn replica_set(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{tier: {name}}}\n  template:\n    metadata:\n      labels: {{tier: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
    )
}

fn service(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  selector: {{tier: {name}}}\n  ports:\n  - port: 80\n"
    )
}

/// The example paths whose syncs run hooks.
pub const HOOK_EXAMPLES: [&str; 4] = [
    "pre-post-sync",
    "sync-waves",
    "helm-hooks",
    "configmap-hooks",
];

/// Create the repository under `root` and return its path.
pub fn example_repo(root: &Path) -> PathBuf {
    let files: Vec<(String, String)> = vec![
        ("guestbook/guestbook-ui.yaml".into(), guestbook("guestbook-ui")),
        (
            "kustomize-guestbook/guestbook-ui.yaml".into(),
            guestbook("guestbook-ui"),
        ),
        (
            "kustomize-guestbook/kustomization.yaml".into(),
            "namePrefix: kustomize-\ncommonLabels:\n  example: kustomize-guestbook\nresources:\n- guestbook-ui.yaml\n".into(),
        ),
        (
            "helm-guestbook/Chart.yaml".into(),
            "apiVersion: v2\nname: helm-guestbook\nversion: 0.1.0\n".into(),
        ),
        (
            "helm-guestbook/values.yaml".into(),
            "replicaCount: 1\nimage: gcr.io/heptio-images/ks-guestbook-demo:0.1\n".into(),
        ),
        (
            "helm-guestbook/templates/deployment.yaml".into(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-helm-guestbook\n  labels:\n    app.kubernetes.io/managed-by: {{ .Release.Service }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n    metadata:\n      labels: {app: {{ .Release.Name }}}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n".into(),
        ),
        (
            "helm-guestbook/templates/service.yaml".into(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-helm-guestbook\nspec:\n  selector: {app: {{ .Release.Name }}}\n  ports:\n  - port: 80\n".into(),
        ),
        (
            // Rendered only where the destination serves Argo CD's API, as charts guard
            // optional kinds.
            "helm-guestbook/templates/capabilities.yaml".into(),
            "{{- if .Capabilities.APIVersions.Has \"argoproj.io/v1alpha1\" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-argo-aware\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n{{- end }}\n".into(),
        ),
        (
            "pre-post-sync/kustomization.yaml".into(),
            "namePrefix: pre-post-sync-\nresources:\n- guestbook-ui.yaml\n- pre-sync-job.yaml\n- post-sync-job.yaml\n".into(),
        ),
        ("pre-post-sync/guestbook-ui.yaml".into(), guestbook("guestbook-ui")),
        (
            "pre-post-sync/pre-sync-job.yaml".into(),
            job(
                "name: before",
                "    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n",
            ),
        ),
        (
            "pre-post-sync/post-sync-job.yaml".into(),
            job(
                "name: after",
                "    argocd.argoproj.io/hook: PostSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\n",
            ),
        ),
        (
            "sync-waves/manifests.yaml".into(),
            [
                job(
                    "generateName: upgrade-sql-schema-",
                    "    argocd.argoproj.io/hook: PreSync\n",
                ),
                replica_set("backend", ""),
                service("backend-svc", ""),
                job(
                    "generateName: maintenance-page-up-",
                    "    argocd.argoproj.io/hook: Sync\n    argocd.argoproj.io/sync-wave: '1'\n",
                ),
                replica_set("frontend", "argocd.argoproj.io/sync-wave: '2'"),
                service("frontend", "argocd.argoproj.io/sync-wave: '2'"),
                job(
                    "generateName: maintenance-page-down-",
                    "    argocd.argoproj.io/hook: PostSync\n",
                ),
            ]
            .join("---\n"),
        ),
        (
            "helm-hooks/manifests.yaml".into(),
            [
                // generateName without a trailing dash, and Helm's delete policy.
                job(
                    "generateName: upgrade-sql-schema",
                    "    helm.sh/hook: pre-install\n    helm.sh/hook-delete-policy: hook-succeeded\n",
                ),
                replica_set("backend", ""),
                service("backend", ""),
                replica_set("frontend", "helm.sh/hook-weight: '2'"),
                service("frontend", "helm.sh/hook-weight: '2'"),
                job(
                    "name: maint-page-down",
                    "    helm.sh/hook: post-install\n    helm.sh/hook-delete-policy: before-hook-creation\n    helm.sh/hook-weight: '3'\n",
                ),
            ]
            .join("---\n"),
        ),
        (
            "configmap-hooks/hooks.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pre\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\ndata: {phase: pre}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: post\n  annotations:\n    argocd.argoproj.io/hook: PostSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\ndata: {phase: post}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {color: blue}\n".into(),
        ),
    ];
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    new_repo(root, &refs)
}

/// An automated Application for `path` of `repo`, in its own namespace.
pub fn app(name: &str, repo: &Path, path: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n  finalizers: [resources-finalizer.argocd.argoproj.io]\nspec:\n  project: default\n  source:\n    repoURL: file://{}\n    targetRevision: HEAD\n    path: {path}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n    syncOptions:\n    - CreateNamespace=true\n",
        repo.display()
    )
}

/// The app of apps: Applications for the plain, Kustomize and Helm guestbooks, added to the
/// repository under `apps/`.
pub fn add_app_of_apps(repo: &Path) {
    let children: String = [
        ("guestbook", "guestbook"),
        ("kustomize-guestbook", "kustomize-guestbook"),
        ("helm-guestbook", "helm-guestbook"),
    ]
    .iter()
    .map(|(name, path)| app(name, repo, path))
    .collect::<Vec<_>>()
    .join("---\n");
    super::write(repo, "apps/applications.yaml", &children);
    super::cluster::commit(repo, "app of apps");
}
