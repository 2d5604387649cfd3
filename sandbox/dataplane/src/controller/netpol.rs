//! NetworkPolicy -> port group `<np>.<ns>`, address sets and ACLs, shaped as
//! kube-ovn-controller's `handleUpdateNp` (pkg/controller/network_policy.go) and the
//! ACL builders of pkg/ovs/ovn-nb-acl.go make them: default drop at 2000, allows at
//! 2001 (`allow-related`), selector peers through `<pg>.<dir>.allow|except.<fam>.<idx>`
//! address sets, ipBlock peers inline with their `except` list, ports and named ports.
//! "standard" enforcement (Kube-OVN's default); ACL logging annotations are ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{Acl, AddressSet, Desired, NETPOL_TIER, PortGroup, family, with_vendor};
use super::selector;
use super::world::{self, World};

const ALLOW: u32 = 2001;
const DEFAULT_DROP: u32 = 2000;

/// One direction of a policy: ingress (to-lport, peers are sources) or egress.
struct Dir {
    name: &'static str,
    acl_dir: &'static str,
    port: &'static str,
    peer_side: &'static str,
    rules_key: &'static str,
    peers_key: &'static str,
}

const INGRESS: Dir = Dir {
    name: "ingress",
    acl_dir: "to-lport",
    port: "outport",
    peer_side: "src",
    rules_key: "ingress",
    peers_key: "from",
};
const EGRESS: Dir = Dir {
    name: "egress",
    acl_dir: "from-lport",
    port: "inport",
    peer_side: "dst",
    rules_key: "egress",
    peers_key: "to",
};

/// Kube-OVN prefixes names that do not start with a letter with "np".
pub fn np_name(name: &str) -> String {
    if name.chars().next().is_some_and(char::is_alphabetic) {
        name.to_string()
    } else {
        format!("np{name}")
    }
}

/// `npPortGroupName`: `<np>.<ns>` with '-' replaced by '.'.
pub fn port_group_name(ns: &str, np: &str) -> String {
    format!("{np}.{ns}").replace('-', ".")
}

/// Add the rows of every NetworkPolicy to `out`.
pub fn build_all(w: &World, tiers: bool, out: &mut Desired) {
    for np in &w.policies {
        build(np, w, tiers, out);
    }
}

/// The rows of one NetworkPolicy.
pub fn build(np: &Value, w: &World, tiers: bool, out: &mut Desired) {
    let ns = world::namespace(np);
    let name = world::name(np);
    if name.is_empty() {
        return;
    }
    let npn = np_name(name);
    let pg = port_group_name(ns, &npn);
    let key = format!("{ns}/{name}");
    let (ports, protocols) = selected_ports(np, w);
    let named = named_ports(w, ns);
    let mut group = PortGroup {
        external_ids: with_vendor(&[("np", &format!("{ns}/{npn}"))]),
        ports,
        acls: BTreeSet::new(),
    };
    let spec = &np["spec"];
    for dir in [&INGRESS, &EGRESS] {
        if !has_rules(spec, dir) {
            continue;
        }
        let ctx = NpCtx {
            ns,
            npn: &npn,
            pg: &pg,
            dir,
            w,
            named: &named,
        };
        if !protocols.is_empty() {
            let mut drop = Acl::new(
                &pg,
                dir.acl_dir,
                DEFAULT_DROP,
                &format!("{} == @{pg} && ip", dir.port),
                "drop",
            )
            .named(&key);
            if dir.acl_dir == "from-lport" {
                drop = drop.option("apply-after-lb", "true");
            }
            group.acls.insert(drop);
        }
        for proto in &protocols {
            ctx.rules(spec, proto, &mut group.acls, &mut out.address_sets);
        }
    }
    if protocols.contains("IPv6") {
        // CreateGatewayACL: ICMPv6 both ways so the pods still find their gateway
        group.acls.insert(
            Acl::new(&pg, "from-lport", ALLOW, "icmp6", "allow-stateless")
                .option("apply-after-lb", "true"),
        );
        group
            .acls
            .insert(Acl::new(&pg, "to-lport", ALLOW, "icmp6", "allow-stateless"));
    }
    if tiers {
        group.acls = group
            .acls
            .into_iter()
            .map(|a| a.tier(NETPOL_TIER))
            .collect();
    }
    out.port_groups.insert(pg, group);
}

/// `hasIngressRule`/`hasEgressRule`: named in policyTypes, or the list is present.
fn has_rules(spec: &Value, dir: &Dir) -> bool {
    let typed = spec["policyTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|t| {
            t.contains(if dir.name == "ingress" {
                "Ingress"
            } else {
                "Egress"
            })
        });
    typed || !spec[dir.rules_key].is_null()
}

