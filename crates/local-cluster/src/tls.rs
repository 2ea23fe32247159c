//! The cluster's certificate authority and serving certificate. The CA is made once and kept
//! in the data dir (so kubeconfigs written before a restart stay valid); the serving
//! certificate is issued at every start for the addresses the cluster listens on.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading or writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The CA certificate (PEM) clients trust, and the server's TLS configuration.
pub struct Tls {
    pub ca_pem: String,
    pub server_config: Arc<ServerConfig>,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "tiphys-local-cluster-ca");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Load the CA from `dir` (creating it on first start), or make an ephemeral one.
fn load_or_create_ca(dir: Option<&Path>) -> Result<(String, KeyPair), TlsError> {
    if let Some(dir) = dir {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            let cert = std::fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
            return Ok((cert, KeyPair::from_pem(&key_pem)?));
        }
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?.pem();
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        std::fs::write(&key_path, key.serialize_pem()).map_err(io_err(&key_path))?;
        std::fs::write(&cert_path, &cert).map_err(io_err(&cert_path))?;
        return Ok((cert, key));
    }
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?.pem();
    Ok((cert, key))
}

pub fn setup(dir: Option<&Path>, ips: &[IpAddr]) -> Result<Tls, TlsError> {
    let (ca_pem, ca_key) = load_or_create_ca(dir)?;
    // The issuer needs the CA's name and key only; both are stable across restarts.
    let issuer = Issuer::new(ca_params()?, ca_key);

    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "tiphys-local-cluster");
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let chain = vec![
        cert.der().clone(),
        CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| TlsError::Config(e.to_string()))?,
    ];
    let private = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem,
        server_config: Arc::new(config),
    })
}
