//! Step 4 of a trace: run ovn-trace in the SB leader and ofproto/trace on the
//! sender's node at once, then read the SB rows both traces named. Also the
//! small remote reads the other steps share (OVS interfaces, versions).

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::microflow;
use ko_ovn::ofproto;
use ko_ovn::ovn_trace::{self as ovntrace, OvnTrace};
use ko_ovn::ovsdb_rows::DatapathBinding;
use ko_ovn::verdict::nb::SbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsInterface};
use ko_ovn::verdict::sb_query::{self, FlowRef};
use ko_ovn::versions::Versions;

use super::health;
use super::microflow::Packet;
use super::reads::{RawRun, SbAt, complete_sb, datapaths, fetch_sb, node_versions};
use super::resolve::Origin;
use super::source::Sender;
use super::tunnels::{self, OvsWalk};
use crate::cluster::{self, Cluster, PodRef, container};
use crate::error::{Error, Result};

/// One direction of a connection, ready for the tools.
pub(super) struct Leg<'a> {
    pub sender: &'a Sender,
    /// Every `app=ovs` pod: where the nodes the packet reaches are asked.
    pub ovs_pods: &'a [Pod],
    pub sb_leader: &'a PodRef,
    /// The ovs-ovn pod on the sender's node (`None` for `ovn-trace`).
    pub ovs_pod: Option<&'a PodRef>,
    /// That node's OVS interfaces (`None` for `ovn-trace`).
    pub ifaces: Option<&'a [OvsInterface]>,
    pub packet: &'a Packet,
    /// The logical port at the other end (the destination's LSP, when known):
    /// its SB binding is read with the sender's.
    pub peer_port: Option<&'a str>,
    /// Fired when the SB read starts (see [`Signal`]).
    pub sb_read: &'a Signal,
}

