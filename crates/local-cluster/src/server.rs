//! HTTP transport: TLS (HTTP/1.1 and HTTP/2 by ALPN) or plain HTTP, bearer-token
//! authentication, and dispatch of each request to discovery, OpenAPI or the resource verbs.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::Cluster;
use crate::api::{Caller, Reply};
use crate::discovery;
use crate::error::ApiError;
use crate::openapi;
use crate::request::{self, Endpoint, Negotiated, Query};
use crate::table;
use crate::watch;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const MAX_BODY: usize = 64 << 20;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn response(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn json_bytes(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    out
}

fn error_response(e: &ApiError) -> Response<Body> {
    response(e.code, "application/json", json_bytes(&e.status()))
}

fn not_found_text() -> Response<Body> {
    response(404, "text/plain; charset=utf-8", "404 page not found\n")
}

/// Serve connections from `listener` until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    cluster: Arc<Cluster>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let cluster = cluster.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let cluster = cluster.clone();
                async move { Ok::<_, Infallible>(handle(cluster, req).await) }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(tls_stream), service)
                        .await;
                }
                None => {
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Paths anonymous users may read (`system:public-info-viewer`).
fn public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

async fn handle(cluster: Arc<Cluster>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match header(&req, "authorization").and_then(|a| a.strip_prefix("Bearer ")) {
        Some(token) if token.trim() == cluster.token => {}
        Some(_) => return error_response(&ApiError::unauthorized()),
        None if public(&path) => {}
        None => {
            // Anonymous requests are authenticated as system:anonymous and then denied.
            let e = ApiError::forbidden(
                format!(
                    "forbidden: User \"system:anonymous\" cannot {} path \"{path}\"",
                    req.method().as_str().to_lowercase()
                ),
                json!({}),
            );
            return error_response(&e);
        }
    }
    let method = req.method().clone();
    let query = Query::parse(req.uri().query());
    let accept = header(&req, "accept").map(str::to_string);
    let content_type = header(&req, "content-type").map(str::to_string);
    let user_agent = header(&req, "user-agent").unwrap_or_default().to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error_response(&ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: "the request body is too large".into(),
                details: None,
            });
        }
    };
    let caller = Caller {
        user_agent: &user_agent,
    };
    match dispatch(
        &cluster,
        &method,
        &path,
        &query,
        accept.as_deref(),
        content_type.as_deref(),
        &caller,
        &body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').next().is_some_and(|first| {
            first.contains("as=APIGroupDiscoveryList")
                && first.contains("v=v2")
                && !first.contains("v2beta1")
        })
    })
}

