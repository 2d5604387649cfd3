//! The verdict classes on real `ovn-trace` outputs, one per class, captured
//! on the sandbox (OVN 23.03) by fixtures/verdict/classes-capture.sh (the
//! exact ovn-trace commands are in fixtures/verdict/commands-classes.txt),
//! and a property test of the rule the verdict rests on: no `Delivered`
//! without an output of the traced packet to a port owning the destination.

use ko_ovn::ovn_trace::{self, ControllerAction, Delivery, DropPoint, DropReason, Terminal};
use ko_ovn::ovsdb_rows::Pipeline;
use ko_ovn::verdict::outcome::{Class, Expect, classify};
use proptest::prelude::*;

fn fixture(name: &str) -> ovn_trace::OvnTrace {
    ovn_trace::parse(&ko_testkit::fixture!(&format!("verdict/class-{name}.txt")))
}

fn expect(owners: &[&str], dst: &str) -> Expect {
    Expect {
        owners: owners.iter().map(|s| s.to_string()).collect(),
        dst_ip: dst.into(),
        address_request: false,
    }
}

fn class_of(name: &str, exp: &Expect) -> (Class, Vec<Terminal>) {
    let t = fixture(name).outcome().terminals;
    (classify(&t, exp), t)
}

#[test]
fn delivered_to_the_owner() {
    let (c, t) = class_of("delivered", &expect(&["web-2.default"], "10.16.0.9"));
    assert_eq!(
        c,
        Class::Delivered {
            port: "web-2.default".into()
        },
        "{t:#?}"
    );
    // the same output to a port that does not own the address is no delivery
    let (c, _) = class_of("delivered", &expect(&["web-3.default"], "10.16.0.9"));
    assert_eq!(
        c,
        Class::WrongPort {
            port: "web-2.default".into()
        }
    );
}

#[test]
fn subnet_reject_acl_answers_with_a_tcp_reset() {
    let (c, t) = class_of("acl-reject", &expect(&["web-2.default"], "10.16.0.9"));
    let Class::Rejected { action } = c else {
        panic!("not rejected: {c:?}\n{t:#?}")
    };
    assert_eq!(action.action, "reject");
    assert_eq!(action.reply.as_deref(), Some("tcp_reset"));
    assert_eq!(action.stage.as_deref(), Some("ls_out_acl"));
    // the RST itself goes back to the sender, as a generated packet
    assert!(t.iter().any(|x| matches!(x, Terminal::Output(d)
        if d.port == "client-1.default" && d.generated_by.as_deref() == Some("tcp_reset"))));
}

#[test]
fn vip_without_backends_is_dropped_at_the_lb_stage() {
    let (c, t) = class_of("lb-empty", &expect(&[], "10.96.200.1"));
    let Class::Dropped { at: Some(d) } = c else {
        panic!("not dropped: {c:?}\n{t:#?}")
    };
    assert_eq!(d.stage.as_deref(), Some("ls_in_lb"));
    assert_eq!(d.reason, DropReason::DropAction);
}

#[test]
fn vip_without_backends_and_reject_option_is_rejected() {
    let (c, t) = class_of("lb-reject", &expect(&[], "10.96.200.1"));
    let Class::Rejected { action } = c else {
        panic!("not rejected: {c:?}\n{t:#?}")
    };
    assert_eq!(action.stage.as_deref(), Some("ls_in_lb"));
    assert_eq!(action.reply.as_deref(), Some("tcp_reset"));
}

#[test]
fn missing_vpc_gateway_is_an_unresolved_next_hop() {
    let (c, t) = class_of("vpc-gw-missing", &expect(&[], "10.1.2.3"));
    let Class::Unresolved { action, copies } = c else {
        panic!("not unresolved: {c:?}\n{t:#?}")
    };
    assert_eq!(action.action, "arp");
    assert_eq!(action.next_hop.as_deref(), Some("192.168.100.254"));
    assert_eq!(action.datapath.as_deref(), Some("vpc1"));
    assert_eq!(action.outport.as_deref(), Some("vpc1-vpc1-subnet"));
    assert!(copies.iter().any(|p| p == "vpc1-pod-2.vpc1"), "{copies:?}");
}

#[test]
fn unused_address_of_the_own_subnet_is_flooded_by_the_routers_arp() {
    let (c, t) = class_of("unused-ip", &expect(&[], "10.16.0.200"));
    let Class::Flooded {
        ports, resolving, ..
    } = c
    else {
        panic!("not flooded: {c:?}\n{t:#?}")
    };
    assert_eq!(
        resolving.and_then(|a| a.next_hop).as_deref(),
        Some("ip4.dst")
    );
    assert!(ports.len() >= 10, "{ports:?}");
    // if a port did own the address, the same events are an unresolved hop
    let (c, _) = class_of("unused-ip", &expect(&["web-9.default"], "10.16.0.200"));
    assert!(matches!(c, Class::Unresolved { .. }), "{c:?}");
}

