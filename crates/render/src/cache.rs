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

use crate::{RenderError, Rendered};

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

struct Entry {
    value: Arc<Rendered>,
    last_used: u64,
}

/// A bounded map from [`CacheKey`] to rendered manifests.
pub struct RenderCache {
    capacity: usize,
    inner: Mutex<(HashMap<CacheKey, Entry>, u64)>,
    renders: std::sync::atomic::AtomicU64,
}

impl RenderCache {
    pub fn new(capacity: usize) -> Self {
        RenderCache {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), 0)),
            renders: Default::default(),
        }
    }

    /// The cached render for `key`, or `render()` it and remember the result. Errors are not
    /// cached: a broken commit is retried on the next call.
    pub fn get_or_render(
        &self,
        key: CacheKey,
        render: impl FnOnce() -> Result<Rendered, RenderError>,
    ) -> Result<Arc<Rendered>, RenderError> {
        {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let (map, clock) = &mut *guard;
            *clock += 1;
            let now = *clock;
            if let Some(entry) = map.get_mut(&key) {
                entry.last_used = now;
                return Ok(entry.value.clone());
            }
        }
        let value = Arc::new(render()?);
        self.renders
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, clock) = &mut *guard;
        if map.len() >= self.capacity
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            key,
            Entry {
                value: value.clone(),
                last_used: *clock,
            },
        );
        Ok(value)
    }

    /// Forget every render (a hard refresh).
    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clear();
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
    use crate::SourceType;

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
}
