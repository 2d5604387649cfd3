//! `ovs-ofctl dump-flows <bridge>` output, and counter deltas between two
//! dumps (seed 000's workflow: dump, send traffic, dump again, look at the
//! rules whose counters moved).
//!
//! ```text
//!  cookie=0xd8b6f8f0, duration=51.538s, table=0, n_packets=14, n_bytes=1172, idle_age=21, priority=100,in_port=2 actions=load:0x4->NXM_NX_REG13[],resubmit(,8)
//! ```
//! becomes a [`Flow`] { cookie, duration_s, table, n_packets, n_bytes,
//! priority, match, actions, other stats }. [`diff`] pairs rules of two dumps
//! by (table, priority, match) and reports the ones whose counters changed.
//! `cookie` is the OpenFlow cookie ovn-controller derives from the logical
//! flow UUID (see `cookie::lflow_prefix`). Parsing is total: lines that are
//! not flows (reply headers, blank lines) are skipped and counted.

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct FlowDump {
    pub flows: Vec<Flow>,
    /// Non-empty lines that were neither a flow nor a reply header.
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Flow {
    pub cookie: u64,
    pub table: u32,
    /// OpenFlow default 32768 when the dump omits it.
    pub priority: u32,
    /// The match without `priority=`, e.g. `ip,reg0=0x4/0x4,metadata=0x3`
    /// (empty for a catch-all).
    #[serde(rename = "match")]
    pub match_expr: String,
    pub actions: String,
    pub n_packets: Option<u64>,
    pub n_bytes: Option<u64>,
    pub duration_s: Option<f64>,
    /// Remaining `key=value` stats (idle_age, hard_timeout, ...), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<(String, String)>,
}

/// Rules are paired across dumps by this key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FlowKey {
    pub table: u32,
    pub priority: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
}

impl Flow {
    /// The value of a match field (`metadata` -> `0x3`, `reg14` -> `0x2`,
    /// `in_port` -> `2`); `Some("")` for a bare field like `ip`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.match_expr
            .split(',')
            .find_map(|f| match f.split_once('=') {
                Some((k, v)) if k == name => Some(v),
                None if f == name => Some(""),
                _ => None,
            })
    }

    /// Datapath tunnel key the rule is restricted to (`metadata=0x3`): which
    /// logical switch/router it belongs to (compare with the
    /// Datapath_Binding tunnel_key of the pod's switch).
    pub fn datapath_key(&self) -> Option<u64> {
        self.field("metadata").and_then(parse_u64)
    }

    /// Logical inport (`reg14`) / outport (`reg15`) tunnel key matched, if any.
    pub fn logical_port_keys(&self) -> (Option<u64>, Option<u64>) {
        let key = |f: &str| {
            self.field(f)
                .map(|v| v.split('/').next().unwrap_or(v))
                .and_then(parse_u64)
        };
        (key("reg14"), key("reg15"))
    }

    pub fn key(&self) -> FlowKey {
        FlowKey {
            table: self.table,
            priority: self.priority,
            match_expr: self.match_expr.clone(),
        }
    }
}

/// Parses a whole dump.
pub fn parse(input: &str) -> FlowDump {
    let mut dump = FlowDump::default();
    for line in input.lines() {
        let t = line.trim();
        if t.is_empty() || t.contains("_FLOW reply") || t.starts_with("OFPST_") {
            continue;
        }
        match parse_line(t) {
            Some(f) => dump.flows.push(f),
            None => dump.skipped += 1,
        }
    }
    dump
}

/// Parses one `dump-flows` line; `None` if it has no `actions=`.
pub fn parse_line(line: &str) -> Option<Flow> {
    let l = scan_line(line)?;
    let mut flow = Flow {
        cookie: l.cookie,
        table: l.table,
        priority: l.priority,
        match_expr: l.match_expr.to_string(),
        actions: l.actions.to_string(),
        n_packets: l.n_packets,
        n_bytes: l.n_bytes,
        duration_s: l.duration.and_then(|d| d.parse().ok()),
        stats: Vec::new(),
    };
    for token in l.head.split(", ").flat_map(str::split_whitespace) {
        let (k, v) = token.split_once('=').unwrap_or((token, ""));
        if !matches!(k, "cookie" | "table" | "n_packets" | "n_bytes" | "duration") {
            flow.stats.push((k.to_string(), v.to_string()));
        }
    }
    Some(flow)
}

