//! Exported trees, one per commit: `trees/<commit>/` holds `tree/` (the commit's files) and
//! `MANIFEST` (every path with its type and size). Both are written under a staging name
//! unique to the writer and published by one rename, so an entry with a manifest is complete
//! as written. Whether it is still complete — nobody truncated it, no disk trouble — is
//! checked against the manifest the first time a process uses it and again when a render
//! finds a path missing; a damaged entry is exported anew.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::MARK_EVERY;
use crate::entry::{EntryLocks, remove_entry, remove_leftovers, staging_name};

const MANIFEST: &str = "MANIFEST";
const FILES: &str = "tree";
/// How often a missing path may make one tree be checked again.
const RECHECK: Duration = Duration::from_secs(30);

/// One line of a manifest: what is at a path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Dir(String),
    File(String, u64),
    Link(String),
}

impl Item {
    fn line(&self) -> String {
        match self {
            Item::Dir(p) => format!("d {}", escape(p)),
            Item::File(p, size) => format!("f {size} {}", escape(p)),
            Item::Link(p) => format!("l {}", escape(p)),
        }
    }

    fn parse(line: &str) -> Option<Item> {
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "d" => Some(Item::Dir(unescape(rest))),
            "l" => Some(Item::Link(unescape(rest))),
            "f" => {
                let (size, path) = rest.split_once(' ')?;
                Some(Item::File(unescape(path), size.parse().ok()?))
            }
            _ => None,
        }
    }

    /// Whether the disk under `root` still has this.
    fn present(&self, root: &Path) -> bool {
        let (path, want) = match self {
            Item::Dir(p) => (p, 'd'),
            Item::File(p, _) => (p, 'f'),
            Item::Link(p) => (p, 'l'),
        };
        let Ok(meta) = root.join(path).symlink_metadata() else {
            return false;
        };
        match (want, self) {
            ('d', _) => meta.is_dir(),
            ('l', _) => meta.file_type().is_symlink(),
            (_, Item::File(_, size)) => meta.is_file() && meta.len() == *size,
            _ => false,
        }
    }
}

/// Paths may hold any byte git allows but a newline ends a manifest line.
fn escape(path: &str) -> String {
    path.replace('%', "%25").replace('\n', "%0A")
}

fn unescape(text: &str) -> String {
    text.replace("%0A", "\n").replace("%25", "%")
}

pub struct Trees {
    dir: PathBuf,
    locks: Arc<EntryLocks>,
    /// Commits whose entry this process checked.
    checked: Mutex<HashMap<String, Checked>>,
}

/// What this process knows about an entry it checked.
struct Checked {
    /// When a missing path last made it check the entry again.
    rechecked: Option<Instant>,
    /// When it last marked the entry used.
    marked: Instant,
}

/// Why an entry could not be produced.
pub enum TreeError<E> {
    Io(PathBuf, std::io::Error),
    Export(E),
}

impl Trees {
    pub fn new(dir: PathBuf) -> Trees {
        Trees {
            dir,
            locks: Arc::default(),
            checked: Mutex::default(),
        }
    }

    fn files(&self, commit: &str) -> PathBuf {
        self.dir.join(commit).join(FILES)
    }

