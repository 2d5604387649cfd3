//! Step 5 of a trace: a packet that leaves its node through a tunnel is
//! traced on, with ofproto/trace on the receiving node (up to
//! `MAX_OVS_HOPS` nodes), each hop from the previous hop's final packet.
//! The walk starts in step 4, beside ovn-trace, naming the far node by its
//! address ([`follow_guessed`]); once the SB is read, [`follow_tunnels`]
//! keeps what the SB confirms and traces on from there.

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::microflow::{self, TunnelMetadata};
use ko_ovn::ofproto::{self, OfprotoTrace};
use ko_ovn::verdict::nb::SbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsExit, OvsSegment};
use ko_ovn::versions::NodeVersions;

use super::health;
use super::health::Controllers;
use super::reads::{RawRun, SbAt, complete_sb, interfaces, node_versions};
use super::resolve::pod_on_node;
use crate::cluster::{Cluster, container};

/// How many nodes an OVS trace may cross (source node + tunnel hops).
const MAX_OVS_HOPS: usize = 4;

/// An OVS walk across nodes: the segments, the raw runs and what was read on
/// the nodes reached. The tools step fills it while ovn-trace still runs.
#[derive(Default)]
pub(super) struct OvsWalk {
    /// One OVS segment per node, the sender's first.
    pub segments: Vec<(OvsSegment, OfprotoTrace)>,
    pub raw_runs: Vec<RawRun>,
    pub warnings: Vec<String>,
    /// ovn-controller's answer on each node reached.
    pub controllers: Controllers,
    /// The versions of the nodes reached (the sender's first once known).
    pub versions: Vec<NodeVersions>,
    /// Nodes whose versions are the sender node's (same image, not read).
    pub borrowed: Vec<String>,
    /// For each segment after the first taken before the SB was read: the
    /// tunnel source address it was traced with and its raw run's index.
    pub guessed: Vec<(String, usize)>,
}

/// Where a tunnel endpoint leads.
enum Endpoints<'a> {
    /// The SB's chassis and their encapsulation addresses: authoritative.
    Sb(&'a SbSnapshot),
    /// Before the SB is read: Kube-OVN's tunnel endpoint is the node's
    /// address unless a tunnel interface was configured, and ovs-ovn runs
    /// in the host network, so its pod's address names the node. Checked
    /// against the SB afterwards ([`follow_tunnels`]).
    NodeAddresses(&'a [Pod]),
}

impl Endpoints<'_> {
    fn node_of(&self, ip: &str) -> Option<String> {
        match self {
            Endpoints::Sb(sb) => sb.chassis_by_encap_ip(ip).map(|c| c.node.clone()),
            Endpoints::NodeAddresses(pods) => pods
                .iter()
                .find(|p| pod_addresses(p).any(|a| a == ip))
                .and_then(|p| p.spec.as_ref()?.node_name.clone()),
        }
    }

    fn ip_of(&self, node: &str) -> Option<String> {
        match self {
            Endpoints::Sb(sb) => sb
                .chassis
                .iter()
                .find(|c| c.node == node)
                .and_then(|c| c.encap_ips.first().cloned()),
            Endpoints::NodeAddresses(pods) => pods
                .iter()
                .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
                // the same addresses node_of reads: hostIP, then hostIPs
                .and_then(|p| pod_addresses(p).next().map(String::from)),
        }
    }
}

fn pod_addresses(p: &Pod) -> impl Iterator<Item = &str> {
    let st = p.status.as_ref();
    let host = st.and_then(|s| s.host_ip.as_deref());
    let hosts = st
        .and_then(|s| s.host_ips.as_ref())
        .into_iter()
        .flatten()
        .map(|h| h.ip.as_str());
    host.into_iter().chain(hosts)
}

/// One tunnel hop traced on the node it reached.
struct Hop {
    segment: OvsSegment,
    trace: OfprotoTrace,
    raw: RawRun,
    versions: NodeVersions,
    local_ip: String,
    /// Runs the sender node's ovs-ovn image: `versions` are to be borrowed.
    same_image: bool,
}

/// The image an ovs-ovn pod runs: the resolved image ID (digest) when the
/// kubelet reported it, else the image named in the spec.
fn ovs_image<'a>(ovs_pods: &'a [Pod], pod_name: &str) -> Option<&'a str> {
    let pod = ovs_pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod_name))?;
    let reported = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.name == container::OPENVSWITCH)
                .or(cs.first())
        })
        .map(|c| c.image_id.as_str())
        .filter(|id| !id.is_empty());
    reported.or_else(|| {
        let spec = pod.spec.as_ref()?;
        spec.containers
            .iter()
            .find(|c| c.name == container::OPENVSWITCH)
            .or(spec.containers.first())?
            .image
            .as_deref()
    })
}

