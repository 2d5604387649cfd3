//! SecurityGroup CRs -> port group `ovn.sg.<sg>`, address sets
//! `ovn.sg.<sg>.associated.v4|v6` and ACLs, as kube-ovn-controller's
//! `handleAddOrUpdateSg`/`syncSgLogicalPort` (pkg/controller/security_group.go) and
//! `UpdateSgACL`/`CreateSgBaseACL`/`newSgRuleACL` (pkg/ovs/ovn-nb-acl.go) make them;
//! and the pod side: `security_groups`/`associated_sg_<sg>` on the LSP, its
//! `port_security`, and membership of `ovn.sg.kubeovn_deny_all`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{Acl, AddressSet, Desired, PortGroup, PortSettings, with_vendor};
use super::service::ApiWrite;
use super::world::{self, World};

pub const DENY_ALL: &str = "kubeovn_deny_all";
const HIGHEST: u32 = 18484;
const BASE: u32 = 2005;
const ALLOW_SAME_GROUP: u32 = 2004;
const TIER_BASE: u8 = crate::nb::SG_OVN_TIER_BASE;

/// `GetSgPortGroupName`.
pub fn port_group_name(sg: &str) -> String {
    format!("ovn.sg.{sg}").replace('-', ".")
}

/// `GetSgV4AssociatedName` / `GetSgV6AssociatedName`.
pub fn associated_name(sg: &str, v6: bool) -> String {
    format!("ovn.sg.{sg}.associated.{}", if v6 { "v6" } else { "v4" }).replace('-', ".")
}

/// Pod-side settings first (they decide the members), then each SecurityGroup.
pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
    pod_ports(w, out);
    let existing: BTreeSet<&str> = w.security_groups.iter().map(world::name).collect();
    for (lsp, s) in &out.ports {
        let sgs = s
            .external_ids
            .get("security_groups")
            .map(String::as_str)
            .unwrap_or("");
        if sgs.split('/').any(|sg| existing.contains(sg)) {
            out.deny_all_ports.insert(lsp.clone());
        }
    }
    for sg in &w.security_groups {
        build(sg, w, tiers, out);
    }
}

/// The status `patchSgStatus` writes once the rows are in (without the rule
/// digests, which hash Go structs): port group, same-group flag, sync success.
pub fn status_writes(w: &World) -> Vec<ApiWrite> {
    let mut out = Vec::new();
    for sg in &w.security_groups {
        let name = world::name(sg);
        let want = serde_json::json!({
            "portGroup": port_group_name(name),
            "allowSameGroupTraffic": sg["spec"]["allowSameGroupTraffic"].as_bool().unwrap_or(false),
            "ingressLastSyncSuccess": true,
            "egressLastSyncSuccess": true,
        });
        let have = &sg["status"];
        let same = want
            .as_object()
            .is_some_and(|m| m.iter().all(|(k, v)| &have[k] == v));
        if !name.is_empty() && !same {
            out.push(ApiWrite {
                method: "PATCH",
                path: format!("/apis/kubeovn.io/v1/security-groups/{name}/status"),
                body: Some(serde_json::json!({ "status": want })),
            });
        }
    }
    out
}

/// What each pod's annotations ask of its LSP (`buildLogicalSwitchPort`,
/// `reconcilePortSg`): LSPs of pods without the annotations are left as they are,
/// except that associations the pod dropped become "false".
fn pod_ports(w: &World, out: &mut Desired) {
    for p in &w.pods {
        let Some(lsp_name) = world::pod_lsp(p) else {
            continue;
        };
        let Some(lsp) = w.lsps.get(&lsp_name) else {
            continue;
        };
        let sgs: Vec<&str> = world::annotation(p, "ovn.kubernetes.io/security_groups")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let port_security = world::annotation(p, "ovn.kubernetes.io/port_security") == Some("true");
        let mut s = PortSettings {
            external_ids: lsp.external_ids.clone(),
            port_security: Vec::new(),
        };
        for (k, v) in lsp.external_ids.iter() {
            if let Some(sg) = k.strip_prefix("associated_sg_")
                && v == "true"
                && !sgs.contains(&sg)
            {
                s.external_ids.insert(k.clone(), "false".into());
            }
        }
        if sgs.is_empty() {
            s.external_ids.remove("security_groups");
        } else {
            s.external_ids
                .insert("security_groups".into(), sgs.join("/"));
            for sg in &sgs {
                s.external_ids
                    .insert(format!("associated_sg_{sg}"), "true".into());
            }
        }
        if port_security {
            let mut addrs = vec![];
            if let Some(a) = lsp.addresses.first() {
                addrs.push(a.clone());
            }
            s.port_security = addrs;
        }
        out.ports.insert(lsp_name, s);
    }
}

