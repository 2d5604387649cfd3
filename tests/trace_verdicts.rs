//! `kubectl ko trace` verdicts on situations each test builds itself on the
//! sandbox `verdicts`, shaped as Kube-OVN makes them (a Subnet's `spec.acls`
//! become ACLs on the switch with `external_ids subnet/parent/vendor` and
//! priority +1000 in the lflow; Service VIPs live on
//! `cluster-tcp-loadbalancer`; `options:reject=true`; a Vpc static route; a
//! 30000 node reroute policy with `external_ids node`), and undoes again
//! (also when an assertion fails). Every test asserts the JSON verdict,
//! cause, responsible object, the exit code with `--exit-code` and the first
//! text line. The tests change shared NB state and inject faults, so they
//! run one at a time (a lock here, the `verdicts` test group for nextest).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::{jsonpath, ko, ko_json, ko_ok, kubeconfig, kubectl, run, sandbox, text};
use serde_json::Value;

const SB: &str = "verdicts";
static LOCK: Mutex<()> = Mutex::new(());

fn setup() -> (MutexGuard<'static, ()>, PathBuf) {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    (guard, kubeconfig(SB))
}

/// Runs `undo` when dropped, so a failed assertion still cleans up.
struct Undo<F: FnMut()>(F);
impl<F: FnMut()> Drop for Undo<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn nbctl(kc: &Path, args: &[&str]) -> String {
    let mut a = vec!["nbctl"];
    a.extend_from_slice(args);
    ko_ok(kc, &a).trim().to_string()
}

/// `trace -o json --exit-code`: (exit code, report, stderr).
fn trace_json(kc: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["trace", "--exit-code"];
    a.extend_from_slice(args);
    ko_json(kc, &a)
}

/// `trace` in text without --exit-code: (exit code, stdout lines).
fn trace_text(kc: &Path, args: &[&str]) -> (i32, Vec<String>) {
    let out = run({
        let mut c = ko(kc);
        c.arg("trace").args(args);
        c
    });
    let lines = text(&out.stdout).lines().map(String::from).collect();
    (out.status.code().unwrap_or(-1), lines)
}

fn pod_ip(kc: &Path, ns: &str, pod: &str) -> String {
    jsonpath(kc, &["-n", ns, "get", "pod", pod], "{.status.podIP}")
}

fn node_of(kc: &Path, ns: &str, pod: &str) -> String {
    jsonpath(kc, &["-n", ns, "get", "pod", pod], "{.spec.nodeName}")
}

/// Asserts verdict, cause, responsible kind/name, exit code (--exit-code),
/// and the text form: exit 0 without --exit-code and its first line.
fn check(
    kc: &Path,
    args: &[&str],
    verdict: &str,
    cause: &str,
    responsible: (&str, &str),
    head: &str,
) -> Value {
    let (code, v, err) = trace_json(kc, args);
    assert_eq!(v["verdict"], verdict, "{v:#}\n{err}");
    assert_eq!(v["cause"], cause, "{v:#}");
    assert_eq!(v["responsible"]["kind"], responsible.0, "{v:#}");
    assert_eq!(v["responsible"]["name"], responsible.1, "{v:#}");
    assert_eq!(code, 1, "--exit-code on {verdict}: {err}");
    let (code, lines) = trace_text(kc, args);
    assert_eq!(code, 0, "without --exit-code the trace ran: {lines:#?}");
    let first = lines.first().cloned().unwrap_or_default();
    assert!(first.starts_with(head), "first line: {first}");
    v
}

fn add_subnet_acl(kc: &Path, direction: &str, prio: &str, m: &str) -> String {
    // what kube-ovn-controller makes of a Subnet spec.acls entry
    nbctl(
        kc,
        &[
            "--id=@a",
            "create",
            "ACL",
            &format!("direction={direction}"),
            &format!("priority={prio}"),
            &format!("match=\"{m}\""),
            "action=reject",
            "external_ids:subnet=ovn-default",
            "external_ids:parent=ovn-default",
            "external_ids:vendor=kube-ovn",
            "--",
            "add",
            "Logical_Switch",
            "ovn-default",
            "acls",
            "@a",
        ],
    )
}

fn del_subnet_acl(kc: &Path, uuid: &str) {
    nbctl(
        kc,
        &[
            "--wait=sb",
            "remove",
            "Logical_Switch",
            "ovn-default",
            "acls",
            uuid,
        ],
    );
}

