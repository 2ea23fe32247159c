//! Native Kustomize vs `kubectl kustomize` on the same trees, measured in the same run:
//! a base of Deployments, Services and ConfigMaps under an overlay with a prefix, labels,
//! an image override, a generator and a strategic patch, at 5, 100, 1,000 and 4,000 objects.
//! Two figures for Tiphys: the `tiphys kustomize build` process (what a user runs), and the
//! library call the controller makes when it renders an Application (no process start).
//!
//! `cargo bench -p tiphys --bench kustomize`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn write_tree(root: &Path, objects: usize) {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&overlay).unwrap();
    let apps = objects.div_ceil(3);
    let mut text = String::new();
    for i in 0..apps {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n        envFrom:\n        - configMapRef: {{name: settings}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n  selector: {{app: app-{i}}}\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  index: \"{i}\"\n"
        ));
    }
    std::fs::write(base.join("resources.yaml"), text).unwrap();
    std::fs::write(
        base.join("kustomization.yaml"),
        "resources:\n- resources.yaml\n",
    )
    .unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n- ../base\nnamePrefix: prod-\ncommonLabels:\n  env: prod\nimages:\n- name: nginx\n  newTag: \"1.28\"\nconfigMapGenerator:\n- name: settings\n  literals: [MODE=prod]\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: any\n    spec:\n      replicas: 2\n",
    )
    .unwrap();
}

/// The median of repeated runs (at least `min_runs`, more while `budget` lasts): on a
/// shared machine the median is steadier than the mean, for both sides alike.
fn time<F: FnMut()>(mut f: F, min_runs: usize, budget: Duration) -> Duration {
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min_runs || (start.elapsed() < budget && samples.len() < 50) {
        let run = Instant::now();
        f();
        samples.push(run.elapsed());
    }
    samples.sort();
    samples[(samples.len() - 1) / 2]
}

fn main() {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let tiphys = env!("CARGO_BIN_EXE_tiphys");
    println!(
        "{:>8}  {:>14}  {:>14}  {:>18}  {:>13}  {:>13}",
        "objects",
        "tiphys build",
        "library call",
        "kubectl kustomize",
        "ratio (build)",
        "ratio (call)"
    );
    for objects in [5, 100, 1_000, 4_000] {
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path(), objects);
        let overlay = tmp.path().join("overlay");
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .arg(&overlay)
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(out.status.success(), "{program} failed");
            out.stdout
        };
        let theirs_output = run(&kubectl, &["kustomize"]);
        assert_eq!(
            run(tiphys, &["kustomize", "build"]),
            theirs_output,
            "outputs differ at {objects} objects"
        );
        assert_eq!(
            tiphys_kustomize::build_yaml(&overlay).unwrap().as_bytes(),
            theirs_output,
        );
        let process = time(
            || drop(run(tiphys, &["kustomize", "build"])),
            3,
            Duration::from_secs(2),
        );
        let library = time(
            || drop(tiphys_kustomize::build_yaml(&overlay).unwrap()),
            3,
            Duration::from_secs(2),
        );
        let theirs = time(
            || drop(run(&kubectl, &["kustomize"])),
            2,
            Duration::from_secs(3),
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{objects:>8}  {:>12.1}ms  {:>12.1}ms  {:>16.1}ms  {:>12.0}x  {:>12.0}x",
            ms(process),
            ms(library),
            ms(theirs),
            ms(theirs) / ms(process),
            ms(theirs) / ms(library),
        );
    }
}