fn build(sg: &Value, w: &World, tiers: bool, out: &mut Desired) {
    let name = world::name(sg);
    if name.is_empty() || name == DENY_ALL {
        return;
    }
    let pg = port_group_name(name);
    let key = format!("associated_sg_{name}");
    let mut group = PortGroup {
        external_ids: with_vendor(&[("type", "security_group"), ("sg", name)]),
        ..PortGroup::default()
    };
    let (mut v4, mut v6) = (BTreeSet::new(), BTreeSet::new());
    for (lsp_name, s) in &out.ports {
        if s.external_ids.get(&key).map(String::as_str) != Some("true") {
            continue;
        }
        group.ports.insert(lsp_name.clone());
        let lsp = w.lsps.get(lsp_name);
        let from = if s.port_security.is_empty() {
            lsp.map(|l| l.addresses.clone()).unwrap_or_default()
        } else {
            s.port_security.clone()
        };
        for a in from.iter().flat_map(|a| a.split_whitespace().skip(1)) {
            if a.contains(':') {
                v6.insert(a.to_string());
            } else {
                v4.insert(a.to_string());
            }
        }
    }
    for (v6_set, addrs) in [(false, v4), (true, v6)] {
        out.address_sets.insert(
            associated_name(name, v6_set),
            AddressSet {
                external_ids: with_vendor(&[("sg", name)]),
                addresses: addrs,
            },
        );
    }
    let sg_tier = TIER_BASE + sg["spec"]["tier"].as_u64().unwrap_or(0).min(1) as u8;
    let t = |a: Acl, tier: u8| if tiers { a.tier(tier) } else { a };
    for dir in ["to-lport", "from-lport"] {
        for a in rule_acls(sg, &pg, dir) {
            group.acls.insert(t(a, sg_tier));
        }
        // the base rules exist once per SecurityGroup tier (0 and 1)
        for tier in [TIER_BASE, TIER_BASE + 1] {
            for a in base_acls(&pg, dir) {
                group.acls.insert(t(a, tier));
            }
        }
    }
    out.port_groups.insert(pg, group);
}

/// `UpdateSgACL`: same-group traffic and the CR's rules, for one direction.
fn rule_acls(sg: &Value, pg: &str, dir: &str) -> Vec<Acl> {
    let name = world::name(sg);
    let ingress = dir == "to-lport";
    let (side, port, rules_key) = if ingress {
        ("src", "outport", "ingressRules")
    } else {
        ("dst", "inport", "egressRules")
    };
    let mut acls = Vec::new();
    if sg["spec"]["allowSameGroupTraffic"].as_bool() == Some(true) {
        for (l3, v6) in [("ip4", false), ("ip6", true)] {
            let m = format!(
                "{port} == @{pg} && {l3} && {l3}.{side} == ${}",
                associated_name(name, v6)
            );
            acls.push(Acl::new(pg, dir, ALLOW_SAME_GROUP, &m, "allow-related"));
        }
    }
    for rule in sg["spec"][rules_key].as_array().into_iter().flatten() {
        if let Some(a) = rule_acl(pg, dir, rule) {
            acls.push(a);
        }
    }
    acls
}

/// `newSgRuleACL`; None for a rule Kube-OVN's validation would refuse.
fn rule_acl(pg: &str, dir: &str, rule: &Value) -> Option<Acl> {
    let ingress = dir == "to-lport";
    let l3 = if rule["ipVersion"].as_str() == Some("ipv6") {
        "ip6"
    } else {
        "ip4"
    };
    let (remote_side, local_side, port) = if ingress {
        ("src", "dst", "outport")
    } else {
        ("dst", "src", "inport")
    };
    let prio = rule["priority"]
        .as_u64()
        .filter(|p| (1..=16384).contains(p))? as u32;
    let remote = match rule["remoteType"].as_str() {
        Some("securityGroup") => {
            let rsg = rule["remoteSecurityGroup"].as_str()?;
            format!("${}", associated_name(rsg, l3 == "ip6"))
        }
        _ => rule["remoteAddress"].as_str()?.to_string(),
    };
    let mut m = format!("{port} == @{pg} && {l3} && {l3}.{remote_side} == {remote}");
    let local = rule["localAddress"].as_str().filter(|s| !s.is_empty());
    if let Some(l) = local {
        m.push_str(&format!(" && {l3}.{local_side} == {l}"));
    }
    let n = |k: &str| rule[k].as_i64().unwrap_or(0);
    match rule["protocol"].as_str().unwrap_or("all") {
        "icmp" => m.push_str(if l3 == "ip6" {
            " && icmp6"
        } else {
            " && icmp4"
        }),
        p @ ("tcp" | "udp") => {
            m.push_str(&format!(
                " && {} <= {p}.dst <= {}",
                n("portRangeMin"),
                n("portRangeMax")
            ));
            if local.is_some() {
                m.push_str(&format!(
                    " && {} <= {p}.src <= {}",
                    n("sourcePortRangeMin"),
                    n("sourcePortRangeMax")
                ));
            }
        }
        _ => {}
    }
    let action = match rule["policy"].as_str() {
        Some("allow") => "allow-related",
        Some("pass") => "pass",
        _ => "drop",
    };
    Some(Acl::new(pg, dir, HIGHEST - prio, &m, action))
}

