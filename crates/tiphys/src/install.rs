//! `tiphys install`: CRDs, the control namespace and the `default` AppProject, into any
//! cluster. Server-side apply with field manager `tiphys`, so running it again is a no-op.

use std::time::Duration;

use anyhow::Context;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::kubeconfig::ClientArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// The control namespace Applications live in.
    #[arg(long, short = 'n', default_value = "argocd")]
    namespace: String,
}

const FIELD_MANAGER: &str = "tiphys";

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

async fn apply(api: &Api<DynamicObject>, manifest: Value) -> anyhow::Result<()> {
    let name = manifest["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = manifest["kind"].as_str().unwrap_or_default().to_string();
    let object: DynamicObject =
        serde_json::from_value(manifest).with_context(|| format!("{kind} {name}"))?;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.client.client().await?;
    install(client, &args.namespace, true).await
}

/// Install into the cluster behind `client`; `verbose` prints what became ready.
pub async fn install(client: kube::Client, namespace: &str, verbose: bool) -> anyhow::Result<()> {
    let say = |line: String| {
        if verbose {
            println!("{line}");
        }
    };
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
    );
    for crd in tiphys_model::crd::all() {
        apply(&crds, crd).await?;
    }
    for crd in tiphys_model::crd::all() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        wait_established(&crds, &name).await?;
        say(format!("customresourcedefinition/{name} established"));
    }

    let namespaces: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource("", "v1", "Namespace", "namespaces"),
    );
    apply(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .await?;
    say(format!("namespace/{namespace} ready"));

    let projects: Api<DynamicObject> = Api::namespaced_with(
        client,
        namespace,
        &api_resource(
            tiphys_model::GROUP,
            tiphys_model::VERSION,
            "AppProject",
            "appprojects",
        ),
    );
    apply(
        &projects,
        serde_json::to_value(tiphys_model::default_project(namespace))?,
    )
    .await?;
    say(format!("appproject/default ready in {namespace}"));
    Ok(())
}

/// Poll until the CRD reports Established (a real API server takes a moment).
async fn wait_established(crds: &Api<DynamicObject>, name: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let crd = crds
            .get(name)
            .await
            .with_context(|| format!("reading CRD {name}"))?;
        let established = crd.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "CRD {name} not Established after 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
