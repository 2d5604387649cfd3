//! `diagnose IPPorts udp-...` against real UDP endpoints in a sandbox pod
//! (`diagudp`): an echo listener answers (ok), a listener that never answers
//! is "open|filtered" (a warning, not a failure), a port with no listener gets
//! the pod kernel's ICMP port unreachable (reached, closed: ok). Needs root;
//! sandbox only (the listeners run in the pod's network namespace).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::ko_json;
use serde_json::Value;

const SANDBOX: &str = "diagudp";
const ECHO_PORT: u16 = 5301;
const SILENT_PORT: u16 = 5302;
const CLOSED_PORT: u16 = 5303;

/// UDP listeners: echo on argv[1], read-and-ignore on argv[2]; they end by
/// themselves after 120 s in case the test dies before killing them.
const LISTENERS: &str = r#"
import select, socket, sys, time
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind(("0.0.0.0", int(sys.argv[1])))
silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("0.0.0.0", int(sys.argv[2])))
print("listening", flush=True)
end = time.time() + 120
while time.time() < end:
    ready, _, _ = select.select([echo, silent], [], [], 1)
    for s in ready:
        data, peer = s.recvfrom(2048)
        if s is echo:
            echo.sendto(data, peer)
"#;

/// The listener process and its stdout: the pipe stays open while it runs
/// (closing it early would make Python's print fail with EPIPE and exit).
struct Listeners {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_listeners(netns: &str) -> Listeners {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "/usr/bin/python3", "-c", LISTENERS])
        .args([ECHO_PORT.to_string(), SILENT_PORT.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3 UDP listeners in the pod's netns");
    // wait for the whole "listening" line so the probes do not race the bind
    let mut out = BufReader::new(child.stdout.take().expect("listener stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("listener output");
    assert_eq!(line.trim(), "listening", "listeners did not start");
    Listeners {
        child,
        _stdout: out,
    }
}

#[test]
fn udp_ipports_tell_reply_silence_and_closed_apart() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: the UDP listeners run in a sandbox pod's netns");
        return;
    }
    let kc = common::kubeconfig(SANDBOX);
    let ip = common::jsonpath(&kc, &["get", "pod", "web-1"], "{.status.podIP}");
    let ip = ip.trim().to_string();
    // the pod's netns as the sandbox names it (prefixes and per-version suffixes
    // apply to the sandbox name): from `status`
    let st: Value =
        serde_json::from_slice(&common::sandbox(SANDBOX, &["status", "-o", "json"]).stdout)
            .expect("sandbox status -o json");
    let netns = st["pods"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["namespace"] == "default" && p["name"] == "web-1")
        })
        .and_then(|p| p["netns"].as_str())
        .expect("web-1 in sandbox status")
        .to_string();
    let _listeners = start_listeners(&netns);
    std::thread::sleep(Duration::from_millis(200));

    let arg = format!(
        "udp-{ip}-{ECHO_PORT},udp-{ip}-{SILENT_PORT},udp-{ip}-{CLOSED_PORT},tcp-{ip}-{CLOSED_PORT}"
    );
    let (code, v, stderr) = ko_json(&kc, &["diagnose", "IPPorts", &arg]);
    let m = &v["connectivity"];
    let targets = m["targets"].as_array().expect("targets");
    let col = |label: &str| {
        targets
            .iter()
            .position(|t| t["label"] == label)
            .unwrap_or_else(|| panic!("no column {label}: {targets:#?}"))
    };
    let probes = m["probes"].as_array().expect("probes");
    let sources = m["sources"].as_array().expect("sources").len();
    assert!(sources >= 3, "one pinger row per node: {m:#}");
    let column = |label: &str| -> Vec<&Value> {
        let j = col(label);
        let cells: Vec<&Value> = probes.iter().filter(|p| p["to"] == j).collect();
        assert_eq!(cells.len(), sources, "{label}: {probes:#?}");
        cells
    };
    for p in column(&format!("udp-{ip}-{ECHO_PORT}")) {
        assert_eq!(p["result"], "ok", "{p}");
        assert_eq!(p["detail"], "UDP reply", "{p}");
    }
    for p in column(&format!("udp-{ip}-{SILENT_PORT}")) {
        assert_eq!(p["result"], "open-or-filtered", "{p}");
        assert!(p["detail"].as_str().unwrap().contains("open|filtered"));
    }
    for p in column(&format!("udp-{ip}-{CLOSED_PORT}")) {
        assert_eq!(p["result"], "ok", "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("port unreachable"),
            "{p}"
        );
    }
    for p in column(&format!("tcp-{ip}-{CLOSED_PORT}")) {
        assert_eq!(p["result"], "ok", "{p}");
        assert!(p["detail"].as_str().unwrap().contains("refused"), "{p}");
    }
    // silence is a warning on each row, never a failure
    let checks = v["checks"].as_array().expect("checks");
    let rows: Vec<&Value> = checks
        .iter()
        .filter(|c| c["name"] == "connectivity")
        .collect();
    assert_eq!(rows.len(), sources);
    for r in rows {
        assert_eq!(r["status"], "warn", "{r}");
        assert!(
            r["message"].as_str().unwrap().contains("open|filtered"),
            "{r}"
        );
    }
    // kubectl-ko's own probes fail nothing here; where the pinger binary runs
    // (the sandbox's stand-in, like upstream's job) it counts the closed and the
    // silent port as failed connectivity, and only its checks may fail
    let failing: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert!(
        failing.iter().all(|c| c["name"] == "pinger-job"),
        "{failing:#?}"
    );
    let expected = if failing.is_empty() { 0 } else { 1 };
    assert_eq!(code, expected, "{stderr}");
}
