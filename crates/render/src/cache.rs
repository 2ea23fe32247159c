//! The render cache shared by all Applications: one render per (content, path, options),
//! bounded, least-recently-used out first.
//!
//! "Content" is the commit SHA, or — for Applications annotated with
//! `argocd.argoproj.io/manifest-generate-paths` — a fingerprint of just the paths they depend
//! on, so a commit that touches none of them reuses the previous render.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use tiphys_model::application::ApplicationSource;

use crate::{Manifest, Origin, RenderError, Rendered, SourceType};

/// What a render depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub content: String,
    pub path: String,
    /// Hash of every render option (source options, release name, namespace).
    pub options: u64,
}

impl CacheKey {
    pub fn new(
        content: &str,
        source: &ApplicationSource,
        app_name: &str,
        namespace: &str,
        kustomize_options: &tiphys_kustomize::BuildOptions,
        capabilities: Option<&crate::Capabilities>,
    ) -> CacheKey {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        capabilities.hash(&mut hasher);
        // Everything but where the source lives (repo/revision is what `content` stands for).
        let options = serde_json::json!({
            "helm": source.helm, "kustomize": source.kustomize, "directory": source.directory,
            "plugin": source.plugin, "chart": source.chart, "app": app_name, "namespace": namespace,
            "loadRestrictions": kustomize_options.load_restrictions,
        });
        options.to_string().hash(&mut hasher);
        CacheKey {
            content: content.to_string(),
            path: source.path.clone(),
            options: hasher.finish(),
        }
    }
}

/// A render as kept: each object as compact JSON text. Parsed, a small object takes ten
/// times its text (every map and string its own allocation), and at thousands of apps the
/// cache would be most of the controller's memory; parsing one back costs about what the
/// clone of a parsed one did.
struct Compact {
    source_type: SourceType,
    manifests: Vec<(Box<str>, Origin)>,
}

impl Compact {
    fn new(rendered: &Rendered) -> Compact {
        Compact {
            source_type: rendered.source_type,
            manifests: rendered
                .manifests
                .iter()
                .map(|m| (m.object.to_string().into_boxed_str(), m.origin.clone()))
                .collect(),
        }
    }

