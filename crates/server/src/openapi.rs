//! The OpenAPI 3 description of the REST API, served at `/swagger.json`.
//!
//! Request bodies are described from the same Rust types the handlers deserialize, so the
//! document cannot drift from what the server accepts; the route table below is checked
//! against the router by a test. Clients (and the schemathesis fuzzing test) read it.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use tiphys_model::schema::structural;

use crate::api::session;
use crate::api::{
    account, app_resources, applications, applicationsets, clusters, projects, repositories,
};

/// An Argo CD resource as a request body: `metadata` is open, `spec` is the CRD's schema.
fn resource<Spec: JsonSchema>(kind: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "example": "argoproj.io/v1alpha1"},
            "kind": {"type": "string", "example": kind},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "finalizers": {"type": "array", "items": {"type": "string"}},
                },
            },
            "spec": structural::<Spec>(),
        },
    })
}

fn to_schema(value: Value) -> Schema {
    Schema::try_from(value).unwrap_or_default()
}

/// `#[schemars(schema_with)]` target for fields holding an AppProject.
pub(crate) fn app_project(_: &mut SchemaGenerator) -> Schema {
    to_schema(resource::<tiphys_model::project::AppProjectSpec>(
        "AppProject",
    ))
}

/// `#[schemars(schema_with)]` target for fields holding an ApplicationSet.
pub(crate) fn application_set(_: &mut SchemaGenerator) -> Schema {
    to_schema(resource::<tiphys_model::applicationset::ApplicationSetSpec>("ApplicationSet"))
}

fn body_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null)
}

/// A query parameter: name, type (`string`, `boolean`, `integer`) and whether it repeats.
struct Param(&'static str, &'static str);

struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: &'static [Param],
    body: Option<fn() -> Value>,
    /// Answered without a session.
    public: bool,
}

const fn op(method: &'static str, path: &'static str, summary: &'static str) -> Operation {
    Operation {
        method,
        path,
        summary,
        query: &[],
        body: None,
        public: false,
    }
}

impl Operation {
    const fn query(mut self, query: &'static [Param]) -> Self {
        self.query = query;
        self
    }
    const fn body(mut self, body: fn() -> Value) -> Self {
        self.body = Some(body);
        self
    }
    const fn public(mut self) -> Self {
        self.public = true;
        self
    }
}

const APP_LIST: &[Param] = &[
    Param("name", "string"),
    Param("projects", "string[]"),
    Param("project", "string[]"),
    Param("selector", "string"),
    Param("repo", "string"),
    Param("appNamespace", "string"),
    Param("resourceVersion", "string"),
];

/// Whose events: one resource of the app's tree instead of the app.
const RESOURCE_EVENTS: &[Param] = &[
    Param("resourceName", "string"),
    Param("resourceNamespace", "string"),
    Param("resourceUID", "string"),
];

/// The web UI's list: filters (values of one are alternatives), order and page.
const UI_LIST: &[Param] = &[
    Param("search", "string"),
    Param("project", "string[]"),
    Param("sync", "string[]"),
    Param("health", "string[]"),
    Param("cluster", "string[]"),
    Param("namespace", "string[]"),
    Param("label", "string[]"),
    Param("repo", "string[]"),
    Param("autoSync", "string[]"),
    Param("favourites", "boolean"),
    Param("name", "string[]"),
    Param("appset", "string"),
    Param("sort", "string"),
    Param("offset", "integer"),
    Param("limit", "integer"),
];

/// Which source a revision question is about: the app's at an index, or as a history entry
/// deployed it.
const REVISION: &[Param] = &[
    Param("sourceIndex", "integer"),
    Param("versionId", "integer"),
];

/// Which live resource, and how to change it.
const RESOURCE: &[Param] = &[
    Param("namespace", "string"),
    Param("resourceName", "string"),
    Param("version", "string"),
    Param("group", "string"),
    Param("kind", "string"),
    Param("patchType", "string"),
    Param("force", "boolean"),
    Param("orphan", "boolean"),
];

fn application() -> Value {
    resource::<tiphys_model::application::ApplicationSpec>("Application")
}
fn application_spec() -> Value {
    structural::<tiphys_model::application::ApplicationSpec>()
}
fn application_set_body() -> Value {
    resource::<tiphys_model::applicationset::ApplicationSetSpec>("ApplicationSet")
}

