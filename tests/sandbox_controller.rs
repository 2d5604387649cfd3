//! The sandbox controller against real kubectl, real OVN and real traffic: objects
//! created through the API reach the NB as Kube-OVN makes them, `kubectl ko trace`
//! follows within 2 s, and a real TCP connect / ping agrees with every verdict.
//! Sandbox `ctrl`; the tests run one at a time (test-group `sandbox-controller`),
//! because one of them restarts the controller.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ko, ko_json, ko_ok, kubectl, run, text};
use serde_json::Value;

const NAME: &str = "ctrl";
/// How soon after `kubectl apply` returns the data plane must follow.
const WITHIN: Duration = Duration::from_secs(2);

fn kc() -> PathBuf {
    common::kubeconfig(NAME)
}

fn apply(kc: &Path, yaml: &str) {
    common::apply(kc, yaml)
}

fn kubectl_ok(kc: &Path, args: &[&str]) -> String {
    common::kubectl_ok(kc, args)
}

/// A pod with a named container port `http` (8080), on `node`, with extra metadata.
fn pod_yaml(name: &str, node: &str, labels: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n  annotations: {{{annotations}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: app\n    image: busybox\n    ports: [{{name: http, containerPort: 8080}}]\n---\n"
    )
}

/// Create the pods, wait until Ready, start a TCP listener on 8080 in `listeners`.
fn pods(kc: &Path, yaml: &str, names: &[&str], listeners: &[&str]) {
    for n in names {
        let _ = run({
            let mut c = kubectl(kc);
            c.args(["delete", "pod", n, "--ignore-not-found", "--wait=true"]);
            c
        });
    }
    apply(kc, yaml);
    for n in names {
        kubectl_ok(
            kc,
            &[
                "wait",
                "--for=condition=Ready",
                &format!("pod/{n}"),
                "--timeout=60s",
            ],
        );
    }
    for l in listeners {
        // a detached listener that answers every connection with a line, for 5 minutes
        let script = "setsid -f timeout 300 /usr/bin/python3 -c \"import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8080)); s.listen(16)\nwhile True:\n    c, a = s.accept(); c.sendall(b'hello\\\\n'); c.close()\" >/dev/null 2>&1 </dev/null";
        kubectl_ok(kc, &["exec", l, "--", "bash", "-c", script]);
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn delete(kc: &Path, what: &[&str]) {
    let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
    args.extend_from_slice(what);
    kubectl_ok(kc, &args);
}

fn ip(kc: &Path, pod: &str) -> String {
    ip_in(kc, "default", pod)
}

/// The IP of pod `ns/pod`.
fn ip_in(kc: &Path, ns: &str, pod: &str) -> String {
    common::jsonpath(kc, &["-n", ns, "get", "pod", pod], "{.status.podIP}")
}

/// A real TCP connection from `from` to ip:port that gets the listener's line.
fn connects(kc: &Path, from: &str, ip: &str, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port} && head -c5 <&3");
    let out = run({
        let mut c = kubectl(kc);
        c.args(["exec", from, "--", "timeout", "3", "bash", "-c", &script]);
        c
    });
    out.status.success() && text(&out.stdout) == "hello"
}

fn pings(kc: &Path, from: &str, ip: &str) -> bool {
    pings_in(kc, "default", from, ip)
}

/// One real ping from pod `ns/from` to `ip`.
fn pings_in(kc: &Path, ns: &str, from: &str, ip: &str) -> bool {
    run({
        let mut c = kubectl(kc);
        c.args([
            "-n", ns, "exec", from, "--", "ping", "-c", "1", "-W", "2", ip,
        ]);
        c
    })
    .status
    .success()
}

/// Wait until these pods of `ns` are Ready.
fn ready(kc: &Path, ns: &str, pods: &[&str]) {
    for pod in pods {
        kubectl_ok(
            kc,
            &[
                "-n",
                ns,
                "wait",
                "--for=condition=Ready",
                &format!("pod/{pod}"),
                "--timeout=60s",
            ],
        );
    }
}

/// Delete a namespace and wait until its pods are gone (the kubelet unwired them).
fn delete_namespace(kc: &Path, ns: &str) {
    delete(kc, &["namespace", ns]);
    wait_for(
        &format!("the pods of {ns} to go"),
        Duration::from_secs(60),
        || {
            kubectl_ok(kc, &["-n", ns, "get", "pods", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
}

/// The sandbox's external host address.
fn external_host() -> String {
    common::status_json(NAME)["external_host"]["ip4"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("the sandbox status has no external host"))
}

fn trace(kc: &Path, from: &str, ip: &str, proto: &[&str]) -> Value {
    let src = format!("default/{from}");
    let mut a = vec!["trace", src.as_str(), ip];
    a.extend_from_slice(proto);
    ko_json(kc, &a).1
}

/// Trace until the verdict is `want`; the trace that shows it must have started
/// within `WITHIN` of `since`. Returns that trace.
fn verdict_within(
    kc: &Path,
    since: Instant,
    from: &str,
    ip: &str,
    proto: &[&str],
    want: &str,
) -> Value {
    loop {
        let started = since.elapsed();
        let t = trace(kc, from, ip, proto);
        if t["verdict"] == want {
            return t;
        }
        assert!(
            started <= WITHIN,
            "trace {from} -> {ip} {proto:?} still says {} {:?} after the change (want {want})",
            t["verdict"],
            started
        );
    }
}

fn nbctl(kc: &Path, args: &[&str]) -> String {
    let mut a = vec!["nbctl"];
    a.extend_from_slice(args);
    ko_ok(kc, &a)
}

/// `nbctl --bare --columns=<column> find <table> <condition>`.
fn nb_find(kc: &Path, column: &str, table: &str, condition: &str) -> String {
    nbctl(
        kc,
        &[
            "--bare",
            &format!("--columns={column}"),
            "find",
            table,
            condition,
        ],
    )
}

/// The traffic agrees with a verdict that confines `srv`: `denied` cannot connect
/// to its port 8080, `allowed` can, and `allowed` cannot ping it (ICMP is not among
/// the allowed ports).
fn assert_confined(kc: &Path, srv: &str, denied: &str, allowed: &str) {
    assert!(
        !connects(kc, denied, srv, 8080),
        "{denied} connected to {srv}:8080"
    );
    assert!(
        connects(kc, allowed, srv, 8080),
        "{allowed} could not connect to {srv}:8080"
    );
    assert!(!pings(kc, allowed, srv), "{allowed} pinged {srv}");
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_network_policy_applied_through_the_api_drops_within_2s_and_its_deletion_restores() {
    let kc = kc();
    let yaml = pod_yaml("np-srv", "kube-ovn-worker", "app: np-srv", "")
        + &pod_yaml("np-deny", "kube-ovn-control-plane", "app: np-cli", "")
        + &pod_yaml("np-allow", "kube-ovn-worker2", "access: np-srv", "");
    pods(&kc, &yaml, &["np-srv", "np-deny", "np-allow"], &["np-srv"]);
    let srv = ip(&kc, "np-srv");
    assert_eq!(
        trace(&kc, "np-deny", &srv, &["tcp", "8080"])["verdict"],
        "delivered"
    );
    assert!(
        connects(&kc, "np-deny", &srv, 8080),
        "no policy yet: the connect must work"
    );

    let policy = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np-test, namespace: default}\nspec:\n  podSelector: {matchLabels: {app: np-srv}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {access: np-srv}}}]\n    ports: [{protocol: TCP, port: http}]\n";
    apply(&kc, policy);
    let t0 = Instant::now();
    verdict_within(&kc, t0, "np-deny", &srv, &["tcp", "8080"], "dropped");
    // named by a trace taken once NB and SB both have the rows
    let t = trace(&kc, "np-deny", &srv, &["tcp", "8080"]);
    assert_eq!(t["drop"]["port_group"], "np.test.default", "{t}");
    assert_eq!(t["drop"]["policy"], "default/np-test", "{t}");
    assert_eq!(t["drop"]["acl"]["priority"], 2000, "{t}");
    let t = trace(&kc, "np-allow", &srv, &["tcp", "8080"]);
    assert_eq!(
        t["verdict"], "delivered",
        "the named port http is allowed: {t}"
    );
    assert_eq!(
        trace(&kc, "np-allow", &srv, &["icmp"])["verdict"],
        "dropped"
    );
    // the traffic agrees with each verdict
    assert_confined(&kc, &srv, "np-deny", "np-allow");

    // the rows, as Kube-OVN shapes them
    let pg = nb_find(&kc, "external_ids", "port_group", "name=np.test.default");
    assert!(
        pg.contains("np=default/np-test") && pg.contains("vendor=kube-ovn"),
        "{pg}"
    );
    let acls = nbctl(&kc, &["acl-list", "np.test.default"]);
    assert!(
        acls.contains("2001") && acls.contains("tcp.dst == 8080"),
        "{acls}"
    );
    let set = nb_find(
        &kc,
        "addresses",
        "address_set",
        "name=np.test.default.ingress.allow.IPv4.0",
    );
    assert_eq!(set.trim(), ip(&kc, "np-allow"));

    delete(&kc, &["networkpolicy", "np-test"]);
    let t0 = Instant::now();
    verdict_within(&kc, t0, "np-deny", &srv, &["tcp", "8080"], "delivered");
    assert!(
        connects(&kc, "np-deny", &srv, 8080),
        "the policy is gone: the connect must work"
    );
    assert!(pings(&kc, "np-allow", &srv));
    let left = nb_find(
        &kc,
        "name",
        "address_set",
        "external_ids:np=default/np-test/ingress",
    );
    assert!(left.trim().is_empty(), "address sets left: {left}");
    let pg = nb_find(&kc, "name", "port_group", "name=np.test.default");
    assert!(pg.trim().is_empty(), "port group left: {pg}");
    delete(&kc, &["pod", "np-srv", "np-deny", "np-allow"]);
}

fn lb_vips(kc: &Path) -> String {
    nb_find(kc, "vips", "load_balancer", "name=cluster-tcp-loadbalancer")
}

#[test]
fn a_service_is_load_balanced_to_its_ready_pods_and_loses_its_vip_without_them() {
    let kc = kc();
    let yaml = pod_yaml("svc-be", "kube-ovn-worker", "app: svc-be", "")
        + &pod_yaml("svc-cli", "kube-ovn-control-plane", "app: svc-cli", "");
    pods(&kc, &yaml, &["svc-be", "svc-cli"], &["svc-be"]);
    let be = ip(&kc, "svc-be");
    apply(
        &kc,
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc-test, namespace: default}\nspec:\n  selector: {app: svc-be}\n  ports: [{name: web, port: 80, targetPort: http}]\n",
    );
    let t0 = Instant::now();
    let vip = common::jsonpath(&kc, &["get", "svc", "svc-test"], "{.spec.clusterIP}");
    let key = format!("{vip}:80");
    wait_for("the VIP in cluster-tcp-loadbalancer", WITHIN, || {
        lb_vips(&kc).contains(&key)
    });
    assert!(
        lb_vips(&kc).contains(&format!("{key}={be}:8080")),
        "{}",
        lb_vips(&kc)
    );
    let t = verdict_within(&kc, t0, "svc-cli", &vip, &["tcp", "80"], "delivered");
    assert_eq!(t["lb"]["backend"], format!("{be}:8080"), "{t}");
    assert_eq!(t["lb"]["name"], "cluster-tcp-loadbalancer", "{t}");
    assert!(
        connects(&kc, "svc-cli", &vip, 80),
        "a real connection through the VIP failed"
    );
    // Endpoints and EndpointSlice as the Kubernetes controllers make them
    let ep = common::jsonpath(
        &kc,
        &["get", "endpoints", "svc-test"],
        "{.subsets[0].addresses[0].ip} {.subsets[0].ports[0].port}",
    );
    assert_eq!(ep, format!("{be} 8080"));
    let sl = common::jsonpath(
        &kc,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=svc-test",
        ],
        "{.items[0].endpoints[0].addresses[0]} {.items[0].ports[0].name}",
    );
    assert_eq!(sl, format!("{be} web"));

    // no pod selected any more: no endpoints, no VIP
    kubectl_ok(
        &kc,
        &[
            "patch",
            "svc",
            "svc-test",
            "--type=merge",
            "-p",
            "{\"spec\":{\"selector\":{\"app\":\"nothing\"}}}",
        ],
    );
    wait_for("the VIP to go", WITHIN, || !lb_vips(&kc).contains(&key));
    let t = trace(&kc, "svc-cli", &vip, &["tcp", "80"]);
    assert!(
        t["lb"].is_null(),
        "no load balancer may answer for {vip} now: {t}"
    );
    assert!(
        !connects(&kc, "svc-cli", &vip, 80),
        "connected to a Service without endpoints"
    );
    let ep = common::jsonpath(&kc, &["get", "endpoints", "svc-test"], "{.subsets}");
    assert!(ep.trim().is_empty(), "Endpoints still list {ep}");
    // and back, then the Service goes with its Endpoints and slice
    kubectl_ok(
        &kc,
        &[
            "patch",
            "svc",
            "svc-test",
            "--type=merge",
            "-p",
            "{\"spec\":{\"selector\":{\"app\":\"svc-be\"}}}",
        ],
    );
    wait_for("the VIP to come back", WITHIN, || {
        lb_vips(&kc).contains(&key)
    });
    assert!(connects(&kc, "svc-cli", &vip, 80));
    delete(&kc, &["svc", "svc-test"]);
    wait_for("the Endpoints to go", Duration::from_secs(5), || {
        let out = kubectl_ok(&kc, &["get", "endpoints,endpointslices", "-o", "name"]);
        !out.contains("svc-test")
    });
    wait_for("the VIP to go with the Service", WITHIN, || {
        !lb_vips(&kc).contains(&key)
    });
    delete(&kc, &["pod", "svc-be", "svc-cli"]);
}

#[test]
fn a_security_group_cr_confines_its_pods_and_its_deletion_frees_them() {
    let kc = kc();
    let sg_ann =
        "ovn.kubernetes.io/security_groups: sg-test, ovn.kubernetes.io/port_security: \"true\"";
    let yaml = pod_yaml("sg-srv", "kube-ovn-worker", "app: sg-srv", sg_ann)
        + &pod_yaml("sg-ok", "kube-ovn-worker2", "app: sg-cli", "")
        + &pod_yaml("sg-bad", "kube-ovn-control-plane", "app: sg-cli", "");
    delete(&kc, &["security-groups", "sg-test"]);
    pods(&kc, &yaml, &["sg-srv", "sg-ok", "sg-bad"], &["sg-srv"]);
    let srv = ip(&kc, "sg-srv");
    let ok = ip(&kc, "sg-ok");
    // no such SecurityGroup yet: the pod is not confined
    assert!(connects(&kc, "sg-bad", &srv, 8080));
    let lsp = nb_find(
        &kc,
        "external_ids",
        "logical_switch_port",
        "name=sg-srv.default",
    );
    assert!(
        lsp.contains("security_groups=sg-test") && lsp.contains("associated_sg_sg-test=true"),
        "{lsp}"
    );

    let sg = format!(
        "apiVersion: kubeovn.io/v1\nkind: SecurityGroup\nmetadata: {{name: sg-test}}\nspec:\n  ingressRules:\n  - {{ipVersion: ipv4, protocol: tcp, priority: 1, remoteType: address, remoteAddress: {ok}/32, portRangeMin: 8080, portRangeMax: 8080, policy: allow}}\n  egressRules:\n  - {{ipVersion: ipv4, protocol: all, priority: 1, remoteType: address, remoteAddress: 0.0.0.0/0, policy: allow}}\n"
    );
    apply(&kc, &sg);
    let t0 = Instant::now();
    verdict_within(&kc, t0, "sg-bad", &srv, &["tcp", "8080"], "dropped");
    let t = trace(&kc, "sg-bad", &srv, &["tcp", "8080"]);
    assert_eq!(t["drop"]["port_group"], "ovn.sg.kubeovn_deny_all", "{t}");
    assert_eq!(
        trace(&kc, "sg-ok", &srv, &["tcp", "8080"])["verdict"],
        "delivered"
    );
    assert_confined(&kc, &srv, "sg-bad", "sg-ok");
    let pg = nb_find(&kc, "external_ids", "port_group", "name=ovn.sg.sg.test");
    assert!(
        pg.contains("sg=sg-test") && pg.contains("type=security_group"),
        "{pg}"
    );
    let pg_status = common::jsonpath(
        &kc,
        &["get", "security-groups", "sg-test"],
        "{.status.portGroup}",
    );
    assert_eq!(pg_status, "ovn.sg.sg.test");
    let acls = nbctl(&kc, &["acl-list", "ovn.sg.sg.test"]);
    assert!(acls.contains("18483") && acls.contains("2005"), "{acls}");

    delete(&kc, &["security-groups", "sg-test"]);
    let t0 = Instant::now();
    verdict_within(&kc, t0, "sg-bad", &srv, &["tcp", "8080"], "delivered");
    assert!(connects(&kc, "sg-bad", &srv, 8080));
    assert!(pings(&kc, "sg-ok", &srv));
    delete(&kc, &["pod", "sg-srv", "sg-ok", "sg-bad"]);
}

#[test]
fn a_subnet_acl_drops_its_flow_and_removing_it_restores_the_flow() {
    let kc = kc();
    let yaml = pod_yaml("acl-a", "kube-ovn-worker", "app: acl", "")
        + &pod_yaml("acl-b", "kube-ovn-worker2", "app: acl", "");
    // a run that failed half-way may have left its rule behind
    kubectl_ok(
        &kc,
        &[
            "patch",
            "subnet",
            "ovn-default",
            "--type=merge",
            "-p",
            "{\"spec\":{\"acls\":null}}",
        ],
    );
    pods(&kc, &yaml, &["acl-a", "acl-b"], &["acl-b"]);
    let (a, b) = (ip(&kc, "acl-a"), ip(&kc, "acl-b"));
    let patch = format!(
        "{{\"spec\":{{\"acls\":[{{\"direction\":\"to-lport\",\"priority\":1010,\"match\":\"ip4.src == {a} && ip4.dst == {b}\",\"action\":\"drop\"}}]}}}}"
    );
    kubectl_ok(
        &kc,
        &[
            "patch",
            "subnet",
            "ovn-default",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
    let t0 = Instant::now();
    verdict_within(&kc, t0, "acl-a", &b, &["icmp"], "dropped");
    // named on a follow-up trace: the first one may read SB before northd caught up
    let t = trace(&kc, "acl-a", &b, &["icmp"]);
    // the flow northd made of the subnet ACL (priority + 1000) dropped it
    let stage = t["drop"]["stage"].as_str().unwrap_or_default();
    assert!(
        stage == "ls_out_acl" || stage == "ls_out_acl_eval",
        "{stage}"
    );
    assert_eq!(t["drop"]["priority"], 2010, "{t}");
    assert!(
        t["drop"]["match"]
            .as_str()
            .unwrap()
            .contains(&format!("ip4.src == {a} && ip4.dst == {b}")),
        "{t}"
    );
    // a trace taken once NB and SB both have the row names the Subnet ACL
    let t = trace(&kc, "acl-a", &b, &["icmp"]);
    assert_eq!(t["drop"]["policy_kind"], "SubnetAcl", "{t}");
    assert_eq!(t["drop"]["policy"], "ovn-default", "{t}");
    assert_eq!(t["drop"]["acl"]["priority"], 1010, "{t}");
    let row = nb_find(&kc, "external_ids", "acl", "priority=1010");
    assert!(
        row.contains("subnet=ovn-default") && row.contains("parent=ovn-default"),
        "{row}"
    );
    assert!(!pings(&kc, "acl-a", &b), "the subnet ACL drops this ping");
    assert!(!connects(&kc, "acl-a", &b, 8080));
    assert_eq!(trace(&kc, "acl-b", &a, &["icmp"])["verdict"], "delivered");
    assert!(
        pings(&kc, "acl-b", &a),
        "the other direction is not dropped"
    );

    kubectl_ok(
        &kc,
        &[
            "patch",
            "subnet",
            "ovn-default",
            "--type=merge",
            "-p",
            "{\"spec\":{\"acls\":null}}",
        ],
    );
    let t0 = Instant::now();
    verdict_within(&kc, t0, "acl-a", &b, &["icmp"], "delivered");
    assert!(pings(&kc, "acl-a", &b));
    assert!(connects(&kc, "acl-a", &b, 8080));
    delete(&kc, &["pod", "acl-a", "acl-b"]);
}

#[test]
fn a_restarted_controller_adds_nothing_twice_and_diagnose_stays_healthy() {
    let kc = kc();
    let status = |args: &[&str]| {
        let mut a = vec!["status"];
        a.extend_from_slice(args);
        common::sandbox(NAME, &a)
    };
    let st: Value = serde_json::from_slice(&status(&["-o", "json"]).stdout).unwrap();
    let pid = st["controller"]["pid"]
        .as_u64()
        .expect("status names the controller's pid");
    assert_eq!(st["controller"]["running"], true);
    let before = (
        nbctl(&kc, &["acl-list", "protect.db.default"]),
        lb_vips(&kc),
        nb_find(
            &kc,
            "name",
            "address_set",
            "external_ids:np=default/protect-db/ingress",
        ),
    );
    assert_eq!(before.0.lines().count(), 2, "{}", before.0);
    // kill the controller this sandbox started: status reports it, up brings it back
    let killed = run({
        let mut c = std::process::Command::new("kill");
        c.args(["-9", &pid.to_string()]);
        c
    });
    assert!(
        killed.status.success(),
        "kill {pid}: {}",
        text(&killed.stderr)
    );
    wait_for(
        "status to notice the dead controller",
        Duration::from_secs(5),
        || {
            let out = status(&[]);
            !out.status.success() && text(&out.stdout).contains("controller: NOT RUNNING")
        },
    );
    let out = common::sandbox(NAME, &["up"]);
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    let st: Value = serde_json::from_slice(&status(&["-o", "json"]).stdout).unwrap();
    assert_ne!(st["controller"]["pid"].as_u64(), Some(pid));
    assert_eq!(st["healthy"], true, "{st}");
    let after = (
        nbctl(&kc, &["acl-list", "protect.db.default"]),
        lb_vips(&kc),
        nb_find(
            &kc,
            "name",
            "address_set",
            "external_ids:np=default/protect-db/ingress",
        ),
    );
    assert_eq!(before, after, "a restart changed the controller's rows");
    let out = run({
        let mut c = ko(&kc);
        c.args(["diagnose", "all"]);
        c
    });
    assert!(
        out.status.success(),
        "diagnose all: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// One pod of `ns` on `node`, without metadata beyond its name.
fn ns_pod_yaml(name: &str, ns: &str, node: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations: {{{annotations}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: app\n    image: busybox\n---\n"
    )
}

fn subnet_condition(kc: &Path, name: &str, kind: &str) -> (String, String) {
    let get = |field: &str| {
        common::jsonpath(
            kc,
            &["get", "subnet", name],
            &format!("{{.status.conditions[?(@.type==\"{kind}\")].{field}}}"),
        )
    };
    (get("status"), get("message"))
}

#[test]
fn a_subnet_created_through_the_api_gets_its_switch_routes_and_pods_and_goes_with_them() {
    let kc = kc();
    let ns = "sub-api";
    let cleanup = |kc: &Path| {
        for p in ["sub-annotated", "sub-refused"] {
            let _ = run({
                let mut c = kubectl(kc);
                c.args(["delete", "pod", p, "--ignore-not-found", "--wait=true"]);
                c
            });
        }
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "sub-api", "sub-overlap"]);
    };
    cleanup(&kc);
    // a subnet bound to a namespace, pods on two nodes, and one pod elsewhere that
    // names the subnet by annotation; everything applied at once
    let yaml = format!(
        "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: sub-api}}\nspec:\n  cidrBlock: 10.77.0.0/16\n  namespaces: [{ns}]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
    ) + &ns_pod_yaml("a", ns, "kube-ovn-control-plane", "")
        + &ns_pod_yaml("b", ns, "kube-ovn-worker", "")
        + &ns_pod_yaml(
            "sub-annotated",
            "default",
            "kube-ovn-worker2",
            "ovn.kubernetes.io/logical_switch: sub-api",
        );
    apply(&kc, &yaml);
    ready(&kc, ns, &["a", "b"]);
    ready(&kc, "default", &["sub-annotated"]);
    assert_eq!(subnet_condition(&kc, "sub-api", "Ready").0, "True");
    // what kube-ovn-controller fills in, and the address counters
    let spec = kubectl_ok(
        &kc,
        &[
            "get",
            "subnet",
            "sub-api",
            "-o",
            "jsonpath={.spec.gateway} {.spec.vpc} {.spec.provider}",
        ],
    );
    assert_eq!(spec, "10.77.0.1 ovn-cluster ovn");
    wait_for(
        "v4usingIPs to count the 3 pods",
        Duration::from_secs(10),
        || common::jsonpath(&kc, &["get", "subnet", "sub-api"], "{.status.v4usingIPs}") == "3",
    );
    let (a, b, c) = (
        ip_in(&kc, ns, "a"),
        ip_in(&kc, ns, "b"),
        ip(&kc, "sub-annotated"),
    );
    for addr in [&a, &b, &c] {
        assert!(
            addr.starts_with("10.77."),
            "{addr} is not in the subnet's CIDR"
        );
    }
    // the NB has the switch, its router port and the cluster router's policies
    assert!(nbctl(&kc, &["ls-list"]).contains("(sub-api)"));
    let lrp = nb_find(
        &kc,
        "networks",
        "Logical_Router_Port",
        "name=ovn-cluster-sub-api",
    );
    assert!(lrp.contains("10.77.0.1/16"), "{lrp}");
    let policies = nbctl(&kc, &["lr-policy-list", "ovn-cluster"]);
    assert!(policies.contains("ip4.dst == 10.77.0.0/16"), "{policies}");
    assert!(
        policies.contains("$sub.api.kube.ovn.worker_ip4"),
        "{policies}"
    );

    // real traffic and the trace agree: across nodes inside the subnet, to another
    // subnet through the router, and out through the node to the external host
    let from = format!("{ns}/a");
    let ext = external_host();
    let client = ip(&kc, "client-2");
    for (dst, hint) in [
        (&b, "b.sub-api"),
        (&c, "sub-annotated.default"),
        (&client, "client-2.default"),
        // out through its own node (distributed gateway)
        (&ext, "node-kube-ovn-control-plane"),
    ] {
        let t = ko_json(&kc, &["trace", &from, dst, "icmp"]).1;
        assert_eq!(t["verdict"], "delivered", "trace {from} -> {dst}: {t:#}");
        assert_eq!(
            t["logical"]["outport"], hint,
            "trace {from} -> {dst}: {t:#}"
        );
        assert!(pings_in(&kc, ns, "a", dst), "a cannot ping {dst}");
    }
    let t = ko_json(&kc, &["trace", &from, &client, "icmp"]).1;
    assert!(format!("{t}").contains("lr_in_policy"), "{t:#}");

    // what the sandbox cannot realise says why, and its pods wait instead of landing
    // elsewhere
    let overlap = "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {name: sub-overlap}\nspec:\n  cidrBlock: 10.16.200.0/24\n---\n".to_string()
        + &ns_pod_yaml("sub-refused", "default", "kube-ovn-worker", "ovn.kubernetes.io/logical_switch: sub-overlap");
    apply(&kc, &overlap);
    wait_for(
        "sub-overlap to say why it is not ready",
        Duration::from_secs(10),
        || {
            subnet_condition(&kc, "sub-overlap", "Validated")
                .1
                .contains("overlaps subnet ovn-default")
        },
    );
    wait_for(
        "sub-refused to be held Pending",
        Duration::from_secs(10),
        || {
            common::jsonpath(
                &kc,
                &["get", "pod", "sub-refused"],
                "{.status.conditions[*].message}",
            )
            .contains("subnet sub-overlap is not ready")
        },
    );
    assert_eq!(
        common::jsonpath(&kc, &["get", "pod", "sub-refused"], "{.status.phase}"),
        "Pending"
    );

    // gone with its pods: switch, policies and the nodes' routes
    cleanup(&kc);
    wait_for("the switch to go", Duration::from_secs(15), || {
        !nbctl(&kc, &["ls-list"]).contains("(sub-api)")
    });
    let policies = nbctl(&kc, &["lr-policy-list", "ovn-cluster"]);
    assert!(
        !policies.contains("10.77.0.0/16") && !policies.contains("sub.api"),
        "{policies}"
    );
}

#[test]
fn a_vpc_created_through_the_api_routes_its_subnet_and_its_policy_routes_follow_the_spec() {
    let kc = kc();
    let ns = "vpc-api";
    let cleanup = |kc: &Path| {
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "vpc-api-net"]);
        wait_for("the VPC's switch to go", Duration::from_secs(15), || {
            !nbctl(kc, &["ls-list"]).contains("(vpc-api-net)")
        });
        delete(kc, &["vpc", "vpc-api"]);
    };
    cleanup(&kc);
    let vpc = |policies: &str| {
        format!(
            "apiVersion: kubeovn.io/v1\nkind: Vpc\nmetadata: {{name: vpc-api}}\nspec:\n  namespaces: [{ns}]\n  staticRoutes:\n  - {{cidr: 10.99.0.0/16, nextHopIP: 10.78.0.254, policy: policyDst}}\n  policyRoutes: [{policies}]\n---\n"
        )
    };
    let drop = "{priority: 31000, match: ip4.dst == 10.99.0.7, action: drop}";
    let yaml = vpc(drop)
        + &format!(
            "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: vpc-api-net}}\nspec:\n  vpc: vpc-api\n  cidrBlock: 10.78.0.0/24\n  namespaces: [{ns}]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
        )
        + &ns_pod_yaml("a", ns, "kube-ovn-control-plane", "")
        + &ns_pod_yaml("b", ns, "kube-ovn-worker", "");
    apply(&kc, &yaml);
    ready(&kc, ns, &["a", "b"]);
    let status = kubectl_ok(
        &kc,
        &[
            "get",
            "vpc",
            "vpc-api",
            "-o",
            "jsonpath={.status.router} {.status.standby} {.status.tcpLoadBalancer}",
        ],
    );
    assert_eq!(status, "vpc-api true vpc-vpc-api-tcp-load");
    let b = ip_in(&kc, ns, "b");
    assert!(b.starts_with("10.78.0."), "{b}");
    assert_eq!(
        common::jsonpath(
            &kc,
            &["-n", ns, "get", "pod", "b"],
            "{.metadata.annotations.ovn\\.kubernetes\\.io/logical_router}"
        ),
        "vpc-api"
    );
    let from = format!("{ns}/a");
    // inside the VPC: delivered across nodes, and the packets agree
    let t = ko_json(&kc, &["trace", &from, &b, "icmp"]).1;
    assert_eq!(t["verdict"], "delivered", "{t:#}");
    assert!(pings_in(&kc, ns, "a", &b), "a cannot ping b in its VPC");
    // the spec's policy route drops, and the trace names it and the VPC
    let t = ko_json(&kc, &["trace", &from, "10.99.0.7", "icmp"]).1;
    assert_eq!(t["verdict"], "dropped", "{t:#}");
    assert_eq!(t["cause"], "route_policy", "{t:#}");
    assert_eq!(t["responsible"]["kind"], "Vpc", "{t:#}");
    assert_eq!(t["responsible"]["name"], "vpc-api", "{t:#}");
    let detail = t["responsible"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ip4.dst == 10.99.0.7"), "{t:#}");
    let routes = nbctl(&kc, &["lr-route-list", "vpc-api"]);
    assert!(
        routes.contains("10.99.0.0/16") && routes.contains("10.78.0.254"),
        "{routes}"
    );
    // the VPC is isolated from the cluster network, as in Kube-OVN
    let client = ip(&kc, "client-1");
    let t = ko_json(&kc, &["trace", &from, &client, "icmp"]).1;
    assert_ne!(t["verdict"], "delivered", "{t:#}");
    // the policy leaves the spec: it leaves the NB, and the trace no longer blames it
    apply(&kc, &vpc(""));
    wait_for(
        "the policy route to leave the NB",
        Duration::from_secs(10),
        || !nbctl(&kc, &["lr-policy-list", "vpc-api"]).contains("10.99.0.7"),
    );
    cleanup(&kc);
    wait_for("the VPC's router to go", Duration::from_secs(15), || {
        !nbctl(&kc, &["lr-list"]).contains("(vpc-api)")
    });
}

#[test]
fn a_private_subnet_drops_other_subnets_names_itself_and_lets_allowed_subnets_in() {
    let kc = kc();
    let ns = "sub-priv";
    let cleanup = |kc: &Path| {
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "sub-priv"]);
    };
    cleanup(&kc);
    let subnet = |allow: &str| {
        format!(
            "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: sub-priv}}\nspec:\n  cidrBlock: 10.79.0.0/24\n  namespaces: [{ns}]\n  private: true\n  allowSubnets: [{allow}]\n---\n"
        )
    };
    // p beside the hostNetwork pod's node, q on another node
    let yaml = subnet("")
        + &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n")
        + &ns_pod_yaml("p", ns, "kube-ovn-worker", "")
        + &ns_pod_yaml("q", ns, "kube-ovn-control-plane", "");
    apply(&kc, &yaml);
    ready(&kc, ns, &["p", "q"]);
    let p = ip_in(&kc, ns, "p");
    let q = ip_in(&kc, ns, "q");
    // another subnet's pod: dropped by the private setting, named as such
    let t0 = Instant::now();
    let t = verdict_within(&kc, t0, "client-2", &p, &["icmp"], "dropped");
    assert_eq!(t["responsible"]["kind"], "Subnet", "{t:#}");
    assert_eq!(t["responsible"]["name"], "sub-priv", "{t:#}");
    assert!(format!("{t}").contains("private Subnet sub-priv"), "{t:#}");
    assert!(
        !pings(&kc, "client-2", &p),
        "client-2 pinged a private subnet"
    );
    // a node reaches its own pods (the node group's 3000 allow, there while a
    // NetworkPolicy exists: the sandbox has one), not another node's: its packets
    // leave with the node's InternalIP, which is not in the join subnet
    let t = ko_json(&kc, &["trace", "default/host-net", &p, "icmp"]).1;
    assert_eq!(t["verdict"], "delivered", "{t:#}");
    assert!(
        pings(&kc, "host-net", &p),
        "the node could not ping its own pod"
    );
    let t = ko_json(&kc, &["trace", "default/host-net", &q, "icmp"]).1;
    assert_eq!(t["verdict"], "dropped", "{t:#}");
    assert!(
        !pings(&kc, "host-net", &q),
        "the node pinged another node's private pod"
    );
    // allowSubnets lets ovn-default in
    apply(&kc, &subnet("10.16.0.0/16"));
    let t0 = Instant::now();
    verdict_within(&kc, t0, "client-2", &p, &["icmp"], "delivered");
    assert!(
        pings(&kc, "client-2", &p),
        "client-2 cannot ping although its subnet is allowed"
    );
    cleanup(&kc);
}

#[test]
fn a_node_reaches_its_own_pods_through_a_network_policy_and_only_those() {
    let kc = kc();
    // db (policy protect-db, on kube-ovn-control-plane) and the node group's 3000 allows
    let db = ip(&kc, "db");
    let db_node = common::jsonpath(&kc, &["get", "pod", "db"], "{.spec.nodeName}");
    let acls = nbctl(
        &kc,
        &["acl-list", &format!("node.{}", db_node.replace('-', "."))],
    );
    assert!(
        acls.contains("3000") && acls.contains("allow-related"),
        "{acls}"
    );
    let own = ko_json(
        &kc,
        &["trace", &format!("node//{db_node}"), &db, "tcp", "5432"],
    )
    .1;
    assert_eq!(own["verdict"], "delivered", "{own:#}");
    let other = common::jsonpath(&kc, &["get", "pod", "host-net"], "{.spec.nodeName}");
    assert_ne!(other, db_node);
    let t = ko_json(
        &kc,
        &["trace", &format!("node//{other}"), &db, "tcp", "5432"],
    )
    .1;
    assert_eq!(t["verdict"], "dropped", "{t:#}");
    assert_eq!(t["responsible"]["name"], "default/protect-db", "{t:#}");
    assert!(
        !pings(&kc, "host-net", &db),
        "another node pinged the protected db"
    );
}

#[test]
fn a_centralized_subnet_leaves_through_its_gateway_node() {
    let kc = kc();
    let ns = "sub-central";
    let cleanup = |kc: &Path| {
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "sub-central"]);
    };
    cleanup(&kc);
    let yaml = format!(
        "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: sub-central}}\nspec:\n  cidrBlock: 10.80.0.0/24\n  namespaces: [{ns}]\n  gatewayType: centralized\n  gatewayNode: kube-ovn-worker2\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
    ) + &ns_pod_yaml("c", ns, "kube-ovn-control-plane", "");
    apply(&kc, &yaml);
    ready(&kc, ns, &["c"]);
    assert_eq!(
        common::jsonpath(
            &kc,
            &["get", "subnet", "sub-central"],
            "{.status.activateGateway}"
        ),
        "kube-ovn-worker2"
    );
    let ext = external_host();
    let from = format!("{ns}/c");
    let t = ko_json(&kc, &["trace", &from, &ext, "icmp"]).1;
    assert_eq!(t["verdict"], "delivered", "{t:#}");
    let text = format!("{t}");
    assert!(
        text.contains("centralized gateway of subnet sub-central"),
        "{t:#}"
    );
    assert_eq!(
        t["logical"]["outport"], "node-kube-ovn-worker2",
        "leaves at the gateway node's port: {t:#}"
    );
    assert!(
        pings_in(&kc, ns, "c", &ext),
        "the centralized subnet's pod cannot reach the external host"
    );
    // switched to distributed: the pod now leaves through its own node
    let distributed = format!(
        "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: sub-central}}\nspec:\n  cidrBlock: 10.80.0.0/24\n  namespaces: [{ns}]\n  gatewayType: distributed\n"
    );
    apply(&kc, &distributed);
    wait_for(
        "the distributed gateway's reroute",
        Duration::from_secs(15),
        || {
            let t = ko_json(&kc, &["trace", &from, &ext, "icmp"]).1;
            let text = format!("{t}");
            t["verdict"] == "delivered"
                && text.contains("distributed gateway of subnet sub-central")
                && t["logical"]["outport"] == "node-kube-ovn-control-plane"
        },
    );
    assert!(
        pings_in(&kc, ns, "c", &ext),
        "after the switch to distributed the pod cannot reach the external host"
    );
    cleanup(&kc);
}

/// A trace from pod `ns/from` to `ip` (ICMP).
fn trace_icmp(kc: &Path, ns: &str, from: &str, ip: &str) -> Value {
    ko_json(kc, &["trace", &format!("{ns}/{from}"), ip, "icmp"]).1
}

/// Trace until the verdict is `want` and, with `kind`, the responsible object
/// of that kind (within `WITHIN` of `since`: while a change propagates, the SB
/// and a node's OpenFlow tables may briefly disagree), as [`verdict_within`]
/// for a pod outside `default`.
fn icmp_verdict_within(
    kc: &Path,
    since: Instant,
    (ns, from): (&str, &str),
    ip: &str,
    want: &str,
    kind: Option<&str>,
) -> Value {
    loop {
        let started = since.elapsed();
        let t = trace_icmp(kc, ns, from, ip);
        if t["verdict"] == want && kind.is_none_or(|k| t["responsible"]["kind"] == k) {
            return t;
        }
        assert!(
            started <= WITHIN,
            "trace {ns}/{from} -> {ip} icmp still says {} by {} {started:?} after the change (want {want} by {kind:?}): {t:#}",
            t["verdict"],
            t["responsible"]["kind"]
        );
    }
}

/// Admin network policies as Kube-OVN 1.13-1.16 realise them (tier 1 before
/// NetworkPolicies' tier 2, baselines in tier 3): an ANP Deny drops whatever a
/// NetworkPolicy says, its Allow overrides a NetworkPolicy's deny, Pass hands the
/// decision to the NetworkPolicy, and a baseline decides only where no policy
/// did. Every verdict is checked with a real ping, and the trace names the policy
/// and the rule.
#[test]
fn admin_network_policies_decide_before_network_policies_and_baselines_after() {
    let kc = kc();
    let (a, b, c) = ("anp-red", "anp-blue", "anp-green");
    let cleanup = |kc: &Path| {
        delete(
            kc,
            &["adminnetworkpolicy", "red-guard", "--ignore-not-found"],
        );
        delete(
            kc,
            &[
                "baselineadminnetworkpolicy",
                "default",
                "--ignore-not-found",
            ],
        );
        for ns in [a, b, c] {
            delete_namespace(kc, ns);
        }
    };
    cleanup(&kc);
    let ns = |n: &str, team: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}, labels: {{team: {team}}}}}\n---\n"
        )
    };
    let yaml = ns(a, "red")
        + &ns(b, "blue")
        + &ns(c, "green")
        + &ns_pod_yaml("srv", a, "kube-ovn-worker", "")
        + &ns_pod_yaml("blue", b, "kube-ovn-control-plane", "")
        + &ns_pod_yaml("green", c, "kube-ovn-worker2", "");
    apply(&kc, &yaml);
    ready(&kc, a, &["srv"]);
    ready(&kc, b, &["blue"]);
    ready(&kc, c, &["green"]);
    let srv = ip_in(&kc, a, "srv");
    // red's own NetworkPolicy: nothing may come in
    apply(
        &kc,
        &format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny-in, namespace: {a}}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress]\n"
        ),
    );
    let anp = |blue_action: &str| {
        format!(
            "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: red-guard}}\nspec:\n  priority: 10\n  subject: {{namespaces: {{matchLabels: {{team: red}}}}}}\n  ingress:\n  - name: allow-green\n    action: Allow\n    from: [{{namespaces: {{matchLabels: {{team: green}}}}}}]\n  - name: blue\n    action: {blue_action}\n    from: [{{namespaces: {{matchLabels: {{team: blue}}}}}}]\n"
        )
    };
    apply(&kc, &anp("Deny"));
    let t0 = Instant::now();
    if common::status_json(NAME)["ovn"]["version"] == "23.03" {
        // no ACL tiers before OVN 23.06: Kube-OVN 1.13+ (and the sandbox) cannot
        // realise the policy; the NetworkPolicy alone decides
        std::thread::sleep(Duration::from_secs(2));
        let pg = nb_find(&kc, "name", "port_group", "external_ids:anp=red-guard");
        assert!(pg.trim().is_empty(), "{pg}");
        assert_eq!(trace_icmp(&kc, c, "green", &srv)["verdict"], "dropped");
        cleanup(&kc);
        return;
    }
    // Deny in tier 1: dropped, named with its rule
    let t = icmp_verdict_within(
        &kc,
        t0,
        (b, "blue"),
        &srv,
        "dropped",
        Some("AdminNetworkPolicy"),
    );
    assert_eq!(t["responsible"]["name"], "red-guard", "{t:#}");
    assert_eq!(t["drop"]["port_group"], "red.guard", "{t:#}");
    assert_eq!(
        t["drop"]["acl"]["name"], "anp/red-guard/ingress/IPv4/1",
        "{t:#}"
    );
    assert!(
        t["drop"]["reason"].as_str().is_some_and(
            |r| r.starts_with("AdminNetworkPolicy red-guard spec.ingress[1] dropped it")
        ),
        "{t:#}"
    );
    assert!(
        !pings_in(&kc, b, "blue", &srv),
        "blue pinged through a Deny"
    );
    // Allow in tier 1 overrides the NetworkPolicy's deny
    let t = icmp_verdict_within(&kc, t0, (c, "green"), &srv, "delivered", None);
    assert!(
        format!("{t}").contains(
            "ACL anp/red-guard/ingress/IPv4/0 (AdminNetworkPolicy red-guard spec.ingress[0])"
        ),
        "the trace shows which ACL let it through: {t:#}"
    );
    assert!(
        pings_in(&kc, c, "green", &srv),
        "green could not ping through an Allow"
    );
    // the rows, as Kube-OVN shapes them
    let acls = nbctl(
        &kc,
        &[
            "--format=csv",
            "--columns=priority,tier,action,name",
            "find",
            "acl",
            "external_ids:parent=red.guard",
        ],
    );
    for (row, name) in [
        ("29000,1,allow-related,", "anp/red-guard/ingress/IPv4/0"),
        ("28999,1,drop,", "anp/red-guard/ingress/IPv4/1"),
    ] {
        assert!(
            acls.lines().any(|l| l.starts_with(row) && l.contains(name)),
            "{acls}"
        );
    }

    // Pass: the NetworkPolicy (tier 2) decides
    apply(&kc, &anp("Pass"));
    let t0 = Instant::now();
    loop {
        let t = trace_icmp(&kc, b, "blue", &srv);
        if t["responsible"]["kind"] == "NetworkPolicy" {
            assert_eq!(t["verdict"], "dropped", "{t:#}");
            assert_eq!(t["responsible"]["name"], format!("{a}/deny-in"), "{t:#}");
            break;
        }
        assert!(
            t0.elapsed() <= WITHIN * 2,
            "Pass did not hand blue to the NetworkPolicy: {t:#}"
        );
    }
    assert!(
        !pings_in(&kc, b, "blue", &srv),
        "blue pinged past the NetworkPolicy"
    );

    // without the NetworkPolicy, a baseline decides what nothing else did
    delete(&kc, &["-n", a, "networkpolicy", "deny-in"]);
    let t0 = Instant::now();
    icmp_verdict_within(&kc, t0, (b, "blue"), &srv, "delivered", None);
    assert!(
        pings_in(&kc, b, "blue", &srv),
        "blue could not ping with no policy deciding"
    );
    apply(
        &kc,
        "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {matchLabels: {team: red}}}\n  ingress:\n  - name: no-blue\n    action: Deny\n    from: [{namespaces: {matchLabels: {team: blue}}}]\n",
    );
    let t0 = Instant::now();
    let t = icmp_verdict_within(
        &kc,
        t0,
        (b, "blue"),
        &srv,
        "dropped",
        Some("BaselineAdminNetworkPolicy"),
    );
    assert_eq!(
        t["responsible"]["kind"], "BaselineAdminNetworkPolicy",
        "{t:#}"
    );
    assert_eq!(t["responsible"]["name"], "default", "{t:#}");
    assert!(
        !pings_in(&kc, b, "blue", &srv),
        "blue pinged through the baseline's Deny"
    );
    // a NetworkPolicy's allow (tier 2) comes before the baseline
    apply(
        &kc,
        &format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: let-blue, namespace: {a}}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{team: blue}}}}}}]\n"
        ),
    );
    let t0 = Instant::now();
    icmp_verdict_within(&kc, t0, (b, "blue"), &srv, "delivered", None);
    assert!(
        pings_in(&kc, b, "blue", &srv),
        "the NetworkPolicy's allow did not beat the baseline"
    );

    // deleting the policies takes their rows
    delete(&kc, &["adminnetworkpolicy", "red-guard"]);
    delete(&kc, &["baselineadminnetworkpolicy", "default"]);
    delete(&kc, &["-n", a, "networkpolicy", "let-blue"]);
    wait_for("the policies' rows to go", Duration::from_secs(10), || {
        nb_find(&kc, "name", "port_group", "external_ids:anp=red-guard")
            .trim()
            .is_empty()
            && nb_find(&kc, "name", "port_group", "external_ids:banp=default")
                .trim()
                .is_empty()
            && nb_find(
                &kc,
                "name",
                "address_set",
                "external_ids:anp=red-guard/ingress",
            )
            .trim()
            .is_empty()
    });
    cleanup(&kc);
}