    /// The files of `commit`: the published entry when it is complete, else exported now by
    /// `export` (which writes under the directory it is given and lists what it wrote).
    /// Concurrent callers for one commit wait for the one exporting it.
    pub fn get_or_export<E>(
        &self,
        commit: &str,
        export: impl FnOnce(&Path) -> Result<Vec<Item>, E>,
    ) -> Result<PathBuf, TreeError<E>> {
        let entry = self.dir.join(commit);
        let (seen, mark) = match self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(commit)
        {
            Some(checked) if checked.marked.elapsed() >= MARK_EVERY => {
                checked.marked = Instant::now();
                (true, true)
            }
            Some(_) => (true, false),
            None => (false, false),
        };
        if seen && entry.join(MANIFEST).is_file() {
            if mark {
                super::touch(&entry);
            }
            return Ok(self.files(commit));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| TreeError::Io(path, e)
        };
        let _guard = self.locks.lock(&self.dir, commit).map_err(io(&self.dir))?;
        remove_leftovers(&self.dir, commit);
        if entry.join(MANIFEST).is_file() {
            if complete(&entry) {
                self.mark_checked(commit);
                super::touch(&entry);
                return Ok(self.files(commit));
            }
            tracing::warn!(tree = %entry.display(), "cached tree is damaged; exporting it again");
            remove_entry(&entry);
        } else if entry.exists() {
            // Unfinished, or from before entries had manifests.
            remove_entry(&entry);
        }
        super::evict_least_recently_used(&self.dir, super::MAX_TREES);
        let staging = self.dir.join(staging_name(commit));
        let files = staging.join(FILES);
        std::fs::create_dir_all(&files).map_err(io(&files))?;
        let written = match export(&files) {
            Ok(items) => items,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(TreeError::Export(e));
            }
        };
        let manifest: String = written.iter().map(|i| i.line() + "\n").collect();
        let path = staging.join(MANIFEST);
        std::fs::write(&path, manifest).map_err(io(&path))?;
        if let Err(e) = std::fs::rename(&staging, &entry) {
            // Only possible where file locks do not hold (some network file systems): another
            // writer published first. Its entry is as good as ours once checked.
            let _ = std::fs::remove_dir_all(&staging);
            if !complete(&entry) {
                return Err(TreeError::Io(entry, e));
            }
        }
        self.mark_checked(commit);
        Ok(self.files(commit))
    }

    fn mark_checked(&self, commit: &str) {
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(commit.to_string())
            .or_insert_with(|| Checked {
                rechecked: None,
                marked: Instant::now(),
            });
    }

    /// A render found a path missing in `commit`'s tree: check the entry again (at most
    /// every [`RECHECK`]) and forget it when damaged. True when it was damaged — the next
    /// [`Trees::get_or_export`] exports it anew.
    pub fn recheck(&self, commit: &str) -> bool {
        {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let entry = checked
                .entry(commit.to_string())
                .or_insert_with(|| Checked {
                    rechecked: None,
                    marked: now,
                });
            if entry.rechecked.is_some_and(|at| at.elapsed() < RECHECK) {
                return false;
            }
            entry.rechecked = Some(now);
        }
        let entry = self.dir.join(commit);
        let Ok(_guard) = self.locks.lock(&self.dir, commit) else {
            return false;
        };
        if entry.join(MANIFEST).is_file() && complete(&entry) {
            return false;
        }
        tracing::warn!(tree = %entry.display(), "cached tree is damaged; it will be exported again");
        remove_entry(&entry);
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(commit);
        true
    }
}

/// Whether everything the manifest of `entry` lists is there.
fn complete(entry: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(entry.join(MANIFEST)) else {
        return false;
    };
    let files = entry.join(FILES);
    if !files.is_dir() {
        return false;
    }
    let mut seen = HashSet::new();
    text.lines().all(|line| {
        Item::parse(line).is_some_and(|item| {
            seen.insert(line.to_string());
            item.present(&files)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_two(dir: &Path) -> Result<Vec<Item>, String> {
        std::fs::create_dir_all(dir.join("apps/a")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("apps/a/cm.yaml"), "kind: ConfigMap\n")
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("odd\nname%"), "x").map_err(|e| e.to_string())?;
        Ok(vec![
            Item::Dir("apps".into()),
            Item::Dir("apps/a".into()),
            Item::File("apps/a/cm.yaml".into(), 16),
            Item::File("odd\nname%".into(), 1),
        ])
    }

    #[test]
    fn manifest_lines_round_trip() {
        for item in [
            Item::Dir("a b".into()),
            Item::File("x\n%y".into(), 7),
            Item::Link("l".into()),
        ] {
            assert_eq!(Item::parse(&item.line()), Some(item));
        }
    }

    #[test]
    fn a_damaged_entry_is_found_and_exported_again() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Trees::new(dir.path().to_path_buf());
        let path = match trees.get_or_export("c1", export_two) {
            Ok(p) => p,
            Err(_) => panic!("export"),
        };
        assert!(path.join("apps/a/cm.yaml").is_file());
        // Truncated behind the cache's back.
        std::fs::write(path.join("apps/a/cm.yaml"), "").unwrap();
        assert!(trees.recheck("c1"), "the damage is found");
        assert!(!dir.path().join("c1").exists());
        let again = match trees.get_or_export("c1", export_two) {
            Ok(p) => p,
            Err(_) => panic!("export"),
        };
        assert_eq!(
            std::fs::read_to_string(again.join("apps/a/cm.yaml")).unwrap(),
            "kind: ConfigMap\n"
        );
        // A fresh process checks before it trusts an entry.
        std::fs::remove_file(again.join("odd\nname%")).unwrap();
        let fresh = Trees::new(dir.path().to_path_buf());
        let mut exports = 0;
        let _ = fresh.get_or_export("c1", |d| {
            exports += 1;
            export_two(d)
        });
        assert_eq!(exports, 1);
    }

    #[test]
    fn many_threads_one_export_and_every_reader_sees_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let trees = Arc::new(Trees::new(dir.path().to_path_buf()));
        let exports = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (trees, exports) = (trees.clone(), exports.clone());
                std::thread::spawn(move || {
                    let path = trees
                        .get_or_export("c2", |d| {
                            exports.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // A slow writer: readers must wait, not see half of it.
                            std::thread::sleep(Duration::from_millis(50));
                            export_two(d)
                        })
                        .ok()
                        .unwrap();
                    assert!(path.join("apps/a/cm.yaml").is_file());
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(exports.load(std::sync::atomic::Ordering::SeqCst), 1);
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || n.ends_with(".trash"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
