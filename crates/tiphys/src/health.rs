//! `tiphys health -f OBJECT.yaml [--argocd-cm CM.yaml]`: the health an object gets and which
//! check decided it — for people writing health scripts, and for tests. No cluster needed.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The object (YAML or JSON; several documents are assessed one by one).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// An argocd-cm ConfigMap whose health scripts (and library settings) apply.
    #[arg(long)]
    argocd_cm: Option<PathBuf>,
    /// `text`, or `json`: one JSON object per line with kind, name, status (null when no
    /// check applies), message and check — for scripts.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let custom = match &args.argocd_cm {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let cm: k8s_openapi::api::core::v1::ConfigMap = serde_saphyr::from_str(&text)
                .with_context(|| format!("{}: not a ConfigMap", path.display()))?;
            tiphys_health::CustomHealth::from_config(&cm.data.unwrap_or_default())
        }
        None => tiphys_health::CustomHealth::default(),
    };
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("{}: not YAML", args.file.display()))?;
    for object in objects.iter().filter(|o| !o.is_null()) {
        let name = format!(
            "{}/{}",
            object["kind"].as_str().unwrap_or("?"),
            object["metadata"]["name"].as_str().unwrap_or("?")
        );
        let verdict = tiphys_health::explain(object, &custom);
        if args.output == "json" {
            let (status, message, check) = match &verdict {
                Some((health, source)) => (
                    serde_json::to_value(health.status)?,
                    health.message.as_str(),
                    source.to_string(),
                ),
                None => (serde_json::Value::Null, "", String::new()),
            };
            let line = serde_json::json!({"kind": object["kind"], "name": object["metadata"]["name"],
                "status": status, "message": message, "check": check});
            println!("{line}");
            continue;
        }
        match verdict {
            Some((health, source)) => {
                let message = if health.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", health.message)
                };
                println!("{name}: {:?}{message} — {source}", health.status);
            }
            None => println!(
                "{name}: no health (no check applies; it does not count towards the app's health)"
            ),
        }
    }
    Ok(())
}
