//! The OVSDB rows every command reads, defined once: NB `Logical_Switch_Port`
//! and `Port_Group`, SB `Chassis`, `Encap`, `Port_Binding`,
//! `Datapath_Binding` and `Logical_Flow` (with the logical [`Pipeline`] it
//! belongs to), OVS
//! `Interface`; the Kube-OVN rules on them ("this port group is a
//! NetworkPolicy / SecurityGroup", "this interface is a tunnel"); and how an
//! OpenFlow cookie is written as a logical flow UUID prefix.
//!
//! Each row is built from `--format=json list <Table>` output by `from_row`,
//! so the columns a command did not ask for are simply empty. Differences
//! between OVN/OVS releases are handled here: `Port_Binding.up` is absent
//! before OVN 21.06 (`None`), `Logical_Router_Policy.nexthop` became
//! `nexthops` (read in `verdict::nb`), an `Interface.ofport` not yet assigned
//! is an empty set (-1). `ovn-sbctl lflow-list` text gives the same
//! [`LogicalFlow`] ([`crate::lflow_list`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::ovsdb_json::{Cells, Row, TableError, each_row, rows};

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
    /// `spec.acls` of a Subnet (ACL parent is the logical switch, `subnet=` set).
    SubnetAcl,
    /// `spec.private` of a Subnet: the switch's ACLs without `subnet=` (Kube-OVN's
    /// `SetLogicalSwitchPrivate`: drop 1000, allow own CIDR / allowSubnets 1001,
    /// nodes 3000).
    PrivateSubnet,
    /// An AdminNetworkPolicy (policy.networking.k8s.io): port group with
    /// `anp=<name>`, ACLs in OVN tier 1, evaluated before NetworkPolicies.
    AdminNetworkPolicy,
    /// A BaselineAdminNetworkPolicy: `banp=<name>`, ACLs in tier 3, evaluated
    /// only when no AdminNetworkPolicy or NetworkPolicy decided.
    BaselineAdminNetworkPolicy,
    /// An ACL Kube-OVN did not label.
    Acl,
}

impl PolicyKind {
    /// The Kubernetes kind behind the rows (`Node` for a node's ACLs, `Subnet`
    /// for subnet ACLs and private subnets, `ACL` when nothing is known).
    pub fn object_kind(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::SecurityGroup => "SecurityGroup",
            PolicyKind::NodeAcl => "Node",
            PolicyKind::SubnetAcl | PolicyKind::PrivateSubnet => "Subnet",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            PolicyKind::Acl => "ACL",
        }
    }
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
///   `ovn.sg.<sg with dots>` when the external_ids are missing;
/// - an (Baseline)AdminNetworkPolicy's: `anp=<name>` / `banp=<name>` (the
///   name Kube-OVN's getAnpName gave it: "anp" in front when it does not
///   start with a letter).
pub fn port_group_owner(
    name: &str,
    external_ids: &BTreeMap<String, String>,
) -> Option<(PolicyKind, String)> {
    if let Some(anp) = external_ids.get("anp") {
        return Some((PolicyKind::AdminNetworkPolicy, anp.clone()));
    }
    if let Some(banp) = external_ids.get("banp") {
        return Some((PolicyKind::BaselineAdminNetworkPolicy, banp.clone()));
    }
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
            .filter(|e| e.belongs_to(&self))
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

    /// Whether this is one of `chassis`'s tunnel endpoints: named by its
    /// `chassis_name`, or listed in the chassis' `encaps`.
    pub fn belongs_to(&self, chassis: &Chassis) -> bool {
        self.chassis_name == chassis.name || chassis.encaps.contains(&self.uuid)
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
    /// `Datapath_Binding` row UUID (when the `datapath` column was read).
    #[serde(default)]
    pub datapath: String,
    /// The port's key within its datapath.
    #[serde(default)]
    pub tunnel_key: Option<i64>,
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
            datapath: r.str("datapath"),
            tunnel_key: r.int("tunnel_key"),
        }
    }
}

/// SB `Datapath_Binding`: a logical switch or router as the SB knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatapathBinding {
    pub uuid: String,
    /// The NB switch/router name (`external_ids:name`), else the row UUID.
    pub name: String,
    /// The datapath's key (OpenFlow `metadata`, the geneve VNI).
    pub tunnel_key: Option<i64>,
}

impl DatapathBinding {
    pub fn from_row(r: &Row) -> Self {
        let uuid = r.str("_uuid");
        DatapathBinding {
            name: r
                .map("external_ids")
                .get("name")
                .cloned()
                .unwrap_or_else(|| uuid.clone()),
            uuid,
            tunnel_key: r.int("tunnel_key"),
        }
    }
}

/// The two pipelines of a logical datapath: `Logical_Flow.pipeline`, the
/// `Pipeline:` of `lflow-list` and ovn-trace's `ingress(...)` / `egress(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Pipeline {
    Ingress,
    Egress,
}

impl Pipeline {
    /// `ingress` / `egress`, as OVSDB and the tools write it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingress" => Some(Pipeline::Ingress),
            "egress" => Some(Pipeline::Egress),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Ingress => "ingress",
            Pipeline::Egress => "egress",
        }
    }
}

