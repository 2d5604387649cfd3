//! Verdicts built from real captures (ovn/tests/fixtures/verdict/, commands
//! in commands.txt): pod-a (node n1) → pod-b (n2), pod-c (n1, protected by
//! NetworkPolicy default/deny-a), a Service VIP 10.96.0.10:80.

use super::nb::{NbSnapshot, SbSnapshot};
use super::ovs::{self, OvsExit};
use super::*;
use crate::{ofproto, ovn_trace};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/verdict/", $name))
    };
}

fn nb() -> NbSnapshot {
    NbSnapshot::parse(fixture!("nb-snapshot.json")).unwrap()
}
fn sb() -> SbSnapshot {
    SbSnapshot::parse(fixture!("sb-snapshot.json")).unwrap()
}

fn source() -> Source {
    Source {
        kind: "pod".into(),
        name: "default/pod-a".into(),
        node: "n1".into(),
        logical_switch: "ovn-default".into(),
        logical_port: "pod-a.default".into(),
        ip: "10.16.0.10".into(),
        mac: "0a:58:0a:10:00:0a".into(),
    }
}

fn dest(ip: &str, protocol: &str, port: Option<u16>) -> Destination {
    Destination {
        ip: ip.into(),
        mac: "0a:58:0a:10:00:0b".into(),
        mac_from: "test".into(),
        protocol: protocol.into(),
        port,
        arp: None,
    }
}

fn segment(node: &str, text: &str, ifaces: &str) -> ovs::OvsSegment {
    let t = ofproto::parse(text);
    let i = ovs::parse_interfaces(ifaces).unwrap();
    ovs::segment(node, "flow", &t, &i)
}

#[test]
fn only_br_int_interfaces_are_kept() {
    let i = ovs::parse_interfaces(fixture!("ovs-interfaces-n1.json")).unwrap();
    assert!(
        i.iter()
            .any(|x| x.iface_id.as_deref() == Some("pod-a.default"))
    );
    assert!(i.iter().any(|x| x.iface_type == "geneve"));
    assert!(
        !i.iter().any(|x| x.name == "eth0" || x.name == "br-phy"),
        "{i:?}"
    );
}

#[test]
fn cross_node_delivered_with_tunnel() {
    let (nb, sb) = (nb(), sb());
    let t = ovn_trace::parse(fixture!("ovn-trace-cross-node.txt"));
    let first = segment(
        "n1",
        fixture!("ofproto-cross-node.txt"),
        fixture!("ovs-interfaces-n1.json"),
    );
    match &first.exit {
        OvsExit::Tunnel {
            ofport,
            remote_ip,
            metadata,
            ..
        } => {
            assert_eq!(ofport, "1");
            assert_eq!(remote_ip.as_deref(), Some("172.31.77.12"));
            let m = metadata.as_ref().unwrap();
            assert_eq!(m.tun_id, "0x2");
            assert_eq!(m.tun_metadata0.as_deref(), Some("0x20004"));
        }
        other => panic!("expected a tunnel exit, got {other:?}"),
    }
    let second = segment(
        "n2",
        fixture!("ofproto-cross-node-remote.txt"),
        fixture!("ovs-interfaces-n2.json"),
    );
    match &second.exit {
        OvsExit::Port { logical_port, .. } => {
            assert_eq!(logical_port.as_deref(), Some("pod-b.default"))
        }
        other => panic!("expected a port exit, got {other:?}"),
    }
    let r = build(Inputs {
        source: source(),
        destination: dest("10.16.0.11", "tcp", Some(80)),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: Some(&sb),
        lb: None,
        service: None,
        ovs: Some(vec![first, second]),
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Delivered, "{r:#?}");
    assert_eq!(r.logical.outport.as_deref(), Some("pod-b.default"));
    assert_eq!(
        r.logical.outport_owner.as_deref(),
        Some("pod default/pod-b")
    );
    let segs = &r.ovs.as_ref().unwrap().segments;
    assert!(matches!(&segs[0].exit, OvsExit::Tunnel { remote_node: Some(n), .. } if n == "n2"));
    // cookies were mapped to logical stages
    assert!(
        segs[0]
            .hops
            .iter()
            .any(|h| h.stage.as_deref() == Some("ls_in_l2_lkup"))
    );
    assert!(r.summary.contains("n1 → tunnel → n2"), "{}", r.summary);
    let acl = r
        .logical
        .stages
        .iter()
        .find(|s| s.stage == "ls_out_acl")
        .unwrap();
    // explained by the stage catalogue itself
    assert_eq!(
        acl.explanation.as_deref(),
        crate::catalog::stage("ls_out_acl").map(|s| s.summary)
    );
    assert!(acl.explanation.is_some());
    assert!(r.drop.is_none());
    // the stable JSON field names
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["verdict"], "delivered");
    assert_eq!(v["logical"]["outport"], "pod-b.default");
    assert!(v["logical"]["stages"].as_array().unwrap().len() > 5);
}

