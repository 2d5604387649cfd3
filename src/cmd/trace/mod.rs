//! `kubectl ko trace` / `ovn-trace`: from a pod (or node) to a verdict.
//!
//! [`trace_forward`] is six steps, each in the module named for it:
//! 1. `resolve::resolve_source`: one round of concurrent chains: the source
//!    pod/node, then its node's OVS interfaces (and the node's existence) ‖
//!    SB leader ‖ NB leader, then its NB rows (LSPs, LRPs, ACLs, port groups,
//!    LBs: one exec) and ovn-northd's version ‖ `app=ovs` pods (one list for
//!    all nodes) ‖ the Services (when the destination has a port)
//! 2. `resolve::resolve_destination`: the destination MAC (the subnet is read
//!    only when it must be derived)
//! 3. `microflow::build_microflow`: the packet, and the Service backend to follow
//! 4. `tools::run_tools`: ovn-trace in the SB leader ‖ the OVS walk
//!    (ofproto/trace in the node's ovs-ovn, then across each tunnel on the
//!    node it reaches, named by its address: `tunnels::follow_guessed`) ‖ the
//!    node's versions and ovn-controller; then the SB rows (chassis, encaps,
//!    the logical flows every trace named: one exec)
//! 5. `tunnels::follow_tunnels`: keeps the hops the SB confirms, traces on
//!    from the first it does not (`reads.rs`: the small remote reads the
//!    steps share)
//! 6. `verdict::build_verdict`: path health, then the verdict
//!
//! `--reply` (`reply::trace_reply`) runs steps 3-6 again for the server's
//! answer, from the port the forward packet was delivered to.
//!
//! Nothing user-supplied reaches a shell: every remote command is an argv.

mod args;
pub mod destination;
mod health;
mod microflow;
mod reads;
pub mod reply;
mod resolve;
pub(crate) mod service;
pub(crate) mod source;
mod tools;
mod tunnels;
mod verdict;
pub mod view;
mod view_compact;
mod view_path;

use ko_ovn::microflow::{ArpOp, Mac, Protocol};
use ko_ovn::verdict::nb::NbSnapshot;
use ko_ovn::verdict::ovs::OvsInterface;
use ko_ovn::verdict::{TraceReport, Verdict};

use super::{Ctx, Outcome};
use crate::cli::TraceArgs;
use crate::cluster::{self, Cluster, Db, Subnet, container};
use crate::error::{Error, Result};
pub use args::{Request, SourceRef};
use reads::interfaces;
use source::Sender;
use tools::Leg;
use verdict::Judge;
use view::TraceView;

