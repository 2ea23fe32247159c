//! Chart archives (`.tgz`) and OCI layers (tar, gzipped or not) unpacked with Helm's limits:
//! regular files and directories only, no path leaving the archive, at most 100 MiB unpacked
//! and 5 MiB per file.

use std::io::Read;
use std::path::{Component, Path};

use crate::trees::Item;

const MAX_TOTAL: u64 = 100 << 20;
const MAX_FILE: u64 = 5 << 20;

/// Unpack `archive` under `dir`, listing what was written (parents before children).
pub fn unpack(archive: &[u8], dir: &Path) -> Result<Vec<Item>, String> {
    // An OCI layer may be a plain tar (`…layer.v1.tar`, when a deployment accepts it).
    let reader: Box<dyn Read + '_> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else {
        Box::new(archive)
    };
    let mut tar = tar::Archive::new(reader);
    let mut items = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let mut total = 0u64;
    let entries = tar
        .entries()
        .map_err(|e| format!("not a chart archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a chart archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad path in the archive: {e}"))?
            .into_owned();
        let rel = relative(&path)?;
        if rel.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            add_dirs(dir, &rel, true, &mut dirs, &mut items)?;
            continue;
        }
        if !kind.is_file() {
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(format!("{rel}: links are not allowed in a chart archive"));
            }
            // PAX global headers and the like carry no file.
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        if size > MAX_FILE {
            return Err(format!("{rel}: larger than {} MiB", MAX_FILE >> 20));
        }
        total += size;
        if total > MAX_TOTAL {
            return Err(format!("unpacks to more than {} MiB", MAX_TOTAL >> 20));
        }
        add_dirs(dir, &rel, false, &mut dirs, &mut items)?;
        let mut content = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(MAX_FILE + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("{rel}: {e}"))?;
        if content.len() as u64 > MAX_FILE {
            return Err(format!("{rel}: larger than {} MiB", MAX_FILE >> 20));
        }
        std::fs::write(dir.join(&rel), &content).map_err(|e| format!("{rel}: {e}"))?;
        items.push(Item::File(rel, content.len() as u64));
    }
    if items.is_empty() {
        return Err("the chart archive is empty".into());
    }
    Ok(items)
}

/// The archive path as a relative path with `/`, refusing absolute paths and `..`.
fn relative(path: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "{}: paths in a chart archive must stay inside it",
                    path.display()
                ));
            }
        }
    }
    Ok(parts.join("/"))
}

/// Create the directories of `rel` (all of it when `is_dir`, else its parents), listing new
/// ones.
fn add_dirs(
    root: &Path,
    rel: &str,
    is_dir: bool,
    made: &mut std::collections::BTreeSet<String>,
    items: &mut Vec<Item>,
) -> Result<(), String> {
    let parts: Vec<&str> = rel.split('/').collect();
    let upto = if is_dir { parts.len() } else { parts.len() - 1 };
    for end in 1..=upto {
        let dir = parts[..end].join("/");
        if made.insert(dir.clone()) {
            std::fs::create_dir_all(root.join(&dir)).map_err(|e| format!("{dir}: {e}"))?;
            items.push(Item::Dir(dir));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A gzipped tar of `(path, content)` pairs; `None` content makes a symlink.
    pub fn tgz(files: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            match content {
                Some(text) => {
                    header.set_size(text.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    // `set_path` refuses `..`; write the name bytes directly.
                    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                    header.set_cksum();
                    builder.append(&header, text.as_bytes()).unwrap();
                }
                None => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_link_name("/etc/passwd").unwrap();
                    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                    header.set_cksum();
                    builder.append(&header, std::io::empty()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacks_files_under_their_chart_directory() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tgz(&[
            ("web/Chart.yaml", Some("name: web\n")),
            ("web/templates/cm.yaml", Some("kind: ConfigMap\n")),
        ]);
        let items = unpack(&archive, dir.path()).unwrap();
        assert_eq!(
            items,
            vec![
                Item::Dir("web".into()),
                Item::File("web/Chart.yaml".into(), 10),
                Item::Dir("web/templates".into()),
                Item::File("web/templates/cm.yaml".into(), 16),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web/templates/cm.yaml")).unwrap(),
            "kind: ConfigMap\n"
        );
    }

    #[test]
    fn refuses_escapes_links_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let escape = tgz(&[("../evil.yaml", Some("x"))]);
        assert!(unpack(&escape, dir.path()).unwrap_err().contains("inside"));
        assert!(!dir.path().parent().unwrap().join("evil.yaml").exists());
        let link = tgz(&[("web/link", None)]);
        assert!(unpack(&link, dir.path()).unwrap_err().contains("links"));
        assert!(unpack(b"not gzip at all", dir.path()).is_err());
    }
}