/// `fetchSelectedPorts`: LSPs of the allocated, non-hostNetwork pods the policy
/// selects, and the protocols of their subnets.
fn selected_ports(np: &Value, w: &World) -> (BTreeSet<String>, BTreeSet<String>) {
    let ns = world::namespace(np);
    let mut ports = BTreeSet::new();
    let mut protocols = BTreeSet::new();
    for p in w.pods_in(ns) {
        if !selector::matches(&np["spec"]["podSelector"], &p["metadata"]["labels"]) {
            continue;
        }
        let Some(lsp) = world::pod_lsp(p) else {
            continue;
        };
        ports.insert(lsp);
        let subnet = world::annotation(p, "ovn.kubernetes.io/logical_switch").unwrap_or("");
        match w
            .subnets
            .get(subnet)
            .and_then(|s| s["spec"]["protocol"].as_str())
        {
            Some("Dual") => {
                protocols.insert("IPv4".to_string());
                protocols.insert("IPv6".to_string());
            }
            Some(p) => {
                protocols.insert(p.to_string());
            }
            None => {}
        }
    }
    (ports, protocols)
}

/// Named container ports of the namespace's pods (Kube-OVN's `namedPort` cache).
fn named_ports(w: &World, ns: &str) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for p in w.pods_in(ns) {
        for c in p["spec"]["containers"].as_array().into_iter().flatten() {
            for port in c["ports"].as_array().into_iter().flatten() {
                if let (Some(n), Some(num)) =
                    (port["name"].as_str(), port["containerPort"].as_i64())
                {
                    m.insert(n.to_string(), num);
                }
            }
        }
    }
    m
}

struct NpCtx<'a> {
    ns: &'a str,
    npn: &'a str,
    pg: &'a str,
    dir: &'a Dir,
    w: &'a World,
    named: &'a BTreeMap<String, i64>,
}

