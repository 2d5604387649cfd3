//! Reading only the SB rows a trace names, filtered by ovsdb-server itself.
//!
//! `ovn-sbctl list Logical_Flow <uuid>` downloads the whole table into the
//! client before it picks a row (120,000 flows take ~12 s on a synthetic
//! 1,000-node cluster), and `list Port_Binding` every port. ovsdb-server's own
//! `select` with `where` conditions (RFC 7047 §5.2.2, `ovsdb-client query`)
//! returns only matching rows. A flow is named by the 8-hex-digit prefix of its
//! UUID (ovn-trace's `uuid`, the OpenFlow cookie), which no condition can
//! match, so each is looked up where northd put it: pipeline, table, priority
//! (ovn-controller installs a flow with its logical priority) and datapath
//! (its own; a flow shared through a `Logical_DP_Group` has none and is
//! looked for among its pipeline's shared flows); the prefixes then pick the
//! rows out of those small sets.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::nb::SbSnapshot;
use crate::ovn_trace::OvnTrace;
use crate::ovsdb_json::{self, Cells, TableError, transact_results};
use crate::ovsdb_rows::{Chassis, DatapathBinding, Encap, LogicalFlow, Pipeline, PortBinding};

/// The SB's local socket in Kube-OVN's ovn-central pods (`/var/run/ovn`,
/// where ovn-sbctl's default points too).
pub const SB_SOCKET: &str = "unix:/var/run/ovn/ovnsb_db.sock";

/// A datapath as a trace names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DatapathRef {
    /// OpenFlow `metadata` (the datapath's tunnel key).
    TunnelKey(i64),
    /// ovn-trace's `datapath "<name>"` (the NB switch/router name).
    Name(String),
}

/// Where northd put a logical flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowPlace {
    pub pipeline: Pipeline,
    pub table: u32,
    pub priority: u32,
    pub datapath: DatapathRef,
}

/// A logical flow a trace named: its UUID prefix and, when known, its place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowRef {
    pub prefix: String,
    pub place: Option<FlowPlace>,
}

impl FlowRef {
    /// The prefix, if it can name a row (4+ hex digits, lowercased).
    fn usable_prefix(&self) -> Option<String> {
        let p = self.prefix.to_ascii_lowercase();
        (p.len() >= 4 && p.bytes().all(|b| b.is_ascii_hexdigit())).then_some(p)
    }
}

/// `ovsdb-client query` argv for one list of operations on the SB.
fn query_argv(ops: Vec<Value>) -> Vec<String> {
    ovsdb_json::query_argv("OVN_Southbound", SB_SOCKET, ops)
}

use ovsdb_json::select;

/// Every datapath's UUID, tunnel key and name (one row per switch and router).
pub fn datapaths_argv() -> Vec<String> {
    query_argv(vec![select(
        "Datapath_Binding",
        vec![],
        &["_uuid", "tunnel_key", "external_ids"],
    )])
}

pub fn parse_datapaths(text: &str) -> Result<Vec<DatapathBinding>, TableError> {
    let results = transact_results(text)?;
    let rows = results.into_iter().next().unwrap_or_default();
    Ok(rows.iter().map(DatapathBinding::from_row).collect())
}

const FLOW_COLUMNS: &[&str] = &[
    "_uuid",
    "external_ids",
    "pipeline",
    "table_id",
    "priority",
    "match",
    "actions",
];

/// One narrow SB read: the chassis and sync counters (when `globals`), the
/// bindings of `ports` and the flows of `flows` that `datapaths` can place.
pub struct SbQuery<'a> {
    pub flows: &'a [FlowRef],
    pub ports: &'a [String],
    pub datapaths: &'a [DatapathBinding],
    pub globals: bool,
}