#[test]
fn network_policy_drop_names_the_policy() {
    let (nb, sb) = (nb(), sb());
    let t = ovn_trace::parse(fixture!("ovn-trace-np-denied.txt"));
    let seg = segment(
        "n1",
        fixture!("ofproto-np-denied.txt"),
        fixture!("ovs-interfaces-n1.json"),
    );
    assert!(matches!(&seg.exit, OvsExit::Dropped { cookie: Some(c), .. } if c == "7b3bc022"));
    let r = build(Inputs {
        source: source(),
        destination: dest("10.16.0.12", "tcp", Some(80)),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: Some(&sb),
        lb: None,
        service: None,
        ovs: Some(vec![seg]),
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Dropped);
    let d = r.drop.as_ref().unwrap();
    assert_eq!(d.layer, "logical");
    assert_eq!(d.stage.as_deref(), Some("ls_out_acl"));
    assert_eq!(d.table, Some(4));
    assert_eq!(d.cause, DropCause::Acl);
    assert_eq!(d.policy.as_deref(), Some("default/deny-a"));
    assert_eq!(d.policy_kind, Some(nb::PolicyKind::NetworkPolicy));
    assert_eq!(
        d.acl.as_ref().unwrap().name,
        "np/deny-a.default/ingress/IPv4/0"
    );
    // the OpenFlow rule that dropped it names the same ACL and policy
    let ovs = &r.ovs.as_ref().unwrap().segments[0];
    let dropping = ovs
        .hops
        .iter()
        .find(|h| h.cookie.as_deref() == Some("7b3bc022"))
        .unwrap();
    assert_eq!(
        dropping.object.as_deref(),
        Some("ACL np/deny-a.default/ingress/IPv4/0 (NetworkPolicy default/deny-a)")
    );
    assert!(
        r.summary.contains("NetworkPolicy default/deny-a"),
        "{}",
        r.summary
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // without SB rows the port group in the match still names the policy
    let r2 = build(Inputs {
        source: source(),
        destination: dest("10.16.0.12", "tcp", Some(80)),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r2.drop.unwrap().policy.as_deref(), Some("default/deny-a"));
}

#[test]
fn service_goes_through_load_balancer() {
    let nb = nb();
    let t = ovn_trace::parse(fixture!("ovn-trace-service.txt"));
    let (lb, vip, backends) = nb.vip("10.96.0.10".parse().unwrap(), 80, "tcp").unwrap();
    let r = build(Inputs {
        source: source(),
        destination: dest("10.96.0.10", "tcp", Some(80)),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: None,
        lb: Some(LbInfo {
            name: lb.name.clone(),
            vip,
            backends,
            backend: Some("10.16.0.11:80".into()),
        }),
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Delivered, "{r:#?}");
    assert_eq!(r.logical.outport.as_deref(), Some("pod-b.default"));
    assert_eq!(
        r.lb.as_ref().unwrap().backend.as_deref(),
        Some("10.16.0.11:80")
    );
    assert!(r.summary.contains("backend 10.16.0.11:80"));
    let seg = segment(
        "n1",
        fixture!("ofproto-service.txt"),
        fixture!("ovs-interfaces-n1.json"),
    );
    assert!(matches!(seg.exit, OvsExit::Group { .. }), "{:#?}", seg);
}

#[test]
fn arp_request_is_answered_by_ovn() {
    let t = ovn_trace::parse(fixture!("ovn-trace-arp-request.txt"));
    let mut d = dest("10.16.0.11", "arp", None);
    d.arp = Some("request".into());
    let r = build(Inputs {
        source: source(),
        destination: d,
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb()),
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Delivered);
    assert_eq!(r.logical.outport.as_deref(), Some("pod-a.default"));
    assert!(r.summary.contains("answers it itself"), "{}", r.summary);
}

#[test]
fn no_route_outside_the_cluster() {
    let t = ovn_trace::parse(fixture!("ovn-trace-outside-cidr.txt"));
    let r = build(Inputs {
        source: source(),
        destination: dest("172.31.99.9", "icmp", None),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb()),
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Dropped);
    let d = r.drop.unwrap();
    assert_eq!(d.cause, DropCause::NoRoute);
    assert_eq!(d.stage.as_deref(), Some("lr_in_ip_routing"));
    assert_eq!(d.datapath.as_deref(), Some("ovn-cluster"));
}

#[test]
fn ovn_trace_errors_are_an_error_verdict() {
    let t = ovn_trace::parse(fixture!("ovn-trace-error.txt"));
    let r = build(Inputs {
        source: source(),
        destination: dest("10.16.0.11", "tcp", Some(80)),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: None,
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r.error.is_some());
    let failed = build(Inputs {
        source: source(),
        destination: dest("10.16.0.11", "tcp", Some(80)),
        ovn_trace: &ovn_trace::parse(""),
        ovn_trace_failure: Some("ovn-trace exited with 134: assertion in_key failed".into()),
        nb: None,
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(failed.verdict, Verdict::Error);
    assert!(failed.summary.contains("assertion"));
    let unknown = build(Inputs {
        source: source(),
        destination: dest("10.16.0.11", "icmp", None),
        ovn_trace: &ovn_trace::parse(fixture!("ovn-trace-unknown-datapath.txt")),
        ovn_trace_failure: None,
        nb: None,
        sb: None,
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(unknown.verdict, Verdict::Error);
    assert!(unknown.error.unwrap().contains("no-such-switch"));
}

#[test]
fn continuation_flow_from_a_real_final_flow_keeps_the_packet() {
    let t = ofproto::parse(fixture!("ofproto-cross-node.txt"));
    let packet = ovs::final_packet(&t).unwrap();
    let tun = crate::microflow::TunnelMetadata {
        tun_id: "0x2".into(),
        tun_src: None,
        tun_dst: None,
        tun_metadata0: Some("0x20004".into()),
    };
    let flow = crate::microflow::tunnel_continuation_flow(1, &tun, &packet);
    assert!(
        flow.starts_with("in_port=1,tun_id=0x2,tun_metadata0=0x20004,"),
        "{flow}"
    );
    assert!(flow.contains("nw_dst=10.16.0.11"));
    assert!(
        !flow.contains("reg15") && !flow.contains("metadata=0x2") && !flow.contains("recirc_id")
    );
}

#[test]
fn router_hop_output_nested_in_a_clone_is_found() {
    // sandbox capture: pod -> node IP through ovn-cluster and join (patch
    // ports are clone()s, so the final output is printed nested)
    let t = ofproto::parse(fixture!("ofproto-router-to-node.txt"));
    let seg = ovs::segment("n1", "flow", &t, &[]);
    assert!(
        matches!(&seg.exit, OvsExit::Port { ofport, .. } if ofport == "1"),
        "{:#?}",
        seg.exit
    );
}

/// Sandbox `trace`: default/client-1 (node kube-ovn-control-plane) pings the
/// external host 172.18.0.200; captures named routed-* / *-routed-external.
#[test]
fn routed_packet_names_static_route_and_reroute_policy() {
    let nb = NbSnapshot::parse(fixture!("routed-nb-snapshot.json")).unwrap();
    let sb = SbSnapshot::parse(fixture!("routed-sb-snapshot.json")).unwrap();
    assert!(nb.routers.iter().any(|r| r.name == "ovn-cluster"));
    assert!(nb.nats.is_empty(), "the sandbox has no NAT rules");
    let t = ovn_trace::parse(fixture!("ovn-trace-routed-external.txt"));
    let mut src = source();
    src.name = "default/client-1".into();
    src.logical_port = "client-1.default".into();
    let r = build(Inputs {
        source: src,
        destination: dest("172.18.0.200", "icmp", None),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: Some(&sb),
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Delivered, "{r:#?}");
    let routing = r.routing.as_ref().expect("routing");
    let route = routing.route.as_ref().expect("static route");
    assert_eq!(route.prefix, "0.0.0.0/0");
    assert_eq!(route.nexthop, "100.64.0.1");
    assert_eq!(route.router.as_deref(), Some("ovn-cluster"));
    assert_eq!(route.table, "main");
    assert!(route.uuid.starts_with("7ecfcefd"), "{route:?}");
    let policy = routing.policy.as_ref().expect("router policy");
    assert_eq!(policy.priority, 29000);
    assert_eq!(policy.action, "reroute");
    assert_eq!(
        policy.match_expr,
        "ip4.src == $ovn.default.kube.ovn.control.plane_ip4"
    );
    assert_eq!(policy.nexthops, ["100.64.0.2"]);
    assert_eq!(policy.router.as_deref(), Some("ovn-cluster"));
    let purpose = policy.purpose.as_deref().unwrap_or_default();
    assert!(
        purpose.contains("distributed gateway of subnet ovn-default")
            && purpose.contains("kube-ovn-control-plane"),
        "{purpose}"
    );
    assert!(routing.nat.is_empty());
    let stage = |name: &str| {
        r.logical
            .stages
            .iter()
            .find(|s| s.stage == name)
            .and_then(|s| s.object.clone())
            .unwrap_or_default()
    };
    assert!(
        stage("lr_in_ip_routing")
            .starts_with("static route 0.0.0.0/0 via 100.64.0.1 (router ovn-cluster, table main)"),
        "{}",
        stage("lr_in_ip_routing")
    );
    assert!(
        stage("lr_in_policy").starts_with(
            "router policy 29000 reroute ip4.src == $ovn.default.kube.ovn.control.plane_ip4 → 100.64.0.2 (router ovn-cluster)"
        ),
        "{}",
        stage("lr_in_policy")
    );
    let route = routing.route.as_ref().expect("route");
    assert_eq!(
        (
            route.prefix.as_str(),
            route.nexthop.as_str(),
            route.router.as_deref(),
            route.table.as_str()
        ),
        ("0.0.0.0/0", "100.64.0.1", Some("ovn-cluster"), "main")
    );
    let policy = routing.policy.as_ref().expect("policy");
    assert_eq!(
        (
            policy.priority,
            policy.action.as_str(),
            policy.nexthops.clone(),
            policy.router.as_deref()
        ),
        (
            29000,
            "reroute",
            vec!["100.64.0.2".to_string()],
            Some("ovn-cluster")
        )
    );
}

#[test]
fn nb_snapshot_reads_the_routing_tables() {
    let nb = NbSnapshot::parse(fixture!("routed-nb-snapshot.json")).unwrap();
    // 31000 allow per subnet CIDR, 30000 per node IP, 29000 per node of the
    // distributed-gateway subnet: all on ovn-cluster
    let by_prio = |p: i64| {
        nb.router_policies
            .iter()
            .filter(|x| x.priority == p)
            .count()
    };
    assert!(by_prio(31000) >= 2 && by_prio(30000) >= 1 && by_prio(29000) >= 1);
    assert!(
        nb.router_policies
            .iter()
            .all(|p| nb.router_of(&p.uuid) == Some("ovn-cluster"))
    );
    let allow = nb
        .router_policies
        .iter()
        .find(|p| p.priority == 31000)
        .unwrap();
    assert!(allow.nexthops.is_empty());
    // an older five-table capture still parses, with no routing rows
    let old = super::tests::nb();
    assert!(old.routers.is_empty() && old.static_routes.is_empty());
}

/// nat-capture.sh: p2 (10.0.0.11) on gateway router lr1 to 192.0.2.10, out
/// through the default route, policy 1000 allow and snat 10.0.0.0/24.
#[test]
fn snat_on_a_gateway_router_is_named() {
    let nb = NbSnapshot::parse(fixture!("nat-nb-snapshot.json")).unwrap();
    let sb = SbSnapshot::parse(fixture!("nat-sb-snapshot.json")).unwrap();
    let t = ovn_trace::parse(fixture!("ovn-trace-nat-snat.txt"));
    let mut src = source();
    src.logical_switch = "ls1".into();
    src.logical_port = "p2".into();
    let r = build(Inputs {
        source: src,
        destination: dest("192.0.2.10", "icmp", None),
        ovn_trace: &t,
        ovn_trace_failure: None,
        nb: Some(&nb),
        sb: Some(&sb),
        lb: None,
        service: None,
        ovs: None,
        warnings: vec![],
    });
    assert_eq!(r.verdict, Verdict::Delivered, "{r:#?}");
    assert_eq!(r.logical.outport.as_deref(), Some("upstream"));
    let routing = r.routing.as_ref().expect("routing");
    let route = routing.route.as_ref().expect("route");
    assert_eq!(
        (route.prefix.as_str(), route.nexthop.as_str()),
        ("0.0.0.0/0", "172.20.0.254")
    );
    assert_eq!(route.router.as_deref(), Some("lr1"));
    // not a Kube-OVN row: no purpose is invented
    assert_eq!(route.purpose, None);
    let policy = routing.policy.as_ref().expect("policy");
    assert_eq!((policy.priority, policy.action.as_str()), (1000, "allow"));
    assert_eq!(policy.purpose, None);
    assert_eq!(routing.nat.len(), 1, "{:#?}", routing.nat);
    let nat = &routing.nat[0];
    assert_eq!(nat.nat_type, "snat");
    assert_eq!(nat.logical_ip, "10.0.0.0/24");
    assert_eq!(nat.external_ip, "172.20.0.100");
    assert_eq!(nat.router.as_deref(), Some("lr1"));
    assert_eq!(nat.stage, "lr_out_snat");
    let snat_stage = r
        .logical
        .stages
        .iter()
        .find(|s| s.stage == "lr_out_snat")
        .and_then(|s| s.object.as_deref());
    assert_eq!(
        snat_stage,
        Some("NAT snat 10.0.0.0/24 → 172.20.0.100 (router lr1)")
    );
    let route = routing.route.as_ref().expect("route");
    assert_eq!(
        (
            route.prefix.as_str(),
            route.nexthop.as_str(),
            route.router.as_deref(),
            route.table.as_str()
        ),
        ("0.0.0.0/0", "172.20.0.254", Some("lr1"), "main")
    );
    let policy = routing.policy.as_ref().expect("policy");
    assert_eq!((policy.priority, policy.action.as_str()), (1000, "allow"));
    let nat: Vec<(&str, &str, &str)> = routing
        .nat
        .iter()
        .map(|n| {
            (
                n.nat_type.as_str(),
                n.logical_ip.as_str(),
                n.external_ip.as_str(),
            )
        })
        .collect();
    assert_eq!(nat, [("snat", "10.0.0.0/24", "172.20.0.100")]);
}

#[test]
fn kube_ovn_policies_say_what_they_are_for() {
    let nb = NbSnapshot::parse(fixture!("routed-nb-snapshot.json")).unwrap();
    let purpose = |prio: i64, key: &str, val: &str| {
        let p = nb
            .router_policies
            .iter()
            .find(|p| p.priority == prio && p.external_ids.get(key).is_some_and(|v| v == val))
            .unwrap_or_else(|| panic!("no {prio} policy with {key}={val}"));
        match routing::object_of("lr_in_policy", &p.uuid[..8], &nb) {
            Some(routing::RouterObject::Policy(r)) => r.purpose.unwrap_or_default(),
            _ => panic!("policy {} not found by its stage-hint", p.uuid),
        }
    };
    assert!(purpose(31000, "subnet", "join").contains("CIDR of subnet join"));
    assert!(
        purpose(30000, "node", "kube-ovn-worker").contains("IP of node kube-ovn-worker"),
        "{}",
        purpose(30000, "node", "kube-ovn-worker")
    );
    assert!(purpose(29000, "node", "kube-ovn-worker2").contains("distributed gateway"));
}

/// A reply dropped by a from-lport Subnet ACL on OVN 25.03: the last rule
/// (ls_in_acl_action, which only clears registers) neither outputs nor
/// resubmits, and no rule says `drop`; the drop is named by that rule.
#[test]
fn an_implicit_openflow_drop_is_named_by_the_last_rule_reached() {
    let text = ko_testkit::fixture!("verdict/ofproto-reply-acl-drop.txt");
    let seg = ovs::segment("n2", "flow", &ofproto::parse(&text), &[]);
    match &seg.exit {
        ovs::OvsExit::Dropped {
            table,
            cookie,
            match_expr,
            ..
        } => {
            assert_eq!(*table, Some(18), "{seg:#?}");
            assert_eq!(cookie.as_deref(), Some("6e5370c8"), "{seg:#?}");
            assert!(
                match_expr
                    .as_deref()
                    .is_some_and(|m| m.starts_with("reg8=0x20000/0x20000")),
                "{match_expr:?}"
            );
        }
        other => panic!("not a drop: {other:?}"),
    }
}

/// The receiving node's flow for a UDP packet: OVS prints its ports as
/// `tp_src`/`tp_dst`, which its own flow parser takes for TCP ports only.
#[test]
fn a_udp_packet_continues_through_the_tunnel_with_udp_ports() {
    let text = ko_testkit::fixture!("verdict/ofproto-udp-cross-node.txt");
    let t = ofproto::parse(&text);
    let packet = t
        .passes
        .iter()
        .rev()
        .find_map(|p| p.final_flow.clone())
        .expect("a Final flow line");
    assert!(packet.contains("tp_src=30000"), "{packet}");
    let md = crate::microflow::TunnelMetadata {
        tun_id: "0x2".into(),
        tun_src: Some("172.18.0.2".into()),
        tun_dst: Some("172.18.0.4".into()),
        tun_metadata0: Some("0x50009".into()),
    };
    let flow = crate::microflow::tunnel_continuation_flow(2, &md, &packet);
    assert!(
        flow.contains(",udp,") && flow.ends_with("udp_src=30000,udp_dst=53"),
        "{flow}"
    );
    assert!(!flow.contains("tp_"), "{flow}");
}

fn anp_inputs<'a>(
    t: &'a ovn_trace::OvnTrace,
    nb: &'a NbSnapshot,
    sb: &'a SbSnapshot,
) -> Inputs<'a> {
    let seg = segment(
        "kube-ovn-worker",
        fixture!("anp-ofproto.txt"),
        fixture!("anp-ovs-interfaces.json"),
    );
    Inputs {
        source: Source {
            name: "cap-blue/blue".into(),
            logical_port: "blue.cap-blue".into(),
            ..source()
        },
        destination: dest("10.16.0.59", "icmp", None),
        ovn_trace: t,
        ovn_trace_failure: None,
        nb: Some(nb),
        sb: Some(sb),
        lb: None,
        service: None,
        ovs: Some(vec![seg]),
        warnings: vec![],
    }
}

/// The capture's BaselineAdminNetworkPolicy `default` and its ACL, as the drop names them.
fn assert_names_the_baseline(d: &DropInfo) {
    assert_eq!(
        d.policy_kind,
        Some(nb::PolicyKind::BaselineAdminNetworkPolicy)
    );
    assert_eq!(d.policy.as_deref(), Some("default"));
    assert_eq!(d.acl.as_ref().unwrap().name, "banp/default/ingress/IPv4/0");
}

/// OVN 25.03 with Kube-OVN's admin policies (anp-capture.sh): an
/// AdminNetworkPolicy passes (tier 1), no NetworkPolicy decides (tier 2), the
/// BaselineAdminNetworkPolicy drops (tier 3). The trace names the baseline and
/// its rule, and shows the Pass on the way.
#[test]
fn a_baseline_admin_policy_drop_is_named_after_an_admin_pass() {
    let nb = NbSnapshot::parse(fixture!("anp-nb-snapshot.json")).unwrap();
    let sb = SbSnapshot::parse(fixture!("anp-sb-snapshot.json")).unwrap();
    let t = ovn_trace::parse(fixture!("anp-ovn-trace-after.txt"));
    let r = build(anp_inputs(&t, &nb, &sb));
    assert_eq!(r.verdict, Verdict::Dropped);
    let d = r.drop.as_ref().unwrap();
    assert_eq!(d.layer, "logical");
    assert_names_the_baseline(d);
    assert!(
        d.reason
            .starts_with("BaselineAdminNetworkPolicy default spec.ingress[0] dropped it"),
        "{}",
        d.reason
    );
    let pass = r
        .logical
        .stages
        .iter()
        .find(|s| s.priority == Some(30000))
        .and_then(|s| s.object.clone());
    assert_eq!(
        pass.as_deref()
            .map(|o| o.split(':').next().unwrap_or_default()),
        Some("ACL anp/red-guard/ingress/IPv4/0 (AdminNetworkPolicy red-guard spec.ingress[0])"),
        "{:#?}",
        r.logical.stages
    );
}

/// The same drop while the policies propagate: ovn-trace still read the SB
/// from before them (anp-ovn-trace-before.txt delivers), the node's OpenFlow
/// tables already drop. OVN >= 24.03 drops in the generic ls_out_acl_action
/// flow; the ACL that decided is the eval flow of that node's trace that set
/// the drop bit, so the OpenFlow drop still names the baseline.
#[test]
fn an_openflow_acl_drop_names_the_acl_whose_eval_flow_set_the_bit() {
    let nb = NbSnapshot::parse(fixture!("anp-nb-snapshot.json")).unwrap();
    let sb = SbSnapshot::parse(fixture!("anp-sb-snapshot.json")).unwrap();
    let t = ovn_trace::parse(fixture!("anp-ovn-trace-before.txt"));
    let r = build(anp_inputs(&t, &nb, &sb));
    assert_eq!(r.verdict, Verdict::Dropped);
    let d = r.drop.as_ref().unwrap();
    assert_eq!(d.layer, "openflow");
    assert_eq!(d.stage.as_deref(), Some("ls_out_acl_action"));
    assert_names_the_baseline(d);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("ovn-trace delivers")),
        "{:?}",
        r.warnings
    );
}

/// A trace is pinned on NB rows read before it ran: when its hops name an ACL
/// or a route the snapshot lacks (applied meanwhile), the rows are read again;
/// when they name only known rows (or switch ports, which are read in part),
/// they are not.
#[test]
fn a_snapshot_older_than_the_trace_is_noticed_and_only_then() {
    let sb = SbSnapshot::parse(fixture!("anp-sb-snapshot.json")).unwrap();
    let t = ovn_trace::parse(fixture!("anp-ovn-trace-after.txt"));
    let nb = NbSnapshot::parse(fixture!("anp-nb-snapshot.json")).unwrap();
    assert!(!nb.lacks_rows_of(&t, Some(&sb)));
    // the same NB before the baseline policy existed
    let mut before = nb.clone();
    before.acls.retain(|a| !a.name.starts_with("banp/"));
    before.port_groups.retain(|p| p.name != "default");
    assert!(before.lacks_rows_of(&t, Some(&sb)));
    // a routed trace: the default route and the reroute policy are known
    let rnb = NbSnapshot::parse(fixture!("routed-nb-snapshot.json")).unwrap();
    let rsb = SbSnapshot::parse(fixture!("routed-sb-snapshot.json")).unwrap();
    let rt = ovn_trace::parse(fixture!("ovn-trace-routed-external.txt"));
    assert!(!rnb.lacks_rows_of(&rt, Some(&rsb)));
    let mut no_routes = rnb.clone();
    no_routes.static_routes.clear();
    no_routes.router_policies.clear();
    assert!(no_routes.lacks_rows_of(&rt, Some(&rsb)));
}
