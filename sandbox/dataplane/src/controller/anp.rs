//! AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io
//! v1alpha1) -> one port group, two address sets per rule and tiered ACLs, shaped
//! as kube-ovn-controller's `handleAddAnp`/`handleAddBanp`
//! (pkg/controller/admin_network_policy.go, baseline_admin_network_policy.go) and
//! `UpdateAnpRuleACLOps`/`newAnpACLMatch` (pkg/ovs/ovn-nb-acl.go) make them in
//! Kube-OVN 1.13-1.16:
//! - group `<name>` with '-' → '.', external_ids `anp=<name>` / `banp=<name>`,
//!   holding the subject's pods;
//! - per rule `index`: address sets `<pg>.<ingress|egress>.<index>.<rule>.<IPv4|IPv6>`
//!   of the peers' addresses, and per family with addresses one ACL per port
//!   (`apply-after-lb`), priority `30000 - 100 * spec.priority - index` (ANP) or
//!   `1800 - index` (BANP), OVN tier 1 (ANP, before NetworkPolicies' tier 2) or 3
//!   (BANP, after them); Allow → allow-related, Deny → drop, Pass → pass.
//!
//! ACL tiers need OVN >= 23.06: on an older NB nothing is written (Kube-OVN 1.13+
//! does not run there either). Not realised: `domainNames` peers (Kube-OVN needs
//! its DNSNameResolver for them), named ports (Kube-OVN skips them too) and the
//! ACL logging annotation.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api_subnet;

use super::model::{Acl, AddressSet, Desired, PortGroup, family, with_vendor};
use super::node_acl;
use super::selector;
use super::world::{self, World};

/// `util.AnpACLMaxPriority`, `util.BanpACLMaxPriority`.
const ANP_MAX_PRIORITY: i64 = 30000;
const BANP_MAX_PRIORITY: i64 = 1800;
/// `util.AnpACLTier`, `util.BanpACLTier`.
const ANP_TIER: u8 = 1;
const BANP_TIER: u8 = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Admin,
    Baseline,
}

impl Flavor {
    /// The external_ids key of the group and sets, and the ACL name prefix.
    fn key(self) -> &'static str {
        match self {
            Flavor::Admin => "anp",
            Flavor::Baseline => "banp",
        }
    }

    /// The OVN tier of its ACLs: before NetworkPolicies (1) or after them (3).
    fn tier(self) -> u8 {
        match self {
            Flavor::Admin => ANP_TIER,
            Flavor::Baseline => BANP_TIER,
        }
    }

    /// The priority of rule 0 (each later rule is one lower).
    fn first_priority(self, spec: &Value) -> i64 {
        match self {
            Flavor::Admin => ANP_MAX_PRIORITY - 100 * spec["priority"].as_i64().unwrap_or(0),
            Flavor::Baseline => BANP_MAX_PRIORITY,
        }
    }
}

/// Add the rows of every (Baseline)AdminNetworkPolicy to `out`.
pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
    if !tiers {
        return;
    }
    for p in &w.admin_policies {
        build(p, Flavor::Admin, w, out);
    }
    for p in &w.baseline_policies {
        build(p, Flavor::Baseline, w, out);
    }
}

/// `getAnpName`: a name that does not start with a letter gets "anp" in front.
pub fn anp_name(name: &str) -> String {
    if name.chars().next().is_some_and(char::is_alphabetic) {
        name.to_string()
    } else {
        format!("anp{name}")
    }
}

fn build(p: &Value, flavor: Flavor, w: &World, out: &mut Desired) {
    let name = world::name(p);
    if name.is_empty() {
        return;
    }
    let anp = anp_name(name);
    let pg = anp.replace('-', ".");
    let spec = &p["spec"];
    let mut group = PortGroup {
        external_ids: with_vendor(&[(flavor.key(), &anp)]),
        ports: subject_pods(&spec["subject"], w)
            .filter_map(world::pod_lsp)
            .collect(),
        acls: BTreeSet::new(),
    };
    for (ingress, rules) in [(true, &spec["ingress"]), (false, &spec["egress"])] {
        let dir = if ingress { "ingress" } else { "egress" };
        for (index, rule) in rules.as_array().into_iter().flatten().enumerate() {
            let rule_name = rule["name"].as_str().unwrap_or("");
            let peers = if ingress { &rule["from"] } else { &rule["to"] };
            let addrs = peer_addresses(peers, w);
            let priority = (flavor.first_priority(spec) - index as i64).max(0) as u32;
            let acl_dir = if ingress { "to-lport" } else { "from-lport" };
            let action = match rule["action"].as_str() {
                Some("Allow") => "allow-related",
                Some("Pass") => "pass",
                _ => "drop",
            };
            for fam in ["IPv4", "IPv6"] {
                let set = format!("{pg}.{dir}.{index}.{rule_name}.{fam}").replace('-', ".");
                let fam_addrs: BTreeSet<String> =
                    addrs.iter().filter(|a| family(a) == fam).cloned().collect();
                let has_addrs = !fam_addrs.is_empty();
                out.address_sets.insert(
                    set.clone(),
                    AddressSet {
                        external_ids: with_vendor(&[(flavor.key(), &format!("{anp}/{dir}"))]),
                        addresses: fam_addrs,
                    },
                );
                if !has_addrs {
                    continue;
                }
                let acl_name = format!("{}/{anp}/{dir}/{fam}/{index}", flavor.key());
                for m in rule_matches(&pg, &set, fam, ingress, &rule["ports"]) {
                    group.acls.insert(
                        Acl::new(&pg, acl_dir, priority, &m, action)
                            .named(&acl_name)
                            .option("apply-after-lb", "true")
                            .tier(flavor.tier()),
                    );
                }
            }
        }
    }
    out.port_groups.insert(pg, group);
}