/// Every route the server answers, in router order. `/auth/*` (browser redirects) and
/// `/swagger.json` itself are left out.
fn operations() -> Vec<Operation> {
    vec![
        op("get", "/healthz", "Liveness").public(),
        op("get", "/metrics", "Prometheus metrics").public(),
        op("get", "/api/version", "Server version").public(),
        op("get", "/api/v1/settings", "Public settings (SSO, UI)").public(),
        op("get", "/api/badge", "Status badge (SVG)")
            .query(&[Param("name", "string"), Param("project", "string")])
            .public(),
        op("post", "/api/v1/session", "Log in with a local account")
            .body(body_of::<session::Login>)
            .public(),
        op("delete", "/api/v1/session", "Log out"),
        op("get", "/api/v1/session/userinfo", "Who the caller is").public(),
        op("get", "/api/v1/account", "List local accounts"),
        op("put", "/api/v1/account/password", "Change a password")
            .body(body_of::<account::PasswordChange>),
        op(
            "get",
            "/api/v1/account/can-i/{resource}/{action}/{subresource}",
            "May the caller do this?",
        ),
        op("get", "/api/v1/account/{name}", "One local account"),
        op(
            "post",
            "/api/v1/account/{name}/token",
            "Create an API token",
        )
        .body(body_of::<account::TokenRequest>),
        op(
            "delete",
            "/api/v1/account/{name}/token/{id}",
            "Revoke an API token",
        ),
        op("get", "/api/v1/applications", "List applications").query(APP_LIST),
        op("post", "/api/v1/applications", "Create an application")
            .query(&[Param("upsert", "boolean"), Param("validate", "boolean")])
            .body(application),
        op("get", "/api/v1/applications/{name}", "One application")
            .query(&[Param("refresh", "string")]),
        op(
            "put",
            "/api/v1/applications/{name}",
            "Replace an application",
        )
        .query(&[Param("validate", "boolean")])
        .body(application),
        op(
            "patch",
            "/api/v1/applications/{name}",
            "Patch an application",
        )
        .body(body_of::<applications::PatchRequest>),
        op(
            "delete",
            "/api/v1/applications/{name}",
            "Delete an application",
        )
        .query(&[
            Param("cascade", "boolean"),
            Param("propagationPolicy", "string"),
        ]),
        op(
            "put",
            "/api/v1/applications/{name}/spec",
            "Replace an application's spec",
        )
        .query(&[Param("validate", "boolean")])
        .body(application_spec),
        op("post", "/api/v1/applications/{name}/sync", "Start a sync")
            .body(body_of::<applications::SyncRequest>),
        op(
            "post",
            "/api/v1/applications/{name}/rollback",
            "Sync to an earlier revision from history",
        )
        .body(body_of::<applications::RollbackRequest>),
        op(
            "delete",
            "/api/v1/applications/{name}/operation",
            "Terminate the running operation",
        ),
        op(
            "get",
            "/api/v1/applications/{name}/events",
            "Kubernetes events about the app, or about one resource of its tree",
        )
        .query(RESOURCE_EVENTS),
        op(
            "get",
            "/api/v1/applications/{name}/resource-tree",
            "Resource tree",
        ),
        op(
            "get",
            "/api/v1/applications/{name}/managed-resources",
            "Managed resources with desired, live and predicted states",
        )
        .query(&[
            Param("namespace", "string"),
            Param("name", "string"),
            Param("version", "string"),
            Param("group", "string"),
            Param("kind", "string"),
        ]),
        op(
            "get",
            "/api/v1/applications/{name}/syncwindows",
            "Sync windows in effect",
        ),
        op(
            "get",
            "/api/v1/applications/{name}/manifests",
            "The objects the sources render to",
        )
        .query(&[
            Param("revision", "string"),
            Param("sourcePositions", "integer[]"),
            Param("revisions", "string[]"),
        ]),
        op(
            "get",
            "/api/v1/applications/{name}/revisions/{revision}/metadata",
            "A commit's author, date, message and tags",
        )
        .query(REVISION),
        op(
            "get",
            "/api/v1/applications/{name}/revisions/{revision}/chartdetails",
            "A chart version's description, home page and maintainers",
        )
        .query(REVISION),
        op(
            "get",
            "/api/v1/applications/{name}/revisions/{revision}/ocimetadata",
            "What an OCI revision's manifest annotations say (created, authors, URLs, version)",
        )
        .query(REVISION),
        op(
            "get",
            "/api/v1/applications/{name}/resource",
            "One live resource of the application",
        )
        .query(RESOURCE),
        op(
            "post",
            "/api/v1/applications/{name}/resource",
            "Patch one live resource (the body is the patch as a JSON string)",
        )
        .query(RESOURCE)
        .body(|| json!({"type": "string"})),
        op(
            "delete",
            "/api/v1/applications/{name}/resource",
            "Delete one live resource",
        )
        .query(RESOURCE),
        op("get", "/api/v1/projects", "List projects"),
        op("post", "/api/v1/projects", "Create a project")
            .body(body_of::<projects::ProjectRequest>),
        op("get", "/api/v1/projects/{name}", "One project"),
        op("put", "/api/v1/projects/{name}", "Replace a project")
            .body(body_of::<projects::ProjectRequest>),
        op("delete", "/api/v1/projects/{name}", "Delete a project"),
        op(
            "get",
            "/api/v1/projects/{name}/events",
            "Kubernetes events about the project",
        ),
        op(
            "get",
            "/api/v1/projects/{name}/detailed",
            "Project with its global projects, repositories and clusters",
        ),
        op(
            "get",
            "/api/v1/projects/{name}/syncwindows",
            "The project's sync windows active now",
        ),
        op(
            "post",
            "/api/v1/projects/{name}/roles/{role}/token",
            "Create a project role token",
        )
        .body(body_of::<projects::RoleTokenRequest>),
        op(
            "delete",
            "/api/v1/projects/{name}/roles/{role}/token/{iat}",
            "Revoke a project role token",
        )
        .query(&[Param("id", "string")]),
        op("get", "/api/v1/applicationsets", "List ApplicationSets"),
        op(
            "post",
            "/api/v1/applicationsets",
            "Create an ApplicationSet",
        )
        .query(&[Param("upsert", "boolean"), Param("dryRun", "boolean")])
        .body(application_set_body),
        op(
            "post",
            "/api/v1/applicationsets/generate",
            "Preview the Applications an ApplicationSet generates",
        )
        .body(body_of::<applicationsets::GenerateRequest>),
        op(
            "get",
            "/api/v1/applicationsets/{name}",
            "One ApplicationSet",
        ),
        op(
            "delete",
            "/api/v1/applicationsets/{name}",
            "Delete an ApplicationSet",
        ),
        op("get", "/api/v1/clusters", "List clusters"),
        op("post", "/api/v1/clusters", "Add a cluster")
            .query(&[Param("upsert", "boolean")])
            .body(body_of::<clusters::ClusterRequest>),
        op(
            "put",
            "/api/v1/clusters/{id}",
            "Change a cluster (only updatedFields, when named)",
        )
        .query(&[Param("updatedFields", "string[]")])
        .body(body_of::<clusters::ClusterRequest>),
        op(
            "get",
            "/api/v1/clusters/{id}",
            "One cluster (by server URL or name)",
        ),
        op("delete", "/api/v1/clusters/{id}", "Remove a cluster"),
        op("get", "/api/v1/repositories", "List repositories")
            .query(&[Param("forceRefresh", "boolean")]),
        op("post", "/api/v1/repositories", "Add a repository")
            .query(&[Param("upsert", "boolean"), Param("credsOnly", "boolean")])
            .body(body_of::<repositories::RepoRequest>),
        op("get", "/api/v1/repositories/{url}", "One repository"),
        op(
            "put",
            "/api/v1/repositories/{url}",
            "Change a repository (credentials left out are kept)",
        )
        .body(body_of::<repositories::RepoRequest>),
        op(
            "delete",
            "/api/v1/repositories/{url}",
            "Remove a repository",
        ),
        op(
            "get",
            "/api/v1/repositories/{url}/refs",
            "Branches and tags",
        ),
        op(
            "post",
            "/api/v1/repositories/{url}/validate",
            "Check that a repository can be reached",
        )
        .body(body_of::<repositories::RepoRequest>),
        op(
            "post",
            "/api/v1/repositories/{url}/appdetails",
            "What a source is made of: its type, Helm value files and parameters, Kustomize images",
        )
        .body(body_of::<app_resources::AppDetailsQuery>),
        op("get", "/api/v1/repocreds", "List credential templates"),
        op("post", "/api/v1/repocreds", "Add a credential template")
            .query(&[Param("upsert", "boolean")])
            .body(body_of::<repositories::RepoRequest>),
        op(
            "put",
            "/api/v1/repocreds/{url}",
            "Change a credential template (credentials left out are kept)",
        )
        .body(body_of::<repositories::RepoRequest>),
        op(
            "delete",
            "/api/v1/repocreds/{url}",
            "Remove a credential template",
        ),
        op(
            "get",
            "/api/v1/stream/applications",
            "Application changes (server-sent events)",
        )
        .query(APP_LIST),
        op(
            "get",
            "/api/v1/stream/applications/{name}/resource-tree",
            "Resource tree changes (server-sent events)",
        ),
        op(
            "post",
            "/api/v1/applications/{name}/pause",
            "Pause auto-sync until a time or for a duration (Tiphys)",
        )
        .body(body_of::<applications::PauseRequest>),
        op(
            "delete",
            "/api/v1/applications/{name}/pause",
            "End a pause of auto-sync (Tiphys)",
        ),
        op(
            "get",
            "/api/ui/applications",
            "The web UI's application list: summaries filtered, counted and paged",
        )
        .query(UI_LIST),
        op(
            "get",
            "/api/ui/stream/applications",
            "Names of applications that changed (server-sent events)",
        ),
        op(
            "post",
            "/api/webhook",
            "Git push webhook (GitHub, GitLab, Bitbucket, Gogs)",
        )
        .public(),
    ]
}

