//! What `kubectl ko flows` reports (the `-o json|yaml` schema) and how one
//! interval's movements become rows: stage, explanation and owner from the
//! cookie, drop cause, and whether the counter is shared with other pods.

use std::collections::{BTreeMap, HashMap};

use ko_ovn::flow_owner::{self, Meaning, Owner};
use ko_ovn::flowwatch::{KeptFlow, Movement, Pin, Reset, rate};
use ko_ovn::verdict::DropCause;
use ko_ovn::verdict::acl_eval::{self, AclFlow};
use serde::Serialize;

use super::resolve::{SbTables, Watched};

#[derive(Debug, Clone, Serialize)]
pub struct FlowsReport {
    pub target: Watched,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Watched>,
    /// Routers whose datapaths are watched too (`--peer` in another switch).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<String>,
    pub nodes: Vec<String>,
    pub interval_s: f64,
    /// Time between the first and the last dump.
    pub duration_s: f64,
    /// `one-shot` (--for) or `live` (until Ctrl-C; only the last interval is kept).
    pub mode: String,
    pub intervals: Vec<Interval>,
    /// Every rule that moved during the run, summed, busiest first.
    pub flows: Vec<FlowRow>,
    /// Dropping rules that moved during the run, busiest first.
    pub drops: Vec<DropRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expectation>,
    pub cost: Cost,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl FlowsReport {
    /// A drop grew during the run.
    pub fn drop_grew(&self) -> bool {
        !self.drops.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Seconds since the first dump, at the end of this interval.
    pub at_s: f64,
    pub elapsed_s: f64,
    pub flows: Vec<FlowRow>,
    pub drops: Vec<DropRow>,
    /// Kept rules that disappeared / were re-installed (ovn-controller recompute).
    pub resets: usize,
}

/// One rule whose counters moved.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRow {
    pub node: String,
    pub table: u32,
    pub priority: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub stage: Option<String>,
    /// OpenFlow cookie (= first 32 bits of the logical flow / SB row UUID).
    pub cookie: String,
    pub packets: u64,
    pub bytes: u64,
    pub rate_pps: f64,
    pub rate_bps: f64,
    /// OpenFlow actions.
    pub action: String,
    pub drop: bool,
    pub explanation: String,
    pub owner: Option<Owner>,
    /// Other pods' packets move this counter too.
    pub shared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_match: Option<String>,
    #[serde(skip)]
    pub logical_actions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<Reset>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flood: bool,
    /// How the rule is tied to the watched pod.
    pub pin: Pin,
    #[serde(skip)]
    pub id: u64,
}

/// A growing drop, with cause and owner.
#[derive(Debug, Clone, Serialize)]
pub struct DropRow {
    pub node: String,
    pub table: u32,
    pub stage: Option<String>,
    pub cookie: String,
    pub packets: u64,
    pub bytes: u64,
    pub rate_pps: f64,
    pub cause: DropCause,
    pub reason: String,
    pub owner: Option<Owner>,
    pub shared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_reason: Option<String>,
    #[serde(rename = "match")]
    pub match_expr: String,
    /// OVN >= 24.03: the `*_acl_eval` rules that set the drop verdict this
    /// generic `*_acl_action` rule applied (same node, datapath and
    /// interval), busiest first; the owner is the first one's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decided_by: Vec<AclEvalRule>,
    /// How the owner was inferred, when it is not the dropping rule's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred: Option<String>,
}

/// An ACL evaluation rule that moved with a generic ACL drop.
#[derive(Debug, Clone, Serialize)]
pub struct AclEvalRule {
    pub table: u32,
    pub stage: Option<String>,
    pub cookie: String,
    pub priority: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_match: Option<String>,
    pub packets: u64,
    pub explanation: String,
    pub owner: Option<Owner>,
    pub shared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_reason: Option<String>,
}

/// `--expect`: logical flows real traffic should have hit.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub what: String,
    /// The logical flows selected (uuid prefix, stage, match).
    pub lflows: Vec<ExpectedFlow>,
    /// OpenFlow rules of those flows on the polled nodes.
    pub openflow_rules: usize,
    pub packets: u64,
    pub hit: bool,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedFlow {
    pub lflow: String,
    pub stage: String,
    #[serde(rename = "match")]
    pub match_expr: String,
}

/// What the polling cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    pub dumps: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Slowest dump (exec + streaming parse), ms.
    pub max_dump_ms: u64,
    /// Kept rules on the last round, all nodes.
    pub kept_rules: usize,
}

/// Everything needed to turn a movement into a row.
pub struct RowContext<'a> {
    pub node: &'a str,
    pub sb: &'a SbTables,
    pub meanings: &'a HashMap<u64, Meaning>,
    pub pg_sizes: &'a HashMap<String, usize>,
    pub watched_ports: &'a [String],
}

