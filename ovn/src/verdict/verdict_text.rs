//! Turns an [`outcome::Class`] into the report's verdict, cause, responsible
//! object and the words of the first line.

use super::outcome::Class;
use super::{
    DropCause, DropInfo, Inputs, Logical, NextHop, Responsible, TraceReport, Verdict,
    logical_drop_info, owner_of_port,
};
use crate::ovn_trace::{ControllerAction, DropReason};

pub(super) fn apply(
    report: &mut TraceReport,
    logical: &mut Logical,
    class: Class,
    ovs_drop: Option<DropInfo>,
    inp: &Inputs<'_>,
    warnings: &mut Vec<String>,
) {
    match class {
        Class::Delivered { port } => delivered(report, logical, port, ovs_drop, inp, warnings),
        Class::Rejected { action } => rejected(report, &action, inp),
        Class::Unresolved { action, copies } => unresolved(report, &action, copies, inp),
        Class::Flooded {
            group,
            ports,
            resolving,
        } => flooded(report, logical, group, ports, resolving, inp),
        Class::WrongPort { port } => {
            report.verdict = Verdict::Dropped;
            report.cause = Some(DropCause::WrongPort);
            let owner = inp
                .nb
                .and_then(|nb| owner_of_port(nb, &port))
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            report.drop = Some(reasoned(
                DropCause::WrongPort,
                format!(
                    "OVN sends it to {port}{owner} (the owner of MAC {}), which does not have IP {}: its stack discards it",
                    inp.destination.mac, inp.destination.ip
                ),
            ));
            logical.outport = Some(port);
        }
        Class::Dropped { at } => {
            report.verdict = Verdict::Dropped;
            let info = at.as_ref().map(|d| logical_drop_info(d, inp));
            match (info, ovs_drop) {
                (Some(mut d), _)
                    if at
                        .as_ref()
                        .is_some_and(|p| p.reason == DropReason::Loopback)
                        && inp.destination.ip == inp.source.ip =>
                {
                    d.reason = format!(
                        "the destination is the sender itself ({}): OVN never sends a packet back out of the port it came in on; the pod's own kernel answers its own address before anything reaches OVN",
                        inp.source.logical_port
                    );
                    d.cause = DropCause::Other;
                    report.cause = Some(d.cause);
                    report.drop = Some(d);
                }
                (Some(mut d), ovs) => {
                    if ovs.is_none() && inp.ovs.as_ref().is_some_and(|s| !s.is_empty()) {
                        warnings.push("ovn-trace drops the packet but ofproto/trace does not: the OpenFlow tables on the node may be stale (is ovn-controller there running and caught up? see the other warnings) or conntrack state differs".into());
                    }
                    report.cause = Some(d.cause);
                    report.responsible = responsible_of_drop(&d, inp);
                    if d.cause == DropCause::RoutePolicy {
                        route_policy_drop(report, &mut d);
                    }
                    report.drop = Some(d);
                }
                (None, Some(d)) => {
                    report.cause = Some(d.cause);
                    report.drop = Some(d);
                }
                (None, None) => {
                    report.cause = Some(DropCause::Other);
                }
            }
        }
        Class::Nothing => match ovs_drop {
            Some(d) => {
                report.verdict = Verdict::Dropped;
                report.cause = Some(d.cause);
                report.drop = Some(d);
            }
            None => report.verdict = Verdict::Error,
        },
    }
    service_without_vip(report, inp);
    // ovn-trace's last output may be a packet OVN made (an ARP/ND request's
    // flood copy, a reject's reply): that is not where the traced packet went
    if let Some(p) = &logical.outport
        && report.verdict != Verdict::Delivered
        && !report.terminals.iter().any(|t| {
            matches!(t, crate::ovn_trace::Terminal::Output(d) if d.generated_by.is_none() && d.port == *p)
        })
    {
        logical.outport = None;
        logical.outport_owner = None;
    }
}

/// A DropInfo that names only a cause and a reason (no logical flow).
fn reasoned(cause: DropCause, reason: String) -> DropInfo {
    DropInfo {
        layer: "logical".into(),
        datapath: None,
        pipeline: None,
        table: None,
        stage: None,
        match_expr: None,
        priority: None,
        flow: None,
        cause,
        reason,
        policy: None,
        policy_kind: None,
        port_group: None,
        acl: None,
        node: None,
    }
}