#[test]
fn subnet_reject_acl_is_rejected_with_a_tcp_reset() {
    let (_g, kc) = setup();
    let dst = pod_ip(&kc, "default", "web-2");
    let acl = add_subnet_acl(
        &kc,
        "to-lport",
        "1005",
        &format!("ip4.dst == {dst} && tcp.dst == 8080"),
    );
    let _undo = Undo(|| del_subnet_acl(&kc, &acl));
    nbctl(&kc, &["--wait=sb", "sync"]);
    let v = check(
        &kc,
        &["default/client-1", &dst, "tcp", "8080"],
        "rejected",
        "acl",
        ("Subnet", "ovn-default"),
        "REJECTED",
    );
    assert_eq!(v["reply"], "a TCP RST", "{v:#}");
    let stage = v["drop"]["stage"].as_str().unwrap_or_default();
    assert!(
        stage == "ls_out_acl" || stage == "ls_out_acl_eval",
        "{stage}"
    );
}

#[test]
fn egress_reject_acl_answers_with_icmp_unreachable() {
    let (_g, kc) = setup();
    let src = pod_ip(&kc, "default", "client-1");
    let dst = pod_ip(&kc, "default", "web-2");
    let acl = add_subnet_acl(
        &kc,
        "from-lport",
        "1010",
        &format!("ip4.src == {src} && icmp4"),
    );
    let _undo = Undo(|| del_subnet_acl(&kc, &acl));
    nbctl(&kc, &["--wait=sb", "sync"]);
    let v = check(
        &kc,
        &["default/client-1", &dst, "icmp"],
        "rejected",
        "acl",
        ("Subnet", "ovn-default"),
        "REJECTED",
    );
    assert_eq!(v["reply"], "an ICMP unreachable", "{v:#}");
    let stage = v["drop"]["stage"].as_str().unwrap_or_default();
    assert!(stage == "ls_in_acl" || stage == "ls_in_acl_eval", "{stage}");
}

/// A Service object with a ClusterIP and no endpoints.
fn service(kc: &Path, name: &str, ip: &str) -> impl FnMut() + use<> {
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  clusterIP: {ip}\n  ports:\n  - port: 80\n    protocol: TCP\n    targetPort: 8080\n  selector:\n    app: {name}\n"
    );
    let mut c = kubectl(kc);
    c.args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("kubectl apply");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(yaml.as_bytes()).expect("write yaml");
    }
    let out = child.wait_with_output().expect("kubectl apply");
    assert!(out.status.success(), "apply: {}", text(&out.stderr));
    let kc = kc.to_path_buf();
    let name = name.to_string();
    move || {
        run({
            let mut c = kubectl(&kc);
            c.args(["-n", "default", "delete", "service", &name, "--wait=false"]);
            c
        });
    }
}

fn set_vip(kc: &Path, vip: &str, backends: &str, reject: bool) -> impl FnMut() + use<> {
    let mut args = vec![
        "--wait=sb".to_string(),
        "set".into(),
        "Load_Balancer".into(),
        "cluster-tcp-loadbalancer".into(),
        format!("vips:\"{vip}\"=\"{backends}\""),
    ];
    if reject {
        args.push("options:reject=true".into());
    }
    nbctl(kc, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let kc = kc.to_path_buf();
    let vip = vip.to_string();
    move || {
        nbctl(
            &kc,
            &[
                "--wait=sb",
                "remove",
                "Load_Balancer",
                "cluster-tcp-loadbalancer",
                "vips",
                &format!("\"{vip}\""),
                "--",
                "remove",
                "Load_Balancer",
                "cluster-tcp-loadbalancer",
                "options",
                "reject",
            ],
        );
    }
}

#[test]
fn service_vip_without_backends_is_dropped_and_names_the_service() {
    let (_g, kc) = setup();
    let _svc = Undo(service(&kc, "vd-empty", "10.96.200.11"));
    let _vip = Undo(set_vip(&kc, "10.96.200.11:80", "", false));
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.11", "tcp", "80"],
        "dropped",
        "lb_no_backends",
        ("Service", "default/vd-empty"),
        "DROPPED",
    );
    assert_eq!(v["drop"]["stage"], "ls_in_lb", "{v:#}");
    assert_eq!(v["service"]["vip_in_ovn"], true);
}

#[test]
fn lb_with_reject_option_is_rejected_and_names_the_service() {
    let (_g, kc) = setup();
    let _svc = Undo(service(&kc, "vd-reject", "10.96.200.12"));
    let _vip = Undo(set_vip(&kc, "10.96.200.12:80", "", true));
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.12", "tcp", "80"],
        "rejected",
        "lb_reject",
        ("Service", "default/vd-reject"),
        "REJECTED",
    );
    assert_eq!(v["reply"], "a TCP RST", "{v:#}");
}