impl SbQuery<'_> {
    /// The places to select, each with its datapath's UUID (a flow whose
    /// datapath is unknown is left to the caller's fallback).
    fn places(&self) -> BTreeSet<(Pipeline, u32, u32, String)> {
        self.flows
            .iter()
            .filter(|f| f.usable_prefix().is_some())
            .filter_map(|f| {
                let p = f.place.as_ref()?;
                let dp = self.datapaths.iter().find(|d| match &p.datapath {
                    DatapathRef::TunnelKey(k) => d.tunnel_key == Some(*k),
                    DatapathRef::Name(n) => d.name == *n,
                })?;
                Some((p.pipeline, p.table, p.priority, dp.uuid.clone()))
            })
            .collect()
    }

    /// The pipelines of the places, for the selects of shared flows.
    fn shared_pipelines(&self) -> BTreeSet<Pipeline> {
        self.places().into_iter().map(|(p, ..)| p).collect()
    }

    pub fn argv(&self) -> Vec<String> {
        let mut ops = Vec::new();
        if self.globals {
            ops.push(select(
                "Chassis",
                vec![],
                &["_uuid", "name", "hostname", "encaps", "external_ids"],
            ));
            ops.push(select("Encap", vec![], &["_uuid", "chassis_name", "ip"]));
            ops.push(select("Chassis_Private", vec![], &["name", "nb_cfg"]));
            ops.push(select("SB_Global", vec![], &["nb_cfg"]));
        }
        for port in self.ports {
            ops.push(select(
                "Port_Binding",
                vec![json!(["logical_port", "==", port])],
                &["logical_port", "chassis"],
            ));
        }
        // each select scans the whole table (it has no index), so a flow
        // shared through a datapath group is found among all of a pipeline's
        // shared flows (a few hundred rows), one select per pipeline
        for (pipeline, table, priority, dp) in self.places() {
            ops.push(select(
                "Logical_Flow",
                vec![
                    json!(["pipeline", "==", pipeline.as_str()]),
                    json!(["table_id", "==", table]),
                    json!(["priority", "==", priority]),
                    json!(["logical_datapath", "==", ["uuid", dp]]),
                ],
                FLOW_COLUMNS,
            ));
        }
        for pipeline in self.shared_pipelines() {
            ops.push(select(
                "Logical_Flow",
                vec![
                    json!(["pipeline", "==", pipeline.as_str()]),
                    json!(["logical_datapath", "==", ["set", []]]),
                ],
                FLOW_COLUMNS,
            ));
        }
        query_argv(ops)
    }

    /// The reply as a snapshot: only the flows whose UUID starts with a
    /// wanted prefix; bindings of the ports asked for (a port the SB lacks is
    /// absent, as in a full read). Without `globals` the chassis are absent and
    /// a binding keeps its chassis UUID (the caller resolves it).
    pub fn parse(&self, text: &str) -> Result<SbSnapshot, TableError> {
        let results = transact_results(text)?;
        let mut it = results.into_iter();
        let mut next = || it.next().unwrap_or_default();
        let mut sb = SbSnapshot::default();
        if self.globals {
            let chassis_rows = next();
            let encaps: Vec<Encap> = next().iter().map(Encap::from_row).collect();
            sb.chassis = chassis_rows
                .iter()
                .map(|r| Chassis::from_row(r).with_encaps(&encaps))
                .collect();
            sb.chassis_nb_cfg = next()
                .iter()
                .filter_map(|r| Some((r.str("name"), r.int("nb_cfg")?)))
                .collect();
            sb.nb_cfg = next().first().and_then(|r| r.int("nb_cfg"));
        }
        for _ in self.ports {
            for b in next().iter().map(PortBinding::from_row) {
                let chassis = b.chassis.map(|ch| {
                    sb.chassis
                        .iter()
                        .find(|c| c.uuid == ch)
                        .map_or(ch, |c| c.name.clone())
                });
                sb.bindings.insert(b.logical_port, chassis);
            }
        }
        let wanted: Vec<String> = self
            .flows
            .iter()
            .filter_map(FlowRef::usable_prefix)
            .collect();
        let mut seen = BTreeSet::new();
        for _ in 0..self.places().len() + self.shared_pipelines().len() {
            for row in next() {
                let uuid = row.str("_uuid");
                if wanted.iter().any(|p| uuid.starts_with(p.as_str())) && seen.insert(uuid) {
                    sb.lflows.push(LogicalFlow::from_row(&row));
                }
            }
        }
        Ok(sb)
    }
}

/// The logical flows ovn-trace named, each placed by its datapath's name.
pub fn ovn_trace_flow_refs(trace: &OvnTrace) -> Vec<FlowRef> {
    trace
        .hops()
        .iter()
        .filter_map(|h| {
            let prefix = h.hop.uuid.clone()?;
            let place = match (h.pipeline, h.hop.priority, h.datapath) {
                (Some(pipeline), Some(priority), Some(dp)) => Some(FlowPlace {
                    pipeline,
                    table: h.hop.table,
                    priority,
                    datapath: DatapathRef::Name(dp.to_string()),
                }),
                _ => None,
            };
            Some(FlowRef { prefix, place })
        })
        .collect()
}

/// The logical ports ovn-trace delivered to: whose bindings the verdict checks.
pub fn ovn_trace_ports(trace: &OvnTrace) -> Vec<String> {
    let mut ports: Vec<String> = trace
        .outcome()
        .outputs
        .into_iter()
        .map(|d| d.port)
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// The wanted prefixes `sb` does not hold yet.
pub fn missing_flows(sb: Option<&SbSnapshot>, flows: &[FlowRef]) -> Vec<FlowRef> {
    let mut seen = BTreeSet::new();
    flows
        .iter()
        .filter(|f| f.usable_prefix().is_some())
        .filter(|f| sb.is_none_or(|s| s.lflow(&f.prefix).is_none()))
        .filter(|f| seen.insert(f.prefix.to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// Rows read later join the snapshot: flows not yet held, bindings (a
/// chassis UUID named by the snapshot's chassis).
pub fn merge(into: &mut SbSnapshot, extra: SbSnapshot) {
    for f in extra.lflows {
        let known = f
            .uuid
            .as_deref()
            .is_some_and(|u| into.lflows.iter().any(|g| g.uuid.as_deref() == Some(u)));
        if !known {
            into.lflows.push(f);
        }
    }
    let names: BTreeMap<String, String> = into
        .chassis
        .iter()
        .map(|c| (c.uuid.clone(), c.name.clone()))
        .collect();
    for (port, chassis) in extra.bindings {
        let chassis = chassis.map(|c| names.get(&c).cloned().unwrap_or(c));
        into.bindings.entry(port).or_insert(chassis);
    }
}

#[cfg(test)]
mod tests;
