//! The web UI end to end in a real browser: `tiphys up --demo` (local cluster, controller,
//! API server and UI in one process), a second app synced by hand, a read-only account and a
//! real OpenID Connect provider; headless Chromium from Debian driven by Playwright from npm
//! (`tests/support/ui-e2e.mjs`) logs in, watches the seed app drift and heal, syncs with
//! prune from the dialog, rolls back, and checks what RBAC hides and the server refuses.
//! Screenshots of the main views are left in `<target>/tmp/ui-screenshots`.

mod common;

use std::process::Command;

use common::oidc::start_provider;
use common::up::Up;

const SECRET_VALUE: &str = "never-in-the-browser-4711";

#[test]
fn the_web_ui_in_a_real_browser() {
    let chromium = tiphys_testkit::tool("chromium");
    let playwright = tiphys_testkit::npm_package("playwright-core@1.65.1");
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path());
    let url = up.url();
    assert!(
        up.printed.contains(&format!("web UI at {url}/")),
        "{}\n{}",
        up.printed,
        up.log()
    );
    let provider = start_provider(dir.path(), &format!("{url}/auth/callback"));

    // A viewer account, SSO, and roles: viewer and alice's group read everything.
    up.kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n  url: {url}\n  accounts.viewer: login\n  oidc.config: |\n    name: Test IdP\n    issuer: {}\n    clientID: tiphys\n    clientSecret: $oidc.clientSecret\n    requestedScopes: [openid, profile, email, groups]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-rbac-cm\n  namespace: argocd\ndata:\n  scopes: '[groups]'\n  policy.csv: |\n    g, viewer, role:readonly\n    p, role:payments, applications, get, production/*, allow\n    g, payments, role:payments\n",
            provider.issuer
        )),
    );
    up.kubectl(
        &[
            "-n",
            "argocd",
            "patch",
            "secret",
            "argocd-secret",
            "--type=merge",
            "-p",
            r#"{"stringData":{"oidc.clientSecret":"oidc-client-secret"}}"#,
        ],
        None,
    );

    // The second app, synced by hand: the demo repository's order-service, with a Secret.
    let repo = up.data.join("demo-repo");
    let base = repo.join("apps/order-service/base");
    std::fs::write(
        base.join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: order-db\nstringData:\n  password: {SECRET_VALUE}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        base.join("kustomization.yaml"),
        "resources:\n- deployment.yaml\n- service.yaml\n- secret.yaml\n",
    )
    .unwrap();
    common::git(&repo, &["add", "-A"]);
    common::git(&repo, &["commit", "-qm", "A database password"]);
    up.kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: orders\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: file://{}\n    targetRevision: HEAD\n    path: apps/order-service/overlays/staging\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: orders\n  syncPolicy:\n    syncOptions:\n    - CreateNamespace=true\n",
            repo.display()
        )),
    );
    let password = up.admin_password();

    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    let out = Command::new("node")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ui-e2e.mjs"))
        .env("URL", &url)
        .env("ADMIN_PASSWORD", &password)
        .env("KUBECONFIG", up.kubeconfig())
        .env("KUBECTL", tiphys_testkit::tool("kubectl"))
        .env("DEMO_REPO", &repo)
        .env("SCREENSHOTS", &screenshots)
        .env(
            "PLAYWRIGHT",
            playwright.join("node_modules/playwright-core/index.mjs"),
        )
        .env("CHROMIUM", &chromium)
        .env("OIDC_ISSUER", &provider.issuer)
        .env("SECRET_VALUE", SECRET_VALUE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all browser checks passed"),
        "{stdout}\n{stderr}\n--- tiphys up log (tail) ---\n{}",
        common::cluster::tail(&up.log(), 60)
    );
    for view in [
        "applications-tiles",
        "application-tree",
        "sync-dialog",
        "phone-applications",
    ] {
        assert!(
            screenshots.join(format!("{view}.png")).exists(),
            "no screenshot of {view}"
        );
    }
}
