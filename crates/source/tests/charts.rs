//! Helm chart repositories against real ones: charts packaged and indexed by the real `helm`,
//! served over HTTP (Basic auth, ETags) and HTTPS with a client certificate, and pushed to the
//! CNCF distribution registry over OCI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tiphys_source::charts::{ChartCache, ChartRef};
use tiphys_source::{Access, SourceError};
use tiphys_testkit::{ChartRepo, Registry, ServerTls};

#[path = "support/tls.rs"]
mod tls;

/// A chart named `name` at `version` whose one ConfigMap says which version it is.
fn chart(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root
        .join("src")
        .join(format!("{name}-{version}"))
        .join(name);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "greeting: hello\n").unwrap();
    std::fs::write(
        dir.join("templates/cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}\ndata:\n  version: \"{version}\"\n  greeting: {{{{ .Values.greeting | quote }}}}\n"
        ),
    )
    .unwrap();
    dir
}

fn version_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()
}

#[test]
fn http_repository_versions_credentials_caching_and_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ChartRepo::start(&tmp.path().join("repo"), Some(("alice", "s3cret")), None);
    repo.publish(&chart(tmp.path(), "web", "1.0.0"));
    repo.publish(&chart(tmp.path(), "web", "1.1.0"));
    let cache = ChartCache::new(tmp.path().join("cache"));
    let good = Access::basic("alice", "s3cret");
    let web = ChartRef {
        repo_url: &repo.url,
        chart: "web",
        access: &good,
    };

    assert_eq!(cache.resolve(web, "1.x").unwrap(), "1.1.0");
    assert_eq!(cache.resolve(web, "1.0.0").unwrap(), "1.0.0");
    assert_eq!(cache.resolve(web, ">=1.0.0 <1.1.0").unwrap(), "1.0.0");
    assert_eq!(
        repo.requests("/index.yaml"),
        (1, 0),
        "one index fetch serves them all"
    );

    let dir = cache.chart(web, "1.0.0").unwrap();
    assert!(
        version_in(&dir).contains("version: 1.0.0"),
        "{}",
        dir.display()
    );
    assert_eq!(cache.chart(web, "1.0.0").unwrap(), dir, "downloaded once");
    assert_eq!(cache.downloads(), 1);

    // A new version is seen once the listing is asked for again: conditionally.
    repo.publish(&chart(tmp.path(), "web", "1.2.0"));
    assert_eq!(
        cache.resolve(web, "1.x").unwrap(),
        "1.1.0",
        "within the max age"
    );
    cache.forget_listings();
    assert_eq!(cache.resolve(web, "1.x").unwrap(), "1.2.0");
    cache.forget_listings();
    assert_eq!(cache.resolve(web, "1.x").unwrap(), "1.2.0");
    assert_eq!(repo.requests("/index.yaml"), (2, 1), "unchanged index: 304");

    // What goes wrong names the chart and the cause.
    let err = cache
        .resolve(
            ChartRef {
                chart: "nope",
                ..web
            },
            "1.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::ChartNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    let err = cache.resolve(web, "^2").unwrap_err();
    assert!(
        err.to_string()
            .contains("no version matching \"^2\" (it has: 1.2.0, 1.1.0, 1.0.0)"),
        "{err}"
    );
    let bad = Access::basic("alice", "wrong");
    let fresh = ChartCache::new(tmp.path().join("cache-2"));
    let err = fresh
        .resolve(
            ChartRef {
                access: &bad,
                ..web
            },
            "1.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    let err = fresh
        .resolve(
            ChartRef {
                repo_url: "http://127.0.0.1:9",
                ..web
            },
            "1.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");

    // An archive that is not the one the index describes is refused, and nothing is kept.
    let archive = repo.dir.join("web-1.1.0.tgz");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    tiphys_testkit::helm(
        &["package", "--destination"],
        &[
            &other,
            &chart(tmp.path(), "web", "1.1.0")
                .parent()
                .unwrap()
                .join("web"),
        ],
    );
    let mut bytes = std::fs::read(other.join("web-1.1.0.tgz")).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&archive, bytes).unwrap();
    let err = fresh.chart(web, "1.1.0").unwrap_err();
    assert!(matches!(err, SourceError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("web-1.1.0.tgz"), "{err}");
    assert!(fresh.chart(web, "1.1.0").is_err(), "still refused");
}

/// The repository Secret's `proxy` carries the index and the archive; a proxy that does not
/// answer is the repository being unreachable, named.
#[test]
fn http_repository_through_the_repositorys_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ChartRepo::start(&tmp.path().join("repo"), None, None);
    repo.publish(&chart(tmp.path(), "web", "3.0.0"));
    let proxy = tiphys_testkit::HttpProxy::start();
    let via = |url: &str| Access {
        proxy: Some(tiphys_source::Proxy {
            url: url.to_string(),
            no_proxy: String::new(),
        }),
        ..Access::default()
    };
    let good = via(&proxy.url);
    let web = ChartRef {
        repo_url: &repo.url,
        chart: "web",
        access: &good,
    };
    let cache = ChartCache::new(tmp.path().join("cache"));
    assert_eq!(cache.resolve(web, "3.x").unwrap(), "3.0.0");
    assert!(version_in(&cache.chart(web, "3.0.0").unwrap()).contains("3.0.0"));
    let seen = proxy.seen();
    for file in ["/index.yaml", "/web-3.0.0.tgz"] {
        assert!(
            seen.iter()
                .any(|t| t == &format!("{}{file}", repo.url.trim_end_matches('/'))),
            "{file}: {seen:?}"
        );
    }
    let closed = via("http://127.0.0.1:9");
    let fresh = ChartCache::new(tmp.path().join("cache-2"));
    let err = fresh
        .resolve(
            ChartRef {
                access: &closed,
                ..web
            },
            "3.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
}

#[test]
fn concurrent_resolutions_share_one_index_request() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ChartRepo::start(&tmp.path().join("repo"), None, None);
    repo.publish(&chart(tmp.path(), "web", "2.0.0"));
    let cache = Arc::new(ChartCache::new(tmp.path().join("cache")));
    let url = Arc::new(repo.url.clone());
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (cache, url) = (cache.clone(), url.clone());
            std::thread::spawn(move || {
                let access = Access::default();
                let at = ChartRef {
                    repo_url: &url,
                    chart: "web",
                    access: &access,
                };
                let version = cache.resolve(at, "*").unwrap();
                version_in(&cache.chart(at, &version).unwrap())
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().contains("2.0.0"));
    }
    assert_eq!(repo.requests("/index.yaml"), (1, 0));
    assert_eq!(repo.requests("/web-2.0.0.tgz"), (1, 0));
}