/// Fired once, when the tools step starts its last read (the SB rows): what
/// waits for it (northd's health) then runs beside that read instead of
/// competing with the traces for the cluster's attention.
#[derive(Default)]
pub(super) struct Signal(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Signal {
    pub fn new(tx: tokio::sync::oneshot::Sender<()>) -> Self {
        Signal(std::sync::Mutex::new(Some(tx)))
    }

    pub fn fire(&self) {
        if let Some(tx) = self.take() {
            let _ = tx.send(());
        }
    }

    /// Nothing will fire any more (the steps ended): the waiter gives up.
    pub fn cancel(&self) {
        drop(self.take());
    }

    fn take(&self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

/// What the tools said, gathered for the tunnel and verdict steps.
pub(super) struct Traced {
    pub ovn: OvnTrace,
    /// Set when ovn-trace itself failed: its last message.
    pub ovn_failure: Option<String>,
    /// The OVS walk across nodes; its raw runs start with ovn-trace's and
    /// its versions with the sender node's.
    pub walk: OvsWalk,
    pub sb: Option<SbSnapshot>,
    /// The SB's datapaths: where later reads place the flows they look for.
    pub datapaths: Vec<DatapathBinding>,
    /// ofproto/trace options every node's trace takes (conntrack state).
    pub ofproto_options: Vec<String>,
}

/// Steps 4 and 5 of one direction: both tools on the sender's node (and the
/// OVS walk across tunnels), then (with OVS) the walk checked against the SB
/// and continued; the nodes' versions as they were read.
pub(super) async fn trace_leg(
    cluster: &Cluster,
    origin: &Origin,
    leg: &Leg<'_>,
    ovn_central: Option<String>,
    ovn_only: bool,
) -> Result<(Traced, Versions)> {
    let mut traced = run_tools(cluster, leg).await?;
    if !ovn_only {
        tunnels::follow_tunnels(
            cluster,
            &origin.ovs_pods,
            &origin.ns,
            SbAt {
                leader: &origin.sb_leader,
                datapaths: &traced.datapaths,
            },
            &mut traced.sb,
            &mut traced.walk,
            &traced.ofproto_options,
        )
        .await;
    }
    let versions = Versions {
        ovn_central,
        nodes: std::mem::take(&mut traced.walk.versions),
    };
    Ok((traced, versions))
}

/// Step 4: ovn-trace in the SB leader ‖ the OVS walk (ofproto/trace on the
/// sender's node, then on each node a tunnel reaches) ‖ the sender node's
/// versions and ovn-controller; then, once, the SB rows for every flow the
/// traces named. ovn-trace is the slowest tool, so the walk across the
/// tunnels usually costs no time of its own.
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
    let (ovn_out, walked, own_state, ovn_only_datapaths) = tokio::try_join!(
        cluster.exec_capture(leg.sb_leader, container::OVN_CENTRAL, ovn_argv),
        async {
            match (leg.ovs_pod, &first_flow, leg.ifaces) {
                (Some(pod), Some(f), Some(ifaces)) => {
                    walk_and_read_sb(cluster, leg, pod, f, ifaces, &of_options)
                        .await
                        .map(Some)
                }
                _ => Ok(None),
            }
        },
        // the sender's own ovn-controller, for the verdict's health warnings
        async {
            Ok(match leg.ovs_pod {
                Some(_) => health::ask_controller(cluster, leg.ovs_pods, &sender.node).await,
                None => None,
            })
        },
        // without the walk (which reads them), the datapaths beside ovn-trace
        async {
            Ok(match &first_flow {
                Some(_) => Vec::new(),
                None => datapaths(cluster, leg.sb_leader).await,
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

    let (mut walk, sb, datapaths) = match walked {
        Some((walk, sb, dps)) => (walk, Some(sb), dps),
        None => (OvsWalk::default(), None, ovn_only_datapaths),
    };
    // ovn-trace's raw run comes first; the walk's indices shift by one
    walk.raw_runs.insert(
        0,
        RawRun {
            pod: leg.sb_leader.to_string(),
            argv: ovn_argv.clone(),
            output: format!("{}{}", ovn_text, ovn_out.stderr_str()),
        },
    );
    for g in &mut walk.guessed {
        g.1 += 1;
    }
    if let Some(s) = own_state {
        walk.controllers.insert(sender.node.clone(), s);
    }

    // the SB rows for the flows ovn-trace named that the walk did not (the
    // OpenFlow cookies are the logical flows' UUID prefixes, so usually none)
    // and the bindings of the ports it delivered to
    let named = sb_query::ovn_trace_flow_refs(&parsed);
    let mut ports = leg_ports(leg);
    ports.extend(sb_query::ovn_trace_ports(&parsed));
    leg.sb_read.fire();
    let sb = match sb {
        // without OVS: everything ovn-trace named, now
        None => {
            fetch_sb(
                cluster,
                SbAt {
                    leader: leg.sb_leader,
                    datapaths: &datapaths,
                },
                &named,
                &ports,
                true,
                &mut walk.warnings,
            )
            .await
        }
        Some(mut sb) => {
            complete_sb(
                cluster,
                SbAt {
                    leader: leg.sb_leader,
                    datapaths: &datapaths,
                },
                &mut sb,
                &named,
                &ports,
                &mut walk.warnings,
            )
            .await;
            sb
        }
    };
    Ok(Traced {
        ovn: parsed,
        ovn_failure,
        walk,
        sb,
        datapaths,
        ofproto_options: of_options,
    })
}

/// The logical ports whose bindings every read of this leg asks for.
fn leg_ports(leg: &Leg<'_>) -> Vec<String> {
    std::iter::once(leg.sender.logical_port.clone())
        .chain(leg.peer_port.map(str::to_string))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The OVS walk beside the sender node's versions (they name its OpenFlow
/// layout) and the SB's datapaths, then at once the SB rows for every flow
/// the walk named: ovn-trace usually still runs, so the read costs no time
/// of its own.
async fn walk_and_read_sb(
    cluster: &Cluster,
    leg: &Leg<'_>,
    pod: &PodRef,
    first_flow: &str,
    ifaces: &[OvsInterface],
    of_options: &[String],
) -> cluster::Result<(OvsWalk, Option<SbSnapshot>, Vec<DatapathBinding>)> {
    let (walk, own_versions, dps) = tokio::join!(
        ovs_walk(cluster, leg, pod, first_flow, ifaces, of_options),
        node_versions(cluster, pod, &leg.sender.node),
        datapaths(cluster, leg.sb_leader),
    );
    let mut walk = walk?;
    if let Some((seg, _)) = walk.segments.first_mut() {
        seg.ovn_version = own_versions.ovn_controller.clone();
    }
    walk.versions.insert(0, own_versions);
    tunnels::borrow_versions(&mut walk);
    let flows: Vec<FlowRef> = walk
        .segments
        .iter()
        .flat_map(|(seg, t)| vovs::logical_flow_refs(t, seg.ovn_version.as_deref()))
        .collect();
    leg.sb_read.fire();
    let sb = fetch_sb(
        cluster,
        SbAt {
            leader: leg.sb_leader,
            datapaths: &dps,
        },
        &flows,
        &leg_ports(leg),
        true,
        &mut walk.warnings,
    )
    .await;
    Ok((walk, sb, dps))
}

/// ofproto/trace on the sender's node, then across the tunnels it leaves by.
async fn ovs_walk(
    cluster: &Cluster,
    leg: &Leg<'_>,
    pod: &PodRef,
    first_flow: &str,
    ifaces: &[OvsInterface],
    of_options: &[String],
) -> cluster::Result<OvsWalk> {
    let sender = leg.sender;
    let argv = microflow::ofproto_trace_argv_with("br-int", first_flow, of_options);
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let out = cluster.exec_capture(pod, &c, &argv).await?;
    let text = out.stdout_str();
    let mut walk = OvsWalk::default();
    walk.raw_runs.push(RawRun {
        pod: pod.to_string(),
        argv,
        output: format!("{}{}", text, out.stderr_str()),
    });
    if !out.success() {
        walk.warnings.push(format!(
            "ofproto/trace on {} failed ({}): {}",
            sender.node,
            out.exit_code,
            out.stderr_str().trim()
        ));
        return Ok(walk);
    }
    let t = ofproto::parse(&text);
    let seg = vovs::segment(&sender.node, first_flow, &t, ifaces);
    walk.segments.push((seg, t));
    tunnels::follow_guessed(
        cluster,
        leg.ovs_pods,
        cluster.namespace(),
        &mut walk,
        of_options,
    )
    .await;
    Ok(walk)
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