/// `fetchSelectedPods` (a subject) and `fetchPods` (a pod peer): every pod of the
/// selected `namespaces`, or the `pods` selected in the selected namespaces.
fn subject_pods<'a>(subject: &'a Value, w: &'a World) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    if !subject["namespaces"].is_null() {
        return pods_of(&subject["namespaces"], &Value::Null, w);
    }
    if !subject["pods"].is_null() {
        return pods_of(
            &subject["pods"]["namespaceSelector"],
            &subject["pods"]["podSelector"],
            w,
        );
    }
    Box::new(std::iter::empty())
}

/// Pods of the namespaces `ns_sel` selects that `pod_sel` selects (null: all).
fn pods_of<'a>(
    ns_sel: &'a Value,
    pod_sel: &'a Value,
    w: &'a World,
) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let namespaces: BTreeSet<&str> = w
        .namespaces
        .iter()
        .filter(|n| selector::matches(ns_sel, &n["metadata"]["labels"]))
        .map(world::name)
        .collect();
    Box::new(w.pods.iter().filter(move |p| {
        namespaces.contains(world::namespace(p))
            && (pod_sel.is_null() || selector::matches(pod_sel, &p["metadata"]["labels"]))
    }))
}

/// The addresses of a rule's peers: pods (allocated, not host-network) of the
/// selected namespaces/pods, the InternalIPs of selected nodes, CIDRs.
fn peer_addresses(peers: &Value, w: &World) -> Vec<String> {
    let mut out = Vec::new();
    for peer in peers.as_array().into_iter().flatten() {
        for p in subject_pods(peer, w).filter(|p| world::pod_lsp(p).is_some()) {
            out.extend(world::pod_ips(p));
        }
        if !peer["nodes"].is_null() {
            for n in &w.nodes {
                if selector::matches(&peer["nodes"], &n["metadata"]["labels"]) {
                    out.extend(node_acl::internal_ips(n));
                }
            }
        }
        for cidr in peer["networks"].as_array().into_iter().flatten() {
            let valid =
                |c: &&str| api_subnet::network4(c).is_some() || api_subnet::network6(c).is_some();
            if let Some(c) = cidr.as_str().filter(valid) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// `newAnpACLMatch`: the group and family, the peers' set, then one match per
/// port number or range (none: one match for every port).
fn rule_matches(pg: &str, set: &str, fam: &str, ingress: bool, ports: &Value) -> Vec<String> {
    let ip = if fam == "IPv6" { "ip6" } else { "ip4" };
    let (port_dir, side) = if ingress {
        ("outport", "src")
    } else {
        ("inport", "dst")
    };
    let base = format!("{port_dir} == @{pg} && ip && {ip}.{side} == ${set}");
    let Some(ports) = ports.as_array() else {
        return vec![base];
    };
    ports
        .iter()
        .filter_map(|p| {
            if let Some(n) = p.get("portNumber") {
                let proto = n["protocol"].as_str()?.to_ascii_lowercase();
                Some(format!("{base} && {proto}.dst == {}", n["port"].as_i64()?))
            } else if let Some(r) = p.get("portRange") {
                let proto = r["protocol"].as_str()?.to_ascii_lowercase();
                Some(format!(
                    "{base} && {} <= {proto}.dst <= {}",
                    r["start"].as_i64()?,
                    r["end"].as_i64()?
                ))
            } else {
                // named ports: Kube-OVN logs an error and writes no ACL for them
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn world() -> World {
        let pod = |ns: &str, name: &str, app: &str, ip: &str| {
            json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app},
                "annotations": {"ovn.kubernetes.io/allocated": "true", "ovn.kubernetes.io/ip_address": ip}},
                "spec": {}})
        };
        let ns = |n: &str, team: &str| json!({"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n, "team": team}}});
        World {
            namespaces: vec![ns("a", "red"), ns("b", "blue")],
            pods: vec![
                pod("a", "web", "web", "10.16.0.5"),
                pod("a", "db", "db", "10.16.0.6,fd00::6"),
                pod("b", "cli", "cli", "10.16.0.7"),
            ],
            ..World::default()
        }
    }

    /// The rows Kube-OVN 1.15 writes for a two-rule ANP (checked against
    /// handleAddAnp: names, priorities, tiers, matches).
    #[test]
    fn an_admin_policy_becomes_kube_ovns_group_sets_and_tiered_acls() {
        let w = World {
            admin_policies: vec![json!({
                "metadata": {"name": "deny-blue"},
                "spec": {"priority": 10,
                    "subject": {"namespaces": {"matchLabels": {"team": "red"}}},
                    "ingress": [
                        {"name": "pass-web", "action": "Pass", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}}]},
                        {"name": "deny-blue", "action": "Deny", "from": [{"namespaces": {"matchLabels": {"team": "blue"}}}],
                         "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}, {"portRange": {"protocol": "UDP", "start": 53, "end": 54}}, {"namedPort": "http"}]},
                    ]}
            })],
            ..world()
        };
        let mut d = Desired::default();
        build_all(&w, true, &mut d);
        let pg = &d.port_groups["deny.blue"];
        assert_eq!(pg.external_ids["anp"], "deny-blue");
        assert_eq!(
            pg.ports,
            BTreeSet::from(["web.a".to_string(), "db.a".to_string()])
        );
        let acls: Vec<(&str, u32, &str, &str, u8)> = pg
            .acls
            .iter()
            .map(|a| {
                (
                    a.name.as_deref().unwrap_or(""),
                    a.priority,
                    a.matches.as_str(),
                    a.action.as_str(),
                    a.tier,
                )
            })
            .collect();
        assert!(acls.contains(&(
            "anp/deny-blue/ingress/IPv4/0",
            29000,
            "outport == @deny.blue && ip && ip4.src == $deny.blue.ingress.0.pass.web.IPv4",
            "pass",
            1
        )));
        assert!(acls.contains(&(
            "anp/deny-blue/ingress/IPv4/1",
            28999,
            "outport == @deny.blue && ip && ip4.src == $deny.blue.ingress.1.deny.blue.IPv4 && tcp.dst == 80",
            "drop",
            1
        )));
        assert!(acls.contains(&(
            "anp/deny-blue/ingress/IPv4/1",
            28999,
            "outport == @deny.blue && ip && ip4.src == $deny.blue.ingress.1.deny.blue.IPv4 && 53 <= udp.dst <= 54",
            "drop",
            1
        )));
        // no IPv6 peer: the set exists, no ACL; the named port adds nothing
        assert_eq!(acls.len(), 3, "{acls:?}");
        assert!(
            d.address_sets["deny.blue.ingress.1.deny.blue.IPv6"]
                .addresses
                .is_empty()
        );
        assert_eq!(
            d.address_sets["deny.blue.ingress.1.deny.blue.IPv4"].addresses,
            BTreeSet::from(["10.16.0.7".to_string()])
        );
        assert_eq!(
            d.address_sets["deny.blue.ingress.0.pass.web.IPv4"].external_ids["anp"],
            "deny-blue/ingress"
        );
    }

    #[test]
    fn a_baseline_policy_sits_in_tier_3_below_network_policies() {
        let w = World {
            baseline_policies: vec![json!({
                "metadata": {"name": "default"},
                "spec": {"subject": {"pods": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}}, "podSelector": {"matchLabels": {"app": "db"}}}},
                    "egress": [{"name": "no-cidr", "action": "Deny", "to": [{"networks": ["10.16.0.0/24", "fd00::/64", "bad"]}]}]}
            })],
            ..world()
        };
        let mut d = Desired::default();
        build_all(&w, true, &mut d);
        let pg = &d.port_groups["default"];
        assert_eq!(pg.external_ids["banp"], "default");
        assert_eq!(pg.ports, BTreeSet::from(["db.a".to_string()]));
        let v6 = pg
            .acls
            .iter()
            .find(|a| a.name.as_deref() == Some("banp/default/egress/IPv6/0"))
            .expect("the IPv6 egress ACL");
        assert_eq!(
            (
                v6.priority,
                v6.tier,
                v6.direction.as_str(),
                v6.matches.as_str()
            ),
            (
                1800,
                3,
                "from-lport",
                "inport == @default && ip && ip6.dst == $default.egress.0.no.cidr.IPv6"
            )
        );
        // without ACL tiers (OVN < 23.06) Kube-OVN's policies cannot exist
        let mut none = Desired::default();
        build_all(&w, false, &mut none);
        assert!(none.port_groups.is_empty());
    }

    #[test]
    fn names_not_starting_with_a_letter_get_a_prefix() {
        assert_eq!(anp_name("1-deny"), "anp1-deny");
        assert_eq!(anp_name("deny"), "deny");
    }
}
