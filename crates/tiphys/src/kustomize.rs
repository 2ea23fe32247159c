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
            print!("{}", tiphys_kustomize::build_yaml(&dir)?);
            Ok(())
        }
    }
}