/// One `dump-flows` line, borrowed from the text: no allocation, so a
/// poller can look at every line of a 100k-flow dump and copy only the few
/// it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlowLine<'a> {
    pub cookie: u64,
    pub table: u32,
    /// OpenFlow default 32768 when the dump omits it.
    pub priority: u32,
    pub n_packets: Option<u64>,
    pub n_bytes: Option<u64>,
    /// `duration=` without the `s` (`51.538`).
    pub duration: Option<&'a str>,
    /// The match without `priority=`.
    pub match_expr: &'a str,
    pub actions: &'a str,
    /// The stats and flags before the match (`cookie=...` up to the match).
    pub head: &'a str,
}

impl<'a> FlowLine<'a> {
    /// `duration=` in milliseconds (a rule re-installed between two dumps
    /// has a smaller one).
    pub fn duration_ms(&self) -> Option<u64> {
        let d = self.duration?;
        let (secs, frac) = d.split_once('.').unwrap_or((d, ""));
        let mut ms = secs.parse::<u64>().ok()?.checked_mul(1000)?;
        let mut scale = 100;
        for b in frac.bytes().take(3) {
            if !b.is_ascii_digit() {
                return None;
            }
            ms += u64::from(b - b'0') * scale;
            scale /= 10;
        }
        Some(ms)
    }

    /// The value of a match field (`metadata` -> `0x3`); `Some("")` for a
    /// bare field like `ip`.
    pub fn field(&self, name: &str) -> Option<&'a str> {
        match_field(self.match_expr, name)
    }
}

/// The value of field `name` in a `dump-flows` match.
pub fn match_field<'a>(match_expr: &'a str, name: &str) -> Option<&'a str> {
    match_expr.split(',').find_map(|f| match f.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if f == name => Some(""),
        _ => None,
    })
}

/// Splits a `dump-flows` line into its parts without allocating; `None`
/// when it has no `actions=` or a malformed stat. Stats come first as
/// `key=value, `; bare flags (`reset_counts`, OpenFlow 1.1+) end with a
/// space; what follows is the match, then ` actions=`.
pub fn scan_line(line: &str) -> Option<FlowLine<'_>> {
    let t = line.trim();
    let mut l = FlowLine {
        priority: 32768,
        ..FlowLine::default()
    };
    let (head_and_match, actions) = match t.strip_prefix("actions=") {
        Some(a) => ("", a),
        None => {
            let at = t.find(" actions=")?;
            (&t[..at], &t[at + " actions=".len()..])
        }
    };
    l.actions = actions.trim();
    let mut rest = head_and_match.trim_start();
    let head_start = rest;
    loop {
        let word_end = rest.find([' ', ',']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        if FLAG_WORDS.contains(&word) {
            rest = rest[word_end..].trim_start_matches([',', ' ']);
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            break;
        };
        let after = &rest[word_end..];
        let ends_stat = after.starts_with(", ") || after.trim_start_matches(',').trim().is_empty();
        if !STAT_KEYS.contains(&key) || !ends_stat {
            break;
        }
        match key {
            "cookie" => l.cookie = parse_u64(value)?,
            "table" => l.table = value.parse().ok()?,
            "n_packets" => l.n_packets = Some(value.parse().ok()?),
            "n_bytes" => l.n_bytes = Some(value.parse().ok()?),
            "duration" => l.duration = Some(value.trim_end_matches('s')),
            _ => {}
        }
        rest = rest[word_end..].trim_start_matches([',', ' ']);
    }
    l.head = head_start[..head_start.len() - rest.len()].trim_end_matches([',', ' ']);
    let m = rest.trim();
    l.match_expr = match m.strip_prefix("priority=") {
        Some(p) => {
            let end = p.find(',').unwrap_or(p.len());
            l.priority = p[..end].parse().ok()?;
            p[end..].trim_start_matches(',')
        }
        None => m,
    };
    Some(l)
}

/// Flags `dump-flows` prints as bare words.
const FLAG_WORDS: &[&str] = &[
    "send_flow_rem",
    "check_overlap",
    "reset_counts",
    "no_packet_counts",
    "no_byte_counts",
    "no_readonly_table",
];

const STAT_KEYS: &[&str] = &[
    "cookie",
    "duration",
    "table",
    "n_packets",
    "n_bytes",
    "idle_timeout",
    "hard_timeout",
    "idle_age",
    "hard_age",
    "importance",
    "reset_counts",
    "out_port",
    "out_group",
];

