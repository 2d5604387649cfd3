//! OpenFlow cookie <-> SB Logical_Flow <-> NB object, the way `ovn-detrace`
//! does it.
//!
//! ovn-controller sets the cookie of every OpenFlow rule it derives from a
//! logical flow to the first 32 bits of that flow's UUID; `ovn-trace` prints
//! the same 32 bits as `uuid 9b54783d` on each hop, and `lflow-list --uuid`
//! as `uuid=0x9b54783d`. `dump-flows` prints the cookie without zero padding
//! (`cookie=0x415f2d` is flow `00415f2d-...`). Rules with cookie 0 are
//! ovn-controller's own (physical tables) and map to no logical flow.
//!
//! Northd stores in `external_ids:stage-hint` of many logical flows the first
//! 32 bits (8 hex digits) of the NB row that produced them; [`NbIndex`] finds
//! that row in the NB tables the stage can refer to ([`nb_tables_for_stage`]).
//!
//! How to fetch the data (argv, in the SB/NB leader's `ovn-central` container):
//! - SB: `ovn-sbctl --format=json list Logical_Flow`, plus
//!   `ovn-sbctl --format=json list Datapath_Binding` and
//!   `ovn-sbctl --format=json list Logical_DP_Group` for datapath names →
//!   [`crate::ovsdb_rows::parse_logical_flows`] → [`CookieIndex::new`].
//!   (Cheaper, no external_ids: `ovn-sbctl --uuid lflow-list [<datapath>]` →
//!   [`crate::lflow_list::parse`].)
//! - NB: `ovn-nbctl --format=json list <Table>` for the tables
//!   [`nb_tables_for_stage`] names (ACL, Load_Balancer, Logical_Switch_Port,
//!   Logical_Router_Port, Logical_Router_Static_Route, Logical_Router_Policy,
//!   NAT) → [`NbIndex::add_table`].

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::ovsdb_json::{TableError, cell_str, map, rows};
use crate::ovsdb_rows::LogicalFlow;
pub use crate::ovsdb_rows::{cookie_prefix as lflow_prefix, uuid_prefix};

/// Logical flows (and optionally port bindings / multicast groups) indexed
/// by the cookie their OpenFlow rules carry.
#[derive(Debug, Clone, Default)]
pub struct CookieIndex {
    flows: Vec<LogicalFlow>,
    by_prefix: HashMap<u32, Vec<usize>>,
    sb_rows: HashMap<u32, Vec<SbRow>>,
}

/// A Port_Binding or Multicast_Group row: ovn-controller's physical flows
/// (table 0 classification, port-security tables, local/remote output,
/// log_to_phy) carry the first 32 bits of that row's UUID as cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbRow {
    /// `Port_Binding` or `Multicast_Group`.
    pub table: &'static str,
    pub uuid: String,
    /// `logical_port` of a binding, `name` of a multicast group.
    pub name: String,
    /// Port type (`""` for a VIF, `patch`, `localnet`, `chassisredirect`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_type: Option<String>,
    pub tunnel_key: Option<u64>,
}

