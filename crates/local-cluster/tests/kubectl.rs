//! The local cluster driven by a real `kubectl`, flow by flow.

mod common;

use common::{fixture, start};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn read_fixture(kind: &str) -> String {
    std::fs::read_to_string(fixture(&format!("reference/{kind}/input.yaml"))).expect("fixture")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_sends_protobuf_and_works() {
    let c = start().await;
    c.ok(&["create", "namespace", "proto"]).await;
    c.ok(&[
        "create",
        "configmap",
        "cm",
        "-n",
        "proto",
        "--from-literal=a=b",
    ])
    .await;
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "proto",
        "--from-literal=password=hunter2",
    ])
    .await;
    c.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "proto",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ])
    .await;
    c.ok(&[
        "create",
        "service",
        "clusterip",
        "svc",
        "-n",
        "proto",
        "--tcp=80:8080",
    ])
    .await;
    c.ok(&["create", "job", "j", "-n", "proto", "--image=busybox"])
        .await;
    assert_eq!(c.ok(&["auth", "can-i", "list", "pods"]).await.trim(), "yes");

    let secret = json(
        &c.ok(&["get", "secret", "s", "-n", "proto", "-o", "json"])
            .await,
    );
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["type"], "Opaque");
    let deploy = json(
        &c.ok(&["get", "deployment", "web", "-n", "proto", "-o", "json"])
            .await,
    );
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let svc = json(
        &c.ok(&["get", "service", "svc", "-n", "proto", "-o", "json"])
            .await,
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let job = json(
        &c.ok(&["get", "job", "j", "-n", "proto", "-o", "json"])
            .await,
    );
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string()
    );
}

/// Server-side apply of the reference manifests stores what a real 1.32 server stored,
/// apart from identity, timestamps and allocated addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_objects_match_a_real_api_server() {
    let c = start().await;
    c.ok(&["create", "namespace", "ref"]).await;
    for kind in [
        "crd",
        "namespace",
        "configmap",
        "secret",
        "service",
        "deployment",
        "statefulset",
        "job",
        "cronjob",
    ] {
        let out = c
            .kubectl_stdin(
                &[
                    "apply",
                    "--server-side",
                    "-n",
                    "ref",
                    "-o",
                    "json",
                    "-f",
                    "-",
                ],
                Some(&read_fixture(kind)),
            )
            .await;
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ours = json(&String::from_utf8_lossy(&out.stdout));
        let mut real: Value = json(
            &std::fs::read_to_string(fixture(&format!("reference/{kind}/ssa.response.json")))
                .unwrap(),
        );
        for v in [&mut ours, &mut real] {
            normalize(v);
        }
        assert_eq!(
            ours, real,
            "{kind} differs from the real server's stored object"
        );
    }
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.ref.example.com",
        "--timeout=20s",
    ])
    .await;
    let out = c
        .kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "-n",
                "ref",
                "-o",
                "json",
                "-f",
                "-",
            ],
            Some(&read_fixture("widget")),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ours = json(&String::from_utf8_lossy(&out.stdout));
    let mut real: Value =
        json(&std::fs::read_to_string(fixture("reference/widget/ssa.response.json")).unwrap());
    normalize(&mut ours);
    normalize(&mut real);
    assert_eq!(ours["spec"], real["spec"]);
}

