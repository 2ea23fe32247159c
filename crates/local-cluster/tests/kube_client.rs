//! The local cluster through kube-rs: typed and dynamic clients, discovery, server-side
//! apply, and kube-runtime's watcher/reflector under concurrent writes.

mod common;

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// `(code, reason, message)` of an API error.
struct ApiFailure {
    code: u16,
    reason: String,
    message: String,
}

fn api_error(e: kube::Error) -> ApiFailure {
    match e {
        kube::Error::Api(status) => ApiFailure {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_and_errors() {
    let c = common::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &cm("a", &[("k", "v")]))
        .await
        .unwrap();
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let e = api_error(
        cms.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));

    let mut updated = created.clone();
    updated.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let updated = cms
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion increases");

    // Writing with the stale resourceVersion conflicts.
    let e = api_error(
        cms.replace("a", &PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));

    let e = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));

    let e = api_error(
        cms.create(&PostParams::default(), &cm("Not_Valid", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    let ns_missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let e = api_error(
        ns_missing
            .create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    assert!(e.message.contains("namespaces \"nope\" not found"));

    // generateName
    let mut generated = cm("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(generated.metadata.name.unwrap().starts_with("gen-"));

    // Paged list.
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("page-{i}"), &[]))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("continue token");
    let rest = cms
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap();
    let total = first.items.len() + rest.items.len();
    assert_eq!(
        total,
        cms.list(&ListParams::default()).await.unwrap().items.len()
    );

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_bumps_only_on_spec_changes_and_status_is_separate() {
    let c = common::start_with(tiphys_local_cluster::Config {
        simulate: None,
        ..Default::default()
    })
    .await;
    let client = c.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    let pp = PatchParams::apply("test").force();
    let d = deployments
        .patch("web", &pp, &Patch::Apply(&d))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(1), "defaulted");

    let labelled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    let scaled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    // The main resource ignores status; /status ignores the rest.
    let ignored = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert!(ignored.status.is_none_or(|s| s.replicas.is_none()));
    let status = deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}, "spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().replicas, Some(9));
    assert_eq!(status.spec.unwrap().replicas, Some(3));

    // A write that changes nothing keeps the resourceVersion.
    let before = deployments.get("web").await.unwrap();
    let after = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_objects_through_discovery() {
    let c = common::start().await;
    let client = c.client().await;
    let crd: DynamicObject = serde_json::from_value(yaml(
        &std::fs::read_to_string(common::fixture("reference/crd/input.yaml")).unwrap(),
    ))
    .unwrap();
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
            ),
            "customresourcedefinitions",
        ),
    );
    crds.patch(
        "widgets.ref.example.com",
        &PatchParams::apply("test"),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    common::eventually("CRD established", || async {
        crds.get("widgets.ref.example.com").await.is_ok_and(|o| {
            o.data["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
        })
    })
    .await;

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Widget")
        .expect("Widget discovered");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(discovery.groups().any(|g| g.name() == "apps"));

    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ref.example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"color": "green"}
    }))
    .unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.data["spec"]["replicas"], 1);
    let listed = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let e = api_error(
        widgets
            .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "ref.example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {}})).unwrap())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
}

/// The fixtures are YAML, parsed as a client would.
fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("fixture YAML")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_through_kube() {
    let c = common::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "1"}});
    cms.patch(
        "shared",
        &PatchParams::apply("tiphys"),
        &Patch::Apply(&mine),
    )
    .await
    .unwrap();
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "2"}});
    let e = api_error(
        cms.patch(
            "shared",
            &PatchParams::apply("someone"),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains(".data.a"));
    let forced = cms
        .patch(
            "shared",
            &PatchParams::apply("someone").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "2");

    let dry = cms
        .patch("shared", &PatchParams::apply("someone").dry_run(), &Patch::Apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "3"}})))
        .await
        .unwrap();
    assert_eq!(dry.data.unwrap()["a"], "3");
    assert_eq!(
        cms.get("shared").await.unwrap().data.unwrap()["a"],
        "2",
        "dry run stored nothing"
    );
}

