//! `kubectl ko diagnose` against sandbox faults (`diag-faults`): each fault
//! makes diagnose exit 1 with a failing check whose scope and message name
//! the node/pod/database and the problem. The tests share one sandbox and run
//! one at a time (a lock here, and the `diag-faults` nextest group). Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{ko_json, nodes, text};
use serde_json::Value;

const SANDBOX: &str = "diag-faults";

/// `e2e/sandbox <args> --name diag-faults`.
fn sandbox(args: &[&str]) -> std::process::Output {
    common::sandbox(SANDBOX, args)
}
static SERIAL: Mutex<()> = Mutex::new(());

fn kc() -> PathBuf {
    common::kubeconfig(SANDBOX)
}

/// `sandbox status -o json`, read once: the parts used (external host,
/// central pod names) do not change with faults.
fn status() -> Value {
    static STATUS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    STATUS.get_or_init(read_status).clone()
}

fn read_status() -> Value {
    common::status_json(SANDBOX)
}

fn diagnose(kc: &Path) -> (i32, Value) {
    let ext = status()["external_host"]["ip4"]
        .as_str()
        .expect("external_host.ip4")
        .to_string();
    let (code, v, _) = ko_json(kc, &["diagnose", "all", "--external-address", &ext]);
    (code, v)
}

fn fault(args: &[&str]) {
    let mut a = vec!["fault"];
    a.extend_from_slice(args);
    let out = sandbox(&a);
    assert!(
        out.status.success(),
        "fault {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Heal, then wait until diagnose says healthy again (RAFT rejoins take a few seconds).
fn heal_and_settle(kc: &Path) {
    fault(&["heal"]);
    let start = Instant::now();
    loop {
        let (code, v) = diagnose(kc);
        if code == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sandbox did not become healthy after heal: {:#}",
            v["checks"]
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Inject, then diagnose until a failing check matching `pred` shows up
/// (labels and RAFT state take a moment to follow), and return it.
fn expect_failure(
    kc: &Path,
    fault_args: &[&str],
    pred: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    fault(fault_args);
    let start = Instant::now();
    loop {
        let (code, v) = diagnose(kc);
        let hits: Vec<Value> = v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["status"] == "fail" && pred(c))
            .cloned()
            .collect();
        if code == 1 && !hits.is_empty() {
            assert_eq!(v["healthy"], false);
            return (v, hits);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fault {fault_args:?}: exit {code}, no matching failing check in {:#}",
            v["checks"]
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn msg(c: &Value) -> &str {
    c["message"].as_str().unwrap_or_default()
}

#[test]
fn stopped_ovn_controller_fails_its_node() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let node = nodes(&kc).last().cloned().expect("a node");
    let scope = format!("node/{node}");
    let (_, hits) = expect_failure(&kc, &["stop-controller", &node], |c| {
        c["name"] == "ovn-controller" && c["scope"] == scope.as_str()
    });
    assert!(msg(&hits[0]).contains(&node) && msg(&hits[0]).contains("not running"));
    assert!(!hits[0]["hint"].as_str().unwrap_or_default().is_empty());
    heal_and_settle(&kc);
}

#[test]
fn stopped_nb_member_fails_naming_pod_and_database() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let (_, hits) = expect_failure(&kc, &["stop-nb", "3"], |c| {
        c["name"] == "nb-raft-servers" || c["name"] == "nb-raft-members"
    });
    let pod = status()["central"][2]["pod"]
        .as_str()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string());
    for h in &hits {
        assert!(msg(h).contains("OVN NB"), "{h}");
        if let Some(p) = &pod {
            assert!(msg(h).contains(p.as_str()), "{h} does not name {p}");
        }
    }
    heal_and_settle(&kc);
}

#[test]
fn stopped_sb_member_fails() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let (_, hits) = expect_failure(&kc, &["stop-sb", "2"], |c| {
        c["name"] == "sb-raft-servers" || c["name"] == "sb-raft-members"
    });
    assert!(hits.iter().all(|h| msg(h).contains("OVN SB")));
    heal_and_settle(&kc);
}

#[test]
fn unbound_port_fails_its_pod() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let (_, hits) = expect_failure(&kc, &["unbind-port", "default/web-1"], |c| {
        c["name"] == "pod-binding" && c["scope"] == "pod/default/web-1"
    });
    assert!(msg(&hits[0]).contains("not bound"), "{}", hits[0]);
    heal_and_settle(&kc);
}

#[test]
fn deleted_chassis_fails_its_node() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let node = nodes(&kc)[1].clone();
    let scope = format!("node/{node}");
    let (_, hits) = expect_failure(&kc, &["delete-chassis", &node], |c| {
        c["name"] == "chassis" && c["scope"] == scope.as_str()
    });
    assert!(msg(&hits[0]).contains("no Chassis"), "{}", hits[0]);
    heal_and_settle(&kc);
}

#[test]
fn drifted_ip_annotation_fails_its_pod() {
    let _g = lock();
    let kc = kc();
    heal_and_settle(&kc);
    let (_, hits) = expect_failure(&kc, &["drift-annotation", "default/client-1"], |c| {
        c["name"] == "pod-addresses" && c["scope"] == "pod/default/client-1"
    });
    assert!(msg(&hits[0]).contains("annotations say ip"), "{}", hits[0]);
    heal_and_settle(&kc);
}
