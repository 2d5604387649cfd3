//! Per-node checks: the SB Chassis and its encap, ovn-controller alive and
//! connected, br-int present with flows, a tunnel to every other chassis.

use std::collections::BTreeMap;

use futures::StreamExt;

use crate::check::{Check, Scope};
use crate::cluster::{Cluster, PodRef};
use crate::cmd::diagnose::collect;
use crate::cmd::diagnose::facts::{NodeFacts, NodeProbe, OvnTables, SbChassisView};
use crate::cmd::diagnose::ovsdb::Interface;
use crate::cmd::diagnose::{Asked, NODE_CONCURRENCY, Objects};
use crate::render::progress::Progress;

use crate::cmd::diagnose::first_line;
use ko_ovn::versions::Versions;

/// Stage "nodes": every selected node's ovs-ovn pod probed (bounded
/// concurrency, per-node timeout), judged against the SB chassis, then the
/// version skew between ovn-central and the nodes.
pub(in crate::cmd::diagnose) async fn stage(
    cluster: &Cluster,
    objects: &Objects,
    what: &Asked,
    tables: &OvnTables,
    central_versions: &[(String, Option<String>)],
    progress: &Progress,
) -> Vec<Check> {
    let (ns, timeout) = (objects.ns.as_str(), objects.timeout);
    let ovs_pods: BTreeMap<String, PodRef> = objects
        .app_pods("ovs")
        .filter(|p| crate::cluster::locate::unusable_reason(p).is_none())
        .filter_map(|p| {
            let r = PodRef::from_pod(p);
            r.node.clone().map(|n| (n, r))
        })
        .collect();
    let selected_nodes: Vec<&NodeFacts> = objects
        .node_facts
        .iter()
        .filter(|n| match what {
            Asked::Node(x) => &n.name == x,
            Asked::IpPorts(_) => false,
            _ => true,
        })
        .collect();
    progress.start("probing nodes", selected_nodes.len() as u64);
    let mut node_results: Vec<(usize, NodeProbe)> =
        futures::stream::iter(selected_nodes.iter().enumerate())
            .map(|(i, n)| {
                let ovs_pods = &ovs_pods;
                async move {
                    let r = collect::probe_node(cluster, ovs_pods, &n.name, timeout).await;
                    progress.inc();
                    (i, r)
                }
            })
            .buffer_unordered(NODE_CONCURRENCY)
            .collect()
            .await;
    node_results.sort_by_key(|(i, _)| *i);
    let mut checks = Vec::new();
    for (i, probe) in &node_results {
        checks.extend(node_checks(ns, selected_nodes[*i], probe, &tables.sb));
    }
    let probes: Vec<&NodeProbe> = node_results.iter().map(|(_, p)| p).collect();
    checks.extend(version_checks(central_versions, &probes));
    checks
}

/// Version skew between ovn-central, each node's ovn-controller and OVS
/// (Kube-OVN upgrades go wrong when one of them is left behind): one warning
/// per mismatch with the numbers, else one pass listing the versions.
pub fn version_checks(central: &[(String, Option<String>)], probes: &[&NodeProbe]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut centrals: Vec<&str> = central.iter().filter_map(|(_, v)| v.as_deref()).collect();
    centrals.sort();
    centrals.dedup();
    if centrals.len() > 1 {
        let each: Vec<String> = central
            .iter()
            .filter_map(|(p, v)| Some(format!("{p} {}", v.as_deref()?)))
            .collect();
        out.push(Check::warn(
            "version-skew",
            Scope::Cluster,
            format!("ovn-central pods run different OVN releases: {}", each.join(", ")),
            "finish the ovn-central rollout (`kubectl -n kube-system rollout status deployment/ovn-central`)",
        ));
    }
    let versions = Versions {
        ovn_central: centrals.first().map(|v| v.to_string()),
        nodes: probes
            .iter()
            .map(|p| p.versions.clone())
            .filter(|v| v.ovn_controller.is_some() || v.ovs_vswitchd.is_some())
            .collect(),
    };
    for msg in versions.skew() {
        out.push(Check::warn(
            "version-skew",
            Scope::Cluster,
            msg,
            "upgrade ovn-central first, then the ovs-ovn DaemonSet on every node (`kubectl -n kube-system rollout status ds/ovs-ovn`)",
        ));
    }
    if out.is_empty() && !versions.is_empty() {
        out.push(Check::pass(
            "version-skew",
            Scope::Cluster,
            format!("no version skew: {}", versions.describe()),
        ));
    }
    out
}

