//! Inputs kustomize refuses are refused here too, naming the file and the field; features
//! this engine lacks are refused by name, never ignored.

use std::path::Path;

use tiphys_kustomize::{KustomizeError, build};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

#[test]
fn every_refusal_names_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let err = |dir: &str| build(&root.join(dir)).unwrap_err();

    write(root, "blank/kustomization.yaml", "\n# nothing\n");
    assert!(
        err("blank")
            .to_string()
            .contains("kustomization.yaml is empty")
    );

    std::fs::create_dir_all(root.join("empty")).unwrap();
    assert!(matches!(
        err("empty"),
        KustomizeError::NoKustomization { .. }
    ));

    write(
        root,
        "unsupported/kustomization.yaml",
        "validators: [check.yaml]\n",
    );
    let e = err("unsupported");
    assert!(
        matches!(&e, KustomizeError::Unsupported { field, .. } if field == "validators"),
        "{e}"
    );

    write(
        root,
        "bad-openapi/kustomization.yaml",
        "openapi: {file: x.json}\n",
    );
    assert!(err("bad-openapi").to_string().contains("openapi.file"));
    write(
        root,
        "no-definitions/kustomization.yaml",
        "openapi: {path: s.json}\n",
    );
    write(root, "no-definitions/s.json", "{\"swagger\": \"2.0\"}\n");
    assert!(
        err("no-definitions")
            .to_string()
            .contains("no `definitions`")
    );
    assert!(e.to_string().contains("unsupported/kustomization.yaml"));

    write(
        root,
        "missing/kustomization.yaml",
        "resources: [nope.yaml]\n",
    );
    assert!(
        err("missing")
            .to_string()
            .contains("nope.yaml: no such file or directory")
    );

    write(root, "cycle/a/kustomization.yaml", "resources: [../b]\n");
    write(root, "cycle/b/kustomization.yaml", "resources: [../a]\n");
    assert!(matches!(err("cycle/a"), KustomizeError::Cycle { .. }));

    write(root, "dup/one.yaml", CM);
    write(root, "dup/two.yaml", CM);
    write(
        root,
        "dup/kustomization.yaml",
        "resources: [one.yaml, two.yaml]\n",
    );
    assert!(
        err("dup")
            .to_string()
            .contains("already registered id: ConfigMap.v1.[noGrp]/a.[noNs]")
    );

    write(root, "nomatch/cm.yaml", CM);
    write(
        root,
        "nomatch/kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: other\n    data: {x: y}\n",
    );
    assert!(
        err("nomatch")
            .to_string()
            .contains("no resource matches ConfigMap other")
    );

    write(root, "badyaml/kustomization.yaml", "resources: [\n");
    assert!(matches!(err("badyaml"), KustomizeError::Yaml { .. }));

    write(root, "notobject/cm.yaml", "- just\n- a list\n");
    write(
        root,
        "notobject/kustomization.yaml",
        "resources: [cm.yaml]\n",
    );
    assert!(
        err("notobject")
            .to_string()
            .contains("not a Kubernetes object")
    );

    write(
        root,
        "remote/kustomization.yaml",
        "resources:\n- https://github.com/example/repo//base?ref=v1\n",
    );
    assert!(matches!(err("remote"), KustomizeError::Remote { .. }));

    write(
        root,
        "genbehavior/kustomization.yaml",
        "configMapGenerator:\n- name: x\n  behavior: merge\n  literals: [A=1]\n",
    );
    assert!(
        err("genbehavior")
            .to_string()
            .contains("no ConfigMap x to merge with")
    );

    write(
        root,
        "component-as-resource/comp/kustomization.yaml",
        "kind: Component\n",
    );
    write(
        root,
        "component-as-resource/kustomization.yaml",
        "resources: [comp]\n",
    );
    assert!(
        err("component-as-resource")
            .to_string()
            .contains("Component")
    );

    // A var binds by kind, name and exact group/version: without `version: v1` a ConfigMap
    // var names nothing, and kustomize refuses it.
    write(root, "unbound-var/cm.yaml", CM);
    write(
        root,
        "unbound-var/kustomization.yaml",
        "resources: [cm.yaml]\nvars:\n- name: CM\n  objref: {kind: ConfigMap, name: a}\n",
    );
    let e = err("unbound-var").to_string();
    assert!(e.contains("unbound-var/kustomization.yaml"), "{e}");
    assert!(e.contains("var 'CM' cannot be mapped"), "{e}");

    write(root, "twice-var/base/cm.yaml", CM);
    let var = "vars:\n- name: CM\n  objref: {kind: ConfigMap, version: v1, name: a}\n";
    write(
        root,
        "twice-var/base/kustomization.yaml",
        &format!("resources: [cm.yaml]\n{var}"),
    );
    write(
        root,
        "twice-var/kustomization.yaml",
        &format!("resources: [base]\n{var}"),
    );
    assert!(
        err("twice-var")
            .to_string()
            .contains("var 'CM' already encountered")
    );

    write(root, "path-and-patch/cm.yaml", CM);
    write(
        root,
        "path-and-patch/kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n- path: p.yaml\n  patch: '[]'\n  target: {kind: ConfigMap}\n",
    );
    assert!(
        err("path-and-patch")
            .to_string()
            .contains("patches[0]: patch and path can't be set at the same time")
    );

    // A replica count for a name no scalable resource has, and two objects made one by the
    // namespace, are refused as kustomize refuses them.
    write(root, "replicas-nothing/cm.yaml", CM);
    write(
        root,
        "replicas-nothing/kustomization.yaml",
        "resources: [cm.yaml]\nreplicas:\n- name: a\n  count: 2\n",
    );
    assert!(
        err("replicas-nothing")
            .to_string()
            .contains("replicas[0]: resource with name a does not match")
    );
    write(
        root,
        "ns-conflict/cms.yaml",
        &format!("{CM}  namespace: x\n---\n{CM}  namespace: y\n"),
    );
    write(
        root,
        "ns-conflict/kustomization.yaml",
        "resources: [cms.yaml]\nnamespace: z\n",
    );
    assert!(
        err("ns-conflict")
            .to_string()
            .contains("namespace transformation produces ID conflict")
    );

    // Plugins other than the built-in ones are refused by name.
    write(root, "exec-plugin/cm.yaml", CM);
    write(
        root,
        "exec-plugin/kustomization.yaml",
        "resources: [cm.yaml]\ntransformers:\n- |-\n  apiVersion: someteam.example.com/v1\n  kind: ChartInflator\n  metadata:\n    name: x\n",
    );
    let e = err("exec-plugin");
    assert!(
        matches!(&e, KustomizeError::Unsupported { field, .. } if field.contains("transformers[0]")),
        "{e}"
    );

    write(root, "bad-config/cm.yaml", CM);
    write(
        root,
        "bad-config/kustomization.yaml",
        "resources: [cm.yaml]\nconfigurations: [config.yaml]\n",
    );
    write(root, "bad-config/config.yaml", "nameReferences: []\n");
    let e = err("bad-config").to_string();
    assert!(
        e.contains("configurations") && e.contains("nameReferences"),
        "{e}"
    );
    // A Component must say kustomize.config.k8s.io/v1alpha1.
    write(root, "wrong-component/cm.yaml", CM);
    write(
        root,
        "wrong-component/kustomization.yaml",
        "resources: [cm.yaml]\ncomponents: [comp]\n",
    );
    write(
        root,
        "wrong-component/comp/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\nnamePrefix: x-\n",
    );
    let e = err("wrong-component").to_string();
    assert!(
        e.contains("apiVersion for Component should be kustomize.config.k8s.io/v1alpha1"),
        "{e}"
    );

    // openapi: a custom schema and a built-in version exclude each other; one version is
    // built in.
    write(
        root,
        "openapi-both/kustomization.yaml",
        "openapi:\n  path: s.json\n  version: v1.21.2\n",
    );
    write(
        root,
        "openapi-both/s.json",
        "{\"swagger\": \"2.0\", \"definitions\": {}}\n",
    );
    let e = err("openapi-both").to_string();
    assert!(e.contains("cannot use both"), "{e}");
    write(
        root,
        "openapi-version/kustomization.yaml",
        "openapi:\n  version: v1.27.1\n",
    );
    let e = err("openapi-version").to_string();
    assert!(e.contains("not built in"), "{e}");

    // A strategic merge patch must name one resource: two namespaces' ConfigMaps of one
    // name, and a patch without a namespace (`default`), match none; with a namespace, one.
    write(
        root,
        "two-targets/cms.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: b}\n",
    );
    write(
        root,
        "two-targets/patch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {b: \"2\"}\n",
    );
    write(
        root,
        "two-targets/kustomization.yaml",
        "resources: [cms.yaml]\npatchesStrategicMerge: [patch.yaml]\n",
    );
    let e = err("two-targets").to_string();
    assert!(e.contains("no resource matches ConfigMap cm"), "{e}");
    write(
        root,
        "two-targets/patch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: b}\ndata: {b: \"2\"}\n",
    );
    let built = build(&root.join("two-targets")).unwrap();
    assert_eq!(built[1]["data"]["b"], "2");
    assert!(built[0].get("data").is_none());

    // fifo order with legacy options is kustomize's refusal too.
    write(
        root,
        "fifo-legacy/kustomization.yaml",
        "sortOptions:\n  order: fifo\n  legacySortOptions:\n    orderFirst: [Namespace]\n",
    );
    let e = err("fifo-legacy").to_string();
    assert!(e.contains("selected sort order is 'fifo'"), "{e}");

    // kustomize refuses a directory with two kustomization files, naming it.
    write(root, "two-files/kustomization.yaml", "resources: []\n");
    write(root, "two-files/Kustomization", "resources: []\n");
    let e = err("two-files").to_string();
    assert!(
        e.contains("Found multiple kustomization files under") && e.contains("two-files"),
        "{e}"
    );
}

