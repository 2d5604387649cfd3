//! Drop-in for runbooks written for Kube-OVN's bash `kubectl-ko` (issue 15):
//! bare `diagnose`, "not found" exit codes, huge arguments, upstream's
//! environment variables. Sandbox `rb` (single stack); tests need root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{effective_name, json_of, jsonpath, ko, ko_bare, ko_json, kubeconfig, run, text};
use serde_json::Value;

const SB: &str = "rb";

fn diagnose_json(kc: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut c = ko(kc);
    c.args(["-o", "json", "diagnose"]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let (code, v, _) = json_of(c);
    (code, v)
}

fn check_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| format!("{} {}", c["name"], c["scope"]))
        .collect();
    names.sort();
    names
}

#[test]
fn bare_diagnose_is_diagnose_all() {
    let kc = kubeconfig(SB);
    let (code_bare, bare) = diagnose_json(&kc, &[], &[]);
    let (code_all, all) = diagnose_json(&kc, &["all"], &[]);
    assert_eq!(bare["target"], "all", "{bare:#}");
    assert_eq!(bare["target"], all["target"]);
    assert_eq!(check_names(&bare), check_names(&all));
    assert_eq!(
        bare["connectivity"]["targets"],
        all["connectivity"]["targets"]
    );
    assert_eq!(code_bare, code_all);
    // and the text form says it is the full run, not a usage error
    let mut c = ko(&kc);
    c.arg("diagnose");
    let out = run(c);
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn unknown_node_and_subnet_exit_3_like_every_not_found() {
    let kc = kubeconfig(SB);
    for (scope, name) in [("node", "no-such-node"), ("subnet", "no-such-subnet")] {
        let mut c = ko(&kc);
        c.args(["diagnose", scope, name]);
        let out = run(c);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{scope}: {err}");
        assert!(
            err.contains(&format!("{scope} {name} was not found")),
            "{err}"
        );
        assert!(err.contains("try: `kubectl get"), "{err}");
    }
}

#[test]
fn a_huge_argument_is_not_echoed_whole() {
    let huge = "a".repeat(120 * 1024);
    let cases: Vec<Vec<String>> = vec![
        vec!["diagnose".into(), "node".into(), huge.clone()],
        vec!["diagnose".into(), huge.clone()],
        vec!["diagnose".into(), "IPPorts".into(), huge.clone()],
        vec![
            "trace".into(),
            "default/a".into(),
            "10.16.0.1".into(),
            "tcp".into(),
            huge.clone(),
        ],
        vec![
            "trace".into(),
            "default/a".into(),
            huge.clone(),
            "icmp".into(),
        ],
        vec!["--context".into(), "x".into(), "nb".into(), huge.clone()],
    ];
    for args in cases {
        let mut c = ko_bare();
        c.args(&args);
        let out = run(c);
        let err = text(&out.stderr);
        let shown: Vec<&str> = args.iter().map(|a| &a[..a.len().min(20)]).collect();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{shown:?}: {}",
            &err[..err.len().min(500)]
        );
        assert!(err.len() < 2048, "{shown:?}: {} bytes of error", err.len());
        assert!(
            err.contains(&format!("{} bytes in all", huge.len()))
                || err.contains(&format!("{} bytes in all", huge.len() + 8)),
            "{shown:?}: {err}"
        );
    }
}

/// A TCP listener on `port` inside netns `netns` (closed with the test); its
/// stdout stays open while it runs (a closed pipe would make its print fail).
struct Listener(Child, #[allow(dead_code)] BufReader<ChildStdout>);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tcp_listener(netns: &str, port: u16) -> Listener {
    let script = "import socket,sys,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',int(sys.argv[1])))\ns.listen(64)\nprint('listening',flush=True)\nend=time.time()+120\ns.settimeout(1)\nwhile time.time()<end:\n  try:\n    c,_=s.accept();c.close()\n  except OSError:\n    pass\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "/usr/bin/python3", "-c", script])
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 listener");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("listener output");
    assert_eq!(line.trim(), "listening");
    Listener(child, out)
}