pub fn node_checks(
    namespace: &str,
    node: &NodeFacts,
    probe: &NodeProbe,
    sb: &Result<SbChassisView, String>,
) -> Vec<Check> {
    let n = node.name.as_str();
    let ovs = probe.ovs_pod.as_deref().unwrap_or("<ovs-ovn pod>");
    let mut out = Vec::new();
    reachable(namespace, node, probe, &mut out);
    chassis(node, sb, &mut out);
    if probe.error.is_some() {
        return out;
    }
    out.push(ovn_controller(namespace, n, ovs, probe));
    out.push(br_int(namespace, n, ovs, probe));
    if let (Ok(view), Ok(ifaces)) = (sb, &probe.interfaces) {
        out.push(tunnels(node, view, ifaces));
    }
    out
}

/// The node is Ready and its ovs-ovn pod could be probed (a check only for what fails).
fn reachable(namespace: &str, node: &NodeFacts, probe: &NodeProbe, out: &mut Vec<Check>) {
    let n = node.name.as_str();
    let scope = || Scope::node(n);
    if node.ready == Some(false) {
        out.push(Check::fail(
            "node-ready",
            scope(),
            format!("node {n} is NotReady"),
            format!("`kubectl describe node {n}`"),
        ));
    }
    if let Some(e) = &probe.error {
        out.push(Check::fail(
            "node-probe",
            scope(),
            format!("could not probe node {n}: {}", first_line(e)),
            format!(
                "`kubectl -n {namespace} get pods -l app=ovs -o wide --field-selector spec.nodeName={n}`; a larger --timeout if the node is slow"
            ),
        ));
    }
}

/// The node's SB Chassis, and its encap IP.
fn chassis(node: &NodeFacts, sb: &Result<SbChassisView, String>, out: &mut Vec<Check>) {
    let n = node.name.as_str();
    let scope = || Scope::node(n);
    match sb {
        Err(e) => out.push(Check::fail(
            "chassis",
            scope(),
            format!("could not read SB Chassis to check node {n}: {}", first_line(e)),
            "see the SB database checks",
        )),
        Ok(view) => match view.chassis_of(node) {
            None => out.push(Check::fail(
                "chassis",
                scope(),
                format!(
                    "node {n} has no Chassis in the OVN SB database{}: pods on it have no flows and no tunnels",
                    node.chassis_annotation
                        .as_deref()
                        .map(|c| format!(" (expected system-id {c})"))
                        .unwrap_or_default()
                ),
                format!(
                    "ovn-controller on {n} registers the chassis: check it is running and connected (`kubectl ko appctl {n} ...` / the ovn-controller check), or restart the ovs-ovn pod on {n}"
                ),
            )),
            Some(ch) => {
                out.push(Check::pass(
                    "chassis",
                    scope(),
                    format!("node {n} is chassis {} in the SB database", ch.name),
                ));
                let ips = view.encap_ips(ch);
                if ips.is_empty() {
                    out.push(Check::fail(
                        "encap",
                        scope(),
                        format!("chassis {} of node {n} has no encap IP: no tunnel can reach it", ch.name),
                        format!("set external-ids:ovn-encap-ip in Open_vSwitch on {n} (kube-ovn-cni does this from the node IP)"),
                    ));
                } else {
                    out.push(Check::pass(
                        "encap",
                        scope(),
                        format!("chassis {} encap IP {}", ch.name, ips.join(", ")),
                    ));
                }
            }
        },
    }
}

/// ovn-controller runs and is connected to the SB database.
fn ovn_controller(namespace: &str, n: &str, ovs: &str, probe: &NodeProbe) -> Check {
    let scope = || Scope::node(n);
    match &probe.controller {
        Ok(s) if s.trim() == "connected" => Check::pass(
            "ovn-controller",
            scope(),
            format!("ovn-controller on {n} is running and connected to the SB database"),
        ),
        Ok(s) => Check::fail(
            "ovn-controller",
            scope(),
            format!(
                "ovn-controller on {n} is running but {} to the SB database",
                first_line(s)
            ),
            format!(
                "check external-ids:ovn-remote on {n} and that the ovn-sb Service reaches the SB leader"
            ),
        ),
        Err(e) => Check::fail(
            "ovn-controller",
            scope(),
            format!("ovn-controller on {n} is not running: {}", first_line(e)),
            format!(
                "/var/log/ovn/ovn-controller.log in pod {namespace}/{ovs}; restarting that pod restarts ovn-controller"
            ),
        ),
    }
}

