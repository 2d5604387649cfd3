//! Typed rows from `ovn-nbctl|ovn-sbctl|ovs-vsctl --format=json --columns=... list <Table>`.
//! The output is `{"headings": [...], "data": [[cell, ...], ...]}`; cells use the
//! OVSDB JSON encoding: a bare atom, `["uuid", u]`, `["set", [...]]`, `["map", [[k, v], ...]]`.
//! The exact commands are in [`commands`]; fixtures in `tests/fixtures/diagnose/`.

use std::collections::BTreeMap;

use ko_ovn::verdict::nb::{PolicyKind, port_group_owner};

/// The argv `diagnose` runs for each table (kept here, next to the parsers).
pub mod commands {
    pub const SB_CHASSIS: &[&str] = &[
        "ovn-sbctl",
        "--format=json",
        "--columns=_uuid,name,hostname,encaps,external_ids",
        "list",
        "Chassis",
    ];
    pub const SB_ENCAP: &[&str] = &[
        "ovn-sbctl",
        "--format=json",
        "--columns=_uuid,chassis_name,ip,type",
        "list",
        "Encap",
    ];
    pub const SB_PORT_BINDING: &[&str] = &[
        "ovn-sbctl",
        "--format=json",
        "--columns=logical_port,type,chassis,up",
        "list",
        "Port_Binding",
    ];
    pub const NB_LSP: &[&str] = &[
        "ovn-nbctl",
        "--format=json",
        "--columns=_uuid,name,type,addresses,external_ids",
        "list",
        "Logical_Switch_Port",
    ];
    pub const NB_PORT_GROUP: &[&str] = &[
        "ovn-nbctl",
        "--format=json",
        "--columns=name,ports,external_ids",
        "list",
        "Port_Group",
    ];
    pub const OVS_INTERFACES: &[&str] = &[
        "ovs-vsctl",
        "--format=json",
        "--columns=name,type,options,external_ids,ofport",
        "list",
        "Interface",
    ];
}

/// Why a table dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("output is not JSON: {0}")]
    Json(String),
    #[error("JSON has no \"headings\"/\"data\" arrays")]
    Shape,
}

// The OVSDB JSON cell encoding is decoded once, in ko-ovn.
pub use ko_ovn::ovsdb_json::{Row, atom, map, set};

pub fn rows(json: &str) -> Result<Vec<Row>, TableError> {
    ko_ovn::ovsdb_json::rows(json).map_err(|e| match e {
        ko_ovn::ovsdb_json::TableError::Json(j) => TableError::Json(j.to_string()),
        ko_ovn::ovsdb_json::TableError::Shape => TableError::Shape,
        ko_ovn::ovsdb_json::TableError::Tables(t) => TableError::Json(t),
    })
}

fn col_atom(r: &Row, c: &str) -> String {
    r.get(c).and_then(atom).unwrap_or_default()
}
fn col_set(r: &Row, c: &str) -> Vec<String> {
    r.get(c).map(set).unwrap_or_default()
}
fn col_map(r: &Row, c: &str) -> BTreeMap<String, String> {
    r.get(c).map(map).unwrap_or_default()
}

/// SB `Chassis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chassis {
    pub uuid: String,
    pub name: String,
    pub hostname: String,
    pub encaps: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl Chassis {
    /// Whether this chassis is the one of Kubernetes node `node` (Kube-OVN tags
    /// `external_ids:node`; the hostname or system-id match otherwise).
    pub fn is_node(&self, node: &str, chassis_annotation: Option<&str>) -> bool {
        self.external_ids.get("node").map(String::as_str) == Some(node)
            || chassis_annotation.is_some_and(|a| a == self.name)
            || self.hostname == node
            || self.name == node
    }
}

pub fn chassis(json: &str) -> Result<Vec<Chassis>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| Chassis {
            uuid: col_atom(r, "_uuid"),
            name: col_atom(r, "name"),
            hostname: col_atom(r, "hostname"),
            encaps: col_set(r, "encaps"),
            external_ids: col_map(r, "external_ids"),
        })
        .collect())
}

/// SB `Encap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encap {
    pub uuid: String,
    pub chassis_name: String,
    pub ip: String,
    pub kind: String,
}

pub fn encaps(json: &str) -> Result<Vec<Encap>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| Encap {
            uuid: col_atom(r, "_uuid"),
            chassis_name: col_atom(r, "chassis_name"),
            ip: col_atom(r, "ip"),
            kind: col_atom(r, "type"),
        })
        .collect())
}

/// SB `Port_Binding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub logical_port: String,
    pub kind: String,
    /// Chassis row uuid, when bound.
    pub chassis: Option<String>,
    /// `up` column (None on OVN versions without it).
    pub up: Option<bool>,
}

pub fn port_bindings(json: &str) -> Result<Vec<PortBinding>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| PortBinding {
            logical_port: col_atom(r, "logical_port"),
            kind: col_atom(r, "type"),
            chassis: col_set(r, "chassis").into_iter().next(),
            up: r
                .get("up")
                .and_then(|v| set(v).into_iter().next())
                .map(|s| s == "true"),
        })
        .collect())
}

/// NB `Logical_Switch_Port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lsp {
    pub uuid: String,
    pub name: String,
    pub kind: String,
    pub addresses: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl Lsp {
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

pub fn lsps(json: &str) -> Result<Vec<Lsp>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| Lsp {
            uuid: col_atom(r, "_uuid"),
            name: col_atom(r, "name"),
            kind: col_atom(r, "type"),
            addresses: col_set(r, "addresses"),
            external_ids: col_map(r, "external_ids"),
        })
        .collect())
}

