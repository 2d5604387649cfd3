//! Kube-OVN's node port groups (`checkAndUpdateNodePortGroup`, `CreateNodeACL`):
//! `node.<node>` holds the pods running on that node (those of the cluster router
//! and of underlay subnets), and while any NetworkPolicy
//! exists it carries, per node address family, an allow-related ACL at 3000 each way
//! between the node's InternalIP and its own pods, so kubelet probes pass every
//! policy. Without policies the group has no ACLs.

use std::collections::BTreeMap;

use super::model::{Acl, Desired, NETPOL_TIER, PortGroup, VENDOR, family};
use super::world::{self, World};

const NODE_ALLOW: u32 = 3000;

/// The group's name: the node's join port with `-` turned into `.`.
fn group_of(node: &serde_json::Value) -> Option<String> {
    world::annotation(node, "ovn.kubernetes.io/port_name").map(|p| p.replace('-', "."))
}

/// A node's InternalIP addresses (`status.addresses`).
pub fn internal_ips(node: &serde_json::Value) -> Vec<String> {
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str().map(str::to_string))
        .collect()
}

/// InternalIP(s), else the join address(es): `GetNodeInternalIP`'s fallback.
fn node_ips(node: &serde_json::Value) -> Vec<String> {
    let internal = internal_ips(node);
    let join = world::pod_ips(node);
    let mut out = Vec::new();
    for fam in ["IPv4", "IPv6"] {
        let pick = internal
            .iter()
            .find(|a| family(a) == fam)
            .or_else(|| join.iter().find(|a| family(a) == fam));
        out.extend(pick.cloned());
    }
    out
}

/// `fetchPodsOnNode`: pods of the cluster router's subnets and of underlay subnets,
/// not those of custom VPCs (the node cannot reach them), nor finished or deleted ones.
fn in_node_group(w: &World, p: &serde_json::Value) -> bool {
    let alive = p["metadata"]["deletionTimestamp"].is_null()
        && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    let on_cluster_router = world::annotation(p, "ovn.kubernetes.io/logical_router")
        == Some(crate::plan::CLUSTER_ROUTER);
    let underlay = || {
        world::annotation(p, "ovn.kubernetes.io/logical_switch")
            .and_then(|s| w.subnets.get(s))
            .and_then(|s| s["spec"]["vlan"].as_str())
            .is_some_and(|v| !v.is_empty())
    };
    alive && (on_cluster_router || underlay())
}

pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
    let policies = !w.policies.is_empty();
    for node in &w.nodes {
        let name = world::name(node);
        let Some(pg) = group_of(node) else { continue };
        let ports = w
            .pods
            .iter()
            .filter(|p| p["spec"]["nodeName"].as_str() == Some(name))
            .filter(|p| in_node_group(w, p))
            .filter_map(world::pod_lsp)
            .collect();
        let mut acls = std::collections::BTreeSet::new();
        if policies {
            for ip in node_ips(node) {
                let l3 = if family(&ip) == "IPv6" { "ip6" } else { "ip4" };
                let set = format!("${pg}_{l3}");
                let tier = |a: Acl| if tiers { a.tier(NETPOL_TIER) } else { a };
                acls.insert(tier(Acl::new(
                    &pg,
                    "to-lport",
                    NODE_ALLOW,
                    &format!("{l3}.src == {ip} && {l3}.dst == {set}"),
                    "allow-related",
                )));
                acls.insert(tier(
                    Acl::new(
                        &pg,
                        "from-lport",
                        NODE_ALLOW,
                        &format!("{l3}.dst == {ip} && {l3}.src == {set}"),
                        "allow-related",
                    )
                    .option("apply-after-lb", "true"),
                ));
            }
        }
        out.port_groups.insert(
            pg,
            PortGroup {
                external_ids: BTreeMap::from([
                    ("node".to_string(), name.to_string()),
                    ("np".to_string(), format!("node/{name}")),
                    ("vendor".to_string(), VENDOR.to_string()),
                ]),
                ports,
                acls,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use serde_json::json;

    fn world(with_policy: bool) -> World {
        let mut w = World::default();
        w.nodes = vec![json!({"metadata": {"name": "n1", "annotations": {
            "ovn.kubernetes.io/port_name": "node-n1", "ovn.kubernetes.io/ip_address": "100.64.0.2"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}})];
        w.pods = vec![
            json!({"metadata": {"name": "a", "namespace": "d", "annotations": {"ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/logical_router": "ovn-cluster"}}, "spec": {"nodeName": "n1"}}),
            // a custom VPC's pod: the node cannot reach it, Kube-OVN leaves it out
            json!({"metadata": {"name": "v", "namespace": "d", "annotations": {"ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/logical_router": "vpc1"}}, "spec": {"nodeName": "n1"}}),
            json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"nodeName": "n1", "hostNetwork": true}}),
            json!({"metadata": {"name": "b", "namespace": "d", "annotations": {"ovn.kubernetes.io/allocated": "true"}}, "spec": {"nodeName": "n2"}}),
        ];
        if with_policy {
            w.policies = vec![json!({"metadata": {"name": "p", "namespace": "d"}})];
        }
        w
    }

    #[test]
    fn the_node_group_holds_its_pods_and_lets_the_node_in_while_policies_exist() {
        let mut d = Desired::default();
        build_all(&world(true), true, &mut d);
        let pg = &d.port_groups["node.n1"];
        assert_eq!(pg.ports.iter().collect::<Vec<_>>(), ["a.d"]);
        assert_eq!(pg.external_ids["np"], "node/n1");
        let m: Vec<(&str, &str)> = pg
            .acls
            .iter()
            .map(|a| (a.direction.as_str(), a.matches.as_str()))
            .collect();
        assert!(
            m.contains(&(
                "to-lport",
                "ip4.src == 172.18.0.2 && ip4.dst == $node.n1_ip4"
            )),
            "{m:?}"
        );
        assert!(
            m.contains(&(
                "from-lport",
                "ip4.dst == 172.18.0.2 && ip4.src == $node.n1_ip4"
            )),
            "{m:?}"
        );
        assert!(
            pg.acls
                .iter()
                .all(|a| a.priority == 3000 && a.action == "allow-related" && a.tier == 2)
        );
        let mut none = Desired::default();
        build_all(&world(false), true, &mut none);
        assert!(none.port_groups["node.n1"].acls.is_empty());
    }
}
