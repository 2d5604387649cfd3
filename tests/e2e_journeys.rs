//! End-to-end user journeys: the built `kubectl-ko` binary against a cluster, the way
//! an on-call engineer uses it.
//!
//! Target cluster:
//! - `KO_E2E_KUBECONFIG=<file>`: any cluster running Kube-OVN (the kind workflow,
//!   after `e2e/kind/deploy-workload.sh`);
//! - otherwise the sandbox named `e2e`, brought up with `e2e/sandbox up --name e2e`
//!   on first use (needs root) and reused by every test of this suite; `e2e/test-all`
//!   removes it at the end, `e2e/sandbox down --name e2e` does so by hand.
//!
//! The journeys find their pods and policies from the cluster itself, so the same
//! assertions hold on the sandbox and on kind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ko_testkit::sandbox::kubeconfig_line;
use ko_testkit::{effective_name, hermetic, sandbox_command, text, with_sandbox_lock};
use serde_json::Value;

const KO: &str = env!("CARGO_BIN_EXE_kubectl-ko");
const SANDBOX_NAME: &str = "e2e";
/// Generous: the first command after `up` may wait for RAFT elections.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// `e2e/sandbox` builds the sandbox binaries first unless KO_SANDBOX_BIN is set
/// (e2e/test-all sets it), and that build may queue behind others.
const SANDBOX_TIMEOUT: Duration = Duration::from_secs(1200);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    shown: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed\nstdout:\n{}\nstderr:\n{}",
            self.shown,
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{} did not print JSON ({e}):\n{}\nstderr:\n{}",
                self.shown, self.stdout, self.stderr
            )
        })
    }
}

fn run(cmd: &mut Command) -> Run {
    run_within(cmd, COMMAND_TIMEOUT)
}

/// Runs a command with a deadline (the kit's runner), keeping how it was called.
fn run_within(cmd: &mut Command, timeout: Duration) -> Run {
    let shown = format!("{cmd:?}");
    let out = ko_testkit::run_within(cmd, timeout);
    Run {
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        shown,
    }
}

/// The cluster under test: its kubeconfig, found or made once per test process.
fn kubeconfig() -> &'static Path {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    KUBECONFIG.get_or_init(|| match std::env::var_os("KO_E2E_KUBECONFIG") {
        Some(k) if !k.is_empty() => {
            let k = PathBuf::from(k);
            assert!(
                k.is_file(),
                "KO_E2E_KUBECONFIG={} is not a file",
                k.display()
            );
            k
        }
        _ => sandbox_kubeconfig(),
    })
}

/// Brings up (or reuses) the sandbox `e2e`. Each nextest test is its own process,
/// so the kit's sandbox lock serialises the check-then-create between them.
fn sandbox_kubeconfig() -> PathBuf {
    with_sandbox_lock(SANDBOX_NAME, || {
        let state_root = std::env::var_os("KO_SANDBOX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/kubectl-ko-sandbox"));
        let sandbox_cmd = |verb: &str| {
            run_within(
                &mut sandbox_command(&[verb, "--name", SANDBOX_NAME]),
                SANDBOX_TIMEOUT,
            )
        };
        let status = sandbox_cmd("status");
        if status.code == Some(0) {
            if let Some(k) = kubeconfig_line(&status.stdout) {
                return k;
            }
        } else if state_root.join(effective_name(SANDBOX_NAME)).exists() {
            // A leftover that is not healthy: start again from nothing.
            sandbox_cmd("down").ok();
        }
        let up = sandbox_cmd("up").ok();
        kubeconfig_line(&up.stdout)
            .unwrap_or_else(|| panic!("e2e/sandbox up printed no KUBECONFIG= line:\n{}", up.stdout))
    })
}

fn ko(args: &[&str]) -> Run {
    let kubeconfig = kubeconfig();
    let mut c = hermetic(KO);
    c.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--color", "never"])
        .args(args);
    // on a real cluster the Kube-OVN namespace is the run's to choose
    if let Ok(ns) = std::env::var("KUBE_OVN_NS") {
        c.env("KUBE_OVN_NS", ns);
    }
    run(&mut c)
}

