//! Step 4 of a trace: run ovn-trace in the SB leader and ofproto/trace on the
//! sender's node at once, then read the SB rows both traces named. Also the
//! small remote reads the other steps share (OVS interfaces, versions).

use ko_ovn::microflow;
use ko_ovn::ofproto::{self, OfprotoTrace};
use ko_ovn::ovn_trace::{self, OvnTrace};
use ko_ovn::verdict::nb::SbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsInterface, OvsSegment};
use ko_ovn::versions::{self, NodeVersions};

use super::microflow::Packet;
use super::source::Sender;
use super::view::RawRun;
use crate::cluster::{self, Cluster, PodRef, container};
use crate::error::{Error, Result};

/// One direction of a connection, ready for the tools.
pub(super) struct Leg<'a> {
    pub sender: &'a Sender,
    pub sb_leader: &'a PodRef,
    /// The ovs-ovn pod on the sender's node (`None` for `ovn-trace`).
    pub ovs_pod: Option<&'a PodRef>,
    /// That node's OVS interfaces (`None` for `ovn-trace`).
    pub ifaces: Option<&'a [OvsInterface]>,
    pub packet: &'a Packet,
}

/// What the tools said, gathered for the tunnel and verdict steps.
pub(super) struct Traced {
    pub ovn: OvnTrace,
    /// Set when ovn-trace itself failed: its last message.
    pub ovn_failure: Option<String>,
    pub raw_runs: Vec<RawRun>,
    pub warnings: Vec<String>,
    /// One OVS segment per node, the sender's first.
    pub segments: Vec<(OvsSegment, OfprotoTrace)>,
    /// ovn-controller and ovs-vswitchd versions on the sender's node.
    pub node_versions: Option<NodeVersions>,
    pub sb: Option<SbSnapshot>,
    /// ofproto/trace options every node's trace takes (conntrack state).
    pub ofproto_options: Vec<String>,
}

/// Step 4: both traces at once, then the SB rows for the flows they named.
pub(super) async fn run_tools(cluster: &Cluster, leg: &Leg<'_>) -> Result<Traced> {
    let sender = leg.sender;
    let flow = &leg.packet.flow;
    let ovn_argv = &leg.packet.ovn_argv;
    let in_port = match leg.ifaces {
        Some(ifaces) => Some(in_port_of(ifaces, sender)?),
        None => None,
    };
    let first_flow = in_port.map(|p| flow.ofproto_flow(p));
    let of_options = flow.ofproto_options();
    let (ovn_out, of_out, node_versions) = tokio::try_join!(
        cluster.exec_capture(leg.sb_leader, container::OVN_CENTRAL, ovn_argv),
        async {
            match (leg.ovs_pod, &first_flow) {
                (Some(pod), Some(f)) => {
                    let argv = microflow::ofproto_trace_argv_with("br-int", f, &of_options);
                    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
                    cluster.exec_capture(pod, &c, &argv).await.map(Some)
                }
                _ => Ok(None),
            }
        },
        async {
            Ok(match leg.ovs_pod {
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
    let parsed = ovn_trace::parse(&ovn_text);

    let mut raw_runs = vec![RawRun {
        pod: leg.sb_leader.to_string(),
        argv: ovn_argv.clone(),
        output: format!("{}{}", ovn_text, ovn_out.stderr_str()),
    }];
    let mut warnings = Vec::new();
    let mut segments: Vec<(OvsSegment, OfprotoTrace)> = Vec::new();
    if let (Some(out), Some(pod), Some(f), Some(ifaces)) =
        (&of_out, leg.ovs_pod, &first_flow, leg.ifaces)
    {
        let text = out.stdout_str();
        raw_runs.push(RawRun {
            pod: pod.to_string(),
            argv: microflow::ofproto_trace_argv_with("br-int", f, &of_options),
            output: format!("{}{}", text, out.stderr_str()),
        });
        if out.success() {
            let t = ofproto::parse(&text);
            let mut seg = vovs::segment(&sender.node, f, &t, ifaces);
            seg.ovn_version = node_versions
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

    // the SB rows for the flows both traces named
    let mut prefixes: Vec<String> = parsed
        .hops()
        .iter()
        .filter_map(|h| h.hop.uuid.clone())
        .collect();
    for (seg, t) in &segments {
        prefixes.extend(vovs::logical_cookies(t, seg.ovn_version.as_deref()));
    }
    let sb = fetch_sb(cluster, leg.sb_leader, &prefixes, &mut warnings).await;
    Ok(Traced {
        ovn: parsed,
        ovn_failure,
        raw_runs,
        warnings,
        segments,
        node_versions,
        sb,
        ofproto_options: of_options,
    })
}

pub(super) async fn interfaces(
    cluster: &Cluster,
    pod: &PodRef,
) -> cluster::Result<Vec<OvsInterface>> {
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

/// The version a daemon's `--version` prints, or `None` when it cannot be
/// run there (the trace does not depend on it).
pub(super) async fn tool_version(
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
pub(super) async fn node_versions(cluster: &Cluster, pod: &PodRef, node: &str) -> NodeVersions {
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

pub(super) async fn fetch_sb(
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
