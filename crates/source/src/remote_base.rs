//! Kustomize remote resource URLs: which repository, which directory in it, which revision.

/// `https://github.com/org/repo//sub/dir?ref=v1` and its variants, split into
/// (repository URL, path inside it, revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBase {
    pub repo: String,
    pub path: String,
    pub revision: String,
}

pub fn parse(url: &str) -> Option<RemoteBase> {
    let (location, query) = url.split_once('?').unwrap_or((url, ""));
    let revision = query
        .split('&')
        .find_map(|kv| {
            kv.strip_prefix("ref=")
                .or_else(|| kv.strip_prefix("version="))
        })
        .unwrap_or("HEAD")
        .to_string();
    let location = location.strip_prefix("git::").unwrap_or(location);
    // An explicit `//` after the scheme separates the repository from the path in it.
    let scheme_end = location.find("://").map(|i| i + 3).unwrap_or(0);
    if let Some(i) = location[scheme_end..].find("//") {
        let split = scheme_end + i;
        return Some(RemoteBase {
            repo: location[..split].to_string(),
            path: location[split + 2..].trim_matches('/').to_string(),
            revision,
        });
    }
    // `github.com/org/repo/path`: the first two segments name the repository.
    for host in ["github.com/", "gitlab.com/"] {
        if let Some(rest) = location
            .strip_prefix(host)
            .or_else(|| location.strip_prefix(&format!("https://{host}")))
        {
            let mut parts = rest.splitn(3, '/');
            let (org, repo) = (parts.next()?, parts.next()?);
            return Some(RemoteBase {
                repo: format!("https://{host}{org}/{repo}"),
                path: parts
                    .next()
                    .unwrap_or_default()
                    .trim_matches('/')
                    .to_string(),
                revision,
            });
        }
    }
    Some(RemoteBase {
        repo: location.to_string(),
        path: String::new(),
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_base_forms() {
        let p = |u| parse(u).unwrap();
        assert_eq!(
            p("https://github.com/org/repo//deploy/base?ref=v1.2"),
            RemoteBase {
                repo: "https://github.com/org/repo".into(),
                path: "deploy/base".into(),
                revision: "v1.2".into()
            }
        );
        assert_eq!(
            p("git@github.com:org/repo.git//base").repo,
            "git@github.com:org/repo.git"
        );
        assert_eq!(
            p("github.com/org/repo/config/default?ref=main"),
            RemoteBase {
                repo: "https://github.com/org/repo".into(),
                path: "config/default".into(),
                revision: "main".into()
            }
        );
        assert_eq!(p("file:///srv/repo//apps?version=abc").path, "apps");
        assert_eq!(p("https://example.com/repo.git").revision, "HEAD");
    }
}
