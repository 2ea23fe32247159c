//! The differential fuzzer: random kustomization trees — a base of Deployments, Services,
//! ConfigMaps and a generator, sometimes a middle level, and an overlay with patches
//! (JSON, strategic merge into containers and pod-template metadata), generators, a component
//! and replacements (also into label fields) — built by this engine and by
//! `kubectl kustomize` (kustomize v5.5), outputs compared byte for byte, errors compared as
//! "both refuse". Ignored by default (it runs kubectl hundreds of times); run it with
//!
//! ```text
//! cargo test -p tiphys-kustomize --test differential -- --ignored --nocapture
//! TIPHYS_FUZZ_CASES=2000 TIPHYS_FUZZ_SEED=7 cargo test -p tiphys-kustomize --test differential -- --ignored
//! ```
//!
//! `TIPHYS_FUZZ_VERBOSE=1` prints why each case both refuse was refused. Every disagreement is
//! kept under `<target>/tmp/kustomize-fuzz/<seed>-<case>/` (the tree,
//! both outputs) so it can become a golden tree under `tests/trees` once fixed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &["web", "api", "db", "cache", "worker"];
const NAMESPACES: &[&str] = &["", "", "team-a", "team-b"];
const LABEL_KEYS: &[&str] = &["app", "tier", "env", "team"];
const LABEL_VALUES: &[&str] = &["web", "prod", "blue", "x1", "a-b"];
const IMAGES: &[&str] = &["nginx", "redis:7", "ghcr.io/org/api:1.2", "busybox"];

fn metadata(rng: &mut Rng, name: &str) -> String {
    let mut out = format!("metadata:\n  name: {name}\n");
    let ns = rng.pick(NAMESPACES);
    if !ns.is_empty() {
        let _ = writeln!(out, "  namespace: {ns}");
    }
    if rng.chance(50) {
        let _ = writeln!(
            out,
            "  labels:\n    {}: {}",
            rng.pick(LABEL_KEYS),
            rng.pick(LABEL_VALUES)
        );
    }
    out
}

fn deployment(rng: &mut Rng, name: &str, config: Option<&str>) -> String {
    let mut out = format!(
        "apiVersion: apps/v1\nkind: Deployment\n{}",
        metadata(rng, name)
    );
    let _ = write!(
        out,
        "spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: main\n        image: {}\n",
        1 + rng.below(3),
        rng.pick(IMAGES)
    );
    if let Some(cm) = config {
        let _ = write!(
            out,
            "        envFrom:\n        - configMapRef:\n            name: {cm}\n      volumes:\n      - name: cfg\n        configMap:\n          name: {cm}\n"
        );
    }
    out
}

fn service(rng: &mut Rng, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\n{}spec:\n  selector:\n    app: {name}\n  ports:\n  - port: {}\n",
        metadata(rng, name),
        80 + rng.below(3)
    )
}

fn configmap(rng: &mut Rng, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\n{}data:\n  key: \"{}\"\n",
        metadata(rng, name),
        rng.pick(LABEL_VALUES)
    )
}

