//! diagnose runs `kube-ovn-pinger --mode=job` where the pinger pods have it,
//! with upstream's arguments, and judges its log. The sandbox's pinger pods
//! carry a stand-in (sandbox/dataplane/src/pinger-standin.sh) that pings for
//! real and logs upstream's messages. Needs root; sandbox only (`diagudp`).

mod common;

use std::path::Path;

use common::{ko, ko_json, nodes, run, text};
use serde_json::Value;

const SANDBOX: &str = "diagudp";

fn diagnose(kc: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut a = vec!["diagnose"];
    a.extend_from_slice(args);
    let (code, v, _) = ko_json(kc, &a);
    (Some(code), v)
}

fn pinger_checks(v: &Value) -> Vec<&Value> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"] == "pinger-job")
        .collect()
}

/// The sandbox's external host (outside the cluster, answers ping).
fn external_host(sandbox: &str) -> String {
    let st = common::status_json(sandbox);
    st["external_host"]["ip4"]
        .as_str()
        .expect("external_host.ip4")
        .to_string()
}

#[test]
fn pinger_job_runs_with_upstream_arguments_and_fails_on_lost_pings() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: relies on the sandbox's pinger stand-in and addresses");
        return;
    }
    let kc = common::kubeconfig(SANDBOX);
    let n = nodes(&kc).len();
    let ext = external_host(SANDBOX);

    // healthy: one passing pinger-job check per node; the job got upstream's flags
    let (code, v) = diagnose(&kc, &["all", "--external-address", &ext]);
    let pc = pinger_checks(&v);
    assert_eq!(pc.len(), n, "{pc:#?}");
    assert!(pc.iter().all(|c| c["status"] == "pass"), "{pc:#?}");
    assert_eq!(code, Some(0));
    let runs = v["pinger"].as_array().expect("pinger runs");
    assert_eq!(runs.len(), n);
    // a small cluster's matrix is a full mesh: the job runs in every pinger pod
    assert_eq!(
        v["pinger_strategy"]["kind"], "every",
        "{}",
        v["pinger_strategy"]
    );
    assert_eq!(v["pinger_strategy"]["pods"], n);
    for r in runs {
        let out = r["output"].as_str().unwrap();
        assert!(
            out.contains(&format!("called with: --mode=job --external-address={ext}")),
            "{out}"
        );
        assert!(
            out.contains("ping pod:") && out.contains("ping node:"),
            "{out}"
        );
        assert_eq!(r["problems"].as_array().map(Vec::len), Some(0), "{r}");
    }

    // IPPorts reach the job as --target-ip-ports
    let node_ip = common::jsonpath(
        &kc,
        &["get", "nodes"],
        "{.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
    );
    let target = format!("tcp-{}-6641", node_ip.trim());
    let (_, v) = diagnose(&kc, &["IPPorts", &target]);
    for r in v["pinger"].as_array().expect("pinger runs") {
        let out = r["output"].as_str().unwrap();
        assert!(
            out.contains(&format!("--target-ip-ports={target}")),
            "{out}"
        );
        assert!(out.contains("success"), "{out}");
    }

    // an external address nobody answers (inside the sandbox's own node network):
    // upstream's job exits 0 and only logs the loss; diagnose must still fail it
    let silent = format!("{}.250", ext.rsplit_once('.').expect("IPv4").0);
    let (code, v) = diagnose(&kc, &["all", "--external-address", &silent]);
    assert_eq!(code, Some(1));
    let pc = pinger_checks(&v);
    assert_eq!(pc.len(), n, "{pc:#?}");
    for c in pc {
        assert_eq!(c["status"], "fail", "{c}");
        let msg = c["message"].as_str().unwrap();
        assert!(
            msg.contains(&silent) && msg.contains("loss count 3"),
            "{msg}"
        );
        assert!(c["scope"].as_str().unwrap().starts_with("node/"), "{c}");
    }
    for r in v["pinger"].as_array().expect("pinger runs") {
        assert_eq!(r["exit_code"], 0, "upstream's job exits 0 here: {r}");
    }

    // a node whose chassis is gone: its peers' jobs wait 30 s per silent node
    // (as upstream's do); diagnose cuts them at --timeout and keeps what they
    // had reported
    let broken = nodes(&kc)[1].clone();
    let f = common::sandbox(SANDBOX, &["fault", "delete-chassis", &broken]);
    assert!(f.status.success(), "{}", text(&f.stderr));
    let mut c = ko(&kc);
    c.args([
        "--timeout",
        "8s",
        "diagnose",
        "all",
        "--external-address",
        &ext,
    ]);
    c.args(["-o", "json"]);
    let out = run(c);
    let _ = common::sandbox(SANDBOX, &["fault", "heal"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("diagnose JSON");
    assert_eq!(out.status.code(), Some(1));
    let cut: Vec<&Value> = v["pinger"]
        .as_array()
        .expect("pinger runs")
        .iter()
        .filter(|r| r["unfinished"].is_string())
        .collect();
    assert!(!cut.is_empty(), "no job was cut: {:#}", v["pinger"]);
    for r in &cut {
        assert!(r["unfinished"].as_str().unwrap().contains("8s"), "{r}");
    }
    let on_broken = pinger_checks(&v)
        .into_iter()
        .find(|c| c["scope"] == format!("node/{broken}"))
        .expect("pinger-job check of the broken node")
        .clone();
    assert_eq!(on_broken["status"], "fail", "{on_broken}");
    assert!(
        on_broken["message"]
            .as_str()
            .unwrap()
            .contains("loss count 3"),
        "{on_broken}"
    );
}

/// Past the full-mesh size (10 nodes here) the matrix is sampled and upstream's
/// job, which pings every pinger pod and node one after another, runs only from
/// the nodes whose matrix row failed: not at all on a healthy cluster, and from
/// a broken node's side when one breaks. Own sandbox (`diag10`), torn down at
/// the end.
#[test]
fn a_sampled_matrix_runs_the_pinger_job_only_where_a_row_failed() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: needs a 10-node sandbox");
        return;
    }
    const LARGE: &str = "diag10";
    let kc = common::kubeconfig_with(LARGE, &["--nodes", "10"]);
    let ext = external_host(LARGE);
    let n = nodes(&kc).len();
    assert_eq!(n, 10);

    let (code, v) = diagnose(&kc, &["all", "--external-address", &ext]);
    let healthy_strategy = v["pinger_strategy"].clone();
    let healthy_matrix = v["connectivity"]["strategy"]["kind"].clone();
    let healthy_runs = v["pinger"].as_array().map_or(0, Vec::len);
    let healthy_checks = pinger_checks(&v).len();
    let mut c = ko(&kc);
    c.args(["diagnose", "all", "--external-address", &ext]);
    let screen = text(&run(c).stdout);

    // a node without its chassis: its row fails, and so do its peers' probes to it
    let broken = nodes(&kc)[4].clone();
    let f = common::sandbox(LARGE, &["fault", "delete-chassis", &broken]);
    assert!(f.status.success(), "{}", text(&f.stderr));
    let mut c = ko(&kc);
    c.args(["--timeout", "8s", "diagnose", "all"]);
    c.args(["--external-address", &ext, "-o", "json"]);
    let out = run(c);
    let _ = common::sandbox(LARGE, &["down"]);

    assert_eq!(code, Some(0), "healthy 10 nodes: {:#}", v["checks"]);
    assert_eq!(healthy_matrix, "sampled");
    assert_eq!(healthy_strategy["kind"], "skipped", "{healthy_strategy}");
    assert_eq!(healthy_strategy["of"], n);
    assert_eq!((healthy_runs, healthy_checks), (0, 0));
    assert!(
        screen.contains("kube-ovn-pinger --mode=job: not run") && screen.contains("--full-mesh"),
        "{screen}"
    );

    let v: Value = serde_json::from_slice(&out.stdout).expect("diagnose JSON");
    assert_eq!(out.status.code(), Some(1));
    let strategy = &v["pinger_strategy"];
    assert_eq!(strategy["kind"], "troubled", "{strategy}");
    let ran = strategy["ran"].as_u64().expect("ran") as usize;
    assert!((1..=4).contains(&ran), "{strategy}");
    let runs = v["pinger"].as_array().expect("pinger runs");
    assert_eq!(runs.len(), ran);
    // every job ran on a node whose own matrix row failed
    let failed_rows: Vec<String> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"] == "connectivity" && c["status"] == "fail")
        .filter_map(|c| c["scope"].as_str().map(String::from))
        .collect();
    for r in runs {
        let scope = format!("node/{}", r["node"].as_str().expect("node"));
        assert!(
            failed_rows.contains(&scope),
            "{scope} not in {failed_rows:?}"
        );
    }
}
