//! Step 5 of a trace: a packet that leaves its node through a tunnel is
//! traced on, with ofproto/trace on the receiving node (up to
//! `MAX_OVS_HOPS` nodes), each hop from the previous hop's final packet.

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::microflow::{self, TunnelMetadata};
use ko_ovn::ofproto;
use ko_ovn::verdict::ovs::{self as vovs, OvsExit};
use ko_ovn::versions::{NodeVersions, Versions};

use super::resolve::{Origin, pod_on_node};
use super::tools::{Leg, Traced, fetch_sb, interfaces, node_versions, run_tools};
use super::view::RawRun;
use crate::cluster::{Cluster, PodRef, container};

/// How many nodes an OVS trace may cross (source node + tunnel hops).
const MAX_OVS_HOPS: usize = 4;

/// Step 5: appends a segment per node the packet tunnels to; what stops the
/// walk early becomes a warning.
/// Steps 4 and 5 of one direction: both tools on the sender's node, then (with
/// OVS) the tunnels to the next nodes; the nodes' versions as they were read.
pub(super) async fn trace_leg(
    cluster: &Cluster,
    origin: &Origin,
    leg: &Leg<'_>,
    ovn_central: Option<String>,
    ovn_only: bool,
) -> crate::error::Result<(Traced, Versions)> {
    let mut traced = run_tools(cluster, leg).await?;
    let mut versions = Versions {
        ovn_central,
        nodes: traced.node_versions.take().into_iter().collect(),
    };
    if !ovn_only {
        follow_tunnels(
            cluster,
            &origin.ovs_pods,
            &origin.ns,
            &origin.sb_leader,
            &mut traced,
            &mut versions.nodes,
        )
        .await;
    }
    Ok((traced, versions))
}

pub(super) async fn follow_tunnels(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    ns: &str,
    sb_leader: &PodRef,
    traced: &mut Traced,
    versions: &mut Vec<NodeVersions>,
) {
    let Traced {
        sb,
        segments,
        raw_runs,
        warnings,
        ofproto_options,
        ..
    } = traced;
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
            .find(|i| i.is_tunnel() && local_ip.is_some() && i.remote_ip == local_ip)
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
        let argv = microflow::ofproto_trace_argv_with("br-int", &flow, ofproto_options);
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
