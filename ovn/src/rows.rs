//! The OVSDB rows every command reads, defined once: NB `Logical_Switch_Port`
//! and `Port_Group`, SB `Chassis`, `Encap` and `Port_Binding`, OVS
//! `Interface`; the Kube-OVN rules on them ("this port group is a
//! NetworkPolicy / SecurityGroup", "this interface is a tunnel"); and how an
//! OpenFlow cookie is written as a logical flow UUID prefix.
//!
//! Each row is built from `--format=json list <Table>` output by `from_row`,
//! so the columns a command did not ask for are simply empty. Differences
//! between OVN/OVS releases are handled here: `Port_Binding.up` is absent
//! before OVN 21.06 (`None`), `Logical_Router_Policy.nexthop` became
//! `nexthops` (read in `verdict::nb`), an `Interface.ofport` not yet assigned
//! is an empty set (-1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ovsdb_json::{Cells, Row, TableError, rows};

// ---- cookie formatting

/// The 8 hex digits of the logical flow UUID prefix a cookie stands for
/// (ovn-controller uses the first 32 bits of the flow's UUID as cookie).
pub fn cookie_prefix(cookie: u64) -> String {
    format!("{:08x}", cookie & 0xffff_ffff)
}

/// First 32 bits of a UUID or a prefix as printed by the tools:
/// `9b54783d-...`, `9b54783d`, `0x9b54783d`, `0x415f2d`.
pub fn uuid_prefix(s: &str) -> Option<u32> {
    let s = s.trim();
    let hex = s.strip_prefix("0x").unwrap_or(s);
    let first = hex.split('-').next()?;
    if first.is_empty() || first.len() > 8 || !first.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(first, 16).ok()
}

/// An OpenFlow cookie as printed (`0x7b3bc022`, `0xf5d7433`) as the
/// 8-hex-digit logical flow UUID prefix; `None` for cookie 0 (ovn-controller's
/// own flows) and values wider than 32 bits.
pub fn cookie_to_prefix(cookie: &str) -> Option<String> {
    let hex = cookie.trim().trim_start_matches("0x");
    let v = u64::from_str_radix(hex, 16).ok()?;
    (v != 0 && v <= u64::from(u32::MAX)).then(|| cookie_prefix(v))
}

// ---- NB

/// NB `Logical_Switch_Port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lsp {
    #[serde(default)]
    pub uuid: String,
    pub name: String,
    /// Each element one `"<mac> <ip> <ip>"` entry (or `router`, `unknown`).
    pub addresses: Vec<String>,
    pub port_type: String,
    pub external_ids: BTreeMap<String, String>,
}

impl Lsp {
    pub fn from_row(r: &Row) -> Self {
        Lsp {
            uuid: r.str("_uuid"),
            name: r.str("name"),
            addresses: r.set("addresses"),
            port_type: r.str("type"),
            external_ids: r.map("external_ids"),
        }
    }

    /// MAC and IPs from the first `"<mac> <ip> [<ip>...]"` address entry.
    pub fn mac_and_ips(&self) -> Option<(String, Vec<String>)> {
        let first = self
            .addresses
            .iter()
            .find(|a| !matches!(a.as_str(), "router" | "unknown" | "dynamic"))?;
        let mut parts = first.split_whitespace();
        let mac = parts.next()?.to_ascii_lowercase();
        Some((mac, parts.map(str::to_string).collect()))
    }

    /// `<ns>/<pod>` this port was created for (Kube-OVN's `external_ids:pod`).
    pub fn pod(&self) -> Option<&str> {
        self.external_ids.get("pod").map(String::as_str)
    }
}

/// What created an ACL or a port group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    NetworkPolicy,
    SecurityGroup,
    /// A node's own ACLs (`node.<node>` port group).
    NodeAcl,
    /// `spec.acls` of a Subnet (ACL parent is the logical switch).
    SubnetAcl,
    /// An ACL Kube-OVN did not label.
    Acl,
}

/// NB `Port_Group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortGroup {
    pub uuid: String,
    pub name: String,
    /// LSP UUIDs (when the `ports` column was read).
    #[serde(default)]
    pub ports: Vec<String>,
    pub acls: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl PortGroup {
    pub fn from_row(r: &Row) -> Self {
        PortGroup {
            uuid: r.str("_uuid"),
            name: r.str("name"),
            ports: r.set("ports"),
            acls: r.set("acls"),
            external_ids: r.map("external_ids"),
        }
    }

    /// Who Kube-OVN made this group for ([`port_group_owner`]).
    pub fn owner(&self) -> Option<(PolicyKind, String)> {
        port_group_owner(&self.name, &self.external_ids)
    }

    /// `<ns>/<policy>` when this group is a NetworkPolicy's.
    pub fn network_policy(&self) -> Option<String> {
        match self.owner() {
            Some((PolicyKind::NetworkPolicy, np)) => Some(np),
            _ => None,
        }
    }
}

