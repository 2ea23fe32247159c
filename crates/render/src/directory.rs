//! Directory sources: every YAML, JSON and Jsonnet file under the path (recursively with
//! `recurse`), filtered by `include`/`exclude` globs; other files (`.libsonnet` libraries too)
//! are not manifests and are skipped.

use std::path::Path;

use tiphys_model::application::ApplicationSourceDirectory;

use crate::jsonnet::BuildEnv;
use crate::{Manifest, RenderError, glob, relative};

fn is_manifest(name: &str) -> bool {
    name.ends_with(".yaml")
        || name.ends_with(".yml")
        || name.ends_with(".json")
        || name.ends_with(".jsonnet")
}

pub fn render(
    root: &Path,
    dir: &Path,
    options: Option<&ApplicationSourceDirectory>,
    env: &BuildEnv<'_>,
) -> Result<Vec<Manifest>, RenderError> {
    let recurse = options.is_some_and(|o| o.recurse);
    let include = options
        .map(|o| o.include.as_str())
        .filter(|s| !s.is_empty());
    let exclude = options
        .map(|o| o.exclude.as_str())
        .filter(|s| !s.is_empty());
    let mut files = Vec::new();
    collect(root, dir, recurse, &mut files)?;
    let mut manifests = Vec::new();
    for file in files {
        let rel_to_app = relative(dir, &file);
        if include.is_some_and(|p| !glob::matches(p, &rel_to_app))
            || exclude.is_some_and(|p| glob::matches(p, &rel_to_app))
        {
            continue;
        }
        if rel_to_app.ends_with(".jsonnet") {
            let jsonnet = options.and_then(|o| o.jsonnet.as_ref());
            manifests.extend(crate::jsonnet::render(root, dir, &file, jsonnet, env)?);
            continue;
        }
        let rel = relative(root, &file);
        let text = std::fs::read_to_string(&file).map_err(|source| RenderError::Io {
            path: rel.clone(),
            source,
        })?;
        manifests.extend(crate::objects::parse(&text, &rel, rel.ends_with(".json"))?);
    }
    Ok(manifests)
}

/// Files in name order, directories after files as `filepath.Walk` visits them. Symlinks
/// must resolve inside the repository; hidden entries (`.git`) are skipped.
fn collect(
    root: &Path,
    dir: &Path,
    recurse: bool,
    out: &mut Vec<std::path::PathBuf>,
) -> Result<(), RenderError> {
    let io = |source| RenderError::Io {
        path: relative(root, dir),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let resolved = path.canonicalize().map_err(|source| RenderError::Io {
            path: relative(root, &path),
            source,
        })?;
        if !resolved.starts_with(root) {
            return Err(RenderError::Escapes {
                path: relative(root, &path),
            });
        }
        if resolved.is_dir() {
            if recurse {
                collect(root, &path, recurse, out)?;
            }
        } else if is_manifest(&name) {
            out.push(path);
        }
    }
    Ok(())
}
