//! Writing an Application: every write is optimistic (it names the resourceVersion it was
//! computed from, and the API server refuses it with 409 Conflict when the object moved on),
//! and the controller never works from a copy older than its own last write.
//!
//! The watch cache lags behind writes: right after the controller writes an Application, the
//! store may still hold the version before it. Reconciling from that copy would redo a step
//! (create a hook a second time) and — were the write unguarded — put an older
//! `operationState` back over a finished one. So each write remembers the version it
//! replaced; a reconcile that finds the store still at a replaced version works from the
//! written copy instead, and any write computed from an outdated copy fails and is redone from
//! a fresh read.

use std::collections::HashSet;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tiphys_model::Application;

use crate::Controller;

/// The newest copy of an app the controller wrote or read itself, and the versions it knows
/// are older.
#[derive(Default)]
pub struct Freshest {
    copy: Option<Arc<Application>>,
    superseded: HashSet<String>,
}

impl Freshest {
    /// Remember `app` as newer than `replaced`.
    fn record(&mut self, replaced: Option<&str>, app: Application) {
        if let Some(rv) = replaced {
            self.superseded.insert(rv.to_string());
        }
        self.copy = Some(Arc::new(app));
    }

    /// The copy to reconcile from: `stored` unless it is a version this controller already
    /// replaced.
    fn choose(&mut self, stored: Arc<Application>) -> Arc<Application> {
        let stored_rv = stored.metadata.resource_version.as_deref().unwrap_or("");
        match self.stored(stored_rv) {
            Some(mine) => mine,
            None => stored,
        }
    }

    /// The store now holds version `rv`: once that is not a version this controller
    /// replaced, the store caught up with (or went past) what it wrote, and the written copy
    /// is let go. Returns the written copy while it is still the newer one.
    pub fn stored(&mut self, rv: &str) -> Option<Arc<Application>> {
        let mine = self.copy.as_ref()?;
        if self.superseded.contains(rv) {
            return Some(mine.clone());
        }
        self.copy = None;
        self.superseded.clear();
        None
    }
}

/// Whether a write failed because the object changed since it was read.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The copy of `name` to reconcile from; None when it no longer exists.
pub fn freshest(c: &Controller, name: &str) -> Option<Arc<Application>> {
    let key = ObjectRef::new(name).within(&c.settings.namespace);
    let stored = c.apps.get(&key)?;
    let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    Some(
        memory
            .entry(name.to_string())
            .or_default()
            .freshest
            .choose(stored),
    )
}

/// Read `name` from the API server (after a conflict); None when it is gone.
pub async fn reread(c: &Controller, name: &str) -> Result<Option<Arc<Application>>, kube::Error> {
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    let Some(app) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    let freshest = &mut memory.entry(name.to_string()).or_default().freshest;
    freshest.record(None, app.clone());
    Ok(Some(Arc::new(app)))
}

/// Apply JSON patch `ops` to `app`, only if the Application is still at `app`'s version.
pub async fn patch(
    c: &Controller,
    app: &Application,
    mut ops: Vec<Value>,
) -> Result<Application, kube::Error> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let version = app.metadata.resource_version.clone();
    ops.insert(
        0,
        json!({"op": "replace", "path": "/metadata/resourceVersion", "value": version}),
    );
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(kube::Error::SerdeError)?;
    let api: Api<Application> = Api::namespaced(c.client.clone(), &c.settings.namespace);
    let mut written = match api
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
    {
        // A patch computed from an outdated copy can fail before the version check does
        // (removing an `.operation` someone already removed): when the Application moved
        // on, that is a conflict like any other, and the reconcile is redone.
        Err(kube::Error::Api(status)) if status.code == 422 => {
            let current = api.get_opt(&name).await?;
            let moved = current.is_some_and(|a| a.metadata.resource_version != version);
            return Err(kube::Error::Api(if moved {
                Box::new(kube::core::Status {
                    code: 409,
                    reason: "Conflict".into(),
                    message: format!("Application {name} changed: {}", status.message),
                    ..Default::default()
                })
            } else {
                status
            }));
        }
        other => other?,
    };
    written.metadata.managed_fields = None;
    let stored = c
        .apps
        .get(&ObjectRef::new(&name).within(&c.settings.namespace))
        .and_then(|a| a.metadata.resource_version.clone());
    let mut memory = c.memory.lock().unwrap_or_else(|p| p.into_inner());
    let freshest = &mut memory.entry(name).or_default().freshest;
    freshest.record(version.as_deref(), written.clone());
    // The watch may have delivered this write before the write returned: the store then holds
    // what was written, and a copy kept now would only be let go at the app's next reconcile.
    if let Some(rv) = stored.filter(|rv| written.metadata.resource_version.as_ref() == Some(rv)) {
        freshest.stored(&rv);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rv: &str) -> Application {
        let mut app = Application::default();
        app.metadata.resource_version = Some(rv.into());
        app
    }

    #[test]
    fn a_store_behind_the_controllers_writes_is_not_used() {
        let mut f = Freshest::default();
        assert_eq!(
            f.choose(Arc::new(at("1"))).metadata.resource_version,
            Some("1".into())
        );
        f.record(Some("1"), at("2"));
        f.record(Some("2"), at("3"));
        for stale in ["1", "2"] {
            assert_eq!(
                f.choose(Arc::new(at(stale))).metadata.resource_version,
                Some("3".into()),
                "store at {stale}"
            );
        }
        // Caught up, or someone else wrote after us: the store wins from then on.
        assert_eq!(
            f.choose(Arc::new(at("7"))).metadata.resource_version,
            Some("7".into())
        );
        assert_eq!(
            f.choose(Arc::new(at("1"))).metadata.resource_version,
            Some("1".into())
        );
    }
}
