//! Steps 1 and 2 of a trace: who sends (and the pods the tools run in), then
//! where the packet goes (its MAC, with the NB rows the verdict needs).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use ko_ovn::microflow::{ArpOp, Mac, Protocol};
use ko_ovn::verdict::nb::{NbGlobal, NbSnapshot};
use ko_ovn::verdict::ovs::OvsInterface;

use super::reads::{interfaces, tool_version};
use super::source::{self, Sender};
use super::{Request, SourceRef, destination_mac, service};
use crate::cluster::model::{OVN_PROVIDER, PodNetwork};
use crate::cluster::{self, Cluster, PodRef, container, unusable_reason};
use crate::error::{Error, Result};

/// Step 1's result: the sender and where the tools run.
pub(super) struct Origin {
    pub sender: Sender,
    /// The sender's address of the destination's family.
    pub src_ip: IpAddr,
    pub sb_leader: PodRef,
    /// Every `app=ovs` pod (one list for all nodes; empty for `ovn-trace`).
    pub ovs_pods: Vec<Pod>,
    /// The ovs-ovn pod on the sender's node (`None` for `ovn-trace`).
    pub ovs_pod: Option<PodRef>,
    /// Kube-OVN's namespace.
    pub ns: String,
}

/// Step 2's result: the destination MAC and what was read alongside it.
pub(super) struct Target {
    pub nb: NbSnapshot,
    /// Where the NB rows came from (ports the trace names later are read there).
    pub nb_leader: PodRef,
    /// The NB's `nb_cfg`, read with the rows: is northd behind?
    pub nb_global: Option<NbGlobal>,
    pub dst_mac: Mac,
    /// Where the MAC came from (argument, LSP, gateway, arping).
    pub mac_from: String,
    /// The OVS interfaces of the sender's node (`None` for `ovn-trace`).
    pub local_ifaces: Option<Vec<OvsInterface>>,
    pub central_version: Option<String>,
    /// Every Service (not listed for ARP).
    pub services: Vec<Service>,
}

/// What step 1 reads for step 2 besides the origin.
pub(super) struct Reads {
    nb: NbSnapshot,
    nb_global: Option<NbGlobal>,
    nb_leader: PodRef,
    local_ifaces: Option<Vec<OvsInterface>>,
    central_version: Option<String>,
    services: Vec<Service>,
}

/// Step 1: the sender, the SB/NB leaders and the ovs-ovn pods, and what
/// depends only on them (the NB rows and ovn-northd's version once the NB
/// leader is known, the sender node's OVS interfaces once the sender is), all
/// in one concurrent round of chains instead of two rounds.
pub(super) async fn resolve_source(
    cluster: &Cluster,
    req: &Request,
    ovn_only: bool,
) -> Result<(Origin, Reads)> {
    let ns = cluster.namespace().to_string();
    let arp = matches!(req.protocol, Protocol::Arp { .. });
    let (side, sb_leader, (nb, nb_global, central_version, nb_leader), services) = tokio::try_join!(
        sender_side(cluster, &req.source, arp, ovn_only, &ns),
        async { Ok(cluster.sb_leader().await?) },
        nb_side(cluster, req),
        async { Ok(service::list_unless_arp(cluster, arp).await?) },
    )?;

    let SenderSide {
        sender,
        ovs_pods,
        ovs_pod,
        local_ifaces,
    } = side;
    let src_ip = sender
        .ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == req.dst_ip.is_ipv4())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} {} has no IPv{} address (it has {}), so it cannot send to {}; pick a destination of its family",
                sender.kind,
                sender.name,
                if req.dst_ip.is_ipv4() { 4 } else { 6 },
                sender.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                req.dst_ip
            ))
        })?;
    let ovs_pod = ovs_pod?;
    let origin = Origin {
        sender,
        src_ip,
        sb_leader,
        ovs_pods,
        ovs_pod,
        ns,
    };
    let reads = Reads {
        nb,
        nb_global,
        nb_leader,
        local_ifaces,
        central_version,
        services,
    };
    Ok((origin, reads))
}

