use std::path::{Path, PathBuf};

use tiphys_model::ApplicationSet;

use super::*;

struct Dir(PathBuf);

impl Repos for Dir {
    fn tree(&self, _repo_url: &str, _revision: &str) -> Result<PathBuf, String> {
        Ok(self.0.clone())
    }
}

fn appset(yaml: &str) -> ApplicationSet {
    ApplicationSet::from_yaml(yaml, "test").unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn names(apps: &[Application]) -> Vec<String> {
    apps.iter()
        .map(|a| a.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn the_seed_matrix_makes_six_applications() {
    let set = appset(include_str!(
        "../../model/tests/fixtures/seed-applicationset.yaml"
    ));
    let none = Dir(PathBuf::new());
    let apps = applications(
        &set,
        &Inputs {
            repos: &none,
            clusters: &[],
        },
    )
    .unwrap();
    assert_eq!(
        names(&apps),
        vec![
            "order-service-staging",
            "order-service-production",
            "inventory-service-staging",
            "inventory-service-production",
            "payment-service-staging",
            "payment-service-production",
        ]
    );
    let payment = &apps[5];
    assert_eq!(
        payment.spec.source.as_ref().unwrap().path,
        "apps/payment-service/overlays/production"
    );
    assert_eq!(payment.spec.destination.namespace, "production");
    assert_eq!(payment.metadata.namespace.as_deref(), Some("argocd"));
    assert_eq!(
        payment.metadata.finalizers.as_deref(),
        Some(&[RESOURCES_FINALIZER.to_string()][..])
    );
}

#[test]
fn git_directories_and_files_with_clusters_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "apps/web/kustomization.yaml", "resources: []\n");
    write(root, "apps/api/kustomization.yaml", "resources: []\n");
    write(root, "apps/legacy/kustomization.yaml", "resources: []\n");
    write(
        root,
        "config/eu/config.json",
        r#"{"cluster": {"name": "eu", "address": "https://eu"}, "replicas": 2}"#,
    );
    write(
        root,
        "config/us/config.yaml",
        "cluster:\n  name: us\n  address: https://us\nreplicas: 3\n",
    );
    let repos = Dir(root.to_path_buf());
    let clusters = vec![
        ClusterInfo {
            name: "in-cluster".into(),
            server: "https://kubernetes.default.svc".into(),
            ..Default::default()
        },
        ClusterInfo {
            name: "prod-eu".into(),
            server: "https://eu".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            ..Default::default()
        },
    ];
    let inputs = Inputs {
        repos: &repos,
        clusters: &clusters,
    };

    let dirs = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: dirs, namespace: argocd}\nspec:\n  generators:\n  - matrix:\n      generators:\n      - git:\n          repoURL: https://example.com/repo\n          revision: HEAD\n          directories:\n          - path: apps/*\n          - path: apps/legacy\n            exclude: true\n      - clusters:\n          selector:\n            matchLabels: {env: prod}\n  template:\n    metadata: {name: '{{path.basename}}-{{name}}'}\n    spec:\n      project: default\n      source: {repoURL: https://example.com/repo, targetRevision: HEAD, path: '{{path}}'}\n      destination: {server: '{{server}}', namespace: '{{path[1]}}'}\n",
    );
    let apps = applications(&dirs, &inputs).unwrap();
    assert_eq!(names(&apps), vec!["api-prod-eu", "web-prod-eu"]);
    assert_eq!(apps[0].spec.destination.server, "https://eu");
    assert_eq!(apps[0].spec.destination.namespace, "api");

    let files = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: files, namespace: argocd}\nspec:\n  generators:\n  - merge:\n      mergeKeys: [cluster.name]\n      generators:\n      - git:\n          repoURL: https://example.com/repo\n          files:\n          - path: 'config/**/config.*'\n      - list:\n          elements:\n          - cluster.name: us\n            replicas: '5'\n  template:\n    metadata: {name: 'app-{{cluster.name}}'}\n    spec:\n      project: default\n      source: {repoURL: https://example.com/repo, targetRevision: HEAD, path: '{{path}}', helm: {parameters: [{name: replicas, value: '{{replicas}}'}]}}\n      destination: {server: '{{cluster.address}}', namespace: default}\n",
    );
    let apps = applications(&files, &inputs).unwrap();
    assert_eq!(names(&apps), vec!["app-eu", "app-us"]);
    let replicas = |a: &Application| {
        a.spec
            .source
            .as_ref()
            .unwrap()
            .helm
            .as_ref()
            .unwrap()
            .parameters[0]
            .value
            .clone()
    };
    assert_eq!(replicas(&apps[0]), "2");
    assert_eq!(
        replicas(&apps[1]),
        "5",
        "merge overrides the git file's value"
    );
    assert_eq!(apps[1].spec.source.as_ref().unwrap().path, "config/us");
}

