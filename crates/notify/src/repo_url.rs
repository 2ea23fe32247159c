//! Repository URLs as people read them: the `https://` form a browser opens, and GitHub's
//! `owner/repo`.

/// `git@host:org/repo.git` and `ssh://git@host/org/repo` as `https://host/org/repo`.
pub fn to_https(url: &str) -> String {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("ssh://") {
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        return format!("https://{}", rest.trim_end_matches(".git"));
    }
    if !url.contains("://")
        && let Some((user_host, path)) = url.split_once(':')
    {
        let host = user_host.split_once('@').map_or(user_host, |(_, h)| h);
        return format!("https://{host}/{}", path.trim_end_matches(".git"));
    }
    url.trim_end_matches(".git").to_string()
}

/// `owner/repo` of a repository URL in any of its spellings.
pub fn full_name(url: &str) -> Option<String> {
    let https = to_https(url);
    let path = https.split_once("://")?.1.split_once('/')?.1;
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let repo = parts.next()?;
    let owner = parts.next()?;
    (!repo.is_empty() && !owner.is_empty()).then(|| format!("{owner}/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(
            to_https("git@github.com:org/repo.git"),
            "https://github.com/org/repo"
        );
        assert_eq!(
            to_https("ssh://git@ghe.corp/org/repo.git"),
            "https://ghe.corp/org/repo"
        );
        assert_eq!(
            full_name("https://github.com/org/repo.git").as_deref(),
            Some("org/repo")
        );
        assert_eq!(
            full_name("git@github.com:org/repo.git").as_deref(),
            Some("org/repo")
        );
        assert_eq!(full_name("nothing"), None);
    }
}
