//! `tiphys render` end to end: a real git repository laid out like the seed article, the
//! seed's Application pointed at it, and bad input reported with file and line.

use std::path::Path;
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn tiphys(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(args)
        .env("TIPHYS_CACHE_DIR", cache)
        .output()
        .unwrap()
}

#[test]
fn renders_the_seed_application_from_a_real_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("k8s-manifests");
    write(
        &repo,
        "apps/payment-service/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payment-service\nspec:\n  selector: {matchLabels: {app: payment}}\n  template:\n    metadata: {labels: {app: payment}}\n    spec:\n      containers:\n      - name: app\n        image: payment:1.0\n",
    );
    write(
        &repo,
        "apps/payment-service/base/kustomization.yaml",
        "resources:\n- deployment.yaml\n",
    );
    write(
        &repo,
        "apps/payment-service/overlays/production/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: prod-\n",
    );
    write(
        &repo,
        "apps/broken/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nkind: ConfigMap\nmetadata:\n  name: no-api-version\n",
    );
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);

    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/seed-application.yaml"),
    )
    .unwrap();
    let app = seed.replace(
        "https://github.com/myorg/k8s-manifests",
        &format!("file://{}", repo.display()),
    );
    let app_file = tmp.path().join("app.yaml");
    std::fs::write(&app_file, app).unwrap();
    let cache = tmp.path().join("cache");

    let out = tiphys(&["render", "-f", app_file.to_str().unwrap()], &cache);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("name: prod-payment-service"), "{stdout}");
    assert!(stdout.starts_with("---\n"));

    let url = format!("file://{}", repo.display());
    let out = tiphys(
        &[
            "render",
            "--repo",
            &url,
            "--revision",
            "main",
            "--path",
            "apps/payment-service/base",
        ],
        &cache,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: payment-service"));

    let out = tiphys(&["render", "--repo", &url, "--path", "apps/broken"], &cache);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apps/broken/bad.yaml:6") && err.contains("apiVersion is missing"),
        "{err}"
    );

    let out = tiphys(
        &["render", "--repo", &url, "--revision", "no-such-branch"],
        &cache,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revision \"no-such-branch\" not found"));
}