/// list+watch through kube-runtime's reflector converges on the true state while several
/// writers create, update and delete concurrently: nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_converges_under_concurrent_writes() {
    let c = common::start().await;
    let client = c.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "load"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "load");

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream =
        reflector(writer, watcher(cms.clone(), watcher::Config::default())).applied_objects();
    let driver = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            event.expect("watch stream stays healthy");
        }
    });
    reader.wait_until_ready().await.unwrap();

    let mut writers = Vec::new();
    for w in 0..4 {
        let cms = cms.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                let name = format!("w{w}-{i}");
                cms.create(&PostParams::default(), &cm(&name, &[("v", "0")]))
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    cms.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"v": "1"}})),
                    )
                    .await
                    .unwrap();
                }
                if i % 5 == 0 {
                    cms.delete(&name, &DeleteParams::default()).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let truth = cms.list(&ListParams::default()).await.unwrap();
    let expected: BTreeMap<String, String> = truth
        .items
        .iter()
        .map(|o| {
            (
                o.metadata.name.clone().unwrap(),
                o.data.as_ref().unwrap()["v"].clone(),
            )
        })
        .collect();
    assert_eq!(expected.len(), 4 * 40 - 4 * 8);
    common::eventually("reflector matches the list", || {
        let reader = reader.clone();
        let expected = expected.clone();
        async move {
            let seen: BTreeMap<String, String> = reader
                .state()
                .iter()
                .map(|o| {
                    (
                        o.metadata.name.clone().unwrap(),
                        o.data.as_ref().unwrap()["v"].clone(),
                    )
                })
                .collect();
            seen == expected
        }
    })
    .await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_a_resource_version() {
    let c = common::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = cms
        .create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    cms.create(&PostParams::default(), &cm("two", &[]))
        .await
        .unwrap();
    cms.delete("one", &DeleteParams::default()).await.unwrap();

    let params = kube::api::WatchParams::default().timeout(5);
    let mut stream = cms.watch(&params, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            kube::api::WatchEvent::Added(o) => {
                seen.push(format!("ADDED {}", o.metadata.name.unwrap()))
            }
            kube::api::WatchEvent::Deleted(o) => {
                seen.push(format!("DELETED {}", o.metadata.name.unwrap()))
            }
            kube::api::WatchEvent::Modified(o) => {
                seen.push(format!("MODIFIED {}", o.metadata.name.unwrap()))
            }
            _ => {}
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, ["ADDED two", "DELETED one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_an_expired_resource_version_gets_410_in_band() {
    let c = common::start_with(tiphys_local_cluster::Config {
        watch_history: 10,
        ..Default::default()
    })
    .await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = cms
        .create(&PostParams::default(), &cm("old", &[]))
        .await
        .unwrap();
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("n{i}"), &[]))
            .await
            .unwrap();
    }
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&kube::api::WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(kube::api::WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.contains("too old resource version"));
        }
        other => panic!("expected an in-band 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_policies_and_finalizers_through_kube() {
    let c = common::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let mut child = cm("child", &[]);
    child.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.clone().unwrap(),
            block_owner_deletion: Some(true),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &child).await.unwrap();

    // Foreground: the owner stays (with deletionTimestamp) until its dependents are gone.
    let pending = cms
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let pending = pending
        .left()
        .expect("foreground deletion returns the object");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(
        pending
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    common::eventually("owner and child gone", || async {
        cms.get_opt("owner").await.unwrap().is_none()
            && cms.get_opt("child").await.unwrap().is_none()
    })
    .await;

    // A custom finalizer keeps an object until it is removed.
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let still = cms.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    let e = api_error(
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403, "no new finalizers on a deleted object");
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "gone once its last finalizer is removed"
    );

    // Deleting a namespace deletes its contents, then the namespace.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let doomed: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    doomed
        .create(&PostParams::default(), &cm("inside", &[]))
        .await
        .unwrap();
    let ns = namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("namespace object");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let e = api_error(
        doomed
            .create(&PostParams::default(), &cm("late", &[]))
            .await
            .unwrap_err(),
    );
    assert!(
        e.code == 403 || e.code == 404,
        "no new content in a terminating namespace"
    );
    common::eventually("namespace gone", || async {
        namespaces.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_lists_and_gets() {
    let c = common::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["m1", "m2", "m3"] {
        cms.create(&PostParams::default(), &cm(name, &[("k", "v")]))
            .await
            .unwrap();
    }
    let all = cms.list_metadata(&ListParams::default()).await.unwrap();
    let names: Vec<String> = all
        .items
        .iter()
        .filter_map(|i| i.metadata.name.clone())
        .filter(|n| n.starts_with('m'))
        .collect();
    assert_eq!(names, vec!["m1", "m2", "m3"]);
    let page = cms
        .list_metadata(&ListParams::default().limit(2))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.metadata.continue_.is_some());
    let one = cms.get_metadata("m2").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("m2"));
    assert!(one.metadata.uid.is_some());
}
