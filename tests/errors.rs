//! Issue 3's bad input against a real sandbox (`errors`): RBAC forbidden (exec, list),
//! an unknown token, a pod that is not Running and an unreachable API server each give
//! one message naming what was looked for and what to try, with exit code 3 ("could
//! not run"). Users come from the emulator's `users.json` over its HTTPS port (see
//! sandbox/CONTRACT.md). Every command runs under a deadline: none may hang.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{ko, kubeconfig, kubectl, text};

const SANDBOX: &str = "errors";
/// "Could not run" in the README's exit-code table.
const EXIT_CLUSTER: i32 = 3;
const DEADLINE: Duration = Duration::from_secs(90);

/// Run `cmd`, killing it and failing the test if it outlives `DEADLINE`.
fn run_within(mut cmd: Command) -> Output {
    common::run_within(&mut cmd, DEADLINE)
}

/// `Some(kubeconfig)` of the sandbox, or None against a real cluster
/// (`KO_E2E_KUBECONFIG`), where the emulator's users and status patches do not exist.
fn sandbox_kubeconfig() -> Option<PathBuf> {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: needs the sandbox's API emulator (users.json, status patches)");
        return None;
    }
    Some(kubeconfig(SANDBOX))
}

/// The emulator's users: `viewer` may read pods and nodes but not exec, `nobody` may
/// do nothing. Written atomically; every test writes the same content.
fn users(api_dir: &Path) {
    let users = serde_json::json!({"users": [
        {"name": "viewer", "token": "viewer-token", "rules": [
            {"verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log", "nodes"]}]},
        {"name": "nobody", "token": "nobody-token", "rules": []},
    ]});
    let tmp = api_dir.join(format!("users.json.{}", std::process::id()));
    std::fs::write(&tmp, users.to_string()).unwrap();
    std::fs::rename(&tmp, api_dir.join("users.json")).unwrap();
}