/// Path parameters named in `/a/{b}/c`.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn parameter(name: &str, location: &str, kind: &str) -> Value {
    let schema = match kind.strip_suffix("[]") {
        Some(item) => json!({"type": "array", "items": {"type": item}}),
        None => json!({"type": kind}),
    };
    let mut p = json!({"name": name, "in": location, "schema": schema});
    if location == "path" {
        p["required"] = json!(true);
    } else if kind.ends_with("[]") {
        p["style"] = json!("form");
        p["explode"] = json!(true);
    }
    p
}

/// The whole document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in operations() {
        let mut parameters: Vec<Value> = path_params(op.path)
            .into_iter()
            .map(|p| parameter(p, "path", "string"))
            .collect();
        parameters.extend(op.query.iter().map(|p| parameter(p.0, "query", p.1)));
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '-'], "_")),
            "parameters": parameters,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {}}},
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        });
        if let Some(body) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body()}},
            });
        }
        if op.public {
            operation["security"] = json!([]);
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tiphys API",
            "description": "Argo CD's REST API as served by Tiphys.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "security": [{"bearer": []}, {"cookie": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": crate::auth::COOKIE},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "code": {"type": "integer"},
                    },
                },
            },
        },
    })
}

async fn swagger() -> axum::Json<Value> {
    axum::Json(document())
}

