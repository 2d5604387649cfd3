//! `--reply`: the way back. After the forward trace, the server answers on
//! the same connection: from the port the forward packet was delivered to (a
//! Service's chosen backend), ports swapped, as conntrack's established
//! reply. Steps 3-6 of the forward trace run again for it; the verdict of
//! the round trip is the worse of the two.

use std::net::{IpAddr, SocketAddr};

use ko_ovn::microflow::Mac;
use ko_ovn::verdict::ovs::OvsInterface;
use ko_ovn::verdict::{TraceReport, Verdict};

use super::microflow::{Packet, build_reply_microflow};
use super::reads::interfaces;
use super::resolve::{Origin, Target, pod_on_node, resolve_sender};
use super::source::Sender;
use super::tools::{self, Leg};
use super::verdict::{Judge, build_verdict, destination_of, source_of};
use super::view::RoundTrip;
use super::view::TraceView;
use super::{Forward, Request, SourceRef, destination_mac, source};
use crate::cluster::{Cluster, PodRef};
use crate::error::Result;

/// The forward view with the reply direction added.
pub(super) async fn trace_reply(
    cluster: &Cluster,
    req: &Request,
    forward: Forward,
    ovn_only: bool,
    raw: bool,
) -> Result<TraceView> {
    let Forward {
        mut view,
        origin,
        target,
        packet,
        northd,
    } = forward;
    let fwd = view.report.verdict;
    let skip = |why: String| RoundTrip {
        works: false,
        forward: fwd,
        server: None,
        reply: None,
        not_traced: Some(why),
        nat: None,
        trace: None,
    };
    if fwd != Verdict::Delivered {
        view.round_trip = Some(skip(format!(
            "the forward packet is {}: nobody receives it, so nobody replies",
            format!("{fwd:?}").to_lowercase()
        )));
        return Ok(view);
    }
    let Some(server_ref) = server_of(&view.report, &target.nb) else {
        let port = view.report.logical.outport.clone().unwrap_or_default();
        view.round_trip = Some(skip(format!(
            "the packet leaves OVN at {port}, which is not a pod's or node's port: its reply comes from outside OVN and is not traced"
        )));
        return Ok(view);
    };

    let start = reply_start(
        cluster, req, &origin, &target, &packet, server_ref, ovn_only,
    )
    .await?;
    let ReplyStart {
        server,
        server_ip,
        server_port,
        ovs_pod,
        ifaces,
        client_mac,
        mac_from,
        packet: reply_packet,
    } = start;
    let backend = packet.lb.as_ref().and_then(|l| l.backend.as_deref());

    // steps 4-6 for the reply
    let leg = Leg {
        sender: &server,
        ovs_pods: &origin.ovs_pods,
        sb_leader: &origin.sb_leader,
        ovs_pod: ovs_pod.as_ref(),
        ifaces: ifaces.as_deref(),
        packet: &reply_packet,
        peer_port: Some(origin.sender.logical_port.as_str()),
        // northd was asked for the forward direction
        sb_read: &tools::Signal::default(),
    };
    let (mut traced, versions) = tools::trace_leg(cluster, &origin, &leg, None, ovn_only).await?;
    let raw_runs = std::mem::take(&mut traced.walk.raw_runs);
    let judge = Judge {
        sender: &server,
        source: source_of(&server, server_ip),
        destination: destination_of(&reply_packet.flow, client_mac, mac_from),
        packet: &reply_packet,
        nb: &target.nb,
        // the reply goes to the client's port 30000: no Service to name
        services: &[],
        ovs_pods: &origin.ovs_pods,
        ns: &origin.ns,
        northd: &northd,
        nb_global: target.nb_global.as_ref(),
        ovn_only,
    };
    let report = build_verdict(cluster, judge, traced).await;

    for n in versions.nodes {
        if !view.versions.nodes.iter().any(|v| v.node == n.node) {
            view.versions.nodes.push(n);
        }
    }
    if raw && let Some(runs) = view.raw.as_mut() {
        runs.extend(raw_runs);
    }
    let nat = packet.lb.as_ref().map(|lb| {
        format!(
            "the reply leaves {} from {}; conntrack, which load-balanced the request, rewrites its source back to the Service address {} before the client sees it (ovn-trace and ofproto/trace do not replay that rewrite)",
            server.name,
            backend.unwrap_or_default(),
            lb.vip
        )
    });
    view.round_trip = Some(RoundTrip {
        works: report.verdict == Verdict::Delivered,
        forward: fwd,
        server: Some(match server_port {
            Some(p) => SocketAddr::new(server_ip, p).to_string(),
            None => server_ip.to_string(),
        }),
        reply: Some(report.verdict),
        not_traced: None,
        nat,
        trace: Some(Box::new(report)),
    });
    Ok(view)
}

