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
    let build = || tiphys_kustomize_build(&overlay, tmp.path());
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

/// `tiphys kustomize build DIR` with its git cache under `scratch`.
fn tiphys_kustomize_build(
    dir: &std::path::Path,
    scratch: &std::path::Path,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(["kustomize", "build"])
        .arg(dir)
        .env("TIPHYS_CACHE_DIR", scratch.join("cache"))
        .env("HELM", tiphys_testkit::tool("helm"))
        .output()
        .unwrap()
}

/// The output of a `tiphys kustomize build` that must succeed.
fn tiphys_build(dir: &std::path::Path, scratch: &std::path::Path) -> String {
    let out = tiphys_kustomize_build(dir, scratch);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Serve `files` (path → body) over HTTP on a local port until the process ends; any other
/// path is a 404. Returns the base URL.
fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("");
            let (status, body): (&str, &[u8]) = match files.iter().find(|(p, _)| p == path) {
                Some((_, body)) => ("200 OK", body),
                None => ("404 Not Found", b""),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    base
}

#[test]
fn remote_files_are_fetched_over_http_as_kustomize_does() {
    let base = serve(vec![(
        "/manifests/cm.yaml".into(),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote\ndata:\n  from: http\n"
            .to_vec(),
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let ok = tmp.path().join("ok");
    write(
        &ok,
        "kustomization.yaml",
        &format!("resources:\n- {base}/manifests/cm.yaml\nnamePrefix: x-\n"),
    );
    let ours = tiphys_build(&ok, tmp.path());
    assert!(
        ours.contains("name: x-remote") && ours.contains("from: http"),
        "{ours}"
    );
    let theirs = Command::new(tiphys_testkit::tool("kubectl"))
        .arg("kustomize")
        .arg(&ok)
        .output()
        .unwrap();
    assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout));

    // A missing file is an error naming the URL, as in kustomize.
    let missing = tmp.path().join("missing");
    write(
        &missing,
        "kustomization.yaml",
        &format!("resources:\n- {base}/manifests/nope.yaml\n"),
    );
    let out = tiphys_kustomize_build(&missing, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/manifests/nope.yaml") && stderr.contains("404"),
        "{stderr}"
    );
}

#[test]
fn helm_charts_are_pulled_from_their_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let helm = |args: &[&str]| {
        let out = Command::new(tiphys_testkit::tool("helm"))
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A real chart repository: a packaged chart and its index, served over HTTP.
    helm(&["create", "shop"]);
    helm(&["package", "shop", "-d", "repo"]);
    helm(&["repo", "index", "repo"]);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(tmp.path().join("repo")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        files.push((format!("/{name}"), std::fs::read(&path).unwrap()));
    }
    let repo = serve(files);
    let tree = tmp.path().join("app");
    write(
        &tree,
        "kustomization.yaml",
        &format!(
            "helmCharts:\n- name: shop\n  repo: {repo}\n  version: 0.1.0\n  releaseName: demo\n  valuesInline:\n    replicaCount: 3\nnamePrefix: x-\n"
        ),
    );
    let ours = tiphys_build(&tree, tmp.path());
    assert!(
        ours.contains("name: x-demo-shop") && ours.contains("replicas: 3"),
        "{ours}"
    );
    // The tree is left as it was: the chart was pulled to a scratch directory.
    assert!(!tree.join("charts").exists());
    let theirs = Command::new(tiphys_testkit::tool("kubectl"))
        .args(["kustomize", "--enable-helm"])
        .arg(&tree)
        .env("PATH", tiphys_testkit::path_with(&["helm"]))
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout));
}
