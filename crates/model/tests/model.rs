//! The seed article's manifests parse unchanged, the CRDs are accepted by an API server that
//! enforces structural schemas (the local cluster), and kubectl can apply the seed through them.

use tiphys_model::{Application, ApplicationSet, crd, validate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn seed_application_parses_and_validates() {
    let app =
        Application::from_yaml(&fixture("seed-application.yaml"), "seed-application.yaml").unwrap();
    assert_eq!(app.spec.project, "production");
    let source = app.spec.source.as_ref().unwrap();
    assert_eq!(source.repo_url, "https://github.com/myorg/k8s-manifests");
    assert_eq!(source.revision(), "HEAD");
    assert_eq!(source.path, "apps/payment-service/overlays/production");
    assert_eq!(app.spec.destination.namespace, "payments");
    let automated = app
        .spec
        .sync_policy
        .as_ref()
        .unwrap()
        .automated
        .as_ref()
        .unwrap();
    assert!(automated.prune && automated.self_heal);
    assert_eq!(validate::application(&app), vec![]);

    // Serialising gives Argo CD's field names back.
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(
        json["spec"]["source"]["repoURL"],
        "https://github.com/myorg/k8s-manifests"
    );
    assert_eq!(
        json["spec"]["syncPolicy"]["syncOptions"][0],
        "CreateNamespace=true"
    );
    assert_eq!(json["spec"]["syncPolicy"]["automated"]["selfHeal"], true);
}

#[test]
fn seed_applicationset_parses() {
    let set = ApplicationSet::from_yaml(
        &fixture("seed-applicationset.yaml"),
        "seed-applicationset.yaml",
    )
    .unwrap();
    assert_eq!(set.spec.template.metadata.name, "{{service}}-{{env}}");
    assert_eq!(set.spec.generators.len(), 1);
    assert_eq!(
        set.spec.generators[0]["matrix"]["generators"][0]["list"]["elements"][2]["service"],
        "payment-service"
    );
}

#[test]
fn invalid_specs_name_the_field() {
    let bad = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x}\nspec:\n  source: {repoURL: '', path: ../escape}\n  destination: {}\n  syncPolicy:\n    syncOptions: [CreateNamespace=maybe]\n    retry: {backoff: {duration: 5x}}\n";
    let app = Application::from_yaml(bad, "bad.yaml").unwrap();
    let fields: Vec<String> = validate::application(&app)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.source.repoURL",
            "spec.source.path",
            "spec.destination",
            "spec.syncPolicy.syncOptions[0]",
            "spec.syncPolicy.retry.backoff.duration"
        ]
    );

    let wrong = Application::from_yaml(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: x}\n",
        "p.yaml",
    )
    .unwrap_err();
    assert!(wrong.to_string().contains("expected kind Application"));
    let broken = Application::from_yaml("kind: Application\nspec: [", "broken.yaml").unwrap_err();
    assert!(broken.to_string().starts_with("broken.yaml: invalid YAML"));
    let shape = Application::from_yaml(
        "kind: Application\nspec:\n  destination: {server: 3}\n  source: {repoURL: x, path: [1]}\n",
        "s.yaml",
    )
    .unwrap_err();
    assert!(
        shape
            .to_string()
            .contains("s.yaml: not a valid Application"),
        "{shape}"
    );
}

#[test]
fn crd_schemas_are_structural() {
    for crd in crd::all() {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_structural(schema, "openAPIV3Schema");
    }
}

/// Kubernetes' structural-schema rules that generated schemas most often break: every node
/// has a type (or preserves unknown fields / is int-or-string), and no `$ref`, `anyOf`
/// without types or `additionalProperties: false`.
fn assert_structural(schema: &serde_json::Value, at: &str) {
    let obj = schema
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object"));
    assert!(!obj.contains_key("$ref"), "{at}: $ref");
    let typed = obj.contains_key("type")
        || obj.get("x-kubernetes-int-or-string") == Some(&serde_json::json!(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&serde_json::json!(true));
    assert!(typed, "{at}: no type in {schema}");
    if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
        for (k, v) in props {
            assert_structural(v, &format!("{at}.{k}"));
        }
    }
    if let Some(items) = obj.get("items") {
        assert_structural(items, &format!("{at}[]"));
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        assert_structural(additional, &format!("{at}{{}}"));
    }
}