/// An underlay subnet as Kube-OVN's underlay e2e builds it on kind: a Vlan with
/// id 0 on the provider network and a Subnet naming it. Its pods reach each other
/// across nodes over the provider network and its gateway on the physical side
/// (the gateway host), with no router port in between; the trace agrees with real
/// pings, and everything goes with the objects. A tagged Vlan is refused with the
/// reason (this kernel cannot terminate 802.1Q on the gateway host).
#[test]
fn an_underlay_subnet_created_through_the_api_reaches_across_nodes_and_its_gateway() {
    let kc = kc();
    let ns = "ul-api";
    let gw_netns = common::status_json(NAME)["underlay"]["gateway_netns"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("the sandbox status names no gateway netns"));
    let gw_addrs = || {
        let out = run({
            let mut c = std::process::Command::new("ip");
            c.args(["-n", &gw_netns, "-o", "addr"]);
            c
        });
        text(&out.stdout)
    };
    let cleanup = |kc: &Path| {
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "ul-api"]);
        delete(kc, &["vlan", "vl-api"]);
    };
    cleanup(&kc);
    let yaml = "apiVersion: kubeovn.io/v1\nkind: Vlan\nmetadata: {name: vl-api}\nspec: {id: 0, provider: provider}\n---\n".to_string()
        + &format!("apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: ul-api}}\nspec:\n  cidrBlock: 172.30.5.0/24\n  vlan: vl-api\n  namespaces: [{ns}]\n---\n")
        + &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n")
        + &ns_pod_yaml("p", ns, "kube-ovn-worker", "")
        + &ns_pod_yaml("q", ns, "kube-ovn-control-plane", "");
    apply(&kc, &yaml);
    ready(&kc, ns, &["p", "q"]);
    assert_eq!(subnet_condition(&kc, "ul-api", "Ready").0, "True");
    let p = ip_in(&kc, ns, "p");
    let q = ip_in(&kc, ns, "q");
    assert!(
        p.starts_with("172.30.5.") && q.starts_with("172.30.5."),
        "{p} {q}"
    );
    // Kube-OVN's rows: a localnet port on the provider network, no router port
    let ln = nb_find(
        &kc,
        "options",
        "logical_switch_port",
        "name=localnet.ul-api",
    );
    assert!(ln.contains("network_name=provider"), "{ln}");
    let lrp = nb_find(
        &kc,
        "name",
        "logical_router_port",
        "name=ovn-cluster-ul-api",
    );
    assert!(
        lrp.trim().is_empty(),
        "an underlay subnet got a router port: {lrp}"
    );
    // the gateway host answers for 172.30.5.1
    assert!(gw_addrs().contains("172.30.5.1/24"), "{}", gw_addrs());

    // pod to pod across nodes: delivered, and a real ping agrees
    let t = trace_icmp(&kc, ns, "p", &q);
    assert_eq!(t["verdict"], "delivered", "{t:#}");
    assert_eq!(t["logical"]["outport"], "q.ul-api", "{t:#}");
    assert!(
        pings_in(&kc, ns, "p", &q),
        "p could not ping q over the provider network"
    );
    // pod to its physical gateway: out of the localnet port, with the MAC the
    // gateway answered the trace's arping with
    let t = trace_icmp(&kc, ns, "p", "172.30.5.1");
    assert_eq!(t["verdict"], "delivered", "{t:#}");
    assert_eq!(t["logical"]["outport"], "localnet.ul-api", "{t:#}");
    assert!(
        t["destination"]["mac_from"]
            .as_str()
            .is_some_and(|m| m.starts_with("arping")),
        "{t:#}"
    );
    assert!(
        pings_in(&kc, ns, "q", "172.30.5.1"),
        "q could not ping its gateway"
    );

    // a tagged Vlan: refused with the reason, not half-done
    apply(
        &kc,
        "apiVersion: kubeovn.io/v1\nkind: Vlan\nmetadata: {name: vl-tagged}\nspec: {id: 100, provider: provider}\n---\napiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {name: ul-tagged}\nspec: {cidrBlock: 172.30.6.0/24, vlan: vl-tagged}\n",
    );
    wait_for(
        "the tagged subnet's refusal",
        Duration::from_secs(10),
        || subnet_condition(&kc, "ul-tagged", "Validated").0 == "False",
    );
    assert!(
        subnet_condition(&kc, "ul-tagged", "Validated")
            .1
            .contains("tagged VLANs")
    );
    delete(&kc, &["subnet", "ul-tagged"]);
    delete(&kc, &["vlan", "vl-tagged"]);

    cleanup(&kc);
    wait_for(
        "the underlay subnet's rows and gateway to go",
        Duration::from_secs(20),
        || {
            nb_find(&kc, "name", "logical_switch", "name=ul-api")
                .trim()
                .is_empty()
                && !gw_addrs().contains("172.30.5.1/24")
        },
    );
}