pub(crate) fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// A rule whose counters moved between two dumps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowDelta {
    #[serde(flatten)]
    pub key: FlowKey,
    pub cookie: u64,
    pub actions: String,
    pub packets: u64,
    pub bytes: u64,
    /// The rule was not in the first dump (counted from zero).
    pub new: bool,
    /// Counters went backwards: the rule was re-installed between dumps and
    /// the delta is the second dump's absolute count.
    pub reinstalled: bool,
}

/// Rules whose `n_packets` changed from `before` to `after`, sorted by table,
/// then by priority (highest first). Duplicate keys within one dump (possible
/// when two rules differ only by cookie) are summed.
pub fn diff(before: &FlowDump, after: &FlowDump) -> Vec<FlowDelta> {
    let mut old: HashMap<FlowKey, (u64, u64)> = HashMap::new();
    for f in &before.flows {
        let e = old.entry(f.key()).or_default();
        e.0 = e.0.saturating_add(f.n_packets.unwrap_or(0));
        e.1 = e.1.saturating_add(f.n_bytes.unwrap_or(0));
    }
    let mut new_totals: HashMap<FlowKey, (u64, u64, u64, String)> = HashMap::new();
    let mut order: Vec<FlowKey> = Vec::new();
    for f in &after.flows {
        let key = f.key();
        let e = new_totals.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (0, 0, f.cookie, f.actions.clone())
        });
        e.0 = e.0.saturating_add(f.n_packets.unwrap_or(0));
        e.1 = e.1.saturating_add(f.n_bytes.unwrap_or(0));
    }
    let mut out = Vec::new();
    for key in order {
        let Some((pkts, bytes, cookie, actions)) = new_totals.remove(&key) else {
            continue;
        };
        let prev = old.get(&key).copied();
        let (p0, b0) = prev.unwrap_or((0, 0));
        let reinstalled = pkts < p0;
        let (dp, db) = if reinstalled {
            (pkts, bytes)
        } else {
            (pkts - p0, bytes.saturating_sub(b0))
        };
        if dp == 0 {
            continue;
        }
        out.push(FlowDelta {
            key,
            cookie,
            actions,
            packets: dp,
            bytes: db,
            new: prev.is_none(),
            reinstalled,
        });
    }
    out.sort_by(|a, b| {
        a.key
            .table
            .cmp(&b.key.table)
            .then(b.key.priority.cmp(&a.key.priority))
            .then(a.key.match_expr.cmp(&b.key.match_expr))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_with_stats_match_and_actions() {
        let f = parse_line(" cookie=0xd8b6f8f0, duration=51.538s, table=0, n_packets=14, n_bytes=1172, idle_age=21, priority=100,in_port=2 actions=load:0x4->NXM_NX_REG13[],resubmit(,8)").unwrap();
        assert_eq!(f.cookie, 0xd8b6f8f0);
        assert_eq!((f.table, f.priority), (0, 100));
        assert_eq!(f.match_expr, "in_port=2");
        assert_eq!(f.field("in_port"), Some("2"));
        assert_eq!((f.n_packets, f.n_bytes), (Some(14), Some(1172)));
        assert_eq!(f.actions, "load:0x4->NXM_NX_REG13[],resubmit(,8)");
        let f = parse_line(" cookie=0x0, duration=1.0s, table=37, n_packets=0, n_bytes=0, idle_age=1, priority=0 actions=resubmit(,39)").unwrap();
        assert_eq!((f.priority, f.match_expr.as_str()), (0, ""));
        let f = parse_line(" cookie=0x0, table=0, n_packets=0, n_bytes=0, actions=NORMAL").unwrap();
        assert_eq!(f.priority, 32768);
        assert!(parse_line("NXST_FLOW reply (xid=0x4):").is_none());
        let g = parse_line(
            " cookie=0x1, table=41, priority=100,ip,reg14=0x2,metadata=0x3 actions=drop",
        )
        .unwrap();
        assert_eq!(g.datapath_key(), Some(3));
        assert_eq!(g.logical_port_keys(), (Some(2), None));
        assert_eq!(g.field("ip"), Some(""));
        let f = parse_line(" cookie=0x5, duration=5.1s, table=3, n_packets=0, n_bytes=0, reset_counts priority=100,in_port=1 actions=drop").unwrap();
        assert_eq!(
            (f.table, f.priority, f.match_expr.as_str()),
            (3, 100, "in_port=1")
        );
        assert_eq!(f.stats, vec![("reset_counts".to_string(), String::new())]);
        // --no-stats form
        let f = parse_line(" table=0, priority=100,in_port=2 actions=resubmit(,8)").unwrap();
        assert_eq!((f.cookie, f.table, f.n_packets), (0, 0, None));
    }
}
