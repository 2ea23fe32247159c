//! The API server: Argo CD's REST API under `/api/`, sessions and API tokens, and RBAC from
//! `argocd-rbac-cm` and AppProject roles.
//!
//! ```text
//!  request ─► TLS ─► router ─► Caller (token: header or cookie; checked against the cluster)
//!                                 └─► RBAC (argocd-rbac-cm + project roles) ─► handler
//!                                                                  └─► Application / AppProject
//!                                                                      / argocd-secret writes
//! ```
//!
//! Stateless: everything it knows comes from watch caches of the control namespace, so
//! replicas can run side by side. It never reconciles, renders or compares on its own: a sync
//! is an `.operation` written on the Application, which the controller carries out.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod rbac;
pub mod secrets;
pub mod state;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use state::State;

/// How the server is reached.
#[derive(Clone, Debug)]
pub enum Tls {
    /// Plain HTTP (`--insecure`, behind a TLS-terminating proxy).
    Insecure,
    /// HTTPS with a certificate made at start.
    SelfSigned,
    /// HTTPS with the given PEM files.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub listen: SocketAddr,
    pub tls: Tls,
    /// Where repositories fetched for checks and previews are cached.
    pub cache_dir: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Api(#[from] error::ApiError),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub state: Arc<State>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Serve until the task ends (it does not, unless aborted).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The whole HTTP surface.
pub fn app(state: Arc<State>) -> Router {
    api::router()
        .merge(metrics::router())
        .merge(ui::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::map_response(error::plain_errors_as_json))
        .with_state(state)
}

fn tls_config(tls: &Tls) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    let (certs, key) = match tls {
        Tls::Insecure => return Ok(None),
        Tls::SelfSigned => {
            let cert = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "argocd-server".to_string(),
            ])
            .map_err(|e| ServerError::Tls(e.to_string()))?;
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
            (vec![cert.cert.der().clone()], key)
        }
        Tls::Files { cert, key } => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
            (certs, key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Set up argocd-secret (signing key, admin password) if needed, start the watches, bind and
/// serve.
pub async fn start(client: kube::Client, settings: Settings) -> Result<Running, ServerError> {
    auth::bootstrap::ensure_secrets(&client, &settings.namespace).await?;
    let tls = tls_config(&settings.tls)?;
    let state = Arc::new(
        State::start(
            client,
            &settings.namespace,
            tls.is_some(),
            settings.cache_dir.clone(),
        )
        .await?,
    );
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: settings.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}", addr.port());
    let router = app(state.clone());
    let task = tokio::spawn(serve(listener, router, tls));
    Ok(Running {
        addr,
        url,
        state,
        task: Some(task),
    })
}

async fn serve(listener: TcpListener, router: Router, tls: Option<Arc<rustls::ServerConfig>>) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(router);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = builder
                        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                }
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(
                            hyper_util::rt::TokioIo::new(stream),
                            service,
                        )
                        .await;
                }
            }
        });
    }
}
