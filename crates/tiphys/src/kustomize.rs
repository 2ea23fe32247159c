//! `tiphys kustomize build DIR`: the native engine, output like `kubectl kustomize DIR`.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a kustomization directory and print the result.
    Build {
        /// The directory holding kustomization.yaml.
        dir: PathBuf,
        /// kustomize's load restrictor: LoadRestrictionsRootOnly (files a kustomization
        /// names must lie in or below its directory) or LoadRestrictionsNone.
        #[arg(long, value_enum, default_value_t = LoadRestrictor::LoadRestrictionsRootOnly)]
        load_restrictor: LoadRestrictor,
        /// Accepted for `kubectl kustomize` compatibility: helmCharts are always rendered
        /// when helm is on PATH.
        #[arg(long)]
        enable_helm: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum LoadRestrictor {
    LoadRestrictionsRootOnly,
    LoadRestrictionsNone,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Build {
            dir,
            load_restrictor,
            enable_helm: _,
        } => {
            // Remote bases come through the same git cache `tiphys render` uses.
            let cache = tiphys_source::GitCache::new(crate::render::cache_dir(
                std::env::var_os("TIPHYS_CACHE_DIR").map(PathBuf::from),
            ));
            let remotes = tiphys_controller::manifests::GitRemotes {
                cache: &cache,
                secrets: &[],
            };
            let options = tiphys_kustomize::BuildOptions {
                load_restrictions: load_restrictor == LoadRestrictor::LoadRestrictionsRootOnly,
            };
            let objects = tiphys_kustomize::build_with_options(&dir, Some(&remotes), options)?;
            print!("{}", tiphys_kustomize::emit::stream(&objects));
            Ok(())
        }
    }
}
