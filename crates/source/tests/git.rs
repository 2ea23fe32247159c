//! Git sources against real repositories made with `git`: over file:// and over smart HTTP
//! (`git http-backend` behind Basic auth), with branches, tags, force-pushes and deletions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tiphys_source::{Access, GitCache, SourceError};

#[path = "support/tls.rs"]
mod tls;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A working repository with a commit on main, a branch `feature`, an annotated tag `v1`.
fn make_repo(root: &Path) -> PathBuf {
    let work = root.join("work");
    std::fs::create_dir_all(work.join("apps/web")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("apps/web/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("cm.yaml", work.join("apps/web/link.yaml")).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "first"]);
    git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    git(&work, &["checkout", "-qb", "feature"]);
    std::fs::write(work.join("apps/web/extra.yaml"), "x: 1\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "feature"]);
    git(&work, &["checkout", "-q", "main"]);
    work
}

fn bare(root: &Path, work: &Path) -> PathBuf {
    let bare = root.join("served/repo.git");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}

#[test]
fn resolves_every_kind_of_revision_over_file_urls() {
    let tmp = tempfile::tempdir().unwrap();
    let work = make_repo(tmp.path());
    let served = bare(tmp.path(), &work);
    let url = format!("file://{}", served.display());
    let cache = GitCache::new(tmp.path().join("cache"));
    let anon = Access::default();

    let main = git(&work, &["rev-parse", "main"]);
    let feature = git(&work, &["rev-parse", "feature"]);
    assert_eq!(cache.resolve(&url, "HEAD", &anon).unwrap(), main);
    let shallow_file = cache.repo_dir(&url).join("shallow");
    assert!(
        shallow_file.exists(),
        "an advertised revision is fetched at depth 1"
    );
    assert_eq!(cache.resolve(&url, "", &anon).unwrap(), main);
    assert_eq!(cache.resolve(&url, "main", &anon).unwrap(), main);
    assert_eq!(cache.resolve(&url, "feature", &anon).unwrap(), feature);
    assert_eq!(
        cache.resolve(&url, "refs/heads/feature", &anon).unwrap(),
        feature
    );
    assert_eq!(
        cache.resolve(&url, "v1", &anon).unwrap(),
        main,
        "annotated tags peel to their commit"
    );
    assert_eq!(cache.resolve(&url, &feature, &anon).unwrap(), feature);
    assert_eq!(cache.resolve(&url, &feature[..8], &anon).unwrap(), feature);
    assert!(
        !shallow_file.exists(),
        "an abbreviated commit needs (and gets) full history"
    );
    assert!(matches!(
        cache.resolve(&url, "no-such-branch", &anon),
        Err(SourceError::RevisionNotFound { .. })
    ));

    // The tree is exported once per commit, symlinks included.
    let tree = cache.tree(&url, &feature).unwrap();
    assert!(tree.join("apps/web/extra.yaml").is_file());
    assert_eq!(
        std::fs::read_link(tree.join("apps/web/link.yaml")).unwrap(),
        Path::new("cm.yaml")
    );
    assert!(
        !cache
            .tree(&url, &main)
            .unwrap()
            .join("apps/web/extra.yaml")
            .exists()
    );

    // A force-push moves the branch; the next resolve sees it.
    git(&work, &["checkout", "-q", "feature"]);
    git(&work, &["commit", "-q", "--amend", "-m", "rewritten"]);
    let rewritten = git(&work, &["rev-parse", "feature"]);
    git(
        &work,
        &["push", "-q", "--force", served.to_str().unwrap(), "feature"],
    );
    assert_eq!(cache.resolve(&url, "feature", &anon).unwrap(), rewritten);

    // A deleted branch is gone, even though the cache still has its commits.
    git(
        &work,
        &[
            "push",
            "-q",
            served.to_str().unwrap(),
            "--delete",
            "feature",
        ],
    );
    assert!(matches!(
        cache.resolve(&url, "feature", &anon),
        Err(SourceError::RevisionNotFound { .. })
    ));

    // The same repository written another way shares the cache entry.
    let plain_path = served.display().to_string();
    assert_eq!(cache.resolve(&plain_path, "main", &anon).unwrap(), main);

    let missing = format!("file://{}/nope.git", tmp.path().display());
    assert!(
        matches!(
            cache.resolve(&missing, "HEAD", &anon),
            Err(SourceError::RepoNotFound { .. })
        ),
        "{:?}",
        cache.resolve(&missing, "HEAD", &anon)
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_http(root: &Path) -> (Server, u16) {
    serve(root, &[])
}

/// A fresh repository served over smart HTTP: its temp dir, the working copy, the server, the
/// URL.
fn served_over_http() -> (tempfile::TempDir, PathBuf, Server, String) {
    let tmp = tempfile::tempdir().unwrap();
    let work = make_repo(tmp.path());
    bare(tmp.path(), &work);
    let (server, port) = serve_http(tmp.path());
    let url = format!("http://127.0.0.1:{port}/repo.git");
    (tmp, work, server, url)
}

/// The test server; `tls` is `[cert, key, client CA]` file paths for HTTPS with client auth.
fn serve(root: &Path, tls: &[&Path]) -> (Server, u16) {
    let port_file = root.join("port");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/git_http_server.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(root.join("served"))
        .args(["alice", "s3cret"])
        .arg(&port_file)
        .args(tls)
        .spawn()
        .expect("python3 runs");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_file.exists() {
        assert!(Instant::now() < deadline, "git HTTP server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (server, port)
}

#[test]
fn smart_http_with_basic_auth() {
    let (tmp, work, _server, url) = served_over_http();
    let cache = GitCache::new(tmp.path().join("cache"));
    let anon = Access::default();

    let good = Access::basic("alice", "s3cret");
    let bad = Access::basic("alice", "wrong");
    let main = git(&work, &["rev-parse", "main"]);
    assert_eq!(cache.resolve(&url, "HEAD", &good).unwrap(), main);
    assert!(
        cache
            .tree(&url, &main)
            .unwrap()
            .join("apps/web/cm.yaml")
            .is_file()
    );
    let refs = cache.ls_remote(&url, &good).unwrap();
    assert!(refs.iter().any(|r| r.name == "refs/tags/v1"));

    let err = cache.resolve(&url, "HEAD", &bad).unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    let err = cache.resolve(&url, "HEAD", &anon).unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");

    let unreachable = "http://127.0.0.1:9/repo.git";
    let err = cache.resolve(unreachable, "HEAD", &good).unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
}

/// A repository Secret's `proxy`: the fetch goes through it; `noProxy` hosts are reached
/// directly; a proxy that does not answer is an unreachable repository.
#[test]
fn smart_http_through_the_repositorys_proxy() {
    let (tmp, work, _server, url) = served_over_http();
    let proxy = tiphys_testkit::HttpProxy::start();
    let through = |proxy_url: &str, no_proxy: &str| Access {
        proxy: Some(tiphys_source::Proxy {
            url: proxy_url.to_string(),
            no_proxy: no_proxy.to_string(),
        }),
        ..Access::basic("alice", "s3cret")
    };
    let main = git(&work, &["rev-parse", "main"]);

    let cache = GitCache::new(tmp.path().join("cache"));
    assert_eq!(
        cache
            .resolve(&url, "HEAD", &through(&proxy.url, ""))
            .unwrap(),
        main
    );
    assert!(
        cache
            .tree(&url, &main)
            .unwrap()
            .join("apps/web/cm.yaml")
            .is_file()
    );
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|t| t.starts_with(&format!("{url}/info/refs"))),
        "{seen:?}"
    );

    let closed = "http://127.0.0.1:9";
    let fresh = GitCache::new(tmp.path().join("cache-2"));
    let err = fresh
        .resolve(&url, "HEAD", &through(closed, ""))
        .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        fresh
            .resolve(&url, "HEAD", &through(closed, "127.0.0.1"))
            .unwrap(),
        main,
        "noProxy hosts are reached directly"
    );
}

#[test]
fn https_with_insecure_and_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let work = make_repo(tmp.path());
    bare(tmp.path(), &work);
    let pki = tls::pki(tmp.path());
    let (cert, key, ca_file) = (&pki.server_cert, &pki.server_key, &pki.ca);
    let (_server, port) = serve(tmp.path(), &[cert, key, ca_file]);
    let url = format!("https://127.0.0.1:{port}/repo.git");
    let cache = GitCache::new(tmp.path().join("cache"));
    let main = git(&work, &["rev-parse", "main"]);

    let err = cache
        .resolve(&url, "HEAD", &Access::basic("alice", "s3cret"))
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Tls { .. }),
        "an untrusted server certificate is refused: {err:?}"
    );

    let mut access = Access {
        insecure: true,
        ..Access::basic("alice", "s3cret")
    };
    assert!(
        cache.resolve(&url, "HEAD", &access).is_err(),
        "the server requires a client certificate"
    );

    access.tls_client_cert = Some(pki.client.clone());
    assert_eq!(cache.resolve(&url, "HEAD", &access).unwrap(), main);
}

/// A throwaway sshd on 127.0.0.1 that accepts one key for the current user.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sshd(dir: &Path, authorized_key: &Path) -> (Sshd, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host_key = dir.join("host_key");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .unwrap();
    // sshd's privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}\n",
            host_key.display(),
            authorized_key.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new(tiphys_testkit::tool("sshd"))
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sshd (openssh-server) is installed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Sshd(child), port)
}

