//! `kubectl ko trace --reply` against the sandbox (real OVN/OVS daemons):
//! the way back of a pod→pod connection, of a NetworkPolicy pair, of a
//! Service (the reply leaves the chosen backend), and a reply that a Subnet
//! ACL really drops. Sandbox `reply` (its own: one test changes a Subnet's
//! ACLs); tests need root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{jsonpath, ko, kubeconfig, kubectl, run, sandbox, text};
use serde_json::Value;

const SB: &str = "reply";

fn trace(kc: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = run({
        let mut c = ko(kc);
        c.args(["-o", "json", "trace", "--reply"]).args(args);
        c
    });
    let code = out.status.code().unwrap_or(-1);
    let stdout = text(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "trace --reply {args:?} did not print JSON ({e}), exit {code}:\n{stdout}\n{}",
            text(&out.stderr)
        )
    });
    (code, v, text(&out.stderr))
}

fn pod_ip(kc: &Path, ns: &str, pod: &str) -> String {
    jsonpath(kc, &["-n", ns, "get", "pod", pod], "{.status.podIP}")
        .trim()
        .to_string()
}

fn status(name: &str) -> Value {
    let out = sandbox(name, &["status", "-o", "json"]);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn pod_to_pod_round_trip_is_delivered_both_ways() {
    let kc = kubeconfig(SB);
    let client = pod_ip(&kc, "default", "client-1");
    let server = pod_ip(&kc, "default", "web-2");
    let (code, v, err) = trace(&kc, &["default/client-1", &server, "tcp", "8080"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(v["verdict"], "delivered", "{v:#}");
    let rt = &v["round_trip"];
    assert_eq!(rt["works"], true, "{rt:#}");
    assert_eq!(rt["forward"], "delivered");
    assert_eq!(rt["reply"], "delivered");
    let back = &rt["trace"];
    assert_eq!(back["source"]["name"], "default/web-2");
    assert_eq!(back["source"]["ip"], server.as_str());
    assert_eq!(back["destination"]["ip"], client.as_str());
    // ports swapped: the server answers from 8080 to the client's port
    assert_eq!(rt["server"], format!("{server}:8080"));
    assert_eq!(back["destination"]["port"], 30000);
    assert_eq!(back["logical"]["outport"], "client-1.default");
    // web-2 and client-1 are on different nodes: the reply tunnels back
    let segs = back["ovs"]["segments"]
        .as_array()
        .expect("reply ovs segments");
    assert!(segs.len() >= 2, "{back:#}");
    assert_eq!(
        segs[0]["node"],
        jsonpath(
            &kc,
            &["-n", "default", "get", "pod", "web-2"],
            "{.spec.nodeName}"
        )
        .trim()
    );
    // the tools were told it is a reply of an established connection
    let out = run({
        let mut c = ko(&kc);
        c.args([
            "trace",
            "--reply",
            "--raw",
            "default/client-1",
            &server,
            "tcp",
            "8080",
        ]);
        c
    });
    let raw = text(&out.stdout);
    assert!(raw.contains("--ct=est,rpl"), "{raw}");
    assert!(raw.contains("--ct-next trk,est,rpl"), "{raw}");
    assert!(
        raw.contains("tcp_src=8080,tcp_dst=30000,tcp_flags=0x012"),
        "{raw}"
    );

    // text: the first line answers the round trip, then both verdicts
    let out = run({
        let mut c = ko(&kc);
        c.args(["trace", "--reply", "default/client-1", &server, "icmp"]);
        c
    });
    let t = text(&out.stdout);
    let first = t.lines().next().unwrap_or_default();
    assert!(first.starts_with("ROUND TRIP WORKS"), "{t}");
    assert_eq!(t.matches("DELIVERED").count(), 2, "{t}");
    assert!(t.contains("Reply (the way back)"), "{t}");

    // ovn-trace --reply: both directions, logical part only
    let out = run({
        let mut c = ko(&kc);
        c.args([
            "-o",
            "json",
            "ovn-trace",
            "--reply",
            "default/client-1",
            &server,
            "udp",
            "53",
        ]);
        c
    });
    let v: Value = serde_json::from_slice(&out.stdout).expect("ovn-trace --reply JSON");
    assert_eq!(v["round_trip"]["reply"], "delivered", "{v:#}");
    assert!(v["round_trip"]["trace"]["ovs"].is_null(), "{v:#}");

    // ARP has no reply direction: a usage error
    let out = run({
        let mut c = ko(&kc);
        c.args(["trace", "--reply", "default/client-1", &server, "arp"]);
        c
    });
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--reply"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn network_policy_pair_the_reply_of_an_allowed_connection_passes() {
    let kc = kubeconfig(SB);
    let st = status(SB);
    let np = &st["network_policy"];
    let target = np["target_ip"].as_str().unwrap();
    // allowed in: OVN committed the connection, so the server's reply is let
    // through as ct.est && ct.rpl although the policy drops everything else
    // to the server's port group
    let allowed = np["allowed_from"].as_str().unwrap();
    let (code, v, err) = trace(&kc, &[allowed, target, "tcp", "5432"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(v["round_trip"]["works"], true, "{v:#}");
    assert_eq!(v["round_trip"]["reply"], "delivered");

    // denied in: nobody replies; the round trip is broken, exit 0 unless asked
    let denied = np["denied_from"].as_str().unwrap();
    let (code, v, err) = trace(&kc, &[denied, target, "tcp", "5432"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let rt = &v["round_trip"];
    assert_eq!(rt["works"], false);
    assert_eq!(rt["forward"], "dropped");
    assert!(rt["reply"].is_null(), "{rt:#}");
    assert!(
        rt["not_traced"].as_str().unwrap().contains("dropped"),
        "{rt:#}"
    );
    let (code, _, _) = trace(&kc, &["--exit-code", denied, target, "tcp", "5432"]);
    assert_eq!(code, 1);
}

#[test]
fn service_reply_leaves_the_chosen_backend() {
    let kc = kubeconfig(SB);
    let vip = jsonpath(
        &kc,
        &["-n", "default", "get", "svc", "web"],
        "{.spec.clusterIP}",
    );
    let (code, v, err) = trace(&kc, &["default/client-1", "svc/default/web", "tcp"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let backend = v["lb"]["backend"].as_str().expect("lb.backend").to_string();
    let (ip, port) = backend.rsplit_once(':').unwrap();
    let rt = &v["round_trip"];
    assert_eq!(rt["works"], true, "{rt:#}");
    let back = &rt["trace"];
    // the reply starts at the backend pod, from the backend's address and port
    assert_eq!(back["source"]["ip"], ip);
    assert_eq!(rt["server"], backend.as_str());
    assert!(port.parse::<u16>().is_ok(), "{backend}");
    assert_eq!(back["destination"]["port"], 30000);
    assert_eq!(
        back["destination"]["ip"],
        pod_ip(&kc, "default", "client-1")
    );
    assert_eq!(back["logical"]["outport"], "client-1.default");
    let nat = rt["nat"].as_str().expect("round_trip.nat");
    assert!(nat.contains(&format!("{}:80", vip.trim())), "{nat}");
}

/// A from-lport Subnet ACL that drops what the server sends from its port:
/// the request gets through, the reply does not (the connection hangs).
#[test]
fn subnet_acl_dropping_the_servers_replies_breaks_the_round_trip() {
    let kc = kubeconfig(SB);
    let client = "vpc1/vpc1-pod-1";
    let server = pod_ip(&kc, "vpc1", "vpc1-pod-2");
    let patch = |acls: &str| {
        let out = run({
            let mut c = kubectl(&kc);
            c.args([
                "patch",
                "subnet",
                "vpc1-subnet",
                "--type=merge",
                "-p",
                &format!("{{\"spec\":{{\"acls\":{acls}}}}}"),
            ]);
            c
        });
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    patch(&format!(
        "[{{\"direction\":\"from-lport\",\"priority\":1010,\"match\":\"ip4.src == {server} && tcp.src == 5432\",\"action\":\"drop\"}}]"
    ));
    let t0 = Instant::now();
    let v = loop {
        let (code, v, err) = trace(&kc, &[client, &server, "tcp", "5432"]);
        assert_eq!(code, 0, "{v:#}\n{err}");
        if v["round_trip"]["reply"] == "dropped"
            && v["round_trip"]["trace"]["responsible"]["kind"] == "Subnet"
            || t0.elapsed() > Duration::from_secs(60)
        {
            break v;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    // --exit-code: the worse direction (the reply) decides
    let (code, _, _) = trace(&kc, &["--exit-code", client, &server, "tcp", "5432"]);
    // the text names the OpenFlow table (and its stage) where the reply dies
    let out = run({
        let mut c = ko(&kc);
        c.args(["trace", "--reply", client, &server, "tcp", "5432"]);
        c
    });
    let t = text(&out.stdout);
    patch("null");
    assert!(!t.contains("table ?"), "{t}");
    assert!(t.contains("→ dropped in table "), "{t}");
    let rt = &v["round_trip"];
    assert_eq!(v["verdict"], "delivered", "{v:#}");
    assert_eq!(rt["works"], false, "{rt:#}");
    assert_eq!(rt["reply"], "dropped", "{rt:#}");
    let back = &rt["trace"];
    assert_eq!(back["cause"], "acl", "{back:#}");
    assert_eq!(back["responsible"]["kind"], "Subnet", "{back:#}");
    assert_eq!(back["responsible"]["name"], "vpc1-subnet", "{back:#}");
    assert!(
        back["drop"]["match"]
            .as_str()
            .unwrap_or_default()
            .contains("tcp.src == 5432"),
        "{back:#}"
    );
    assert_eq!(code, 1, "--exit-code with a dropped reply");
    // ofproto/trace ends in the ACL action rule, which says no `drop`
    let exit = back["ovs"]["segments"]
        .as_array()
        .and_then(|s| s.last())
        .map(|s| s["exit"].clone())
        .unwrap_or_default();
    assert_eq!(exit["kind"], "dropped", "{back:#}");
    assert!(exit["table"].is_u64(), "{exit:#}");
    assert!(exit["cookie"].is_string(), "{exit:#}");
}
