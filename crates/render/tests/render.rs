//! Rendering real trees: directories, Kustomize (external for now) and Helm charts, and every
//! kind of bad input naming its file and line.

use std::path::Path;

use tiphys_model::application::{
    ApplicationSource, ApplicationSourceDirectory, ApplicationSourceHelm, ApplicationSourceJsonnet,
    HelmParameter, JsonnetVar,
};
use tiphys_render::{RenderError, Request, SourceType, render};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn source(path: &str) -> ApplicationSource {
    ApplicationSource {
        repo_url: "https://example.com/repo".into(),
        path: path.into(),
        ..Default::default()
    }
}

fn run(root: &Path, source: &ApplicationSource) -> Result<tiphys_render::Rendered, RenderError> {
    render(&Request {
        repo_root: root,
        value_refs: &Default::default(),
        source,
        app_name: "demo",
        namespace: "apps",
        remote: None,
        kustomize_options: Default::default(),
        capabilities: None,
    })
}

/// helm for the chart tests, installed from the registries when the machine lacks it.
fn with_helm() {
    tiphys_kustomize::helm::use_binary(tiphys_testkit::tool("helm"));
}

fn names(r: &tiphys_render::Rendered) -> Vec<String> {
    r.manifests
        .iter()
        .map(|m| {
            m.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

#[test]
fn directory_reads_yaml_json_lists_and_skips_other_files() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "app/a.yaml",
        &format!("{}---\n# only a comment\n---\n{}", cm("a1"), cm("a2")),
    );
    write(
        root,
        "app/b.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}"#,
    );
    write(
        root,
        "app/list.yml",
        &format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n",
            r#"{apiVersion: v1, kind: Secret, metadata: {name: in-list}}"#
        ),
    );
    write(root, "app/README.md", "not a manifest");
    write(root, "app/sub/deep.yaml", &cm("deep"));
    let r = run(root, &source("app")).unwrap();
    assert_eq!(r.source_type, SourceType::Directory);
    assert_eq!(names(&r), ["a1", "a2", "b", "in-list"]);
    assert_eq!(r.manifests[1].origin.file, "app/a.yaml");
    assert_eq!(
        (r.manifests[1].origin.document, r.manifests[1].origin.line),
        (2, 8)
    );

    let mut recursive = source("app");
    recursive.directory = Some(Box::new(ApplicationSourceDirectory {
        recurse: true,
        ..Default::default()
    }));
    assert_eq!(
        names(&run(root, &recursive).unwrap()),
        ["a1", "a2", "b", "in-list", "deep"]
    );

    recursive.directory = Some(Box::new(ApplicationSourceDirectory {
        recurse: true,
        include: "{*.json,sub/*}".into(),
        ..Default::default()
    }));
    assert_eq!(names(&run(root, &recursive).unwrap()), ["b", "deep"]);
    recursive.directory = Some(Box::new(ApplicationSourceDirectory {
        recurse: true,
        exclude: "{a.yaml,list.yml}".into(),
        ..Default::default()
    }));
    assert_eq!(names(&run(root, &recursive).unwrap()), ["b", "deep"]);
}

#[test]
fn bad_input_names_file_and_line() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "yaml/x.yaml",
        &format!(
            "{}---\nkind: ConfigMap\nmetadata: {{name: [unclosed\n",
            cm("ok")
        ),
    );
    let e = run(root, &source("yaml")).unwrap_err();
    assert!(
        matches!(&e, RenderError::Yaml { file, line, .. } if file == "yaml/x.yaml" && *line >= 6),
        "{e}"
    );

    write(
        root,
        "nokind/x.yaml",
        "apiVersion: v1\nmetadata:\n  name: x\n",
    );
    let e = run(root, &source("nokind")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "nokind/x.yaml:1: document 0 is not a Kubernetes object: kind is missing"
    );

    write(root, "scalar/x.yaml", "just a string\n");
    assert!(
        run(root, &source("scalar"))
            .unwrap_err()
            .to_string()
            .contains("expected a mapping")
    );

    write(
        root,
        "noname/x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
    );
    assert!(
        run(root, &source("noname"))
            .unwrap_err()
            .to_string()
            .contains("metadata.name is missing")
    );

    write(root, "dup/a.yaml", &cm("same"));
    write(
        root,
        "dup/b.yaml",
        &format!("{}---\n{}", cm("other"), cm("same")),
    );
    let e = run(root, &source("dup")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dup/a.yaml:1: and dup/b.yaml:6: both define ConfigMap same"
    );

    write(
        root,
        "badjson/x.json",
        "{\"apiVersion\": \"v1\",\n \"kind\": }",
    );
    assert!(matches!(
        run(root, &source("badjson")).unwrap_err(),
        RenderError::Json { line: 2, .. }
    ));

    assert!(matches!(
        run(root, &source("missing")).unwrap_err(),
        RenderError::MissingPath { .. }
    ));
}

