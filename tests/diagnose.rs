//! `kubectl ko diagnose` against a healthy sandbox (`diag`): the real binary,
//! the API emulator, exec over WebSocket into real OVN/OVS. Needs root.
//! With KO_E2E_KUBECONFIG the same tests run against that cluster; then
//! KO_E2E_EXTERNAL_ADDRESS must name an address the cluster may ping.

mod common;

use std::path::{Path, PathBuf};

use common::{ko, ko_bare, ko_json, nodes, run, text};
use serde_json::Value;

const SANDBOX: &str = "diag";

fn kc() -> PathBuf {
    common::kubeconfig(SANDBOX)
}

/// The sandbox's own "external" host (never an address outside the machine).
fn external(_kc: &Path) -> String {
    if let Ok(a) = std::env::var("KO_E2E_EXTERNAL_ADDRESS") {
        return a;
    }
    sandbox_status()["external_host"]["ip4"]
        .as_str()
        .expect("sandbox status has external_host.ip4")
        .to_string()
}

/// `sandbox status -o json`, read once per test process.
fn sandbox_status() -> Value {
    static STATUS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    STATUS.get_or_init(|| common::status_json(SANDBOX)).clone()
}

/// Run `diagnose <args> -o json`; returns (exit code, report, stderr).
fn diagnose(kc: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["diagnose"];
    a.extend_from_slice(args);
    ko_json(kc, &a)
}

fn checks(v: &Value) -> &Vec<Value> {
    v["checks"].as_array().expect("checks array")
}

fn failing(v: &Value) -> Vec<String> {
    checks(v)
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| format!("{} [{}]: {}", c["name"], c["scope"], c["message"]))
        .collect()
}

fn has_check(v: &Value, name: &str, scope: &str, status: &str) -> bool {
    checks(v)
        .iter()
        .any(|c| c["name"] == name && c["scope"] == scope && c["status"] == status)
}

#[test]
fn all_on_a_healthy_sandbox_is_healthy() {
    let kc = kc();
    let ext = external(&kc);
    let (code, v, stderr) = diagnose(&kc, &["all", "--external-address", &ext]);
    assert_eq!(
        code,
        0,
        "failing checks: {:#?}\nstderr: {stderr}",
        failing(&v)
    );
    assert_eq!(v["healthy"], true);
    assert_eq!(v["target"], "all");
    for c in checks(&v) {
        for k in ["name", "scope", "status", "message", "hint"] {
            assert!(c.get(k).is_some(), "check without {k}: {c}");
        }
    }
    // every layer was looked at
    for name in [
        "crds",
        "component/ovn-central",
        "nb-raft-leader",
        "sb-raft-members",
        "northd-active",
        "nb-endpoints",
        "pod-ports",
        "version-skew",
    ] {
        assert!(
            checks(&v)
                .iter()
                .any(|c| c["name"] == name && c["status"] == "pass"),
            "no passing {name} check"
        );
    }
    for n in nodes(&kc) {
        for name in ["chassis", "ovn-controller", "br-int", "tunnels"] {
            assert!(
                has_check(&v, name, &format!("node/{n}"), "pass"),
                "no passing {name} check for node {n}"
            );
        }
    }
    // the versions the sandbox's daemons report, all one release: no skew
    let skew = checks(&v)
        .iter()
        .find(|c| c["name"] == "version-skew")
        .expect("version-skew check");
    let msg = skew["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("OVN ") && msg.contains("ovn-controller "),
        "{msg}"
    );
    // the connectivity matrix: one pinger row per node, node and external columns
    let m = &v["connectivity"];
    let sources = m["sources"].as_array().expect("sources");
    let targets = m["targets"].as_array().expect("targets");
    assert!(
        sources
            .iter()
            .filter(|s| s.get("policy_probe").is_none())
            .count()
            >= nodes(&kc).len()
    );
    assert!(
        targets
            .iter()
            .any(|t| t["kind"] == "external" && t["address"] == ext.as_str())
    );
    assert!(targets.iter().any(|t| t["kind"] == "node"));
    let probes = m["probes"].as_array().expect("probes");
    let ext_idx = targets
        .iter()
        .position(|t| t["kind"] == "external")
        .expect("external column");
    assert!(
        probes
            .iter()
            .filter(|p| p["to"] == ext_idx)
            .all(|p| p["result"] == "ok"),
        "external host not reachable: {probes:#?}"
    );
}