    /// The render back; None if a text does not parse (it always does: it was written by
    /// serde_json), so the caller renders again rather than fail.
    fn expand(&self) -> Option<Rendered> {
        let manifests = self
            .manifests
            .iter()
            .map(|(text, origin)| {
                Some(Manifest {
                    object: serde_json::from_str(text).ok()?,
                    origin: origin.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Rendered {
            source_type: self.source_type,
            manifests,
        })
    }

    fn bytes(&self) -> usize {
        self.manifests.iter().map(|(text, _)| text.len()).sum()
    }
}

struct Entry {
    value: Arc<Compact>,
    last_used: u64,
    /// The size of its manifests as JSON text: what the byte budget counts.
    bytes: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<CacheKey, Entry>,
    clock: u64,
    bytes: usize,
}

/// A map from [`CacheKey`] to rendered manifests, bounded both in entries and in bytes (so a
/// few huge renders cannot take the memory many small ones would fit in); the least recently
/// used entries go first.
pub struct RenderCache {
    capacity: usize,
    budget: usize,
    inner: Mutex<Entries>,
    renders: std::sync::atomic::AtomicU64,
}

/// The default byte budget: manifests as JSON text, as they are kept.
pub const DEFAULT_BUDGET: usize = 32 << 20;

impl RenderCache {
    /// At most `capacity` renders and [`DEFAULT_BUDGET`] bytes of manifests.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, DEFAULT_BUDGET)
    }

    pub fn with_budget(capacity: usize, budget: usize) -> Self {
        RenderCache {
            capacity: capacity.max(1),
            budget,
            inner: Mutex::default(),
            renders: Default::default(),
        }
    }

    /// The cached render for `key`, or `render()` it and remember the result. Errors are not
    /// cached: a broken commit is retried on the next call.
    pub fn get_or_render(
        &self,
        key: CacheKey,
        render: impl FnOnce() -> Result<Rendered, RenderError>,
    ) -> Result<Rendered, RenderError> {
        let hit = {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let entries = &mut *guard;
            entries.clock += 1;
            let now = entries.clock;
            entries.map.get_mut(&key).map(|entry| {
                entry.last_used = now;
                entry.value.clone()
            })
        };
        // Parsed outside the lock: workers rendering other apps do not wait for it.
        if let Some(rendered) = hit.and_then(|kept| kept.expand()) {
            return Ok(rendered);
        }
        let rendered = render()?;
        self.renders
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = Arc::new(Compact::new(&rendered));
        let bytes = value.bytes();
        if bytes > self.budget {
            // Larger than the whole budget: used, never kept.
            return Ok(rendered);
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entries = &mut *guard;
        if let Some(previous) = entries.map.remove(&key) {
            entries.bytes -= previous.bytes;
        }
        while !entries.map.is_empty()
            && (entries.map.len() >= self.capacity || entries.bytes + bytes > self.budget)
        {
            let Some(oldest) = entries
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(evicted) = entries.map.remove(&oldest) {
                entries.bytes -= evicted.bytes;
            }
        }
        entries.bytes += bytes;
        let last_used = entries.clock;
        entries.map.insert(
            key,
            Entry {
                value,
                last_used,
                bytes,
            },
        );
        Ok(rendered)
    }

    /// Forget every render (a hard refresh).
    pub fn clear(&self) {
        let mut entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        entries.map.clear();
        entries.bytes = 0;
    }

    /// How many renders actually ran (cache misses).
    pub fn renders(&self) -> u64 {
        self.renders.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The repository paths an app's `manifest-generate-paths` annotation names: `;`-separated,
/// relative to the source path unless they start with `/`, `.` meaning the source path itself.
pub fn generate_paths(annotation: &str, source_path: &str) -> Vec<String> {
    annotation
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if let Some(absolute) = p.strip_prefix('/') {
                normalize(absolute)
            } else {
                normalize(&format!("{}/{p}", source_path.trim_end_matches('/')))
            }
        })
        .collect()
}

/// Resolve `.` and `..` segments in a relative path.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_paths_resolve_against_the_source_path() {
        assert_eq!(
            generate_paths(".;../base;/shared/config", "apps/web/overlays/prod"),
            [
                "apps/web/overlays/prod",
                "apps/web/overlays/base",
                "shared/config"
            ]
        );
        assert_eq!(generate_paths("", "x"), Vec::<String>::new());
    }

    #[test]
    fn renders_once_per_key_and_evicts_least_recently_used() {
        let cache = RenderCache::new(2);
        let source = ApplicationSource {
            path: "p".into(),
            ..Default::default()
        };
        let opts = tiphys_kustomize::BuildOptions::default();
        let key = |c: &str| CacheKey::new(c, &source, "app", "ns", &opts, None);
        let render = || {
            Ok(Rendered {
                source_type: SourceType::Directory,
                manifests: Vec::new(),
            })
        };
        cache.get_or_render(key("a"), render).unwrap();
        cache.get_or_render(key("a"), render).unwrap();
        assert_eq!(cache.renders(), 1);
        cache.get_or_render(key("b"), render).unwrap();
        cache.get_or_render(key("a"), render).unwrap();
        cache.get_or_render(key("c"), render).unwrap(); // evicts b, the least recently used
        cache.get_or_render(key("a"), render).unwrap();
        assert_eq!(cache.renders(), 3);
        cache.get_or_render(key("b"), render).unwrap();
        assert_eq!(cache.renders(), 4);
        let other_ns = CacheKey::new("a", &source, "app", "other", &opts, None);
        assert_ne!(other_ns, key("a"), "options are part of the key");
    }

    #[test]
    fn a_hit_gives_back_the_objects_as_rendered() {
        let cache = RenderCache::new(4);
        let source = ApplicationSource::default();
        let opts = tiphys_kustomize::BuildOptions::default();
        let key = || CacheKey::new("c", &source, "app", "ns", &opts, None);
        // Key order, integers, floats, nulls and unicode survive being kept as text.
        let object = serde_json::json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "n", "labels": {"z": "1", "a": "2"}},
            "spec": {"replicas": 3, "ratio": 0.25, "big": 9007199254740993u64, "none": null},
            "data": {"text": "line\nzwei \u{e9}"}
        });
        let origin = crate::Origin {
            file: "dir/a.yaml".into(),
            document: 2,
            line: 7,
        };
        let render = || {
            Ok(Rendered {
                source_type: SourceType::Kustomize,
                manifests: vec![Manifest {
                    object: object.clone(),
                    origin: origin.clone(),
                }],
            })
        };
        let first = cache.get_or_render(key(), render).unwrap();
        let again = cache
            .get_or_render(key(), || panic!("a hit renders nothing"))
            .unwrap();
        assert_eq!(cache.renders(), 1);
        assert_eq!(again.source_type, SourceType::Kustomize);
        assert_eq!(again.manifests, first.manifests);
        let keys: Vec<&String> = again.manifests[0].object["metadata"]["labels"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["z", "a"], "key order as rendered");
    }

    #[test]
    fn the_byte_budget_evicts_too() {
        let object = serde_json::json!({"kind": "ConfigMap", "data": {"k": "x".repeat(80)}});
        let size = serde_json::to_vec(&object).unwrap().len();
        let cache = RenderCache::with_budget(100, 2 * size);
        let source = ApplicationSource::default();
        let opts = tiphys_kustomize::BuildOptions::default();
        let key = |c: &str| CacheKey::new(c, &source, "app", "ns", &opts, None);
        let render = |n: usize| {
            let object = object.clone();
            move || {
                Ok(Rendered {
                    source_type: SourceType::Directory,
                    manifests: (0..n)
                        .map(|_| crate::Manifest {
                            object: object.clone(),
                            origin: crate::Origin {
                                file: "f".into(),
                                document: 0,
                                line: 1,
                            },
                        })
                        .collect(),
                })
            }
        };
        cache.get_or_render(key("a"), render(1)).unwrap();
        cache.get_or_render(key("b"), render(1)).unwrap();
        cache.get_or_render(key("c"), render(1)).unwrap(); // over budget: a goes
        cache.get_or_render(key("b"), render(1)).unwrap();
        cache.get_or_render(key("c"), render(1)).unwrap();
        assert_eq!(cache.renders(), 3);
        cache.get_or_render(key("a"), render(1)).unwrap();
        assert_eq!(cache.renders(), 4);
        // Bigger than the whole budget: rendered every time, never kept.
        cache.get_or_render(key("huge"), render(3)).unwrap();
        cache.get_or_render(key("huge"), render(3)).unwrap();
        assert_eq!(cache.renders(), 6);
        cache.get_or_render(key("a"), render(1)).unwrap();
        assert_eq!(cache.renders(), 6, "the huge one evicted nothing");
    }
}
