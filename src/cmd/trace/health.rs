//! Path health: whether the ovn-controller of every node the trace touches
//! can be trusted to have programmed what the logical trace shows. Each
//! problem becomes one warning sentence.

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::verdict::nb::{NbGlobal, SbSnapshot};

use crate::cluster::{Cluster, Leader, PodRef, container, unusable_reason};

/// One node of the path and the logical port that should be bound there.
pub struct PathNode {
    pub node: String,
    pub port: Option<String>,
    /// `source` / `destination`, for the sentences.
    pub role: &'static str,
}

/// The nodes a trace touches: the sender's, the chassis the destination
/// port (the delivered one, else the owner of the destination address) is
/// bound to, and every node the OVS trace crossed (`crossed`, in order; a
/// drop decided on the far side of a tunnel is decided there).
pub fn path_nodes(
    source_node: &str,
    source_port: &str,
    outport: Option<&str>,
    sb: Option<&SbSnapshot>,
    crossed: &[&str],
) -> Vec<PathNode> {
    let mut out = vec![PathNode {
        node: source_node.to_string(),
        port: Some(source_port.to_string()),
        role: "source",
    }];
    for (i, node) in crossed.iter().enumerate() {
        if out.iter().any(|n| n.node == *node) {
            continue;
        }
        out.push(PathNode {
            node: node.to_string(),
            port: None,
            role: if i + 1 == crossed.len() {
                "destination"
            } else {
                "transit"
            },
        });
    }
    let dst_node = outport.and_then(|p| {
        let sb = sb?;
        let chassis = sb.bindings.get(p)?.as_deref()?;
        sb.chassis
            .iter()
            .find(|c| c.name == chassis)
            .map(|c| c.node.clone())
    });
    if let (Some(node), Some(port)) = (dst_node, outport) {
        match out
            .iter_mut()
            .find(|n| n.node == node && n.role != "source")
        {
            // the tunnel's far end is where the port lives: one entry
            Some(n) => {
                n.port = Some(port.to_string());
                n.role = "destination";
            }
            None => out.push(PathNode {
                node,
                port: Some(port.to_string()),
                role: "destination",
            }),
        }
    }
    out
}

/// SB-side checks: the chassis exists, has caught up with `SB_Global.nb_cfg`,
/// and holds the port.
pub fn sb_warnings(n: &PathNode, sb: &SbSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    let Some(ch) = sb.chassis_of_node(&n.node) else {
        out.push(format!(
            "{} node {} has no SB chassis: its ovn-controller never registered or its chassis was deleted, so nothing is delivered to or from it (`kubectl ko sbctl show`)",
            n.role, n.node
        ));
        return out;
    };
    if let (Some(want), Some(have)) = (sb.nb_cfg, sb.chassis_nb_cfg.get(&ch.name))
        && *have < want
    {
        out.push(format!(
            "ovn-controller on {} node {} has acknowledged nb_cfg {have}, the SB is at {want}: it is behind, so its OpenFlow tables may lack the latest logical flows and ofproto/trace may disagree with ovn-trace",
            n.role, n.node
        ));
    }
    if let Some(port) = &n.port {
        match sb.bindings.get(port) {
            Some(Some(bound)) if *bound != ch.name => out.push(format!(
                "logical port {port} is bound to chassis {bound}, not to node {}'s chassis {}",
                n.node, ch.name
            )),
            Some(None) => out.push(format!(
                "logical port {port} is not bound to any chassis (ovn-controller on {} has not claimed it: check the OVS interface's external_ids:iface-id)",
                n.node
            )),
            _ => {}
        }
    }
    out
}

/// What ovn-controller on a node said when asked (`connection-status`).
#[derive(Debug, Clone)]
pub enum ControllerState {
    Connected,
    /// Running, but not connected to the SB (`not connected`, ...).
    Other(String),
    /// The command failed in the pod: ovn-controller does not run.
    NotRunning {
        pod: String,
        message: String,
    },
    /// The exec itself failed.
    Unknown(String),
}

