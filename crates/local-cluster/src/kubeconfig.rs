//! The kubeconfig the cluster writes: one cluster, one user with a bearer token, one
//! context, accepted by kubectl and kube-rs alike.

use base64::Engine;

pub const CONTEXT: &str = "tiphys-local";

pub fn render(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let ca_line = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {server}\n{ca_line}users:\n- name: {CONTEXT}\n  user:\n    token: {token}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\ncurrent-context: {CONTEXT}\npreferences: {{}}\n"
    )
}