#[test]
fn https_repository_with_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tls::pki(tmp.path());
    let repo = ChartRepo::start(
        &tmp.path().join("repo"),
        None,
        Some(ServerTls {
            cert: &pki.server_cert,
            key: &pki.server_key,
            client_ca: &pki.ca,
        }),
    );
    repo.publish(&chart(tmp.path(), "web", "1.0.0"));
    let cache = ChartCache::new(tmp.path().join("cache"));
    let untrusted = Access::default();
    let at = |access| ChartRef {
        repo_url: &repo.url,
        chart: "web",
        access,
    };
    let err = cache.resolve(at(&untrusted), "1.0.0").unwrap_err();
    assert!(matches!(err, SourceError::Tls { .. }), "{err:?}");
    let no_client_cert = Access {
        insecure: true,
        ..Default::default()
    };
    assert!(cache.resolve(at(&no_client_cert), "1.0.0").is_err());
    let with_cert = Access {
        insecure: true,
        tls_client_cert: Some(pki.client.clone()),
        ..Default::default()
    };
    assert_eq!(cache.resolve(at(&with_cert), "1.0.0").unwrap(), "1.0.0");
    let dir = cache.chart(at(&with_cert), "1.0.0").unwrap();
    assert!(version_in(&dir).contains("1.0.0"));
}