#[test]
fn paths_and_symlinks_may_not_leave_the_repository() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.yaml", &cm("stolen"));
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "app/ok.yaml", &cm("ok"));
    assert!(matches!(
        run(root, &source("../")).unwrap_err(),
        RenderError::Escapes { .. }
    ));
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        root.join("app/link.yaml"),
    )
    .unwrap();
    assert!(matches!(
        run(root, &source("app")).unwrap_err(),
        RenderError::Escapes { .. }
    ));
    std::os::unix::fs::symlink(outside.path(), root.join("escape-dir")).unwrap();
    assert!(matches!(
        run(root, &source("escape-dir")).unwrap_err(),
        RenderError::Escapes { .. }
    ));
}

#[test]
fn kustomization_is_detected_and_built() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(root, "base/cm.yaml", &cm("settings"));
    write(root, "base/kustomization.yaml", "resources:\n- cm.yaml\n");
    write(
        root,
        "overlay/kustomization.yaml",
        "resources:\n- ../base\nnamePrefix: prod-\n",
    );
    let r = run(root, &source("overlay")).unwrap();
    assert_eq!(r.source_type, SourceType::Kustomize);
    assert_eq!(names(&r), ["prod-settings"]);

    // The Application's own Kustomize overrides apply on top, as in Argo CD.
    write(
        root,
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    );
    write(
        root,
        "base/kustomization.yaml",
        "resources:\n- cm.yaml\n- deploy.yaml\n",
    );
    let mut s = source("overlay");
    s.kustomize = Some(Box::new(
        tiphys_model::application::ApplicationSourceKustomize {
            name_suffix: "-blue".into(),
            images: vec!["nginx=registry.example.com/nginx:1.28".into()],
            common_labels: [("team".to_string(), "web".to_string())].into(),
            ..Default::default()
        },
    ));
    let r = run(root, &s).unwrap();
    assert_eq!(names(&r), ["prod-settings-blue", "prod-web-blue"]);
    // The Application's namePrefix replaces the kustomization's own (Argo CD runs
    // `kustomize edit set nameprefix`); it does not stack on it.
    s.kustomize.as_mut().unwrap().name_prefix = "staging-".into();
    let r = run(root, &s).unwrap();
    assert_eq!(names(&r), ["staging-settings-blue", "staging-web-blue"]);
    assert!(
        std::fs::read_to_string(root.join("overlay/kustomization.yaml"))
            .unwrap()
            .contains("prod-"),
        "the tree is not written"
    );
    // Labels already set differently are an error unless forced, as `kustomize edit add`.
    write(
        root,
        "overlay/kustomization.yaml",
        "resources:\n- ../base\nnamePrefix: prod-\ncommonLabels:\n  team: payments\n",
    );
    let err = run(root, &s).unwrap_err().to_string();
    assert!(err.contains("label team already"), "{err}");
    s.kustomize.as_mut().unwrap().force_common_labels = true;
    let r = run(root, &s).unwrap();
    assert_eq!(r.manifests[1].object["metadata"]["labels"]["team"], "web");
    write(
        root,
        "overlay/kustomization.yaml",
        "resources:\n- ../base\nnamePrefix: prod-\n",
    );
    let deploy = &r.manifests[1].object;
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/nginx:1.28"
    );
    assert_eq!(deploy["metadata"]["labels"]["team"], "web");

    // Load restrictions: a file outside the kustomization is refused unless the build
    // options (argocd-cm kustomize.buildOptions) lift them.
    write(root, "shared/motd.txt", "hello\n");
    write(
        root,
        "gen/kustomization.yaml",
        "configMapGenerator:\n- name: motd\n  files: [../shared/motd.txt]\n",
    );
    let err = run(root, &source("gen")).unwrap_err().to_string();
    assert!(err.contains("is not in or below"), "{err}");
    let open = render(&Request {
        repo_root: root,
        value_refs: &Default::default(),
        source: &source("gen"),
        app_name: "demo",
        namespace: "apps",
        remote: None,
        kustomize_options: tiphys_kustomize::BuildOptions {
            load_restrictions: false,
        },
        capabilities: None,
    })
    .unwrap();
    assert_eq!(open.manifests[0].object["data"]["motd.txt"], "hello\n");
}

