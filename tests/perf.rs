//! `kubectl ko perf` against the sandbox `perf` (the sandbox kubelet wires the
//! test pods; exec runs the host's qperf/iperf3/iperf in their namespaces).
//! The tests create the same app=PerfTest objects, so they run one at a time
//! (nextest group `perf`, .config/nextest.toml).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::{ko, kubeconfig, kubectl, run, text};

const SANDBOX: &str = "perf";

/// Serializes the tests of this binary under plain `cargo test` too.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// app=PerfTest pods and services, and NB load balancers named test-server.
fn leftovers(kc: &Path) -> Vec<String> {
    let out = run({
        let mut c = kubectl(kc);
        c.args([
            "-n",
            "kube-system",
            "get",
            "pods,services",
            "-l",
            "app=PerfTest",
            "-o",
            "name",
        ]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut left: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let out = run({
        let mut c = ko(kc);
        c.args([
            "nbctl",
            "--bare",
            "--columns=name",
            "find",
            "load_balancer",
            "name=test-server",
        ]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    left.extend(
        text(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("lb/{l}")),
    );
    left
}

fn number(v: &serde_json::Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v:#}"))
}

#[test]
fn perf_measures_pod_host_and_service_networks_and_cleans_up() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kc = kubeconfig(SANDBOX);
    assert_eq!(
        leftovers(&kc),
        Vec::<String>::new(),
        "objects before the run"
    );
    let out = run({
        let mut c = ko(&kc);
        c.args(["perf", "--duration", "1", "--sizes", "64", "-o", "json"]);
        c
    });
    let stderr = text(&out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", text(&out.stdout)));
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{stderr}");
    // Announced before anything was created.
    assert!(
        stderr.contains("pod test-host-client (hostNetwork)"),
        "{stderr}"
    );
    let unicast = v["unicast"].as_array().unwrap();
    let nets: Vec<&str> = unicast
        .iter()
        .map(|t| t["network"].as_str().unwrap())
        .collect();
    assert_eq!(nets, ["pod", "host", "service"], "{v:#}");
    for t in unicast {
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{t:#}");
        let r = &rows[0];
        assert_eq!(r["size_bytes"], 64);
        assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{r:#}");
        for f in [
            "tcp_latency_us",
            "udp_latency_us",
            "tcp_bandwidth_bps",
            "udp_bandwidth_bps",
        ] {
            assert!(number(r, f) > 0.0, "{f} in {r:#}");
        }
        let lost = number(r, "udp_lost_percent");
        assert!((0.0..=100.0).contains(&lost), "{r:#}");
    }
    // The service test went through a VIP, not the pod IP.
    assert_ne!(unicast[2]["target"], unicast[0]["target"], "{v:#}");
    // Multicast (in the default --only) ran on both networks: either numbers or a
    // note saying why there are none.
    let mcast = v["multicast"].as_array().unwrap();
    let mnets: Vec<&str> = mcast.iter().filter_map(|m| m["network"].as_str()).collect();
    assert_eq!(mnets, ["pod", "host"], "{v:#}");
    for m in mcast {
        let rows = m["rows"].as_array().unwrap();
        assert!(
            !rows.is_empty() || m["note"].as_str().is_some_and(|n| !n.is_empty()),
            "{m:#}"
        );
    }
    assert_eq!(v["left_behind"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(
        leftovers(&kc),
        Vec::<String>::new(),
        "objects after the run"
    );
}

#[test]
fn perf_refuses_another_runs_objects_and_force_clears_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kc = kubeconfig(SANDBOX);
    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"test-client","namespace":"kube-system","labels":{"app":"PerfTest"}},"spec":{"containers":[{"name":"test-client","image":"x","command":["sleep","infinity"]}]}}"#;
    let mut apply = kubectl(&kc)
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut apply.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    assert!(apply.wait().unwrap().success());

    let out = run({
        let mut c = ko(&kc);
        c.args(["perf", "--only", "pod", "--duration", "1", "--sizes", "64"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pod test-client"), "{err}");
    assert!(err.contains("--force"), "{err}");

    let out = run({
        let mut c = ko(&kc);
        c.args([
            "perf",
            "--only",
            "pod",
            "--duration",
            "1",
            "--sizes",
            "64",
            "--force",
        ]);
        c
    });
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Pod network"), "{stdout}");
    assert!(stdout.contains("TCP Latency"), "{stdout}");
    assert_eq!(leftovers(&kc), Vec::<String>::new());
}

#[test]
fn perf_ctrl_c_removes_what_it_created_and_exits_130() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kc = kubeconfig(SANDBOX);
    let mut child = ko(&kc)
        .args([
            "perf",
            "--only",
            "pod,service",
            "--duration",
            "3",
            "--sizes",
            "64",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Interrupt during the service test: pods, Service, NB LB and servers exist.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let go = line.starts_with("perf: service network");
        seen.push(line);
        if go {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.starts_with("perf: service network")),
        "{seen:#?}"
    );
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("removing the test objects")),
        "{rest:#?}"
    );
    assert_eq!(leftovers(&kc), Vec::<String>::new(), "{rest:#?}");
}

#[test]
fn perf_leader_recover_times_nb_sb_and_northd() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args([
            "perf",
            "--only",
            "host",
            "--duration",
            "1",
            "--sizes",
            "64",
            "--leader-recover",
            "--yes",
            "-o",
            "json",
        ]);
        c
    });
    let stderr = text(&out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", text(&out.stdout)));
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{stderr}");
    let rec = v["leader_recover"].as_array().unwrap();
    let comps: Vec<&str> = rec
        .iter()
        .map(|r| r["component"].as_str().unwrap())
        .collect();
    assert_eq!(comps, ["nb", "sb", "northd"], "{v:#}");
    for r in rec {
        assert!(r["error"].is_null(), "{r:#}");
        assert!(number(r, "deployment_available_secs") > 0.0, "{r:#}");
        assert!(number(r, "leader_back_secs") > 0.0, "{r:#}");
        assert!(
            r["deleted_pod"]
                .as_str()
                .is_some_and(|p| p.starts_with("ovn-central"))
        );
    }
    // The cluster still has its leaders afterwards.
    let out = run({
        let mut c = ko(&kc);
        c.args(["nb", "status", "-o", "json"]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(leftovers(&kc), Vec::<String>::new());
}

#[test]
fn perf_unknown_node_is_a_usage_error_naming_the_nodes() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args(["perf", "--server-node", "no-such-node"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-node"), "{err}");
    assert!(err.contains("kube-ovn-worker"), "{err}");
}
