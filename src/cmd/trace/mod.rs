//! `kubectl ko trace` / `ovn-trace`: from a pod (or node) to a verdict.
//!
//! Round trips, with independent ones concurrent:
//! 1. source pod/node ‖ SB leader ‖ NB leader ‖ `app=ovs` pods (one list for all nodes)
//! 2. NB rows (LSPs, LRPs, ACLs, port groups, LBs: one exec) ‖ the subnet
//!    (only when the destination MAC must be derived) ‖ the node's OVS interfaces
//! 3. ovn-trace in the SB leader ‖ ofproto/trace in the node's ovs-ovn
//! 4. SB rows (chassis, encaps, the logical flows the traces named: one exec)
//! 5. per tunnel hop: the next node's interfaces, then ofproto/trace there
//!
//! Nothing user-supplied reaches a shell: every remote command is an argv.

mod args;
pub mod destination;
mod health;
mod service;
pub(crate) mod source;
pub mod view;
mod view_compact;

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::microflow::{self, ArpOp, Mac, Microflow, Protocol, TunnelMetadata};
use ko_ovn::verdict::nb::{NbSnapshot, SbSnapshot};
use ko_ovn::verdict::ovs::{self as vovs, OvsExit, OvsInterface, OvsSegment};
use ko_ovn::verdict::{self, Destination, LbInfo, Source, Verdict};
use ko_ovn::versions::{self, NodeVersions, Versions};
use ko_ovn::{ofproto, trace as ovntrace};

use super::{Ctx, Outcome};
use crate::cli::TraceArgs;
use crate::cluster::{self, Cluster, PodRef, Subnet, container, unusable_reason};
use crate::error::{Error, Result};
pub use args::{Request, SourceRef};
use source::Sender;
use view::{RawRun, TraceView};

/// How many nodes an OVS trace may cross (source node + tunnel hops).
const MAX_OVS_HOPS: usize = 4;

pub async fn run(ctx: &Ctx, args: &TraceArgs, ovn_only: bool) -> Result<Outcome> {
    let parsed = args::parse(args)?;
    let format = ctx.output(args.output.output);
    let cluster = ctx.cluster().await?;
    let (req, named) = destination::resolve(cluster, &parsed).await?;
    let mut view = trace(cluster, &req, ovn_only, args.raw).await?;
    view.destination_name = named;
    view.full = args.full;
    // like upstream's script: the trace ran, so 0, unless asked for the verdict
    let exit = match view.report.verdict {
        Verdict::Error => cluster::error::EXIT_REMOTE,
        v if args.exit_code => v.exit_code(),
        _ => 0,
    };
    Ok(Outcome::report(view, format, exit))
}