#[test]
fn helm_chart_with_argo_options() {
    with_helm();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    );
    write(root, "chart/values.yaml", "replicas: 1\ncolor: red\n");
    write(root, "chart/values-prod.yaml", "replicas: 3\n");
    write(
        root,
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n  namespace: {{ .Release.Namespace }}\ndata:\n  replicas: {{ .Values.replicas | quote }}\n  color: {{ .Values.color | quote }}\n  size: {{ .Values.size | default \"small\" | quote }}\n",
    );
    let mut s = source("chart");
    let r = run(root, &s).unwrap();
    assert_eq!(r.source_type, SourceType::Helm);
    assert_eq!(r.manifests[0].object["metadata"]["name"], "demo-cfg");
    assert_eq!(r.manifests[0].object["metadata"]["namespace"], "apps");
    assert_eq!(
        r.manifests[0].origin.to_string(),
        "chart/templates/cm.yaml",
        "a path in the repository, not a line of helm's output"
    );

    s.helm = Some(Box::new(ApplicationSourceHelm {
        release_name: "rel".into(),
        value_files: vec!["values-prod.yaml".into()],
        parameters: vec![HelmParameter {
            name: "color".into(),
            value: "blue".into(),
            force_string: false,
        }],
        values_object: Some(serde_json::json!({"size": "large"})),
        namespace: "other".into(),
        ..Default::default()
    }));
    let r = run(root, &s).unwrap();
    let cm = &r.manifests[0].object;
    assert_eq!(cm["metadata"]["name"], "rel-cfg");
    assert_eq!(cm["metadata"]["namespace"], "other");
    assert_eq!(
        cm["data"],
        serde_json::json!({"replicas": "3", "color": "blue", "size": "large"})
    );

    s.helm.as_mut().unwrap().value_files = vec!["missing.yaml".into()];
    assert!(run(root, &s).is_err());
    s.helm.as_mut().unwrap().ignore_missing_value_files = true;
    assert!(run(root, &s).is_ok());
}

/// A chart at `chart/` whose ConfigMap `cfg` carries the value `color` (red by default).
fn color_chart(root: &Path) {
    write(
        root,
        "chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    );
    write(root, "chart/values.yaml", "color: red\n");
    write(
        root,
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  color: {{ .Values.color | quote }}\n",
    );
}

#[test]
fn helm_value_files_from_a_ref_source() {
    with_helm();
    let charts = tempfile::tempdir().unwrap();
    let values = tempfile::tempdir().unwrap();
    color_chart(charts.path());
    write(values.path(), "envs/prod/values.yaml", "color: green\n");
    write(charts.path(), "secret.yaml", "color: leaked\n");
    let mut s = source("chart");
    s.helm = Some(Box::new(ApplicationSourceHelm {
        value_files: vec!["$values/envs/prod/values.yaml".into()],
        ..Default::default()
    }));
    let refs =
        tiphys_render::ValueRefs::from([("values".to_string(), values.path().to_path_buf())]);
    let with_refs = |s: &ApplicationSource| {
        render(&Request {
            repo_root: charts.path(),
            value_refs: &refs,
            source: s,
            app_name: "demo",
            namespace: "apps",
            remote: None,
            kustomize_options: Default::default(),
            capabilities: None,
        })
    };
    let r = with_refs(&s).unwrap();
    assert_eq!(r.manifests[0].object["data"]["color"], "green");
    // An unknown ref, and a path that climbs out of the ref's tree, are refused.
    s.helm.as_mut().unwrap().value_files = vec!["$other/values.yaml".into()];
    let err = with_refs(&s).unwrap_err().to_string();
    assert!(
        err.contains("no source of the Application has ref \"other\""),
        "{err}"
    );
    s.helm.as_mut().unwrap().value_files = vec![
        "$values/../".to_string()
            + &charts.path().file_name().unwrap().to_string_lossy()
            + "/secret.yaml",
    ];
    assert!(with_refs(&s).is_err());
}

#[test]
fn helm_crds_capabilities_values_and_file_parameters() {
    with_helm();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "chart/Chart.yaml",
        "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
    );
    write(
        root,
        "chart/crds/crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.example.com\nspec:\n  group: example.com\n  names: {kind: Thing, plural: things}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n",
    );
    write(root, "chart/files/motd.txt", "hello from a file");
    write(
        root,
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caps\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n  motd: {{ .Values.motd | quote }}\n  tier: {{ .Values.tier | default \"none\" | quote }}\n",
    );
    let mut s = source("chart");
    s.helm = Some(Box::new(ApplicationSourceHelm {
        kube_version: "1.29.0".into(),
        api_versions: vec!["monitoring.coreos.com/v1".into()],
        values: "tier: gold\n".into(),
        file_parameters: vec![tiphys_model::application::HelmFileParameter {
            name: "motd".into(),
            path: "files/motd.txt".into(),
        }],
        ..Default::default()
    }));
    let r = run(root, &s).unwrap();
    let kinds: Vec<&str> = r
        .manifests
        .iter()
        .map(|m| m.object["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["CustomResourceDefinition", "ConfigMap"],
        "CRDs from crds/ are included by default"
    );
    let data = &r.manifests[1].object["data"];
    assert_eq!(data["kube"], "v1.29.0");
    assert_eq!(data["monitoring"], "true");
    assert_eq!(data["motd"], "hello from a file");
    assert_eq!(data["tier"], "gold");

    s.helm.as_mut().unwrap().skip_crds = true;
    let r = run(root, &s).unwrap();
    assert_eq!(r.manifests.len(), 1, "skipCrds leaves the CRD out");

    s.helm.as_mut().unwrap().file_parameters[0].path = "../../outside.txt".into();
    assert!(
        run(root, &s).is_err(),
        "file parameters may not leave the repository"
    );
}

#[test]
fn helm_dependencies_are_built_and_capabilities_come_from_the_cluster() {
    with_helm();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    write(
        root,
        "charts/common/Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    );
    write(
        root,
        "charts/common/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\ndata:\n  rollouts: {{ .Capabilities.APIVersions.Has \"argoproj.io/v1alpha1\" | quote }}\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n",
    );
    write(
        root,
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n",
    );
    write(
        root,
        "charts/web/templates/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  ports: [{port: 80}]\n",
    );
    let cluster = tiphys_render::Capabilities {
        kube_version: "v1.31.4".into(),
        api_versions: vec!["v1".into(), "argoproj.io/v1alpha1".into()],
    };
    let render_with = |capabilities| {
        render(&Request {
            repo_root: root,
            value_refs: &Default::default(),
            source: &source("charts/web"),
            app_name: "shop",
            namespace: "apps",
            remote: None,
            kustomize_options: Default::default(),
            capabilities,
        })
    };
    let r = render_with(Some(&cluster)).unwrap();
    assert_eq!(
        names(&r),
        ["shop-common", "shop"],
        "the file:// dependency is rendered"
    );
    let data = &r.manifests[0].object["data"];
    assert_eq!(data["rollouts"], "true");
    assert_eq!(data["kube"], "v1.31.4");
    assert_eq!(
        r.manifests[0].origin.file,
        "charts/web/charts/common/templates/cm.yaml"
    );
    assert!(
        !root.join("charts/web/charts").exists(),
        "dependencies are built in a private copy, not in the tree"
    );
    let r = render_with(None).unwrap();
    assert_eq!(r.manifests[0].object["data"]["rollouts"], "false");
}

/// Jsonnet files in the shapes of Argo CD's jsonnet-guestbook (a file importing its
/// parameters) and jsonnet-guestbook-tla (a function of top-level arguments), with a library
/// directory, external variables and a plain YAML file beside them; the source to render them.
fn jsonnet_fixture(root: &Path) -> ApplicationSource {
    // The shape of Argo CD's jsonnet-guestbook: a file importing its parameters.
    write(
        root,
        "app/params.libsonnet",
        "{ name: 'ui', port: 80, replicas: 2 }\n",
    );
    write(
        root,
        "app/main.jsonnet",
        r#"local params = import 'params.libsonnet';
local labels = import 'labels.libsonnet';
[
  { apiVersion: 'v1', kind: 'Service', metadata: { name: params.name, labels: labels },
    spec: { ports: [{ port: params.port }], selector: { app: params.name } } },
  { apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: params.name, annotations: { env: std.extVar('env'), team: std.extVar('team') } },
    spec: { replicas: params.replicas * std.extVar('scale') } },
]
"#,
    );
    // A library directory named in `libs`, relative to the repository.
    write(root, "vendor/labels.libsonnet", "{ tier: 'web' }\n");
    // The shape of jsonnet-guestbook-tla: a function of top-level arguments.
    write(
        root,
        "app/tla.jsonnet",
        "function(name, replicas=1, enabled) { apiVersion: 'v1', kind: 'ConfigMapList', items: [\n  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name + '-' + i }, data: { enabled: std.toString(enabled) } }\n  for i in std.range(1, replicas)\n] }\n",
    );
    write(root, "app/plain.yaml", &cm("plain"));
    let mut s = source("app");
    s.directory = Some(Box::new(ApplicationSourceDirectory {
        jsonnet: Some(ApplicationSourceJsonnet {
            ext_vars: vec![
                JsonnetVar {
                    name: "env".into(),
                    value: "prod-$ARGOCD_APP_NAME".into(),
                    code: false,
                },
                JsonnetVar {
                    name: "scale".into(),
                    value: "3".into(),
                    code: true,
                },
                JsonnetVar {
                    name: "team".into(),
                    value: "${ARGOCD_APP_NAMESPACE}".into(),
                    code: false,
                },
            ],
            tlas: vec![
                JsonnetVar {
                    name: "name".into(),
                    value: "cfg".into(),
                    code: false,
                },
                JsonnetVar {
                    name: "replicas".into(),
                    value: "2".into(),
                    code: true,
                },
                JsonnetVar {
                    name: "enabled".into(),
                    value: "true".into(),
                    code: true,
                },
            ],
            libs: vec!["vendor".into()],
        }),
        ..Default::default()
    }));
    s
}

#[test]
fn jsonnet_files_with_imports_libraries_ext_vars_and_tlas() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let s = jsonnet_fixture(root);
    let r = run(root, &s).unwrap();
    let kinds: Vec<String> = r
        .manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.object["kind"].as_str().unwrap(),
                m.object["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Service/ui",
            "Deployment/ui",
            "ConfigMap/plain",
            "ConfigMap/cfg-1",
            "ConfigMap/cfg-2"
        ]
    );
    let deployment = &r.manifests[1].object;
    assert_eq!(deployment["spec"]["replicas"], 6);
    assert_eq!(deployment["metadata"]["annotations"]["env"], "prod-demo");
    assert_eq!(deployment["metadata"]["annotations"]["team"], "apps");
    assert_eq!(r.manifests[0].object["metadata"]["labels"]["tier"], "web");
    assert_eq!(r.manifests[3].object["data"]["enabled"], "true");
    assert_eq!(r.manifests[0].origin.file, "app/main.jsonnet");

    // Errors name the file; an import may not leave the repository.
    write(root, "bad/broken.jsonnet", "{ a: }\n");
    let err = run(root, &source("bad")).unwrap_err().to_string();
    assert!(err.contains("bad/broken.jsonnet"), "{err}");
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.libsonnet", "{ leaked: true }\n");
    write(
        root,
        "escape/x.jsonnet",
        &format!(
            "(import '{}') + {{ apiVersion: 'v1', kind: 'ConfigMap', metadata: {{ name: 'x' }} }}\n",
            outside.path().join("secret.libsonnet").display()
        ),
    );
    let err = run(root, &source("escape")).unwrap_err().to_string();
    assert!(err.contains("leaves the repository"), "{err}");
    write(root, "escape/x.jsonnet", "(import '../../etc/passwd')\n");
    assert!(run(root, &source("escape")).is_err());
}

/// What the reference implementation (the official jsonnet, from PyPI) makes of the same
/// files, with the same variables, libraries and arguments.
#[test]
fn jsonnet_agrees_with_the_reference_implementation() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path().canonicalize().unwrap();
    let s = jsonnet_fixture(&root);
    let ours = run(&root, &s).unwrap();
    let options = s.directory.unwrap().jsonnet.unwrap();
    // What Argo CD substitutes, for the app `demo` in `apps`.
    let substitute = |v: &str| {
        v.replace("$ARGOCD_APP_NAME", "demo")
            .replace("${ARGOCD_APP_NAMESPACE}", "apps")
    };
    let split = |vars: &[JsonnetVar], code: bool| -> serde_json::Value {
        vars.iter()
            .filter(|v| v.code == code)
            .map(|v| (v.name.clone(), serde_json::json!(substitute(&v.value))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let python = tiphys_testkit::pip_package("jsonnet==0.22.0", "python");
    let mut reference = Vec::new();
    for file in ["main.jsonnet", "tla.jsonnet"] {
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg("import _jsonnet, json, sys; a = json.loads(sys.argv[2]); print(_jsonnet.evaluate_file(sys.argv[1], jpathdir=a['jpath'], ext_vars=a['ext_vars'], ext_codes=a['ext_codes'], tla_vars=a['tla_vars'], tla_codes=a['tla_codes']))")
            .arg(root.join("app").join(file))
            .arg(
                serde_json::json!({
                    "jpath": [root.join("app"), root.join("vendor")],
                    "ext_vars": split(&options.ext_vars, false),
                    "ext_codes": split(&options.ext_vars, true),
                    "tla_vars": split(&options.tlas, false),
                    "tla_codes": split(&options.tlas, true),
                })
                .to_string(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        match value {
            serde_json::Value::Array(items) => reference.extend(items),
            list if list["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                reference.extend(list["items"].as_array().cloned().unwrap_or_default())
            }
            other => reference.push(other),
        }
    }
    let ours: Vec<serde_json::Value> = ours
        .manifests
        .iter()
        .filter(|m| m.origin.file.ends_with(".jsonnet"))
        .map(|m| m.object.clone())
        .collect();
    assert_eq!(ours, reference);
}

/// A remote value file (`valueFiles: [https://…]`) is fetched through the caller's loader.
#[test]
fn helm_value_files_from_a_url() {
    struct Files;
    impl tiphys_kustomize::RemoteLoader for Files {
        fn load(&self, url: &str) -> Result<std::path::PathBuf, String> {
            Err(format!("{url}: not a base"))
        }
        fn fetch_file(&self, url: &str) -> Result<Option<String>, String> {
            match url {
                "https://config.example.com/prod.yaml" => Ok(Some("color: from-url\n".into())),
                _ => Err(format!("{url}: HTTP 404")),
            }
        }
    }
    with_helm();
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    color_chart(root);
    let mut s = source("chart");
    s.helm = Some(Box::new(ApplicationSourceHelm {
        value_files: vec!["https://config.example.com/prod.yaml".into()],
        ..Default::default()
    }));
    let with_loader = |s: &ApplicationSource| {
        render(&Request {
            repo_root: root,
            value_refs: &Default::default(),
            source: s,
            app_name: "demo",
            namespace: "apps",
            remote: Some(&Files),
            kustomize_options: Default::default(),
            capabilities: None,
        })
    };
    let r = with_loader(&s).unwrap();
    assert_eq!(r.manifests[0].object["data"]["color"], "from-url");
    s.helm.as_mut().unwrap().value_files = vec!["https://config.example.com/gone.yaml".into()];
    let err = with_loader(&s).unwrap_err().to_string();
    assert!(err.contains("gone.yaml") && err.contains("404"), "{err}");
}