pub fn flow_row(m: &Movement, f: &KeptFlow, elapsed: f64, cx: &RowContext<'_>) -> FlowRow {
    let meaning = cx.meanings.get(&f.cookie).cloned().unwrap_or_default();
    let shared_reason = shared_reason(f, &meaning, cx);
    FlowRow {
        node: cx.node.to_string(),
        table: f.table,
        priority: f.priority,
        match_expr: f.match_expr.clone(),
        stage: meaning.stage.clone(),
        cookie: format!("{:#x}", f.cookie),
        packets: m.packets,
        bytes: m.bytes,
        rate_pps: rate(m.packets, elapsed),
        rate_bps: rate(m.bytes, elapsed),
        action: f.actions.clone(),
        drop: f.is_drop()
            || (!f.forwards()
                && meaning
                    .logical_actions
                    .as_deref()
                    .is_some_and(flow_owner::is_logical_drop)),
        explanation: if f.is_loopback_check() {
            "ovn-controller: a flooded copy is not sent back to the port it came from (the packet itself is not dropped)".into()
        } else {
            meaning.explanation.clone()
        },
        owner: meaning.owner.clone(),
        shared: shared_reason.is_some(),
        shared_reason,
        logical_match: meaning.logical_match.clone(),
        logical_actions: meaning.logical_actions.clone(),
        reset: m.reset,
        flood: meaning.flood,
        pin: f.pin,
        id: m.id,
    }
}

/// Why other pods move this counter too, if they do.
fn shared_reason(f: &KeptFlow, meaning: &Meaning, cx: &RowContext<'_>) -> Option<String> {
    if f.is_conjunctive() {
        return Some("conjunctive match: one counter for every combination of its clauses".into());
    }
    if f.pin.is_port() {
        return None;
    }
    let dp = ko_ovn::flows::match_field(&f.match_expr, "metadata").and_then(parse_key);
    let dp_name = dp
        .and_then(|k| cx.sb.datapaths.get(&k).cloned())
        .unwrap_or_else(|| "the datapath".into());
    let other_port = ko_ovn::flows::match_field(&f.match_expr, "reg15")
        .and_then(parse_key)
        .zip(dp)
        .and_then(|(p, d)| cx.sb.ports.get(&(d, p)).cloned());
    if let Some(pg) = meaning.owner.as_ref().and_then(|o| o.port_group.as_ref())
        && let Some(n) = cx.pg_sizes.get(pg).filter(|n| **n > 1)
    {
        return Some(format!("port-group ACL: port group {pg} has {n} ports"));
    }
    Some(match other_port {
        Some(p) if !cx.watched_ports.contains(&p) => {
            format!("egress to {p}: counts every sender's packets to that port")
        }
        _ => format!("datapath-wide rule of {dp_name}: counts packets of all its ports"),
    })
}