/// A kustomization's transformers, each present at random.
fn transformers(rng: &mut Rng, out: &mut String, level: &str, deployments: &[&str]) {
    if rng.chance(40) {
        let _ = writeln!(out, "namePrefix: {level}-");
    }
    if rng.chance(25) {
        let _ = writeln!(out, "nameSuffix: -{level}");
    }
    if rng.chance(30) {
        let _ = writeln!(
            out,
            "namespace: {}",
            rng.pick(&["team-a", "ns-x", "default"])
        );
    }
    if rng.chance(30) {
        let _ = writeln!(
            out,
            "commonLabels:\n  {}: {}",
            rng.pick(LABEL_KEYS),
            rng.pick(LABEL_VALUES)
        );
    }
    if rng.chance(30) {
        let _ = writeln!(
            out,
            "labels:\n- pairs:\n    {}: {}\n  includeSelectors: {}\n  includeTemplates: {}",
            rng.pick(LABEL_KEYS),
            rng.pick(LABEL_VALUES),
            rng.chance(50),
            rng.chance(50)
        );
    }
    if rng.chance(30) {
        let _ = writeln!(
            out,
            "commonAnnotations:\n  note: \"{}\"",
            rng.pick(LABEL_VALUES)
        );
    }
    if rng.chance(30) {
        let _ = writeln!(
            out,
            "images:\n- name: {}\n  newTag: \"{}\"",
            rng.pick(&["nginx", "redis", "busybox"]),
            rng.pick(&["1.0", "latest", "2"])
        );
    }
    if !deployments.is_empty() && rng.chance(20) {
        let _ = writeln!(
            out,
            "replicas:\n- name: {}\n  count: {}",
            rng.pick(deployments),
            rng.below(5)
        );
    }
}

/// One random tree under `dir`; the directory to build.
fn tree(rng: &mut Rng, dir: &Path) -> PathBuf {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let mut resources = Vec::new();
    let count = 1 + rng.below(4);
    let mut used = Vec::new();
    let mut deployments = Vec::new();
    for _ in 0..count {
        let name = rng.pick(NAMES);
        if used.contains(&name) {
            continue;
        }
        used.push(name);
        let config = rng.chance(50).then_some("settings");
        let text = match rng.below(3) {
            0 => {
                deployments.push(name);
                deployment(rng, name, config)
            }
            1 => service(rng, name),
            _ => configmap(rng, name),
        };
        write(&format!("base/{name}.yaml"), &text);
        resources.push(format!("{name}.yaml"));
    }
    let mut base = format!(
        "resources:\n{}",
        resources
            .iter()
            .map(|r| format!("- {r}\n"))
            .collect::<String>()
    );
    let generated = rng.chance(60);
    if generated {
        let _ = writeln!(
            base,
            "configMapGenerator:\n- name: settings\n  literals:\n  - mode={}",
            rng.pick(LABEL_VALUES)
        );
    }
    transformers(rng, &mut base, "base", &deployments);
    write("base/kustomization.yaml", &base);
    if rng.chance(30) {
        return dir.join("base");
    }
    // Sometimes a level between: what a level shares with the one above it must survive one
    // in between.
    let parent = if rng.chance(30) {
        let mut mid = String::from("resources:\n- ../base\n");
        transformers(rng, &mut mid, "mid", &deployments);
        write("mid/kustomization.yaml", &mid);
        "../mid"
    } else {
        "../base"
    };
    let mut overlay = format!("resources:\n- {parent}\n");
    transformers(rng, &mut overlay, "prod", &deployments);
    if rng.chance(40) {
        let target = used[rng.below(used.len())];
        let _ = writeln!(
            overlay,
            "patches:\n- target:\n    name: {target}\n  patch: |-\n    - op: add\n      path: /metadata/annotations\n      value:\n        patched: \"true\""
        );
    }
    if rng.chance(30) {
        let _ = writeln!(
            overlay,
            "configMapGenerator:\n- name: settings\n  behavior: {}\n  literals:\n  - extra=1",
            rng.pick(&["merge", "replace", "create"])
        );
    }
    if !deployments.is_empty() && rng.chance(40) {
        // A strategic merge patch of a container, merged by name; sometimes also of the pod
        // template's labels and annotations, which lower levels' values may share with the
        // selector and the object's metadata.
        let target = deployments[rng.below(deployments.len())];
        let template_metadata = if rng.chance(50) {
            format!(
                "      metadata:\n        labels:\n          {}: {}\n        annotations:\n          note: {}\n",
                rng.pick(LABEL_KEYS),
                rng.pick(LABEL_VALUES),
                rng.pick(LABEL_VALUES)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            overlay,
            "patchesStrategicMerge:\n- |-\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: {target}\n  spec:\n    template:\n{}      spec:\n        containers:\n        - name: main\n          env:\n          - name: MODE\n            value: {}",
            template_metadata,
            rng.pick(LABEL_VALUES)
        );
    }
    if !deployments.is_empty() && rng.chance(20) {
        // A replacement into a label field: a write into whatever node the field shares.
        let target = deployments[rng.below(deployments.len())];
        let _ = writeln!(
            overlay,
            "replacements:\n- source:\n    kind: Deployment\n    name: {target}\n    fieldPath: metadata.name\n  targets:\n  - select:\n      kind: Deployment\n    fieldPaths:\n    - {}.{}\n    options:\n      create: {}",
            rng.pick(&[
                "metadata.labels",
                "spec.selector.matchLabels",
                "spec.template.metadata.labels"
            ]),
            rng.pick(LABEL_KEYS),
            rng.chance(50)
        );
    }
    if rng.chance(25) {
        let _ = writeln!(
            overlay,
            "secretGenerator:\n- name: creds\n  literals:\n  - password={}\ngeneratorOptions:\n  disableNameSuffixHash: {}\n  labels:\n    generated: \"yes\"",
            rng.pick(LABEL_VALUES),
            rng.chance(30)
        );
    }
    if generated && rng.chance(35) {
        write(
            "component/kustomization.yaml",
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  component: \"{}\"\nreplacements:\n- source:\n    kind: ConfigMap\n    name: settings\n    fieldPath: metadata.name\n  targets:\n  - select:\n      kind: Deployment\n    fieldPaths:\n    - spec.template.metadata.annotations.settings\n    options:\n      create: true\n",
                rng.pick(LABEL_VALUES)
            ),
        );
        overlay.push_str("components:\n- ../component\n");
    }
    write("overlay/kustomization.yaml", &overlay);
    dir.join("overlay")
}