fn kubectl_json(args: &[&str]) -> Value {
    let kubeconfig = kubeconfig();
    run(ko_testkit::kubectl(kubeconfig)
        .args(args)
        .args(["-o", "json"]))
    .ok()
    .json()
}

fn kube_ovn_ns() -> String {
    std::env::var("KUBE_OVN_NS").unwrap_or_else(|_| "kube-system".into())
}

fn node_names() -> Vec<String> {
    let nodes = kubectl_json(&["get", "nodes"]);
    let names: Vec<String> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.is_empty(), "the cluster has no nodes");
    names
}

#[derive(Debug, Clone)]
struct Pod {
    ns: String,
    name: String,
    ip: String,
    node: String,
    labels: BTreeMap<String, String>,
}

impl Pod {
    fn target(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

/// Running workload pods on the default overlay subnet, outside the Kube-OVN namespace.
fn overlay_pods() -> Vec<Pod> {
    let ko_ns = kube_ovn_ns();
    kubectl_json(&["get", "pods", "-A"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter(|p| p["spec"]["hostNetwork"] != true)
        .filter(|p| {
            p["metadata"]["annotations"]["ovn.kubernetes.io/logical_switch"] == "ovn-default"
        })
        .filter(|p| p["metadata"]["namespace"] != ko_ns.as_str())
        .filter_map(|p| {
            Some(Pod {
                ns: p["metadata"]["namespace"].as_str()?.to_string(),
                name: p["metadata"]["name"].as_str()?.to_string(),
                ip: p["status"]["podIP"].as_str()?.to_string(),
                node: p["spec"]["nodeName"].as_str()?.to_string(),
                labels: serde_json::from_value(p["metadata"]["labels"].clone()).unwrap_or_default(),
            })
        })
        .collect()
}

/// `matchLabels`-only selectors; a selector using anything else matches nothing here,
/// so such policies are simply not used to pick pods.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> Option<bool> {
    let obj = selector.as_object()?;
    if obj.keys().any(|k| k != "matchLabels") {
        return None;
    }
    let wanted = selector["matchLabels"].as_object();
    Some(
        wanted
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()),
    )
}

struct PolicyCase {
    policy: String,
    target: Pod,
    allowed: Pod,
    denied: Pod,
}

fn policies() -> Vec<Value> {
    kubectl_json(&["get", "networkpolicies", "-A"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Pods no NetworkPolicy selects: traffic between two of them must be delivered.
fn unprotected_pair() -> (Pod, Pod) {
    let policies = policies();
    let free: Vec<Pod> = overlay_pods()
        .into_iter()
        .filter(|p| {
            !policies.iter().any(|np| {
                np["metadata"]["namespace"] == p.ns.as_str()
                    && selects(&np["spec"]["podSelector"], &p.labels) != Some(false)
            })
        })
        .collect();
    // Prefer two nodes: the packet then crosses the tunnel.
    for a in &free {
        if let Some(b) = free.iter().find(|b| b.node != a.node) {
            return (a.clone(), b.clone());
        }
    }
    match free.as_slice() {
        [a, b, ..] => (a.clone(), b.clone()),
        _ => panic!(
            "need two running overlay pods that no NetworkPolicy selects, found {free:?} \
             (on kind, run e2e/kind/deploy-workload.sh)"
        ),
    }
}

/// An ingress NetworkPolicy (matchLabels only, no ports) that admits some pod of its
/// namespace and not another.
fn policy_case() -> PolicyCase {
    let pods = overlay_pods();
    for np in policies() {
        let spec = &np["spec"];
        let ns = np["metadata"]["namespace"].as_str().unwrap_or_default();
        let types = spec["policyTypes"].as_array().cloned().unwrap_or_default();
        if types.iter().any(|t| t == "Egress") || !types.iter().any(|t| t == "Ingress") {
            continue;
        }
        let Some(rules) = spec["ingress"].as_array() else {
            continue;
        };
        // A rule with ports or without `from` admits more than pods: not usable here.
        if rules
            .iter()
            .any(|r| r.get("ports").is_some() || r["from"].as_array().is_none())
        {
            continue;
        }
        let sources: Vec<&Value> = rules
            .iter()
            .flat_map(|r| r["from"].as_array().into_iter().flatten())
            .collect();
        if sources.iter().any(|s| {
            s.as_object()
                .is_none_or(|o| o.keys().any(|k| k != "podSelector"))
        }) {
            continue;
        }
        let in_ns: Vec<&Pod> = pods.iter().filter(|p| p.ns == ns).collect();
        let Some(target) = in_ns
            .iter()
            .find(|p| selects(&spec["podSelector"], &p.labels) == Some(true))
        else {
            continue;
        };
        let admitted = |p: &Pod| -> Option<bool> {
            let mut any = false;
            for s in &sources {
                any |= selects(&s["podSelector"], &p.labels)?;
            }
            Some(any)
        };
        let others = in_ns.iter().filter(|p| p.name != target.name);
        let allowed = others.clone().find(|p| admitted(p) == Some(true));
        let denied = others.clone().find(|p| admitted(p) == Some(false));
        if let (Some(allowed), Some(denied)) = (allowed, denied) {
            return PolicyCase {
                policy: format!(
                    "{ns}/{}",
                    np["metadata"]["name"].as_str().unwrap_or_default()
                ),
                target: (*target).clone(),
                allowed: (*allowed).clone(),
                denied: (*denied).clone(),
            };
        }
    }
    panic!(
        "no ingress NetworkPolicy with an admitted and a refused pod in its namespace \
         (on kind, run e2e/kind/deploy-workload.sh)"
    );
}

#[test]
fn nbctl_show_lists_the_cluster_router_and_default_switch() {
    let show = ko(&["nbctl", "show"]).ok();
    assert!(
        show.stdout.contains("router ") && show.stdout.contains("(ovn-cluster)"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("(ovn-default)"), "{}", show.stdout);
    assert!(show.stdout.contains("(join)"), "{}", show.stdout);
}

#[test]
fn passthrough_returns_the_tools_exit_code_and_message() {
    let missing = ko(&["nbctl", "get", "Logical_Switch", "no-such-switch", "name"]);
    assert_eq!(
        missing.code,
        Some(1),
        "ovn-nbctl's own exit code: {}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("no-such-switch"),
        "{}",
        missing.stderr
    );

    // Arguments arrive byte for byte: a match expression with spaces and quotes.
    let found = ko(&[
        "nbctl",
        "--bare",
        "--columns=name",
        "find",
        "Logical_Switch",
        "name=\"ovn-default\"",
    ])
    .ok();
    assert_eq!(found.stdout.trim(), "ovn-default");
}

#[test]
fn vsctl_show_works_on_every_node() {
    for node in node_names() {
        let show = ko(&["vsctl", &node, "show"]).ok();
        assert!(
            show.stdout.contains("Bridge br-int"),
            "vsctl {node} show:\n{}",
            show.stdout
        );
    }
    let unknown = ko(&["vsctl", "no-such-node", "show"]);
    assert_eq!(unknown.code, Some(3), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no-such-node"),
        "{}",
        unknown.stderr
    );
}

fn check_raft_status(db: &str) {
    let status = ko(&["-o", "json", db, "status"]).ok().json();
    let central = kubectl_json(&["get", "pods", "-n", &kube_ovn_ns(), "-l", "app=ovn-central"]);
    let replicas = central["items"].as_array().unwrap().len();
    let members = status["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{db} status: no members: {status}"));
    assert_eq!(
        members.len(),
        replicas,
        "{db}: one RAFT member per ovn-central pod: {status}"
    );
    let leaders: Vec<&Value> = members.iter().filter(|m| m["role"] == "leader").collect();
    assert_eq!(leaders.len(), 1, "{db}: exactly one leader: {status}");
    assert_eq!(status["leader"], leaders[0]["sid"], "{db}: leader sid");
    assert_eq!(
        status["problems"].as_array().map(Vec::len),
        Some(0),
        "{db}: {status}"
    );
}

#[test]
fn nb_status_json_has_every_member_and_one_leader() {
    check_raft_status("nb");
}

#[test]
fn sb_status_json_has_every_member_and_one_leader() {
    check_raft_status("sb");
}

#[test]
fn sbctl_show_lists_a_chassis_for_every_node() {
    let show = ko(&["sbctl", "show"]).ok();
    for node in node_names() {
        assert!(
            show.stdout
                .lines()
                .any(|l| l.trim() == format!("hostname: {node}")
                    || l.trim() == format!("hostname: \"{node}\"")),
            "no chassis for node {node}:\n{}",
            show.stdout
        );
    }
}

#[test]
fn trace_between_unprotected_pods_is_delivered() {
    let (src, dst) = unprotected_pair();
    let trace = ko(&["-o", "json", "trace", &src.target(), &dst.ip, "icmp"]);
    let verdict = trace.json();
    assert_eq!(trace.code, Some(0), "{}\n{}", trace.stdout, trace.stderr);
    assert_eq!(
        verdict["verdict"],
        "delivered",
        "{} -> {}: {}",
        src.target(),
        dst.ip,
        verdict["summary"]
    );

    // The text form leads with the verdict.
    let text = ko(&["trace", &src.target(), &dst.ip, "icmp"]).ok();
    assert!(
        text.stdout.trim_start().starts_with("DELIVERED"),
        "{}",
        text.stdout
    );
}

#[test]
fn trace_into_a_protected_pod_names_the_policy_that_drops_it() {
    let case = policy_case();
    let denied = ko(&[
        "-o",
        "json",
        "trace",
        "--exit-code",
        &case.denied.target(),
        &case.target.ip,
        "tcp",
        "80",
    ]);
    let verdict = denied.json();
    assert_eq!(
        denied.code,
        Some(1),
        "with --exit-code a drop is exit 1: {}",
        denied.stderr
    );
    assert_eq!(verdict["verdict"], "dropped", "{}", verdict["summary"]);
    assert_eq!(
        verdict["drop"]["policy"],
        case.policy.as_str(),
        "{}",
        verdict["drop"]
    );

    let allowed = ko(&[
        "-o",
        "json",
        "trace",
        &case.allowed.target(),
        &case.target.ip,
        "tcp",
        "80",
    ]);
    assert_eq!(allowed.json()["verdict"], "delivered", "{}", allowed.stdout);
    assert_eq!(allowed.code, Some(0));
}

#[test]
fn mistakes_get_usage_or_not_found_exit_codes() {
    let usage = ko(&["trace"]);
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    let missing = ko(&["trace", "default/no-such-pod-e2e", "10.16.0.1", "icmp"]);
    assert_eq!(missing.code, Some(3), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no-such-pod-e2e"),
        "{}",
        missing.stderr
    );
}

#[test]
fn diagnose_all_passes_the_control_plane_and_every_nodes_data_plane() {
    let run = ko(&["-o", "json", "diagnose", "all"]);
    let report = run.json();
    let healthy = report["healthy"]
        .as_bool()
        .unwrap_or_else(|| panic!("no `healthy` field: {report}"));
    // The exit code and the verdict agree: 0 = healthy, 1 = a check failed.
    assert_eq!(
        run.code,
        Some(if healthy { 0 } else { 1 }),
        "{}",
        run.stderr
    );

    let checks = report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {report}"));
    let status = |name: &str, scope: &str| -> Option<&str> {
        checks
            .iter()
            .find(|c| c["name"] == name && c["scope"] == scope)
            .and_then(|c| c["status"].as_str())
    };
    let mut not_passed = Vec::new();
    for name in [
        "crds",
        "component/ovn-central",
        "component/kube-ovn-controller",
        "component/kube-ovn-cni",
        "component/ovs-ovn",
        "nb-raft-leader",
        "nb-raft-members",
        "nb-leader-label",
        "nb-endpoints",
        "sb-raft-leader",
        "sb-raft-members",
        "sb-leader-label",
        "sb-endpoints",
        "northd-active",
        "pod-ports",
    ] {
        if status(name, "cluster") != Some("pass") {
            not_passed.push(format!("{name} (cluster): {:?}", status(name, "cluster")));
        }
    }
    for node in node_names() {
        let scope = format!("node/{node}");
        for name in ["chassis", "encap", "ovn-controller", "br-int", "tunnels"] {
            if status(name, &scope) != Some("pass") {
                not_passed.push(format!("{name} ({scope}): {:?}", status(name, &scope)));
            }
        }
    }
    assert!(
        not_passed.is_empty(),
        "checks that should pass on a healthy cluster: {not_passed:#?}\n{}",
        report["summary"]
    );
}
