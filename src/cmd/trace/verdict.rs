//! Step 6 of a trace: the verdict from both traces, with the health of the
//! ovn-controllers on the path as warnings under it.

use k8s_openapi::api::core::v1::{Pod, Service};
use ko_ovn::microflow::{ArpOp, Direction, Mac, Protocol, SOURCE_PORT};
use ko_ovn::verdict::nb::{NbGlobal, NbSnapshot};
use ko_ovn::verdict::{self, Destination, Source, TraceReport};

use super::microflow::Packet;
use super::source::Sender;
use super::tools::Traced;
use super::tunnels::OvsWalk;
use super::{health, service, stale_side};
use crate::cluster::Cluster;

/// What the verdict is judged against, besides the traces.
pub(super) struct Judge<'a> {
    pub sender: &'a Sender,
    pub source: Source,
    pub destination: Destination,
    pub packet: &'a Packet,
    pub nb: &'a NbSnapshot,
    pub services: &'a [Service],
    /// Every `app=ovs` pod (empty for `ovn-trace`: then listed here).
    pub ovs_pods: &'a [Pod],
    pub ns: &'a str,
    /// northd's status, read beside the trace's last read.
    pub northd: &'a health::Northd,
    /// `NB_Global`, read with the NB rows.
    pub nb_global: Option<&'a NbGlobal>,
    pub ovn_only: bool,
}

/// The `source` block of a report: the sender sending from `ip`.
pub(super) fn source_of(sender: &Sender, ip: std::net::IpAddr) -> Source {
    Source {
        kind: sender.kind.to_string(),
        name: sender.name.clone(),
        node: sender.node.clone(),
        logical_switch: sender.logical_switch.clone(),
        logical_port: sender.logical_port.clone(),
        ip: ip.to_string(),
        mac: sender.mac.to_string(),
    }
}

/// The `destination` block of a report for the packet `flow` sends.
pub(super) fn destination_of(
    flow: &ko_ovn::microflow::Microflow,
    mac: Mac,
    mac_from: String,
) -> Destination {
    Destination {
        ip: flow.dst_ip.to_string(),
        mac: mac.to_string(),
        mac_from,
        protocol: flow.protocol.name().to_string(),
        // a reply goes back to the client's source port
        port: match flow.direction {
            Direction::Forward => flow.protocol.port(),
            Direction::Reply => flow.protocol.port().map(|_| SOURCE_PORT),
        },
        arp: match flow.protocol {
            Protocol::Arp { op: ArpOp::Request } => Some("request".into()),
            Protocol::Arp { op: ArpOp::Reply } => Some("reply".into()),
            _ => None,
        },
    }
}

/// Step 6: health warnings first, then the tools' own; the report.
pub(super) async fn build_verdict(cluster: &Cluster, j: Judge<'_>, traced: Traced) -> TraceReport {
    let Traced {
        ovn,
        ovn_failure,
        walk:
            OvsWalk {
                mut warnings,
                segments,
                controllers,
                ..
            },
        sb,
        ..
    } = traced;
    let flow = &j.packet.flow;
    let service = service::of_destination(
        j.services,
        flow.dst_ip,
        flow.protocol.port(),
        flow.protocol.name(),
        j.packet.lb.is_some(),
    );
    // where it left OVN, else (a drop) the port owning the destination
    let outport = ovn
        .outcome()
        .outputs
        .last()
        .map(|o| o.port.clone())
        .or_else(|| j.nb.mac_of_ip(flow.dst_ip).map(|(_, lsp)| lsp.name.clone()));
    let crossed: Vec<&str> = segments.iter().map(|(s, _)| s.node.as_str()).collect();
    let nodes = health::path_nodes(
        &j.sender.node,
        &j.sender.logical_port,
        outport.as_deref(),
        sb.as_ref(),
        &crossed,
    );
    let ovs_for_health = if j.ovn_only {
        cluster
            .list_pods(Some(j.ns), Some("app=ovs"))
            .await
            .unwrap_or_default()
    } else {
        j.ovs_pods.to_vec()
    };
    let path_health =
        health::warnings(cluster, &ovs_for_health, &nodes, sb.as_ref(), &controllers).await;
    let mut health = health::northd_warnings(&j.northd.statuses, j.nb_global, sb.as_ref());
    health.extend(path_health);
    health.append(&mut warnings);
    let warnings = health;
    let mut report = verdict::build(verdict::Inputs {
        source: j.source,
        destination: j.destination,
        ovn_trace: &ovn,
        ovn_trace_failure: ovn_failure,
        nb: Some(j.nb),
        sb: sb.as_ref(),
        lb: j.packet.lb.clone(),
        service,
        ovs: (!j.ovn_only).then(|| segments.into_iter().map(|(s, _)| s).collect()),
        warnings,
    });
    stale_side(&mut report);
    report
}
