//! `tiphys kustomize build`: native output, and remote bases fetched from a real git
//! repository through the source layer.

use std::process::Command;

mod common;
use common::{git, write};

#[test]
fn remote_bases_come_from_git() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("platform");
    write(
        &repo,
        "bases/web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: blue\n",
    );
    write(
        &repo,
        "bases/web/kustomization.yaml",
        "resources: [cm.yaml]\n",
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "v1"]);
    git(&repo, &["tag", "v1"]);
    write(
        &repo,
        "bases/web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: green\n",
    );
    git(&repo, &["commit", "-qam", "v2"]);

    let overlay = tmp.path().join("overlay");
    let build = || {
        Command::new(env!("CARGO_BIN_EXE_tiphys"))
            .args(["kustomize", "build"])
            .arg(&overlay)
            .env("TIPHYS_CACHE_DIR", tmp.path().join("cache"))
            .output()
            .unwrap()
    };
    write(
        &overlay,
        "kustomization.yaml",
        &format!(
            "resources:\n- file://{}//bases/web?ref=v1\nnamePrefix: prod-\n",
            repo.display()
        ),
    );
    let out = build();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("name: prod-web-config") && stdout.contains("color: blue"),
        "the tagged revision is used: {stdout}"
    );

    write(
        &overlay,
        "kustomization.yaml",
        &format!(
            "resources:\n- file://{}//bases/missing?ref=main\n",
            repo.display()
        ),
    );
    let out = build();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no directory \"bases/missing\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
