//! Create an object the way Argo CD's API creates Applications and ApplicationSets: an
//! existing one that already says the same is left alone, one that says something else is
//! refused unless `upsert`, and an upsert is written over the version read (retried when
//! someone wrote in between).

use anyhow::{Context, bail};
use kube::api::{Api, PostParams};

/// `merged(existing)` is what to write over `existing`, or `None` when nothing differs.
pub async fn create_or_upsert<K>(
    api: &Api<K>,
    object: &K,
    upsert: bool,
    merged: impl Fn(&K) -> Option<K>,
) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let name = object.meta().name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), object).await {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e).with_context(|| format!("creating {kind} {name}")),
    }
    for _ in 0..10 {
        let existing = api
            .get(&name)
            .await
            .with_context(|| format!("{kind} {name}"))?;
        let Some(updated) = merged(&existing) else {
            return Ok(());
        };
        if !upsert {
            bail!(
                "{kind} {name}: existing {kind} spec is different, use upsert flag to force update"
            );
        }
        match api.replace(&name, &PostParams::default(), &updated).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e).with_context(|| format!("updating {kind} {name}")),
        }
    }
    bail!("{kind} {name} kept changing; try again")
}