/// The probes of the column labelled `label`.
fn column<'a>(m: &'a Value, label: &str) -> Vec<&'a Value> {
    let targets = m["targets"].as_array().expect("targets");
    let j = targets
        .iter()
        .position(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no target {label}: {targets:#?}"));
    m["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .filter(|p| p["to"] == j)
        .collect()
}

#[test]
fn tcp_conn_check_port_changes_the_probed_port() {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped: the listener runs in a sandbox node's netns");
        return;
    }
    let kc = kubeconfig(SB);
    let node = "kube-ovn-control-plane";
    let node_ip = jsonpath(
        &kc,
        &["get", "node", node],
        "{.status.addresses[?(@.type==\"InternalIP\")].address}",
    );
    let node_ip = node_ip.trim();
    // without the variables (and kube-ovn-cni without --enable-verbose-conn-check)
    // no conn-check port is probed
    let (_, plain) = diagnose_json(&kc, &["node", node], &[]);
    let labels: Vec<&str> = plain["connectivity"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["label"].as_str())
        .collect();
    assert!(
        !labels
            .iter()
            .any(|l| l.starts_with("tcp-") || l.starts_with("udp-")),
        "{labels:?}"
    );

    // the node's netns carries the prefix and, in a pass per OVN version, the suffix
    let _l = tcp_listener(&format!("{}-node1", effective_name(SB)), 18100);
    let env = [
        ("TCP_CONN_CHECK_PORT", "18100"),
        ("UDP_CONN_CHECK_PORT", "18101"),
    ];
    let (_, v) = diagnose_json(&kc, &["node", node], &env);
    let m = &v["connectivity"];
    let listening = column(m, &format!("tcp-{node_ip}-18100"));
    assert!(!listening.is_empty(), "{m:#}");
    for p in &listening {
        assert_eq!(p["result"], "ok", "{p}");
        assert!(
            !p["detail"].as_str().unwrap_or("").contains("refused"),
            "{p}"
        );
    }
    // nothing listens on the UDP port: ICMP port unreachable = reached
    for p in column(m, &format!("udp-{node_ip}-18101")) {
        assert_eq!(p["result"], "ok", "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("port unreachable"),
            "{p}"
        );
    }
    // the flag wins over the variable; nothing listens there: refused, still reached
    let mut c = ko(&kc);
    c.args([
        "diagnose",
        "node",
        node,
        "--tcp-conn-check-port",
        "18200",
        "-o",
        "json",
    ])
    .envs(env);
    let out = run(c);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for p in column(&v["connectivity"], &format!("tcp-{node_ip}-18200")) {
        assert_eq!(p["result"], "ok", "{p}");
        assert!(p["detail"].as_str().unwrap().contains("refused"), "{p}");
    }
}

#[test]
fn without_kube_proxy_skips_the_kube_proxy_check() {
    let kc = kubeconfig(SB);
    let find = |v: &Value| {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == "component/kube-proxy")
            .cloned()
            .expect("kube-proxy check")
    };
    let (_, v) = diagnose_json(
        &kc,
        &["node", "kube-ovn-worker"],
        &[("WITHOUT_KUBE_PROXY", "true")],
    );
    assert!(
        find(&v)["message"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{v:#}"
    );
    let (_, v) = diagnose_json(
        &kc,
        &["node", "kube-ovn-worker"],
        &[("WITHOUT_KUBE_PROXY", "false")],
    );
    assert!(
        !find(&v)["message"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{v:#}"
    );
}

#[test]
fn bare_kubectl_ko_prints_help_and_exits_0_like_upstream() {
    let out = run(ko_bare());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(
        help.contains("Usage: kubectl ko") && help.contains("diagnose"),
        "{help}"
    );
}

/// `trace -o json` → (exit code, report).
fn trace_json(kc: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["trace"];
    a.extend_from_slice(args);
    let (code, v, _) = ko_json(kc, &a);
    (code, v)
}

/// The parts of a trace that must not depend on how the destination was named.
fn outcome(v: &Value) -> Value {
    serde_json::json!({
        "verdict": v["verdict"],
        "destination": {"ip": v["destination"]["ip"], "mac": v["destination"]["mac"],
                        "port": v["destination"]["port"], "protocol": v["destination"]["protocol"]},
        "outport": v["logical"]["outport"],
        "drop": {"stage": v["drop"]["stage"], "table": v["drop"]["table"], "acl": v["drop"]["acl"]},
        "lb": v["lb"],
    })
}

#[test]
fn pod_and_service_destinations_trace_like_their_ips() {
    let kc = kubeconfig(SB);
    let db_ip = jsonpath(&kc, &["get", "pod", "db"], "{.status.podIP}");
    let web_vip = jsonpath(&kc, &["get", "svc", "web"], "{.spec.clusterIP}");
    let web_port = jsonpath(&kc, &["get", "svc", "web"], "{.spec.ports[0].port}");
    // denied (client-1) and allowed (client-2) by NetworkPolicy protect-db
    for (src, want) in [
        ("default/client-1", "dropped"),
        ("default/client-2", "delivered"),
    ] {
        let (code_ip, by_ip) = trace_json(&kc, &[src, db_ip.trim(), "tcp", "5432"]);
        let (code_name, by_name) = trace_json(&kc, &[src, "default/db", "tcp", "5432"]);
        assert_eq!(by_ip["verdict"], want, "{by_ip:#}");
        assert_eq!(outcome(&by_name), outcome(&by_ip), "{src}");
        assert_eq!(code_name, code_ip);
        assert_eq!(by_name["destination_name"]["kind"], "pod");
        assert_eq!(by_name["destination_name"]["ip"], db_ip.trim());
    }
    // a Service: its ClusterIP, and its port when none is given
    let (_, by_ip) = trace_json(
        &kc,
        &["default/client-1", web_vip.trim(), "tcp", web_port.trim()],
    );
    assert!(
        by_ip["lb"].is_object(),
        "the VIP goes through the load balancer: {by_ip:#}"
    );
    for named in [
        vec!["default/client-1", "svc/default/web", "tcp"],
        vec![
            "default/client-1",
            "svc/default/web",
            "tcp",
            web_port.trim(),
        ],
    ] {
        let (_, v) = trace_json(&kc, &named);
        assert_eq!(outcome(&v), outcome(&by_ip), "{named:?}");
        assert_eq!(v["destination_name"]["kind"], "service");
    }
    // text names what the destination resolved to
    let mut c = ko(&kc);
    c.args(["trace", "default/client-1", "svc/default/web", "tcp"]);
    let out = text(&run(c).stdout);
    assert!(
        out.contains(&format!(
            "service default/web resolved to {}, port {} from the Service",
            web_vip.trim(),
            web_port.trim()
        )),
        "{out}"
    );
    // an unknown name is a "not found" (exit 3)
    let mut c = ko(&kc);
    c.args(["trace", "default/client-1", "svc/default/nope", "tcp"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

fn trace_text(kc: &Path, args: &[&str]) -> String {
    let mut c = ko(kc);
    c.arg("trace").args(args);
    let out = run(c);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 1),
        "trace {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn compact_trace_fits_a_screen_and_names_every_decisive_stage() {
    let kc = kubeconfig(SB);
    let web2 = jsonpath(&kc, &["get", "pod", "web-2"], "{.status.podIP}");
    let db = jsonpath(&kc, &["get", "pod", "db"], "{.status.podIP}");
    let vip = jsonpath(&kc, &["get", "svc", "web"], "{.spec.clusterIP}");
    for args in [
        vec!["default/client-1", web2.trim(), "tcp", "8080"], // pod → pod across nodes
        vec!["default/client-1", db.trim(), "tcp", "5432"],   // NetworkPolicy drop
        vec!["default/client-1", vip.trim(), "tcp", "80"],    // Service
    ] {
        let (_, v) = trace_json(&kc, &args);
        let compact = trace_text(&kc, &args);
        let mut full_args = args.clone();
        full_args.push("--full");
        let full = trace_text(&kc, &full_args);
        assert!(
            compact.lines().count() <= 40,
            "{args:?}: {} lines\n{compact}",
            compact.lines().count()
        );
        assert!(full.lines().count() > compact.lines().count());
        // same verdict block first
        assert_eq!(compact.lines().next(), full.lines().next());
        // every stage that dropped, set the outport or chose a backend, found
        // from the JSON walk, is named in the compact text
        let stages = v["logical"]["stages"].as_array().expect("stages");
        let mut decisive = 0;
        for s in stages {
            let acts: Vec<&str> = s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let joined = acts.join(" ");
            let is_decisive = acts.iter().any(|a| a.trim() == "drop;")
                || joined.contains("outport =")
                || (joined.contains("ct_lb") && joined.contains("reg1 ="));
            let line = format!(
                "{} {} {:>2} {}",
                s["datapath"].as_str().unwrap(),
                s["pipeline"].as_str().unwrap(),
                s["table"].as_u64().unwrap(),
                s["stage"].as_str().unwrap()
            );
            if is_decisive {
                decisive += 1;
                assert!(
                    compact.contains(&line),
                    "{args:?}: compact misses {line}\n{compact}"
                );
            }
            assert!(full.contains(s["stage"].as_str().unwrap()));
        }
        assert!(decisive > 0, "{args:?}: {v:#}");
        // silent stages are counted, not shown
        assert!(compact.contains("passed silently"), "{compact}");
        assert!(!compact.contains("ls_in_pre_acl"), "{compact}");
        // the OVS hops: every node the packet crossed, and where it ended
        for seg in v["ovs"]["segments"].as_array().expect("segments") {
            assert!(
                compact.contains(&format!("node {}", seg["node"].as_str().unwrap())),
                "{compact}"
            );
        }
        // (through a Service ofproto/trace stops at the select group)
        if v["verdict"] == "delivered" && v["lb"].is_null() {
            assert!(compact.contains("output to port"), "{compact}");
        }
    }
}