#[test]
fn ssh_with_a_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let work = make_repo(tmp.path());
    let served = bare(tmp.path(), &work);
    let key = tmp.path().join("id_ed25519");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    let (_sshd, port) = start_sshd(tmp.path(), &key.with_extension("pub"));
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let url = format!("ssh://{user}@127.0.0.1:{port}{}", served.display());
    let cache = GitCache::new(tmp.path().join("cache"));
    let main = git(&work, &["rev-parse", "main"]);

    let access = Access {
        ssh_private_key: Some(std::fs::read_to_string(&key).unwrap()),
        ..Default::default()
    };
    assert_eq!(cache.resolve(&url, "HEAD", &access).unwrap(), main);
    assert!(
        cache
            .tree(&url, &main)
            .unwrap()
            .join("apps/web/cm.yaml")
            .is_file()
    );

    // Another key is refused: an authentication failure, not a missing repository.
    let other = tmp.path().join("other_key");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let wrong = Access {
        ssh_private_key: Some(std::fs::read_to_string(&other).unwrap()),
        ..Default::default()
    };
    let err = GitCache::new(tmp.path().join("cache2"))
        .resolve(&url, "HEAD", &wrong)
        .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
}

/// Two processes sharing one cache directory (two `GitCache`s here): one fetches a new commit
/// while the other holds the repository open from before; the other reads that commit's tree
/// and metadata, and its next fetch still works (its refs now name objects in a pack its open
/// handle had not seen).
#[test]
fn a_fetch_by_another_process_does_not_break_this_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let work = make_repo(tmp.path());
    let served = bare(tmp.path(), &work);
    let url = format!("file://{}", served.display());
    let anon = Access::default();
    let push = |n: usize| {
        std::fs::write(work.join("apps/web/cm.yaml"), format!("n: {n}\n")).unwrap();
        git(&work, &["commit", "-qam", &format!("change {n}")]);
        git(&work, &["push", "-q", served.to_str().unwrap(), "main"]);
        git(&work, &["rev-parse", "main"])
    };
    let this = GitCache::new(tmp.path().join("cache"));
    let first = git(&work, &["rev-parse", "main"]);
    assert_eq!(this.resolve(&url, "main", &anon).unwrap(), first);
    assert!(this.tree(&url, &first).is_ok());
    for n in 0..3 {
        let theirs = push(2 * n);
        let other = GitCache::new(tmp.path().join("cache"));
        assert_eq!(other.resolve(&url, "main", &anon).unwrap(), theirs);
        assert!(other.tree(&url, &theirs).is_ok());
        // The commit the other fetched, read through this one's handle from before.
        let tree = this.tree(&url, &theirs).unwrap();
        assert_eq!(
            std::fs::read_to_string(tree.join("apps/web/cm.yaml")).unwrap(),
            format!("n: {}\n", 2 * n)
        );
        let meta = this.commit_metadata(&url, &theirs, &anon).unwrap();
        assert_eq!(meta.message, format!("change {}", 2 * n));
        let ours = push(2 * n + 1);
        assert_eq!(this.resolve(&url, "main", &anon).unwrap(), ours);
        assert!(this.tree(&url, &ours).is_ok(), "round {n}");
    }
}
