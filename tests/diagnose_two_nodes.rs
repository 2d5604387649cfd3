//! `diagnose all` on the smallest sandboxes (`diag2`, 2 nodes, then 1): the
//! three ovn-central RAFT members share the nodes (on distinct ports) and every
//! check still passes. Needs root; sandbox only.

mod common;

use common::{ko, ko_json, nodes, run, text};
use serde_json::Value;

const SANDBOX: &str = "diag2";

#[test]
fn two_node_sandbox_is_healthy() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: the 2-node shape only exists in the sandbox");
        return;
    }
    let kc = common::kubeconfig_with(SANDBOX, &["--nodes", "2"]);
    let st = common::status_json(SANDBOX);
    let ext = st["external_host"]["ip4"]
        .as_str()
        .expect("external_host.ip4")
        .to_string();
    let node_names = nodes(&kc);
    assert_eq!(node_names.len(), 2);

    let (code, v, _) = ko_json(&kc, &["diagnose", "all", "--external-address", &ext]);
    let checks = v["checks"].as_array().expect("checks");
    let failing: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(code, 0, "failing: {failing:#?}");
    assert_eq!(v["healthy"], true);
    let passes = |name: &str, scope: &str| {
        checks
            .iter()
            .any(|c| c["name"] == name && c["scope"] == scope && c["status"] == "pass")
    };
    for db in ["nb", "sb"] {
        let members = checks
            .iter()
            .find(|c| c["name"] == format!("{db}-raft-members"))
            .expect("raft members check");
        assert_eq!(members["status"], "pass", "{members}");
        assert!(
            members["message"]
                .as_str()
                .unwrap()
                .contains("all 3 members"),
            "{members}"
        );
        assert!(passes(&format!("{db}-leader-label"), "cluster"));
    }
    assert!(passes("northd-active", "cluster"));
    for n in &node_names {
        for name in ["chassis", "ovn-controller", "br-int", "tunnels"] {
            assert!(
                passes(name, &format!("node/{n}")),
                "no passing {name} for {n}"
            );
        }
    }
    // every pinger row reaches the other node's pinger and the external host
    let m = &v["connectivity"];
    let targets = m["targets"].as_array().expect("targets");
    let ext_idx = targets
        .iter()
        .position(|t| t["kind"] == "external")
        .expect("external column");
    let probes = m["probes"].as_array().expect("probes");
    assert!(
        probes.iter().any(|p| p["to"] == ext_idx),
        "external host not probed: {probes:#?}"
    );
    assert!(
        probes
            .iter()
            .filter(|p| p["to"] == ext_idx)
            .all(|p| p["result"] == "ok"),
        "{probes:#?}"
    );

    // stop the member that shares node 1 (it listens on 6653): diagnose must name
    // that pod, not the other one with the same IP; heal restarts it on its port
    let central: Vec<String> = st["central"]
        .as_array()
        .expect("status central")
        .iter()
        .filter_map(|c| c["pod"].as_str().map(String::from))
        .collect();
    assert_eq!(central.len(), 3, "{st:#}");
    let third = central[2]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let f = common::sandbox(SANDBOX, &["fault", "stop-nb", "3"]);
    assert!(f.status.success(), "{}", text(&f.stderr));
    let (code, v, _) = ko_json(&kc, &["diagnose", "all", "--external-address", &ext]);
    let _ = common::sandbox(SANDBOX, &["fault", "heal"]);
    assert_eq!(code, 1);
    let members = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "nb-raft-members")
        .expect("nb-raft-members")
        .clone();
    assert_eq!(members["status"], "fail", "{members}");
    let msg = members["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("pod {third}")) && msg.contains(":6653"),
        "{msg}"
    );
    let others: Vec<&String> = central[..2].iter().collect();
    for o in others {
        let name = o.rsplit('/').next().unwrap_or_default();
        assert!(!msg.contains(name), "{msg} names {name}");
    }

    // healed: the member is back in the cluster (RAFT catches up within seconds)
    let mut healthy = false;
    for _ in 0..10 {
        let mut c = ko(&kc);
        c.args(["diagnose", "all", "--external-address", &ext, "-o", "json"]);
        if run(c).status.code() == Some(0) {
            healthy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let _ = common::sandbox(SANDBOX, &["down"]);
    assert!(healthy, "diagnose did not turn healthy after fault heal");

    // the smallest shape, under the same name: one node, all three members on it
    let up = common::sandbox(SANDBOX, &["up", "--nodes", "1"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let (code, v, _) = ko_json(&kc, &["diagnose", "all", "--external-address", &ext]);
    let _ = common::sandbox(SANDBOX, &["down"]);
    let checks = v["checks"].as_array().expect("checks");
    let failing: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(code, 0, "one node: {failing:#?}");
    let members = checks
        .iter()
        .find(|c| c["name"] == "sb-raft-members")
        .expect("sb-raft-members");
    assert!(
        members["message"]
            .as_str()
            .unwrap()
            .contains("all 3 members"),
        "{members}"
    );
}