/// The ovn-controller answers of the nodes asked so far, by node. A trace
/// asks each node as soon as it knows the node (the sender's beside the
/// tools, a tunnel's far end beside its interfaces), so the verdict step
/// only asks the nodes it discovers last.
pub type Controllers = std::collections::HashMap<String, ControllerState>;

/// Asks ovn-controller on `node` itself whether it runs and is connected;
/// `None` when the node has no usable ovs-ovn pod to ask.
pub async fn ask_controller(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    node: &str,
) -> Option<ControllerState> {
    let pod = ovs_pods.iter().find(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
            && unusable_reason(p).is_none()
    })?;
    let pod = PodRef::from_pod(pod);
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let argv: Vec<String> = ["ovn-appctl", "-t", "ovn-controller", "connection-status"]
        .map(String::from)
        .to_vec();
    Some(match cluster.exec_capture(&pod, &c, &argv).await {
        Ok(out) if out.success() => match out.stdout_str().trim() {
            "connected" => ControllerState::Connected,
            other => ControllerState::Other(other.to_string()),
        },
        Ok(out) => ControllerState::NotRunning {
            pod: pod.to_string(),
            message: last_message(&out.stderr_str()),
        },
        Err(e) => ControllerState::Unknown(e.to_string()),
    })
}

/// The warning sentence for one node's answer, `None` when it is connected.
pub fn controller_warning(state: &ControllerState, n: &PathNode) -> Option<String> {
    match state {
        ControllerState::Connected => None,
        ControllerState::Other(status) => Some(format!(
            "ovn-controller on {} node {} is {status} to the SB: its OpenFlow tables do not follow the logical flows any more, so the OVS path below may be stale",
            n.role, n.node
        )),
        ControllerState::NotRunning { pod, message } => Some(format!(
            "ovn-controller on {} node {} is not running (`ovn-appctl -t ovn-controller connection-status` in {pod}: {message}): the OpenFlow tables there stay frozen at what it last programmed, so the OVS path may be stale and new ports are not bound; restart it (the ovs-ovn pod)",
            n.role, n.node
        )),
        ControllerState::Unknown(e) => Some(format!(
            "could not ask ovn-controller on {} node {} for its status: {e}",
            n.role, n.node
        )),
    }
}

/// The last line of a tool's stderr that is not an OVS log line.
fn last_message(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.split('|').count() < 4)
        .unwrap_or("no message")
        .to_string()
}

/// Whether the SB this trace read reflects the NB: some ovn-northd must be
/// active (one that is paused or standby translates nothing) and the SB must
/// have caught up with the last `--wait`ed NB change (`NB_Global.nb_cfg` vs
/// `SB_Global.nb_cfg`). A change made while northd lags (an ACL just added
/// by kube-ovn-controller, which does not wait) is not in the logical flows
/// ovn-trace follows. Without a verdict on northd (no answer), nothing is said.
pub fn northd_warnings(
    statuses: &[(String, Option<String>)],
    nb_global: Option<&NbGlobal>,
    sb: Option<&SbSnapshot>,
) -> Vec<String> {
    let mut out = Vec::new();
    let answered: Vec<(&str, &str)> = statuses
        .iter()
        .filter_map(|(pod, s)| s.as_deref().map(|s| (pod.as_str(), s)))
        .collect();
    if !answered.is_empty() && !answered.iter().any(|(_, s)| *s == "active") {
        let list: Vec<String> = answered.iter().map(|(p, s)| format!("{p}: {s}")).collect();
        out.push(format!(
            "no ovn-northd is active ({}): NB changes are not turned into logical flows, so what changed in the NB since it stopped (ACLs, Services, routes) is not in this trace; resume or restart ovn-northd (`kubectl ko nbctl --wait=sb sync` returns once it caught up)",
            list.join(", ")
        ));
    }
    if let Some((want, have)) = nb_global.and_then(|g| g.northd_behind(sb.and_then(|s| s.nb_cfg))) {
        out.push(format!(
            "northd is behind the NB: NB_Global.nb_cfg is {want} but the SB is at {have}, so the logical flows this trace followed may lack the latest NB changes; trace again once `kubectl ko nbctl --wait=sb sync` returns"
        ));
    }
    out
}

