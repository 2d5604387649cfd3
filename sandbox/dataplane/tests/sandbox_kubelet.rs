//! The sandbox kubelet (sandbox `kubelet`): pods created with the real `kubectl` after
//! `up` get scheduled, wired into OVN/OVS and exec-able, and leave nothing behind
//! when deleted.

use std::path::Path;
use std::process::Command;

use ko_testkit::{Kubectl, eventually, ovn_ctl, sandbox_cmd, sandbox_up, status_json};

const NAME: &str = "kubelet";

/// The tests share sandbox `kubelet` and one of them kills its kubelet: under `cargo
/// test` they take turns (nextest runs them in the `sandbox-kubelet` test group).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `kubectl apply -f -` with the manifest on stdin.
fn apply(k: &Kubectl, manifest: &str) {
    k.apply(manifest)
}

/// A pod like `kubectl ko perf` creates: `sleep infinity`, pinned by nodeSelector.
fn pod(name: &str, node: &str, host_network: bool) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
  "metadata": {{"name": "{name}", "namespace": "default", "labels": {{"app": "kubelet-test"}}}},
  "spec": {{"hostNetwork": {host_network},
    "nodeSelector": {{"kubernetes.io/hostname": "{node}"}},
    "containers": [{{"name": "{name}", "image": "docker.io/kubeovn/test:v1.13.0", "command": ["sleep", "infinity"]}}]}}}}
"#
    )
}

fn ovs_vsctl(k: &Kubectl, node: &str, args: &[&str]) -> String {
    let ovs = k
        .pods("kube-system", "app=ovs")
        .into_iter()
        .find(|p| p["spec"]["nodeName"] == node)
        .and_then(|p| p["metadata"]["name"].as_str().map(String::from))
        .expect("ovs-ovn pod of the node");
    let mut cmd = vec!["ovs-vsctl"];
    cmd.extend_from_slice(args);
    let (code, out, err) = k.exec("kube-system", &ovs, Some("openvswitch"), &cmd);
    assert_eq!(code, 0, "{cmd:?} failed: {err}");
    out
}

