//! Repository URLs written different ways name one repository: one cache entry.

/// Normalise a repository URL: scp-like `git@host:path` becomes `ssh://git@host/path`, the
/// host is lower-cased, a trailing `.git` or `/` is dropped, and a plain path becomes `file://`.
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else if let Some((user_host, path)) = scp_like(url) {
        format!("ssh://{user_host}/{}", path.trim_start_matches('/'))
    } else {
        let path = std::path::Path::new(url);
        let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        format!("file://{}", absolute.display())
    };
    let (scheme, rest) = with_scheme.split_once("://").unwrap_or(("", &with_scheme));
    let scheme = scheme.to_lowercase();
    let (authority, path) = match scheme.as_str() {
        "file" => ("", rest),
        _ => rest.split_once('/').unwrap_or((rest, "")),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => format!("{user}@{}", host.to_lowercase()),
        None => authority.to_lowercase(),
    };
    let authority = authority
        .strip_suffix(":443")
        .filter(|_| scheme == "https")
        .map(str::to_string)
        .unwrap_or(authority);
    let path = path.trim_end_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if scheme == "file" {
        format!("file://{path}")
    } else {
        format!("{scheme}://{authority}/{path}")
    }
}

/// `user@host:path` (no scheme, a colon before any slash, and not a Windows drive).
fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    let slash = url.find('/').unwrap_or(usize::MAX);
    (colon < slash && colon > 1).then(|| (&url[..colon], &url[colon + 1..]))
}

/// A directory name for the cache entry of a URL.
pub fn cache_key(url: &str) -> String {
    let normalized = normalize(url);
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in normalized.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let readable: String = normalized
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{readable}-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_repository_written_differently() {
        let a = normalize("https://GitHub.com/myorg/k8s-manifests.git");
        assert_eq!(a, "https://github.com/myorg/k8s-manifests");
        assert_eq!(normalize("https://github.com/myorg/k8s-manifests/"), a);
        assert_eq!(normalize("https://github.com:443/myorg/k8s-manifests"), a);
        assert_eq!(
            normalize("git@github.com:myorg/k8s-manifests.git"),
            "ssh://git@github.com/myorg/k8s-manifests"
        );
        assert_eq!(
            normalize("ssh://git@GitHub.com/myorg/k8s-manifests"),
            "ssh://git@github.com/myorg/k8s-manifests"
        );
        assert_eq!(normalize("git://host/repo.git"), "git://host/repo");
        assert_eq!(normalize("file:///srv/repo.git/"), "file:///srv/repo");
        assert_eq!(
            cache_key("https://github.com/myorg/k8s-manifests.git"),
            cache_key("https://GITHUB.com/myorg/k8s-manifests")
        );
    }
}