/// `Status: active|standby|paused` of `ovn-appctl -t ovn-northd status`.
fn northd_status(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Status:"))
        .map(|s| s.trim().to_string())
}

/// What the staleness warnings about northd are judged on.
#[derive(Debug, Clone, Default)]
pub struct Northd {
    /// The ovn-central pods asked and their northd's `Status:` (None: no answer).
    pub statuses: Vec<(String, Option<String>)>,
}

/// Asks ovn-northd for its status: first in the pod Kube-OVN labels as the
/// northd leader, and when that one is not active (or none is labelled), in
/// every ovn-central pod. Needs nothing of the trace; a pod that cannot be
/// asked gives no status.
pub async fn northd(cluster: &Cluster) -> Northd {
    let ns = cluster.namespace().to_string();
    let mut pods = cluster
        .list_pods(Some(&ns), Some("app=ovn-central"))
        .await
        .unwrap_or_default();
    pods.retain(|p| unusable_reason(p).is_none());
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let labelled = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(Leader::Northd.label()))
            .is_some_and(|v| v == "true")
    };
    let (leaders, others): (Vec<&Pod>, Vec<&Pod>) = pods.iter().partition(|p| labelled(p));
    let mut statuses = ask_northd(cluster, &leaders).await;
    if !statuses.iter().any(|(_, s)| s.as_deref() == Some("active")) {
        statuses.extend(ask_northd(cluster, &others).await);
    }
    Northd { statuses }
}

/// `ovn-appctl -t ovn-northd status` in each pod, concurrently.
async fn ask_northd(cluster: &Cluster, pods: &[&Pod]) -> Vec<(String, Option<String>)> {
    let argv: Vec<String> = ["ovn-appctl", "-t", "ovn-northd", "status"]
        .map(String::from)
        .to_vec();
    let asks = pods.iter().map(|p| PodRef::from_pod(p)).map(|pod| {
        let argv = argv.clone();
        async move {
            let c = pod.container_or_default(container::OVN_CENTRAL).to_string();
            let status = match cluster.exec_capture(&pod, &c, &argv).await {
                Ok(out) if out.success() => northd_status(&out.stdout_str()),
                _ => None,
            };
            (pod.name.clone(), status)
        }
    });
    futures::future::join_all(asks).await
}

