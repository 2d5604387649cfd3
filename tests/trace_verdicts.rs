//! `kubectl ko trace` verdicts on situations each test builds itself on the
//! sandbox `verdicts`, shaped as Kube-OVN makes them (a Subnet's `spec.acls`
//! become ACLs on the switch with `external_ids subnet/parent/vendor` and
//! priority +1000 in the lflow, written by the sandbox controller from the
//! Subnet's `spec.acls`; Services whose VIPs the controller keeps on
//! `cluster-tcp-loadbalancer` or removes; a load balancer Kube-OVN does not
//! own with `options:reject=true`; a Vpc static route; a
//! 30000 node reroute policy with `external_ids node`), and undoes again
//! (also when an assertion fails). Every test asserts the JSON verdict,
//! cause, responsible object, the exit code with `--exit-code` and the first
//! text line. The tests change shared NB state and inject faults, so they
//! run one at a time (a lock here, the `verdicts` test group for nextest).

mod common;

use std::cell::RefCell;
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

/// Sets the Subnet `ovn-default`'s `spec.acls` to `acls` (JSON) through the
/// API, as a user does, and waits until the controller (kube-ovn-controller's
/// stand-in) wrote them to the switch and northd turned them into logical
/// flows; the returned undo clears `spec.acls` again.
fn subnet_acls(kc: &Path, acls: &str, wait_for: &str, northd: bool) -> impl FnMut() + use<> {
    let patch = |body: &str| {
        let out = run({
            let mut c = kubectl(kc);
            c.args(["patch", "subnet", "ovn-default", "--type=merge", "-p", body]);
            c
        });
        assert!(out.status.success(), "patch subnet: {}", text(&out.stderr));
    };
    patch(&format!("{{\"spec\":{{\"acls\":{acls}}}}}"));
    wait_subnet_acl(kc, wait_for, true, northd);
    let kc = kc.to_path_buf();
    let wait_for = wait_for.to_string();
    move || {
        let out = run({
            let mut c = kubectl(&kc);
            c.args([
                "patch",
                "subnet",
                "ovn-default",
                "--type=merge",
                "-p",
                "{\"spec\":{\"acls\":null}}",
            ]);
            c
        });
        assert!(
            out.status.success(),
            "unpatch subnet: {}",
            text(&out.stderr)
        );
        wait_subnet_acl(&kc, &wait_for, false, true);
    }
}

