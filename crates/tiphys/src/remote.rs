//! Wiring git into Kustomize: remote bases are fetched through the source cache, with
//! credentials from Argo CD repository Secrets when there are any.

use std::path::PathBuf;

use tiphys_kustomize::RemoteLoader;
use tiphys_source::GitCache;
use tiphys_source::credentials::{RepoSecret, SecretKind, secret_for};
use tiphys_source::remote_base;

pub struct GitRemotes<'a> {
    pub cache: &'a GitCache,
    pub secrets: &'a [(SecretKind, RepoSecret)],
}

impl RemoteLoader for GitRemotes<'_> {
    fn load(&self, url: &str) -> Result<PathBuf, String> {
        let base = remote_base::parse(url).ok_or_else(|| "not a remote base URL".to_string())?;
        let access = secret_for(&base.repo, self.secrets)
            .map(RepoSecret::access)
            .unwrap_or_default();
        let commit = self
            .cache
            .resolve(&base.repo, &base.revision, &access)
            .map_err(|e| e.to_string())?;
        let tree = self
            .cache
            .tree(&base.repo, &commit)
            .map_err(|e| e.to_string())?;
        let root = tree.canonicalize().map_err(|e| e.to_string())?;
        let dir = root
            .join(&base.path)
            .canonicalize()
            .map_err(|_| format!("{} has no directory {:?}", base.repo, base.path))?;
        if !dir.starts_with(&root) {
            return Err(format!("path {:?} escapes the repository", base.path));
        }
        Ok(dir)
    }
}