#[test]
fn api_pods_are_scheduled_wired_exec_able_and_removed_without_trace() {
    let _serial = serial();
    let k = Kubectl::new(sandbox_up(NAME, &[]));
    let st = status_json(NAME);
    assert_eq!(st["kubelet"]["running"], true, "{}", st["kubelet"]);
    apply(&k, &pod("kt-net", "kube-ovn-worker", false));
    apply(&k, &pod("kt-host", "kube-ovn-control-plane", true));
    apply(&k, &pod("kt-lost", "no-such-node", false));
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/kt-net",
        "pod/kt-host",
        "--timeout=60s",
    ]);

    // pod network: node, address, annotations, NB port, SB binding on that chassis
    let net = k.json(&["get", "pod", "kt-net"]);
    assert_eq!(net["spec"]["nodeName"], "kube-ovn-worker");
    assert_eq!(net["status"]["phase"], "Running");
    assert_eq!(net["status"]["containerStatuses"][0]["name"], "kt-net");
    let ip = net["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.16."), "{ip}");
    let ann = &net["metadata"]["annotations"];
    assert_eq!(ann["ovn.kubernetes.io/ip_address"], ip.as_str());
    assert_eq!(ann["ovn.kubernetes.io/logical_switch"], "ovn-default");
    assert_eq!(ann["ovn.kubernetes.io/allocated"], "true");
    let mac = ann["ovn.kubernetes.io/mac_address"].as_str().unwrap();
    let used: Vec<String> = k.json(&["get", "pods", "-A"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["name"] != "kt-net" && p["spec"]["hostNetwork"] != true)
        .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
        .collect();
    assert!(!used.contains(&ip), "{ip} is already used by another pod");
    let addrs = ovn_ctl(
        &k,
        "nb",
        &[
            "--bare",
            "--columns=addresses",
            "list",
            "logical_switch_port",
            "kt-net.default",
        ],
    );
    assert_eq!(addrs.trim(), format!("{mac} {ip}"));
    // the chassis kt-net's Port_Binding is bound to ("" = unbound)
    let bound = || {
        ovn_ctl(
            &k,
            "sb",
            &[
                "--bare",
                "--columns=chassis",
                "find",
                "port_binding",
                "logical_port=kt-net.default",
            ],
        )
        .trim()
        .to_string()
    };
    let chassis = bound();
    let chassis_name = ovn_ctl(
        &k,
        "sb",
        &["--bare", "--columns=name", "list", "chassis", &chassis],
    );
    assert_eq!(chassis_name.trim(), "kube-ovn-worker");
    let ip_cr = k.json(&["get", "ips", "kt-net.default"]);
    assert_eq!(ip_cr["spec"]["ipAddress"], ip.as_str());
    assert_eq!(ip_cr["spec"]["nodeName"], "kube-ovn-worker");
    assert_eq!(ip_cr["spec"]["macAddress"], mac);
    let (code, out, err) = k.exec("default", "kt-net", None, &["ip", "-o", "addr"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("inet {ip}/16")), "{out}");
    let log = k.ok(&["logs", "kt-net"]);
    assert!(log.contains("kt-net"), "{log}");

    // a planned pod on another node answers over the real geneve datapath
    let web1 = k.json(&["get", "pod", "web-1"]);
    assert_eq!(web1["spec"]["nodeName"], "kube-ovn-control-plane");
    let web1_ip = web1["status"]["podIP"].as_str().unwrap();
    assert!(
        k.ping("default", "kt-net", web1_ip, "3"),
        "kt-net cannot ping web-1 ({web1_ip})"
    );

    // hostNetwork: runs in the node's netns with the node's address
    let host = k.json(&["get", "pod", "kt-host"]);
    assert_eq!(host["spec"]["nodeName"], "kube-ovn-control-plane");
    assert_eq!(host["status"]["podIP"], "172.18.0.2");
    assert_eq!(host["status"]["hostIP"], "172.18.0.2");
    let (code, out, err) = k.exec("default", "kt-host", None, &["ip", "-o", "addr"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("inet 172.18.0.2/24"), "{out}");

    // an unknown node: Pending with the scheduler's reason, never Ready
    assert!(
        eventually(20, || {
            let lost = k.json(&["get", "pod", "kt-lost"]);
            lost["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "PodScheduled"
                        && c["status"] == "False"
                        && c["reason"] == "Unschedulable"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("0/3 nodes are available"))
                })
        }),
        "kt-lost has no Unschedulable condition: {}",
        k.json(&["get", "pod", "kt-lost"])["status"]
    );
    assert_eq!(
        k.json(&["get", "pod", "kt-lost"])["status"]["phase"],
        "Pending"
    );
    let events = k.json(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=kt-lost",
    ]);
    assert!(
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "FailedScheduling" && e["type"] == "Warning"),
        "no FailedScheduling event for kt-lost: {events}"
    );
    let describe = k.ok(&["describe", "pod", "kt-net"]);
    assert!(
        describe.contains("Successfully assigned default/kt-net to kube-ovn-worker"),
        "{describe}"
    );
    assert!(
        !Path::new(&format!("/run/netns/{NAME}-kt-lost.default")).exists(),
        "an unscheduled pod got a netns"
    );

    // sandbox faults reach pods created through the API too
    let out = sandbox_cmd(&["fault", "--name", NAME, "unbind-port", "default/kt-net"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(eventually(20, || bound().is_empty()), "kt-net still bound");
    let out = sandbox_cmd(&["fault", "--name", NAME, "heal"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        eventually(20, || bound() == chassis),
        "kt-net not bound again"
    );

    // a process left running by exec dies with its pod (like a container's would)
    let (code, _, err) = k.exec(
        "default",
        "kt-net",
        None,
        &["sh", "-c", "setsid sleep 4321 >/dev/null 2>&1 &"],
    );
    assert_eq!(code, 0, "{err}");
    let holder = status_json(NAME)["kubelet"]["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kt-net")
        .and_then(|p| p["pid"].as_u64())
        .expect("kt-net in status .kubelet.pods");
    let pod_net = std::fs::read_link(format!("/proc/{holder}/ns/net")).unwrap();
    let mut execd: Vec<u32> = Vec::new();
    assert!(
        eventually(10, || {
            let out = Command::new("pgrep")
                .args(["-x", "-f", "sleep 4321"])
                .output()
                .unwrap();
            execd = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .filter(|p: &u32| {
                    std::fs::read_link(format!("/proc/{p}/ns/net"))
                        .ok()
                        .as_ref()
                        == Some(&pod_net)
                })
                .collect();
            !execd.is_empty()
        }),
        "the exec'd sleep is not running in the pod"
    );

    k.ok(&["delete", "pod", "kt-net", "kt-host", "kt-lost"]);
    let netns = format!("/run/netns/{NAME}-kt-net.default");
    assert!(
        eventually(30, || {
            !Path::new(&netns).exists() && !Path::new(&format!("/proc/{holder}")).exists()
        }),
        "netns {netns} or holder {holder} is still there"
    );
    let lsp = ovn_ctl(
        &k,
        "nb",
        &[
            "--bare",
            "--columns=name",
            "find",
            "logical_switch_port",
            "name=kt-net.default",
        ],
    );
    assert_eq!(lsp.trim(), "", "LSP kt-net.default is still in the NB");
    let ips = k.ok(&["get", "ips", "-o", "name"]);
    assert!(!ips.contains("kt-net.default"), "IP CR left: {ips}");
    let port = ovs_vsctl(
        &k,
        "kube-ovn-worker",
        &[
            "--bare",
            "--columns=name",
            "find",
            "interface",
            "external_ids:iface-id=kt-net.default",
        ],
    );
    assert_eq!(port.trim(), "", "OVS port of kt-net is still on br-int");
    // a killed process may linger as a zombie until init reaps it: that is gone too
    let running = |p: &u32| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    assert!(
        eventually(10, || !execd.iter().any(running)),
        "exec'd processes survived their pod: {execd:?}"
    );
    let st = status_json(NAME);
    assert!(
        st["kubelet"]["pods"].as_array().unwrap().is_empty(),
        "{}",
        st["kubelet"]
    );
    assert_eq!(st["healthy"], true, "{}", st["problems"]);
}

#[test]
fn a_burst_of_four_perf_like_pods_runs_with_distinct_addresses() {
    let _serial = serial();
    let k = Kubectl::new(sandbox_up(NAME, &[]));
    let names = ["kt-b1", "kt-b2", "kt-b3", "kt-b4"];
    let nodes = [
        "kube-ovn-worker",
        "kube-ovn-worker",
        "kube-ovn-worker2",
        "kube-ovn-control-plane",
    ];
    let mut manifest = String::new();
    for (n, node) in names.iter().zip(nodes) {
        manifest.push_str(&pod(n, node, false));
    }
    let using = || k.json(&["get", "subnet", "ovn-default"])["status"]["v4usingIPs"].as_u64();
    let before = using().expect("v4usingIPs of ovn-default");
    apply(&k, &manifest);
    let mut args = vec!["wait", "--for=condition=Ready", "--timeout=60s"];
    let refs: Vec<String> = names.iter().map(|n| format!("pod/{n}")).collect();
    args.extend(refs.iter().map(String::as_str));
    k.ok(&args);
    let ips: Vec<String> = names
        .iter()
        .map(|n| k.pod_ips("default", n)[0].clone())
        .collect();
    let mut uniq = ips.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 4, "{ips:?}");
    assert_eq!(
        using(),
        Some(before + 4),
        "subnet ovn-default counts the new pods"
    );
    // same node and across nodes
    assert!(k.ping("default", "kt-b1", &ips[1], "2"), "kt-b1 -> kt-b2");
    assert!(k.ping("default", "kt-b1", &ips[2], "2"), "kt-b1 -> kt-b3");

    // a kubelet that died is restarted by `up` and adopts the pods it ran
    let pid = status_json(NAME)["kubelet"]["pid"].as_u64().unwrap();
    Command::new("kill").arg(pid.to_string()).status().unwrap();
    assert!(eventually(10, || !Path::new(&format!("/proc/{pid}")).exists()));
    let st = status_json(NAME);
    assert_eq!(st["healthy"], false);
    assert!(
        st["problems"].to_string().contains("kubelet"),
        "{}",
        st["problems"]
    );
    sandbox_up(NAME, &[]);
    assert_eq!(status_json(NAME)["kubelet"]["running"], true);
    k.ok(&["delete", "pod", "kt-b1", "kt-b2", "kt-b3", "kt-b4"]);
    assert!(
        eventually(30, || names
            .iter()
            .all(
                |n| !Path::new(&format!("/run/netns/{NAME}-{n}.default")).exists()
            )),
        "burst pods' netns are still there after delete"
    );
    assert!(
        eventually(10, || using() == Some(before)),
        "subnet ovn-default still counts the deleted pods"
    );
    let out = sandbox_cmd(&["status", "--name", NAME, "-o", "json"]);
    assert!(out.status.success(), "sandbox not healthy after the burst");
}

/// Dual-stack sandbox of its own: both families from the namespace's subnet (vpc1),
/// the annotated subnet (underlay) and the default one, reachable over IPv6.
#[test]
fn dual_stack_pods_get_both_families_in_the_subnet_kube_ovn_would_pick() {
    const DS: &str = "kubelet-ds";
    let k = Kubectl::new(sandbox_up(DS, &["--dual-stack"]));
    let manifest = [
        ("ds-default", "default", "kube-ovn-worker2", ""),
        ("ds-vpc", "vpc1", "kube-ovn-worker", ""),
        ("ds-underlay", "default", "kube-ovn-worker", "underlay"),
    ]
    .iter()
    .map(|(name, ns, node, ls)| {
        let ann = if ls.is_empty() {
            String::new()
        } else {
            format!(r#", "annotations": {{"ovn.kubernetes.io/logical_switch": "{ls}"}}"#)
        };
        format!(
            r#"{{"apiVersion": "v1", "kind": "Pod",
  "metadata": {{"name": "{name}", "namespace": "{ns}"{ann}}},
  "spec": {{"nodeSelector": {{"kubernetes.io/hostname": "{node}"}},
    "containers": [{{"name": "app", "image": "busybox", "command": ["sleep", "infinity"]}}]}}}}
"#
        )
    })
    .collect::<String>();
    apply(&k, &manifest);
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/ds-default",
        "pod/ds-underlay",
        "--timeout=60s",
    ]);
    k.ok(&[
        "-n",
        "vpc1",
        "wait",
        "--for=condition=Ready",
        "pod/ds-vpc",
        "--timeout=60s",
    ]);
    let expect = [
        (
            "default",
            "ds-default",
            "ovn-default",
            "10.16.",
            "fd00:10:16::",
        ),
        (
            "vpc1",
            "ds-vpc",
            "vpc1-subnet",
            "192.168.100.",
            "fd00:192:168:100::",
        ),
        (
            "default",
            "ds-underlay",
            "underlay",
            "172.17.0.",
            "fd00:172:17::",
        ),
    ];
    for (ns, name, subnet, v4, v6) in expect {
        let p = k.json(&["-n", ns, "get", "pod", name]);
        let ips = k.pod_ips(ns, name);
        assert_eq!(ips.len(), 2, "{name}: {ips:?}");
        assert!(
            ips[0].starts_with(v4) && ips[1].starts_with(v6),
            "{name}: {ips:?}"
        );
        // the same host number in both families, like the pods `up` plans
        let last4 = ips[0].rsplit('.').next().unwrap().parse::<u32>().unwrap();
        let last6 = u32::from_str_radix(ips[1].rsplit(':').next().unwrap(), 16).unwrap();
        assert_eq!(last4, last6, "{name}: {ips:?}");
        let ann = &p["metadata"]["annotations"];
        assert_eq!(ann["ovn.kubernetes.io/logical_switch"], subnet);
        assert_eq!(ann["ovn.kubernetes.io/ip_address"], ips.join(","));
        let (code, out, err) = k.exec(ns, name, None, &["ip", "-o", "addr", "show", "eth0"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&ips[1]), "{name}: {out}");
    }
    let web1_v6 = k.pod_ips("default", "web-1")[1].clone();
    assert!(
        k.ping("default", "ds-default", &web1_v6, "3"),
        "ds-default cannot reach web-1 over IPv6 ({web1_v6})"
    );
    let underlay1 = k.pod_ips("default", "underlay-1")[0].clone();
    assert!(
        k.ping("default", "ds-underlay", &underlay1, "3"),
        "ds-underlay cannot reach underlay-1 ({underlay1})"
    );
    k.ok(&["delete", "pod", "ds-default", "ds-underlay"]);
    k.ok(&["-n", "vpc1", "delete", "pod", "ds-vpc"]);
    assert!(
        eventually(30, || [
            "ds-default.default",
            "ds-underlay.default",
            "ds-vpc.vpc1"
        ]
        .iter()
        .all(|n| !Path::new(&format!("/run/netns/{DS}-{n}")).exists())),
        "netns left after delete"
    );
    // a second sandbox is a lot of processes on a shared machine: only this test uses it
    let out = sandbox_cmd(&["down", "--name", DS]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pod deleted and created again under the same name (what `kubectl ko perf --force`
/// does) runs as a new pod: it is not judged by the old pod's dead holder, and it does
/// not get the address just released while others are free (a peer's stale neighbour
/// entry would point at the old MAC).
#[test]
fn a_pod_recreated_under_the_same_name_runs_with_a_fresh_address() {
    let _serial = serial();
    let k = Kubectl::new(sandbox_up(NAME, &[]));
    let uid = |k: &Kubectl| {
        k.json(&["get", "pod", "kt-again"])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    apply(&k, &pod("kt-again", "kube-ovn-worker", false));
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/kt-again",
        "--timeout=60s",
    ]);
    let (old_uid, old_ip) = (uid(&k), k.pod_ips("default", "kt-again")[0].clone());

    // kubectl waits until the object is gone
    k.ok(&["delete", "pod", "kt-again"]);
    apply(&k, &pod("kt-again", "kube-ovn-worker", false));
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/kt-again",
        "--timeout=60s",
    ]);
    let new_ip = k.pod_ips("default", "kt-again")[0].clone();
    assert_ne!(uid(&k), old_uid, "the API did not create a new pod object");
    assert_ne!(new_ip, old_ip, "the released address was handed out again");
    // Stays Running past a few watchdog ticks: the old holder is gone for good.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let phase = k.json(&["get", "pod", "kt-again"])["status"]["phase"].clone();
    assert_eq!(phase, "Running", "the recreated pod is {phase}");
    let (code, out, err) = k.exec("default", "kt-again", None, &["ip", "-o", "addr"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("inet {new_ip}/")), "{out}");
    k.ok(&["delete", "pod", "kt-again"]);
}
