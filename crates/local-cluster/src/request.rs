//! Reading requests: which endpoint a path names, query parameters, body decoding and
//! response content negotiation.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::protobuf;
use crate::resources::{Registry, ResourceType};

/// What a request path addresses.
#[derive(Debug)]
pub enum Endpoint {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3Root,
    /// `/openapi/v3/<api/v1 | apis/group/version>`
    OpenApiV3(String),
    Resource(ResourcePath),
    Unknown,
}

/// A resource URL: `/{prefix}/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn route(path: &str, registry: &Registry) -> Endpoint {
    let path = path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Endpoint::Version,
        ["healthz" | "livez" | "readyz", ..] => Endpoint::Health,
        ["api"] => Endpoint::CoreVersions,
        ["apis"] => Endpoint::Groups,
        ["apis", group] => Endpoint::Group(group.to_string()),
        ["api", version] => Endpoint::GroupVersion(String::new(), version.to_string()),
        ["apis", group, version] => Endpoint::GroupVersion(group.to_string(), version.to_string()),
        ["openapi", "v2"] => Endpoint::OpenApiV2,
        ["openapi", "v3"] => Endpoint::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Endpoint::OpenApiV3(rest.join("/")),
        ["api", version, rest @ ..] => resource_path("", version, rest, registry),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest, registry),
        _ => Endpoint::Unknown,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str], registry: &Registry) -> Endpoint {
    let known = |plural: &str| registry.lookup(group, version, plural);
    let (namespace, rest) = match rest {
        // /namespaces/{ns}/{resource}... unless the third segment is a namespace subresource.
        ["namespaces", ns, resource, more @ ..]
            if group.is_empty() && known(resource).is_some() =>
        {
            (Some(ns.to_string()), [&[*resource][..], more].concat())
        }
        ["namespaces", ns, resource, more @ ..] if !group.is_empty() => {
            (Some(ns.to_string()), [&[*resource][..], more].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let Some(plural) = rest.first() else {
        return Endpoint::Unknown;
    };
    let Some(rt) = known(plural) else {
        return Endpoint::Unknown;
    };
    if namespace.is_some() && !rt.namespaced {
        return Endpoint::Unknown;
    }
    let name = rest.get(1).map(|s| percent_decode(s));
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Endpoint::Unknown;
    }
    Endpoint::Resource(ResourcePath {
        rt,
        namespace,
        name,
        subresource,
    })
}

pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Query parameters (the last value wins, as Go's `url.Values.Get` does for us).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            );
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "true" || v == "1")
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| v == "All")
    }
}

/// The media type of a request body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyFormat {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

pub fn body_format(content_type: Option<&str>) -> Option<BodyFormat> {
    let ct = content_type.unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    Some(match media {
        "application/json" | "" | "*/*" => BodyFormat::Json,
        "application/yaml" => BodyFormat::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyFormat::Protobuf,
        "application/json-patch+json" => BodyFormat::JsonPatch,
        "application/merge-patch+json" => BodyFormat::MergePatch,
        "application/strategic-merge-patch+json" => BodyFormat::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => BodyFormat::ApplyPatch,
        _ => return None,
    })
}

/// Decode an object body (JSON, YAML or Protobuf) into JSON.
pub fn decode_object(body: &[u8], format: BodyFormat, expected_kind: &str) -> ApiResult<Value> {
    match format {
        BodyFormat::Protobuf => protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the object provided is unrecognized (must be of type {expected_kind}): {e}"))
        }),
        BodyFormat::Yaml | BodyFormat::ApplyPatch => decode_yaml_or_json(body, expected_kind),
        _ => serde_json::from_slice(body).map_err(|e| {
            let shown: String = String::from_utf8_lossy(body).chars().take(30).collect();
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {expected_kind}): couldn't get version/kind; json parse error: {e} ({shown} ...)"
            ))
        }),
    }
}

fn decode_yaml_or_json(body: &[u8], expected_kind: &str) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {expected_kind}): {e}"
        ))
    })
}

/// How to write the response body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Negotiated {
    Json,
    Yaml,
    /// `application/json;as=Table;g=meta.k8s.io;v=v1`
    Table,
    /// `application/json;as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1`: metadata only.
    Metadata,
}

pub fn negotiate(accept: Option<&str>) -> ApiResult<Negotiated> {
    let Some(accept) = accept else {
        return Ok(Negotiated::Json);
    };
    let mut saw_any = false;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        match media {
            "application/json" if params.contains(&"as=Table") && params.contains(&"v=v1") => {
                return Ok(Negotiated::Table);
            }
            "application/json"
                if (params.contains(&"as=PartialObjectMetadataList")
                    || params.contains(&"as=PartialObjectMetadata"))
                    && params.contains(&"v=v1") =>
            {
                return Ok(Negotiated::Metadata);
            }
            "application/json" if params.iter().any(|p| p.starts_with("as=")) => {}
            "application/json" | "*/*" | "application/*" | "" => return Ok(Negotiated::Json),
            "application/yaml" => return Ok(Negotiated::Yaml),
            // We read Protobuf but answer JSON; clients that offer Protobuf also take JSON.
            "application/vnd.kubernetes.protobuf" => saw_any = true,
            _ => {}
        }
    }
    if saw_any {
        Ok(Negotiated::Json)
    } else {
        Err(ApiError::not_acceptable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_namespaced_and_cluster_paths() {
        let r = Registry::default();
        let Endpoint::Resource(p) = route("/api/v1/namespaces/ref/configmaps/demo", &r) else {
            panic!()
        };
        assert_eq!(
            (
                p.rt.plural.as_str(),
                p.namespace.as_deref(),
                p.name.as_deref()
            ),
            ("configmaps", Some("ref"), Some("demo"))
        );
        let Endpoint::Resource(p) = route("/api/v1/namespaces/ref", &r) else {
            panic!()
        };
        assert_eq!(
            (p.rt.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("ref"))
        );
        let Endpoint::Resource(p) = route("/api/v1/namespaces/ref/status", &r) else {
            panic!()
        };
        assert_eq!(
            (p.name.as_deref(), p.subresource.as_deref()),
            (Some("ref"), Some("status"))
        );
        let Endpoint::Resource(p) = route("/apis/apps/v1/namespaces/ref/deployments/web/scale", &r)
        else {
            panic!()
        };
        assert_eq!(p.subresource.as_deref(), Some("scale"));
        let Endpoint::Resource(p) = route("/apis/apps/v1/deployments", &r) else {
            panic!()
        };
        assert!(p.namespace.is_none() && p.name.is_none());
        assert!(matches!(
            route("/apis/nope/v1/things", &r),
            Endpoint::Unknown
        ));
    }

    #[test]
    fn negotiation_prefers_table_then_json() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(table)).unwrap(), Negotiated::Table);
        let metadata = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(negotiate(Some(metadata)).unwrap(), Negotiated::Metadata);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")).unwrap(),
            Negotiated::Json
        );
        assert_eq!(
            negotiate(Some("application/yaml")).unwrap(),
            Negotiated::Yaml
        );
        assert!(negotiate(Some("application/xml")).is_err());
    }
}
