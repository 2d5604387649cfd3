//! `--dual-stack` (sandbox `kt-dual`): IPv6 on pods, annotations, NB, underlay ND.

mod common;

use common::{Kubectl, ovn_ctl, sandbox_up, status_json};

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
    assert!(k.ping("default", &pod_of(&np["allowed_from"]), db6, "3"));
    assert!(!k.ping("default", &pod_of(&np["denied_from"]), db6, "2"));

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