#[test]
fn service_whose_vip_kube_ovn_removed_is_named() {
    let (_g, kc) = setup();
    let _svc = Undo(service(&kc, "vd-novip", "10.96.200.13"));
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.13", "tcp", "80"],
        "dropped",
        "lb_no_backends",
        ("Service", "default/vd-novip"),
        "DROPPED",
    );
    assert_eq!(v["service"]["vip_in_ovn"], false);
    let reason = v["drop"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Service default/vd-novip has no ready endpoints")
            && reason.contains("removed its VIP"),
        "{reason}"
    );
}

#[test]
fn custom_vpc_default_route_to_a_missing_gateway_is_unresolved() {
    let (_g, kc) = setup();
    // a Vpc spec.staticRoutes entry as kube-ovn-controller writes it
    nbctl(
        &kc,
        &[
            "--wait=sb",
            "lr-route-add",
            "vpc1",
            "0.0.0.0/0",
            "192.168.100.254",
        ],
    );
    let _undo = Undo(|| {
        nbctl(&kc, &["--wait=sb", "lr-route-del", "vpc1", "0.0.0.0/0"]);
    });
    let v = check(
        &kc,
        &["vpc1/vpc1-pod-1", "10.1.2.3", "icmp"],
        "unresolved",
        "unresolved_next_hop",
        ("Vpc", "vpc1"),
        "UNRESOLVED",
    );
    assert_eq!(v["next_hop"]["address"], "192.168.100.254", "{v:#}");
    assert_eq!(v["next_hop"]["port"], "vpc1-vpc1-subnet");
    assert!(
        v["responsible"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("192.168.100.254"),
        "{v:#}"
    );
}

#[test]
fn node_route_whose_next_hop_does_not_answer_is_unresolved() {
    let (_g, kc) = setup();
    // the 30000 node-IP reroute of a node whose join address is gone
    let uuid = nbctl(
        &kc,
        &[
            "--id=@p",
            "create",
            "Logical_Router_Policy",
            "priority=30000",
            "match=\"ip4.dst == 172.18.0.99\"",
            "action=reroute",
            "nexthops=\"100.64.0.99\"",
            "external_ids:node=vd-ghost",
            "external_ids:address-family=4",
            "external_ids:vendor=kube-ovn",
            "--",
            "add",
            "Logical_Router",
            "ovn-cluster",
            "policies",
            "@p",
        ],
    );
    let _undo = Undo(|| {
        nbctl(
            &kc,
            &[
                "--wait=sb",
                "remove",
                "Logical_Router",
                "ovn-cluster",
                "policies",
                &uuid,
            ],
        );
    });
    nbctl(&kc, &["--wait=sb", "sync"]);
    let v = check(
        &kc,
        &["default/client-1", "172.18.0.99", "icmp"],
        "unresolved",
        "unresolved_next_hop",
        ("Vpc", "ovn-cluster"),
        "UNRESOLVED",
    );
    assert_eq!(v["next_hop"]["address"], "100.64.0.99", "{v:#}");
    assert_eq!(v["next_hop"]["port"], "ovn-cluster-join");
    assert_eq!(v["routing"]["policy"]["priority"], 30000);
}

#[test]
fn unused_address_of_the_own_subnet_is_flooded() {
    let (_g, kc) = setup();
    let v = check(
        &kc,
        &["default/client-1", "10.16.0.200", "icmp"],
        "flooded",
        "unknown_destination",
        ("Subnet", "ovn-default"),
        "FLOODED",
    );
    let to = v["logical"]["flooded_to"].as_array().expect("flooded_to");
    assert!(to.iter().any(|p| p == "web-1.default"), "{to:?}");
    assert_eq!(v["next_hop"]["address"], "10.16.0.200");
}

#[test]
fn broadcast_is_flooded_to_the_switch() {
    let (_g, kc) = setup();
    let v = check(
        &kc,
        &[
            "default/client-1",
            "255.255.255.255",
            "ff:ff:ff:ff:ff:ff",
            "udp",
            "67",
        ],
        "flooded",
        "broadcast",
        ("Subnet", "ovn-default"),
        "FLOODED",
    );
    let to = v["logical"]["flooded_to"].as_array().expect("flooded_to");
    assert!(to.iter().any(|p| p == "web-3.default"), "{to:?}");
    assert!(!to.iter().any(|p| p == "client-1.default"), "{to:?}");
}

#[test]
fn unknown_destination_mac_is_dropped() {
    let (_g, kc) = setup();
    let dst = pod_ip(&kc, "default", "web-2");
    let v = check(
        &kc,
        &["default/client-1", &dst, "0a:00:00:00:99:99", "icmp"],
        "dropped",
        "unknown_destination",
        ("Subnet", "ovn-default"),
        "DROPPED",
    );
    assert_eq!(v["drop"]["stage"], "ls_in_l2_unknown");
}

fn fault(args: &[&str]) -> impl FnMut() + use<> {
    let out = sandbox(SB, &[&["fault"], args].concat());
    assert!(
        out.status.success(),
        "fault {args:?}: {}",
        text(&out.stderr)
    );
    || {
        let out = sandbox(SB, &["fault", "heal"]);
        assert!(out.status.success(), "heal: {}", text(&out.stderr));
    }
}

#[test]
fn unbound_destination_port_is_dropped_and_names_the_lsp() {
    let (_g, kc) = setup();
    let dst = pod_ip(&kc, "default", "web-3");
    let _heal = Undo(fault(&["unbind-port", "default/web-3"]));
    let v = check(
        &kc,
        &["default/client-1", &dst, "icmp"],
        "dropped",
        "unbound_port",
        ("LogicalSwitchPort", "web-3.default"),
        "DROPPED",
    );
    assert_eq!(v["responsible"]["detail"], "pod default/web-3", "{v:#}");
}

/// With ovn-controller stopped, the verdict stays what OVN's logic says,
/// and the warning right under it says which node's agent is down.
fn controller_down(node_of_pod: &str, role: &str) {
    let (_g, kc) = setup();
    let node = node_of(&kc, "default", node_of_pod);
    let dst = pod_ip(&kc, "default", "web-2");
    let _heal = Undo(fault(&["stop-controller", &node]));
    let args = ["default/client-1", dst.as_str(), "icmp"];
    let (code, v, err) = trace_json(&kc, &args);
    assert_eq!(v["verdict"], "delivered", "{v:#}\n{err}");
    assert_eq!(code, 0);
    let want = format!("ovn-controller on {role} node {node} is not running");
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or_default().starts_with(&want)),
        "{want}: {warnings:#?}"
    );
    let (_, lines) = trace_text(&kc, &args);
    assert!(lines[0].starts_with("DELIVERED"), "{lines:#?}");
    assert!(
        lines.get(1).is_some_and(|l| l.contains(&want)),
        "the warning is right under the verdict: {lines:#?}"
    );
}