/// NB `Port_Group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub name: String,
    /// LSP uuids.
    pub ports: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl PortGroup {
    /// `<ns>/<np>` when this group belongs to a NetworkPolicy (`external_ids:np`).
    /// Node and distributed-subnet groups also carry `np=` but with a `node/` or
    /// `<subnet>/<node>` value; only those with a `node` key are not policies.
    pub fn network_policy(&self) -> Option<String> {
        // the rule is ko-ovn's, shared with trace
        match port_group_owner(&self.name, &self.external_ids) {
            Some((PolicyKind::NetworkPolicy, np)) => Some(np),
            _ => None,
        }
    }
}

pub fn port_groups(json: &str) -> Result<Vec<PortGroup>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| PortGroup {
            name: col_atom(r, "name"),
            ports: col_set(r, "ports"),
            external_ids: col_map(r, "external_ids"),
        })
        .collect())
}

/// OVS `Interface` (in the node's ovs-ovn pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub kind: String,
    pub options: BTreeMap<String, String>,
    pub external_ids: BTreeMap<String, String>,
    pub ofport: Option<i64>,
}

impl Interface {
    pub fn is_tunnel(&self) -> bool {
        ko_ovn::verdict::ovs::is_tunnel_type(&self.kind)
    }
}

pub fn interfaces(json: &str) -> Result<Vec<Interface>, TableError> {
    Ok(rows(json)?
        .iter()
        .map(|r| Interface {
            name: col_atom(r, "name"),
            kind: col_atom(r, "type"),
            options: col_map(r, "options"),
            external_ids: col_map(r, "external_ids"),
            ofport: r
                .get("ofport")
                .and_then(|v| set(v).into_iter().next())
                .and_then(|s| s.parse().ok()),
        })
        .collect())
}

/// `flow_count=N` from `ovs-ofctl dump-aggregate br-int`.
pub fn aggregate_flow_count(text: &str) -> Option<u64> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(path: &str) -> String {
        let p = format!(
            "{}/tests/fixtures/diagnose/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn chassis_and_encaps_from_real_sb() {
        let ch = chassis(&fx("healthy/sb-chassis.json")).unwrap();
        assert_eq!(ch.len(), 2);
        let n1 = ch.iter().find(|c| c.name == "diagf-node1").unwrap();
        assert_eq!(n1.hostname, "diagf-node1");
        assert_eq!(n1.encaps.len(), 1);
        assert!(n1.is_node("diagf-node1", None));
        assert!(!n1.is_node("diagf-node2", None));
        let enc = encaps(&fx("healthy/sb-encap.json")).unwrap();
        let e1 = enc.iter().find(|e| e.uuid == n1.encaps[0]).unwrap();
        assert_eq!(e1.ip, "10.250.0.11");
        assert_eq!(e1.kind, "geneve");
    }

    #[test]
    fn port_bindings_bound_and_unbound() {
        let pbs = port_bindings(&fx("healthy/sb-port-binding.json")).unwrap();
        let a = pbs
            .iter()
            .find(|p| p.logical_port == "pinger-a.kube-system")
            .unwrap();
        assert!(a.chassis.is_some());
        assert_eq!(a.up, Some(true));
        let stale = pbs
            .iter()
            .find(|p| p.logical_port == "stale.default")
            .unwrap();
        assert_eq!(stale.chassis, None);
        assert_eq!(stale.up, Some(false));
        let patch = pbs
            .iter()
            .find(|p| p.logical_port == "ovn-cluster-ovn-default")
            .unwrap();
        assert_eq!(patch.kind, "patch");
    }

    #[test]
    fn lsp_addresses_and_owner() {
        let ls = lsps(&fx("healthy/nb-lsp.json")).unwrap();
        let a = ls
            .iter()
            .find(|l| l.name == "pinger-a.kube-system")
            .unwrap();
        assert_eq!(
            a.mac_and_ips(),
            Some(("0a:58:0a:10:00:11".into(), vec!["10.16.0.11".into()]))
        );
        assert_eq!(a.pod(), Some("kube-system/pinger-a"));
        let r = ls
            .iter()
            .find(|l| l.name == "ovn-default-ovn-cluster")
            .unwrap();
        assert_eq!(r.kind, "router");
        assert_eq!(r.mac_and_ips(), None);
    }

    #[test]
    fn interfaces_tunnels_and_iface_ids() {
        let ifs = interfaces(&fx("healthy/vsctl-interfaces-n1.json")).unwrap();
        let tun: Vec<_> = ifs.iter().filter(|i| i.is_tunnel()).collect();
        assert_eq!(tun.len(), 1);
        assert_eq!(
            tun[0].options.get("remote_ip").map(String::as_str),
            Some("10.250.0.12")
        );
        let pod = ifs.iter().find(|i| i.name == "pinger-a_h").unwrap();
        assert_eq!(
            pod.external_ids.get("iface-id").map(String::as_str),
            Some("pinger-a.kube-system")
        );
        assert_eq!(pod.ofport, Some(2));
    }

    #[test]
    fn flow_count_from_dump_aggregate() {
        assert_eq!(
            aggregate_flow_count(&fx("healthy/ofctl-aggregate-n1.txt")),
            Some(269)
        );
        assert_eq!(aggregate_flow_count("garbage"), None);
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(matches!(rows("not json"), Err(TableError::Json(_))));
        assert_eq!(rows("{}"), Err(TableError::Shape));
        assert_eq!(
            rows(r#"{"headings":["a"],"data":[[1],"x"]}"#)
                .unwrap()
                .len(),
            1
        );
    }
}
