//! `--dual-stack` (sandbox `kt-dual`): IPv6 on pods, annotations, NB, underlay ND.

use ko_testkit::{Kubectl, ovn_ctl, sandbox_up, status_json};

const NAME: &str = "kt-dual";

#[test]
fn dual_stack_pods_talk_ipv6_and_the_policy_holds_for_it() {
    let k = Kubectl::new(sandbox_up(NAME, &["--dual-stack"]));
    let pod = k.json(&["get", "pod", "web-2"]);
    let ips = k.pod_ips("default", "web-2");
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(
        ips[0].contains('.') && ips[1].contains(':'),
        "v4 first: {ips:?}"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"],
        ips.join(",")
    );
    assert!(
        pod["metadata"]["annotations"]["ovn.kubernetes.io/cidr"]
            .as_str()
            .unwrap()
            .contains("fd00:10:16::/112")
    );

    assert!(
        k.ping("default", "client-1", &ips[1], "3"),
        "IPv6 cross-node ping failed"
    );
    let st = status_json(NAME);
    let np = &st["network_policy"];
    let db6 = &k.pod_ips("default", "db")[1];
    let pod_of = |v: &serde_json::Value| v.as_str().unwrap().split('/').nth(1).unwrap().to_string();
    let (allowed, denied) = (pod_of(&np["allowed_from"]), pod_of(&np["denied_from"]));
    assert!(k.ping("default", &allowed, db6, "3"));
    // Kube-OVN's policy ACLs let every ICMPv6 packet through once IPv6 is involved
    // (CreateGatewayACL: `icmp6` allow-stateless at 2001), so the denial shows on TCP.
    assert!(k.ping("default", &denied, db6, "2"));
    let listen = "setsid -f timeout 120 /usr/bin/python3 -c \"import socket\ns=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('::', 5432)); s.listen(8)\nwhile True:\n    c, a = s.accept(); c.sendall(b'hello'); c.close()\" >/dev/null 2>&1 </dev/null";
    let (code, _, err) = k.exec("default", "db", None, &["bash", "-c", listen]);
    assert_eq!(code, 0, "starting a listener in db: {err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let connect = format!("exec 3<>/dev/tcp/{db6}/5432 && head -c5 <&3");
    let tcp = |from: &str| {
        let (code, out, _) = k.exec(
            "default",
            from,
            None,
            &["timeout", "3", "bash", "-c", &connect],
        );
        code == 0 && out == "hello"
    };
    assert!(tcp(&allowed), "{allowed} -> [{db6}]:5432 must connect");
    assert!(
        !tcp(&denied),
        "{denied} -> [{db6}]:5432 got through the policy"
    );

    // the underlay gateway answers neighbour discovery
    let (code, out, err) = k.exec(
        "default",
        "underlay-1",
        None,
        &["ndisc6", "-1", "-r", "3", "fd00:172:17::1", "eth0"],
    );
    assert_eq!(code, 0, "ndisc6 failed: {out}{err}");
    assert!(
        out.to_lowercase().contains("target link-layer address"),
        "{out}"
    );

    let svc = k.json(&["-n", "default", "get", "svc", "web"]);
    assert_eq!(svc["spec"]["clusterIPs"].as_array().unwrap().len(), 2);
    let lrp = ovn_ctl(
        &k,
        "nb",
        &[
            "--bare",
            "--columns=networks",
            "find",
            "logical_router_port",
            "name=ovn-cluster-ovn-default",
        ],
    );
    assert!(lrp.contains("fd00:10:16::1/112"), "{lrp}");
    let node = k.json(&["get", "node", "kube-ovn-worker"]);
    assert!(
        node["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"]
            .as_str()
            .unwrap()
            .contains("fd00:100:64::")
    );
}
