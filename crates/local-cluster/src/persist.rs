//! Durable storage for `--data-dir`: a redb database with one table of objects and the
//! resourceVersion counter. Each write is its own durable transaction, committed before the
//! API answers, so an acknowledged write survives `kill -9`.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::resources::GroupResource;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const RESOURCE_VERSION: &str = "resourceVersion";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("opening the store at {path}: {source}")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error("store: {0}")]
    Storage(String),
}

fn storage<E: std::fmt::Display>(e: E) -> PersistError {
    PersistError::Storage(e.to_string())
}

/// The on-disk store.
pub struct Persistence {
    db: Database,
}

/// A loaded object: resource, namespace, name, JSON.
pub type LoadedObject = (GroupResource, String, String, Vec<u8>);

fn key(gr: &GroupResource, namespace: &str, name: &str) -> String {
    // '\u{1}' cannot appear in group, resource, namespace or name.
    format!(
        "{}\u{1}{}\u{1}{}\u{1}{}",
        gr.group, gr.resource, namespace, name
    )
}

impl Persistence {
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        let path = dir.join("objects.redb");
        let db = Database::create(&path).map_err(|source| PersistError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Persistence { db })
    }

    /// The last resourceVersion and every stored object.
    pub fn load(&self) -> Result<(u64, Vec<LoadedObject>), PersistError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let rv = match txn.open_table(META) {
            Ok(meta) => meta
                .get(RESOURCE_VERSION)
                .map_err(storage)?
                .map(|v| v.value())
                .unwrap_or(0),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(storage(e)),
        };
        let mut objects = Vec::new();
        match txn.open_table(OBJECTS) {
            Ok(table) => {
                for entry in table.iter().map_err(storage)? {
                    let (k, v) = entry.map_err(storage)?;
                    let parts: Vec<&str> = k.value().split('\u{1}').collect();
                    if let [group, resource, namespace, name] = parts[..] {
                        let gr = GroupResource {
                            group: group.into(),
                            resource: resource.into(),
                        };
                        objects.push((
                            gr,
                            namespace.to_string(),
                            name.to_string(),
                            v.value().to_vec(),
                        ));
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(storage(e)),
        }
        Ok((rv, objects))
    }

    pub fn put(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        json: &[u8],
        rv: u64,
    ) -> Result<(), PersistError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(storage)?;
            objects
                .insert(key(gr, namespace, name).as_str(), json)
                .map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            meta.insert(RESOURCE_VERSION, rv).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    pub fn delete(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        rv: u64,
    ) -> Result<(), PersistError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(storage)?;
            objects
                .remove(key(gr, namespace, name).as_str())
                .map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            meta.insert(RESOURCE_VERSION, rv).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }
}
