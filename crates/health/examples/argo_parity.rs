//! How often Tiphys gives the health Argo CD's own tests expect.
//!
//! `cargo run -p tiphys-health --example argo_parity -- PATH/argo-cd/resource_customizations`
//!
//! Walks every `<group>/<kind>/health_test.yaml` under PATH (`_` stands for `*`, as in Argo's
//! tree), judges each case's `inputPath` object out of the box (built-in checks and the health
//! library) and, where the directory has Argo's `health.lua`, with that script supplied through
//! argocd-cm, and prints each disagreement and the totals. Argo CD's tree is not vendored here:
//! point it at a checkout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use tiphys_health::{CustomHealth, explain};

#[derive(Deserialize)]
struct Tests {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    health_status: Expected,
    input_path: String,
}

#[derive(Deserialize)]
struct Expected {
    #[serde(default)]
    status: String,
}

#[derive(Default)]
struct Tally {
    cases: usize,
    out_of_box: usize,
    scripted_cases: usize,
    scripted: usize,
}

fn main() -> Result<(), String> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: argo_parity PATH/resource_customizations")?;
    let mut files = Vec::new();
    collect(&root, &mut files).map_err(|e| format!("{}: {e}", root.display()))?;
    files.sort();
    let mut per_kind: BTreeMap<String, Tally> = BTreeMap::new();
    for file in files {
        let dir = file.parent().unwrap_or(&root);
        let target = dir
            .strip_prefix(&root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let tests: Tests =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let scripted = std::fs::read_to_string(dir.join("health.lua"))
            .ok()
            .map(|script| {
                CustomHealth::from_config(&BTreeMap::from([(
                    format!("resource.customizations.health.{}", argo_key(&target)),
                    script,
                )]))
            });
        let tally = per_kind.entry(target.clone()).or_default();
        for case in tests.tests {
            let input = dir.join(&case.input_path);
            let text =
                std::fs::read_to_string(&input).map_err(|e| format!("{}: {e}", input.display()))?;
            let object: Value =
                serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", input.display()))?;
            let want = case.health_status.status;
            let got = status(&object, &CustomHealth::default());
            tally.cases += 1;
            if got == want {
                tally.out_of_box += 1;
            } else {
                println!(
                    "{target}/{}: Argo {want:?}, Tiphys {got:?}",
                    case.input_path
                );
            }
            if let Some(custom) = &scripted {
                tally.scripted_cases += 1;
                let with_script = status(&object, custom);
                if with_script == want {
                    tally.scripted += 1;
                } else {
                    println!(
                        "{target}/{}: Argo {want:?}, Argo's script here {with_script:?}",
                        case.input_path
                    );
                }
            }
        }
    }
    let total = per_kind.values().fold(Tally::default(), |mut t, k| {
        t.cases += k.cases;
        t.out_of_box += k.out_of_box;
        t.scripted_cases += k.scripted_cases;
        t.scripted += k.scripted;
        t
    });
    println!(
        "{} kinds, {} cases: out of the box {} agree ({:.1} %); with Argo's scripts in argocd-cm {} of {} agree",
        per_kind.len(),
        total.cases,
        total.out_of_box,
        100.0 * total.out_of_box as f64 / total.cases.max(1) as f64,
        total.scripted,
        total.scripted_cases,
    );
    Ok(())
}

/// The argocd-cm key suffix for a directory of Argo's tree: `group_Kind`, the core group's
/// kinds bare, `_` wildcards as `*`.
fn argo_key(target: &str) -> String {
    match target.split_once('/') {
        Some((group, kind)) => {
            let star = |s: &str| {
                if s == "_" {
                    "*".to_string()
                } else {
                    s.replace("_.", "*.")
                }
            };
            format!("{}_{}", star(group), star(kind))
        }
        None => target.to_string(),
    }
}

/// The status Tiphys gives, as Argo's tests spell it ("" when no check applies).
fn status(object: &Value, custom: &CustomHealth) -> String {
    explain(object, custom)
        .and_then(|(h, _)| serde_json::to_value(h.status).ok())
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "health_test.yaml") {
            out.push(path);
        }
    }
    Ok(())
}