/// `CreateSgBaseACL`: ARP, ICMPv6 ND/MLD, DHCPv4/v6 and VRRP stay allowed.
fn base_acls(pg: &str, dir: &str) -> Vec<Acl> {
    let ingress = dir == "to-lport";
    let port = if ingress { "outport" } else { "inport" };
    let (d4s, d4d, d6s, d6d, icmp6) = if ingress {
        ("67", "68", "547", "546", "{130, 134, 135, 136}")
    } else {
        ("68", "67", "546", "547", "{130, 133, 135, 136}")
    };
    [
        format!("{port} == @{pg} && arp"),
        format!("{port} == @{pg} && icmp6.type == {icmp6} && icmp6.code == 0 && ip.ttl == 255"),
        format!("{port} == @{pg} && udp.src == {d4s} && udp.dst == {d4d} && ip4"),
        format!("{port} == @{pg} && udp.src == {d6s} && udp.dst == {d6d} && ip6"),
        format!("{port} == @{pg} && ip.proto == 112"),
    ]
    .iter()
    .map(|m| Acl::new(pg, dir, BASE, m, "allow-related"))
    .collect()
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::controller::world::Lsp;
    use serde_json::json;

    #[test]
    fn a_security_group_and_its_pods_are_shaped_like_kube_ovn() {
        let mut w = World::default();
        w.pods = vec![json!({"metadata": {"name": "a", "namespace": "default",
            "annotations": {"ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/security_groups": "web-sg",
                "ovn.kubernetes.io/port_security": "true"}}, "spec": {}})];
        w.lsps.insert(
            "a.default".into(),
            Lsp {
                addresses: vec!["00:00:00:00:00:01 10.16.0.20".into()],
                ..Lsp::default()
            },
        );
        w.security_groups = vec![json!({"metadata": {"name": "web-sg"}, "spec": {
            "allowSameGroupTraffic": true,
            "ingressRules": [{"ipVersion": "ipv4", "protocol": "tcp", "priority": 1,
                "remoteType": "address", "remoteAddress": "10.16.0.0/16",
                "portRangeMin": 80, "portRangeMax": 80, "policy": "allow"}]}})];
        let mut d = Desired::default();
        build_all(&w, false, &mut d);
        let pg = &d.port_groups["ovn.sg.web.sg"];
        assert_eq!(pg.external_ids["sg"], "web-sg");
        assert_eq!(pg.external_ids["type"], "security_group");
        assert!(pg.ports.contains("a.default"));
        assert!(d.deny_all_ports.contains("a.default"));
        assert_eq!(
            d.ports["a.default"].external_ids["security_groups"],
            "web-sg"
        );
        assert_eq!(
            d.ports["a.default"].external_ids["associated_sg_web-sg"],
            "true"
        );
        assert_eq!(
            d.ports["a.default"].port_security,
            ["00:00:00:00:00:01 10.16.0.20"]
        );
        assert!(
            d.address_sets["ovn.sg.web.sg.associated.v4"]
                .addresses
                .contains("10.16.0.20")
        );
        let rule = pg.acls.iter().find(|a| a.priority == 18483).unwrap();
        assert_eq!(
            rule.matches,
            "outport == @ovn.sg.web.sg && ip4 && ip4.src == 10.16.0.0/16 && 80 <= tcp.dst <= 80"
        );
        assert_eq!(rule.action, "allow-related");
        assert!(pg.acls.iter().any(|a| a.priority == 2004
            && a.matches
                == "outport == @ovn.sg.web.sg && ip4 && ip4.src == $ovn.sg.web.sg.associated.v4"));
        // without a tier column the two tiers' base rules are one set
        assert_eq!(pg.acls.iter().filter(|a| a.priority == 2005).count(), 10);
        let mut d2 = Desired::default();
        build_all(&w, true, &mut d2);
        assert_eq!(
            d2.port_groups["ovn.sg.web.sg"]
                .acls
                .iter()
                .filter(|a| a.priority == 2005)
                .count(),
            20
        );
    }

    #[test]
    fn the_status_is_written_until_it_says_synced() {
        let mut w = World::default();
        w.security_groups = vec![json!({"metadata": {"name": "web-sg"}, "spec": {}})];
        let writes = status_writes(&w);
        assert_eq!(writes.len(), 1);
        assert!(writes[0].path.ends_with("/security-groups/web-sg/status"));
        w.security_groups[0]["status"] = writes[0].body.as_ref().unwrap()["status"].clone();
        assert!(status_writes(&w).is_empty());
    }
}