#[test]
fn oci_registry_tags_are_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(tmp.path());
    registry.push(&chart(tmp.path(), "web", "0.1.0"), "charts");
    registry.push(&chart(tmp.path(), "web", "0.2.0+build.7"), "charts");
    let cache = ChartCache::new(tmp.path().join("cache"));
    let access = Access {
        plain_http: true,
        ..Default::default()
    };
    let url = format!("oci://{}/charts", registry.host);
    let web = ChartRef {
        repo_url: &url,
        chart: "web",
        access: &access,
    };
    assert_eq!(cache.resolve(web, "0.x").unwrap(), "0.2.0+build.7");
    assert_eq!(cache.resolve(web, "0.1.0").unwrap(), "0.1.0");
    let dir = cache.chart(web, "0.2.0+build.7").unwrap();
    assert!(version_in(&dir).contains("0.2.0+build.7"));
    assert!(version_in(&cache.chart(web, "0.1.0").unwrap()).contains("0.1.0"));
    // Without the oci:// prefix the repository Secret's enableOCI says it.
    let flagged = Access {
        oci: true,
        ..access.clone()
    };
    let bare_url = format!("{}/charts", registry.host);
    assert_eq!(
        cache
            .resolve(
                ChartRef {
                    repo_url: &bare_url,
                    chart: "web",
                    access: &flagged,
                },
                "~0.1"
            )
            .unwrap(),
        "0.1.0"
    );

    let err = cache
        .resolve(
            ChartRef {
                chart: "nope",
                ..web
            },
            "0.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::ChartNotFound { .. }), "{err:?}");
    let err = cache.chart(web, "9.9.9").unwrap_err();
    assert!(
        matches!(err, SourceError::ChartVersionNotFound { .. }),
        "{err:?}"
    );
    let unreachable = "oci://127.0.0.1:9/charts".to_string();
    let err = cache
        .resolve(
            ChartRef {
                repo_url: &unreachable,
                ..web
            },
            "0.x",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
}

/// OCI artifacts of manifests (`repoURL: oci://…` without a chart): a tag, a semver range
/// over the tags or a digest resolves to the manifest digest; the single layer is unpacked
/// once per digest; a Helm chart pushed by `helm push` is its chart directory; a layer of
/// another media type, or a tag that is not there, is refused by name.
#[test]
fn oci_artifacts_of_manifests() {
    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(tmp.path());
    let files = tmp.path().join("files");
    std::fs::create_dir_all(files.join("apps")).unwrap();
    let write = |text: &str| std::fs::write(files.join("apps/cm.yaml"), text).unwrap();
    write("kind: ConfigMap\nmetadata: {name: one}\n");
    let first = registry.push_artifact(&files, "manifests/site", "1.0.0", LAYER);
    write("kind: ConfigMap\nmetadata: {name: two}\n");
    let second = registry.push_artifact(&files, "manifests/site", "1.1.0", LAYER);
    registry.push_artifact(
        &files,
        "manifests/site",
        "odd",
        "application/vnd.example.v1",
    );
    registry.push(&chart(tmp.path(), "web", "0.3.0"), "charts");

    let access = Access {
        plain_http: true,
        ..Default::default()
    };
    let url = format!("oci://{}/manifests/site", registry.host);
    let site = ChartRef {
        repo_url: &url,
        chart: "",
        access: &access,
    };
    let cache = ChartCache::new(tmp.path().join("cache"));
    assert_eq!(cache.resolve_artifact(site, "1.0.0").unwrap(), first);
    assert_eq!(cache.resolve_artifact(site, "1.x").unwrap(), second);
    assert_eq!(cache.resolve_artifact(site, &first).unwrap(), first);
    let requests = cache.listing_requests();
    assert_eq!(cache.resolve_artifact(site, "1.0.0").unwrap(), first);
    assert_eq!(cache.listing_requests(), requests, "a tag's digest is kept");

    let tree = cache.artifact(site, &first).unwrap();
    let text = std::fs::read_to_string(tree.join("apps/cm.yaml")).unwrap();
    assert!(text.contains("name: one"), "{text}");
    assert_eq!(cache.artifact(site, &first).unwrap(), tree);
    assert_eq!(cache.downloads(), 1, "unpacked once per digest");
    let text = std::fs::read_to_string(cache.artifact(site, &second).unwrap().join("apps/cm.yaml"));
    assert!(text.unwrap().contains("name: two"));

    let err = cache.resolve_artifact(site, "9.9.9").unwrap_err();
    assert!(
        matches!(err, SourceError::RevisionNotFound { .. }),
        "{err:?}"
    );
    let odd = cache.resolve_artifact(site, "odd").unwrap();
    let err = cache.artifact(site, &odd).unwrap_err().to_string();
    assert!(err.contains("application/vnd.example.v1"), "{err}");

    let chart_url = format!("oci://{}/charts/web", registry.host);
    let web = ChartRef {
        repo_url: &chart_url,
        chart: "",
        access: &access,
    };
    let digest = cache.resolve_artifact(web, "0.3.0").unwrap();
    let dir = cache.artifact(web, &digest).unwrap();
    assert!(version_in(&dir).contains("0.3.0"), "{}", dir.display());

    // ARGOCD_REPO_SERVER_OCI_LAYER_MEDIA_TYPES: a plain tar layer is refused by default, with
    // the setting named; a cache given the list accepts what it lists (gzipped or not) and
    // nothing else.
    let plain = registry.push_artifact(
        &files,
        "manifests/site",
        "plain",
        "application/vnd.oci.image.layer.v1.tar",
    );
    let err = cache.artifact(site, &plain).unwrap_err().to_string();
    assert!(
        err.contains("ARGOCD_REPO_SERVER_OCI_LAYER_MEDIA_TYPES"),
        "{err}"
    );
    let listed = ChartCache::new(tmp.path().join("cache-listed")).with_layer_types(&[
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.example.v1",
    ]);
    for digest in [&plain, &odd] {
        let tree = listed.artifact(site, digest).unwrap();
        let text = std::fs::read_to_string(tree.join("apps/cm.yaml")).unwrap();
        assert!(text.contains("name: two"), "{text}");
    }
    let err = listed.artifact(site, &first).unwrap_err().to_string();
    assert!(err.contains(LAYER), "{err}");

    // The manifest's annotations, by tag or digest (what Argo CD shows as OCI metadata);
    // `helm push` writes the chart's own.
    let annotated = registry.push_annotated_artifact(
        &files,
        "manifests/site",
        "2.0.0",
        LAYER,
        &[
            ("org.opencontainers.image.authors", "Site Team"),
            ("org.opencontainers.image.created", "2026-12-01T10:00:00Z"),
        ],
    );
    for reference in ["2.0.0", annotated.as_str()] {
        let found = cache.oci_annotations(site, reference).unwrap();
        assert_eq!(found["org.opencontainers.image.authors"], "Site Team");
        assert_eq!(
            found["org.opencontainers.image.created"],
            "2026-12-01T10:00:00Z"
        );
    }
    assert!(cache.oci_annotations(site, &first).unwrap().is_empty());
    let web_chart = ChartRef {
        repo_url: &format!("oci://{}/charts", registry.host),
        chart: "web",
        access: &access,
    };
    let found = cache.oci_annotations(web_chart, "0.3.0").unwrap();
    assert_eq!(
        found["org.opencontainers.image.version"], "0.3.0",
        "{found:?}"
    );
    let err = cache.oci_annotations(site, "9.9.9").unwrap_err();
    assert!(
        matches!(err, SourceError::RevisionNotFound { .. }),
        "{err:?}"
    );
}

/// A registry that wants a bearer token, as Docker Hub, GHCR and Harbor do: every `/v2/`
/// request without `Authorization: Bearer good-token` gets 401 with a challenge naming the
/// token endpoint; the token endpoint hands the token out for Basic `alice:s3cret`. It serves
/// one artifact (`site:1.0.0`) and records what was asked of it.
struct TokenRegistry {
    host: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    digest: String,
}

fn token_registry() -> TokenRegistry {
    use sha2::{Digest, Sha256};
    use std::io::{BufRead, BufReader, Read, Write};
    let hex = |b: &[u8]| -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let mut layer = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut layer, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let text = b"kind: ConfigMap\nmetadata: {name: behind-a-token}\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "apps/cm.yaml", &text[..])
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let layer_digest = format!("sha256:{}", hex(&layer));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{}", hex(b"{}")), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let digest = format!("sha256:{}", hex(&manifest));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (keep, realm) = (seen.clone(), format!("http://{host}/token"));
    // `alice:s3cret`, base64.
    let (manifest_digest, basic) = (digest.clone(), "Basic YWxpY2U6czNjcmV0".to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let mut authorization = String::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = value.trim().to_string();
                }
            }
            keep.lock()
                .unwrap()
                .push(format!("{path} [{authorization}]"));
            let (status, content_type, body): (&str, &str, Vec<u8>) = if path.starts_with("/token")
            {
                if authorization == basic {
                    (
                        "200 OK",
                        "application/json",
                        br#"{"token": "good-token"}"#.to_vec(),
                    )
                } else {
                    ("401 Unauthorized", "application/json", b"{}".to_vec())
                }
            } else if authorization != "Bearer good-token" {
                ("401 Unauthorized", "application/json", b"{}".to_vec())
            } else if path == "/v2/" {
                ("200 OK", "application/json", b"{}".to_vec())
            } else if path == "/v2/team/site/manifests/1.0.0"
                || path == format!("/v2/team/site/manifests/{manifest_digest}")
            {
                (
                    "200 OK",
                    "application/vnd.oci.image.manifest.v1+json",
                    manifest.clone(),
                )
            } else if path == format!("/v2/team/site/blobs/{layer_digest}") {
                ("200 OK", "application/octet-stream", layer.clone())
            } else {
                ("404 Not Found", "application/json", b"{}".to_vec())
            };
            let challenge = if status.starts_with("401") && !path.starts_with("/token") {
                format!(
                    "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:team/site:pull\"\r\n"
                )
            } else {
                String::new()
            };
            let mut stream = reader.into_inner();
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(&body);
            let _ = stream.read(&mut [0; 1]);
        }
    });
    TokenRegistry { host, seen, digest }
}