/// Runs the whole trace and returns what to render.
pub async fn trace(
    cluster: &Cluster,
    req: &Request,
    ovn_only: bool,
    raw: bool,
) -> Result<TraceView> {
    let ns = cluster.namespace().to_string();
    let arp = matches!(req.protocol, Protocol::Arp { .. });

    // 1. independent lookups
    let (sender, sb_leader, nb_leader, ovs_pods) = tokio::try_join!(
        resolve_sender(cluster, &req.source, arp),
        cluster.sb_leader(),
        cluster.nb_leader(),
        async {
            if ovn_only {
                Ok(Vec::new())
            } else {
                cluster.list_pods(Some(&ns), Some("app=ovs")).await
            }
        },
    )?;

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
    let ovs_pod = if ovn_only {
        None
    } else {
        Some(pod_on_node(
            &ovs_pods,
            &sender.node,
            "ovs-ovn (app=ovs)",
            &ns,
        )?)
    };

    // 2. NB rows, subnet, local OVS interfaces
    // A pod's subnet is needed only to resolve a destination MAC ourselves:
    // up front when the destination is outside the sender's own subnet
    // (underlay gateway or logical router MAC), else only if no LSP has it.
    let may_need_subnet = sender.kind == "pod"
        && req.dst_mac.is_none()
        && !matches!(req.protocol, Protocol::Arp { op: ArpOp::Request });
    let need_subnet = may_need_subnet && !source::in_cidrs(req.dst_ip, &sender.cidrs);
    let nb_argv = NbSnapshot::argv();
    let (nb_text, subnet, local_ifaces, central_version, services) = tokio::try_join!(
        cluster.exec_ok(&nb_leader, container::OVN_CENTRAL, &nb_argv),
        async {
            if need_subnet {
                cluster.get_subnet(&sender.logical_switch).await.map(Some)
            } else {
                Ok(None)
            }
        },
        async {
            match &ovs_pod {
                Some(p) => interfaces(cluster, p).await.map(Some),
                None => Ok(None),
            }
        },
        async { Ok(tool_version(cluster, &nb_leader, container::OVN_CENTRAL, "ovn-northd").await) },
        service::list_if_port(cluster, req.protocol.port()),
    )?;
    let nb = NbSnapshot::parse(&nb_text).map_err(|e| Error::Remote {
        what: format!("reading `{}` from {nb_leader}", nb_argv.join(" ")),
        detail: e.to_string(),
        hint: "run `kubectl ko nbctl --format=json list ACL` to see what the NB returns".into(),
    })?;

    // in the sender's CIDR but no LSP has the address: fall back like upstream
    let subnet = match subnet {
        None if may_need_subnet && nb.mac_of_ip(req.dst_ip).is_none() => {
            Some(cluster.get_subnet(&sender.logical_switch).await?)
        }
        s => s,
    };
    let (dst_mac, mac_from) = destination_mac(
        cluster,
        req,
        &sender,
        &nb,
        subnet.as_ref(),
        local_ifaces.as_deref(),
    )
    .await?;
    let flow = Microflow {
        logical_switch: sender.logical_switch.clone(),
        inport: sender.logical_port.clone(),
        src_mac: sender.mac,
        src_ip,
        dst_mac,
        dst_ip: req.dst_ip,
        protocol: req.protocol,
    };
    flow.validate().map_err(|e| Error::Usage(e.to_string()))?;

    // A Service VIP: tell ovn-trace which backend to follow, so the verdict
    // is reproducible (OVN itself picks one per connection by hash).
    let lb = req.protocol.port().and_then(|port| {
        nb.vip(req.dst_ip, port, req.protocol.name())
            .map(|(lb, vip, backends)| LbInfo {
                name: lb.name.clone(),
                vip,
                backend: backends.first().cloned(),
                backends,
            })
    });
    let mut ovn_argv = flow.ovn_trace_argv();
    if let Some(b) = lb.as_ref().and_then(|l| l.backend.as_ref()) {
        ovn_argv.insert(1, format!("--lb-dst={b}"));
    }

    // 3. both traces at once
    let in_port = match (&local_ifaces, ovn_only) {
        (Some(ifaces), false) => Some(in_port_of(ifaces, &sender)?),
        _ => None,
    };
    let first_flow = in_port.map(|p| flow.ofproto_flow(p));
    let (ovn_out, of_out, local_versions) = tokio::try_join!(
        cluster.exec_capture(&sb_leader, container::OVN_CENTRAL, &ovn_argv),
        async {
            match (&ovs_pod, &first_flow) {
                (Some(pod), Some(f)) => {
                    let argv = microflow::ofproto_trace_argv("br-int", f);
                    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
                    cluster.exec_capture(pod, &c, &argv).await.map(Some)
                }
                _ => Ok(None),
            }
        },
        async {
            Ok(match &ovs_pod {
                Some(p) => Some(node_versions(cluster, p, &sender.node).await),
                None => None,
            })
        },
    )?;
    let ovn_text = ovn_out.stdout_str();
    let ovn_failure = (!ovn_out.success()).then(|| {
        let err = ovn_out.stderr_str();
        let msg = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string();
        format!("ovn-trace exited with {}: {msg}", ovn_out.exit_code)
    });
    let parsed = ovntrace::parse(&ovn_text);

    let mut raw_runs = vec![RawRun {
        pod: sb_leader.to_string(),
        argv: ovn_argv.clone(),
        output: format!("{}{}", ovn_text, ovn_out.stderr_str()),
    }];
    let mut warnings = Vec::new();
    let mut segments: Vec<(OvsSegment, ofproto::OfprotoTrace)> = Vec::new();
    if let (Some(out), Some(pod), Some(f), Some(ifaces)) =
        (&of_out, &ovs_pod, &first_flow, &local_ifaces)
    {
        let text = out.stdout_str();
        raw_runs.push(RawRun {
            pod: pod.to_string(),
            argv: microflow::ofproto_trace_argv("br-int", f),
            output: format!("{}{}", text, out.stderr_str()),
        });
        if out.success() {
            let t = ofproto::parse(&text);
            let mut seg = vovs::segment(&sender.node, f, &t, ifaces);
            seg.ovn_version = local_versions
                .as_ref()
                .and_then(|v| v.ovn_controller.clone());
            segments.push((seg, t));
        } else {
            warnings.push(format!(
                "ofproto/trace on {} failed ({}): {}",
                sender.node,
                out.exit_code,
                out.stderr_str().trim()
            ));
        }
    }

    // 4. SB rows for the flows both traces named
    let mut prefixes: Vec<String> = parsed
        .hops()
        .iter()
        .filter_map(|h| h.hop.uuid.clone())
        .collect();
    for (seg, t) in &segments {
        prefixes.extend(vovs::logical_cookies(t, seg.ovn_version.as_deref()));
    }
    let mut sb = fetch_sb(cluster, &sb_leader, &prefixes, &mut warnings).await;

    // 5. follow tunnels to the next node
    let mut versions = Versions {
        ovn_central: central_version,
        nodes: local_versions.into_iter().collect(),
    };
    if !ovn_only {
        follow_tunnels(
            cluster,
            &ovs_pods,
            &ns,
            &mut sb,
            &sb_leader,
            &mut segments,
            &mut raw_runs,
            &mut warnings,
            &mut versions.nodes,
        )
        .await;
    }
    warnings.extend(versions.skew());

    let service = req.protocol.port().and_then(|port| {
        service::of_destination(
            &services,
            req.dst_ip,
            port,
            req.protocol.name(),
            lb.is_some(),
        )
    });
    let catalog = |stage: &str| explain(stage);
    let outport = parsed.outcome().outputs.last().map(|o| o.port.clone());
    let nodes = health::path_nodes(
        &sender.node,
        &sender.logical_port,
        outport.as_deref(),
        sb.as_ref(),
    );
    let ovs_for_health = if ovn_only {
        cluster
            .list_pods(Some(&ns), Some("app=ovs"))
            .await
            .unwrap_or_default()
    } else {
        ovs_pods.clone()
    };
    let mut health = health::warnings(cluster, &ovs_for_health, &nodes, sb.as_ref()).await;
    health.append(&mut warnings);
    let warnings = health;
    let mut report = verdict::build(verdict::Inputs {
        source: Source {
            kind: sender.kind.to_string(),
            name: sender.name.clone(),
            node: sender.node.clone(),
            logical_switch: sender.logical_switch.clone(),
            logical_port: sender.logical_port.clone(),
            ip: src_ip.to_string(),
            mac: sender.mac.to_string(),
        },
        destination: Destination {
            ip: req.dst_ip.to_string(),
            mac: dst_mac.to_string(),
            mac_from,
            protocol: req.protocol.name().to_string(),
            port: req.protocol.port(),
            arp: match req.protocol {
                Protocol::Arp { op: ArpOp::Request } => Some("request".into()),
                Protocol::Arp { op: ArpOp::Reply } => Some("reply".into()),
                _ => None,
            },
        },
        ovn_trace: &parsed,
        ovn_trace_failure: ovn_failure,
        nb: Some(&nb),
        sb: sb.as_ref(),
        lb,
        service,
        ovs: (!ovn_only).then(|| segments.into_iter().map(|(s, _)| s).collect()),
        warnings,
        explain: &catalog,
    });
    stale_side(&mut report);
    Ok(TraceView {
        report,
        versions,
        raw: raw.then_some(raw_runs),
        destination_name: None,
        full: false,
    })
}