/// VPC peering as Kube-OVN's vpc-peering e2e builds it: each Vpc lists the other
/// in `spec.vpcPeerings` (a /30 between the routers) and a static route to the
/// other's subnet through it. Before, the planned VPC's pod cannot reach the new
/// VPC's pod; after, the trace is delivered through the static route it names and
/// real pings pass both ways; undoing the spec takes the peer port away.
#[test]
fn peered_vpcs_route_to_each_other_through_their_static_routes() {
    let kc = kc();
    let ns = "peer-ns";
    let restore_vpc1 = |kc: &Path| {
        kubectl_ok(
            kc,
            &[
                "patch",
                "vpc",
                "vpc1",
                "--type=merge",
                "-p",
                r#"{"spec":{"vpcPeerings":null,"staticRoutes":null}}"#,
            ],
        );
    };
    let cleanup = |kc: &Path| {
        restore_vpc1(kc);
        delete_namespace(kc, ns);
        delete(kc, &["subnet", "peer-subnet"]);
        delete(kc, &["vpc", "vpc-peer"]);
    };
    cleanup(&kc);
    let yaml = format!(
        "apiVersion: kubeovn.io/v1\nkind: Vpc\nmetadata: {{name: vpc-peer}}\nspec:\n  namespaces: [{ns}]\n  vpcPeerings: [{{remoteVpc: vpc1, localConnectIP: 169.254.0.2/30}}]\n  staticRoutes: [{{cidr: 192.168.100.0/24, nextHopIP: 169.254.0.1, policy: policyDst}}]\n---\n"
    ) + &format!(
        "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: peer-subnet}}\nspec:\n  cidrBlock: 10.81.0.0/24\n  vpc: vpc-peer\n  namespaces: [{ns}]\n---\n"
    ) + &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n")
        + &ns_pod_yaml("pp", ns, "kube-ovn-worker2", "");
    apply(&kc, &yaml);
    ready(&kc, ns, &["pp"]);
    let pp = ip_in(&kc, ns, "pp");
    let v1 = ip_in(&kc, "vpc1", "vpc1-pod-1");
    // one side only: vpc1 has no route to the new VPC yet
    let t = trace_icmp(&kc, "vpc1", "vpc1-pod-1", &pp);
    assert_ne!(t["verdict"], "delivered", "{t:#}");
    assert!(!pings_in(&kc, "vpc1", "vpc1-pod-1", &pp));

    kubectl_ok(
        &kc,
        &[
            "patch",
            "vpc",
            "vpc1",
            "--type=merge",
            "-p",
            r#"{"spec":{"vpcPeerings":[{"remoteVpc":"vpc-peer","localConnectIP":"169.254.0.1/30"}],"staticRoutes":[{"cidr":"10.81.0.0/24","nextHopIP":"169.254.0.2","policy":"policyDst"}]}}"#,
        ],
    );
    let t0 = Instant::now();
    let t = icmp_verdict_within(&kc, t0, ("vpc1", "vpc1-pod-1"), &pp, "delivered", None);
    let route = t["routing"]["route"]["prefix"].clone();
    assert_eq!(
        route, "10.81.0.0/24",
        "the trace names the static route: {t:#}"
    );
    assert_eq!(t["routing"]["route"]["nexthop"], "169.254.0.2", "{t:#}");
    assert_eq!(t["logical"]["outport"], "pp.peer-ns", "{t:#}");
    assert!(
        pings_in(&kc, "vpc1", "vpc1-pod-1", &pp),
        "no ping across the peering"
    );
    assert!(
        pings_in(&kc, ns, "pp", &v1),
        "no ping back across the peering"
    );
    // Kube-OVN's rows and status
    let peer = nb_find(&kc, "peer", "logical_router_port", "name=vpc1-vpc-peer");
    assert_eq!(peer.trim(), "vpc-peer-vpc1");
    let st = common::jsonpath(&kc, &["get", "vpc", "vpc1"], "{.status.vpcPeerings}");
    assert!(st.contains("vpc-peer"), "{st}");

    cleanup(&kc);
    wait_for("vpc1's peer port to go", Duration::from_secs(20), || {
        nb_find(&kc, "name", "logical_router_port", "name=vpc1-vpc-peer")
            .trim()
            .is_empty()
    });
}