fn delivered(
    report: &mut TraceReport,
    logical: &mut Logical,
    port: String,
    ovs_drop: Option<DropInfo>,
    inp: &Inputs<'_>,
    warnings: &mut Vec<String>,
) {
    report.verdict = Verdict::Delivered;
    logical.outport_owner = inp.nb.and_then(|nb| owner_of_port(nb, &port));
    logical.outport = Some(port.clone());
    let vif = inp
        .nb
        .and_then(|nb| nb.lsp(&port))
        .is_some_and(|l| l.port_type.is_empty());
    let unbound = vif
        && port != inp.source.logical_port
        && inp
            .sb
            .and_then(|sb| sb.bindings.get(&port))
            .is_some_and(Option::is_none);
    if unbound {
        let pod = logical.outport_owner.clone();
        report.verdict = Verdict::Dropped;
        report.cause = Some(DropCause::UnboundPort);
        report.responsible = Some(Responsible {
            kind: "LogicalSwitchPort".into(),
            name: port.clone(),
            detail: pod.clone(),
        });
        report.drop = Some(reasoned(
            DropCause::UnboundPort,
            format!(
                "logical port {port}{} is bound to no chassis (SB Port_Binding.chassis is empty): no ovn-controller has claimed it, so no node can deliver to it; check its OVS interface's external_ids:iface-id on the pod's node and that ovn-controller there runs",
                pod.map(|p| format!(" ({p})")).unwrap_or_default()
            ),
        ));
        return;
    }
    if let Some(d) = ovs_drop {
        warnings.push(
            "ovn-trace delivers the packet but ofproto/trace drops it on the node: the drop below is from the OpenFlow tables".into(),
        );
        report.verdict = Verdict::Dropped;
        report.cause = Some(d.cause);
        report.drop = Some(d);
    }
}

/// `TCP RST`, `ICMP unreachable`, ... from the action and the packet it built.
pub(super) fn reply_words(a: &ControllerAction, v6: bool) -> String {
    let built = a.reply.as_deref().unwrap_or(a.action.as_str());
    match built {
        "tcp_reset" => "a TCP RST".into(),
        "sctp_abort" => "an SCTP ABORT".into(),
        "icmp4" | "icmp4_error" | "icmp6" | "icmp6_error" => {
            if a.match_expr.as_deref().is_some_and(|m| m.contains("ttl")) {
                "an ICMP time exceeded".into()
            } else {
                "an ICMP unreachable".into()
            }
        }
        "reject" if v6 => "a TCP RST or ICMPv6 unreachable".into(),
        "reject" => "a TCP RST or ICMP unreachable".into(),
        other => format!("a {other} packet"),
    }
}

fn rejected(report: &mut TraceReport, a: &ControllerAction, inp: &Inputs<'_>) {
    report.verdict = Verdict::Rejected;
    let v6 = inp.destination.ip.contains(':');
    report.reply = Some(reply_words(a, v6));
    let stage = a.stage.clone().unwrap_or_default();
    let point = crate::ovn_trace::DropPoint {
        datapath: a.datapath.clone(),
        pipeline: a.pipeline,
        table: None,
        stage: a.stage.clone(),
        match_expr: a.match_expr.clone(),
        priority: None,
        uuid: a.uuid.clone(),
        reason: crate::ovn_trace::DropReason::Rejected,
    };
    let mut d = logical_drop_info(&point, inp);
    let reply = report.reply.clone().unwrap_or_default();
    if stage.contains("_lb") {
        d.cause = DropCause::LbReject;
        d.reason = format!(
            "the load balancer has no backend for {} and options:reject=true, so OVN answers with {reply}",
            report
                .lb
                .as_ref()
                .map(|l| l.vip.clone())
                .unwrap_or_else(|| inp.destination.ip.clone())
        );
    } else if d.cause == DropCause::Acl {
        d.reason = format!(
            "{} rejects it: OVN answers the sender with {reply}",
            responsible_of_drop(&d, inp)
                .map(|r| format!("{} {}", r.kind, r.name))
                .unwrap_or_else(|| "a reject ACL".into())
        );
    } else if a.match_expr.as_deref().is_some_and(|m| m.contains("ttl")) {
        d.cause = DropCause::Ttl;
        d.reason = format!("TTL expired on the router: it answers with {reply}");
    } else {
        d.reason = format!("OVN answers the sender with {reply} ({})", a.action);
    }
    report.cause = Some(d.cause);
    report.responsible = responsible_of_drop(&d, inp);
    report.drop = Some(d);
}