/// What [`sender_side`] found.
struct SenderSide {
    sender: Sender,
    ovs_pods: Vec<Pod>,
    /// The ovs-ovn pod on the sender's node; its absence is raised after the
    /// leaders were looked up, whose error says more (Kube-OVN not there).
    ovs_pod: Result<Option<PodRef>>,
    local_ifaces: Option<Vec<OvsInterface>>,
}

/// The sender and the ovs-ovn pods, then (at once) the sender node's OVS
/// interfaces and the check that the pod's node still exists.
async fn sender_side(
    cluster: &Cluster,
    src: &SourceRef,
    arp: bool,
    ovn_only: bool,
    ns: &str,
) -> Result<SenderSide> {
    let ((sender, node_to_check), ovs_pods) =
        tokio::try_join!(resolve_sender(cluster, src, arp), async {
            if ovn_only {
                Ok(Vec::new())
            } else {
                Ok(cluster.list_pods(Some(ns), Some("app=ovs")).await?)
            }
        },)?;
    let ovs_pod = if ovn_only {
        Ok(None)
    } else {
        pod_on_node(&ovs_pods, &sender.node, "ovs-ovn (app=ovs)", ns).map(Some)
    };
    let (exists, local_ifaces) = tokio::join!(
        async {
            match (&node_to_check, src) {
                (Some(node), SourceRef::Pod { namespace, name }) => {
                    source::known_node(cluster.get_node(node).await, namespace, name)
                }
                _ => Ok(()),
            }
        },
        async {
            match &ovs_pod {
                Ok(Some(p)) => interfaces(cluster, p).await.map(Some),
                _ => Ok(None),
            }
        }
    );
    // a pod on a deleted node (and so without an ovs-ovn pod): say that cause
    exists?;
    Ok(SenderSide {
        sender,
        ovs_pods,
        ovs_pod,
        local_ifaces: local_ifaces?,
    })
}

/// The NB leader and the logical ports the trace is about, then the NB rows
/// (only those ports of the cluster's; `NB_Global`, for the staleness check)
/// and ovn-northd's version at once.
async fn nb_side(
    cluster: &Cluster,
    req: &Request,
) -> Result<(NbSnapshot, Option<NbGlobal>, Option<String>, PodRef)> {
    let (nb_leader, names) = tokio::join!(cluster.nb_leader(), lsp_names(cluster, req));
    let nb_leader = nb_leader?;
    let argv = NbSnapshot::narrow_argv(&names);
    let (out, central_version) = tokio::join!(
        cluster.exec_capture(&nb_leader, container::OVN_CENTRAL, &argv),
        tool_version(cluster, &nb_leader, container::OVN_CENTRAL, "ovn-northd"),
    );
    if let Ok(out) = out
        && out.success()
        && let Ok((nb, global)) = NbSnapshot::parse_narrow(&out.stdout_str(), &names)
    {
        return Ok((nb, global, central_version, nb_leader));
    }
    // no ovsdb-client there, or it refused: every row through ovn-nbctl
    let (nb, global) = nb_full(cluster, &nb_leader).await?;
    Ok((nb, global, central_version, nb_leader))
}