#[test]
fn a_patch_selecting_nothing_is_accepted_as_kustomize_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "cm.yaml", CM);
    write(
        tmp.path(),
        "kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /x\n      value: 1\n",
    );
    assert_eq!(build(tmp.path()).unwrap().len(), 1);
}

/// kustomize's default load restriction: a kustomization may read files only in or below its
/// own directory (bases elsewhere are fine); symlinks are followed before the check.
#[test]
fn files_outside_the_kustomization_are_refused_unless_restrictions_are_off() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "outside/cm.yaml", CM);
    write(root, "outside/secret.txt", "token\n");
    write(
        root,
        "outside/base/kustomization.yaml",
        "resources: [cm.yaml]\n",
    );
    write(root, "outside/base/cm.yaml", CM);
    let cases = [
        ("resource", "resources: [../outside/cm.yaml]\n"),
        (
            "generator",
            "configMapGenerator:\n- name: x\n  files: [../outside/secret.txt]\n",
        ),
        (
            "absolute",
            &format!(
                "configMapGenerator:\n- name: x\n  files: [{}]\n",
                root.join("outside/secret.txt").display()
            ) as &str,
        ),
        (
            "patch",
            "resources: [cm.yaml]\npatches:\n- path: ../outside/cm.yaml\n",
        ),
    ];
    for (name, kustomization) in cases {
        write(root, &format!("{name}/kustomization.yaml"), kustomization);
        write(root, &format!("{name}/cm.yaml"), CM);
        let dir = root.join(name);
        let e = build(&dir).unwrap_err().to_string();
        assert!(
            e.contains("security; file") && e.contains("is not in or below"),
            "{name}: {e}"
        );
        assert!(e.contains(&format!("{name}/kustomization.yaml")), "{e}");
        let open = tiphys_kustomize::BuildOptions {
            load_restrictions: false,
        };
        assert!(
            tiphys_kustomize::build_with_options(&dir, None, open).is_ok(),
            "{name} builds with LoadRestrictionsNone"
        );
    }

    // A symlink inside the tree that points out of it is outside too.
    write(
        root,
        "link/kustomization.yaml",
        "configMapGenerator:\n- name: x\n  files: [token]\n",
    );
    std::os::unix::fs::symlink(root.join("outside/secret.txt"), root.join("link/token")).unwrap();
    let e = build(&root.join("link")).unwrap_err().to_string();
    assert!(e.contains("is not in or below"), "{e}");

    // A base in another directory is a kustomization of its own, and allowed.
    write(
        root,
        "with-base/kustomization.yaml",
        "resources: [../outside/base]\n",
    );
    assert_eq!(build(&root.join("with-base")).unwrap().len(), 1);
}