/// What a cookie belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOwner<'a> {
    LogicalFlows(Vec<&'a LogicalFlow>),
    SbRows(Vec<&'a SbRow>),
    /// Cookie 0 (ovn-controller's generic flows) or unknown.
    None,
}

impl CookieIndex {
    pub fn new(flows: Vec<LogicalFlow>) -> Self {
        let mut by_prefix: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, f) in flows.iter().enumerate() {
            if let Some(p) = f.cookie() {
                by_prefix.entry(p).or_default().push(i);
            }
        }
        Self {
            flows,
            by_prefix,
            sb_rows: HashMap::new(),
        }
    }

    /// Adds logical flows read later (a poller resolving cookies as they move).
    pub fn add_flows(&mut self, flows: Vec<LogicalFlow>) {
        for f in flows {
            if let Some(p) = f.cookie() {
                self.by_prefix.entry(p).or_default().push(self.flows.len());
            }
            self.flows.push(f);
        }
    }

    /// Adds `ovn-sbctl --format=json list Port_Binding` rows.
    pub fn add_port_bindings(&mut self, json: &str) -> Result<(), TableError> {
        self.add_sb_rows(json, "Port_Binding", "logical_port")
    }

    /// Adds `ovn-sbctl --format=json list Multicast_Group` rows.
    pub fn add_multicast_groups(&mut self, json: &str) -> Result<(), TableError> {
        self.add_sb_rows(json, "Multicast_Group", "name")
    }

    fn add_sb_rows(
        &mut self,
        json: &str,
        table: &'static str,
        name_col: &str,
    ) -> Result<(), TableError> {
        for row in rows(json)? {
            let Some(uuid) = cell_str(&row, "_uuid") else {
                continue;
            };
            let Some(p) = uuid_prefix(&uuid) else {
                continue;
            };
            self.sb_rows.entry(p).or_default().push(SbRow {
                table,
                uuid,
                name: cell_str(&row, name_col).unwrap_or_default(),
                port_type: (table == "Port_Binding")
                    .then(|| cell_str(&row, "type").unwrap_or_default()),
                tunnel_key: cell_str(&row, "tunnel_key").and_then(|k| k.parse().ok()),
            });
        }
        Ok(())
    }

    /// Who a cookie belongs to: logical flows first, then SB rows.
    pub fn owner(&self, cookie: u64) -> CookieOwner<'_> {
        if cookie == 0 || cookie > u64::from(u32::MAX) {
            return CookieOwner::None;
        }
        let flows = self.lookup(cookie);
        if !flows.is_empty() {
            return CookieOwner::LogicalFlows(flows);
        }
        match self.sb_rows.get(&(cookie as u32)) {
            Some(rows) if !rows.is_empty() => CookieOwner::SbRows(rows.iter().collect()),
            _ => CookieOwner::None,
        }
    }

    /// The logical flows an OpenFlow cookie belongs to: usually one, several
    /// only on a 32-bit prefix collision or with text input where a shared
    /// flow is listed per datapath. Empty for cookie 0.
    pub fn lookup(&self, cookie: u64) -> Vec<&LogicalFlow> {
        if cookie == 0 || cookie > u64::from(u32::MAX) {
            return Vec::new();
        }
        self.by_uuid_prefix(cookie as u32)
    }

    /// Same, from an `ovn-trace` hop's `uuid 9b54783d`.
    pub fn lookup_str(&self, prefix: &str) -> Vec<&LogicalFlow> {
        uuid_prefix(prefix)
            .map(|p| self.by_uuid_prefix(p))
            .unwrap_or_default()
    }

    fn by_uuid_prefix(&self, p: u32) -> Vec<&LogicalFlow> {
        self.by_prefix
            .get(&p)
            .map(|ix| ix.iter().filter_map(|&i| self.flows.get(i)).collect())
            .unwrap_or_default()
    }

    pub fn flows(&self) -> &[LogicalFlow] {
        &self.flows
    }
}

/// NB tables a logical flow's `stage-hint` can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NbTable {
    Acl,
    LoadBalancer,
    LogicalSwitchPort,
    LogicalRouterPort,
    LogicalRouterStaticRoute,
    LogicalRouterPolicy,
    Nat,
}

impl NbTable {
    /// The table's name for `ovn-nbctl list <name>`.
    pub fn table_name(self) -> &'static str {
        match self {
            NbTable::Acl => "ACL",
            NbTable::LoadBalancer => "Load_Balancer",
            NbTable::LogicalSwitchPort => "Logical_Switch_Port",
            NbTable::LogicalRouterPort => "Logical_Router_Port",
            NbTable::LogicalRouterStaticRoute => "Logical_Router_Static_Route",
            NbTable::LogicalRouterPolicy => "Logical_Router_Policy",
            NbTable::Nat => "NAT",
        }
    }
}