fn discovery_response(v: Value, aggregated: bool) -> Response<Body> {
    let mut r = if aggregated {
        response(
            200,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            json_bytes(&v),
        )
    } else {
        response(200, "application/json", json_bytes(&v))
    };
    r.headers_mut()
        .insert("vary", HeaderValue::from_static("Accept"));
    r
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    cluster: &Arc<Cluster>,
    method: &Method,
    path: &str,
    query: &Query,
    accept: Option<&str>,
    content_type: Option<&str>,
    caller: &Caller<'_>,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let registry = &cluster.registry;
    if path.starts_with("/apis/authorization.k8s.io/v1/")
        && path.ends_with("reviews")
        && method == Method::POST
    {
        let format = request::body_format(content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(None))?;
        return Ok(encode(
            crate::api::review(body, format)?,
            Negotiated::Json,
            Vec::new(),
        ));
    }
    let endpoint = request::route(path, registry);
    if !matches!(endpoint, Endpoint::Resource(_)) && method != Method::GET {
        return Ok(match endpoint {
            Endpoint::Unknown => not_found_text(),
            _ => error_response(&ApiError::method_not_allowed()),
        });
    }
    match endpoint {
        Endpoint::Version => Ok(response(
            200,
            "application/json",
            json_bytes(&discovery::version()),
        )),
        Endpoint::Health => Ok(response(200, "text/plain; charset=utf-8", "ok")),
        Endpoint::CoreVersions => {
            let aggregated = wants_aggregated(accept);
            let doc = if aggregated {
                discovery::aggregated(registry, true)
            } else {
                discovery::core_versions(&cluster.address)
            };
            Ok(discovery_response(doc, aggregated))
        }
        Endpoint::Groups => {
            let aggregated = wants_aggregated(accept);
            let doc = if aggregated {
                discovery::aggregated(registry, false)
            } else {
                discovery::groups(registry)
            };
            Ok(discovery_response(doc, aggregated))
        }
        Endpoint::Group(g) => Ok(discovery::group(registry, &g)
            .map(|d| response(200, "application/json", json_bytes(&d)))
            .unwrap_or_else(not_found_text)),
        Endpoint::GroupVersion(g, v) => Ok(discovery::resource_list(registry, &g, &v)
            .map(|d| response(200, "application/json", json_bytes(&d)))
            .unwrap_or_else(not_found_text)),
        Endpoint::OpenApiV2 => Ok(not_found_text()),
        Endpoint::OpenApiV3Root => Ok(response(
            200,
            "application/json",
            json_bytes(&openapi::root(registry)),
        )),
        Endpoint::OpenApiV3(key) => {
            let Some(doc) = openapi::document(registry, &key) else {
                return Ok(not_found_text());
            };
            let hash = openapi::hash(&doc);
            match query.get("hash") {
                Some(h) if h != hash => {
                    let mut r = response(301, "application/json", Bytes::new());
                    if let Ok(location) =
                        HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={hash}"))
                    {
                        r.headers_mut().insert("location", location);
                    }
                    Ok(r)
                }
                _ => Ok(response(200, "application/json", json_bytes(&doc))),
            }
        }
        Endpoint::Unknown => Ok(not_found_text()),
        Endpoint::Resource(p) => {
            let negotiated = request::negotiate(accept)?;
            let format = || {
                request::body_format(content_type)
                    .ok_or_else(|| ApiError::unsupported_media_type(None))
            };
            match *method {
                Method::GET if p.name.is_none() && query.flag("watch") => {
                    let rx =
                        watch::start(cluster.clone(), &p, query, negotiated == Negotiated::Table)?;
                    let stream = futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|b| (b, rx))
                    })
                    .map(|b| Ok::<_, Infallible>(Frame::data(b)));
                    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
                    r.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    r.headers_mut().insert(
                        "cache-control",
                        HeaderValue::from_static("no-cache, private"),
                    );
                    Ok(r)
                }
                Method::GET if p.name.is_none() => {
                    let reply = cluster.list(&p, query)?;
                    Ok(encode_read(&p.rt, reply, negotiated, true))
                }
                Method::GET => {
                    let reply = cluster.get(&p)?;
                    Ok(encode_read(
                        &p.rt,
                        reply,
                        if p.subresource.as_deref() == Some("scale") {
                            Negotiated::Json
                        } else {
                            negotiated
                        },
                        false,
                    ))
                }
                Method::POST => {
                    let (reply, warnings) = cluster.create(&p, query, caller, body, format()?)?;
                    Ok(encode(reply, negotiated, warnings))
                }
                Method::PUT => {
                    let (reply, warnings) = cluster.update(&p, query, caller, body, format()?)?;
                    Ok(encode(reply, negotiated, warnings))
                }
                Method::PATCH => {
                    let (reply, warnings) = cluster.patch(&p, query, caller, body, format()?)?;
                    Ok(encode(reply, negotiated, warnings))
                }
                Method::DELETE if p.name.is_none() => Ok(encode(
                    cluster.delete_collection(&p, query, body)?,
                    negotiated,
                    Vec::new(),
                )),
                Method::DELETE => Ok(encode(
                    cluster.delete(&p, query, body)?,
                    negotiated,
                    Vec::new(),
                )),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

/// Reads may be answered as a Table (`kubectl get`).
fn encode_read(
    rt: &crate::resources::ResourceType,
    reply: Reply,
    negotiated: Negotiated,
    list: bool,
) -> Response<Body> {
    if negotiated != Negotiated::Table && negotiated != Negotiated::Metadata {
        return encode(reply, negotiated, Vec::new());
    }
    let (code, value) = match reply {
        Reply::Object(code, v) => (code, v),
        Reply::Raw(code, bytes) => (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
    };
    if negotiated == Negotiated::Metadata || code >= 300 {
        return encode(
            Reply::Object(code, metadata_only(value, list, code)),
            Negotiated::Json,
            Vec::new(),
        );
    }
    let (objects, rv) = if list {
        let rv = value["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok());
        (value["items"].as_array().cloned().unwrap_or_default(), rv)
    } else {
        let rv = value["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok());
        (vec![value.clone()], rv)
    };
    let mut t = table::table(rt, &objects, true, rv);
    // Paged lists stay paged as Tables (kubectl get follows `continue`).
    for field in ["continue", "remainingItemCount"] {
        if let Some(v) = value["metadata"].get(field) {
            t["metadata"][field] = v.clone();
        }
    }
    response(200, "application/json", json_bytes(&t))
}

/// An object or list reduced to PartialObjectMetadata(List); errors pass through.
fn metadata_only(value: Value, list: bool, code: u16) -> Value {
    if code >= 300 {
        return value;
    }
    let item = |o: &Value| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]});
    if list {
        let items: Vec<Value> = value["items"]
            .as_array()
            .map(|a| a.iter().map(item).collect())
            .unwrap_or_default();
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": value["metadata"], "items": items})
    } else {
        item(&value)
    }
}

fn encode(reply: Reply, negotiated: Negotiated, warnings: Vec<String>) -> Response<Body> {
    let mut r = match (reply, negotiated) {
        (Reply::Raw(code, bytes), Negotiated::Yaml) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            response(
                code,
                "application/yaml",
                serde_saphyr::to_string(&v).unwrap_or_default(),
            )
        }
        (Reply::Raw(code, bytes), _) => response(code, "application/json", bytes),
        (Reply::Object(code, v), Negotiated::Yaml) => response(
            code,
            "application/yaml",
            serde_saphyr::to_string(&v).unwrap_or_default(),
        ),
        (Reply::Object(code, v), _) => response(code, "application/json", json_bytes(&v)),
    };
    for w in warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {}", json!(w))) {
            r.headers_mut().append("warning", value);
        }
    }
    r
}