#[test]
fn controller_stopped_on_the_destination_node_is_warned() {
    controller_down("web-2", "destination");
}

#[test]
fn controller_stopped_on_the_source_node_is_warned() {
    controller_down("client-1", "source");
}

#[test]
fn pending_source_pod_says_so_and_exits_3() {
    let (_g, kc) = setup();
    let out = run({
        let mut c = kubectl(&kc);
        c.args([
            "run",
            "vd-pending",
            "--image=busybox",
            "--overrides={\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"vd-no-such-node\"}}}",
            "--",
            "sleep",
            "infinity",
        ]);
        c
    });
    assert!(out.status.success(), "kubectl run: {}", text(&out.stderr));
    let _undo = Undo(|| {
        run({
            let mut c = kubectl(&kc);
            c.args(["delete", "pod", "vd-pending", "--wait=false"]);
            c
        });
    });
    let out = run({
        let mut c = ko(&kc);
        c.args([
            "trace",
            "--exit-code",
            "default/vd-pending",
            "10.16.0.7",
            "icmp",
        ]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("pod default/vd-pending is Pending") && err.contains("nothing to trace"),
        "{err}"
    );
    assert!(!err.contains("annotation"), "{err}");
}

#[test]
fn own_address_is_not_blamed_on_the_switch() {
    let (_g, kc) = setup();
    let own = pod_ip(&kc, "default", "client-1");
    let (code, v, err) = trace_json(&kc, &["default/client-1", &own, "icmp"]);
    assert_eq!(v["verdict"], "dropped", "{v:#}\n{err}");
    assert_eq!(v["cause"], "other");
    assert_eq!(code, 1);
    let reason = v["drop"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the destination is the sender itself"),
        "{reason}"
    );
    assert!(!reason.contains("not on this logical switch"), "{reason}");
}