/// What Kube-OVN created a port group for, from its name and external_ids:
/// - a node's group (`node.<node>`, `node=<node>`, `np=node/<node>`) and a
///   distributed subnet's per-node group (`node=<node>`, `np=<subnet>/<node>`)
///   carry `np=` too, but are not NetworkPolicies: the `node` key says so;
/// - a NetworkPolicy's group: `np=<ns>/<policy>`;
/// - a SecurityGroup's: `sg=<sg>` (`type=security_group`), or by its name
///   `ovn.sg.<sg with dots>` when the external_ids are missing.
pub fn port_group_owner(
    name: &str,
    external_ids: &BTreeMap<String, String>,
) -> Option<(PolicyKind, String)> {
    let np = external_ids.get("np").filter(|v| v.contains('/'));
    if let Some(node) = external_ids.get("node") {
        return Some((PolicyKind::NodeAcl, node.clone()));
    }
    if let Some(node) = name.strip_prefix("node.") {
        return Some((PolicyKind::NodeAcl, node.to_string()));
    }
    if let Some(node) = np.and_then(|v| v.strip_prefix("node/")) {
        return Some((PolicyKind::NodeAcl, node.to_string()));
    }
    if let Some(np) = np {
        return Some((PolicyKind::NetworkPolicy, np.clone()));
    }
    if let Some(sg) = external_ids.get("sg") {
        return Some((PolicyKind::SecurityGroup, sg.clone()));
    }
    name.strip_prefix("ovn.sg.")
        .map(|sg| (PolicyKind::SecurityGroup, sg.replace('.', "-")))
}

// ---- SB

/// SB `Chassis`, with the IPs of its `Encap` rows when those were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chassis {
    #[serde(default)]
    pub uuid: String,
    pub name: String,
    pub hostname: String,
    /// Kubernetes node (Kube-OVN's `node` external id, else the hostname).
    pub node: String,
    /// `Encap` row UUIDs.
    #[serde(default)]
    pub encaps: Vec<String>,
    pub encap_ips: Vec<String>,
    #[serde(default)]
    pub external_ids: BTreeMap<String, String>,
}

impl Chassis {
    pub fn from_row(r: &Row) -> Self {
        let external_ids = r.map("external_ids");
        let hostname = r.str("hostname");
        Chassis {
            uuid: r.str("_uuid"),
            name: r.str("name"),
            node: external_ids
                .get("node")
                .cloned()
                .unwrap_or_else(|| hostname.clone()),
            hostname,
            encaps: r.set("encaps"),
            encap_ips: Vec::new(),
            external_ids,
        }
    }

    /// Fills `encap_ips` from the Encap rows that belong to this chassis.
    pub fn with_encaps(mut self, encaps: &[Encap]) -> Self {
        self.encap_ips = encaps
            .iter()
            .filter(|e| e.chassis_name == self.name || self.encaps.contains(&e.uuid))
            .map(|e| e.ip.clone())
            .filter(|ip| !ip.is_empty())
            .collect();
        self
    }

    /// Whether this chassis is the one of Kubernetes node `node` (Kube-OVN tags
    /// `external_ids:node`; the hostname or system-id match otherwise).
    pub fn is_node(&self, node: &str, chassis_annotation: Option<&str>) -> bool {
        self.external_ids.get("node").map(String::as_str) == Some(node)
            || chassis_annotation.is_some_and(|a| a == self.name)
            || self.hostname == node
            || self.name == node
    }
}

/// SB `Encap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encap {
    pub uuid: String,
    pub chassis_name: String,
    pub ip: String,
    /// `geneve`, `vxlan`, `stt`.
    pub encap_type: String,
}

impl Encap {
    pub fn from_row(r: &Row) -> Self {
        Encap {
            uuid: r.str("_uuid"),
            chassis_name: r.str("chassis_name"),
            ip: r.str("ip"),
            encap_type: r.str("type"),
        }
    }
}

/// SB `Port_Binding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub logical_port: String,
    pub port_type: String,
    /// Chassis row UUID, when bound.
    pub chassis: Option<String>,
    /// `up` column; `None` on OVN releases without it.
    pub up: Option<bool>,
}

impl PortBinding {
    pub fn from_row(r: &Row) -> Self {
        PortBinding {
            logical_port: r.str("logical_port"),
            port_type: r.str("type"),
            chassis: r.set("chassis").into_iter().next(),
            up: r.get("up").and_then(|_| {
                // an optional boolean: a bare atom, or a set of zero or one
                r.set("up").into_iter().next().map(|s| s == "true")
            }),
        }
    }
}

// ---- OVS