/// The NetworkPolicy-denied pair shows as blocked by that policy, the allowed
/// pair as ok, and neither makes the cluster unhealthy.
#[test]
fn matrix_shows_the_network_policy_pair() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        // the allowed/denied pair is a sandbox fixture (`sandbox status`)
        eprintln!("skipped: needs the sandbox's NetworkPolicy pair");
        return;
    }
    let kc = kc();
    let ext = external(&kc);
    let status = sandbox_status();
    let np = &status["network_policy"];
    let (target, allowed, denied, policy) = (
        np["target"].as_str().expect("np target"),
        np["allowed_from"].as_str().expect("allowed_from"),
        np["denied_from"].as_str().expect("denied_from"),
        np["policy"].as_str().expect("policy"),
    );
    let (_, v, _) = diagnose(&kc, &["all", "--external-address", &ext]);
    let m = &v["connectivity"];
    let t = m["targets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["label"] == target)
        .unwrap_or_else(|| panic!("{target} is not a matrix column: {m:#}"));
    assert_eq!(m["targets"][t]["policies"][0], policy);
    let row = |pod: &str| {
        m["sources"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["pod"] == pod)
            .unwrap_or_else(|| panic!("{pod} is not a matrix row: {m:#}"))
    };
    let cell = |from: usize| {
        m["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["from"] == from && p["to"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no probe {from}->{t}"))
    };
    let d = cell(row(denied));
    assert_eq!(d["result"], "blocked-by-policy", "{d}");
    assert!(d["detail"].as_str().unwrap().contains(policy));
    assert_eq!(cell(row(allowed))["result"], "ok");
    let (dns, dname) = denied.split_once('/').unwrap();
    assert!(has_check(
        &v,
        "connectivity",
        &format!("pod/{dns}/{dname}"),
        "warn"
    ));
    assert_eq!(v["healthy"], true, "failing: {:#?}", failing(&v));
}

#[test]
fn node_scope_checks_one_node() {
    let kc = kc();
    let ext = external(&kc);
    let all = nodes(&kc);
    let n = all.last().expect("a node");
    let (code, v, stderr) = diagnose(&kc, &["node", n, "--external-address", &ext]);
    assert_eq!(code, 0, "{:#?}\n{stderr}", failing(&v));
    assert_eq!(v["target"], format!("node {n}"));
    assert!(has_check(
        &v,
        "ovn-controller",
        &format!("node/{n}"),
        "pass"
    ));
    for other in all.iter().filter(|o| *o != n) {
        assert!(
            !checks(&v)
                .iter()
                .any(|c| c["scope"] == format!("node/{other}").as_str()),
            "node {other} checked in `diagnose node {n}`"
        );
    }
    let sources = v["connectivity"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["node"], n.as_str());
}

#[test]
fn subnet_scope_checks_the_subnet() {
    let kc = kc();
    let (code, v, stderr) = diagnose(&kc, &["subnet", "ovn-default"]);
    assert_eq!(code, 0, "{:#?}\n{stderr}", failing(&v));
    assert!(has_check(
        &v,
        "logical-switch",
        "subnet/ovn-default",
        "pass"
    ));
    assert!(has_check(&v, "pod-ports", "subnet/ovn-default", "pass"));
    // the gateway is a column
    assert!(
        v["connectivity"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["label"] == "gateway of ovn-default")
    );
}

