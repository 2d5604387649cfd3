//! Optional bearer-token users (`<state>/api/users.json`) seen through the real
//! kubectl: what a user may do works, the rest is a 403 worded like a real API server,
//! an unknown token is a 401, and the tokenless default keeps full access.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::Sandbox;
use serde_json::json;

fn with_users(sb: &Sandbox) {
    let users = json!({"users": [
        {"name": "viewer", "token": "viewer-token", "rules": [
            {"verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log"]}]},
    ]});
    std::fs::write(sb.dir.path().join("api/users.json"), users.to_string()).unwrap();
}

/// kubectl over the HTTPS port (kubectl sends tokens only over TLS) as `token`.
fn kubectl_as(sb: &Sandbox, token: &str, args: &[&str]) -> Output {
    ko_testkit::hermetic("kubectl")
        .arg("--kubeconfig")
        .arg(sb.dir.path().join("api/kubeconfig-https"))
        .arg("--cache-dir")
        .arg(sb.dir.path().join("kubectl-cache-https"))
        .args(["--token", token, "--request-timeout", "20s"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn viewer_lists_pods_but_exec_is_forbidden() {
    let sb = Sandbox::start();
    with_users(&sb);
    let out = kubectl_as(&sb, "viewer-token", &["get", "pods", "-A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pods = String::from_utf8_lossy(&out.stdout);
    assert!(pods.contains("web-2"), "{pods}");

    let out = kubectl_as(&sb, "viewer-token", &["exec", "web-2", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"pods "web-2" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "default""#
        ),
        "{}",
        stderr(&out)
    );

    let out = kubectl_as(&sb, "viewer-token", &["get", "nodes"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"nodes is forbidden: User "viewer" cannot list resource "nodes" in API group "" at the cluster scope"#
        ),
        "{}",
        stderr(&out)
    );
    // The raw Status carries reason and details like the real server's.
    let out = kubectl_as(
        &sb,
        "viewer-token",
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/web-2/exec?command=true&stdout=true",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Forbidden"), "{}", stderr(&out));

    // Without a token nothing changes.
    assert_eq!(
        sb.kubectl_ok(&["exec", "web-2", "--", "echo", "hi"]),
        "hi\n"
    );
}

#[test]
fn unknown_token_is_unauthorized_and_the_file_is_reread() {
    let sb = Sandbox::start();
    // No users file: a token is not checked at all.
    let out = kubectl_as(&sb, "whatever", &["get", "pods"]);
    assert!(out.status.success(), "{}", stderr(&out));
    with_users(&sb);
    let out = kubectl_as(&sb, "whatever", &["get", "pods"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Unauthorized"), "{err}");
    // Grant the user exec; the next request sees it without a restart.
    let users = json!({"users": [{"name": "viewer", "token": "whatever",
        "rules": [{"verbs": ["*"], "resources": ["*"]}]}]});
    std::fs::write(sb.dir.path().join("api/users.json"), users.to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    let out = kubectl_as(&sb, "whatever", &["exec", "web-2", "--", "echo", "ok"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        stderr(&out)
    );
}
