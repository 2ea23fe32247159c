//! Scale benchmark of the local cluster through a kube-rs client over HTTPS:
//! N ConfigMaps of 1 KiB created, listed and watched; writes/s, list time and resident memory
//! per stored object beyond its JSON size.
//!
//! `cargo bench -p tiphys-local-cluster --bench scale` (N = 100000; set TIPHYS_BENCH_OBJECTS).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use tiphys_local_cluster::{Config, LocalCluster};

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn config_map(i: usize, payload: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("cm-{i:06}")),
            ..Default::default()
        },
        data: Some([("payload".to_string(), payload.to_string())].into()),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("TIPHYS_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let concurrency = 32;
    let dir = tempfile::tempdir()?;
    let cluster = LocalCluster::start(Config {
        simulate: None,
        ..Default::default()
    })
    .await?;
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?,
    )?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let payload = "x".repeat(1024);

    let rss_before = resident_bytes();
    let (objects_before, json_before) = cluster.footprint();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let cm = config_map(i, &payload);
            async move { api.create(&PostParams::default(), &cm).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let write_time = started.elapsed();
    let rss_after = resident_bytes();
    let (objects_after, json_after) = cluster.footprint();
    let stored = objects_after - objects_before;
    let json_bytes = json_after - json_before;

    let started = Instant::now();
    let full = api.list(&ListParams::default()).await?;
    let list_time = started.elapsed();
    assert_eq!(full.items.len(), n);
    let started = Instant::now();
    let mut paged = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        paged += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let paged_time = started.elapsed();
    assert_eq!(paged, n);

    // Watch: time from the first of 1,000 updates to the last event received.
    let updates = 1_000.min(n);
    let rv = full.metadata.resource_version.clone().unwrap_or_default();
    let mut stream = api
        .watch(&WatchParams::default().timeout(120), &rv)
        .await?
        .boxed();
    let started = Instant::now();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..updates {
                let patch = serde_json::json!({"data": {"n": i.to_string()}});
                api.patch(
                    &format!("cm-{i:06}"),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
            }
            anyhow::Ok(())
        })
    };
    let mut seen = 0;
    while seen < updates {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await? {
            Some(Ok(WatchEvent::Modified(_))) => seen += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    writer.await??;
    let watch_time = started.elapsed();

    let per_object_rss = rss_after.saturating_sub(rss_before) as f64 / stored as f64;
    let per_object_json = json_bytes as f64 / stored as f64;
    println!(
        "local cluster scale benchmark ({n} ConfigMaps of 1 KiB, kube-rs over HTTPS, {concurrency} in flight)"
    );
    println!(
        "  create:   {:>8.0} writes/s ({:.1} s)",
        n as f64 / write_time.as_secs_f64(),
        write_time.as_secs_f64()
    );
    println!(
        "  list:     {:>8.0} ms for all {n} in one response",
        list_time.as_secs_f64() * 1e3
    );
    println!(
        "  list:     {:>8.0} ms paged by 500",
        paged_time.as_secs_f64() * 1e3
    );
    println!(
        "  watch:    {:>8.0} events/s ({updates} updates written and received)",
        updates as f64 / watch_time.as_secs_f64()
    );
    println!(
        "  memory:   {:>8.0} B resident per object, of which {:.0} B is its JSON",
        per_object_rss, per_object_json
    );
    println!(
        "  overhead: {:>8.0} B per object beyond its JSON (goal: at most 2048)",
        per_object_rss - per_object_json
    );
    Ok(())
}