/// Waits (10 s at most) until an ACL tagged `subnet=ovn-default` whose match
/// contains `needle` is (`present`) or is not in the NB, then (`northd`)
/// until northd put it in the SB.
fn wait_subnet_acl(kc: &Path, needle: &str, present: bool, northd: bool) {
    for _ in 0..50 {
        let rows = nbctl(
            kc,
            &[
                "--bare",
                "--columns=match",
                "find",
                "ACL",
                "external_ids:subnet=ovn-default",
            ],
        );
        if rows.contains(needle) == present {
            if northd {
                nbctl(kc, &["--wait=sb", "sync"]);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the controller did not write the Subnet ACL `{needle}` (present={present})");
}

#[test]
fn subnet_reject_acl_is_rejected_with_a_tcp_reset() {
    let (_g, kc) = setup();
    let dst = pod_ip(&kc, "default", "web-2");
    let m = format!("ip4.dst == {dst} && tcp.dst == 8080");
    let _undo = Undo(subnet_acls(
        &kc,
        &format!(r#"[{{"direction":"to-lport","priority":1005,"match":"{m}","action":"reject"}}]"#),
        &m,
        true,
    ));
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
    let m = format!("ip4.src == {src} && icmp4");
    let _undo = Undo(subnet_acls(
        &kc,
        &format!(
            r#"[{{"direction":"from-lport","priority":1010,"match":"{m}","action":"reject"}}]"#
        ),
        &m,
        true,
    ));
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

/// A load balancer the controller does not own, attached to `ovn-default`,
/// with one VIP and no backend. Kube-OVN never makes one (checked at
/// kubeovn/kube-ovn 1533681d): `handleUpdateEndpointSlice`
/// (pkg/controller/endpoint_slice.go) deletes a VIP that has no backend
/// instead of keeping it empty, and the only LB options it sets
/// (pkg/ovs/ovn-nb-load_balancer.go) are `affinity_timeout`,
/// `prefer_local_backend` and `ct_flush`, never `reject`. Such an LB comes
/// from another tool or a hand-made fix on the NB, which is why the verdict
/// blames the LoadBalancer row, not a Service.
fn foreign_lb(kc: &Path, name: &str, vip: &str, reject: bool) -> impl FnMut() + use<> {
    nbctl(
        kc,
        &[
            "--wait=sb",
            "--id=@l",
            "create",
            "Load_Balancer",
            &format!("name={name}"),
            "protocol=tcp",
            &format!("vips:\"{vip}\"=\"\""),
            &format!("options:reject={reject}"),
            "--",
            "add",
            "Logical_Switch",
            "ovn-default",
            "load_balancer",
            "@l",
        ],
    );
    let kc = kc.to_path_buf();
    let name = name.to_string();
    move || {
        nbctl(&kc, &["--wait=sb", "lb-del", &name]);
    }
}

#[test]
fn lb_vip_without_backends_is_dropped_and_names_the_load_balancer() {
    let (_g, kc) = setup();
    let _lb = Undo(foreign_lb(&kc, "vd-empty-lb", "10.96.200.11:80", false));
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.11", "tcp", "80"],
        "dropped",
        "lb_no_backends",
        ("LoadBalancer", "vd-empty-lb"),
        "DROPPED",
    );
    assert_eq!(v["drop"]["stage"], "ls_in_lb", "{v:#}");
    assert_eq!(v["lb"]["name"], "vd-empty-lb", "{v:#}");
    assert_eq!(v["responsible"]["detail"], "VIP 10.96.200.11:80", "{v:#}");
}

#[test]
fn lb_with_reject_option_is_rejected_and_names_the_load_balancer() {
    let (_g, kc) = setup();
    let _lb = Undo(foreign_lb(&kc, "vd-reject-lb", "10.96.200.12:80", true));
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.12", "tcp", "80"],
        "rejected",
        "lb_reject",
        ("LoadBalancer", "vd-reject-lb"),
        "REJECTED",
    );
    assert_eq!(v["reply"], "a TCP RST", "{v:#}");
    let reason = v["drop"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("options:reject=true"), "{reason}");
}

/// Runs a pod labelled `app=<name>`, waits until it is Ready, then reports
/// it not ready as the kubelet does when its readiness probe fails
/// (`Ready` and `ContainersReady` False, the container not ready).
fn unready_pod(kc: &Path, name: &str) -> impl FnMut() + use<> {
    let out = run({
        let mut c = kubectl(kc);
        c.args([
            "run",
            name,
            "--image=busybox",
            &format!("--labels=app={name}"),
            "--",
            "sleep",
            "infinity",
        ]);
        c
    });
    assert!(out.status.success(), "kubectl run: {}", text(&out.stderr));
    let out = run({
        let mut c = kubectl(kc);
        c.args([
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=60s",
        ]);
        c
    });
    assert!(out.status.success(), "kubectl wait: {}", text(&out.stderr));
    let types = jsonpath(
        kc,
        &["-n", "default", "get", "pod", name],
        "{.status.conditions[*].type}",
    );
    let mut ops: Vec<String> = types
        .split_whitespace()
        .enumerate()
        .filter(|(_, t)| *t == "Ready" || *t == "ContainersReady")
        .map(|(i, _)| {
            format!(r#"{{"op":"replace","path":"/status/conditions/{i}/status","value":"False"}}"#)
        })
        .collect();
    ops.push(r#"{"op":"replace","path":"/status/containerStatuses/0/ready","value":false}"#.into());
    let out = run({
        let mut c = kubectl(kc);
        c.args([
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=json",
            "-p",
            &format!("[{}]", ops.join(",")),
        ]);
        c
    });
    assert!(out.status.success(), "patch status: {}", text(&out.stderr));
    let kc = kc.to_path_buf();
    let name = name.to_string();
    move || {
        run({
            let mut c = kubectl(&kc);
            c.args(["delete", "pod", &name, "--wait=false"]);
            c
        });
    }
}

/// Waits until the Service's EndpointSlice lists `ip` as not ready.
fn wait_not_ready_endpoint(kc: &Path, svc: &str, ip: &str) {
    for _ in 0..50 {
        let ready = jsonpath(
            kc,
            &[
                "-n",
                "default",
                "get",
                "endpointslices",
                "-l",
                &format!("kubernetes.io/service-name={svc}"),
            ],
            "{.items[*].endpoints[*].addresses[0]}={.items[*].endpoints[*].conditions.ready}",
        );
        if ready == format!("{ip}=false") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("Service {svc}'s EndpointSlice never listed {ip} as not ready");
}

#[test]
fn service_with_only_unready_endpoints_is_dropped_and_names_the_service() {
    let (_g, kc) = setup();
    let _pod = Undo(unready_pod(&kc, "vd-unready"));
    let _svc = Undo(service(&kc, "vd-unready", "10.96.200.14"));
    let ip = pod_ip(&kc, "default", "vd-unready");
    wait_not_ready_endpoint(&kc, "vd-unready", &ip);
    // what kube-ovn-controller does with it: no ready backend, no VIP
    nbctl(&kc, &["--wait=sb", "sync"]);
    let vips = nbctl(
        &kc,
        &["get", "Load_Balancer", "cluster-tcp-loadbalancer", "vips"],
    );
    assert!(!vips.contains("10.96.200.14"), "{vips}");
    let v = check(
        &kc,
        &["default/client-1", "10.96.200.14", "tcp", "80"],
        "dropped",
        "lb_no_backends",
        ("Service", "default/vd-unready"),
        "DROPPED",
    );
    assert_eq!(v["service"]["vip_in_ovn"], false, "{v:#}");
    let reason = v["drop"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Service default/vd-unready has no ready endpoints")
            && reason.contains("removed its VIP"),
        "{reason}"
    );
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
    // what the sender experiences first: nobody serves it; OVN routes it to
    // the node's host network, whose rules (no kube-proxy rule here) decide
    let node = node_of(&kc, "default", "client-1");
    assert!(reason.starts_with("no pod receives it"), "{reason}");
    assert!(
        reason.contains(&format!("to node {node}'s host network")),
        "{reason}"
    );
    assert!(!reason.contains("REJECT"), "{reason}");
    let (_, lines) = trace_text(&kc, &["default/client-1", "10.96.200.13", "tcp", "80"]);
    let first = lines.first().cloned().unwrap_or_default();
    assert!(
        first.contains("no pod receives it, the connection fails: Service default/vd-novip"),
        "{first}"
    );
    // and really: the connection fails (the node answers net unreachable here)
    assert!(
        !tcp_connects(&kc, "client-1", "10.96.200.13", 80),
        "client-1 connected to a Service without endpoints"
    );
}

/// A ClusterIP asked on a port its Service does not define, or pinged: no
/// load balancer rule matches, so OVN routes it as a plain address (to the
/// node's host network here). The verdict says so and names the Service and
/// what it serves, instead of a bare "delivered to ovn0".
#[test]
fn cluster_ip_on_a_port_or_protocol_its_service_does_not_serve_is_not_load_balanced() {
    let (_g, kc) = setup();
    let vip = jsonpath(
        &kc,
        &["-n", "default", "get", "svc", "web"],
        "{.spec.clusterIP}",
    );
    let vip = vip.trim();
    let node = node_of(&kc, "default", "client-1");
    for args in [["tcp", "81"].as_slice(), ["icmp"].as_slice()] {
        let mut a = vec!["default/client-1", vip];
        a.extend_from_slice(args);
        let (_, v, err) = trace_json(&kc, &a);
        assert_eq!(v["verdict"], "delivered", "{v:#}\n{err}");
        assert!(v["lb"].is_null(), "{:#}", v["lb"]);
        assert_eq!(v["service"]["name"], "default/web", "{v:#}");
        assert_eq!(v["service"]["serves_packet"], false, "{v:#}");
        assert_eq!(
            v["service"]["ports"],
            serde_json::json!(["tcp/80"]),
            "{v:#}"
        );
        assert_eq!(
            v["logical"]["outport_owner"],
            format!("node {node}"),
            "{v:#}"
        );
        let (_, lines) = trace_text(&kc, &a);
        let first = lines.first().cloned().unwrap_or_default();
        assert!(
            first.contains("not load-balanced")
                && first.contains("ClusterIP of Service default/web, which serves only tcp/80"),
            "{first}"
        );
    }
    // and really: on port 80 a backend answers (connects, or refuses: the
    // sandbox's web pods listen on no port), on port 81 no pod does
    let answer = |port: u16| {
        let script = format!("exec 3<>/dev/tcp/{vip}/{port}");
        let out = run({
            let mut c = kubectl(&kc);
            c.args([
                "exec", "client-1", "--", "timeout", "3", "bash", "-c", &script,
            ]);
            c
        });
        (out.status.success(), text(&out.stderr))
    };
    let (ok80, err80) = answer(80);
    assert!(
        ok80 || err80.contains("Connection refused"),
        "web:80: {err80}"
    );
    let (ok81, err81) = answer(81);
    assert!(
        !ok81 && !err81.contains("Connection refused"),
        "a pod answered on web's ClusterIP port 81, which the Service does not define: {err81}"
    );
}

/// A real TCP connect from `pod` (default namespace) within 3 s.
fn tcp_connects(kc: &Path, pod: &str, ip: &str, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}");
    run({
        let mut c = kubectl(kc);
        c.args(["exec", pod, "--", "timeout", "3", "bash", "-c", &script]);
        c
    })
    .status
    .success()
}

/// A real ping from `pod` (default namespace), one packet, 1 s.
fn pings(kc: &Path, pod: &str, ip: &str) -> bool {
    run({
        let mut c = kubectl(kc);
        c.args(["exec", pod, "--", "ping", "-c", "1", "-W", "1", ip]);
        c
    })
    .status
    .success()
}

/// Applies `yaml` with kubectl; the returned undo deletes what it named.
fn apply(kc: &Path, yaml: &str, delete: &[&str]) -> impl FnMut() + use<> {
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
    let delete: Vec<String> = delete.iter().map(|d| d.to_string()).collect();
    move || {
        for what in &delete {
            run({
                let mut c = kubectl(&kc);
                c.args(["delete", "--wait=false", "--ignore-not-found"])
                    .args(what.split(' '));
                c
            });
        }
    }
}

/// A SecurityGroup CR allowing TCP 8080 from client-2 only, and a pod using
/// it (`ovn.kubernetes.io/security_groups`): everything else reaching the
/// pod is dropped by Kube-OVN's deny-all group, whose ACL no SecurityGroup
/// CR owns. The verdict names the pod's own group, the one to change.
#[test]
fn security_group_deny_all_names_the_pods_own_group() {
    let (_g, kc) = setup();
    let allowed = pod_ip(&kc, "default", "client-2");
    let yaml = format!(
        "apiVersion: kubeovn.io/v1\nkind: SecurityGroup\nmetadata: {{name: vd-sg}}\nspec:\n  ingressRules:\n  - {{ipVersion: ipv4, protocol: tcp, priority: 1, remoteType: address, remoteAddress: {allowed}/32, portRangeMin: 8080, portRangeMax: 8080, policy: allow}}\n  egressRules:\n  - {{ipVersion: ipv4, protocol: all, priority: 1, remoteType: address, remoteAddress: 0.0.0.0/0, policy: allow}}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: vd-sg-srv\n  namespace: default\n  annotations: {{ovn.kubernetes.io/security_groups: vd-sg, ovn.kubernetes.io/port_security: \"true\"}}\nspec:\n  nodeName: kube-ovn-worker2\n  containers: [{{name: app, image: busybox}}]\n"
    );
    let _undo = Undo(apply(
        &kc,
        &yaml,
        &["pod vd-sg-srv", "security-groups vd-sg"],
    ));
    let out = run({
        let mut c = kubectl(&kc);
        c.args([
            "wait",
            "--for=condition=Ready",
            "pod/vd-sg-srv",
            "--timeout=60s",
        ]);
        c
    });
    assert!(out.status.success(), "kubectl wait: {}", text(&out.stderr));
    let srv = pod_ip(&kc, "default", "vd-sg-srv");
    // the controller puts the port into the groups; wait until the allowed
    // peer is delivered and the other one is not
    let mut v = Value::Null;
    for _ in 0..50 {
        let (_, ok, _) = trace_json(&kc, &["default/client-2", &srv, "tcp", "8080"]);
        let (_, bad, _) = trace_json(&kc, &["default/client-1", &srv, "tcp", "8080"]);
        if ok["verdict"] == "delivered" && bad["verdict"] == "dropped" {
            v = bad;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(v["drop"]["port_group"], "ovn.sg.kubeovn_deny_all", "{v:#}");
    for args in [
        &["default/client-1", srv.as_str(), "tcp", "8080"][..],
        &["default/client-2", srv.as_str(), "icmp"][..],
        &["default/client-3", srv.as_str(), "udp", "53"][..],
    ] {
        let v = check(
            &kc,
            args,
            "dropped",
            "acl",
            ("SecurityGroup", "vd-sg"),
            "DROPPED",
        );
        let reason = v["drop"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("no rule of SecurityGroup vd-sg allows it")
                && reason.contains("ovn.sg.kubeovn_deny_all"),
            "{reason}"
        );
    }
    // real traffic agrees: ICMP is not among the group's rules
    assert!(
        !pings(&kc, "client-2", &srv),
        "client-2 pinged through vd-sg"
    );
    assert!(pings(&kc, "client-2", &pod_ip(&kc, "default", "web-3")));
}

/// A Vpc `spec.policyRoutes` entry with action `drop` as kube-ovn-controller
/// writes it (a logical router policy on the Vpc's router, `vendor=kube-ovn`),
/// behind a static route that would carry the packet: the policy is named.
#[test]
fn vpc_policy_route_drop_names_the_vpc_and_the_policy() {
    let (_g, kc) = setup();
    nbctl(
        &kc,
        &["lr-route-add", "vpc1", "10.99.0.0/16", "192.168.100.254"],
    );
    nbctl(
        &kc,
        &[
            "--wait=sb",
            "--",
            "--id=@p",
            "create",
            "Logical_Router_Policy",
            "priority=31000",
            "match=\"ip4.dst == 10.99.0.7\"",
            "action=drop",
            "external_ids:vendor=kube-ovn",
            "--",
            "add",
            "Logical_Router",
            "vpc1",
            "policies",
            "@p",
        ],
    );
    let _undo = Undo(|| {
        nbctl(
            &kc,
            &["lr-policy-del", "vpc1", "31000", "ip4.dst == 10.99.0.7"],
        );
        nbctl(&kc, &["--wait=sb", "lr-route-del", "vpc1", "10.99.0.0/16"]);
    });
    for proto in [&["icmp"][..], &["tcp", "80"][..], &["udp", "53"][..]] {
        let args = [&["vpc1/vpc1-pod-1", "10.99.0.7"][..], proto].concat();
        let v = check(
            &kc,
            &args,
            "dropped",
            "route_policy",
            ("Vpc", "vpc1"),
            "DROPPED",
        );
        assert_eq!(v["drop"]["stage"], "lr_in_policy", "{v:#}");
        let detail = v["responsible"]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("router policy 31000 drop ip4.dst == 10.99.0.7"),
            "{detail}"
        );
    }
    // the neighbour the route points at is not what stops it: another
    // address of the routed prefix waits for that next hop instead
    check(
        &kc,
        &["vpc1/vpc1-pod-1", "10.99.0.8", "icmp"],
        "unresolved",
        "unresolved_next_hop",
        ("Vpc", "vpc1"),
        "UNRESOLVED",
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
    // a copy of the router's ARP request is not where the packet went
    assert!(v["logical"]["outport"].is_null(), "{v:#}");
    let (_, lines) = trace_text(&kc, &["default/client-1", "10.16.0.200", "icmp"]);
    assert!(
        !lines.iter().any(|l| l.trim_start().starts_with("outport")),
        "{lines:#?}"
    );
}

/// Broadcast and multicast destinations, traced without a MAC: the trace
/// derives the group MAC (not the gateway's) and OVN floods the switch.
fn flooded_group(dst: &str, mac: &str, mac_from: &str) {
    let (_g, kc) = setup();
    let v = check(
        &kc,
        &["default/client-1", dst, "udp", "5000"],
        "flooded",
        "broadcast",
        ("Subnet", "ovn-default"),
        "FLOODED",
    );
    assert_eq!(v["destination"]["mac"], mac, "{v:#}");
    let from = v["destination"]["mac_from"].as_str().unwrap_or_default();
    assert!(from.contains(mac_from), "{from}");
    let to = v["logical"]["flooded_to"].as_array().expect("flooded_to");
    assert!(to.iter().any(|p| p == "web-3.default"), "{to:?}");
    assert!(!to.iter().any(|p| p == "client-1.default"), "{to:?}");
    assert!(v["logical"]["outport"].is_null(), "{v:#}");
}

#[test]
fn broadcast_is_flooded_to_the_switch() {
    flooded_group("255.255.255.255", "ff:ff:ff:ff:ff:ff", "broadcast");
}

#[test]
fn all_hosts_multicast_is_flooded_with_its_group_mac() {
    flooded_group("224.0.0.1", "01:00:5e:00:00:01", "RFC 1112");
}

#[test]
fn broadcast_with_an_explicit_mac_is_flooded_too() {
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
    assert_eq!(v["destination"]["mac_from"], "argument", "{v:#}");
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

/// ovn-controller stopped on web-2's node, then an NB change (`--wait=sb`):
/// its chassis has not acknowledged the SB's nb_cfg, which the warning says
/// with both numbers.
#[test]
fn controller_behind_the_sb_is_warned() {
    let (_g, kc) = setup();
    let node = node_of(&kc, "default", "web-2");
    let dst = pod_ip(&kc, "default", "web-2");
    let _heal = Undo(fault(&["stop-controller", &node]));
    nbctl(&kc, &["--wait=sb", "sync"]);
    let (_, v, err) = trace_json(&kc, &["default/client-1", &dst, "icmp"]);
    let want = format!("ovn-controller on destination node {node} has acknowledged nb_cfg");
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap_or_default();
            w.starts_with(&want) && w.contains("the SB is at")
        }),
        "{want}: {warnings:#?}\n{err}"
    );
}

/// The stale side named: with ovn-controller stopped on web-2's node, a
/// Subnet ACL that drops ICMP to web-2 reaches the SB (so ovn-trace drops)
/// but not that node's OpenFlow tables (so ofproto/trace, followed through
/// the tunnel, delivers): the warnings say the OVS side is the stale one.
#[test]
fn stale_openflow_side_is_named_when_the_destination_controller_is_stopped() {
    let (_g, kc) = setup();
    let node = node_of(&kc, "default", "web-2");
    let dst = pod_ip(&kc, "default", "web-2");
    let _heal = Undo(fault(&["stop-controller", &node]));
    let m = format!("ip4.dst == {dst} && icmp4");
    let _acl = Undo(subnet_acls(
        &kc,
        &format!(r#"[{{"direction":"to-lport","priority":1010,"match":"{m}","action":"drop"}}]"#),
        &m,
        true,
    ));
    let v = check(
        &kc,
        &["default/client-1", &dst, "icmp"],
        "dropped",
        "acl",
        ("Subnet", "ovn-default"),
        "DROPPED",
    );
    let warnings: Vec<String> = v["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(String::from))
        .collect();
    let has = |s: &str| warnings.iter().any(|w| w.contains(s));
    assert!(
        has(&format!(
            "ovn-controller on destination node {node} is not running"
        )),
        "{warnings:#?}"
    );
    assert!(
        has("ovn-trace drops the packet but ofproto/trace does not"),
        "{warnings:#?}"
    );
    assert!(
        has("ofproto/trace shows the stale OpenFlow tables"),
        "{warnings:#?}"
    );
    let segs = v["ovs"]["segments"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        segs.last().and_then(|s| s["node"].as_str()),
        Some(node.as_str()),
        "the OVS trace followed the tunnel to {node}: {segs:#?}"
    );
}

/// `ovn-appctl -t ovn-northd pause|resume` in every ovn-central pod (the
/// standby ones too, so none takes over).
fn northd_all(kc: &Path, cmd: &str) {
    let pods = jsonpath(
        kc,
        &["-n", "kube-system", "get", "pods", "-l", "app=ovn-central"],
        "{.items[*].metadata.name}",
    );
    assert!(!pods.is_empty(), "no ovn-central pods");
    for pod in pods.split_whitespace() {
        let out = run({
            let mut c = kubectl(kc);
            c.args([
                "-n",
                "kube-system",
                "exec",
                pod,
                "--",
                "ovn-appctl",
                "-t",
                "ovn-northd",
                cmd,
            ]);
            c
        });
        assert!(
            out.status.success(),
            "ovn-northd {cmd} in {pod}: {}",
            text(&out.stderr)
        );
    }
}

/// A change made while northd does not run is in the NB but not in the SB
/// ovn-trace reads: the trace still delivers (what the SB says) and warns
/// that no northd is active; once a client waited for the change
/// (`--wait=sb`, timing out here), that NB_Global.nb_cfg is ahead of the SB.
#[test]
fn trace_while_northd_is_paused_warns_that_the_sb_is_stale() {
    let (_g, kc) = setup();
    let dst = pod_ip(&kc, "default", "web-2");
    let m = format!("ip4.dst == {dst} && icmp4");
    let acl_json =
        format!(r#"[{{"direction":"to-lport","priority":1010,"match":"{m}","action":"drop"}}]"#);
    // undone in this order, also on a failed assertion: northd resumes, then
    // the ACL goes (its removal waits for northd)
    let clear: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
    northd_all(&kc, "pause");
    let _undo = Undo(|| {
        northd_all(&kc, "resume");
        if let Some(mut c) = clear.borrow_mut().take() {
            c();
        }
    });
    *clear.borrow_mut() = Some(Box::new(subnet_acls(&kc, &acl_json, &m, false)));
    let args = ["default/client-1", dst.as_str(), "icmp"];
    let (_, v, err) = trace_json(&kc, &args);
    assert_eq!(
        v["verdict"], "delivered",
        "the SB has no drop yet: {v:#}\n{err}"
    );
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap_or_default()
            .starts_with("no ovn-northd is active (")),
        "{warnings:#?}"
    );
    let (_, lines) = trace_text(&kc, &args);
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.contains("no ovn-northd is active")),
        "the warning is right under the verdict: {lines:#?}"
    );
    // a client that waits: nb_cfg goes up, nothing copies it to the SB
    let out = run({
        let mut c = ko(&kc);
        c.args(["nbctl", "--wait=sb", "--timeout=2", "sync"]);
        c
    });
    assert!(
        !out.status.success(),
        "--wait=sb returned with northd paused"
    );
    let (_, v, _) = trace_json(&kc, &args);
    let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap_or_default()
            .starts_with("northd is behind the NB: NB_Global.nb_cfg is")),
        "{warnings:#?}"
    );
}
