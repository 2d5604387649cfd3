//! Typed rows from `ovn-nbctl|ovn-sbctl|ovs-vsctl --format=json --columns=... list <Table>`.
//! The output is `{"headings": [...], "data": [[cell, ...], ...]}`; cells use the
//! OVSDB JSON encoding: a bare atom, `["uuid", u]`, `["set", [...]]`, `["map", [[k, v], ...]]`.
//! The exact commands are in [`commands`]; fixtures in `tests/fixtures/diagnose/`.

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
    ko_ovn::ovsdb_json::rows(json).map_err(table_error)
}

fn table_error(e: ko_ovn::ovsdb_json::TableError) -> TableError {
    match e {
        ko_ovn::ovsdb_json::TableError::Json(j) => TableError::Json(j.to_string()),
        ko_ovn::ovsdb_json::TableError::Shape => TableError::Shape,
        ko_ovn::ovsdb_json::TableError::Tables(t) => TableError::Json(t),
    }
}

// The rows and the rules on them are ko-ovn's, shared with trace.
use ko_ovn::ovsdb_rows::parse_rows;
pub use ko_ovn::ovsdb_rows::{
    Chassis, Encap, Lsp, OvsInterface as Interface, PortBinding, PortGroup,
};

fn typed<T>(json: &str, from_row: fn(&Row) -> T) -> Result<Vec<T>, TableError> {
    // the same errors as `rows`, typed with ko-ovn's row model (parsed once)
    parse_rows(json, from_row).map_err(table_error)
}

/// SB `Chassis` rows.
pub fn chassis(json: &str) -> Result<Vec<Chassis>, TableError> {
    typed(json, Chassis::from_row)
}

/// SB `Encap` rows.
pub fn encaps(json: &str) -> Result<Vec<Encap>, TableError> {
    typed(json, Encap::from_row)
}

/// SB `Port_Binding` rows.
pub fn port_bindings(json: &str) -> Result<Vec<PortBinding>, TableError> {
    typed(json, PortBinding::from_row)
}

/// NB `Logical_Switch_Port` rows.
pub fn lsps(json: &str) -> Result<Vec<Lsp>, TableError> {
    typed(json, Lsp::from_row)
}

/// NB `Port_Group` rows.
pub fn port_groups(json: &str) -> Result<Vec<PortGroup>, TableError> {
    typed(json, PortGroup::from_row)
}

/// OVS `Interface` rows (in the node's ovs-ovn pod).
pub fn interfaces(json: &str) -> Result<Vec<Interface>, TableError> {
    typed(json, Interface::from_row)
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
        ko_testkit::fixture!(&format!("diagnose/{path}"))
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
        assert_eq!(e1.encap_type, "geneve");
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
        assert_eq!(patch.port_type, "patch");
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
        assert_eq!(r.port_type, "router");
        assert_eq!(r.mac_and_ips(), None);
    }

    #[test]
    fn interfaces_tunnels_and_iface_ids() {
        let ifs = interfaces(&fx("healthy/vsctl-interfaces-n1.json")).unwrap();
        let tun: Vec<_> = ifs.iter().filter(|i| i.is_tunnel()).collect();
        assert_eq!(tun.len(), 1);
        assert_eq!(tun[0].remote_ip.as_deref(), Some("10.250.0.12"));
        let pod = ifs.iter().find(|i| i.name == "pinger-a_h").unwrap();
        assert_eq!(pod.iface_id.as_deref(), Some("pinger-a.kube-system"));
        assert_eq!(pod.ofport, 2);
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