/// A registry behind bearer tokens: the token is fetched from the challenge's realm with the
/// repository's credentials, for the challenge's scope, and then used; wrong credentials are
/// an authentication failure naming the token endpoint; no credentials say so.
#[test]
fn oci_registry_with_bearer_tokens() {
    let registry = token_registry();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/team/site", registry.host);
    let access = |password: Option<&str>| Access {
        plain_http: true,
        ..match password {
            Some(p) => Access::basic("alice", p),
            None => Access::default(),
        }
    };
    let good = access(Some("s3cret"));
    let site = ChartRef {
        repo_url: &url,
        chart: "",
        access: &good,
    };
    let cache = ChartCache::new(tmp.path().join("cache"));
    assert_eq!(
        cache.resolve_artifact(site, "1.0.0").unwrap(),
        registry.digest
    );
    let tree = cache.artifact(site, &registry.digest).unwrap();
    let text = std::fs::read_to_string(tree.join("apps/cm.yaml")).unwrap();
    assert!(text.contains("behind-a-token"), "{text}");
    let seen = registry.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(
            |s| s.starts_with("/token?") && s.contains("scope=repository%3Ateam%2Fsite%3Apull")
        ),
        "the token was asked for the challenge's scope: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.contains("/blobs/") && s.contains("Bearer good-token")),
        "{seen:#?}"
    );
    assert!(
        cache.check(site).is_ok(),
        "the connection check passes with the token"
    );

    let fresh = ChartCache::new(tmp.path().join("cache-2"));
    let wrong = access(Some("wrong"));
    let err = fresh
        .resolve_artifact(
            ChartRef {
                access: &wrong,
                ..site
            },
            "1.0.0",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("/token"), "{err}");
    let anonymous = access(None);
    let err = fresh
        .resolve_artifact(
            ChartRef {
                access: &anonymous,
                ..site
            },
            "1.0.0",
        )
        .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
}
