//! `tiphys kustomize build DIR`: the native engine, output like `kubectl kustomize DIR`.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a kustomization directory and print the result.
    Build {
        /// The directory holding kustomization.yaml.
        dir: PathBuf,
    },
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Build { dir } => {
            // Remote bases come through the same git cache `tiphys render` uses.
            let cache = tiphys_source::GitCache::new(crate::render::cache_dir(
                std::env::var_os("TIPHYS_CACHE_DIR").map(PathBuf::from),
            ));
            let remotes = tiphys_controller::manifests::GitRemotes {
                cache: &cache,
                secrets: &[],
            };
            let objects = tiphys_kustomize::build_with(&dir, Some(&remotes))?;
            print!("{}", tiphys_kustomize::emit::stream(&objects));
            Ok(())
        }
    }
}
