//! Native Kustomize vs `kubectl kustomize` on the same trees, measured in the same run:
//! a base of Deployments, Services and ConfigMaps under an overlay with a prefix, labels,
//! an image override, a generator and a strategic patch, at 5, 100, 1,000 and 4,000 objects.
//!
//! `cargo bench -p tiphys-kustomize --bench build`

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

fn time<F: FnMut()>(mut f: F, min_runs: usize, budget: Duration) -> Duration {
    let start = Instant::now();
    let mut runs = 0;
    while runs < min_runs || (start.elapsed() < budget && runs < 50) {
        f();
        runs += 1;
    }
    start.elapsed() / runs as u32
}

fn main() {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    println!(
        "{:>8}  {:>12}  {:>16}  {:>8}",
        "objects", "tiphys", "kubectl kustomize", "ratio"
    );
    for objects in [5, 100, 1_000, 4_000] {
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path(), objects);
        let overlay = tmp.path().join("overlay");
        let ours_output = tiphys_kustomize::build_yaml(&overlay).unwrap();
        let theirs_output = Command::new(&kubectl)
            .arg("kustomize")
            .arg(&overlay)
            .output()
            .expect("kubectl on PATH");
        assert_eq!(
            ours_output,
            String::from_utf8_lossy(&theirs_output.stdout),
            "outputs differ at {objects} objects"
        );
        let ours = time(
            || drop(tiphys_kustomize::build_yaml(&overlay).unwrap()),
            3,
            Duration::from_secs(2),
        );
        let theirs = time(
            || {
                let out = Command::new(&kubectl)
                    .arg("kustomize")
                    .arg(&overlay)
                    .output()
                    .unwrap();
                assert!(out.status.success());
            },
            2,
            Duration::from_secs(3),
        );
        println!(
            "{objects:>8}  {:>10.2}ms  {:>14.1}ms  {:>7.0}x",
            ours.as_secs_f64() * 1e3,
            theirs.as_secs_f64() * 1e3,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