/// br-int exists and carries flows.
fn br_int(namespace: &str, n: &str, ovs: &str, probe: &NodeProbe) -> Check {
    let scope = || Scope::node(n);
    match (&probe.br_int, &probe.flow_count) {
        (Ok(false), _) => Check::fail(
            "br-int",
            scope(),
            format!("bridge br-int does not exist on {n}"),
            format!("ovn-controller creates br-int; check pod {namespace}/{ovs}"),
        ),
        (Err(e), _) => Check::fail(
            "br-int",
            scope(),
            format!("could not check br-int on {n}: {}", first_line(e)),
            format!("`kubectl ko vsctl {n} show`"),
        ),
        (Ok(true), Ok(0)) => Check::fail(
            "br-int",
            scope(),
            format!("br-int on {n} has no OpenFlow flows"),
            "ovn-controller installs the flows: see the ovn-controller check",
        ),
        (Ok(true), Ok(c)) => Check::pass("br-int", scope(), format!("br-int on {n} has {c} flows")),
        (Ok(true), Err(e)) => Check::warn(
            "br-int",
            scope(),
            format!(
                "br-int exists on {n} but its flows could not be counted: {}",
                first_line(e)
            ),
            format!("`kubectl ko ofctl {n} dump-aggregate br-int`"),
        ),
    }
}

