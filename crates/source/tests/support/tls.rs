//! A throwaway PKI for the HTTPS tests: a CA, a server certificate for 127.0.0.1 and a client
//! certificate, all signed by it; the server's files written under a directory.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

pub struct Pki {
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub ca: PathBuf,
    /// The client certificate and key, PEM.
    pub client: (String, String),
}

pub fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    // Distinct subjects: a certificate whose subject equals its issuer's looks self-signed.
    let params = |name: &str| {
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p
    };
    let server = params("127.0.0.1").signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = params("tiphys").signed_by(&client_key, &issuer).unwrap();
    let file = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        server_cert: file("server.crt", server.pem()),
        server_key: file("server.key", server_key.serialize_pem()),
        ca: file("ca.crt", ca.pem()),
        client: (client.pem(), client_key.serialize_pem()),
    }
}
