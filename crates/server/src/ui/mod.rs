//! The web UI: a page and a few hand-written ES modules embedded in the binary (no build step,
//! no Node.js), served under `/`. Every path that is not the API's is the page, so each view
//! has a deep link; the page's scripts then call the same REST API every client uses, with
//! the session cookie, so RBAC applies to the UI exactly as to the CLI.
//!
//! `summary` adds what the UI needs at 10,000 apps and Argo's API lacks: the applications
//! list filtered, counted and paged on the server, and a stream of which apps changed.

pub mod summary;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::Digest;

use crate::error::{ApiError, Code};
use crate::state::State;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("yaml.js", JS),
    asset!("diff.js", JS),
    asset!("status.js", JS),
    asset!("apps.js", JS),
    asset!("app.js", JS),
    asset!("tree.js", JS),
    asset!("resource.js", JS),
    asset!("dialogs.js", JS),
    asset!("appsets.js", JS),
    asset!("settings.js", JS),
    asset!("login.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX: &str = include_str!("../../ui/index.html");

/// A digest of every asset: the page names assets with it (`?v=`), so a new binary's assets
/// are fetched fresh while unchanged ones stay cached for a year.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = sha2::Sha256::new();
    for a in ASSETS {
        hash.update(a.name.as_bytes());
        hash.update(a.body.as_bytes());
    }
    hash.update(INDEX.as_bytes());
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The page, naming every module with the version (preloaded, so the browser fetches them all
/// at once instead of discovering them import by import).
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let preloads: String = ASSETS
        .iter()
        .filter(|a| a.name.ends_with(".js"))
        .map(|a| {
            format!(
                "<link rel=\"modulepreload\" href=\"/assets/{}?v={}\">\n",
                a.name, *VERSION
            )
        })
        .collect();
    INDEX
        .replace("{{PRELOADS}}", &preloads)
        .replace("{{VERSION}}", &VERSION)
});

/// What is served for each asset: modules import one another with the version too, so every
/// module URL is immutable and cached for good.
static BODIES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            if !a.name.ends_with(".js") {
                return a.body.to_string();
            }
            ASSETS
                .iter()
                .filter(|m| m.name.ends_with(".js"))
                .fold(a.body.to_string(), |body, m| {
                    body.replace(
                        &format!("from './{}';", m.name),
                        &format!("from './{}?v={}';", m.name, *VERSION),
                    )
                })
        })
        .collect()
});

/// What the page may load and talk to: only this server. Scripts set styles through the
/// DOM, never inline, so no `unsafe-inline` is needed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The page, for `/` and every view's deep link.
async fn page() -> Response {
    secured(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            PAGE.as_str(),
        )
            .into_response(),
    )
}

#[derive(serde::Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn asset(
    Path(name): Path<String>,
    Query(q): Query<AssetQuery>,
    headers: HeaderMap,
) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name) else {
        return ApiError::new(Code::NotFound, format!("no asset {name:?}")).into_response();
    };
    let etag = format!("\"{}\"", *VERSION);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    // Only a request naming this build's version may be cached for good.
    let cache = if q.v.as_deref() == Some(VERSION.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    secured(
        (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, cache),
                (header::ETAG, etag.as_str()),
            ],
            BODIES[index].clone(),
        )
            .into_response(),
    )
}

/// Paths the page does not answer: the API's own, which keep Argo's error JSON.
fn is_api(path: &str) -> bool {
    [
        "/api/", "/auth/", "/metrics", "/healthz", "/swagger", "/assets/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Unknown `GET`s outside the API are deep links into the page; the rest are errors.
async fn fallback(method: axum::http::Method, uri: Uri) -> Response {
    if method == axum::http::Method::GET && !is_api(uri.path()) {
        return page().await;
    }
    ApiError::new(Code::NotFound, format!("{} not found", uri.path())).into_response()
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .merge(summary::router())
        .fallback(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let embedded: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(from) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let file = from
                    .trim_start_matches("./")
                    .split('?')
                    .next()
                    .unwrap_or("");
                assert!(
                    embedded.contains(&file),
                    "{} imports {from}, which is not embedded",
                    a.name
                );
            }
        }
        assert!(PAGE.contains(&*VERSION) && !PAGE.contains("{{"));
        // Every import is versioned as served, and preloaded by the page.
        for (a, body) in ASSETS.iter().zip(BODIES.iter()) {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                assert!(
                    line.contains(&format!("?v={}'", *VERSION)),
                    "{}: {line}",
                    a.name
                );
            }
            if a.name.ends_with(".js") {
                assert!(
                    PAGE.contains(&format!("/assets/{}?v=", a.name)),
                    "{}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn deep_links_are_the_page_and_api_paths_are_not() {
        for path in [
            "/applications",
            "/applications/argocd/guestbook",
            "/settings/repos",
        ] {
            assert!(!is_api(path), "{path}");
        }
        for path in [
            "/api/v1/applications",
            "/auth/login",
            "/assets/x.js",
            "/healthz",
        ] {
            assert!(is_api(path), "{path}");
        }
    }
}