/// The LSPs a trace is about, known before any NB read: the source pod's
/// (`<pod>.<namespace>`) or node's (`node-<node>`), and the pods the API
/// server lists with the destination address. A port not among them is read
/// later if the trace needs it.
async fn lsp_names(cluster: &Cluster, req: &Request) -> Vec<String> {
    let mut names = vec![match &req.source {
        SourceRef::Pod { namespace, name } => format!("{name}.{namespace}"),
        SourceRef::Node(node) => format!("node-{node}"),
    }];
    // a failed lookup only means the destination's port is read later
    for pod in cluster.pods_with_ip(req.dst_ip).await.unwrap_or_default() {
        let net = PodNetwork::of_pod(&pod, OVN_PROVIDER);
        if net.logical_switch.is_some() && !source::is_host_network(&pod) {
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            names.push(format!("{name}.{ns}"));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Every row the snapshot holds, through ovn-nbctl (which loads whole
/// tables): when the narrow read cannot be made.
async fn nb_full(cluster: &Cluster, nb_leader: &PodRef) -> Result<(NbSnapshot, Option<NbGlobal>)> {
    // one ovn-nbctl: the snapshot's tables, then NB_Global on the last line
    let mut nb_argv = NbSnapshot::argv();
    nb_argv.push("--".into());
    nb_argv.extend(NbGlobal::argv().into_iter().skip(2));
    let nb_text = cluster
        .exec_ok(nb_leader, container::OVN_CENTRAL, &nb_argv)
        .await?;
    let (tables, global) = nb_text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or((&nb_text, ""));
    let nb_global = NbGlobal::parse(global).ok();
    let nb = NbSnapshot::parse(tables).map_err(|e| Error::Remote {
        what: format!("reading `{}` from {nb_leader}", nb_argv.join(" ")),
        detail: e.to_string(),
        hint: "run `kubectl ko nbctl --format=json list ACL` to see what the NB returns".into(),
    })?;
    Ok((nb, nb_global))
}

/// The logical switch ports `names` that `nb` lacks, read and added (a
/// narrow snapshot holds only the trace's own); a failed read leaves `nb`
/// as it was (the verdict then names fewer owners).
pub(super) async fn add_lsps(
    cluster: &Cluster,
    nb_leader: &PodRef,
    nb: &mut NbSnapshot,
    names: &[String],
) {
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !n.is_empty() && nb.lsp(n).is_none())
        .cloned()
        .collect();
    if !nb.lsps_partial || missing.is_empty() {
        return;
    }
    let argv = NbSnapshot::lsps_argv(Some(&missing));
    if let Ok(out) = cluster
        .exec_capture(nb_leader, container::OVN_CENTRAL, &argv)
        .await
        && out.success()
        && let Ok(lsps) = NbSnapshot::parse_lsps(&out.stdout_str())
    {
        nb.add_lsps(lsps);
    }
}

/// The NB rows again (all but the switch ports) when the trace crossed ACLs,
/// routes, policies or NAT rules the snapshot (read before the trace) does not
/// have: a policy or route applied meanwhile would otherwise go unnamed. A
/// failed read keeps the older rows (the hop is then named as far as they allow).
pub(super) async fn refresh_rows(
    cluster: &Cluster,
    nb_leader: &PodRef,
    nb: &mut NbSnapshot,
    trace: &ko_ovn::ovn_trace::OvnTrace,
    sb: Option<&ko_ovn::verdict::nb::SbSnapshot>,
) {
    if !nb.lacks_rows_of(trace, sb) {
        return;
    }
    let argv = NbSnapshot::rows_argv();
    if let Ok(out) = cluster
        .exec_capture(nb_leader, container::OVN_CENTRAL, &argv)
        .await
        && out.success()
    {
        let _ = nb.replace_rows(&out.stdout_str());
    }
}

/// Every logical switch port, added to a narrow snapshot: the destination
/// address is on the sender's subnet but none of the ports read has it
/// (the narrow read worked, so ovsdb-client is there).
async fn add_all_lsps(cluster: &Cluster, nb_leader: &PodRef, nb: &mut NbSnapshot) -> Result<()> {
    let argv = NbSnapshot::lsps_argv(None);
    let text = cluster
        .exec_ok(nb_leader, container::OVN_CENTRAL, &argv)
        .await?;
    let lsps = NbSnapshot::parse_lsps(&text).map_err(|e| Error::Remote {
        what: format!("reading `{}` from {nb_leader}", argv.join(" ")),
        detail: e.to_string(),
        hint: "run `kubectl ko nbctl list Logical_Switch_Port` to see what the NB returns".into(),
    })?;
    nb.add_lsps(lsps);
    nb.lsps_partial = false;
    Ok(())
}

/// The ports a narrow NB snapshot may lack once the sender is known: a
/// hostNetwork pod's node port (not named up front), and every LSP when the
/// destination is on the sender's subnet but none of the ports read has it
/// (a port of another kind than a pod's; a router port's address is known).
async fn complete_nb(
    cluster: &Cluster,
    nb_leader: &PodRef,
    nb: &mut NbSnapshot,
    req: &Request,
    sender: &Sender,
) -> Result<()> {
    add_lsps(
        cluster,
        nb_leader,
        nb,
        std::slice::from_ref(&sender.logical_port),
    )
    .await;
    if nb.lsps_partial
        && nb.mac_of_ip(req.dst_ip).is_none()
        && !nb.is_router_port_ip(req.dst_ip)
        && source::in_cidrs(req.dst_ip, &sender.cidrs)
    {
        add_all_lsps(cluster, nb_leader, nb).await?;
    }
    Ok(())
}

/// Step 2: the destination MAC as upstream finds it, reading the sender's
/// subnet only when it is needed.
pub(super) async fn resolve_destination(
    cluster: &Cluster,
    req: &Request,
    origin: &Origin,
    reads: Reads,
) -> Result<Target> {
    let sender = &origin.sender;
    let Reads {
        mut nb,
        nb_global,
        nb_leader,
        local_ifaces,
        central_version,
        services,
    } = reads;
    complete_nb(cluster, &nb_leader, &mut nb, req, sender).await?;
    // A pod's subnet is needed only to resolve a destination MAC ourselves:
    // when the destination is outside the sender's own subnet (underlay
    // gateway or logical router MAC), or inside it but no LSP has it.
    let may_need_subnet = sender.kind == "pod"
        && req.dst_mac.is_none()
        && !matches!(req.protocol, Protocol::Arp { op: ArpOp::Request })
        && super::destination::group_mac(req.dst_ip).is_none();
    let need_subnet = may_need_subnet
        && (!source::in_cidrs(req.dst_ip, &sender.cidrs) || nb.mac_of_ip(req.dst_ip).is_none());
    let subnet = if need_subnet {
        Some(cluster.get_subnet(&sender.logical_switch).await?)
    } else {
        None
    };
    let (dst_mac, mac_from) = destination_mac(
        cluster,
        req,
        sender,
        &nb,
        subnet.as_ref(),
        local_ifaces.as_deref(),
    )
    .await?;
    Ok(Target {
        nb,
        nb_leader,
        nb_global,
        dst_mac,
        mac_from,
        local_ifaces,
        central_version,
        services,
    })
}

/// The sender, and for a pod the node whose existence is still to be
/// checked (at once with the reads that follow).
pub(super) async fn resolve_sender(
    cluster: &Cluster,
    src: &SourceRef,
    arp: bool,
) -> cluster::Result<(Sender, Option<String>)> {
    let to_cluster = |e: Error| match e {
        Error::Cluster(c) => c,
        other => cluster::Error::Api {
            what: "reading the trace source".into(),
            detail: other.to_string(),
            hint: "check the pod's / node's Kube-OVN annotations".into(),
        },
    };
    match src {
        SourceRef::Node(name) => {
            let node = cluster.get_node(name).await?;
            Ok((source::from_node(&node, arp).map_err(to_cluster)?, None))
        }
        SourceRef::Pod { namespace, name } => {
            let pod = cluster.get_pod(namespace, name).await?;
            source::ready(&pod)?;
            let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if source::is_host_network(&pod) {
                // a hostNetwork pod sends as its node (upstream #2761)
                let node_name = node_name.unwrap_or_default();
                let node =
                    source::existing_node(cluster.get_node(&node_name).await, namespace, name)?;
                let mut s = source::from_node(&node, arp).map_err(to_cluster)?;
                s.name = format!("{node_name} (hostNetwork pod {namespace}/{name})");
                return Ok((s, None));
            }
            Ok((source::from_pod(&pod).map_err(to_cluster)?, node_name))
        }
    }
}

/// The usable pod of a DaemonSet on `node`, from one list of all of them.
pub(super) fn pod_on_node(pods: &[Pod], node: &str, what: &str, ns: &str) -> Result<PodRef> {
    let on_node: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .collect();
    if let Some(p) = on_node.iter().find(|p| unusable_reason(p).is_none()) {
        return Ok(PodRef::from_pod(p));
    }
    if let Some(p) = on_node.first() {
        let name = p.metadata.name.clone().unwrap_or_default();
        return Err(cluster::Error::NotRunning {
            pod: format!("{ns}/{name} ({what} on {node})"),
            namespace: ns.into(),
            name,
            detail: unusable_reason(p).unwrap_or_default(),
        }
        .into());
    }
    Err(cluster::Error::NotFound {
        what: format!("{what} pod on node {node}"),
        detail: format!(" in namespace {ns}"),
        hint: format!("`kubectl -n {ns} get pods -o wide`; pass --kube-ovn-namespace if Kube-OVN runs elsewhere"),
    }
    .into())
}
