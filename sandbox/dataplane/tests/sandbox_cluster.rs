//! The sandbox seen through the real `kubectl` (issue 2's evidence list). All tests
//! share sandbox `kt-main`: the first one brings it up, the others reuse it.

use ko_testkit::{Kubectl, eventually, ovn_ctl, sandbox_up, status_json};

const NAME: &str = "kt-main";

fn k() -> Kubectl {
    Kubectl::new(sandbox_up(NAME, &[]))
}

#[test]
fn nodes_are_ready_and_carry_kube_ovn_annotations() {
    let k = k();
    let v = k.json(&["get", "nodes"]);
    let nodes = v["items"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        let ready = n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "node not Ready: {}", n["metadata"]["name"]);
        let a = &n["metadata"]["annotations"];
        let name = n["metadata"]["name"].as_str().unwrap();
        assert_eq!(a["ovn.kubernetes.io/chassis"], name);
        assert_eq!(a["ovn.kubernetes.io/port_name"], format!("node-{name}"));
        assert!(
            a["ovn.kubernetes.io/ip_address"]
                .as_str()
                .unwrap()
                .starts_with("100.64.0.")
        );
    }
    let text = k.ok(&["get", "nodes"]);
    assert_eq!(text.matches(" Ready ").count(), 3, "{text}");
    let masters = k.json(&["get", "nodes", "-l", "kube-ovn/role=master"]);
    assert_eq!(masters["items"].as_array().unwrap().len(), 3);
}