/// Where the reply starts: the server, its address and port, its node's OVS
/// interfaces, the client's MAC as the server sees it, and the reply packet.
struct ReplyStart {
    server: Sender,
    server_ip: IpAddr,
    server_port: Option<u16>,
    ovs_pod: Option<PodRef>,
    ifaces: Option<Vec<OvsInterface>>,
    client_mac: Mac,
    mac_from: String,
    packet: Packet,
}

/// Steps 1-3 for the reply: the server (as a trace source), the client's
/// MAC found as for a forward trace from the server, the reply microflow.
async fn reply_start(
    cluster: &Cluster,
    req: &Request,
    origin: &Origin,
    target: &Target,
    packet: &Packet,
    server_ref: SourceRef,
    ovn_only: bool,
) -> Result<ReplyStart> {
    // the server and where its reply starts
    // the forward packet reached it: its node exists, nothing to check
    let (server, _) = resolve_sender(cluster, &server_ref, false).await?;
    let backend = packet.lb.as_ref().and_then(|l| l.backend.as_deref());
    let (server_ip, server_port) = match backend.and_then(|b| b.parse::<SocketAddr>().ok()) {
        Some(sa) => (sa.ip(), Some(sa.port())),
        None => (req.dst_ip, req.protocol.port()),
    };
    let client_ip = origin.src_ip;
    let (ovs_pod, ifaces) = if ovn_only {
        (None, None)
    } else {
        let pod = pod_on_node(
            &origin.ovs_pods,
            &server.node,
            "ovs-ovn (app=ovs)",
            &origin.ns,
        )?;
        let ifaces = interfaces(cluster, &pod).await?;
        (Some(pod), Some(ifaces))
    };

    // the reply's destination MAC, found as for a forward trace from the server
    let back = Request {
        source: server_ref,
        dst_ip: client_ip,
        dst_mac: None,
        protocol: req.protocol,
    };
    let subnet = if server.kind == "pod"
        && !(source::in_cidrs(client_ip, &server.cidrs) && target.nb.mac_of_ip(client_ip).is_some())
    {
        Some(cluster.get_subnet(&server.logical_switch).await?)
    } else {
        None
    };
    let (client_mac, mac_from) = destination_mac(
        cluster,
        &back,
        &server,
        &target.nb,
        subnet.as_ref(),
        ifaces.as_deref(),
    )
    .await?;
    let reply_packet = build_reply_microflow(
        &server,
        server_ip,
        server_port,
        client_ip,
        client_mac,
        req.protocol,
    )?;

    Ok(ReplyStart {
        server,
        server_ip,
        server_port,
        ovs_pod,
        ifaces,
        client_mac,
        mac_from,
        packet: reply_packet,
    })
}

/// Who answers: the pod or node owning the port the forward packet was
/// delivered to (Kube-OVN names the pod in the LSP's `external_ids:pod`).
fn server_of(report: &TraceReport, nb: &ko_ovn::verdict::nb::NbSnapshot) -> Option<SourceRef> {
    let port = report.logical.outport.as_deref()?;
    if let Some((ns, name)) = nb
        .lsp(port)
        .and_then(|l| l.external_ids.get("pod"))
        .and_then(|p| p.split_once('/'))
    {
        return Some(SourceRef::Pod {
            namespace: ns.to_string(),
            name: name.to_string(),
        });
    }
    port.strip_prefix("node-")
        .filter(|n| !n.is_empty())
        .map(|n| SourceRef::Node(n.to_string()))
}
