//! `log` and `reload` against the sandbox `core`; `env-check` against `errors`.

mod common;

use std::path::{Path, PathBuf};

use common::{ko, ko_json, kubeconfig, kubectl, nodes, run, text};

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

/// env-check changes a node's real state (CNI config, a sysctl), so it runs on the
/// sandbox `errors` (owned by tests/errors.rs, which never looks at these).
const ENV_SANDBOX: &str = "errors";

fn cni_pods(kc: &Path) -> Vec<(String, String)> {
    let out = run({
        let mut c = kubectl(kc);
        c.args(["-n", "kube-system", "get", "pods", "-l", "app=kube-ovn-cni"])
            .args([
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName} {.metadata.name}{\"\\n\"}{end}",
            ]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect()
}

/// `kubectl exec` in a kube-ovn-cni pod; stdout.
fn cni_exec(kc: &Path, pod: &str, argv: &[&str]) -> String {
    let out = run({
        let mut c = kubectl(kc);
        c.args(["-n", "kube-system", "exec", pod, "-c", "cni-server", "--"])
            .args(argv);
        c
    });
    assert!(out.status.success(), "{argv:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn env_check_json(kc: &Path) -> (Option<i32>, serde_json::Value) {
    let (code, v, _) = ko_json(kc, &["--timeout", "20s", "env-check"]);
    (Some(code), v)
}

fn check<'a>(v: &'a serde_json::Value, node: &str, name: &str) -> &'a serde_json::Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .and_then(|n| {
            n["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
        })
        .unwrap_or_else(|| panic!("no check {name} for node {node}: {v:#}"))
}

/// Puts back what the test changed in a node, even when an assertion fails.
struct Undo {
    kc: PathBuf,
    pod: String,
    mtu: String,
}

impl Drop for Undo {
    fn drop(&mut self) {
        for argv in [
            vec![
                "mv",
                "/etc/cni/net.d/01-kube-ovn.conf.disabled",
                "/etc/cni/net.d/01-kube-ovn.conflist",
            ],
            vec![
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.tcp_mtu_probing={}", self.mtu),
            ],
        ] {
            let mut c = kubectl(&self.kc);
            c.args([
                "-n",
                "kube-system",
                "exec",
                &self.pod,
                "-c",
                "cni-server",
                "--",
            ])
            .args(&argv);
            let _ = c.output();
        }
    }
}

#[test]
fn env_check_reports_each_nodes_real_settings() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: changes node settings, sandbox only");
        return;
    }
    let kc = kubeconfig(ENV_SANDBOX);
    let pods = cni_pods(&kc);
    assert_eq!(pods.len(), nodes(&kc).len());
    let (code, v) = env_check_json(&kc);
    assert_eq!(v["nodes"].as_array().unwrap().len(), pods.len(), "{v:#}");
    // Each result agrees with what kubectl exec reads in that node's cni pod.
    for (node, pod) in &pods {
        let listing = cni_exec(&kc, pod, &["ls", "-1A", "/etc/cni/net.d"]);
        assert_eq!(listing.trim(), "01-kube-ovn.conflist");
        assert_eq!(check(&v, node, "cni-config")["status"], "pass");
        let mtu = cni_exec(&kc, pod, &["cat", "/proc/sys/net/ipv4/tcp_mtu_probing"]);
        let want = if mtu.trim() == "0" { "warn" } else { "pass" };
        assert_eq!(check(&v, node, "tcp-mtu-probing")["status"], want, "{mtu}");
        // The sandbox runs OVS on the userspace datapath: no kernel geneve socket.
        let geneve = check(&v, node, "geneve-port");
        assert_eq!(geneve["status"], "pass", "{geneve}");
        assert!(
            geneve["message"].as_str().unwrap().contains("netdev"),
            "{geneve}"
        );
        for name in [
            "tcp-tw-recycle",
            "checksum-errors",
            "dns-search",
            "security-software",
        ] {
            let c = check(&v, node, name);
            assert!(c["status"] != "fail", "{c}");
        }
    }
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["healthy"], true);

    // Break one node for real: its CNI config moved away, and MTU probing turned on.
    let (node, pod) = pods
        .iter()
        .find(|(n, _)| n == "kube-ovn-worker")
        .expect("node kube-ovn-worker")
        .clone();
    let mtu = cni_exec(&kc, &pod, &["cat", "/proc/sys/net/ipv4/tcp_mtu_probing"]);
    let _undo = Undo {
        kc: kc.clone(),
        pod: pod.clone(),
        mtu: mtu.trim().to_string(),
    };
    cni_exec(
        &kc,
        &pod,
        &[
            "mv",
            "/etc/cni/net.d/01-kube-ovn.conflist",
            "/etc/cni/net.d/01-kube-ovn.conf.disabled",
        ],
    );
    cni_exec(
        &kc,
        &pod,
        &["sysctl", "-q", "-w", "net.ipv4.tcp_mtu_probing=1"],
    );
    let (code, v) = env_check_json(&kc);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["healthy"], false);
    let cni = check(&v, &node, "cni-config");
    assert_eq!(cni["status"], "fail", "{cni}");
    assert!(
        cni["message"]
            .as_str()
            .unwrap()
            .contains("01-kube-ovn.conf.disabled"),
        "{cni}"
    );
    assert!(cni["hint"].as_str().unwrap().contains(&node), "{cni}");
    assert_eq!(check(&v, &node, "tcp-mtu-probing")["status"], "pass");
    for (other, _) in pods.iter().filter(|(n, _)| *n != node) {
        assert_eq!(check(&v, other, "cni-config")["status"], "pass");
    }

    // --raw: only the image's script; the sandbox image has none, which is a failure.
    let out = run({
        let mut c = ko(&kc);
        c.args(["env-check", "--raw"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert_eq!(
        t.matches("/kube-ovn/env-check.sh is not in this image")
            .count(),
        pods.len(),
        "{t}"
    );
}