#[test]
fn go_templates_post_selectors_and_errors() {
    let none = Dir(PathBuf::new());
    let inputs = Inputs {
        repos: &none,
        clusters: &[],
    };
    let go = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: go, namespace: argocd}\nspec:\n  goTemplate: true\n  goTemplateOptions: ['missingkey=error']\n  generators:\n  - list:\n      elements:\n      - {team: Payments Team, tier: critical}\n      - {team: Web, tier: best-effort}\n    selector:\n      matchExpressions:\n      - {key: tier, operator: In, values: [critical]}\n  template:\n    metadata: {name: '{{ .team | normalize }}'}\n    spec:\n      project: default\n      source: {repoURL: https://example.com/repo, targetRevision: HEAD, path: 'teams/{{ .team | slugify }}'}\n      destination: {server: https://kubernetes.default.svc, namespace: '{{ .tier }}'}\n  templatePatch: |\n    spec:\n      syncPolicy:\n        automated: {prune: true}\n",
    );
    let apps = applications(&go, &inputs).unwrap();
    assert_eq!(names(&apps), vec!["payments-team"]);
    assert_eq!(
        apps[0].spec.source.as_ref().unwrap().path,
        "teams/payments-team"
    );
    assert!(
        apps[0]
            .spec
            .sync_policy
            .as_ref()
            .unwrap()
            .automated
            .as_ref()
            .unwrap()
            .prune
    );

    let missing = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: m, namespace: argocd}\nspec:\n  goTemplate: true\n  goTemplateOptions: ['missingkey=error']\n  generators:\n  - list: {elements: [{a: x}]}\n  template:\n    metadata: {name: '{{ .b }}'}\n    spec: {project: default, destination: {server: s, namespace: ns}}\n",
    );
    assert!(matches!(
        applications(&missing, &inputs),
        Err(AppSetError::Template { .. })
    ));

    let duplicate = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: d, namespace: argocd}\nspec:\n  generators:\n  - list: {elements: [{a: x}, {a: x}]}\n  template:\n    metadata: {name: 'app-{{a}}'}\n    spec: {project: default, destination: {server: s, namespace: ns}}\n",
    );
    assert_eq!(
        applications(&duplicate, &inputs).unwrap_err(),
        AppSetError::Duplicate {
            name: "app-x".into()
        }
    );

    let invalid = appset(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: i, namespace: argocd}\nspec:\n  generators:\n  - list: {elements: [{a: Not_Valid}]}\n  template:\n    metadata: {name: '{{a}}'}\n    spec: {project: default, destination: {server: s, namespace: ns}}\n",
    );
    assert!(matches!(
        applications(&invalid, &inputs),
        Err(AppSetError::Invalid { .. })
    ));
}

#[test]
fn globs_follow_path_match() {
    assert!(path_glob("apps/*", "apps/web"));
    assert!(!path_glob("apps/*", "apps/web/overlays"));
    assert!(path_glob("apps/**/config.json", "apps/a/b/config.json"));
    assert!(path_glob("apps/**/config.json", "apps/config.json"));
    assert!(path_glob("apps/?eb", "apps/web"));
}

#[test]
fn nested_matrix_parameters_merge_deeply() {
    // Shaped like Argo CD's nested matrix example: every list element carries a `values` map,
    // and the combinations must keep all of their keys.
    let text = |go: bool| {
        let (open, close) = if go { ("{{ .", " }}") } else { ("{{", "}}") };
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {{name: nested, namespace: argocd}}\nspec:\n  goTemplate: {go}\n  goTemplateOptions: ['missingkey=error']\n  generators:\n  - matrix:\n      generators:\n      - list:\n          elements:\n          - {{cluster: dev, values: {{project: default}}}}\n          - {{cluster: prod, values: {{project: default}}}}\n      - matrix:\n          generators:\n          - list:\n              elements:\n              - values: {{suffix: '1'}}\n              - values: {{suffix: '2'}}\n          - list:\n              elements:\n              - values: {{prefix: first}}\n  template:\n    metadata: {{name: '{open}values.prefix{close}-{open}cluster{close}-{open}values.suffix{close}'}}\n    spec:\n      project: '{open}values.project{close}'\n      destination: {{server: https://kubernetes.default.svc, namespace: ns}}\n"
        )
    };
    let none = Dir(PathBuf::new());
    let inputs = Inputs {
        repos: &none,
        clusters: &[],
    };
    for go in [true, false] {
        let apps = applications(&appset(&text(go)), &inputs).unwrap();
        assert_eq!(
            names(&apps),
            ["first-dev-1", "first-dev-2", "first-prod-1", "first-prod-2"],
            "goTemplate: {go}"
        );
        assert_eq!(apps[0].spec.project, "default");
    }
    // Flat parameters that disagree are refused, naming the key (as Argo CD does).
    let clash = text(false).replace("suffix: '1'", "project: other");
    let err = applications(&appset(&clash), &inputs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate key values.project"), "{err}");
}