/// A kubeconfig for the HTTPS port whose user carries `token` (set with the real
/// `kubectl config set-credentials`).
fn token_kubeconfig(kc: &Path, token: &str, dir: &Path) -> PathBuf {
    let api_dir = kc.parent().unwrap();
    users(api_dir);
    let path = dir.join(format!("kubeconfig-{token}"));
    std::fs::copy(api_dir.join("kubeconfig-https"), &path).unwrap();
    let out = run_within({
        let mut c = kubectl(&path);
        c.args(["config", "set-credentials", "ko-sandbox"])
            .arg(format!("--token={token}"));
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    path
}

fn ko_run(kc: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = run_within({
        let mut c = ko(kc);
        c.args(["--timeout", "20s"]).args(args);
        c
    });
    (out.status.code(), text(&out.stderr))
}

/// One message, not a log dump before it.
fn assert_one_message(err: &str) {
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "expected exactly one error message:\n{err}"
    );
    assert!(!err.contains("ERROR"), "a log line leaked:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn exec_forbidden_names_verb_resource_namespace_and_the_rbac_to_grant() {
    let Some(kc) = sandbox_kubeconfig() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let viewer = token_kubeconfig(&kc, "viewer-token", dir.path());
    let (code, err) = ko_run(&viewer, &["nbctl", "show"]);
    assert_eq!(code, Some(EXIT_CLUSTER), "{err}");
    assert_one_message(&err);
    for want in [
        "ovn-nbctl show",
        r#"User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "kube-system""#,
        "`kubectl auth can-i create pods/exec -n kube-system`",
        r#"resources ["pods/exec"], verbs ["create"]"#,
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // Listing worked: the message names the NB leader pod it tried to exec into.
    assert!(err.contains("kube-system/ovn-central-"), "{err}");
}

#[test]
fn list_forbidden_names_the_label_selector_it_tried() {
    let Some(kc) = sandbox_kubeconfig() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nobody = token_kubeconfig(&kc, "nobody-token", dir.path());
    let (code, err) = ko_run(&nobody, &["nbctl", "show"]);
    assert_eq!(code, Some(EXIT_CLUSTER), "{err}");
    assert_one_message(&err);
    for want in [
        "listing pods in kube-system with labels app=ovn-central,ovn-nb-leader=true",
        r#"User "nobody" cannot list resource "pods""#,
        "`kubectl auth can-i list pods -n kube-system`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let (code, err) = ko_run(&nobody, &["vsctl", "kube-ovn-worker", "show"]);
    assert_eq!(code, Some(EXIT_CLUSTER), "{err}");
    assert!(err.contains("app=ovs") || err.contains("nodes"), "{err}");
}

#[test]
fn unknown_token_is_unauthorized_with_a_credentials_hint() {
    let Some(kc) = sandbox_kubeconfig() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bogus = token_kubeconfig(&kc, "no-such-token", dir.path());
    let (code, err) = ko_run(&bogus, &["nbctl", "show"]);
    assert_eq!(code, Some(EXIT_CLUSTER), "{err}");
    assert_one_message(&err);
    for want in [
        "did not accept your credentials",
        "Unauthorized",
        "kubectl config view --minify",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

/// Puts a pod's status back when dropped, even if the test fails.
struct RestoreStatus {
    kc: PathBuf,
    pod: String,
    status: serde_json::Value,
}

impl Drop for RestoreStatus {
    fn drop(&mut self) {
        let patch = serde_json::json!({ "status": self.status }).to_string();
        let out = run_within({
            let mut c = kubectl(&self.kc);
            c.args(["-n", "kube-system", "patch", "pod", &self.pod])
                .args(["--subresource=status", "--type=merge", "-p", &patch]);
            c
        });
        if !out.status.success() {
            eprintln!(
                "restoring {}'s status failed: {}",
                self.pod,
                text(&out.stderr)
            );
        }
    }
}

/// Set `pod` (as read with kubectl) to what a kubelet reports for a pod whose
/// containers have not started, through the status subresource with the real kubectl.
/// The returned guard makes it Running and Ready again.
fn make_pending(kc: &Path, pod: &serde_json::Value) -> RestoreStatus {
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    // Restore a Running, Ready status (not merely the one read now: a run killed
    // before its Drop would otherwise leave the Pending status behind for good).
    let mut healthy = pod["status"].clone();
    healthy["phase"] = "Running".into();
    if let Some(conds) = healthy["conditions"].as_array_mut() {
        for c in conds {
            c["status"] = "True".into();
        }
    }
    let restore = RestoreStatus {
        kc: kc.to_path_buf(),
        pod: name.clone(),
        status: healthy,
    };
    let patch =
        r#"{"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}]}}"#;
    let out = run_within({
        let mut c = kubectl(kc);
        c.args(["-n", "kube-system", "patch", "pod", &name]).args([
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        ]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    restore
}

fn kube_system_pods(kc: &Path, selector: &str) -> Vec<serde_json::Value> {
    let out = run_within({
        let mut c = kubectl(kc);
        c.args(["-n", "kube-system", "get", "pods", "-l", selector])
            .args(["-o", "json"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

#[test]
fn pod_not_running_says_which_pod_on_which_node_in_which_phase() {
    let Some(kc) = sandbox_kubeconfig() else {
        return;
    };
    let node = "kube-ovn-worker";
    let pods = kube_system_pods(&kc, "app=ovs");
    let pod = pods
        .iter()
        .find(|p| p["spec"]["nodeName"] == node)
        .expect("an ovs-ovn pod on kube-ovn-worker");
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let _restore = make_pending(&kc, pod);

    let (code, err) = ko_run(&kc, &["vsctl", node, "show"]);
    assert_eq!(code, Some(EXIT_CLUSTER), "{err}");
    assert_one_message(&err);
    for want in [
        format!("kube-system/{name}"),
        format!("on {node}"),
        "Pending".to_string(),
        format!("`kubectl -n kube-system describe pod {name}`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // The other nodes are unaffected.
    let (code, err) = ko_run(&kc, &["vsctl", "kube-ovn-worker2", "show"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn dbstatus_shows_nb_and_sb_of_every_central_pod_and_flags_one_not_running() {
    let Some(kc) = sandbox_kubeconfig() else {
        return;
    };
    // A member that leads nothing, so the other tests' leader lookups are unaffected.
    let pods = kube_system_pods(&kc, "app=ovn-central");
    let pod = pods
        .iter()
        .find(|p| {
            let l = &p["metadata"]["labels"];
            ["ovn-nb-leader", "ovn-sb-leader", "ovn-northd-leader"]
                .iter()
                .all(|k| l[*k] != "true")
        })
        .expect("an ovn-central pod that is no leader");
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let _restore = make_pending(&kc, pod);
    let out = run_within({
        let mut c = ko(&kc);
        c.args(["-o", "json", "sb", "dbstatus"]);
        c
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6, "{v:#}");
    for e in entries {
        if e["pod"] == name.as_str() {
            assert_eq!(e["ok"], false, "{e}");
            assert!(e["status"].as_str().unwrap().contains("Pending"), "{e}");
        } else {
            assert_eq!(e["ok"], true, "{e}");
            assert_eq!(e["status"], "ok", "{e}");
        }
    }
    let out = run_within({
        let mut c = ko(&kc);
        c.args(["--color", "never", "nb", "dbstatus"]);
        c
    });
    let t = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("2 of 6 storage statuses are not ok"), "{t}");
}

#[test]
fn unreachable_api_server_is_one_clear_message() {
    // A loopback port nobody listens on: bind, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: closed\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: closed\n  context:\n    cluster: closed\n    user: closed\ncurrent-context: closed\nusers:\n- name: closed\n  user: {{}}\n"
        ),
    )
    .unwrap();
    for args in [
        &["nbctl", "show"][..],
        &["vsctl", "kube-ovn-worker", "show"],
        &["nb", "status"],
    ] {
        let (code, err) = ko_run(&kc, args);
        assert_eq!(code, Some(EXIT_CLUSTER), "{args:?}: {err}");
        assert_one_message(&err);
        for want in [
            format!("could not reach the Kubernetes API server at http://127.0.0.1:{port}/"),
            "Connection refused".into(),
            "kubectl cluster-info".into(),
        ] {
            assert!(err.contains(&want), "{args:?}: missing {want:?} in:\n{err}");
        }
    }
}