fn next_hop_address(a: &ControllerAction, inp: &Inputs<'_>) -> String {
    match a.next_hop.as_deref() {
        Some("ip4.dst" | "ip6.dst") | None => inp.destination.ip.clone(),
        Some(x) => x.to_string(),
    }
}

fn unresolved(
    report: &mut TraceReport,
    a: &ControllerAction,
    copies: Vec<String>,
    inp: &Inputs<'_>,
) {
    report.verdict = Verdict::Unresolved;
    report.cause = Some(DropCause::UnresolvedNextHop);
    let address = next_hop_address(a, inp);
    report.next_hop = Some(NextHop {
        address: address.clone(),
        router: a.datapath.clone(),
        port: a.outport.clone(),
        copies,
    });
    let router = a.datapath.clone().unwrap_or_else(|| "?".into());
    let routing = report.routing.clone().unwrap_or_default();
    let detail = routing
        .policy
        .as_ref()
        .map(|p| p.describe())
        .or_else(|| routing.route.as_ref().map(|r| r.describe()));
    report.responsible = Some(Responsible {
        kind: "Vpc".into(),
        name: router.clone(),
        detail,
    });
}

fn flooded(
    report: &mut TraceReport,
    logical: &mut Logical,
    group: Option<String>,
    ports: Vec<String>,
    resolving: Option<ControllerAction>,
    inp: &Inputs<'_>,
) {
    report.verdict = Verdict::Flooded;
    logical.flooded_to = ports;
    // no port owns the destination: ovn-trace's last output is one copy
    // among many, not where the packet goes
    logical.outport = None;
    logical.outport_owner = None;
    let mcast_mac = inp
        .destination
        .mac
        .split(':')
        .next()
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .is_some_and(|b| b & 1 == 1);
    report.cause = Some(if mcast_mac && resolving.is_none() {
        DropCause::Broadcast
    } else {
        DropCause::UnknownDestination
    });
    if let Some(a) = &resolving {
        report.next_hop = Some(NextHop {
            address: next_hop_address(a, inp),
            router: a.datapath.clone(),
            port: a.outport.clone(),
            copies: logical.flooded_to.clone(),
        });
    }
    // the switch the copies were flooded on is the subnet (same name in Kube-OVN)
    let switch = report
        .terminals
        .iter()
        .find_map(|t| match t {
            crate::ovn_trace::Terminal::Output(d)
                if d.multicast.is_some() || d.generated_by.is_some() =>
            {
                d.datapath.clone()
            }
            _ => None,
        })
        .unwrap_or_else(|| inp.source.logical_switch.clone());
    report.responsible = Some(Responsible {
        kind: "Subnet".into(),
        name: switch,
        detail: group.map(|g| format!("multicast group {g}")),
    });
}

/// A drop by a router policy: the policy the trace hit (routing_of found it
/// by its flow's stage-hint) and its router, which Kube-OVN names after the Vpc.
fn route_policy_drop(report: &mut TraceReport, d: &mut DropInfo) {
    let policy = report
        .routing
        .as_ref()
        .and_then(|r| r.policy.as_ref())
        .filter(|p| p.action == "drop");
    let router = policy
        .and_then(|p| p.router.clone())
        .or_else(|| d.datapath.clone())
        .unwrap_or_default();
    d.reason = match policy {
        Some(p) => format!("{} drops it", p.describe()),
        None => format!("a router policy of {router} drops it"),
    };
    report.responsible = Some(Responsible {
        kind: "Vpc".into(),
        name: router,
        detail: policy.map(|p| p.describe()),
    });
}