/// The image of the usable ovs-ovn pod on `node`.
fn image_on_node<'a>(ovs_pods: &'a [Pod], node: &str, ns: &str) -> Option<&'a str> {
    let pod = pod_on_node(ovs_pods, node, "ovs-ovn (app=ovs)", ns).ok()?;
    ovs_image(ovs_pods, &pod.name)
}

/// Gives the nodes that run the sender node's image its versions.
pub(super) fn borrow_versions(walk: &mut OvsWalk) {
    let Some(own) = walk.versions.first().cloned() else {
        return;
    };
    for v in walk.versions.iter_mut().skip(1) {
        if walk.borrowed.contains(&v.node) {
            v.ovn_controller = own.ovn_controller.clone();
            v.ovs_vswitchd = own.ovs_vswitchd.clone();
        }
    }
    for (seg, _) in walk.segments.iter_mut().skip(1) {
        if walk.borrowed.contains(&seg.node) {
            seg.ovn_version = own.ovn_controller.clone();
        }
    }
}

/// Why a hop was not traced: a sentence for the user, or nothing to say.
type HopError = Option<String>;

/// Traces the packet leaving `seg` through its tunnel on the node it
/// reaches (`None` when `seg` does not leave through a tunnel).
/// What every hop of one walk shares.
struct Walker<'a> {
    cluster: &'a Cluster,
    ovs_pods: &'a [Pod],
    ns: &'a str,
    /// ofproto/trace options (conntrack state).
    options: &'a [String],
    /// The image of the sender node's ovs-ovn pod.
    sender_image: Option<&'a str>,
}

async fn trace_hop(
    w: &Walker<'_>,
    (seg, t): &(OvsSegment, OfprotoTrace),
    endpoints: &Endpoints<'_>,
    controllers: &mut Controllers,
) -> Option<Result<Hop, HopError>> {
    let Walker {
        cluster,
        ovs_pods,
        ns,
        options,
        sender_image,
    } = *w;
    let OvsExit::Tunnel {
        remote_ip: Some(remote_ip),
        metadata: Some(meta),
        ..
    } = &seg.exit
    else {
        return None;
    };
    Some(async {
        let Some(remote_node) = endpoints.node_of(remote_ip) else {
            return Err(Some(format!(
                "no SB chassis has tunnel endpoint {remote_ip}; the OVS trace stops at the tunnel"
            )));
        };
        let local_ip = endpoints.ip_of(&seg.node);
        let packet = vovs::final_packet(t).ok_or(None)?;
        let pod = pod_on_node(ovs_pods, &remote_node, "ovs-ovn (app=ovs)", ns)
            .map_err(|e| Some(format!("cannot continue the OVS trace on {remote_node}: {e}")))?;
        // the versions and ovn-controller's answer beside the walk, which
        // needs only the interfaces
        // `--version` prints what the image's binaries are: a node running the
        // sender node's ovs-ovn image has its versions (filled in afterwards,
        // `borrow_versions`)
        let same_image = sender_image.is_some() && ovs_image(ovs_pods, &pod.name) == sender_image;
        let node_reads = async {
            tokio::join!(
                async {
                    if same_image {
                        NodeVersions {
                            node: remote_node.clone(),
                            ..NodeVersions::default()
                        }
                    } else {
                        node_versions(cluster, &pod, &remote_node).await
                    }
                },
                health::ask_controller(cluster, ovs_pods, &remote_node),
            )
        };
        let walk = async {
            let ifaces = interfaces(cluster, &pod)
                .await
                .map_err(|e| Some(format!("cannot continue the OVS trace on {remote_node}: {e}")))?;
            // the receiving tunnel port is the one whose remote is the sender
            let Some(tun_port) = ifaces
                .iter()
                .find(|i| i.is_tunnel() && local_ip.is_some() && i.remote_ip == local_ip)
            else {
                return Err(Some(format!(
                    "node {remote_node} has no tunnel port toward {} ({}); the OVS trace stops at the tunnel",
                    seg.node,
                    local_ip.as_deref().unwrap_or("unknown encap IP")
                )));
            };
            let tun_ofport = u32::try_from(tun_port.ofport).map_err(|_| None)?;
            let md = TunnelMetadata {
                tun_id: meta.tun_id.clone(),
                tun_src: local_ip.clone(),
                tun_dst: Some(remote_ip.clone()),
                tun_metadata0: meta.tun_metadata0.clone(),
            };
            let flow = microflow::tunnel_continuation_flow(tun_ofport, &md, &packet);
            let argv = microflow::ofproto_trace_argv_with("br-int", &flow, options);
            let c = pod.container_or_default(container::OPENVSWITCH).to_string();
            let out = cluster
                .exec_capture(&pod, &c, &argv)
                .await
                .map_err(|e| Some(format!("ofproto/trace on {remote_node} failed: {e}")))?;
            Ok((ifaces, flow, argv, out))
        };
        let ((versions, state), walked) = tokio::join!(node_reads, walk);
        if let Some(s) = state {
            controllers.insert(remote_node.clone(), s);
        }
        let (ifaces, flow, argv, out) = walked?;
        let local_ip = local_ip.unwrap_or_default();
        let text = out.stdout_str();
        if !out.success() {
            return Err(Some(format!(
                "ofproto/trace on {remote_node} failed ({}): {}",
                out.exit_code,
                out.stderr_str().trim()
            )));
        }
        let trace = ofproto::parse(&text);
        let mut segment = vovs::segment(&remote_node, &flow, &trace, &ifaces);
        segment.ovn_version = versions.ovn_controller.clone();
        Ok(Hop {
            segment,
            trace,
            raw: RawRun {
                pod: pod.to_string(),
                argv,
                output: format!("{}{}", text, out.stderr_str()),
            },
            versions,
            local_ip,
            same_image,
        })
    }
    .await)
}

