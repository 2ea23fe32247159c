//! Source and render benchmark (issue: sources and rendering).
//!
//! * revision check cost per repository: `GitCache::ls_remote` vs `git ls-remote` (the peer),
//!   both over file:// in the same run;
//! * 1,000 Applications over 10 paths of one repository: cold and warm renders through the
//!   shared render cache vs rendering every Application (the peer);
//! * how many renders a one-file commit triggers, with and without
//!   `manifest-generate-paths`.
//!
//! `cargo bench -p tiphys-render --bench sources`

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tiphys_model::application::ApplicationSource;
use tiphys_render::{CacheKey, RenderCache, Request, generate_paths, render};
use tiphys_source::{Access, GitCache};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@example.com")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const PATHS: usize = 10;
const APPS: usize = 1_000;
const OBJECTS_PER_PATH: usize = 20;

fn write_path(repo: &Path, p: usize, version: usize) {
    let dir = repo.join(format!("apps/app-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    for i in 0..OBJECTS_PER_PATH {
        text.push_str(&format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  version: \"{version}\"\n"));
    }
    std::fs::write(dir.join("manifests.yaml"), text).unwrap();
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for p in 0..PATHS {
        write_path(&repo, p, 1);
    }
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);
    for b in 0..20 {
        git(&repo, &["branch", "-f", &format!("branch-{b}")]);
    }
    let url = format!("file://{}", repo.display());
    let cache = GitCache::new(tmp.path().join("cache"));
    let anon = Access::default();

    // 1. Revision checks.
    let rounds = 50;
    cache.ls_remote(&url, &anon).unwrap();
    let start = Instant::now();
    for _ in 0..rounds {
        cache.ls_remote(&url, &anon).unwrap();
    }
    let ours = start.elapsed().as_secs_f64() / rounds as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        git(tmp.path(), &["ls-remote", &url]);
    }
    let peer = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "revision check per repository: {:.2} ms (git ls-remote: {:.2} ms, ratio {:.2}x)",
        ours * 1e3,
        peer * 1e3,
        peer / ours
    );

    // 2. 1,000 Applications over 10 paths.
    let commit = cache.resolve(&url, "main", &anon).unwrap();
    let tree = cache.tree(&url, &commit).unwrap();
    let sources: Vec<ApplicationSource> = (0..APPS)
        .map(|i| ApplicationSource {
            repo_url: url.clone(),
            path: format!("apps/app-{}", i % PATHS),
            ..Default::default()
        })
        .collect();
    let render_all_uncached = || {
        for s in &sources {
            render(&Request {
                repo_root: &tree,
                value_refs: &Default::default(),
                source: s,
                app_name: "app",
                namespace: "ns",
                remote: None,
                kustomize_options: Default::default(),
                capabilities: None,
            })
            .unwrap();
        }
    };
    let start = Instant::now();
    render_all_uncached();
    let uncached = start.elapsed();

    let renders = RenderCache::new(4096);
    let render_all_cached =
        |renders: &RenderCache, content: &dyn Fn(&ApplicationSource) -> String, root: &Path| {
            for s in &sources {
                let key = CacheKey::new(&content(s), s, "app", "ns", &Default::default(), None);
                renders
                    .get_or_render(key, || {
                        render(&Request {
                            repo_root: root,
                            value_refs: &Default::default(),
                            source: s,
                            app_name: "app",
                            namespace: "ns",
                            remote: None,
                            kustomize_options: Default::default(),
                            capabilities: None,
                        })
                    })
                    .unwrap();
            }
        };
    let by_commit = |_: &ApplicationSource| commit.clone();
    let start = Instant::now();
    render_all_cached(&renders, &by_commit, &tree);
    let cold = start.elapsed();
    let cold_renders = renders.renders();
    let start = Instant::now();
    render_all_cached(&renders, &by_commit, &tree);
    let warm = start.elapsed();
    println!(
        "{APPS} apps over {PATHS} paths: every app rendered {:.0} ms; cached cold {:.1} ms ({cold_renders} renders), warm {:.2} ms ({} renders); cold {:.0}x, warm {:.0}x faster",
        uncached.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        renders.renders() - cold_renders,
        uncached.as_secs_f64() / cold.as_secs_f64(),
        uncached.as_secs_f64() / warm.as_secs_f64(),
    );

    // 3. A one-file commit.
    let fingerprint = |commit: &str| {
        let commit = commit.to_string();
        let cache = &cache;
        let url = url.clone();
        move |s: &ApplicationSource| {
            cache
                .paths_fingerprint(&url, &commit, &generate_paths(".", &s.path))
                .unwrap()
        }
    };
    let annotated = RenderCache::new(4096);
    render_all_cached(&annotated, &fingerprint(&commit), &tree);
    let before_annotated = annotated.renders();
    let before_plain = renders.renders();
    write_path(&repo, 3, 2);
    git(&repo, &["commit", "-qam", "touch one path"]);
    let next = cache.resolve(&url, "main", &anon).unwrap();
    let next_tree = cache.tree(&url, &next).unwrap();
    let by_next_commit = |_: &ApplicationSource| next.clone();
    render_all_cached(&renders, &by_next_commit, &next_tree);
    render_all_cached(&annotated, &fingerprint(&next), &next_tree);
    println!(
        "one-file commit: {} renders without manifest-generate-paths, {} with it (of {APPS} apps)",
        renders.renders() - before_plain,
        annotated.renders() - before_annotated
    );
}
