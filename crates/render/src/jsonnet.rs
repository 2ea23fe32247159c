//! Jsonnet files of a directory source, evaluated in process (jrsonnet) as Argo CD evaluates
//! them: `directory.jsonnet` gives external variables and top-level arguments (strings, or code
//! with `code: true`) and library directories (relative to the repository); imports look next
//! to the importing file, then in the app's directory, then in the libraries — and never outside
//! the repository. A file's value is one object or an array of objects (`List` kinds unpacked).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{AsPathLike, IStr, ImportResolver, SourcePath, State, apply_tla};
use jrsonnet_gcmodule::Acyclic;
use jrsonnet_ir::{SourceFifo, SourceFile};
use tiphys_model::application::{ApplicationSourceJsonnet, JsonnetVar};

use crate::yaml::Document;
use crate::{Manifest, RenderError, relative};

/// What Argo CD substitutes into `$ARGOCD_APP_*` in external variables and arguments.
pub struct BuildEnv<'a> {
    pub app_name: &'a str,
    pub namespace: &'a str,
    pub repo_url: &'a str,
    pub path: &'a str,
    pub target_revision: &'a str,
}

impl BuildEnv<'_> {
    fn substitute(&self, text: &str) -> String {
        // Longer names first, so `$ARGOCD_APP_NAMESPACE` is not read as `$ARGOCD_APP_NAME`.
        let vars = [
            ("ARGOCD_APP_SOURCE_TARGET_REVISION", self.target_revision),
            ("ARGOCD_APP_SOURCE_REPO_URL", self.repo_url),
            ("ARGOCD_APP_SOURCE_PATH", self.path),
            ("ARGOCD_APP_NAMESPACE", self.namespace),
            ("ARGOCD_APP_NAME", self.app_name),
        ];
        let mut out = text.to_string();
        for (name, value) in vars {
            out = out
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        out
    }
}

/// Imports resolved inside the repository only.
#[derive(Acyclic)]
struct RepoImports {
    root: PathBuf,
    /// Searched after the importing file's directory: the app's directory, then the libraries.
    search: Vec<PathBuf>,
}

fn import_error(message: String) -> jrsonnet_evaluator::Error {
    jrsonnet_evaluator::Error::new(jrsonnet_evaluator::RuntimeError(message.into()))
}

impl ImportResolver for RepoImports {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &dyn AsPathLike,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        let wanted = path.as_path();
        let path: &Path = wanted.as_ref();
        let here = from
            .downcast_ref::<SourceFile>()
            .and_then(|f| f.path().parent().map(Path::to_path_buf));
        let candidates: Vec<PathBuf> = if path.is_absolute() {
            vec![path.to_path_buf()]
        } else {
            here.into_iter()
                .chain(self.search.iter().cloned())
                .map(|dir| dir.join(path))
                .collect()
        };
        for candidate in candidates {
            let Ok(real) = candidate.canonicalize() else {
                continue;
            };
            if !real.starts_with(&self.root) {
                return Err(import_error(format!(
                    "import {} leaves the repository",
                    path.display()
                )));
            }
            if real.is_file() {
                return Ok(SourcePath::new(SourceFile::new(real)));
            }
        }
        Err(import_error(format!(
            "import {}: no such file",
            path.display()
        )))
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        if let Some(inline) = resolved.downcast_ref::<SourceFifo>() {
            return Ok(inline.1.to_vec());
        }
        let file = resolved
            .downcast_ref::<SourceFile>()
            .ok_or_else(|| import_error(format!("{resolved}: not a file")))?;
        std::fs::read(file.path()).map_err(|e| import_error(format!("{resolved}: {e}")))
    }
}

/// The objects `file` evaluates to.
pub fn render(
    root: &Path,
    dir: &Path,
    file: &Path,
    options: Option<&ApplicationSourceJsonnet>,
    env: &BuildEnv<'_>,
) -> Result<Vec<Manifest>, RenderError> {
    let rel = relative(root, file);
    let failed = |message: String| RenderError::ToolFailed {
        tool: "jsonnet".into(),
        path: rel.clone(),
        message: message.trim_end().to_string(),
    };
    let mut search = vec![dir.to_path_buf()];
    for lib in options.map(|o| o.libs.as_slice()).unwrap_or_default() {
        search.push(crate::resolve_inside(root, lib)?);
    }
    let context =
        jrsonnet_stdlib::ContextInitializer::new(PathResolver::Relative(root.to_path_buf()));
    let arg = |var: &JsonnetVar| {
        let value = env.substitute(&var.value);
        if var.code {
            TlaArg::InlineCode(value)
        } else {
            TlaArg::String(value.into())
        }
    };
    let (ext_vars, tlas): (&[JsonnetVar], &[JsonnetVar]) = options
        .map(|o| (o.ext_vars.as_slice(), o.tlas.as_slice()))
        .unwrap_or_default();
    for var in ext_vars {
        context
            .settings_mut()
            .ext_vars
            .insert(var.name.as_str().into(), arg(var));
    }
    // `apply_tla` takes this map; an interned string's hash never changes, whatever clippy
    // infers from its reference count.
    #[allow(clippy::mutable_key_type)]
    let tlas: HashMap<IStr, TlaArg> = tlas
        .iter()
        .map(|var| (var.name.as_str().into(), arg(var)))
        .collect();
    let mut builder = State::builder();
    builder
        .context_initializer(context)
        .import_resolver(RepoImports {
            root: root.to_path_buf(),
            search,
        });
    let state = builder.build();
    let _entered = state.enter();
    let json = state
        .import_resolved(SourcePath::new(SourceFile::new(file.to_path_buf())))
        .and_then(|value| apply_tla(&tlas, value))
        .and_then(|value| value.manifest(JsonFormat::default()))
        .map_err(|e| failed(e.to_string()))?;
    let parsed: serde_json::Value = serde_json::from_str(&json).map_err(|e| RenderError::Json {
        file: rel.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let values = match parsed {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    Ok(values
        .into_iter()
        .enumerate()
        .flat_map(|(index, value)| {
            crate::objects::from_document(
                Document {
                    index,
                    line: 0,
                    value,
                    source: None,
                },
                &rel,
            )
        })
        .collect())
}