/// SB `Logical_Flow`, from `--format=json list Logical_Flow` ([`Self::from_row`],
/// [`parse_logical_flows`]) or from `lflow-list` text ([`crate::lflow_list`]),
/// which has no `external_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalFlow {
    /// Full UUID (JSON form) or the 8-hex-digit prefix `lflow-list --uuid` prints
    /// (without `0x`); `None` for plain `lflow-list`.
    pub uuid: Option<String>,
    /// Datapath names (or UUIDs when names were not available).
    #[serde(default)]
    pub datapaths: Vec<String>,
    pub pipeline: Option<Pipeline>,
    /// The logical table number (`table_id`).
    pub table: u32,
    /// `external_ids:stage-name`, or the `(stage)` lflow-list prints.
    pub stage: Option<String>,
    pub priority: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub actions: String,
    /// `external_ids:source`, e.g. `northd.c:6190` (JSON form only).
    pub source: Option<String>,
    /// `external_ids:stage-hint`: first 8 hex digits of the NB row's UUID
    /// (ACL, LSP, LRP, load balancer, NAT, route, policy) (JSON form only).
    pub stage_hint: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
}

impl LogicalFlow {
    /// One row; `datapaths` holds the UUIDs of its `logical_datapath` and
    /// `logical_dp_group` ([`parse_logical_flows`] turns them into names).
    pub fn from_row(r: &Row) -> Self {
        let ext = r.map("external_ids");
        let mut datapaths = r.set("logical_datapath");
        datapaths.extend(r.set("logical_dp_group"));
        LogicalFlow {
            uuid: Some(r.str("_uuid")).filter(|u| !u.is_empty()),
            datapaths,
            pipeline: Pipeline::parse(&r.str("pipeline")),
            table: r.str("table_id").parse().unwrap_or(0),
            stage: ext.get("stage-name").cloned(),
            priority: r.str("priority").parse().unwrap_or(0),
            match_expr: r.str("match"),
            actions: r.str("actions"),
            source: ext.get("source").cloned(),
            stage_hint: ext.get("stage-hint").cloned(),
            external_ids: ext,
        }
    }

    /// The 32-bit value ovn-controller uses as OpenFlow cookie for this flow.
    pub fn cookie(&self) -> Option<u32> {
        self.uuid.as_deref().and_then(uuid_prefix)
    }

    /// Pipeline and logical table number, as the SB row states them.
    pub fn pipeline_table(&self) -> Option<(Pipeline, u32)> {
        Some((self.pipeline?, self.table))
    }
}

/// Parses `ovn-sbctl --format=json list Logical_Flow`. `datapath_bindings`
/// (`--format=json list Datapath_Binding`) and `dp_groups`
/// (`--format=json list Logical_DP_Group`) resolve datapath names; without
/// them datapaths are given as UUIDs.
pub fn parse_logical_flows(
    logical_flows: &str,
    datapath_bindings: Option<&str>,
    dp_groups: Option<&str>,
) -> Result<Vec<LogicalFlow>, TableError> {
    let mut dp_names: HashMap<String, String> = HashMap::new();
    if let Some(j) = datapath_bindings {
        for dp in rows(j)?.iter().map(DatapathBinding::from_row) {
            if !dp.uuid.is_empty() {
                dp_names.insert(dp.uuid, dp.name);
            }
        }
    }
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(j) = dp_groups {
        for row in rows(j)? {
            let uuid = row.str("_uuid");
            if !uuid.is_empty() {
                groups.insert(uuid, row.set("datapaths"));
            }
        }
    }
    let name_of = |u: &String| dp_names.get(u).cloned().unwrap_or_else(|| u.clone());
    let mut out = Vec::new();
    for row in rows(logical_flows)? {
        let mut flow = LogicalFlow::from_row(&row);
        // a group's UUID stands for its members; one not read stays a UUID
        let mut datapaths = Vec::new();
        for dp in &flow.datapaths {
            match groups.get(dp) {
                Some(members) => datapaths.extend(members.iter().map(name_of)),
                None => datapaths.push(name_of(dp)),
            }
        }
        datapaths.sort();
        flow.datapaths = datapaths;
        out.push(flow);
    }
    Ok(out)
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

    /// Whether this is a tunnel ovn-controller creates toward another
    /// chassis (by its `type`).
    pub fn is_tunnel(&self) -> bool {
        matches!(self.iface_type.as_str(), "geneve" | "vxlan" | "stt" | "gre")
    }
}

/// Rows of one `--format=json list <Table>` output, typed.
pub fn parse_rows<T>(json: &str, from_row: fn(&Row) -> T) -> Result<Vec<T>, TableError> {
    // row by row: each map is dropped once typed
    Ok(each_row(json)?.map(|r| from_row(&r)).collect())
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
        assert_eq!(
            port_group_owner(
                "deny.blue",
                &ext(&[("anp", "deny-blue"), ("vendor", "kube-ovn")])
            ),
            Some((PolicyKind::AdminNetworkPolicy, "deny-blue".into()))
        );
        assert_eq!(
            port_group_owner("default", &ext(&[("banp", "default")])),
            Some((PolicyKind::BaselineAdminNetworkPolicy, "default".into()))
        );
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
        for ver in ["23.03.1", "24.03.9", "25.03.0", "26.03.1"] {
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