#[test]
fn broadcast_is_flooded_through_the_multicast_group() {
    let (c, t) = class_of("broadcast", &expect(&[], "255.255.255.255"));
    let Class::Flooded { group, ports, .. } = c else {
        panic!("not flooded: {c:?}\n{t:#?}")
    };
    assert_eq!(group.as_deref(), Some("_MC_flood"));
    assert!(ports.contains(&"web-1.default".to_string()), "{ports:?}");
    assert!(!ports.contains(&"client-1.default".to_string()));
    // the copy back to the sender is omitted, and the router drops its copy
    assert!(
        t.iter()
            .any(|x| matches!(x, Terminal::Drop(d) if d.reason == DropReason::Loopback))
    );
    assert!(t.iter().any(|x| matches!(x, Terminal::Drop(d)
        if d.stage.as_deref() == Some("lr_in_ip_input"))));
}

#[test]
fn unknown_mac_is_dropped_at_l2_unknown() {
    let (c, t) = class_of("unknown-mac", &expect(&["web-2.default"], "10.16.0.9"));
    let Class::Dropped { at: Some(d) } = c else {
        panic!("not dropped: {c:?}\n{t:#?}")
    };
    assert_eq!(d.stage.as_deref(), Some("ls_in_l2_unknown"));
}

#[test]
fn controller_actions_are_recognised_by_name() {
    use ko_ovn::ovn_trace::controller_action;
    assert_eq!(
        controller_action("arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.op = 1; output; };"),
        Some("arp")
    );
    assert_eq!(
        controller_action("reg0[3] = put_dhcp_opts(offerip = 10.0.0.2);"),
        Some("put_dhcp_opts")
    );
    assert_eq!(
        controller_action("put_arp(inport, arp.spa, arp.sha);"),
        Some("put_arp")
    );
    assert_eq!(controller_action("reg0 = ip4.dst;"), None);
    assert_eq!(controller_action("arp.op = 2;"), None);
}

// ---- property: no Delivered without an output to an owner ----

fn port() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "src", "lrp", "ln"]).prop_map(String::from)
}

fn terminal() -> impl Strategy<Value = Terminal> {
    let out = (
        port(),
        prop::option::of(prop::sample::select(vec!["arp", "tcp_reset", "icmp4"])),
        any::<bool>(),
        prop::option::of(Just("_MC_flood".to_string())),
        prop::option::of(Just("localnet".to_string())),
    )
        .prop_map(|(port, generated, back, multicast, port_type)| {
            Terminal::Output(Delivery {
                datapath: Some("ls".into()),
                back_to_sender: back || port == "src",
                port,
                port_type,
                generated_by: generated.map(String::from),
                multicast,
            })
        });
    let ctl = (
        prop::sample::select(vec!["arp", "nd_ns", "reject", "tcp_reset", "put_arp"]),
        prop::sample::select(vec!["lr_in_arp_request", "ls_out_acl", "ls_in_lb"]),
        prop::option::of(prop::sample::select(vec!["ip4.dst", "10.0.0.9"])),
        prop::option::of(Just("arp".to_string())),
    )
        .prop_map(|(action, stage, next_hop, generated_by)| {
            Terminal::Controller(ControllerAction {
                action: action.into(),
                reply: None,
                datapath: Some("r".into()),
                pipeline: Some(Pipeline::Ingress),
                stage: Some(stage.into()),
                match_expr: None,
                uuid: None,
                generated_by,
                outport: Some("lrp".into()),
                next_hop: next_hop.map(String::from),
                text: String::new(),
            })
        });
    let drop = prop::sample::select(vec![
        DropReason::DropAction,
        DropReason::NoMatch,
        DropReason::Loopback,
    ])
    .prop_map(|reason| {
        Terminal::Drop(DropPoint {
            datapath: None,
            pipeline: None,
            table: None,
            stage: Some("ls_in_acl".into()),
            match_expr: None,
            priority: None,
            uuid: None,
            reason,
        })
    });
    prop_oneof![out, ctl, drop]
}

proptest! {
    #[test]
    fn delivered_only_with_an_output_to_an_owner(
        terminals in prop::collection::vec(terminal(), 0..8),
        owners in prop::collection::vec(port(), 0..3),
        address_request in any::<bool>(),
    ) {
        let exp = Expect { owners: owners.clone(), dst_ip: "10.0.0.9".into(), address_request };
        if let Class::Delivered { port } = classify(&terminals, &exp) {
            let own_output = |d: &Delivery| d.generated_by.is_none() && d.port == port;
            let outputs: Vec<&Delivery> = terminals.iter().filter_map(|t| match t {
                Terminal::Output(d) if own_output(d) => Some(d),
                _ => None,
            }).collect();
            prop_assert!(!outputs.is_empty(), "delivered to {port} without an output there");
            let to_owner = owners.contains(&port);
            // the two documented exceptions: the ARP/ND responder answering
            // for an owned address, and the underlay behind a localnet port
            // for an address no logical port owns (one output to that port
            // that qualifies is enough: a trace may output there more than once)
            let responder = address_request
                && !owners.is_empty()
                && outputs.iter().any(|d| d.back_to_sender && d.multicast.is_none());
            let underlay = owners.is_empty()
                && outputs.iter().any(|d| d.port_type.as_deref() == Some("localnet"));
            prop_assert!(to_owner || responder || underlay, "{port} owns nothing: {terminals:#?}");
        }
    }
}
