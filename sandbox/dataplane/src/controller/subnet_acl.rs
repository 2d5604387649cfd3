//! Subnet `spec.acls` (and `allowEWTraffic`) -> ACLs on the subnet's switch tagged
//! `subnet=<ls>`, as `UpdateLogicalSwitchACL` (pkg/ovs/ovn-nb-acl.go) writes them.

use std::collections::BTreeSet;

use super::model::{Acl, Desired, NETPOL_TIER, family};
use super::world::{self, World};

const ALLOW_EW: u32 = 1900;

pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
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
        let acls = acls
            .into_iter()
            .map(|a| {
                let a = a.ext("subnet", ls);
                if tiers { a.tier(NETPOL_TIER) } else { a }
            })
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
}
