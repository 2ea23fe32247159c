//! Shared on-disk cache entries: one writer per entry while the others wait (a mutex per entry
//! inside the process, an advisory file lock between processes), staging names unique to the
//! writer, publication by rename, and removal that never leaves a half-deleted entry under
//! the published name.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Per-entry locks of this process: the entries being worked on, and a condition variable
/// the others wait on.
#[derive(Default)]
pub struct EntryLocks {
    busy: Mutex<HashSet<PathBuf>>,
    freed: Condvar,
}

/// Held while working on one entry; dropping it lets the next writer in.
pub struct EntryGuard {
    locks: Arc<EntryLocks>,
    /// The entry claimed in this process.
    path: PathBuf,
    _file: File,
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        let mut busy = self.locks.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.path);
        self.locks.freed.notify_all();
    }
}

impl EntryLocks {
    /// Lock the entry `name` of `dir` against every other thread and process (blocking until
    /// it is free). Between processes the lock is one of [`LOCK_FILES`] files per directory,
    /// chosen by the name's hash: lock files are never removed (removing one would race a
    /// waiter), so their number must not grow with the entries; two entries sharing a file
    /// only wait for each other.
    pub fn lock(self: &Arc<Self>, dir: &Path, name: &str) -> std::io::Result<EntryGuard> {
        let locks = dir.join(".locks");
        std::fs::create_dir_all(&locks)?;
        let path = locks.join(format!("{:02x}.lock", bucket(name)));
        let claim = dir.join(name);
        {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            while busy.contains(&claim) {
                busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
            }
            busy.insert(claim.clone());
        }
        // From here the guard releases the in-process claim, whatever happens next.
        let release = |e| {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            busy.remove(&claim);
            self.freed.notify_all();
            e
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(release)?;
        file.lock().map_err(release)?;
        Ok(EntryGuard {
            locks: self.clone(),
            path: claim,
            _file: file,
        })
    }
}

/// How many lock files a cache directory has.
pub const LOCK_FILES: u64 = 64;

/// The lock file an entry name uses (FNV-1a, stable across processes and builds).
fn bucket(name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h % LOCK_FILES
}

/// A name no other writer uses: `.<name>.<pid>.<n>.tmp`.
pub fn staging_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Remove the published entry `path` (a directory): renamed away first, so no reader ever
/// finds a half-deleted entry under its name, then deleted.
pub fn remove_entry(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let doomed = path.with_file_name(format!("{}.trash", staging_name(&name)));
    if std::fs::rename(path, &doomed).is_ok() {
        let _ = std::fs::remove_dir_all(&doomed);
    } else {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Remove staging and trash directories of `name` left by writers that died (the caller holds
/// the entry's lock, so none of them is still writing).
pub fn remove_leftovers(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(&prefix)
            && (file_name.ends_with(".tmp") || file_name.ends_with(".trash"))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Remove staging and trash directories under `dir` untouched for longer than `age` (their
/// writers are long gone; a live writer's staging directory is younger).
pub fn remove_abandoned(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover =
            name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".trash"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > age);
        if leftover && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Arc::new(EntryLocks::default());
        let inside = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _guard = locks.lock(&dir, "entry").unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_ne!(staging_name("x"), staging_name("x"));
        // Many entries, a bounded number of lock files.
        for i in 0..200 {
            drop(locks.lock(dir.path(), &format!("e{i}")).unwrap());
        }
        let files = std::fs::read_dir(dir.path().join(".locks"))
            .unwrap()
            .count();
        assert!(files as u64 <= LOCK_FILES, "{files} lock files");
        // A writer that died long ago leaves a staging directory; it is swept.
        let abandoned = dir.path().join(staging_name("c"));
        std::fs::create_dir(&abandoned).unwrap();
        let fresh = dir.path().join(staging_name("d"));
        std::fs::create_dir(&fresh).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::open(&abandoned)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        remove_abandoned(dir.path(), std::time::Duration::from_secs(600));
        assert!(!abandoned.exists());
        assert!(fresh.exists(), "a live writer's staging directory stays");
    }
}
