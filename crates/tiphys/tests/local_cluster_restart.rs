//! `tiphys local-cluster --data-dir`: every acknowledged write survives `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn start(data_dir: &Path, kubeconfig: &Path) -> Child {
    let _ = std::fs::remove_file(kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_tiphys"))
        .args(["local-cluster", "--listen", "127.0.0.1:0", "--no-simulate"])
        .arg("--kubeconfig-out")
        .arg(kubeconfig)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tiphys starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists()
        || kubectl(kubeconfig, &["get", "--raw", "/readyz"])
            .status
            .code()
            != Some(0)
    {
        assert!(Instant::now() < deadline, "local cluster did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(tiphys_testkit::tool("kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", kubeconfig.with_extension("cache"))
        .output()
        .expect("kubectl runs")
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kubeconfig = dir.path().join("kubeconfig");

    let mut first = start(&data, &kubeconfig);
    ok(&kubeconfig, &["create", "namespace", "keep"]);
    for i in 0..20 {
        ok(
            &kubeconfig,
            &[
                "create",
                "configmap",
                &format!("cm-{i}"),
                "-n",
                "keep",
                &format!("--from-literal=i={i}"),
            ],
        );
    }
    ok(&kubeconfig, &["delete", "configmap", "cm-0", "-n", "keep"]);
    let last_rv: u64 = ok(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "cm-19",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .unwrap();
    let uid = ok(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "cm-5",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    let credentials = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("token:") || l.contains("certificate-authority-data:"))
            .map(str::to_string)
            .collect()
    };
    let before = credentials(std::fs::read_to_string(&kubeconfig).unwrap());
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let mut second = start(&data, &kubeconfig);
    let names = ok(
        &kubeconfig,
        &[
            "get",
            "configmaps",
            "-n",
            "keep",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert_eq!(names.split_whitespace().count(), 19, "{names}");
    assert!(
        !names.split_whitespace().any(|n| n == "cm-0"),
        "the deletion survived too"
    );
    assert_eq!(
        ok(
            &kubeconfig,
            &[
                "get",
                "configmap",
                "cm-5",
                "-n",
                "keep",
                "-o",
                "jsonpath={.metadata.uid}"
            ]
        ),
        uid
    );
    // resourceVersions continue from where they were.
    ok(&kubeconfig, &["create", "configmap", "after", "-n", "keep"]);
    let rv: u64 = ok(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "after",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .unwrap();
    assert!(rv > last_rv, "{rv} > {last_rv}");
    // The same CA and token, so clients configured before the restart keep working.
    assert_eq!(
        credentials(std::fs::read_to_string(&kubeconfig).unwrap()),
        before
    );
    assert_eq!(before.len(), 2);
    second.kill().unwrap();
    second.wait().unwrap();
}
