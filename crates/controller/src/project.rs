//! AppProject enforcement: source repositories, destinations and the resource white/blacklists.
//! Patterns are globs (`*` any run of characters); a leading `!` denies, as in Argo CD.

use tiphys_model::AppProject;
use tiphys_model::application::ApplicationDestination;
use tiphys_model::project::GroupKind;
use tiphys_source::normalize;

pub use tiphys_model::glob::matches as glob;

/// Allowed by a list of patterns where `!pattern` entries deny.
fn permitted<'a>(
    patterns: impl Iterator<Item = &'a str> + Clone,
    matches: impl Fn(&str) -> bool,
) -> bool {
    let denied = patterns
        .clone()
        .filter_map(|p| p.strip_prefix('!'))
        .any(&matches);
    !denied && patterns.filter(|p| !p.starts_with('!')).any(matches)
}

pub fn source_permitted(project: &AppProject, repo_url: &str) -> bool {
    let repo = normalize(repo_url);
    permitted(project.spec.source_repos.iter().map(String::as_str), |p| {
        p == "*" || glob(p, repo_url) || glob(&normalize(p), &repo)
    })
}

/// Whether `project` lets apps deploy to `server`/`name` in `namespace`.
pub fn destination_permitted(
    project: &AppProject,
    server: &str,
    name: &str,
    namespace: &str,
) -> bool {
    let matches = |d: &ApplicationDestination| {
        let cluster = (!d.server.is_empty() && glob(d.server.trim_start_matches('!'), server))
            || (!d.name.is_empty() && glob(d.name.trim_start_matches('!'), name));
        cluster && (namespace.is_empty() || glob(d.namespace.trim_start_matches('!'), namespace))
    };
    let deny = project.spec.destinations.iter().any(|d| {
        (d.server.starts_with('!') || d.name.starts_with('!') || d.namespace.starts_with('!'))
            && matches(d)
    });
    !deny
        && project.spec.destinations.iter().any(|d| {
            !(d.server.starts_with('!') || d.name.starts_with('!') || d.namespace.starts_with('!'))
                && matches(d)
        })
}

fn listed(list: &[GroupKind], group: &str, kind: &str) -> bool {
    list.iter()
        .any(|gk| glob(&gk.group, group) && glob(&gk.kind, kind))
}

/// Whether the project allows a resource of `group`/`kind`.
pub fn resource_permitted(project: &AppProject, group: &str, kind: &str, namespaced: bool) -> bool {
    let spec = &project.spec;
    if namespaced {
        !listed(&spec.namespace_resource_blacklist, group, kind)
            && (spec.namespace_resource_whitelist.is_empty()
                || listed(&spec.namespace_resource_whitelist, group, kind))
    } else {
        listed(&spec.cluster_resource_whitelist, group, kind)
            && !listed(&spec.cluster_resource_blacklist, group, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> AppProject {
        AppProject::from_yaml(yaml, "test").unwrap()
    }

    #[test]
    fn sources_destinations_and_resources() {
        let p = project(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: team}\nspec:\n  sourceRepos: ['https://github.com/myorg/*', '!https://github.com/myorg/secret']\n  destinations: [{server: 'https://kubernetes.default.svc', namespace: 'team-*'}]\n  clusterResourceWhitelist: [{group: '', kind: Namespace}]\n  namespaceResourceBlacklist: [{group: '', kind: ResourceQuota}]\n",
        );
        assert!(source_permitted(
            &p,
            "https://github.com/myorg/k8s-manifests"
        ));
        assert!(!source_permitted(&p, "https://github.com/myorg/secret"));
        assert!(!source_permitted(&p, "https://github.com/other/x"));
        assert!(destination_permitted(
            &p,
            "https://kubernetes.default.svc",
            "in-cluster",
            "team-a"
        ));
        assert!(!destination_permitted(
            &p,
            "https://kubernetes.default.svc",
            "in-cluster",
            "payments"
        ));
        assert!(resource_permitted(&p, "", "Namespace", false));
        assert!(!resource_permitted(
            &p,
            "rbac.authorization.k8s.io",
            "ClusterRole",
            false
        ));
        assert!(!resource_permitted(&p, "", "ResourceQuota", true));
        assert!(resource_permitted(&p, "apps", "Deployment", true));
    }
}
