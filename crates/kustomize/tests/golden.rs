//! Every tree under `tests/trees` builds to exactly what `kubectl kustomize` (kustomize v5.5)
//! printed for it (`expected.yaml`), and — when kubectl is on PATH — still prints.

use std::path::{Path, PathBuf};

fn trees() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Trees with `helmCharts` need `--enable-helm` for kubectl (and helm on PATH).
fn uses_helm(tree: &Path) -> bool {
    std::fs::read_to_string(target(tree).join("kustomization.yaml"))
        .is_ok_and(|k| k.contains("helmChart"))
}

/// The directory to build: an `overlay/`, `overlays/production/` or `config/default/` (a
/// kubebuilder layout) when the tree has one.
fn target(tree: &Path) -> PathBuf {
    for sub in ["overlay", "overlays/production", "config/default"] {
        if tree.join(sub).is_dir() {
            return tree.join(sub);
        }
    }
    tree.to_path_buf()
}

#[test]
fn builds_match_kubectl_kustomize_golden_files() {
    tiphys_kustomize::helm::use_binary(tiphys_testkit::tool("helm"));
    let mut failures = Vec::new();
    let all = trees();
    assert!(all.len() >= 20);
    for tree in &all {
        let expected = std::fs::read_to_string(tree.join("expected.yaml")).unwrap();
        match tiphys_kustomize::build_yaml(&target(tree)) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                tree.display()
            )),
            Err(e) => failures.push(format!("{}: {e}", tree.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} trees differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_files_are_what_kubectl_kustomize_prints_today() {
    let kubectl = tiphys_testkit::tool("kubectl");
    for tree in trees() {
        let mut cmd = std::process::Command::new(&kubectl);
        cmd.arg("kustomize").arg(target(&tree));
        if uses_helm(&tree) {
            cmd.arg("--enable-helm")
                .env("PATH", tiphys_testkit::path_with(&["helm"]));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            tree.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read_to_string(tree.join("expected.yaml")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{}",
            tree.display()
        );
    }
}
