//! The refs of a repository on this machine (`file://` or a plain path), read in-process.
//!
//! Over `file://`, git's transport starts a `git-upload-pack` process per ref advertisement.
//! Polling every few seconds, those processes cost an idle controller more CPU than all of its
//! own work; reading the same refs from the directory gives the same answer — what
//! `git-upload-pack` would advertise for `HEAD`, `refs/heads/*` and `refs/tags/*`, tags peeled
//! to what they point at — without one. Anything unusual (not a URL for this machine, not
//! a repository gix opens, a ref that does not peel) answers `None`: the transport then
//! asks as before and reports what is wrong in its own words.

use std::path::PathBuf;

use crate::RemoteRef;

/// The directory a `file://` URL or plain path names; `None` for any other URL.
fn local_path(url: &str) -> Option<PathBuf> {
    let parsed = gix::url::parse(url.as_bytes()).ok()?;
    if parsed.scheme != gix::url::Scheme::File {
        return None;
    }
    gix::path::from_bstring(parsed.path).ok()
}

/// The refs `git-upload-pack` would advertise for the repository at `url`, if it is a
/// repository on this machine that reads cleanly.
pub(crate) fn advertised_refs(url: &str) -> Option<Vec<RemoteRef>> {
    let path = local_path(url)?;
    let repo = gix::open_opts(&path, gix::open::Options::isolated()).ok()?;
    let mut refs = Vec::new();
    // An unborn HEAD is not advertised.
    if let Ok(head) = repo.head_id() {
        refs.push(RemoteRef {
            name: "HEAD".to_string(),
            commit: head.to_string(),
        });
    }
    let platform = repo.references().ok()?;
    let branches = platform.local_branches().ok()?;
    let tags = platform.tags().ok()?;
    for reference in branches.chain(tags) {
        let mut reference = reference.ok()?;
        // Peeling follows a symbolic ref and renames the reference to its target: the name
        // advertised is the one it had.
        let name = reference.name().as_bstr().to_string();
        let commit = reference.peel_to_id().ok()?.to_string();
        refs.push(RemoteRef { name, commit });
    }
    Some(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_for_this_machine_are_read_locally() {
        assert_eq!(
            local_path("file:///srv/repo"),
            Some(PathBuf::from("/srv/repo"))
        );
        assert_eq!(local_path("/srv/repo"), Some(PathBuf::from("/srv/repo")));
        assert_eq!(local_path("https://example.com/repo.git"), None);
        assert_eq!(local_path("git@example.com:org/repo.git"), None);
        assert_eq!(local_path("ssh://git@example.com/repo"), None);
    }

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `git ls-remote`'s answer as a remote ref list: tags peeled (`^{}`) where git peels.
    fn ls_remote(url: &str, dir: &std::path::Path) -> Vec<RemoteRef> {
        let listing = git(
            dir,
            &["ls-remote", url, "HEAD", "refs/heads/*", "refs/tags/*"],
        );
        let mut refs: Vec<RemoteRef> = Vec::new();
        for line in listing.lines() {
            let (commit, name) = line.split_once('\t').unwrap();
            match name.strip_suffix("^{}") {
                Some(tag) => {
                    refs.iter_mut().find(|r| r.name == tag).unwrap().commit = commit.into()
                }
                None => refs.push(RemoteRef {
                    name: name.into(),
                    commit: commit.into(),
                }),
            }
        }
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        refs
    }

    #[test]
    fn answers_what_git_upload_pack_advertises() {
        let dir = std::env::temp_dir().join(format!("tiphys-local-ls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = dir.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let url = format!("file://{}", repo.display());
        // Unborn HEAD: nothing is advertised.
        assert_eq!(advertised_refs(&url), Some(Vec::new()));
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&repo, &["tag", "-a", "v1", "-m", "annotated"]);
        git(&repo, &["tag", "light"]);
        git(
            &repo,
            &["tag", "-a", "v1-again", "-m", "tag of a tag", "v1"],
        );
        git(&repo, &["checkout", "-q", "-b", "feature"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(
            &repo,
            &["symbolic-ref", "refs/heads/alias", "refs/heads/feature"],
        );
        git(&repo, &["pack-refs", "--all"]);
        git(
            &repo,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "three (loose ref over packed)",
            ],
        );
        git(&repo, &["update-ref", "refs/pull/1/head", "HEAD"]);

        let mut ours = advertised_refs(&url).unwrap();
        ours.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(ours, ls_remote(&url, &dir));
        assert!(ours.iter().any(|r| r.name == "refs/tags/v1-again"));
        assert!(!ours.iter().any(|r| r.name.starts_with("refs/pull/")));

        // A detached HEAD is advertised as the commit it is at.
        git(&repo, &["checkout", "-q", "--detach", "main"]);
        let mut ours = advertised_refs(&url).unwrap();
        ours.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(ours, ls_remote(&url, &dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_that_is_no_repository_is_left_to_the_transport() {
        let dir = std::env::temp_dir().join(format!("tiphys-local-refs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(advertised_refs(&format!("file://{}", dir.display())).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