/// Drop what legitimately differs between two servers.
fn normalize(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(k);
        }
        if let Some(Value::Object(labels)) = meta.get_mut("labels") {
            for k in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                labels.remove(k);
            }
        }
    }
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        for k in ["clusterIP", "clusterIPs", "selector"] {
            if spec.get(k).is_some_and(|s| {
                s.is_string()
                    || s.is_array()
                    || s.get("matchLabels")
                        .is_some_and(|m| m.get("batch.kubernetes.io/controller-uid").is_some())
            }) {
                spec.remove(k);
            }
        }
        if let Some(Value::Object(labels)) = spec
            .get_mut("template")
            .and_then(|t| t.pointer_mut("/metadata/labels"))
        {
            for k in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                labels.remove(k);
            }
        }
    }
    if let Some(obj) = v.as_object_mut() {
        // Status is written by controllers at their own pace.
        if obj
            .get("kind")
            .is_some_and(|k| k != "Namespace" && k != "Service")
        {
            obj.remove("status");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_diff_shows_no_difference() {
    let c = start().await;
    c.ok(&["create", "namespace", "ref"]).await;
    c.apply_yaml(&read_fixture("crd"), &[]).await;
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.ref.example.com",
        "--timeout=20s",
    ])
    .await;
    for kind in [
        "deployment",
        "service",
        "statefulset",
        "job",
        "configmap",
        "secret",
        "cronjob",
        "widget",
    ] {
        let yaml = read_fixture(kind);
        c.apply_yaml(&yaml, &["-n", "ref"]).await;
        let out = c
            .kubectl_stdin(&["diff", "-n", "ref", "-f", "-"], Some(&yaml))
            .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kind}: client-side diff after apply: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = c
            .kubectl_stdin(
                &[
                    "diff",
                    "--server-side",
                    "--force-conflicts",
                    "-n",
                    "ref",
                    "-f",
                    "-",
                ],
                Some(&yaml),
            )
            .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kind}: server-side diff after apply: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And a real change shows up.
    let changed = read_fixture("deployment").replace("replicas: 2", "replicas: 5");
    let out = c
        .kubectl_stdin(&["diff", "-n", "ref", "-f", "-"], Some(&changed))
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("+  replicas: 5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_force() {
    let c = start().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: default\n  labels: {app: demo}\ndata:\n  MODE: demo\n";
    c.apply_yaml(cm, &["--server-side"]).await;
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: default\ndata:\n  MODE: other\n";
    let out = c
        .kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=other-tool",
                "-f",
                "-",
            ],
            Some(other),
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict") && err.contains(".data.MODE") && err.contains("\"kubectl\""),
        "{err}"
    );

    c.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other-tool",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(other),
    )
    .await;
    let obj = json(
        &c.ok(&[
            "get",
            "configmap",
            "demo",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await,
    );
    assert_eq!(obj["data"]["MODE"], "other");
    let managers: Vec<(&str, &Value)> = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["manager"].as_str().unwrap(), &e["fieldsV1"]))
        .collect();
    assert_eq!(managers.len(), 2, "{managers:?}");
    assert_eq!(managers[0].0, "kubectl");
    assert!(
        managers[0].1.get("f:data").is_none(),
        "kubectl lost ownership of data"
    );
    assert_eq!(managers[1].0, "other-tool");

    // Re-applying as kubectl now conflicts with other-tool.
    let out = c
        .kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(cm))
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"other-tool\""));

    // A field dropped from the applied config is removed when nobody else owns it.
    let with_extra = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n  namespace: default\ndata:\n  a: '1'\n  b: '2'\n";
    c.apply_yaml(with_extra, &["--server-side"]).await;
    c.apply_yaml(&with_extra.replace("  b: '2'\n", ""), &["--server-side"])
        .await;
    let obj = json(&c.ok(&["get", "configmap", "mine", "-o", "json"]).await);
    assert_eq!(obj["data"], serde_json::json!({"a": "1"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_in_every_format() {
    let c = start().await;
    c.apply_yaml(&read_fixture("deployment"), &["-n", "default"])
        .await;
    c.ok(&[
        "patch",
        "deployment",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}},"spec":{"minReadySeconds":5}}"#,
    ])
    .await;
    c.ok(&["patch", "deployment", "demo", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"test","path":"/spec/template/spec/containers/0/name","value":"web"}]"#]).await;
    c.ok(&["patch", "deployment", "demo", "--type", "strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"PATCHED","value":"yes"}]}]}}}}"#]).await;
    let d = json(&c.ok(&["get", "deployment", "demo", "-o", "json"]).await);
    assert_eq!(d["metadata"]["labels"]["patched"], "merge");
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    assert_eq!(d["spec"]["replicas"], 3);
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env.as_array().unwrap().len(),
        2,
        "strategic merge kept MODE and added PATCHED: {env}"
    );
    assert_eq!(d["metadata"]["generation"], 4);

    let out = c
        .kubectl(&[
            "patch",
            "deployment",
            "demo",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the server rejected our request"));

    let out = c
        .kubectl(&[
            "patch",
            "deployment",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#,
        ])
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("field is immutable"));

    c.ok(&["scale", "deployment", "demo", "--replicas=4"]).await;
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .await,
        "4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_output_selectors_and_watch() {
    let c = start().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        c.apply_yaml(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{tier: {tier}}}\ndata: {{k: v}}\n"), &[]).await;
    }
    let names = |s: String| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let q = ["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"];
    assert_eq!(
        names(c.ok(&[&q[..], &["-l", "tier=web"]].concat()).await),
        ["a", "b"]
    );
    assert_eq!(
        names(c.ok(&[&q[..], &["-l", "tier!=web,tier"]].concat()).await),
        ["c"]
    );
    assert_eq!(
        names(
            c.ok(&[&q[..], &["-l", "tier in (db, cache)"]].concat())
                .await
        ),
        ["c"]
    );
    assert_eq!(
        names(
            c.ok(&[&q[..], &["--field-selector", "metadata.name=b"]].concat())
                .await
        ),
        ["b"]
    );

    let table = c.ok(&["get", "configmaps", "-l", "tier"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("DATA") && table.contains("AGE"),
        "{table}"
    );

    let yaml = c.ok(&["get", "cm", "a", "-o", "yaml"]).await;
    assert!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:") && yaml.contains("tier: web"),
        "{yaml}"
    );

    // kubectl get -w prints the initial rows and then each change.
    let watcher = {
        let kubeconfig = c.kubeconfig.clone();
        tokio::spawn(async move {
            tokio::process::Command::new(common::kubectl_binary())
                .args([
                    "get",
                    "cm",
                    "-w",
                    "-l",
                    "tier=db",
                    "--output-watch-events",
                    "--request-timeout=10s",
                ])
                .env("KUBECONFIG", kubeconfig)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let mut watcher = watcher;
    let stdout = watcher.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout);
    use tokio::io::AsyncBufReadExt;
    let mut first = String::new();
    lines.read_line(&mut first).await.unwrap();
    c.ok(&["label", "cm", "c", "extra=1"]).await;
    c.ok(&["delete", "cm", "c"]).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        seen.push(
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"], "watch events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_each_propagation_policy() {
    let c = start().await;
    for policy in ["foreground", "background", "orphan"] {
        let owner = format!("owner-{policy}");
        c.ok(&["create", "deployment", &owner, "--image=nginx"])
            .await;
        let uid = c
            .ok(&[
                "get",
                "deployment",
                &owner,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .await;
        let child = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child-{policy}\n  namespace: default\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: true\n"
        );
        c.apply_yaml(&child, &[]).await;
        c.ok(&[
            "delete",
            "deployment",
            &owner,
            &format!("--cascade={policy}"),
            "--timeout=20s",
        ])
        .await;
        assert!(
            !c.kubectl(&["get", "deployment", &owner])
                .await
                .status
                .success(),
            "{policy}: owner gone"
        );
        let child_name = format!("child-{policy}");
        if policy == "orphan" {
            let refs = c
                .ok(&[
                    "get",
                    "cm",
                    &child_name,
                    "-o",
                    "jsonpath={.metadata.ownerReferences}",
                ])
                .await;
            assert_eq!(refs, "", "orphaned child lost its owner reference");
        } else {
            common::eventually(&format!("{policy}: child collected"), || async {
                !c.kubectl(&["get", "cm", &child_name])
                    .await
                    .status
                    .success()
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_simulated_workloads_and_namespace_deletion() {
    let c = start().await;
    c.ok(&["create", "namespace", "work"]).await;
    c.apply_yaml(&read_fixture("deployment"), &["-n", "work"])
        .await;
    c.apply_yaml(&read_fixture("job"), &["-n", "work"]).await;
    c.ok(&[
        "wait",
        "-n",
        "work",
        "--for=condition=Available",
        "deployment/demo",
        "--timeout=20s",
    ])
    .await;
    c.ok(&[
        "wait",
        "-n",
        "work",
        "--for=condition=Complete",
        "job/demo",
        "--timeout=20s",
    ])
    .await;
    let ready = c
        .ok(&[
            "get",
            "deployment",
            "demo",
            "-n",
            "work",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .await;
    assert_eq!(ready, "2");

    c.ok(&["delete", "namespace", "work", "--timeout=30s"])
        .await;
    assert!(
        !c.kubectl(&["get", "namespace", "work"])
            .await
            .status
            .success()
    );
    let out = c
        .kubectl(&["create", "configmap", "late", "-n", "work"])
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_kubernetes_statuses() {
    let c = start().await;
    let out = c.kubectl(&["get", "configmap", "does-not-exist"]).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("configmaps \"does-not-exist\" not found")
    );
    c.ok(&["create", "configmap", "dup"]).await;
    let out = c.kubectl(&["create", "configmap", "dup"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("configmaps \"dup\" already exists"));
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n  namespace: default\n")).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("a lowercase RFC 1123 subdomain"));
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: default\ndta: {a: b}\n")).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"dta\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let typo = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: typo\n  namespace: default\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        imagee: nginx\n";
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(typo)).await;
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown field \"spec.template.spec.containers[0].imagee\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c
        .kubectl_stdin(&["apply", "--validate=false", "-f", "-"], Some(typo))
        .await;
    assert!(
        out.status.success(),
        "without validation the unknown field is dropped"
    );
    let out = c.kubectl(&["--token=wrong", "get", "namespaces"]).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_follow_their_schema() {
    let c = start().await;
    c.apply_yaml(&read_fixture("crd"), &[]).await;
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.ref.example.com",
        "--timeout=20s",
    ])
    .await;
    c.apply_yaml(&read_fixture("widget"), &["-n", "default"])
        .await;
    let w = json(&c.ok(&["get", "widget", "demo", "-o", "json"]).await);
    assert_eq!(w["spec"]["replicas"], 1, "schema default applied");
    let table = c.ok(&["get", "widgets"]).await;
    assert!(table.contains("COLOR") && table.contains("red"), "{table}");

    let bad = "apiVersion: ref.example.com/v1\nkind: Widget\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  color: purple\n  tags: [a, a]\n";
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(bad)).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unsupported value: \"purple\"") && err.contains("Duplicate value"),
        "{err}"
    );

    c.ok(&["scale", "widget", "demo", "--replicas=4"]).await;
    assert_eq!(
        c.ok(&["get", "widget", "demo", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "4"
    );
    c.ok(&[
        "patch",
        "widget",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":4}}"#,
    ])
    .await;
    assert_eq!(
        c.ok(&["get", "widget", "demo", "-o", "jsonpath={.status.replicas}"])
            .await,
        "4"
    );
    let out = c
        .kubectl(&[
            "patch",
            "widget",
            "demo",
            "--type=strategic",
            "-p",
            r#"{"spec":{"color":"blue"}}"#,
        ])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown format") || !out.status.success()
    );

    c.ok(&["delete", "crd", "widgets.ref.example.com"]).await;
    let out = c
        .kubectl(&[
            "get",
            "--raw",
            "/apis/ref.example.com/v1/namespaces/default/widgets",
        ])
        .await;
    assert!(
        !out.status.success(),
        "resources of a deleted CRD are no longer served"
    );
}

/// What kube-controller-manager and a kubelet would make, as `kubectl get` shows it: a
/// Deployment's ReplicaSet and Pods, a new ReplicaSet for a new template with the old one
/// scaled to zero, a deleted Pod replaced, StatefulSet Pods by ordinal, a Job's Pod run to
/// completion — and all of it gone with its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_own_replica_sets_and_pods_as_in_a_real_cluster() {
    let c = start().await;
    c.ok(&["create", "namespace", "work"]).await;
    for kind in ["deployment", "statefulset", "job"] {
        c.apply_yaml(&read_fixture(kind), &["-n", "work"]).await;
    }
    let names = |kind: &'static str, selector: &'static str| {
        let c = &c;
        async move {
            let out = c
                .ok(&[
                    "get",
                    kind,
                    "-n",
                    "work",
                    "-l",
                    selector,
                    "-o",
                    "jsonpath={.items[*].metadata.name}",
                ])
                .await;
            let mut names: Vec<String> = out.split_whitespace().map(str::to_string).collect();
            names.sort();
            names
        }
    };
    common::eventually("two Running Pods of the Deployment", || async {
        let out = c
            .ok(&[
                "get",
                "pods",
                "-n",
                "work",
                "-l",
                "app=demo",
                "--field-selector=status.phase=Running",
                "-o",
                "name",
            ])
            .await;
        out.lines().count() == 2
    })
    .await;
    let replica_sets = names("replicasets", "app=demo").await;
    assert_eq!(replica_sets.len(), 1, "{replica_sets:?}");
    let rs = json(
        &c.ok(&["get", "rs", &replica_sets[0], "-n", "work", "-o", "json"])
            .await,
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let pod_name = names("pods", "app=demo").await[0].clone();
    let pod = json(
        &c.ok(&["get", "pod", &pod_name, "-n", "work", "-o", "json"])
            .await,
    );
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["name"],
        rs["metadata"]["name"]
    );
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
    assert_eq!(
        pod["metadata"]["labels"]["pod-template-hash"],
        rs["metadata"]["labels"]["pod-template-hash"]
    );

    // A deleted Pod is replaced by another.
    c.ok(&["delete", "pod", &pod_name, "-n", "work"]).await;
    common::eventually("the Pod replaced", || async {
        let pods = names("pods", "app=demo").await;
        pods.len() == 2 && !pods.contains(&pod_name)
    })
    .await;

    // A new template: a second ReplicaSet at revision 2, the first scaled to zero.
    c.ok(&[
        "set",
        "image",
        "deployment/demo",
        "web=nginx:1.28",
        "-n",
        "work",
    ])
    .await;
    common::eventually("the rollout's ReplicaSets", || async {
        let out = c
            .ok(&["get", "rs", "-n", "work", "-l", "app=demo", "-o", "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision}={.spec.replicas} {end}"])
            .await;
        let mut pairs: Vec<&str> = out.split_whitespace().collect();
        pairs.sort();
        pairs == ["1=0", "2=2"]
    })
    .await;
    common::eventually("the new Pods only", || async {
        let out = c
            .ok(&[
                "get",
                "pods",
                "-n",
                "work",
                "-l",
                "app=demo",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ])
            .await;
        out.split_whitespace().collect::<Vec<_>>() == ["nginx:1.28", "nginx:1.28"]
    })
    .await;

    // StatefulSet Pods by ordinal; a Job's Pod completes.
    common::eventually("the StatefulSet's Pod", || async {
        names("pods", "app=demo-db").await == ["demo-0"]
    })
    .await;
    common::eventually("the Job's Pod Succeeded", || async {
        let out = c
            .ok(&[
                "get",
                "pods",
                "-n",
                "work",
                "-l",
                "job-name=demo",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ])
            .await;
        out == "Succeeded"
    })
    .await;

    // Gone with their owner.
    c.ok(&["delete", "deployment", "demo", "-n", "work"]).await;
    common::eventually("ReplicaSets and Pods collected", || async {
        names("replicasets", "app=demo").await.is_empty()
            && names("pods", "app=demo").await.is_empty()
    })
    .await;
}
