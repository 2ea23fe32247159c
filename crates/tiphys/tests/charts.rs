//! Helm charts from chart repositories, end to end against the local cluster and a `tiphys
//! controller` process: charts packaged by the real `helm`, served from an HTTP repository
//! behind Basic auth and pushed to the CNCF distribution registry, each with values from a
//! `ref` git source — several apps at once; a new version picked up by a semver range; a
//! missing chart or version failing the comparison without pruning; `tiphys render` against
//! `helm template`.

mod common;

use std::path::{Path, PathBuf};

use common::cluster::*;
use common::write;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tiphys_testkit::{ChartRepo, Registry};

/// A chart whose ConfigMap carries its version and the `greeting` value.
fn chart(root: &Path, version: &str) -> PathBuf {
    let dir = root.join(format!("chart-src-{version}")).join("web");
    write(
        &dir,
        "Chart.yaml",
        &format!("apiVersion: v2\nname: web\nversion: {version}\n"),
    );
    write(&dir, "values.yaml", "greeting: from-chart\n");
    write(
        &dir,
        "templates/cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  labels:\n    release: {{{{ .Release.Name }}}}\ndata:\n  version: \"{version}\"\n  greeting: {{{{ .Values.greeting | quote }}}}\n"
        ),
    );
    dir
}

/// A multi-source app: the chart, with value files from the git repository's `ref` source.
fn chart_app(name: &str, repo_url: &str, revision: &str, values_repo: &Path) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  sources:
  - repoURL: {repo_url}
    chart: web
    targetRevision: \"{revision}\"
    helm:
      valueFiles:
      - $values/envs/prod/values.yaml
  - repoURL: file://{}
    targetRevision: HEAD
    ref: values
  destination:
    server: https://kubernetes.default.svc
    namespace: {name}
  syncPolicy:
{AUTOMATED}",
        values_repo.display()
    )
}

/// Ask for a hard refresh, as `argocd app get --hard-refresh` does.
fn hard_refresh(env: &Env, name: &str) {
    env.refresh(name, "hard");
}

