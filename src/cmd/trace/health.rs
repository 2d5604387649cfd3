//! Path health: whether the ovn-controller of every node the trace touches
//! can be trusted to have programmed what the logical trace shows. Each
//! problem becomes one warning sentence.

use k8s_openapi::api::core::v1::Pod;
use ko_ovn::verdict::nb::SbSnapshot;

use crate::cluster::{Cluster, PodRef, container, unusable_reason};

/// One node of the path and the logical port that should be bound there.
pub struct PathNode {
    pub node: String,
    pub port: Option<String>,
    /// `source` / `destination`, for the sentences.
    pub role: &'static str,
}

/// The nodes a trace touches: the sender's, and the chassis the delivered
/// port is bound to.
pub fn path_nodes(
    source_node: &str,
    source_port: &str,
    outport: Option<&str>,
    sb: Option<&SbSnapshot>,
) -> Vec<PathNode> {
    let mut out = vec![PathNode {
        node: source_node.to_string(),
        port: Some(source_port.to_string()),
        role: "source",
    }];
    let dst_node = outport.and_then(|p| {
        let sb = sb?;
        let chassis = sb.bindings.get(p)?.as_deref()?;
        sb.chassis
            .iter()
            .find(|c| c.name == chassis)
            .map(|c| c.node.clone())
    });
    if let (Some(node), Some(port)) = (dst_node, outport) {
        out.push(PathNode {
            node,
            port: Some(port.to_string()),
            role: "destination",
        });
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

/// Asks ovn-controller on the node itself whether it runs and is connected.
pub async fn controller_warning(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    n: &PathNode,
) -> Option<String> {
    let pod = ovs_pods.iter().find(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(n.node.as_str())
            && unusable_reason(p).is_none()
    })?;
    let pod = PodRef::from_pod(pod);
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let argv: Vec<String> = ["ovn-appctl", "-t", "ovn-controller", "connection-status"]
        .map(String::from)
        .to_vec();
    match cluster.exec_capture(&pod, &c, &argv).await {
        Ok(out) if out.success() => {
            let status = out.stdout_str().trim().to_string();
            (status != "connected").then(|| {
                format!(
                    "ovn-controller on {} node {} is {status} to the SB: its OpenFlow tables do not follow the logical flows any more, so the OVS path below may be stale",
                    n.role, n.node
                )
            })
        }
        Ok(out) => Some(format!(
            "ovn-controller on {} node {} is not running (`ovn-appctl -t ovn-controller connection-status` in {pod}: {}): the OpenFlow tables there stay frozen at what it last programmed, so the OVS path may be stale and new ports are not bound; restart it (the ovs-ovn pod)",
            n.role,
            n.node,
            last_message(&out.stderr_str())
        )),
        Err(e) => Some(format!(
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

/// Every health warning for the path, SB checks first, one per problem.
pub async fn warnings(
    cluster: &Cluster,
    ovs_pods: &[Pod],
    nodes: &[PathNode],
    sb: Option<&SbSnapshot>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let checks = nodes
        .iter()
        .filter(|n| {
            let first = !seen.contains(&n.node.as_str());
            seen.push(n.node.as_str());
            first
        })
        .map(|n| controller_warning(cluster, ovs_pods, n));
    let live = futures::future::join_all(checks).await;
    out.extend(live.into_iter().flatten());
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
        let nodes = path_nodes("n1", "a.default", Some("b.default"), Some(&sb));
        let names: Vec<(&str, &str)> = nodes.iter().map(|n| (n.node.as_str(), n.role)).collect();
        assert_eq!(names, [("n1", "source"), ("n2", "destination")]);
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