impl NpCtx<'_> {
    fn as_name(&self, kind: &str, proto: &str, idx: &str) -> String {
        format!("{}.{}.{}.{kind}", self.npn, self.ns, self.dir.name).replace('-', ".")
            + &format!(".{proto}.{idx}")
    }

    fn address_set(
        &self,
        sets: &mut BTreeMap<String, AddressSet>,
        name: String,
        addrs: Vec<String>,
    ) {
        let ext = format!("{}/{}/{}", self.ns, self.npn, self.dir.name);
        sets.insert(
            name,
            AddressSet {
                external_ids: with_vendor(&[("np", &ext)]),
                addresses: addrs.into_iter().collect(),
            },
        );
    }

    fn acl(&self, m: String, name: &str) -> Acl {
        let a = Acl::new(self.pg, self.dir.acl_dir, ALLOW, &m, "allow-related").named(name);
        if self.dir.acl_dir == "from-lport" {
            a.option("apply-after-lb", "true")
        } else {
            a
        }
    }

    /// The rules of one direction for one address family.
    fn rules(
        &self,
        spec: &Value,
        proto: &str,
        acls: &mut BTreeSet<Acl>,
        sets: &mut BTreeMap<String, AddressSet>,
    ) {
        let rules = spec[self.dir.rules_key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (npn, ns, d) = (self.npn, self.ns, self.dir.name);
        if rules.is_empty() {
            let allow = self.as_name("allow", proto, "all");
            let except = self.as_name("except", proto, "all");
            self.address_set(sets, allow.clone(), vec![]);
            self.address_set(sets, except.clone(), vec![]);
            let name = format!("np/{npn}.{ns}/{d}/{proto}/all");
            for m in self.matches(proto, &allow, &except, &Value::Null) {
                acls.insert(self.acl(m, &name));
            }
            return;
        }
        for (idx, rule) in rules.iter().enumerate() {
            let allow = self.as_name("allow", proto, &idx.to_string());
            let except = self.as_name("except", proto, &idx.to_string());
            let name = format!("np/{npn}.{ns}/{d}/{proto}/{idx}");
            let peers = rule[self.dir.peers_key]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut selected = Vec::new();
            let mut blocks = Vec::new();
            if peers.is_empty() {
                selected.push(if proto == "IPv4" { "0.0.0.0/0" } else { "::/0" }.to_string());
            }
            for peer in &peers {
                if peer["ipBlock"].is_object() {
                    blocks.push(peer["ipBlock"].clone());
                }
                if peer["podSelector"].is_object() || peer["namespaceSelector"].is_object() {
                    selected.extend(self.peer_addresses(peer, proto));
                }
            }
            let any_selected = !selected.is_empty();
            self.address_set(sets, allow.clone(), selected);
            self.address_set(sets, except.clone(), vec![]);
            if any_selected {
                for m in self.matches(proto, &allow, &except, &rule["ports"]) {
                    acls.insert(self.acl(m, &name));
                }
            }
            if !blocks.is_empty() {
                let bname = format!("{name}/ipBlock");
                for m in self.block_matches(proto, &blocks, &rule["ports"]) {
                    acls.insert(self.acl(m, &bname));
                }
            }
        }
    }

    /// `fetchPolicySelectedAddresses` for a selector peer.
    fn peer_addresses(&self, peer: &Value, proto: &str) -> Vec<String> {
        let namespaces: Vec<String> = if peer["namespaceSelector"].is_object() {
            self.w
                .namespaces
                .iter()
                .filter(|n| selector::matches(&peer["namespaceSelector"], &n["metadata"]["labels"]))
                .map(|n| world::name(n).to_string())
                .collect()
        } else {
            vec![self.ns.to_string()]
        };
        let mut out = Vec::new();
        for ns in &namespaces {
            for p in self.w.pods_in(ns) {
                if peer["podSelector"].is_object()
                    && !selector::matches(&peer["podSelector"], &p["metadata"]["labels"])
                {
                    continue;
                }
                out.extend(
                    world::pod_ips(p)
                        .into_iter()
                        .filter(|ip| family(ip) == proto),
                );
            }
        }
        out
    }

    /// `newNetworkPolicyACLMatch`.
    fn matches(&self, proto: &str, allow: &str, except: &str, ports: &Value) -> Vec<String> {
        let l3 = if proto == "IPv6" { "ip6" } else { "ip4" };
        let key = format!("{l3}.{}", self.dir.peer_side);
        let base = format!(
            "{} == @{} && ip && {key} == ${allow} && {key} != ${except}",
            self.dir.port, self.pg
        );
        self.with_ports(&base, ports)
    }

    /// `newIPBlockACLMatch`: the blocks of this family, each with the excepts it
    /// contains, ORed, inline.
    fn block_matches(&self, proto: &str, blocks: &[Value], ports: &Value) -> Vec<String> {
        let l3 = if proto == "IPv6" { "ip6" } else { "ip4" };
        let key = format!("{l3}.{}", self.dir.peer_side);
        let mut per_block = Vec::new();
        for b in blocks {
            let Some(cidr) = b["cidr"].as_str().filter(|c| family(c) == proto) else {
                continue;
            };
            let excepts: Vec<&str> = b["except"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|e| family(e) == proto && cidr_contains(cidr, e))
                .collect();
            if excepts.is_empty() {
                per_block.push(format!("{key} == {cidr}"));
            } else {
                per_block.push(format!(
                    "{key} == {cidr} && {key} != {{{}}}",
                    excepts.join(", ")
                ));
            }
        }
        if per_block.is_empty() {
            return vec![];
        }
        let l3m = if per_block.len() == 1 {
            per_block.remove(0)
        } else {
            per_block
                .iter()
                .map(|m| {
                    if m.contains("&&") {
                        format!("({m})")
                    } else {
                        m.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" || ")
        };
        let base = format!("{} == @{} && ip && ({l3m})", self.dir.port, self.pg);
        self.with_ports(&base, ports)
    }

    /// One match per policy port (none: the base match alone).
    fn with_ports(&self, base: &str, ports: &Value) -> Vec<String> {
        let Some(ports) = ports.as_array().filter(|p| !p.is_empty()) else {
            return vec![base.to_string()];
        };
        let mut out = Vec::new();
        for p in ports {
            let l4 = p["protocol"].as_str().unwrap_or("TCP").to_lowercase();
            let port = &p["port"];
            if port.is_null() {
                out.push(format!("{base} && {l4}"));
                continue;
            }
            let number = match (port.as_i64(), port.as_str()) {
                (Some(n), _) => Some(n),
                // a named port with endPort is not supported by Kube-OVN: skipped
                (None, Some(_)) if !p["endPort"].is_null() => None,
                // unknown name: no allow ACL, so the port stays denied
                (None, Some(n)) => self.named.get(n).copied(),
                _ => None,
            };
            let Some(number) = number else { continue };
            match p["endPort"].as_i64() {
                Some(end) => out.push(format!("{base} && {number} <= {l4}.dst <= {end}")),
                None => out.push(format!("{base} && {l4}.dst == {number}")),
            }
        }
        out
    }
}

/// Whether `inner` lies inside `outer` (both CIDRs or addresses of one family).
pub fn cidr_contains(outer: &str, inner: &str) -> bool {
    let parse = |s: &str| -> Option<(u128, u32, u32)> {
        let (ip, len) = s.split_once('/').unwrap_or((s, ""));
        let addr: std::net::IpAddr = ip.parse().ok()?;
        let (bits, width) = match addr {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128),
        };
        let len = if len.is_empty() {
            width
        } else {
            len.parse().ok()?
        };
        (len <= width).then_some((bits, len, width))
    };
    let (Some((o, ol, ow)), Some((i, il, iw))) = (parse(outer), parse(inner)) else {
        return false;
    };
    if ow != iw || il < ol {
        return false;
    }
    let shift = ow - ol;
    shift >= 128 || (o >> shift) == (i >> shift)
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests;
