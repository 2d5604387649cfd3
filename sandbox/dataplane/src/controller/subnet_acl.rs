//! Subnet `spec.acls` (and `allowEWTraffic`) -> ACLs on the subnet's switch tagged
//! `subnet=<ls>`, as `UpdateLogicalSwitchACL` (pkg/ovs/ovn-nb-acl.go) writes them;
//! `spec.private` (with `allowSubnets`) -> the untagged switch ACLs of
//! `SetLogicalSwitchPrivate`: drop 1000 (logged), allow-related 1001 for the own CIDR
//! and each allowed subnet, 3000 for the nodes' join subnet.

use std::collections::BTreeSet;

use super::model::{Acl, Desired, NETPOL_TIER, family};
use super::world::{self, World};

const ALLOW_EW: u32 = 1900;
const PRIVATE_DROP: u32 = 1000;
const PRIVATE_ALLOW: u32 = 1001;
const NODE_ALLOW: u32 = 3000;

/// The ACLs of a private subnet (`SetLogicalSwitchPrivate`).
fn private_acls(ls: &str, cidr_block: &str, node_cidrs: &str, allow: &[String]) -> Vec<Acl> {
    let mut out = vec![
        Acl::new(ls, "to-lport", PRIVATE_DROP, "ip", "drop")
            .named(ls)
            .logged("warning"),
    ];
    for cidr in cidr_block
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let fam = family(cidr);
        let l3 = if fam == "IPv6" { "ip6" } else { "ip4" };
        let same = format!("{l3}.src == {cidr} && {l3}.dst == {cidr}");
        out.push(Acl::new(
            ls,
            "to-lport",
            PRIVATE_ALLOW,
            &same,
            "allow-related",
        ));
        for node in node_cidrs
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && family(c) == fam)
        {
            let m = format!("{l3}.src == {node}");
            out.push(Acl::new(ls, "to-lport", NODE_ALLOW, &m, "allow-related"));
        }
        for a in allow
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty() && family(a) == fam)
        {
            let m = format!(
                "({l3}.src == {cidr} && {l3}.dst == {a}) || ({l3}.src == {a} && {l3}.dst == {cidr})"
            );
            out.push(Acl::new(ls, "to-lport", PRIVATE_ALLOW, &m, "allow-related"));
        }
    }
    out
}

pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
    // the node switch's CIDR (Kube-OVN's --node-switch-cidr)
    let node_cidrs = w
        .subnets
        .get(crate::plan::JOIN_SUBNET)
        .and_then(|j| j["spec"]["cidrBlock"].as_str())
        .unwrap_or("100.64.0.0/16")
        .to_string();
    for s in w.subnets.values() {
        let ls = world::name(s);
        let spec = &s["spec"];
        let rules = spec["acls"].as_array().cloned().unwrap_or_default();
        let mut acls = BTreeSet::new();
        if !rules.is_empty() {
            if spec["allowEWTraffic"].as_bool() == Some(true) {
                for cidr in spec["cidrBlock"].as_str().unwrap_or("").split(',') {
                    let l3 = if family(cidr) == "IPv6" { "ip6" } else { "ip4" };
                    let m = format!("{l3}.src == {cidr} && {l3}.dst == {cidr}");
                    for dir in ["to-lport", "from-lport"] {
                        acls.insert(Acl::new(ls, dir, ALLOW_EW, &m, "allow"));
                    }
                }
            }
            for r in &rules {
                let (Some(dir), Some(prio), Some(m), Some(action)) = (
                    r["direction"].as_str(),
                    r["priority"].as_u64(),
                    r["match"].as_str(),
                    r["action"].as_str(),
                ) else {
                    eprintln!(
                        "controller: subnet {ls}: ACL {r} lacks direction/priority/match/action; skipped"
                    );
                    continue;
                };
                acls.insert(Acl::new(ls, dir, prio as u32, m, action));
            }
        }
        let mut acls: BTreeSet<Acl> = acls.into_iter().map(|a| a.ext("subnet", ls)).collect();
        if spec["private"].as_bool() == Some(true) {
            let allow: Vec<String> = spec["allowSubnets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            let cidr = spec["cidrBlock"].as_str().unwrap_or("");
            acls.extend(private_acls(ls, cidr, &node_cidrs, &allow));
        }
        let acls = acls
            .into_iter()
            .map(|a| if tiers { a.tier(NETPOL_TIER) } else { a })
            .collect();
        out.switch_acls.insert(ls.to_string(), acls);
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subnet_acls_carry_the_subnet_tag() {
        let mut w = World::default();
        w.subnets.insert(
            "ovn-default".into(),
            json!({"metadata": {"name": "ovn-default"}, "spec": {"cidrBlock": "10.16.0.0/16",
                "allowEWTraffic": true,
                "acls": [{"direction": "to-lport", "priority": 1010,
                    "match": "ip4.src == 10.16.0.8", "action": "drop"}]}}),
        );
        w.subnets.insert(
            "join".into(),
            json!({"metadata": {"name": "join"}, "spec": {"cidrBlock": "100.64.0.0/16"}}),
        );
        let mut d = Desired::default();
        build_all(&w, false, &mut d);
        let acls = &d.switch_acls["ovn-default"];
        assert_eq!(acls.len(), 3);
        assert!(
            acls.iter()
                .all(|a| a.external_ids["subnet"] == "ovn-default"
                    && a.external_ids["parent"] == "ovn-default")
        );
        assert!(
            acls.iter()
                .any(|a| a.priority == 1010 && a.action == "drop")
        );
        assert!(acls.iter().any(|a| a.priority == 1900
            && a.matches == "ip4.src == 10.16.0.0/16 && ip4.dst == 10.16.0.0/16"));
        assert!(d.switch_acls["join"].is_empty());
    }

    #[test]
    fn a_private_subnet_drops_all_but_its_own_cidr_the_nodes_and_allowed_subnets() {
        let mut w = World::default();
        w.subnets.insert(
            "s2".into(),
            json!({"metadata": {"name": "s2"}, "spec": {"cidrBlock": "10.17.0.0/16",
                "private": true, "allowSubnets": ["10.16.0.0/16"]}}),
        );
        w.subnets.insert(
            "join".into(),
            json!({"metadata": {"name": "join"}, "spec": {"cidrBlock": "100.64.0.0/16"}}),
        );
        let mut d = Desired::default();
        build_all(&w, true, &mut d);
        let acls: Vec<&Acl> = d.switch_acls["s2"].iter().collect();
        assert_eq!(acls.len(), 4, "{acls:#?}");
        let drop = acls.iter().find(|a| a.priority == 1000).unwrap();
        assert_eq!(
            (
                drop.matches.as_str(),
                drop.action.as_str(),
                drop.name.as_deref()
            ),
            ("ip", "drop", Some("s2"))
        );
        assert_eq!(drop.log_severity.as_deref(), Some("warning"));
        assert!(acls.iter().all(|a| !a.external_ids.contains_key("subnet")
            && a.external_ids["parent"] == "s2"
            && a.tier == 2));
        assert!(
            acls.iter()
                .any(|a| a.priority == 3000 && a.matches == "ip4.src == 100.64.0.0/16")
        );
        assert!(acls.iter().any(|a| a.priority == 1001
            && a.matches == "(ip4.src == 10.17.0.0/16 && ip4.dst == 10.16.0.0/16) || (ip4.src == 10.16.0.0/16 && ip4.dst == 10.17.0.0/16)"));
    }
}