/// Follows the tunnels before the SB is read, naming nodes by their
/// addresses; stops quietly where that does not work (the SB path of
/// [`follow_tunnels`] goes on from there and says why it stops).
pub(super) async fn follow_guessed(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    ns: &str,
    walk: &mut OvsWalk,
    options: &[String],
) {
    let endpoints = Endpoints::NodeAddresses(ovs_pods);
    let w = Walker {
        cluster,
        ovs_pods,
        ns,
        options,
        sender_image: walk
            .segments
            .first()
            .and_then(|(seg, _)| image_on_node(ovs_pods, &seg.node, ns)),
    };
    while walk.segments.len() < MAX_OVS_HOPS {
        let Some(last) = walk.segments.last() else {
            return;
        };
        let Some(Ok(hop)) = trace_hop(&w, last, &endpoints, &mut walk.controllers).await else {
            return;
        };
        if hop.same_image {
            walk.borrowed.push(hop.segment.node.clone());
        }
        walk.raw_runs.push(hop.raw);
        walk.guessed.push((hop.local_ip, walk.raw_runs.len() - 1));
        push_versions(&mut walk.versions, hop.versions);
        walk.segments.push((hop.segment, hop.trace));
    }
}

fn push_versions(all: &mut Vec<NodeVersions>, v: NodeVersions) {
    if !all.iter().any(|n| n.node == v.node) {
        all.push(v);
    }
}

/// How many of the hops traced before the SB was read the SB confirms, from
/// the first: a hop stands when the tunnel it left by leads to the node it
/// was traced on (`node_of` the tunnel's remote address) and was traced with
/// the address the SB gives the node it left (`ip_of`). Everything after the
/// first hop that fails is dropped and traced again.
fn hops_the_sb_confirms<T>(
    segments: &[(OvsSegment, T)],
    guessed: &[(String, usize)],
    node_of: impl Fn(&str) -> Option<String>,
    ip_of: impl Fn(&str) -> Option<String>,
) -> usize {
    segments
        .windows(2)
        .zip(guessed.iter())
        .take_while(|(pair, (local_ip, _))| {
            let (prev, next) = (&pair[0].0, &pair[1].0);
            let remote = match &prev.exit {
                OvsExit::Tunnel {
                    remote_ip: Some(ip),
                    ..
                } => node_of(ip),
                _ => None,
            };
            remote.as_deref() == Some(next.node.as_str())
                && ip_of(&prev.node).as_deref() == Some(local_ip.as_str())
        })
        .count()
}

