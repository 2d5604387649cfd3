//! What every real cluster has and does, checked with the real kubectl (sandbox
//! `objects`): typed `kubectl create` (protobuf bodies), the API server's defaults and
//! NodePorts, DaemonSet/Deployment controllers as far as `kubectl rollout status`,
//! `default/kubernetes` reachable from pods, kube-proxy's health endpoint on every
//! node, and the pinger pods with their node's OVS/OVN directories.

use ko_testkit::{Kubectl, eventually, sandbox_up};

const NAME: &str = "objects";

fn kubectl() -> Kubectl {
    Kubectl::new(sandbox_up(NAME, &[]))
}

fn apply(k: &Kubectl, manifest: &str) {
    k.apply(manifest)
}

#[test]
fn typed_kubectl_create_works_and_deployments_roll_out() {
    let k = kubectl();
    k.ok(&["create", "service", "clusterip", "obj-cip", "--tcp=80:8080"]);
    let svc = k.json(&["get", "service", "obj-cip"]);
    assert_eq!(svc["spec"]["selector"]["app"], "obj-cip", "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "{svc}");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );

    k.ok(&["create", "service", "nodeport", "obj-np1", "--tcp=80:8080"]);
    k.ok(&["create", "service", "nodeport", "obj-np2", "--tcp=81:8081"]);
    let np = |n: &str| k.json(&["get", "service", n])["spec"]["ports"][0]["nodePort"].as_i64();
    let (a, b) = (np("obj-np1").unwrap(), np("obj-np2").unwrap());
    assert!(
        (30000..=32767).contains(&a) && (30000..=32767).contains(&b) && a != b,
        "{a} {b}"
    );

    k.ok(&[
        "create",
        "deployment",
        "obj-d",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    let d = k.json(&["get", "deployment", "obj-d"]);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "{d}");
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600, "{d}");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10, "{d}");
    k.ok(&["rollout", "status", "deployment/obj-d", "--timeout=60s"]);
    let pods = k.pods("default", "app=obj-d");
    assert_eq!(pods.len(), 2);
    for p in &pods {
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet", "{p}");
        assert_eq!(owner["controller"], true);
        assert_eq!(p["status"]["phase"], "Running");
    }
    // the pods are real: one reaches the other
    let ip = pods[1]["status"]["podIP"].as_str().unwrap();
    assert!(k.ping(
        "default",
        pods[0]["metadata"]["name"].as_str().unwrap(),
        ip,
        "2"
    ));

    k.ok(&["scale", "deployment", "obj-d", "--replicas=1"]);
    assert!(eventually(30, || k.pods("default", "app=obj-d").len() == 1));
    k.ok(&[
        "run",
        "obj-run",
        "--image=busybox",
        "--",
        "sleep",
        "infinity",
    ]);
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/obj-run",
        "--timeout=60s",
    ]);

    k.ok(&["delete", "deployment", "obj-d"]);
    assert!(eventually(30, || k.pods("default", "app=obj-d").is_empty()));
    k.ok(&["delete", "service", "obj-cip", "obj-np1", "obj-np2"]);
    k.ok(&["delete", "pod", "obj-run", "--wait=false"]);
}

#[test]
fn a_daemon_set_gets_its_defaults_and_a_pod_per_node() {
    let k = kubectl();
    apply(
        &k,
        r#"{"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "obj-ds", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "obj-ds"}},
                     "template": {"metadata": {"labels": {"app": "obj-ds"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}"#,
    );
    let ds = k.json(&["get", "daemonset", "obj-ds"]);
    assert_eq!(
        ds["spec"]["updateStrategy"]["type"], "RollingUpdate",
        "{ds}"
    );
    k.ok(&["rollout", "status", "daemonset/obj-ds", "--timeout=60s"]);
    let nodes = k.json(&["get", "nodes"])["items"].as_array().unwrap().len();
    let pods = k.pods("default", "app=obj-ds");
    let mut on: Vec<&str> = pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), nodes, "one pod per node: {on:?}");
    let ds = k.json(&["get", "daemonset", "obj-ds"]);
    assert_eq!(ds["status"]["numberReady"], nodes, "{ds}");
    k.ok(&["delete", "daemonset", "obj-ds"]);
    assert!(eventually(30, || k
        .pods("default", "app=obj-ds")
        .is_empty()));
}