async fn config(env: &Env, namespace: &str) -> Option<(String, String)> {
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
    let data = cms.get("web").await.ok()?.data?;
    Some((data.get("version")?.clone(), data.get("greeting")?.clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn charts_from_http_and_oci_with_values_from_git() {
    let env = Env::start().await;
    let root = env.dir.path();
    let charts = ChartRepo::start(&root.join("charts"), Some(("alice", "s3cret")), None);
    charts.publish(&chart(root, "1.0.0"));
    let registry = Registry::start(root);
    registry.push(&chart(root, "1.0.0"), "charts");
    let values = new_repo(root, &[("envs/prod/values.yaml", "greeting: from-git\n")]);
    let oci_url = format!("oci://{}/charts", registry.host);
    // The repositories, added as a user would: a wrong password is refused by the check. The
    // chart repository is reached through a proxy, as behind a corporate one.
    let proxy = tiphys_testkit::HttpProxy::start();
    let add_charts = |password: &str| {
        env.tiphys_text(&[
            "repo",
            "add",
            &charts.url,
            "--type",
            "helm",
            "--name",
            "team-charts",
            "--username",
            "alice",
            "--password",
            password,
            "--proxy",
            &proxy.url,
        ])
    };
    let (ok, text) = add_charts("wrong");
    assert!(!ok && text.contains("authentication failed"), "{text}");
    let (ok, text) = add_charts("s3cret");
    assert!(ok, "{text}");
    let (ok, text) = env.tiphys_text(&[
        "repo",
        "add",
        &oci_url,
        "--type",
        "helm",
        "--enable-oci",
        "--insecure-oci-force-http",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = env.tiphys_text(&["repo", "list"]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("Successful").count(), 2, "{text}");
    assert!(text.contains("team-charts"), "{text}");
    let (index_fetches_before, _) = charts.requests("/index.yaml");

    let http_apps: Vec<String> = (0..4).map(|i| format!("chart-http-{i}")).collect();
    let oci_apps: Vec<String> = (0..2).map(|i| format!("chart-oci-{i}")).collect();
    for name in &http_apps {
        env.apply(&chart_app(name, &charts.url, "1.x", &values));
    }
    for name in &oci_apps {
        env.apply(&chart_app(name, &oci_url, "~1.0", &values));
    }
    let all: Vec<String> = http_apps.iter().chain(&oci_apps).cloned().collect();
    env.wait_all(
        &all,
        "synced and healthy",
        std::time::Duration::from_secs(120),
        synced_and_healthy,
    )
    .await;
    for name in &all {
        assert_eq!(
            config(&env, name).await,
            Some(("1.0.0".into(), "from-git".into())),
            "{name}: the chart's version with the values from git"
        );
        let app = env.apps().get(name).await.unwrap();
        let sync = status(&app).sync;
        assert_eq!(sync.revisions.len(), 2, "{name}: {sync:?}");
        assert_eq!(sync.revisions[0], "1.0.0");
        assert_eq!(sync.revisions[1].len(), 40, "the values source's commit");
        assert_eq!(
            status(&app).source_types,
            vec!["Helm".to_string(), String::new()]
        );
    }
    let (index_fetches, _) = charts.requests("/index.yaml");
    assert_eq!(
        index_fetches - index_fetches_before,
        1,
        "four apps, one index fetch"
    );
    assert_eq!(charts.requests("/web-1.0.0.tgz"), (1, 0), "one download");
    let through_proxy = proxy.seen();
    assert!(
        through_proxy.iter().any(|t| t.ends_with("/web-1.0.0.tgz")),
        "the controller fetched through the repository's proxy: {through_proxy:?}"
    );
    // `app diff` (its own process, so after the counts) renders multi-source apps as the controller does: nothing differs.
    let out = env.tiphys(&["app", "diff", &http_apps[1]]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A new version in the index, and a values change in git: a hard refresh picks up both.
    charts.publish(&chart(root, "1.1.0"));
    write(
        &values,
        "envs/prod/values.yaml",
        "greeting: changed-in-git\n",
    );
    commit(&values, "new greeting");
    for name in &http_apps {
        hard_refresh(&env, name);
    }
    for name in &http_apps {
        env.eventually("the new chart version deployed", async || {
            (config(&env, name).await? == ("1.1.0".into(), "changed-in-git".into())).then_some(())
        })
        .await;
    }

    // A version that does not exist: a ComparisonError naming the chart; nothing is pruned.
    let broken = &http_apps[0];
    env.apply(&chart_app(broken, &charts.url, "^7", &values));
    let app = env
        .wait_app(broken, "a comparison error", |a| {
            condition(a, "ComparisonError").is_some_and(|m| m.contains("\"web\""))
        })
        .await;
    let message = condition(&app, "ComparisonError")
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("no version matching \"^7\""), "{message}");
    let missing = &oci_apps[0];
    env.apply(
        &chart_app(missing, &oci_url, "9.9.9", &values).replace("chart: web", "chart: absent"),
    );
    let app = env
        .wait_app(missing, "a comparison error", |a| {
            condition(a, "ComparisonError").is_some_and(|m| m.contains("absent"))
        })
        .await;
    assert!(condition(&app, "ComparisonError").is_some());
    assert!(config(&env, broken).await.is_some(), "nothing pruned");
    assert!(config(&env, missing).await.is_some(), "nothing pruned");

    // An archive that is not the one the index describes (its digest), and a registry that
    // is gone: refused naming the chart and the cause; nothing is pruned.
    charts.publish(&chart(root, "1.2.0"));
    let archive = charts.dir.join("web-1.2.0.tgz");
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let tampered = &http_apps[2];
    env.apply(&chart_app(tampered, &charts.url, "1.2.0", &values));
    hard_refresh(&env, tampered);
    let app = env
        .wait_app(tampered, "a digest mismatch", |a| {
            condition(a, "ComparisonError").is_some_and(|m| m.contains("digest mismatch"))
        })
        .await;
    let message = condition(&app, "ComparisonError").unwrap_or_default();
    assert!(
        message.contains("chart \"web\"") && message.contains("web-1.2.0.tgz"),
        "{message}"
    );
    let registry_host = registry.host.clone();
    drop(registry);
    let stranded = &oci_apps[1];
    env.apply(&chart_app(stranded, &oci_url, "~1.5", &values));
    hard_refresh(&env, stranded);
    let app = env
        .wait_app(stranded, "an unreachable registry", |a| {
            condition(a, "ComparisonError").is_some_and(|m| m.contains("unreachable"))
        })
        .await;
    let message = condition(&app, "ComparisonError").unwrap_or_default();
    assert!(message.contains("chart \"web\""), "{message}");
    assert!(config(&env, tampered).await.is_some(), "nothing pruned");
    assert!(config(&env, stranded).await.is_some(), "nothing pruned");

    // Credentials the repository refuses (the Secret changed by hand): the same.
    let secret = tiphys_source::credentials::secret_name("repo", &charts.url);
    let out = env.kubectl(
        &[
            "patch",
            "secret",
            &secret,
            "-n",
            "argocd",
            "--type",
            "merge",
            "-p",
            r#"{"stringData":{"password":"wrong"}}"#,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = &http_apps[3];
    let message = env
        .eventually("the repository refusing the credentials", async || {
            // Asked again until the controller has seen the changed Secret.
            hard_refresh(&env, refused);
            let app = env.apps().get(refused).await.ok()?;
            condition(&app, "ComparisonError")
                .filter(|m| m.contains("authentication failed"))
                .map(str::to_string)
        })
        .await;
    assert!(message.contains("chart \"web\""), "{message}");
    assert!(config(&env, refused).await.is_some(), "nothing pruned");

    let (ok, text) = env.tiphys_text(&["repo", "rm", &oci_url]);
    assert!(ok, "{text}");
    let (_, text) = env.tiphys_text(&["repo", "list"]);
    assert!(
        !text.contains(&registry_host) && text.contains("team-charts"),
        "{text}"
    );
}

#[test]
fn render_of_a_chart_source_is_what_helm_template_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let charts = ChartRepo::start(&tmp.path().join("charts"), None, None);
    let dir = chart(tmp.path(), "2.0.0");
    charts.publish(&dir);
    let app = format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: rendered
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {}
    chart: web
    targetRevision: 2.0.0
    helm:
      releaseName: edge
      parameters:
      - name: greeting
        value: set-here
  destination:
    server: https://kubernetes.default.svc
    namespace: web-ns
",
        charts.url
    );
    let file = tmp.path().join("app.yaml");
    std::fs::write(&file, app).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(["render", "-f"])
        .arg(&file)
        .env("TIPHYS_CACHE_DIR", tmp.path().join("cache"))
        .env("HELM", tiphys_testkit::tool("helm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = String::from_utf8_lossy(&out.stdout).into_owned();
    let helm = tiphys_testkit::helm(
        &[
            "template",
            "edge",
            "--namespace",
            "web-ns",
            "--set",
            "greeting=set-here",
            "--include-crds",
        ],
        &[&dir],
    );
    let objects = |text: &str| {
        tiphys_render::yaml::parse_documents(text)
            .unwrap()
            .into_iter()
            .map(|d| d.value)
            .filter(|v| !v.is_null())
            .collect::<Vec<_>>()
    };
    assert_eq!(objects(&ours), objects(&helm));
    assert!(ours.contains("greeting: set-here"), "{ours}");
}

/// OCI artifacts of manifests, as Argo CD 3 reads them (`repoURL: oci://…`, no `chart`,
/// `path` inside the artifact): pushed as `oras push` does, added with `tiphys repo add --type
/// oci`, several apps at once on a semver range; the revision is the manifest digest; a new
/// tag is deployed after a hard refresh; a Helm chart pushed by `helm push` renders from
/// `path: .`.
#[tokio::test(flavor = "multi_thread")]
async fn oci_artifacts_of_manifests_and_charts() {
    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    let env = Env::start().await;
    let root = env.dir.path();
    let registry = Registry::start(root);
    let files = root.join("site");
    let site_cm = |release: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata:\n  release: {release}\n"
        )
    };
    write(&files, "apps/cm.yaml", &site_cm("one"));
    write(&files, "README.md", "not a manifest\n");
    let first = registry.push_artifact(&files, "manifests/site", "1.0.0", LAYER);
    registry.push(&chart(root, "2.0.0"), "charts");
    let site_url = format!("oci://{}/manifests/site", registry.host);
    let chart_url = format!("oci://{}/charts/web", registry.host);
    for url in [&site_url, &chart_url] {
        let (ok, text) = env.tiphys_text(&[
            "repo",
            "add",
            url,
            "--type",
            "oci",
            "--insecure-oci-force-http",
        ]);
        assert!(ok, "{text}");
    }
    let app = |name: &str, url: &str, path: &str, revision: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    path: {path}\n    targetRevision: \"{revision}\"\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n  syncPolicy:\n{AUTOMATED}"
        )
    };
    let sites: Vec<String> = (0..3).map(|i| format!("oci-site-{i}")).collect();
    for name in &sites {
        env.apply(&app(name, &site_url, "apps", "1.x"));
    }
    env.apply(&app("oci-web", &chart_url, ".", "2.0.0"));
    let all: Vec<String> = sites
        .iter()
        .cloned()
        .chain(["oci-web".to_string()])
        .collect();
    env.wait_all(
        &all,
        "synced and healthy",
        std::time::Duration::from_secs(120),
        synced_and_healthy,
    )
    .await;
    let release = async |namespace: &str| {
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
        cms.get("site").await.ok()?.data?.get("release").cloned()
    };
    for name in &sites {
        let app = env.apps().get(name).await.unwrap();
        assert_eq!(
            status(&app).sync.revision,
            first,
            "{name}: the manifest digest"
        );
        assert_eq!(status(&app).source_type, "Directory");
        assert_eq!(release(name).await.as_deref(), Some("one"));
    }
    assert_eq!(
        config(&env, "oci-web").await,
        Some(("2.0.0".into(), "from-chart".into()))
    );

    // A new tag in the range: deployed after a hard refresh.
    write(&files, "apps/cm.yaml", &site_cm("two"));
    let second = registry.push_artifact(&files, "manifests/site", "1.1.0", LAYER);
    for name in &sites {
        hard_refresh(&env, name);
    }
    for name in &sites {
        env.wait_app(name, "the new tag deployed", |a| {
            synced_and_healthy(a) && status(a).sync.revision == second
        })
        .await;
        assert_eq!(release(name).await.as_deref(), Some("two"));
    }
}