/// When ovn-trace and ofproto/trace disagree and an ovn-controller on the
/// path is unhealthy, the OpenFlow side is the stale one: say so.
fn stale_side(report: &mut verdict::TraceReport) {
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

/// One line on what a logical stage does (the ko-ovn stage catalogue).
fn explain(stage: &str) -> Option<String> {
    ko_ovn::catalog::stage(stage).map(|s| s.summary.to_string())
}

async fn resolve_sender(cluster: &Cluster, src: &SourceRef, arp: bool) -> cluster::Result<Sender> {
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
            source::from_node(&node, arp).map_err(to_cluster)
        }
        SourceRef::Pod { namespace, name } => {
            let pod = cluster.get_pod(namespace, name).await?;
            source::ready(&pod)?;
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                source::known_node(cluster.get_node(node).await, namespace, name)?;
            }
            if source::is_host_network(&pod) {
                // a hostNetwork pod sends as its node (upstream #2761)
                let node_name = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                let node = cluster.get_node(&node_name).await?;
                let mut s = source::from_node(&node, arp).map_err(to_cluster)?;
                s.name = format!("{node_name} (hostNetwork pod {namespace}/{name})");
                return Ok(s);
            }
            source::from_pod(&pod).map_err(to_cluster)
        }
    }
}