pub fn router() -> axum::Router<std::sync::Arc<crate::State>> {
    axum::Router::new().route("/swagger.json", axum::routing::get(swagger))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path in the document is routed, and every routed `/api` path is documented.
    #[test]
    fn documents_every_route() {
        let doc = document();
        let documented: std::collections::BTreeSet<String> = doc["paths"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let sources = [
            include_str!("api/account.rs"),
            include_str!("api/app_resources.rs"),
            include_str!("api/applications.rs"),
            include_str!("api/applicationsets.rs"),
            include_str!("api/clusters.rs"),
            include_str!("api/misc.rs"),
            include_str!("api/projects.rs"),
            include_str!("api/repositories.rs"),
            include_str!("api/session.rs"),
            include_str!("api/stream.rs"),
            include_str!("api/webhook.rs"),
            include_str!("metrics.rs"),
            include_str!("ui/summary.rs"),
        ];
        let routed: std::collections::BTreeSet<String> = sources
            .iter()
            .flat_map(|s| s.split('"'))
            .filter(|s| s.starts_with("/api/") || ["/healthz", "/metrics"].contains(s))
            .filter(|s| !s.contains(' '))
            .map(|s| s.replace("{*", "{"))
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn bodies_are_described() {
        let doc = document();
        let sync = &doc["paths"]["/api/v1/applications/{name}/sync"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert!(sync["properties"]["revision"].is_object(), "{sync}");
        let project = &doc["paths"]["/api/v1/projects"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["project"];
        assert!(
            project["properties"]["spec"]["properties"]["sourceRepos"].is_object(),
            "{project}"
        );
    }
}