/// The Kubernetes object behind a logical drop/reject.
fn responsible_of_drop(d: &DropInfo, inp: &Inputs<'_>) -> Option<Responsible> {
    if let Some(kind) = d.policy_kind {
        let kind = kind.object_kind();
        let name = d
            .policy
            .clone()
            .or_else(|| d.acl.as_ref().map(|a| a.name.clone()))
            .or_else(|| d.port_group.clone())
            .unwrap_or_default();
        return Some(Responsible {
            kind: kind.into(),
            name,
            detail: d.acl.as_ref().map(|a| {
                format!(
                    "ACL {} {} priority {} {} `{}`",
                    if a.name.is_empty() {
                        "(unnamed)"
                    } else {
                        &a.name
                    },
                    a.direction,
                    a.priority,
                    a.action,
                    a.match_expr
                )
            }),
        });
    }
    match d.cause {
        DropCause::LbNoBackends | DropCause::LbReject => Some(match &inp.service {
            Some(s) => Responsible {
                kind: "Service".into(),
                name: s.name.clone(),
                detail: inp
                    .lb
                    .as_ref()
                    .map(|l| format!("load balancer {} VIP {}", l.name, l.vip)),
            },
            None => Responsible {
                kind: "LoadBalancer".into(),
                name: inp.lb.as_ref().map(|l| l.name.clone()).unwrap_or_default(),
                detail: inp.lb.as_ref().map(|l| format!("VIP {}", l.vip)),
            },
        }),
        DropCause::NoRoute => d.datapath.clone().map(|r| Responsible {
            kind: "Vpc".into(),
            name: r,
            detail: Some("no static route or policy covers the destination".into()),
        }),
        DropCause::UnknownDestination | DropCause::PortSecurity => {
            d.datapath.clone().map(|ls| Responsible {
                kind: "Subnet".into(),
                name: ls,
                detail: None,
            })
        }
        _ => None,
    }
}

/// A Service whose ClusterIP is not on any load balancer: Kube-OVN removes
/// the VIP when the Service has no ready endpoint, so OVN routes the packet
/// like any other address and no pod serves it. When OVN hands it to a
/// node's host network, what the sender sees next (an ICMP error, a reset or
/// a timeout) is up to that node's own rules, which no trace shows: the line
/// says so instead of guessing.
fn service_without_vip(report: &mut TraceReport, inp: &Inputs<'_>) {
    let Some(svc) = inp
        .service
        .as_ref()
        .filter(|s| s.serves_packet && !s.vip_in_ovn)
    else {
        return;
    };
    if matches!(report.verdict, Verdict::Error) {
        return;
    }
    let went = match (&report.verdict, &report.drop) {
        (Verdict::Dropped, Some(d)) => format!("; OVN then drops it: {}", d.reason),
        _ if report.drop.is_some() => String::new(),
        _ => report
            .terminals
            .iter()
            .find_map(|t| match t {
                crate::ovn_trace::Terminal::Output(d) if d.generated_by.is_none() => {
                    let owner = inp.nb.and_then(|nb| owner_of_port(nb, &d.port));
                    Some(match owner.as_deref().and_then(|o| o.strip_prefix("node ")) {
                        Some(node) => format!(
                            "; OVN routes it like any other address, out of {} to node {node}'s host network, where the node's own rules (kube-proxy's, where it runs) decide whether the sender gets an error back or nothing",
                            d.port
                        ),
                        None => format!(
                            "; OVN routes it like any other address, out of {}{}",
                            d.port,
                            owner.map(|o| format!(" ({o})")).unwrap_or_default()
                        ),
                    })
                }
                _ => None,
            })
            .unwrap_or_default(),
    };
    report.verdict = Verdict::Dropped;
    report.cause = Some(DropCause::LbNoBackends);
    report.responsible = Some(Responsible {
        kind: "Service".into(),
        name: svc.name.clone(),
        detail: Some(format!("ClusterIP {}", svc.address())),
    });
    report.drop = Some(reasoned(
        DropCause::LbNoBackends,
        format!(
            "no pod receives it, the connection fails: Service {} has no ready endpoints; Kube-OVN removed its VIP {} from the load balancers{went}",
            svc.name,
            svc.address()
        ),
    ));
}