#[test]
fn default_kubernetes_and_kube_proxy_health_answer_from_the_cluster() {
    let k = kubectl();
    let ep = k.json(&["get", "endpoints", "kubernetes"]);
    let ip = ep["subsets"][0]["addresses"][0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
    let slice = k.json(&["get", "endpointslice", "kubernetes"]);
    assert_eq!(slice["endpoints"][0]["addresses"][0], ip.as_str());
    assert_eq!(
        k.json(&["get", "service", "kubernetes"])["spec"]["clusterIP"],
        "10.96.0.1"
    );
    // a pod reaches the API server at the endpoint, TLS to the emulator
    let url = format!("https://{ip}:6443/api/v1/namespaces/default/services/kubernetes");
    let (code, out, err) = k.exec(
        "default",
        "client-2",
        None,
        &["curl", "-sk", "-m", "5", &url],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"name\":\"kubernetes\""), "{out}");

    let ds = k.json(&["-n", "kube-system", "get", "daemonset", "kube-proxy"]);
    let nodes = k.json(&["get", "nodes"]);
    assert_eq!(
        ds["status"]["numberReady"],
        nodes["items"].as_array().unwrap().len()
    );
    // kube-ovn-cni asks each node's kube-proxy, as `diagnose` of the bash script does
    for n in nodes["items"].as_array().unwrap() {
        let node_ip = n["status"]["addresses"][0]["address"].as_str().unwrap();
        let cni = k.pods("kube-system", "app=kube-ovn-cni");
        let cni = cni
            .iter()
            .find(|p| p["spec"]["nodeName"] == n["metadata"]["name"])
            .unwrap();
        let url = format!("http://{node_ip}:10256/healthz");
        let (code, out, err) = k.exec(
            "kube-system",
            cni["metadata"]["name"].as_str().unwrap(),
            None,
            &["curl", "-s", "-m", "3", &url],
        );
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("kube-proxy health JSON");
        assert!(
            v["lastUpdated"].is_string() && v["currentTime"].is_string(),
            "{v}"
        );
    }
}

#[test]
fn pinger_pods_see_their_node_and_take_upstream_flags() {
    let k = kubectl();
    let pinger = k.pods("kube-system", "app=kube-ovn-pinger")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = k.exec("kube-system", &pinger, None, &["ovs-vsctl", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Bridge br-int"), "{out}");
    let (code, out, err) = k.exec(
        "kube-system",
        &pinger,
        None,
        &["tail", "-n", "3", "/var/log/ovn/ovn-controller.log"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty());
    // ovs-ovn sees the node's /var/log/ovn, ovn-central's logs included (node 1)
    let ovs = k.pods("kube-system", "app=ovs");
    let ovs1 = ovs
        .iter()
        .find(|p| p["spec"]["nodeName"] == "kube-ovn-control-plane")
        .unwrap();
    let (_, ls, _) = k.exec(
        "kube-system",
        ovs1["metadata"]["name"].as_str().unwrap(),
        None,
        &["ls", "/var/log/ovn"],
    );
    for f in [
        "ovn-controller.log",
        "ovn-northd.log",
        "ovsdb-server-nb.log",
    ] {
        assert!(
            ls.contains(f),
            "{f} missing in the node's /var/log/ovn: {ls}"
        );
    }
    // the subnet diagnose's flags; verbose conn-check to a port nothing serves fails
    let (code, _, log) = k.exec(
        "kube-system",
        &pinger,
        None,
        &[
            "/kube-ovn/kube-ovn-pinger",
            "--mode=job",
            "--tcp-conn-check-port=8100",
            "--udp-conn-check-port",
            "8101",
            "--logtostderr=false",
            "--v=3",
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("start to check node connectivity"), "{log}");
    let (code, _, log) = k.exec(
        "kube-system",
        &pinger,
        None,
        &[
            "/kube-ovn/kube-ovn-pinger",
            "--mode=job",
            "--enable-verbose-conn-check",
            "--tcp-conn-check-port=8100",
            "--exit-code=3",
        ],
    );
    assert!(log.contains("TCP connectivity to node"), "{log}");
    assert_eq!(
        code, 3,
        "nothing listens on 8100, so the check fails: {log}"
    );
    let (code, _, log) = k.exec(
        "kube-system",
        &pinger,
        None,
        &["/kube-ovn/kube-ovn-pinger", "--mode=job", "--no-such-flag"],
    );
    assert_eq!(code, 2, "{log}");
}

/// The external host stands in for a public resolver (`diagnose IPPorts
/// tcp-1.1.1.1-53,udp-1.1.1.1-53` upstream): pods on every node connect to it over
/// TCP and get their UDP datagram echoed, every time (several connects each: a
/// single one once passed while the others hung in SYN_SENT, when the host's
/// replies carried checksums OVN's conntrack found invalid).
#[test]
fn pods_on_every_node_reach_the_external_host_over_tcp_and_udp() {
    let k = kubectl();
    let ext = ko_testkit::status_json(NAME)["external_host"]["ip4"]
        .as_str()
        .unwrap()
        .to_string();
    let pingers = k.pods("kube-system", "app=kube-ovn-pinger");
    assert_eq!(pingers.len(), 3);
    // three connects and three datagrams, each with its own deadline
    let script = r#"for i in 1 2 3; do
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/53"' "$1" || { echo "tcp connect $i to $1:53 failed"; exit 1; }
  timeout 3 bash -c 'exec 3<>"/dev/udp/$0/53"; printf ping >&3; read -r -t 2 -N 4 -u 3 r; [ "$r" = ping ]' "$1" || { echo "udp echo $i from $1:53 missing"; exit 1; }
done; echo ok"#;
    for p in &pingers {
        let name = p["metadata"]["name"].as_str().unwrap();
        let (code, out, err) = k.exec(
            "kube-system",
            name,
            None,
            &["bash", "-c", script, "probe", &ext],
        );
        assert_eq!(
            code, 0,
            "from {name} on {}: {out}{err}",
            p["spec"]["nodeName"]
        );
        assert!(out.contains("ok"), "{out}");
    }
}