/// A strategic merge patch names its target by a name and a namespace the object had
/// together (kustomize's previous ids): each level's namespace change and rename is one step,
/// so `web-base` was in `default` and `team-a`, never in its original `team-b`.
#[test]
fn a_patch_must_name_a_name_and_namespace_the_object_had_together() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let tree =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees/122-patch-by-earlier-identity");
    for level in ["base", "mid"] {
        for entry in std::fs::read_dir(tree.join(level)).unwrap() {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            write(
                root,
                &format!("{level}/{}", entry.file_name().to_string_lossy()),
                &text,
            );
        }
    }
    let patch = |name: &str, namespace: &str| {
        format!(
            "resources: [../mid]\npatchesStrategicMerge:\n- |-\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: {name}\n    namespace: {namespace}\n  spec:\n    replicas: 3\n"
        )
    };
    for (name, namespace, matches) in [
        ("web", "team-b", true),
        ("web", "default", true),
        ("web-base", "default", true),
        ("web-base", "team-a", true),
        ("web-base-mid", "team-a", true),
        ("web-base", "team-b", false),
        ("web", "team-a", false),
        ("web-base-mid", "default", false),
    ] {
        let dir = format!("{name}.{namespace}");
        write(
            root,
            &format!("{dir}/kustomization.yaml"),
            &patch(name, namespace),
        );
        let built = build(&root.join(&dir));
        match (matches, built) {
            (true, Ok(objects)) => assert_eq!(objects.len(), 1, "{dir}"),
            (false, Err(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains(&format!("{name} in namespace {namespace}")),
                    "{dir}: {e}"
                );
                assert!(
                    e.contains(&format!("{dir}/kustomization.yaml")),
                    "{dir}: {e}"
                );
            }
            (expected, got) => panic!("{dir}: expected a match: {expected}, got {got:?}"),
        }
    }
}