/// A tunnel to every other chassis.
fn tunnels(node: &NodeFacts, view: &SbChassisView, ifaces: &[Interface]) -> Check {
    let n = node.name.as_str();
    let scope = || Scope::node(n);
    let me = view.chassis_of(node).map(|c| c.name.clone());
    let remote_ips: Vec<&str> = ifaces
        .iter()
        .filter(|i| i.is_tunnel())
        .filter_map(|i| i.remote_ip.as_deref())
        .collect();
    let mut missing = Vec::new();
    let mut peers = 0;
    for ch in &view.chassis {
        if Some(&ch.name) == me.as_ref() {
            continue;
        }
        peers += 1;
        let ips = view.encap_ips(ch);
        if !ips.iter().any(|ip| remote_ips.contains(ip)) {
            missing.push(format!("{} ({})", ch.node, ips.join(", ")));
        }
    }
    if missing.is_empty() {
        Check::pass(
            "tunnels",
            scope(),
            if peers == 0 {
                format!("{n} is the only chassis: no tunnels needed")
            } else {
                format!("{n} has a tunnel to each of the {peers} other chassis")
            },
        )
    } else {
        Check::fail(
            "tunnels",
            scope(),
            format!("{n} has no tunnel to: {}", missing.join(", ")),
            format!(
                "ovn-controller on {n} creates tunnels from SB Encap rows; check it is connected, and `kubectl ko vsctl {n} show`"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::cmd::diagnose::ovsdb;
    use ko_ovn::versions::NodeVersions;

    fn fx(path: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/{path}"))
    }

    fn node(n: &str) -> NodeFacts {
        NodeFacts {
            name: n.into(),
            internal_ips: vec![],
            ready: Some(true),
            chassis_annotation: None,
        }
    }

    fn sb(dir: &str) -> Result<SbChassisView, String> {
        Ok(SbChassisView {
            chassis: ovsdb::chassis(&fx(&format!("{dir}/sb-chassis.json"))).unwrap(),
            encaps: ovsdb::encaps(&fx(&format!("{dir}/sb-encap.json"))).unwrap(),
        })
    }

    fn probe(dir: &str, n: &str, controller_ok: bool) -> NodeProbe {
        let conn = fx(&format!("{dir}/controller-connection-status-{n}.txt"));
        NodeProbe {
            ovs_pod: Some(format!("ovs-ovn-{n}")),
            error: None,
            controller: if controller_ok { Ok(conn) } else { Err(conn) },
            br_int: Ok(true),
            flow_count: ovsdb::aggregate_flow_count(&fx(&format!("{dir}/ofctl-aggregate-{n}.txt")))
                .ok_or_else(|| "no count".to_string()),
            interfaces: Ok(
                ovsdb::interfaces(&fx(&format!("{dir}/vsctl-interfaces-{n}.json"))).unwrap(),
            ),
            versions: NodeVersions::default(),
        }
    }

    #[test]
    fn version_skew_warns_with_the_numbers() {
        let with = |n: &str, ovn: &str, ovs: &str| {
            let mut p = NodeProbe::failed(None, "x".into());
            p.versions = NodeVersions {
                node: n.into(),
                ovn_controller: Some(ovn.into()),
                ovs_vswitchd: Some(ovs.into()),
            };
            p
        };
        let central = vec![("ovn-central-0".to_string(), Some("25.03.0".to_string()))];
        let (a, b) = (
            with("n1", "25.03.0", "3.5.0"),
            with("n2", "24.03.2", "3.3.0"),
        );
        let cs = version_checks(&central, &[&a, &b]);
        assert_eq!(cs.len(), 2, "{cs:#?}");
        assert!(cs.iter().all(|c| c.status == Status::Warn));
        assert!(cs[0].message.contains("n2") && cs[0].message.contains("24.03.2"));
        assert!(cs[1].message.contains("3.3.0") && cs[1].message.contains("3.5.0"));
        let cs = version_checks(&central, &[&a]);
        assert_eq!(cs[0].status, Status::Pass);
        assert!(cs[0].message.contains("OVN 25.03.0"), "{}", cs[0].message);
        // nothing read: no claim either way
        assert!(version_checks(&[("c".into(), None)], &[]).is_empty());
    }

    fn by_name<'a>(cs: &'a [Check], name: &str) -> &'a Check {
        cs.iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {cs:#?}"))
    }

    #[test]
    fn healthy_node_passes() {
        let cs = node_checks(
            "kube-system",
            &node("diagf-node1"),
            &probe("healthy", "n1", true),
            &sb("healthy"),
        );
        assert!(cs.iter().all(|c| c.status == Status::Pass), "{cs:#?}");
        assert_eq!(cs.len(), 5);
    }

    #[test]
    fn stopped_controller_fails_naming_the_node() {
        // exit code 1 recorded in controller-stopped/COMMANDS.tsv
        let cs = node_checks(
            "kube-system",
            &node("diagf-node2"),
            &probe("controller-stopped", "n2", false),
            &sb("controller-stopped"),
        );
        let c = by_name(&cs, "ovn-controller");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.scope, Scope::node("diagf-node2"));
        assert!(c.message.contains("not running"), "{}", c.message);
    }

    #[test]
    fn deleted_chassis_fails_and_peers_lose_their_tunnel() {
        let view = sb("unbound-and-chassis-deleted");
        let cs = node_checks(
            "kube-system",
            &node("diagf-node2"),
            &probe("healthy-n2", "n2", true),
            &view,
        );
        let c = by_name(&cs, "chassis");
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("diagf-node2") && c.message.contains("no Chassis"));
        // node1 has no other chassis to tunnel to any more: nothing missing
        let cs1 = node_checks(
            "kube-system",
            &node("diagf-node1"),
            &probe("unbound-and-chassis-deleted", "n1", true),
            &view,
        );
        assert_eq!(by_name(&cs1, "tunnels").status, Status::Pass);
    }

    #[test]
    fn missing_tunnel_is_named() {
        // node1's interfaces after node2's chassis was deleted have no tunnel,
        // judged against the healthy SB where node2 still exists
        let cs = node_checks(
            "kube-system",
            &node("diagf-node1"),
            &probe("unbound-and-chassis-deleted", "n1", true),
            &sb("healthy"),
        );
        let t = by_name(&cs, "tunnels");
        assert_eq!(t.status, Status::Fail);
        assert!(t.message.contains("10.250.0.12"), "{}", t.message);
    }

    #[test]
    fn unprobeable_node_fails_but_sb_checks_still_run() {
        let cs = node_checks(
            "kube-system",
            &node("diagf-node1"),
            &NodeProbe::failed(None, "timed out after 10s".into()),
            &sb("healthy"),
        );
        assert_eq!(by_name(&cs, "node-probe").status, Status::Fail);
        assert_eq!(by_name(&cs, "chassis").status, Status::Pass);
    }
}