pub async fn run(ctx: &Ctx, args: &TraceArgs, ovn_only: bool) -> Result<Outcome> {
    let parsed = args::parse(args)?;
    let format = ctx.output(args.output.output);
    let cluster = ctx.cluster().await?;
    let (req, named) = destination::resolve(cluster, &parsed).await?;
    if args.reply && matches!(req.protocol, Protocol::Arp { .. }) {
        return Err(Error::Usage(
            "--reply traces the reply of an icmp, tcp or udp connection; ARP has none (trace `arp reply` from the other side)".into(),
        ));
    }
    let forward = trace_forward(cluster, &req, ovn_only, args.raw).await?;
    let mut view = if args.reply {
        reply::trace_reply(cluster, &req, forward, ovn_only, args.raw).await?
    } else {
        forward.view
    };
    view.destination_name = named;
    view.full = args.full;
    // like upstream's script: the trace ran, so 0, unless asked for the verdict
    // (with --reply the worse direction decides)
    let reply = view.round_trip.as_ref().and_then(|r| r.reply);
    let verdicts = std::iter::once(view.report.verdict).chain(reply);
    let exit = verdicts
        .map(|v| match v {
            Verdict::Error => cluster::error::EXIT_REMOTE,
            v if args.exit_code => v.exit_code(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    Ok(Outcome::report(view, format, exit))
}

/// Runs the whole trace and returns what to render.
pub async fn trace(
    cluster: &Cluster,
    req: &Request,
    ovn_only: bool,
    raw: bool,
) -> Result<TraceView> {
    Ok(trace_forward(cluster, req, ovn_only, raw).await?.view)
}

/// The forward trace and what the reply direction reuses.
pub(super) struct Forward {
    pub view: TraceView,
    origin: resolve::Origin,
    target: resolve::Target,
    packet: microflow::Packet,
    /// northd's status and NB_Global: the reply's verdict reuses them.
    northd: health::Northd,
}

/// The six steps, each a function in the module named for it; northd's
/// health needs nothing of them and is read beside them.
async fn trace_forward(
    cluster: &Cluster,
    req: &Request,
    ovn_only: bool,
    raw: bool,
) -> Result<Forward> {
    // northd is asked while the SB rows are read, the last read of the tools
    // step, not while the traces run, which it would only slow down; not at
    // all when the trace fails before
    let (tx, started) = tokio::sync::oneshot::channel::<()>();
    let sb_read = tools::Signal::new(tx);
    let steps = async {
        let r = trace_steps(cluster, req, ovn_only, &sb_read).await;
        sb_read.cancel();
        r
    };
    let (steps, northd) = tokio::join!(steps, async {
        match started.await {
            Ok(()) => Some(health::northd(cluster).await),
            Err(_) => None,
        }
    });
    let northd = northd.unwrap_or_default();
    let (origin, target, packet, traced, versions) = steps?;
    let mut traced = traced;
    let raw_runs = std::mem::take(&mut traced.walk.raw_runs);
    let judge = Judge {
        sender: &origin.sender,
        source: verdict::source_of(&origin.sender, origin.src_ip),
        destination: verdict::destination_of(&packet.flow, target.dst_mac, target.mac_from.clone()),
        packet: &packet,
        nb: &target.nb,
        services: &target.services,
        ovs_pods: &origin.ovs_pods,
        ns: &origin.ns,
        northd: &northd,
        nb_global: target.nb_global.as_ref(),
        ovn_only,
    };
    let report = verdict::build_verdict(cluster, judge, traced).await;
    let view = TraceView {
        report,
        versions,
        raw: raw.then_some(raw_runs),
        destination_name: None,
        full: false,
        round_trip: None,
    };
    Ok(Forward {
        view,
        origin,
        target,
        packet,
        northd,
    })
}

/// Steps 1-5: source, destination, microflow, the tools and the tunnels.
async fn trace_steps(
    cluster: &Cluster,
    req: &Request,
    ovn_only: bool,
    sb_read: &tools::Signal,
) -> Result<(
    resolve::Origin,
    resolve::Target,
    microflow::Packet,
    tools::Traced,
    ko_ovn::versions::Versions,
)> {
    let (mut origin, reads) = resolve::resolve_source(cluster, req, ovn_only).await?;
    let mut target = resolve::resolve_destination(cluster, req, &origin, reads).await?;
    let packet = microflow::build_microflow(req, &origin, &target)?;
    let dst_lsp = target
        .nb
        .mac_of_ip(req.dst_ip)
        .map(|(_, lsp)| lsp.name.clone());
    let mut relabelled = None;
    let (mut traced, versions) = loop {
        let leg = Leg {
            sender: &origin.sender,
            ovs_pods: &origin.ovs_pods,
            sb_leader: &origin.sb_leader,
            ovs_pod: origin.ovs_pod.as_ref(),
            ifaces: target.local_ifaces.as_deref(),
            packet: &packet,
            peer_port: dst_lsp.as_deref(),
            sb_read,
        };
        let (traced, versions) = tools::trace_leg(
            cluster,
            &origin,
            &leg,
            target.central_version.clone(),
            ovn_only,
        )
        .await?;
        // the pod labelled SB leader refused ovn-trace (its server is not the
        // leader: the label lags an election): once more on the RAFT leader
        let refused = traced
            .ovn_failure
            .as_deref()
            .is_some_and(cluster::ovn_db::refused_by_a_follower);
        if !refused || relabelled.is_some() {
            break (traced, versions);
        }
        match cluster.raft_leader(Db::Sb).await {
            Ok(Some(real)) if real.name != origin.sb_leader.name => {
                relabelled = Some(format!(
                    "{} is labelled ovn-sb-leader=true but its OVN SB server is not the RAFT leader (the label lags an election); traced on {real}, the leader by cluster/status",
                    origin.sb_leader
                ));
                origin.sb_leader = real;
            }
            _ => break (traced, versions),
        }
    };
    traced.walk.warnings.extend(relabelled);
    // the ports ovn-trace delivered to (a Service's backend...) for the verdict
    let outports = ko_ovn::verdict::sb_query::ovn_trace_ports(&traced.ovn);
    let nb_leader = target.nb_leader.clone();
    resolve::add_lsps(cluster, &nb_leader, &mut target.nb, &outports).await;
    resolve::refresh_rows(
        cluster,
        &nb_leader,
        &mut target.nb,
        &traced.ovn,
        traced.sb.as_ref(),
    )
    .await;
    traced.walk.warnings.extend(versions.skew());
    Ok((origin, target, packet, traced, versions))
}

/// When ovn-trace and ofproto/trace disagree and an ovn-controller on the
/// path is unhealthy, the OpenFlow side is the stale one: say so.
fn stale_side(report: &mut TraceReport) {
    let agent_down = report
        .warnings
        .iter()
        .any(|w| w.starts_with("ovn-controller on") || w.contains("has no SB chassis"));
    let disagree = report
        .warnings
        .iter()
        .any(|w| w.starts_with("ovn-trace delivers") || w.starts_with("ovn-trace drops"));
    if agent_down && disagree {
        report.warnings.push(
            "the two traces disagree because of the ovn-controller problem above: ofproto/trace shows the stale OpenFlow tables, ovn-trace shows what the SB says should happen".into(),
        );
    }
}

/// The destination MAC, as upstream finds it.
async fn destination_mac(
    cluster: &Cluster,
    req: &Request,
    sender: &Sender,
    nb: &NbSnapshot,
    subnet: Option<&Subnet>,
    ifaces: Option<&[OvsInterface]>,
) -> Result<(Mac, String)> {
    if let Some(m) = req.dst_mac {
        return Ok((m, "argument".into()));
    }
    if matches!(req.protocol, Protocol::Arp { op: ArpOp::Request }) {
        return Ok((Mac::BROADCAST, "broadcast (ARP request)".into()));
    }
    if let Some(m) = destination::group_mac(req.dst_ip) {
        return Ok(m);
    }
    if source::in_cidrs(req.dst_ip, &sender.cidrs)
        && let Some((mac, lsp)) = nb.mac_of_ip(req.dst_ip)
    {
        return Ok((mac, format!("logical switch port {}", lsp.name)));
    }
    if let Some(subnet) = subnet.filter(|s| s.is_underlay()) {
        return underlay_gateway_mac(cluster, req, sender, subnet, ifaces).await;
    }
    let lr = sender
        .logical_router
        .clone()
        .or_else(|| subnet.and_then(|s| s.spec.vpc.clone()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ovn-cluster".into());
    let lrp = format!("{lr}-{}", sender.logical_switch);
    match nb.lrp_mac(&lrp) {
        Some(mac) => Ok((mac, format!("gateway {lrp}"))),
        None => Err(Error::Cluster(cluster::Error::NotFound {
            what: format!("the destination MAC for {}", req.dst_ip),
            detail: format!(
                ": no logical switch port has that IP and there is no logical router port {lrp}"
            ),
            hint: "give the MAC explicitly: ... <dst-ip> <dst-mac> <proto>".into(),
        })),
    }
}

/// Underlay subnet: the physical gateway answers ARP/ND; ask it from the
/// pod's own network namespace (through kube-ovn-cni, like upstream).
async fn underlay_gateway_mac(
    cluster: &Cluster,
    req: &Request,
    sender: &Sender,
    subnet: &Subnet,
    ifaces: Option<&[OvsInterface]>,
) -> Result<(Mac, String)> {
    let v6 = req.dst_ip.is_ipv6();
    let gw = subnet
        .spec
        .gateway
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .find(|g| g.contains(':') == v6)
        .map(String::from)
        .ok_or_else(|| Error::Remote {
            what: format!(
                "the IPv{} gateway of subnet {}",
                if v6 { 6 } else { 4 },
                subnet.name()
            ),
            detail: "spec.gateway has none".into(),
            hint: "give the destination MAC explicitly".into(),
        })?;
    let ifaces = match ifaces {
        Some(i) => i.to_vec(),
        None => interfaces(cluster, &cluster.ovs_pod_on(&sender.node).await?).await?,
    };
    let iface = ifaces
        .iter()
        .find(|i| i.iface_id.as_deref() == Some(sender.logical_port.as_str()));
    let netns = iface
        .and_then(|i| i.pod_netns.clone())
        .ok_or_else(|| Error::Remote {
            what: format!("the network namespace of {}", sender.name),
            detail: "its OVS interface has no external_ids:pod_netns".into(),
            hint: "give the destination MAC explicitly".into(),
        })?;
    // veth pods see eth0; internal-port pods keep the OVS interface name
    let nic = match (sender.pod_nic_type.as_deref(), iface) {
        (Some("internal-port"), Some(i)) => i.name.clone(),
        _ => "eth0".to_string(),
    };
    let cni = cluster.cni_pod_on(&sender.node).await?;
    let net = format!("--net={netns}");
    let c = cni.container_or_default(container::CNI_SERVER).to_string();
    // (tool, argv, the form to retry with when this arping rejects the flags)
    let (tool, argv, fallback): (&str, Vec<String>, Option<Vec<String>>) = if v6 {
        (
            "ndisc6",
            ["nsenter", &net, "ndisc6", "-q", &gw, &nic]
                .map(String::from)
                .to_vec(),
            None,
        )
    } else {
        (
            "arping",
            // Kube-OVN's image ships Habets' arping (upstream's flags) ...
            [
                "nsenter", &net, "arping", "-c3", "-C1", "-i1", "-I", &nic, &gw,
            ]
            .map(String::from)
            .to_vec(),
            // ... Debian/RHEL hosts ship iputils' arping, which has no -C
            Some(
                [
                    "nsenter", &net, "arping", "-f", "-c3", "-w3", "-I", &nic, &gw,
                ]
                .map(String::from)
                .to_vec(),
            ),
        )
    };
    let mut out = cluster.exec_capture(&cni, &c, &argv).await?;
    if !out.success()
        && out.stderr_str().contains("invalid option")
        && let Some(fallback) = fallback
    {
        out = cluster.exec_capture(&cni, &c, &fallback).await?;
    }
    let text = out.stdout_str();
    // several replies may come back (upstream #6444): the first MAC wins
    let mac = text
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .find_map(|w| {
            w.parse::<Mac>()
                .ok()
                .filter(|m| *m != Mac::BROADCAST && *m != Mac::ZERO)
        });
    match mac {
        Some(m) => Ok((m, format!("{tool} {gw} in the pod's netns"))),
        None => Err(Error::Remote {
            what: format!(
                "{tool} to gateway {gw} in {}'s netns (via {cni})",
                sender.name
            ),
            detail: format!(
                "no MAC in its output (exit {}): {} {}",
                out.exit_code,
                text.trim(),
                out.stderr_str().trim()
            ),
            hint: "is the underlay gateway up? or give the destination MAC explicitly".into(),
        }),
    }
}
