//! Identity of an object inside one cluster.

use std::fmt;

use serde_json::Value;

/// Group, kind, namespace and name: what identifies an object across API versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn of(obj: &Value) -> ObjectKey {
        let s = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let api_version = s("/apiVersion");
        ObjectKey {
            group: group_of(&api_version).to_string(),
            kind: s("/kind"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
        }
    }

    /// The value of Argo CD's `argocd.argoproj.io/tracking-id` annotation for this object:
    /// `app:group/Kind:namespace/name`.
    pub fn tracking_id(&self, app: &str) -> String {
        format!(
            "{app}:{}/{}:{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

/// The group of an `apiVersion` ("" for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl fmt::Display for ObjectKey {
    /// `deployment.apps/web` or `payments/deployment.apps/web`, like kubectl.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}.{}/{}", self.group, self.name)
        }
    }
}

/// The version of an `apiVersion` (`v1` of `apps/v1`).
pub fn split_version(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or(api_version, |(_, v)| v)
}

/// Parse a tracking id back into (app, key); None when malformed.
pub fn parse_tracking_id(id: &str) -> Option<(String, ObjectKey)> {
    let (app, rest) = id.split_once(':')?;
    let (group_kind, namespace_name) = rest.split_once(':')?;
    let (group, kind) = group_kind.split_once('/')?;
    let (namespace, name) = namespace_name.split_once('/')?;
    Some((
        app.to_string(),
        ObjectKey {
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_round_trip() {
        let key = ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "payments".into(),
            name: "web".into(),
        };
        let id = key.tracking_id("payment-service");
        assert_eq!(id, "payment-service:apps/Deployment:payments/web");
        assert_eq!(
            parse_tracking_id(&id),
            Some(("payment-service".into(), key.clone()))
        );
        let cluster = ObjectKey {
            kind: "Namespace".into(),
            name: "payments".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_tracking_id(&cluster.tracking_id("a")),
            Some(("a".into(), cluster))
        );
        assert_eq!(key.to_string(), "payments/deployment.apps/web");
    }
}