#[test]
fn every_pod_is_running_with_the_kube_ovn_layout() {
    let k = k();
    let wide = k.ok(&["get", "pods", "-A", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().skip(1).collect();
    assert!(lines.len() >= 20, "{wide}");
    for l in &lines {
        assert!(
            l.contains(" 1/1 ") && l.contains(" Running "),
            "pod not 1/1 Running: {l}"
        );
    }
    assert_eq!(k.pods("kube-system", "app=ovn-central").len(), 3);
    assert_eq!(k.pods("kube-system", "app=ovs").len(), 3);
    assert_eq!(k.pods("kube-system", "app=kube-ovn-cni").len(), 3);
    assert_eq!(k.pods("kube-system", "app=kube-ovn-pinger").len(), 3);
    assert_eq!(k.pods("kube-system", "app=kube-ovn-controller").len(), 1);
    // the three central pods sit on three different nodes (HA install)
    let mut nodes: Vec<String> = k
        .pods("kube-system", "app=ovn-central")
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3);
    // workloads: at least two pod-network pods per node in default, one hostNetwork pod
    let def = k.json(&["-n", "default", "get", "pods"]);
    let items = def["items"].as_array().unwrap();
    for n in [
        "kube-ovn-control-plane",
        "kube-ovn-worker",
        "kube-ovn-worker2",
    ] {
        let c = items
            .iter()
            .filter(|p| p["spec"]["nodeName"] == n && p["spec"]["hostNetwork"] != true)
            .count();
        assert!(c >= 2, "only {c} pods on {n}");
    }
    assert!(items.iter().any(|p| p["spec"]["hostNetwork"] == true));
    let web = k.json(&["-n", "default", "get", "pod", "web-1"]);
    let a = &web["metadata"]["annotations"];
    assert_eq!(a["ovn.kubernetes.io/logical_switch"], "ovn-default");
    assert_eq!(a["ovn.kubernetes.io/logical_router"], "ovn-cluster");
    assert_eq!(a["ovn.kubernetes.io/ip_address"], web["status"]["podIP"]);
}

#[test]
fn subnets_vpcs_and_underlay_objects_exist() {
    let k = k();
    let text = k.ok(&["get", "subnets"]);
    for s in ["ovn-default", "join", "underlay", "vpc1-subnet"] {
        assert!(text.contains(s), "subnet {s} missing:\n{text}");
    }
    let ul = k.json(&["get", "subnet", "underlay"]);
    assert_eq!(ul["spec"]["vlan"], "vlan0");
    let vpcs = k.ok(&["get", "vpcs"]);
    assert!(
        vpcs.contains("ovn-cluster") && vpcs.contains("vpc1"),
        "{vpcs}"
    );
    k.ok(&["get", "vlan", "vlan0"]);
    k.ok(&["get", "provider-networks", "provider"]);
    let ips = k.ok(&["get", "ips"]);
    assert!(ips.contains("web-1.default"), "{ips}");
    let ds = k.json(&["-n", "kube-system", "get", "daemonset", "ovs-ovn"]);
    assert_eq!(ds["status"]["numberReady"], 3);
    let svc = k.json(&["-n", "default", "get", "svc", "web"]);
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
}

#[test]
fn exactly_one_nb_leader_and_its_raft_cluster_has_three_servers() {
    let k = k();
    // the emulator sets the labels from the real RAFT state, a moment after start
    assert!(eventually(15, || k
        .pods("kube-system", "ovn-nb-leader=true")
        .len()
        == 1));
    let leader = k.one_pod("ovn-nb-leader=true");
    let (code, out, err) = k.exec(
        "kube-system",
        &leader,
        Some("ovn-central"),
        &[
            "ovn-appctl",
            "-t",
            "/var/run/ovn/ovnnb_db.ctl",
            "cluster/status",
            "OVN_Northbound",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Role: leader"), "{out}");
    let servers = out
        .split("Servers:")
        .nth(1)
        .map(|s| s.lines().filter(|l| l.contains(" at tcp:")).count())
        .unwrap_or(0);
    assert_eq!(servers, 3, "{out}");
    // northd answers in the central pod
    let (code, out, _) = k.exec(
        "kube-system",
        &leader,
        Some("ovn-central"),
        &["ovn-appctl", "-t", "ovn-northd", "status"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("Status:"), "{out}");
}

#[test]
fn exec_into_ovs_pod_and_exit_codes() {
    let k = k();
    let ovs = k.pods("kube-system", "app=ovs");
    let pod = ovs[0]["metadata"]["name"].as_str().unwrap();
    let (code, out, err) = k.exec("kube-system", pod, None, &["ovs-vsctl", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Bridge br-int") && out.contains("type: geneve"),
        "{out}"
    );
    let (code, _, _) = k.exec("default", "client-1", None, &["false"]);
    assert_eq!(code, 1);
    // pod OVS interfaces carry kube-ovn-cni's external_ids
    let (code, out, _) = k.exec(
        "kube-system",
        pod,
        None,
        &[
            "ovs-vsctl",
            "--bare",
            "--columns=external_ids",
            "find",
            "interface",
            "external_ids:vendor=kube-ovn",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("pod_netns=/var/run/netns/") && out.contains("iface-id="),
        "{out}"
    );
}

#[test]
fn nb_is_kube_ovn_shaped() {
    let k = k();
    let show = ovn_ctl(&k, "nb", &["show"]);
    for s in [
        "ovn-cluster",
        "ovn-default",
        "join",
        "node-kube-ovn-worker",
        "web-1.default",
        "localnet.underlay",
        "vpc1",
    ] {
        assert!(show.contains(s), "{s} missing from nbctl show");
    }
    let lb = ovn_ctl(
        &k,
        "nb",
        &[
            "--bare",
            "--columns=vips",
            "find",
            "load_balancer",
            "name=cluster-tcp-loadbalancer",
        ],
    );
    assert!(lb.contains("10.96.100.10:80"), "{lb}");
    let attached = ovn_ctl(
        &k,
        "nb",
        &[
            "--bare",
            "--columns=load_balancer",
            "find",
            "logical_switch",
            "name=ovn-default",
        ],
    );
    assert_eq!(
        attached.split_whitespace().count(),
        6,
        "six cluster LBs on ovn-default: {attached}"
    );
    let pol = ovn_ctl(&k, "nb", &["lr-policy-list", "ovn-cluster"]);
    assert!(
        pol.contains("31000") && pol.contains("30000") && pol.contains("29000"),
        "{pol}"
    );
    let acl = ovn_ctl(&k, "nb", &["acl-list", "protect.db.default"]);
    assert!(acl.contains("2001") && acl.contains("2000"), "{acl}");
    let chassis = ovn_ctl(&k, "sb", &["--columns=external_ids", "list", "chassis"]);
    assert_eq!(chassis.matches("vendor=kube-ovn").count(), 3, "{chassis}");
}

#[test]
fn pods_reach_each_other_across_nodes_and_the_policy_denies_its_flow() {
    let k = k();
    let st = status_json(NAME);
    let np = &st["network_policy"];
    let web2 = &k.pod_ips("default", "web-2")[0];
    assert!(
        k.ping("default", "client-1", web2, "3"),
        "cross-node ping client-1 -> web-2 failed"
    );
    let target_ip = np["target_ip"].as_str().unwrap();
    let pod =
        |key: &serde_json::Value| key.as_str().unwrap().split('/').nth(1).unwrap().to_string();
    assert!(
        k.ping("default", &pod(&np["allowed_from"]), target_ip, "3"),
        "allowed flow {} -> {target_ip} failed",
        np["allowed_from"]
    );
    assert!(
        !k.ping("default", &pod(&np["denied_from"]), target_ip, "2"),
        "denied flow {} -> {target_ip} got through",
        np["denied_from"]
    );
}

#[test]
fn underlay_pod_reaches_its_gateway_and_custom_vpc_is_isolated() {
    let k = k();
    assert!(
        k.ping("default", "underlay-1", "172.17.0.1", "3"),
        "underlay gateway unreachable"
    );
    let u2 = &k.pod_ips("default", "underlay-2")[0];
    assert!(k.ping("default", "underlay-1", u2, "3"));
    let v2 = &k.pod_ips("vpc1", "vpc1-pod-2")[0];
    assert!(
        k.ping("vpc1", "vpc1-pod-1", v2, "3"),
        "custom VPC pods cannot talk"
    );
    let web1 = &k.pod_ips("default", "web-1")[0];
    assert!(
        !k.ping("vpc1", "vpc1-pod-1", web1, "1"),
        "custom VPC leaks into ovn-cluster"
    );
    // the external host, through the node (distributed gateway)
    let ext = st_external();
    assert!(
        k.ping("default", "client-2", &ext, "3"),
        "external host {ext} unreachable"
    );
}

fn st_external() -> String {
    status_json(NAME)["external_host"]["ip4"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn status_reports_a_healthy_sandbox_and_up_reuses_it() {
    let kc = sandbox_up(NAME, &[]);
    let st = status_json(NAME);
    assert_eq!(st["healthy"], true, "{st}");
    assert_eq!(st["kubeconfig"], kc.display().to_string());
    assert_eq!(st["central"].as_array().unwrap().len(), 3);
    // reuse prints the very same kubeconfig
    assert_eq!(sandbox_up(NAME, &[]), kc);
    // a different shape is refused with a clear message
    let out = ko_testkit::sandbox_cmd(&["up", "--name", NAME, "--nodes", "4"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already up") && err.contains("down"), "{err}");
}