/// A kustomization is typed as kustomize's Go structs type it, after reading it as YAML 1.1:
/// a value of the wrong type for its field is refused with Go's message, naming the field.
#[test]
fn wrongly_typed_kustomization_fields_are_refused_as_kustomize_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cases = [
        ("namespace: 5", "Kustomization.namespace of type string"),
        (
            "namePrefix: n",
            "cannot unmarshal bool into Go struct field Kustomization.namePrefix",
        ),
        (
            "commonLabels: {team: on}",
            "Kustomization.commonLabels of type string",
        ),
        (
            "images: [{name: nginx, newTag: 1.27}]",
            "number into Go struct field Image.images.newTag",
        ),
        (
            "labels: [{pairs: {a: b}, includeSelectors: 'true'}]",
            "string into Go struct field Label.labels.includeSelectors of type bool",
        ),
        (
            "replicas: [{name: d, count: '3'}]",
            "Replica.replicas.count of type int64",
        ),
        (
            "resources: cm.yaml",
            "Kustomization.resources of type []string",
        ),
    ];
    for (i, (line, expected)) in cases.iter().enumerate() {
        let dir = format!("typed-{i}");
        write(
            root,
            &format!("{dir}/kustomization.yaml"),
            &format!("{line}\n"),
        );
        write(root, &format!("{dir}/cm.yaml"), CM);
        let e = build(&root.join(&dir)).unwrap_err().to_string();
        assert!(e.contains(expected), "{line}: {e}");
        assert!(e.contains(&format!("{dir}/kustomization.yaml")), "{e}");
    }
}