/// The usable pod of a DaemonSet on `node`, from one list of all of them.
fn pod_on_node(pods: &[Pod], node: &str, what: &str, ns: &str) -> Result<PodRef> {
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

async fn interfaces(cluster: &Cluster, pod: &PodRef) -> cluster::Result<Vec<OvsInterface>> {
    let argv = vovs::interfaces_argv();
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let text = cluster.exec_ok(pod, &c, &argv).await?;
    vovs::parse_interfaces(&text).map_err(|e| cluster::Error::Api {
        what: format!("reading `{}` from {pod}", argv.join(" ")),
        detail: e.to_string(),
        hint: format!(
            "run `kubectl ko vsctl {} list interface`",
            pod.node.as_deref().unwrap_or("<node>")
        ),
    })
}

fn in_port_of(ifaces: &[OvsInterface], sender: &Sender) -> Result<u32> {
    let iface = ifaces
        .iter()
        .find(|i| i.iface_id.as_deref() == Some(sender.logical_port.as_str()))
        .ok_or_else(|| {
            Error::Cluster(cluster::Error::NotFound {
                what: format!("OVS interface of logical port {} on node {}", sender.logical_port, sender.node),
                detail: " (no interface has external_ids:iface-id with that name)".into(),
                hint: format!(
                    "the CNI has not plugged it: `kubectl ko vsctl {} find interface external_ids:iface-id={}`",
                    sender.node, sender.logical_port
                ),
            })
        })?;
    u32::try_from(iface.ofport).map_err(|_| Error::Remote {
        what: format!("OVS interface {} of {}", iface.name, sender.logical_port),
        detail: format!("it has no OpenFlow port number (ofport {})", iface.ofport),
        hint: format!(
            "check `kubectl ko vsctl {} list interface {}` for an error",
            sender.node, iface.name
        ),
    })
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

/// The version a daemon's `--version` prints, or `None` when it cannot be
/// run there (the trace does not depend on it).
async fn tool_version(
    cluster: &Cluster,
    pod: &PodRef,
    container: &str,
    tool: &str,
) -> Option<String> {
    let out = cluster
        .exec_capture(pod, container, &versions::version_argv(tool))
        .await
        .ok()?;
    versions::parse_version(&out.stdout_str())
}

/// ovn-controller's and ovs-vswitchd's versions on a node's ovs-ovn pod.
async fn node_versions(cluster: &Cluster, pod: &PodRef, node: &str) -> NodeVersions {
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let (ovn_controller, ovs_vswitchd) = tokio::join!(
        tool_version(cluster, pod, &c, "ovn-controller"),
        tool_version(cluster, pod, &c, "ovs-vswitchd"),
    );
    NodeVersions {
        node: node.to_string(),
        ovn_controller,
        ovs_vswitchd,
    }
}

async fn fetch_sb(
    cluster: &Cluster,
    sb_leader: &PodRef,
    prefixes: &[String],
    warnings: &mut Vec<String>,
) -> Option<SbSnapshot> {
    let mut prefixes = prefixes.to_vec();
    // A flow can vanish between the trace and this read (northd recomputes);
    // ovsdb then names the missing row and the rest is asked again.
    for _ in 0..4 {
        let argv = SbSnapshot::argv(&prefixes);
        let out = match cluster
            .exec_capture(sb_leader, container::OVN_CENTRAL, &argv)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                warnings.push(format!("could not read SB logical flows and chassis: {e}"));
                return None;
            }
        };
        if out.success() {
            return match SbSnapshot::parse(&out.stdout_str()) {
                Ok(s) => Some(s),
                Err(e) => {
                    warnings.push(format!("could not read SB rows: {e}"));
                    None
                }
            };
        }
        let err = out.stderr_str();
        let missing = err
            .split("no row \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        match missing {
            Some(m) if prefixes.contains(&m) => prefixes.retain(|p| p != &m),
            _ => {
                warnings.push(format!(
                    "could not read SB logical flows and chassis ({}); stages are shown without their NB objects",
                    err.trim()
                ));
                return None;
            }
        }
    }
    warnings.push(
        "could not read SB logical flows: too many of them disappeared while tracing; retry".into(),
    );
    None
}