#[test]
fn ipports_probes_each_target_from_every_node() {
    let kc = kc();
    // a node's own IP and the OVN NB port: reachable inside the sandbox
    let node_ip = common::jsonpath(
        &kc,
        &["get", "nodes"],
        "{.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
    );
    let node_ip = node_ip.trim();
    let arg = format!("tcp-{node_ip}-6641,udp-{node_ip}-53");
    let (_, v, stderr) = diagnose(&kc, &["IPPorts", &arg]);
    assert!(
        v["target"].as_str().unwrap().starts_with("IPPorts "),
        "{stderr}"
    );
    let m = &v["connectivity"];
    let targets = m["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "both targets are probed: {targets:#?}");
    assert_eq!(targets[0]["address"], format!("{node_ip}:6641"));
    assert_eq!(targets[1]["label"], format!("udp-{node_ip}-53"));
    let probes = m["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2 * m["sources"].as_array().unwrap().len());
    // the NB port takes the connect; nothing listens on UDP 53 on a node, so
    // its kernel answers with ICMP port unreachable: reached, closed
    for p in probes {
        assert_eq!(p["result"], "ok", "{p}");
    }
    assert!(
        probes
            .iter()
            .filter(|p| p["to"] == 1)
            .all(|p| p["detail"].as_str().unwrap().contains("port unreachable")),
        "{probes:#?}"
    );
}

#[test]
fn text_report_puts_failures_first_and_has_no_colour_off_a_tty() {
    let kc = kc();
    let ext = external(&kc);
    let mut c = ko(&kc);
    c.args(["diagnose", "all", "--external-address", &ext]);
    let out = run(c);
    let s = text(&out.stdout);
    assert!(s.starts_with("diagnose all: HEALTHY"), "{s}");
    assert!(s.contains("Passed ("));
    assert!(s.contains("Connectivity"));
    assert!(!s.contains('\u{1b}'), "colour escape codes off a TTY");
    // progress goes to stderr only on a TTY
    assert!(!text(&out.stderr).contains("probing"));
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let kc = kc();
    // an unknown node or subnet is a "not found" (exit 3): tests/runbook.rs
    let cases: &[(&[&str], &str)] = &[
        (&["IPPorts", "tcp-1.2.3.4-x"], "malformed IPPorts item"),
        (
            &["all", "--external-address", "not-an-ip"],
            "not an IP address",
        ),
    ];
    for (args, want) in cases {
        let mut c = ko(&kc);
        c.arg("diagnose").args(*args);
        let out = run(c);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.lines().count() <= 4, "not a wall of errors: {err}");
    }
    // Kube-OVN in another namespace
    let mut c = ko(&kc);
    c.args(["--kube-ovn-namespace", "kube-ovn", "diagnose", "all"]);
    let out = run(c);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Kube-OVN was not found in namespace kube-ovn"),
        "{err}"
    );
    assert!(err.contains("KUBE_OVN_NS"), "{err}");
}

#[test]
fn malformed_ipports_fail_before_contacting_a_cluster() {
    let mut c = ko_bare();
    c.args([
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "diagnose",
        "IPPorts",
        "tcp-1.2.3.4-x",
    ]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tcp-1.2.3.4-x"));
}

/// Every LIST diagnose makes asks for a page of 500 (and so never one unbounded response).
#[test]
fn every_list_diagnose_makes_is_paged() {
    let kc = kc();
    let Some(before) = common::api_request_log(&kc) else {
        return; // a real cluster has no request log to read
    };
    let (_, v, _) = diagnose(&kc, &["all"]);
    assert!(!checks(&v).is_empty());
    let log = common::api_request_log(&kc).unwrap_or_default();
    let new = log.get(before.len()..).unwrap_or_default();
    let collections = [
        "nodes",
        "pods",
        "subnets",
        "vpcs",
        "customresourcedefinitions",
        "endpointslices",
    ];
    // "... INFO ko_apiserver::api: GET <uri> -> 200": a LIST is a GET of a collection.
    let lists: Vec<&str> = new
        .lines()
        .filter(|l| l.contains("agent=\"kubectl-ko/"))
        .filter_map(|l| l.split_once(" GET ").map(|(_, r)| r))
        .filter_map(|r| r.split_whitespace().next())
        .filter(|uri| {
            let path = uri.split('?').next().unwrap_or(uri);
            let last = path.rsplit('/').next().unwrap_or("");
            collections.contains(&last) && !uri.contains("watch=")
        })
        .collect();
    assert!(
        lists.len() >= 3,
        "diagnose all lists nodes, pods, subnets: {new}"
    );
    let unpaged: Vec<&&str> = lists.iter().filter(|l| !l.contains("limit=500")).collect();
    assert!(unpaged.is_empty(), "LISTs without limit=500: {unpaged:?}");
}

/// The matrix says how it chose its cells, and each source's probes took one exec.
#[test]
fn matrix_reports_its_strategy_and_one_exec_per_source() {
    let kc = kc();
    let (_, v, _) = diagnose(&kc, &["all"]);
    let m = &v["connectivity"];
    assert_eq!(m["strategy"]["kind"], "full-mesh", "3 nodes: {m}");
    let sources = m["sources"].as_array().expect("sources").len();
    let probes = m["probes"].as_array().expect("probes").len();
    assert!(probes > sources, "more probes than sources: {probes}");
    assert_eq!(m["execs"].as_u64(), Some(sources as u64), "{m}");
    let (_, forced, _) = diagnose(&kc, &["all", "--full-mesh"]);
    assert_eq!(forced["connectivity"]["strategy"]["kind"], "full-mesh");
    let mut c = ko(&kc);
    c.args(["diagnose", "all"]);
    let out = text(&run(c).stdout);
    assert!(out.contains("strategy: full mesh"), "{out}");
}