/// OVS `Interface`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsInterface {
    pub name: String,
    /// -1 while OVS has not assigned one (an empty set in OVSDB).
    pub ofport: i64,
    #[serde(rename = "type")]
    pub iface_type: String,
    /// Tunnel interfaces: `options:remote_ip`.
    pub remote_ip: Option<String>,
    /// `external_ids:iface-id`: the logical port bound here.
    pub iface_id: Option<String>,
    /// `external_ids:pod_netns`: the pod's network namespace (Kube-OVN CNI).
    pub pod_netns: Option<String>,
}

impl OvsInterface {
    pub fn from_row(r: &Row) -> Self {
        let ext = r.map("external_ids");
        OvsInterface {
            name: r.str("name"),
            ofport: r.int("ofport").unwrap_or(-1),
            iface_type: r.str("type"),
            remote_ip: r.map("options").get("remote_ip").cloned(),
            iface_id: ext.get("iface-id").cloned(),
            pod_netns: ext.get("pod_netns").cloned(),
        }
    }

    pub fn is_tunnel(&self) -> bool {
        is_tunnel_type(&self.iface_type)
    }
}

/// Whether an OVS `Interface.type` is a tunnel ovn-controller creates
/// toward other chassis.
pub fn is_tunnel_type(iface_type: &str) -> bool {
    matches!(iface_type, "geneve" | "vxlan" | "stt" | "gre")
}

/// Rows of one `--format=json list <Table>` output, typed.
pub fn parse_rows<T>(json: &str, from_row: fn(&Row) -> T) -> Result<Vec<T>, TableError> {
    Ok(rows(json)?.iter().map(from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn port_group_owners_follow_kube_ovn() {
        let np = port_group_owner("deny.a.default", &ext(&[("np", "default/deny-a")]));
        assert_eq!(
            np,
            Some((PolicyKind::NetworkPolicy, "default/deny-a".into()))
        );
        // a distributed subnet's per-node group is not a NetworkPolicy
        let dist = ext(&[
            ("subnet", "ovn-default"),
            ("node", "w1"),
            ("np", "ovn-default/w1"),
        ]);
        assert_eq!(
            port_group_owner("ovn.default.w1", &dist),
            Some((PolicyKind::NodeAcl, "w1".into()))
        );
        let node = ext(&[("np", "node/w1")]);
        assert_eq!(
            port_group_owner("node.w1", &node),
            Some((PolicyKind::NodeAcl, "w1".into()))
        );
        let sg = ext(&[("type", "security_group"), ("sg", "web-sg")]);
        assert_eq!(
            port_group_owner("ovn.sg.web.sg", &sg),
            Some((PolicyKind::SecurityGroup, "web-sg".into()))
        );
        assert_eq!(
            port_group_owner("ovn.sg.kubeovn_deny_all", &ext(&[])).map(|o| o.0),
            Some(PolicyKind::SecurityGroup)
        );
        assert_eq!(port_group_owner("other", &ext(&[])), None);
    }

    #[test]
    fn cookies_and_prefixes() {
        assert_eq!(cookie_to_prefix("0xf5d7433").as_deref(), Some("0f5d7433"));
        assert_eq!(cookie_to_prefix("0x0"), None);
        assert_eq!(cookie_to_prefix("0x1f5d74330"), None);
        assert_eq!(cookie_prefix(0x415f2d), "00415f2d");
        assert_eq!(uuid_prefix("0x415f2d"), Some(0x415f2d));
        assert_eq!(uuid_prefix("9b54783d-1111-2222"), Some(0x9b54783d));
        assert_eq!(uuid_prefix("xyz"), None);
    }

    fn fixture(ver: &str, name: &str) -> String {
        ko_testkit::fixture!(&format!("versions/{ver}/{name}.txt"))
    }

    #[test]
    fn chassis_and_interfaces_of_every_release() {
        for ver in ["23.03.1", "25.03.0", "26.03.1"] {
            let ch = parse_rows(&fixture(ver, "sb-chassis"), Chassis::from_row).unwrap();
            assert_eq!(ch.len(), 1, "{ver}");
            assert_eq!(ch[0].name, "ovnlay-n1");
            assert_eq!(ch[0].node, "ovnlay-n1");
            assert_eq!(ch[0].encaps.len(), 1, "{ver}");
            assert!(ch[0].is_node("ovnlay-n1", None));
            let ifs = parse_rows(&fixture(ver, "ovs-interface"), OvsInterface::from_row).unwrap();
            let pod = ifs.iter().find(|i| i.name == "ovnlay-pa-h").unwrap();
            assert_eq!(pod.iface_id.as_deref(), Some("pod-a.default"), "{ver}");
            assert!(pod.ofport > 0 && !pod.is_tunnel());
            assert!(
                ifs.iter()
                    .any(|i| i.name == "br-int" && i.iface_type == "internal")
            );
        }
    }
}