/// Which NB tables a stage's `stage-hint` refers to (most specific first).
/// Empty for stages northd does not hint.
pub fn nb_tables_for_stage(stage: &str) -> &'static [NbTable] {
    use NbTable::*;
    let s = stage;
    if s.starts_with("ls_") && (s.contains("_pre_") || s.contains("arp_rsp")) {
        // pre-ACL/LB/stateful hints name the port that bypasses conntrack
        &[LogicalSwitchPort, LoadBalancer]
    } else if s.contains("hairpin") {
        &[LoadBalancer]
    } else if s.contains("_acl") || s.ends_with("_stateful") && s.starts_with("ls_") {
        &[Acl]
    } else if s.contains("_lb") || s.contains("affinity") {
        &[LoadBalancer]
    } else if s.contains("port_sec")
        || s.contains("l2_lkup")
        || s.contains("arp_rsp")
        || s.contains("dhcp")
        || s.contains("dns")
        || s.contains("external_port")
    {
        &[LogicalSwitchPort]
    } else if s.contains("ip_routing") {
        &[LogicalRouterStaticRoute, LogicalRouterPort]
    } else if s.contains("policy") {
        &[LogicalRouterPolicy]
    } else if s.contains("dnat")
        || s.contains("snat")
        || s.contains("unsnat")
        || s.contains("undnat")
        || s.contains("egr_loop")
    {
        &[Nat, LoadBalancer]
    } else if s.starts_with("lr_") {
        &[LogicalRouterPort]
    } else {
        &[]
    }
}

/// An NB row found from a stage hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NbObject {
    pub table: NbTable,
    pub uuid: String,
    /// A human label: `name` column, or for ACLs/policies `priority match
    /// action`, for routes `prefix via nexthop`, for NAT `type external->logical`.
    pub label: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
}

/// NB rows indexed by the 32-bit UUID prefix that stage hints carry.
#[derive(Debug, Clone, Default)]
pub struct NbIndex {
    by_prefix: HashMap<u32, Vec<NbObject>>,
}

impl NbIndex {
    /// Adds the rows of `ovn-nbctl --format=json list <table>`.
    pub fn add_table(&mut self, table: NbTable, json: &str) -> Result<(), TableError> {
        for row in rows(json)? {
            let Some(uuid) = cell_str(&row, "_uuid") else {
                continue;
            };
            let Some(p) = uuid_prefix(&uuid) else {
                continue;
            };
            let get = |c: &str| cell_str(&row, c).unwrap_or_default();
            let label = match table {
                NbTable::Acl => {
                    let name = get("name");
                    let base = format!(
                        "{} {} {} {}",
                        get("direction"),
                        get("priority"),
                        get("match"),
                        get("action")
                    );
                    if name.is_empty() {
                        base
                    } else {
                        format!("{name}: {base}")
                    }
                }
                NbTable::LogicalRouterPolicy => {
                    format!("{} {} {}", get("priority"), get("match"), get("action"))
                }
                NbTable::LogicalRouterStaticRoute => {
                    format!("{} via {}", get("ip_prefix"), get("nexthop"))
                }
                NbTable::Nat => format!(
                    "{} {} -> {}",
                    get("type"),
                    get("external_ip"),
                    get("logical_ip")
                ),
                _ => get("name"),
            };
            self.by_prefix.entry(p).or_default().push(NbObject {
                table,
                uuid,
                label,
                external_ids: row.get("external_ids").map(map).unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// NB rows whose UUID starts with `hint`, restricted to `tables` when non-empty.
    pub fn lookup(&self, hint: &str, tables: &[NbTable]) -> Vec<&NbObject> {
        let Some(p) = uuid_prefix(hint) else {
            return Vec::new();
        };
        self.by_prefix
            .get(&p)
            .map(|v| {
                v.iter()
                    .filter(|o| tables.is_empty() || tables.contains(&o.table))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The NB object behind a logical flow (via its stage hint and stage).
    pub fn for_flow(&self, flow: &LogicalFlow) -> Vec<&NbObject> {
        let Some(hint) = flow.stage_hint.as_deref() else {
            return Vec::new();
        };
        let tables = flow
            .stage
            .as_deref()
            .map(nb_tables_for_stage)
            .unwrap_or(&[]);
        let found = self.lookup(hint, tables);
        if found.is_empty() {
            self.lookup(hint, &[])
        } else {
            found
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(lflow_prefix(0x415f2d), "00415f2d");
        assert_eq!(uuid_prefix("0x415f2d"), Some(0x415f2d));
        assert_eq!(
            uuid_prefix("00415f2d-1111-2222-3333-444455556666"),
            Some(0x415f2d)
        );
        assert_eq!(uuid_prefix("zz"), None);
        assert_eq!(uuid_prefix("123456789"), None);
    }
}