/// Step 5 with the SB at hand: keeps the hops traced before it where the SB
/// agrees on both ends, and traces on from the last agreed segment, reading
/// the logical flows that only the new hops name.
pub(super) async fn follow_tunnels(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    ns: &str,
    at: SbAt<'_>,
    sb: &mut Option<SbSnapshot>,
    walk: &mut OvsWalk,
    ofproto_options: &[String],
) {
    let OvsWalk {
        segments,
        raw_runs,
        warnings,
        controllers,
        versions,
        guessed,
        ..
    } = walk;
    let Some(sbs) = sb.as_ref() else {
        // nothing to check the hops against: keep only the sender's node
        if let Some((_, first_raw)) = guessed.first() {
            raw_runs.truncate(*first_raw);
        }
        segments.truncate(1);
        if segments
            .first()
            .is_some_and(|(s, _)| matches!(s.exit, OvsExit::Tunnel { .. }))
        {
            warnings.push("cannot follow the tunnel: SB chassis rows are unavailable".into());
        }
        return;
    };
    let agreed = {
        let sb_ends = Endpoints::Sb(sbs);
        hops_the_sb_confirms(
            segments,
            guessed,
            |ip| sb_ends.node_of(ip),
            |node| sb_ends.ip_of(node),
        )
    };
    if agreed < guessed.len() {
        // the SB names other nodes: drop what was traced on the wrong ones
        let first_bad_raw = guessed[agreed].1;
        raw_runs.truncate(first_bad_raw);
        segments.truncate(agreed + 1);
    }
    let w = Walker {
        cluster,
        ovs_pods,
        ns,
        options: ofproto_options,
        sender_image: segments
            .first()
            .and_then(|(seg, _)| image_on_node(ovs_pods, &seg.node, ns)),
    };
    while segments.len() < MAX_OVS_HOPS {
        let (Some(last), Some(sbs)) = (segments.last(), sb.as_ref()) else {
            return;
        };
        let mut hop = match trace_hop(&w, last, &Endpoints::Sb(sbs), controllers).await {
            None => return,
            Some(Err(why)) => {
                warnings.extend(why);
                return;
            }
            Some(Ok(hop)) => hop,
        };
        // the sender node's versions are known here: borrow them at once
        if hop.same_image
            && let Some(own) = versions.first()
        {
            hop.versions.ovn_controller = own.ovn_controller.clone();
            hop.versions.ovs_vswitchd = own.ovs_vswitchd.clone();
            hop.segment.ovn_version = own.ovn_controller.clone();
        }
        // logical flows named only by the new node's cookies
        let flows = vovs::logical_flow_refs(&hop.trace, hop.segment.ovn_version.as_deref());
        complete_sb(cluster, at, sb, &flows, &[], warnings).await;
        raw_runs.push(hop.raw);
        push_versions(versions, hop.versions);
        segments.push((hop.segment, hop.trace));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(node: &str, exit: OvsExit) -> (OvsSegment, ()) {
        let seg = OvsSegment {
            node: node.into(),
            bridge: "br-int".into(),
            flow: String::new(),
            hops: vec![],
            exit,
            datapath_actions: None,
            notes: vec![],
            ovn_version: None,
        };
        (seg, ())
    }

    fn tunnel_to(ip: &str) -> OvsExit {
        OvsExit::Tunnel {
            ofport: "3".into(),
            interface: None,
            remote_ip: Some(ip.into()),
            remote_node: None,
            metadata: None,
        }
    }

    /// The SB's view: node n<i> owns 172.18.0.<i>.
    fn node_of(ip: &str) -> Option<String> {
        ip.strip_prefix("172.18.0.").map(|i| format!("n{i}"))
    }
    fn ip_of(node: &str) -> Option<String> {
        node.strip_prefix('n').map(|i| format!("172.18.0.{i}"))
    }

    #[test]
    fn hops_stand_while_the_sb_names_the_same_nodes_and_addresses() {
        // n1 -> tunnel -> n2 -> tunnel -> n3, traced with the addresses the SB gives
        let segs = [
            seg("n1", tunnel_to("172.18.0.2")),
            seg("n2", tunnel_to("172.18.0.3")),
            seg("n3", OvsExit::Group { group: "1".into() }),
        ];
        let guessed = [("172.18.0.1".to_string(), 1), ("172.18.0.2".to_string(), 2)];
        assert_eq!(hops_the_sb_confirms(&segs, &guessed, node_of, ip_of), 2);

        // the second tunnel's address belongs to n4 in the SB, not n3
        let wrong_node = [
            seg("n1", tunnel_to("172.18.0.2")),
            seg("n2", tunnel_to("172.18.0.4")),
            seg("n3", OvsExit::Group { group: "1".into() }),
        ];
        assert_eq!(
            hops_the_sb_confirms(&wrong_node, &guessed, node_of, ip_of),
            1
        );

        // the first hop was traced with an address the SB does not give n1
        // (a dedicated tunnel interface): nothing stands
        let other_src = [("10.0.0.1".to_string(), 1), ("172.18.0.2".to_string(), 2)];
        assert_eq!(hops_the_sb_confirms(&segs, &other_src, node_of, ip_of), 0);

        // a tunnel address the SB does not know, or a hop not left by a tunnel
        let unknown = [
            seg("n1", tunnel_to("192.0.2.9")),
            seg("n2", OvsExit::Group { group: "1".into() }),
        ];
        assert_eq!(hops_the_sb_confirms(&unknown, &guessed, node_of, ip_of), 0);
        let no_tunnel = [
            seg("n1", OvsExit::Group { group: "1".into() }),
            seg("n2", OvsExit::Group { group: "1".into() }),
        ];
        assert_eq!(
            hops_the_sb_confirms(&no_tunnel, &guessed, node_of, ip_of),
            0
        );
    }
}