fn parse_key(v: &str) -> Option<u64> {
    let v = v.split('/').next()?;
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The `*_acl_eval` rules among `rows` (one interval, or the rules tied to
/// `drop` over a run) that decided a generic `*_acl_action` drop
/// ([`acl_eval::decides`], the rule `trace` uses), busiest first. Empty for
/// any other drop.
pub fn acl_deciders<'a>(drop: &FlowRow, rows: &'a [FlowRow]) -> Vec<&'a FlowRow> {
    let key = |r: &FlowRow| {
        ko_ovn::flows::match_field(&r.match_expr, "metadata")
            .and_then(parse_key)
            .map(|k| k.to_string())
    };
    let dp = key(drop);
    let action = AclFlow {
        datapath: dp.as_deref(),
        stage: drop.stage.as_deref(),
        logical_match: drop.logical_match.as_deref(),
        logical_actions: drop.logical_actions.as_deref(),
    };
    if !drop.drop || action.stage.and_then(acl_eval::eval_stage_of).is_none() {
        return Vec::new();
    }
    let mut out: Vec<&FlowRow> = rows
        .iter()
        .filter(|o| o.node == drop.node && o.id != drop.id)
        .filter(|o| {
            let odp = key(o);
            acl_eval::decides(
                &action,
                &AclFlow {
                    datapath: odp.as_deref(),
                    stage: o.stage.as_deref(),
                    logical_match: o.logical_match.as_deref(),
                    logical_actions: o.logical_actions.as_deref(),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.id.cmp(&b.id)));
    out
}

/// A drop row for a dropping flow row. A port-security drop is owned by the
/// watched port whose own (port-pinned) rules moved in the same interval; a
/// generic ACL drop (OVN >= 24.03) by the ACL of its busiest `deciders`.
pub fn drop_row(r: &FlowRow, rows: &[FlowRow], deciders: &[&FlowRow]) -> DropRow {
    let cause = flow_owner::drop_cause(r.stage.as_deref());
    let mut owner = r.owner.clone();
    let mut inferred = None;
    if owner.is_none() && cause == DropCause::PortSecurity {
        owner = port_security_violator(r, rows);
    }
    // a generic ACL action rule owns nothing itself: its deciders' ACL does
    if let Some(first) = deciders.first() {
        owner = first.owner.clone();
        inferred = Some(acl_inference(r, first, deciders.len()));
    }
    let mut reason = if cause == DropCause::PortSecurity && owner.is_none() {
        "port security of another port of the switch: no watched port's check flagged a violation"
            .into()
    } else {
        flow_owner::drop_reason(cause, owner.as_ref())
    };
    if owner.is_none()
        && let Some(first) = deciders.first()
    {
        // the deciding eval rule is OVN's own (conntrack state), no ACL row
        reason = format!("{reason}: {}", first.explanation);
    }
    DropRow {
        node: r.node.clone(),
        table: r.table,
        stage: r.stage.clone(),
        cookie: r.cookie.clone(),
        packets: r.packets,
        bytes: r.bytes,
        rate_pps: r.rate_pps,
        reason,
        cause,
        owner,
        shared: r.shared,
        shared_reason: r.shared_reason.clone(),
        match_expr: r.match_expr.clone(),
        decided_by: deciders
            .iter()
            .map(|d| AclEvalRule {
                table: d.table,
                stage: d.stage.clone(),
                cookie: d.cookie.clone(),
                priority: d.priority,
                match_expr: d.match_expr.clone(),
                logical_match: d.logical_match.clone(),
                packets: d.packets,
                explanation: d.explanation.clone(),
                owner: d.owner.clone(),
                shared: d.shared,
                shared_reason: d.shared_reason.clone(),
            })
            .collect(),
        inferred,
    }
}

fn acl_inference(drop: &FlowRow, first: &FlowRow, n: usize) -> String {
    let stage = drop.stage.as_deref().unwrap_or_default();
    let eval = first.stage.as_deref().unwrap_or_default();
    let bit = drop
        .logical_match
        .as_deref()
        .and_then(acl_eval::verdict_bit)
        .map(|b| format!(" ({b} = 1)"))
        .unwrap_or_default();
    let others = if n > 1 {
        format!("; {n} such rules moved, the busiest is named (all in decided_by)")
    } else {
        String::new()
    };
    format!(
        "inferred: OVN >= 24.03 counts every ACL drop of the datapath in the generic {stage} rule; \
         the ACL is the one of the {eval} rule (cookie {}, priority {}) that sets the drop verdict{bit} \
         and moved with it ({} packet(s)) on the same node and datapath in the same interval{others}",
        first.cookie, first.priority, first.packets
    )
}

/// The watched port whose own port-security check flagged a violation in
/// the same interval. The flag register is read from the check stage's
/// rule (`move:NXM_NX_REG10[12]->...` copies the verdict into the logical
/// pipeline); a port-pinned rule loading 1 into it is that port's violation.
fn port_security_violator(drop: &FlowRow, rows: &[FlowRow]) -> Option<Owner> {
    let same_node = rows.iter().filter(|o| o.node == drop.node);
    let flag = same_node
        .clone()
        .filter(|o| {
            o.stage
                .as_deref()
                .is_some_and(|s| s.contains("check_port_sec"))
        })
        .find_map(|o| {
            o.action.split(',').find_map(|a| {
                a.strip_prefix("move:")?
                    .split_once("->")
                    .map(|(src, _)| src.to_string())
            })
        })?;
    let set = format!("load:0x1->{flag}");
    same_node
        .filter(|o| matches!(o.pin, Pin::InPort | Pin::Inport))
        .filter(|o| o.action.split(',').any(|a| a == set))
        .find_map(|o| o.owner.clone().filter(|ow| ow.kind == "LogicalSwitchPort"))
}

/// Sorts rows: drops first, then by rate.
pub fn sort_rows(rows: &mut [FlowRow]) {
    rows.sort_by(|a, b| {
        b.drop
            .cmp(&a.drop)
            .then(b.packets.cmp(&a.packets))
            .then(a.table.cmp(&b.table))
            .then(a.id.cmp(&b.id))
    });
}

/// Run totals per (node, rule), bounded by the number of distinct rules.
#[derive(Debug, Default)]
pub struct Totals {
    rows: BTreeMap<(String, u64), FlowRow>,
}

impl Totals {
    pub fn add(&mut self, r: &FlowRow) {
        let e = self
            .rows
            .entry((r.node.clone(), r.id))
            .or_insert_with(|| FlowRow {
                packets: 0,
                bytes: 0,
                reset: None,
                ..r.clone()
            });
        e.packets += r.packets;
        e.bytes += r.bytes;
        e.reset = e.reset.or(r.reset);
        e.owner = r.owner.clone().or(e.owner.take());
    }

    /// Summed rows with average rates over `seconds`.
    pub fn rows(&self, seconds: f64) -> Vec<FlowRow> {
        let mut out: Vec<FlowRow> = self
            .rows
            .values()
            .map(|r| FlowRow {
                rate_pps: rate(r.packets, seconds),
                rate_bps: rate(r.bytes, seconds),
                ..r.clone()
            })
            .collect();
        sort_rows(&mut out);
        out
    }
}