#[allow(clippy::too_many_arguments)]
async fn follow_tunnels(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    ns: &str,
    sb: &mut Option<SbSnapshot>,
    sb_leader: &PodRef,
    segments: &mut Vec<(OvsSegment, ofproto::OfprotoTrace)>,
    raw_runs: &mut Vec<RawRun>,
    warnings: &mut Vec<String>,
    versions: &mut Vec<NodeVersions>,
) {
    while segments.len() < MAX_OVS_HOPS {
        let Some((seg, t)) = segments.last() else {
            return;
        };
        let OvsExit::Tunnel {
            remote_ip: Some(remote_ip),
            metadata: Some(meta),
            ..
        } = &seg.exit
        else {
            return;
        };
        let Some(sbs) = sb.as_ref() else {
            warnings.push("cannot follow the tunnel: SB chassis rows are unavailable".into());
            return;
        };
        let Some(remote) = sbs.chassis_by_encap_ip(remote_ip) else {
            warnings.push(format!(
                "no SB chassis has tunnel endpoint {remote_ip}; the OVS trace stops at the tunnel"
            ));
            return;
        };
        let local_ip = sbs
            .chassis
            .iter()
            .find(|c| c.node == seg.node)
            .and_then(|c| c.encap_ips.first().cloned());
        let remote_node = remote.node.clone();
        let Some(packet) = vovs::final_packet(t) else {
            return;
        };
        let pod = match pod_on_node(ovs_pods, &remote_node, "ovs-ovn (app=ovs)", ns) {
            Ok(p) => p,
            Err(e) => {
                warnings.push(format!(
                    "cannot continue the OVS trace on {remote_node}: {e}"
                ));
                return;
            }
        };
        let (ifaces, node_v) = tokio::join!(
            interfaces(cluster, &pod),
            node_versions(cluster, &pod, &remote_node)
        );
        let ifaces = match ifaces {
            Ok(i) => i,
            Err(e) => {
                warnings.push(format!(
                    "cannot continue the OVS trace on {remote_node}: {e}"
                ));
                return;
            }
        };
        // the receiving tunnel port is the one whose remote is the sender
        let Some(tun_port) = ifaces
            .iter()
            .find(|i| vovs::is_tunnel(i) && local_ip.is_some() && i.remote_ip == local_ip)
        else {
            warnings.push(format!(
                "node {remote_node} has no tunnel port toward {} ({}); the OVS trace stops at the tunnel",
                seg.node,
                local_ip.as_deref().unwrap_or("unknown encap IP")
            ));
            return;
        };
        let Ok(tun_ofport) = u32::try_from(tun_port.ofport) else {
            return;
        };
        let md = TunnelMetadata {
            tun_id: meta.tun_id.clone(),
            tun_src: local_ip.clone(),
            tun_dst: Some(remote_ip.clone()),
            tun_metadata0: meta.tun_metadata0.clone(),
        };
        let flow = microflow::tunnel_continuation_flow(tun_ofport, &md, &packet);
        let argv = microflow::ofproto_trace_argv("br-int", &flow);
        let c = pod.container_or_default(container::OPENVSWITCH).to_string();
        let out = match cluster.exec_capture(&pod, &c, &argv).await {
            Ok(o) => o,
            Err(e) => {
                warnings.push(format!("ofproto/trace on {remote_node} failed: {e}"));
                return;
            }
        };
        let text = out.stdout_str();
        raw_runs.push(RawRun {
            pod: pod.to_string(),
            argv: argv.clone(),
            output: format!("{}{}", text, out.stderr_str()),
        });
        if !out.success() {
            warnings.push(format!(
                "ofproto/trace on {remote_node} failed ({}): {}",
                out.exit_code,
                out.stderr_str().trim()
            ));
            return;
        }
        let t2 = ofproto::parse(&text);
        // logical flows named only by the remote node's cookies
        let missing: Vec<String> = vovs::logical_cookies(&t2, node_v.ovn_controller.as_deref())
            .into_iter()
            .filter(|p| sb.as_ref().is_none_or(|s| s.lflow(p).is_none()))
            .collect();
        if !missing.is_empty()
            && let Some(extra) = fetch_sb(cluster, sb_leader, &missing, warnings).await
            && let Some(s) = sb.as_mut()
        {
            s.lflows.extend(extra.lflows);
        }
        let mut seg2 = vovs::segment(&remote_node, &flow, &t2, &ifaces);
        seg2.ovn_version = node_v.ovn_controller.clone();
        if !versions.iter().any(|v| v.node == node_v.node) {
            versions.push(node_v);
        }
        segments.push((seg2, t2));
    }
}