#[test]
#[ignore = "runs kubectl kustomize once per case; see the module documentation"]
fn random_trees_build_as_kubectl_kustomize_builds_them() {
    let kubectl = tiphys_testkit::tool("kubectl");
    let cases: usize = std::env::var("TIPHYS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("TIPHYS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kustomize-fuzz");
    let mut disagreements = Vec::new();
    let mut both_refused = 0;
    for case in 0..cases {
        let mut rng = Rng(seed
            .wrapping_mul(0x9E3779B97F4A7C15)
            .wrapping_add(case as u64 + 1));
        let tmp = tempfile::tempdir().unwrap();
        let target = tree(&mut rng, tmp.path());
        let reference = std::process::Command::new(&kubectl)
            .arg("kustomize")
            .arg(&target)
            .output()
            .unwrap();
        let ours = tiphys_kustomize::build_yaml(&target);
        let agree = match (&ours, reference.status.success()) {
            (Ok(text), true) => text.as_bytes() == reference.stdout.as_slice(),
            (Err(e), false) => {
                both_refused += 1;
                if std::env::var_os("TIPHYS_FUZZ_VERBOSE").is_some() {
                    println!("case {case}: both refuse: {e}");
                }
                true
            }
            _ => false,
        };
        if !agree {
            let saved = keep.join(format!("{seed}-{case}"));
            let _ = std::fs::remove_dir_all(&saved);
            copy(tmp.path(), &saved);
            let _ = std::fs::write(saved.join("kubectl.out"), &reference.stdout);
            let _ = std::fs::write(saved.join("kubectl.err"), &reference.stderr);
            let _ = std::fs::write(
                saved.join("tiphys.out"),
                match &ours {
                    Ok(text) => text.clone(),
                    Err(e) => format!("error: {e}\n"),
                },
            );
            disagreements.push(saved.display().to_string());
        }
    }
    println!(
        "{} of {cases} random trees (seed {seed}) agree with kubectl kustomize ({both_refused} refused by both)",
        cases - disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, kept in:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