/// Every health warning for the path, one per problem: ovn-controller's
/// own answers (asking only the nodes not in `asked`), then the SB checks.
pub async fn warnings(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    nodes: &[PathNode],
    sb: Option<&SbSnapshot>,
    asked: &Controllers,
) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let first: Vec<&PathNode> = nodes
        .iter()
        .filter(|n| {
            let first = !seen.contains(&n.node.as_str());
            seen.push(n.node.as_str());
            first
        })
        .collect();
    let answers = futures::future::join_all(first.iter().map(|n| async move {
        match asked.get(&n.node) {
            Some(s) => Some(s.clone()),
            None => ask_controller(cluster, ovs_pods, &n.node).await,
        }
    }))
    .await;
    let mut out: Vec<String> = first
        .iter()
        .zip(answers)
        .filter_map(|(n, a)| controller_warning(a.as_ref()?, n))
        .collect();
    if let Some(sb) = sb {
        for n in nodes {
            out.extend(sb_warnings(n, sb));
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ko_ovn::verdict::nb::Chassis;

    fn sb() -> SbSnapshot {
        let mut sb = SbSnapshot::default();
        for n in ["n1", "n2"] {
            sb.chassis.push(Chassis {
                uuid: format!("u-{n}"),
                name: format!("ch-{n}"),
                hostname: n.into(),
                node: n.into(),
                encaps: vec![],
                encap_ips: vec![],
                external_ids: Default::default(),
            });
        }
        sb.bindings.insert("a.default".into(), Some("ch-n1".into()));
        sb.bindings.insert("b.default".into(), Some("ch-n2".into()));
        sb.chassis_nb_cfg.insert("ch-n1".into(), 7);
        sb.chassis_nb_cfg.insert("ch-n2".into(), 5);
        sb.nb_cfg = Some(7);
        sb
    }

    #[test]
    fn path_reaches_the_chassis_the_outport_is_bound_to() {
        let sb = sb();
        let nodes = path_nodes("n1", "a.default", Some("b.default"), Some(&sb), &[]);
        let names: Vec<(&str, &str)> = nodes.iter().map(|n| (n.node.as_str(), n.role)).collect();
        assert_eq!(names, [("n1", "source"), ("n2", "destination")]);
        // the OVS trace crossed to n2: one entry, holding the port
        let nodes = path_nodes(
            "n1",
            "a.default",
            Some("b.default"),
            Some(&sb),
            &["n1", "n2"],
        );
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].port.as_deref(), Some("b.default"));
        // a drop (no outport known to the SB) on the far side: still checked
        let nodes = path_nodes("n1", "a.default", None, Some(&sb), &["n1", "n2"]);
        let names: Vec<(&str, &str)> = nodes.iter().map(|n| (n.node.as_str(), n.role)).collect();
        assert_eq!(names, [("n1", "source"), ("n2", "destination")]);
    }

    #[test]
    fn northd_that_is_not_active_or_behind_is_warned() {
        let st = |s: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            s.iter()
                .map(|(p, s)| (p.to_string(), s.map(String::from)))
                .collect()
        };
        let sb = sb();
        let caught_up = NbGlobal {
            nb_cfg: 7,
            sb_cfg: 7,
            hv_cfg: 7,
        };
        let healthy = st(&[("c1", Some("active")), ("c2", Some("standby"))]);
        assert!(northd_warnings(&healthy, Some(&caught_up), Some(&sb)).is_empty());
        let paused = st(&[
            ("c1", Some("paused")),
            ("c2", Some("standby")),
            ("c3", None),
        ]);
        let w = northd_warnings(&paused, Some(&caught_up), Some(&sb));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("no ovn-northd is active (c1: paused, c2: standby)"),
            "{w:?}"
        );
        // nobody answered: no claim either way
        assert!(northd_warnings(&st(&[("c1", None)]), None, None).is_empty());
        let ahead = NbGlobal {
            nb_cfg: 9,
            sb_cfg: 7,
            hv_cfg: 7,
        };
        let w = northd_warnings(&healthy, Some(&ahead), Some(&sb));
        assert!(
            w[0].contains("NB_Global.nb_cfg is 9 but the SB is at 7"),
            "{w:?}"
        );
        assert_eq!(northd_status("Status: paused\n").as_deref(), Some("paused"));
    }

    #[test]
    fn lagging_missing_and_misbound_agents_are_warned() {
        let mut sb = sb();
        let n2 = PathNode {
            node: "n2".into(),
            port: Some("b.default".into()),
            role: "destination",
        };
        let w = sb_warnings(&n2, &sb);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("acknowledged nb_cfg 5, the SB is at 7"),
            "{w:?}"
        );
        let n1 = PathNode {
            node: "n1".into(),
            port: Some("b.default".into()),
            role: "source",
        };
        let w = sb_warnings(&n1, &sb);
        assert!(
            w[0].contains("bound to chassis ch-n2, not to node n1"),
            "{w:?}"
        );
        sb.chassis.retain(|c| c.node != "n2");
        let w = sb_warnings(&n2, &sb);
        assert!(w[0].contains("has no SB chassis"), "{w:?}");
    }
}
