//! SB logical flows, from `ovn-sbctl lflow-list` text (with or without
//! `--uuid`) or, richer, from `ovn-sbctl --format=json list Logical_Flow`
//! (which also carries `external_ids`: `stage-name`, `source` and
//! `stage-hint`, the NB row the flow was generated from).
//!
//! Text form:
//! ```text
//! Datapath: "join" (6969b2d3-...)  Pipeline: ingress
//!   uuid=0x6fb68516, table=0 (ls_in_check_port_sec), priority=100  , match=(eth.src[40]), action=(drop;)
//! ```
//! A flow shared by several datapaths (a datapath group) is printed under
//! each of them; `parse_list` keeps one [`LogicalFlow`] per printed line.
//! `parse_json` returns one per row, with every datapath name resolved when
//! the Datapath_Binding and Logical_DP_Group dumps are given.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use crate::ovsdb_json::TableError;
use crate::ovsdb_json::{cell_str, map, rows, set};
use crate::trace::Pipeline;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogicalFlow {
    /// Full UUID (JSON form) or the 8-hex-digit prefix `lflow-list --uuid` prints
    /// (without `0x`); `None` for plain `lflow-list`.
    pub uuid: Option<String>,
    /// Datapath names (or UUIDs when names were not available).
    pub datapaths: Vec<String>,
    pub pipeline: Option<Pipeline>,
    pub table: u32,
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
}

impl LogicalFlow {
    /// The 32-bit value ovn-controller uses as OpenFlow cookie for this flow.
    pub fn cookie(&self) -> Option<u32> {
        self.uuid.as_deref().and_then(crate::rows::uuid_prefix)
    }
}

/// Parses `ovn-sbctl [--uuid] lflow-list [datapath]` text.
pub fn parse_list(input: &str) -> Vec<LogicalFlow> {
    let mut out = Vec::new();
    let mut dp: Option<String> = None;
    let mut pipeline: Option<Pipeline> = None;
    for line in input.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Datapath:") {
            dp = first_quoted(rest).or_else(|| rest.split_whitespace().next().map(str::to_string));
            pipeline = rest.split("Pipeline:").nth(1).and_then(|p| match p.trim() {
                "ingress" => Some(Pipeline::Ingress),
                "egress" => Some(Pipeline::Egress),
                _ => None,
            });
            continue;
        }
        if let Some(mut f) = parse_flow_line(t) {
            f.datapaths = dp.iter().cloned().collect();
            f.pipeline = pipeline;
            out.push(f);
        }
    }
    out
}

fn first_quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

/// `[uuid=0x..., ]table=N (stage), priority=P , match=(M), action=(A)`
fn parse_flow_line(t: &str) -> Option<LogicalFlow> {
    let mut rest = t;
    let mut uuid = None;
    if let Some(r) = rest.strip_prefix("uuid=") {
        let (u, r) = r.split_once(',')?;
        uuid = Some(u.trim().trim_start_matches("0x").to_string());
        rest = r.trim_start();
    }
    let r = rest.strip_prefix("table=")?;
    let num_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    let table: u32 = r[..num_end].parse().ok()?;
    let r = &r[num_end..];
    let mut stage = None;
    let r = match r.trim_start().strip_prefix('(') {
        Some(inner) => {
            let close = inner.find(')')?;
            stage = Some(inner[..close].trim().to_string());
            &inner[close + 1..]
        }
        None => r,
    };
    let p = r.find("priority=")? + "priority=".len();
    let r = &r[p..];
    let num_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    let priority: u32 = r[..num_end].parse().ok()?;
    let r = &r[num_end..];
    let m = r.find("match=(")? + "match=(".len();
    let r = &r[m..];
    let a = r.find("), action=(")?;
    let match_expr = r[..a].to_string();
    let actions = r[a + "), action=(".len()..]
        .strip_suffix(')')
        .unwrap_or(&r[a + "), action=(".len()..])
        .to_string();
    Some(LogicalFlow {
        uuid,
        datapaths: Vec::new(),
        pipeline: None,
        table,
        stage,
        priority,
        match_expr,
        actions,
        source: None,
        stage_hint: None,
        external_ids: BTreeMap::new(),
    })
}

/// Parses `ovn-sbctl --format=json list Logical_Flow`. `datapath_bindings`
/// (`--format=json list Datapath_Binding`) and `dp_groups`
/// (`--format=json list Logical_DP_Group`) resolve datapath names; without
/// them datapaths are given as UUIDs.
pub fn parse_json(
    logical_flows: &str,
    datapath_bindings: Option<&str>,
    dp_groups: Option<&str>,
) -> Result<Vec<LogicalFlow>, TableError> {
    let mut dp_names: HashMap<String, String> = HashMap::new();
    if let Some(j) = datapath_bindings {
        for row in rows(j)? {
            if let Some(uuid) = cell_str(&row, "_uuid") {
                let name = row
                    .get("external_ids")
                    .map(map)
                    .and_then(|m| m.get("name").cloned())
                    .unwrap_or_else(|| uuid.clone());
                dp_names.insert(uuid, name);
            }
        }
    }
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(j) = dp_groups {
        for row in rows(j)? {
            if let Some(uuid) = cell_str(&row, "_uuid") {
                groups.insert(uuid, row.get("datapaths").map(set).unwrap_or_default());
            }
        }
    }
    let name_of = |u: &String| dp_names.get(u).cloned().unwrap_or_else(|| u.clone());
    let mut out = Vec::new();
    for row in rows(logical_flows)? {
        let ext = row.get("external_ids").map(map).unwrap_or_default();
        let mut datapaths: Vec<String> = row
            .get("logical_datapath")
            .map(set)
            .unwrap_or_default()
            .iter()
            .map(name_of)
            .collect();
        for g in row.get("logical_dp_group").map(set).unwrap_or_default() {
            match groups.get(&g) {
                Some(members) => datapaths.extend(members.iter().map(name_of)),
                None => datapaths.push(g),
            }
        }
        datapaths.sort();
        out.push(LogicalFlow {
            uuid: cell_str(&row, "_uuid"),
            datapaths,
            pipeline: match cell_str(&row, "pipeline").as_deref() {
                Some("ingress") => Some(Pipeline::Ingress),
                Some("egress") => Some(Pipeline::Egress),
                _ => None,
            },
            table: cell_str(&row, "table_id")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            stage: ext.get("stage-name").cloned(),
            priority: cell_str(&row, "priority")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            match_expr: cell_str(&row, "match").unwrap_or_default(),
            actions: cell_str(&row, "actions").unwrap_or_default(),
            source: ext.get("source").cloned(),
            stage_hint: ext.get("stage-hint").cloned(),
            external_ids: ext,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_line_with_uuid() {
        let f = parse_list(
            "Datapath: \"join\" (6969b2d3-3142-4460-9b94-8d308f4cc1bf)  Pipeline: ingress\n  uuid=0x6fb68516, table=0 (ls_in_check_port_sec), priority=100  , match=(eth.src[40]), action=(drop;)\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].uuid.as_deref(), Some("6fb68516"));
        assert_eq!(f[0].datapaths, vec!["join".to_string()]);
        assert_eq!(f[0].pipeline, Some(Pipeline::Ingress));
        assert_eq!(f[0].stage.as_deref(), Some("ls_in_check_port_sec"));
        assert_eq!((f[0].table, f[0].priority), (0, 100));
        assert_eq!(f[0].match_expr, "eth.src[40]");
        assert_eq!(f[0].actions, "drop;");
        assert_eq!(f[0].cookie(), Some(0x6fb68516));
    }
}
