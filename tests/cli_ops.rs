//! `log`, `reload` and `env-check` against the sandbox `core`.

mod common;

use common::{ko, kubeconfig, nodes, run, text};

const SANDBOX: &str = "core";

#[test]
fn log_all_collects_every_node_in_upstreams_layout() {
    let kc = kubeconfig(SANDBOX);
    let dir = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = ko(&kc);
        c.current_dir(dir.path()).args(["-o", "json", "log", "all"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = dir.path().join("kubectl-ko-log");
    assert_eq!(
        std::path::Path::new(v["dir"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        root.canonicalize().unwrap()
    );
    for n in nodes(&kc) {
        let nd = root.join(&n);
        for f in [
            "ovn/ovn-controller.log",
            "openvswitch/ovs-vswitchd.log",
            "openvswitch/ovsdb-server.log",
            "linux/route.log",
            "linux/addr.log",
            "linux/link.log",
        ] {
            let p = nd.join(f);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{} missing or empty", p.display());
        }
        assert!(nd.join("kube-ovn").is_dir(), "{n}");
    }
    // The routes file holds the node's real routing table.
    let any =
        std::fs::read_to_string(root.join(nodes(&kc)[0].as_str()).join("linux/route.log")).unwrap();
    assert!(
        any.contains("ip -4 route show") && any.contains("dev"),
        "{any}"
    );
    // The NB server log of some central pod made it too.
    let nb_logs = nodes(&kc)
        .iter()
        .filter(|n| root.join(n).join("ovn/ovsdb-server-nb.log").exists())
        .count();
    assert!(nb_logs >= 1);
    let files = v["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["bytes"].as_u64().is_some()));

    // Only one component when asked.
    let dir2 = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = ko(&kc);
        c.current_dir(dir2.path()).args(["log", "ovs"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Collected "),
        "{}",
        text(&out.stdout)
    );
    let n0 = dir2.path().join("kubectl-ko-log").join(&nodes(&kc)[0]);
    assert!(n0.join("openvswitch/ovs-vswitchd.log").exists());
    assert!(!n0.join("linux").exists() && !n0.join("ovn").exists());
}

#[test]
fn reload_explains_and_needs_yes() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.arg("reload");
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("app=ovn-central: 3 pod(s)") && err.contains("--yes"),
        "{err}"
    );
}

#[test]
fn env_check_runs_in_every_cni_pod() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args(["-o", "json", "env-check"]);
        c
    });
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = v["nodes"].as_array().unwrap();
    assert_eq!(checked.len(), nodes(&kc).len());
    // The sandbox image has no /kube-ovn/env-check.sh: that is reported per node, exit 1.
    let all_ok = checked.iter().all(|n| n["exit_code"] == 0);
    assert_eq!(out.status.code(), Some(if all_ok { 0 } else { 1 }));
}
