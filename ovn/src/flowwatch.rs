//! Counters of the OpenFlow rules that can carry one pod's packets, sampled
//! dump after dump (seed 000's `watch "ovs-ofctl dump-flows br-int | grep
//! metadata=0x14 | grep -v n_packets=0"`, done by a program).
//!
//! [`Scope`] says which rules matter: those classifying the pod's OVS port
//! (`in_port`), those of its logical datapath (`metadata`) that are not
//! pinned to another port's ingress (`reg14`). [`Tracker`] keeps one round
//! of counters per node and turns two rounds into [`Movement`]s. A rule is
//! identified by (table, priority, match): ovn-controller re-creates a rule
//! with the same identity after a recompute, with counters from zero and a
//! new `duration`, so a counter or duration going backwards, or a rule that
//! appeared, is a reset: the delta is then the count since the re-install,
//! never a negative number.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::flows::{FlowLine, scan_line};

/// Which ports and datapaths a pod's packets can use (several with `--peer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Datapath tunnel keys (`metadata`).
    pub datapaths: Vec<u64>,
    /// (datapath key, logical port key) of the watched ports.
    pub ports: Vec<(u64, u64)>,
    /// OpenFlow port numbers of the watched ports on this node's br-int.
    pub ofports: Vec<u32>,
}

/// Why a rule was kept: how tightly it is tied to a watched port. Anything
/// but a port pin is a counter other ports' packets also move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pin {
    /// `in_port=<the pod's ofport>`: classification of its packets.
    InPort,
    /// `reg14=<its key>`: logical ingress from the pod.
    Inport,
    /// `reg15=<its key>`: logical egress to the pod.
    Outport,
    /// The datapath's rule for every port (or for another port's egress).
    Datapath,
}

impl Pin {
    /// Counted for one watched port only.
    pub fn is_port(self) -> bool {
        !matches!(self, Pin::Datapath)
    }
}

fn key_of(v: &str) -> Option<u64> {
    let v = v.split('/').next().unwrap_or(v);
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

impl Scope {
    /// Whether a rule can carry the watched pods' packets, and how.
    pub fn classify(&self, l: &FlowLine<'_>) -> Option<Pin> {
        let (mut in_port, mut metadata, mut reg14, mut reg15) = (None, None, None, None);
        for f in l.match_expr.split(',') {
            if let Some((k, v)) = f.split_once('=') {
                match k {
                    "in_port" => in_port = Some(v),
                    "metadata" => metadata = Some(v),
                    "reg14" => reg14 = Some(v),
                    "reg15" => reg15 = Some(v),
                    _ => {}
                }
            }
        }
        if let Some(p) = in_port {
            let port = p.parse::<u32>().ok()?;
            return self.ofports.contains(&port).then_some(Pin::InPort);
        }
        let dp = key_of(metadata?)?;
        if !self.datapaths.contains(&dp) {
            return None;
        }
        let ours = |v: &str| key_of(v).is_some_and(|k| self.ports.contains(&(dp, k)));
        if let Some(r) = reg14 {
            // another port's ingress never carries our packets
            return ours(r).then_some(Pin::Inport);
        }
        match reg15 {
            Some(r) if ours(r) => Some(Pin::Outport),
            _ => Some(Pin::Datapath),
        }
    }
}

/// Stable identity of a rule across dumps: a 64-bit hash of (table,
/// priority, match). Two different rules colliding is a 2^-64 event per pair.
pub fn flow_id(table: u32, priority: u32, match_expr: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (table, priority, match_expr).hash(&mut h);
    h.finish()
}

/// One rule's counters in one dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub cookie: u64,
    pub packets: u64,
    pub bytes: u64,
    pub duration_ms: Option<u64>,
}

/// What a kept rule is (stored once, while it exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptFlow {
    pub table: u32,
    pub priority: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub actions: String,
    pub cookie: u64,
    pub pin: Pin,
}

impl KeptFlow {
    /// OVS drops what reaches an empty action list (`actions=drop`). The
    /// loopback check (`reg14` = `reg15`: a flooded copy headed back to the
    /// port it came from) drops a copy, not the packet.
    pub fn is_drop(&self) -> bool {
        (self.actions == "drop" || self.actions.ends_with(",drop")) && !self.is_loopback_check()
    }

    /// Whether the rule can pass the packet on: an output, a resubmit, a
    /// recirculation through conntrack, a clone, the controller, a group or
    /// a conjunction clause. A rule without any ends the packet there, but
    /// only a logical `drop` says so: a rule resubmitted into (a register
    /// check) returns to its caller.
    pub fn forwards(&self) -> bool {
        [
            "output:",
            "resubmit",
            "table=",
            "clone(",
            "controller",
            "group:",
            "conjunction(",
            "enqueue",
            "bundle",
            "IN_PORT",
            "LOCAL",
            "NORMAL",
            "FLOOD",
        ]
        .iter()
        .any(|k| self.actions.contains(k))
    }

    /// Matches the same logical port as inport and outport.
    pub fn is_loopback_check(&self) -> bool {
        let f = |n| crate::flows::match_field(&self.match_expr, n);
        matches!((f("reg14"), f("reg15")), (Some(a), Some(b)) if a == b)
    }

    /// A conjunctive match: the counter is shared by every combination of
    /// the clauses (other pods' addresses, other ports of a port group).
    pub fn is_conjunctive(&self) -> bool {
        self.match_expr.contains("conj_id=")
    }
}

/// One dump's counters of the kept rules, by [`flow_id`].
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub samples: HashMap<u64, Sample>,
    /// Every flow line seen (kept or not).
    pub lines: usize,
    pub bytes: usize,
}

/// How a rule's delta was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// Not in the previous dump: installed during the interval, counted from zero.
    Installed,
    /// Counters or duration went backwards: re-installed (ovn-controller
    /// recompute); counted from zero since.
    Reinstalled,
}

/// A kept rule whose counters moved between two rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub id: u64,
    pub packets: u64,
    pub bytes: u64,
    pub reset: Option<Reset>,
}

/// Counters of one node's kept rules, round after round. Memory is the
/// kept rules of the last round only.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub scope: Scope,
    info: HashMap<u64, KeptFlow>,
    prev: Option<HashMap<u64, Sample>>,
}

/// What [`Tracker::finish_round`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundDiff {
    pub moved: Vec<Movement>,
    /// Kept rules of the previous round missing from this one (removed or
    /// being re-installed: their last packets are not counted).
    pub vanished: usize,
    pub resets: usize,
}

impl Tracker {
    pub fn new(scope: Scope) -> Self {
        Tracker {
            scope,
            ..Tracker::default()
        }
    }

    /// Feeds one line of a dump into `round` (kept rules only).
    pub fn observe_line(&mut self, round: &mut Round, line: &str) {
        let Some(l) = scan_line(line) else {
            return;
        };
        round.lines += 1;
        let Some(pin) = self.scope.classify(&l) else {
            return;
        };
        let id = flow_id(l.table, l.priority, l.match_expr);
        round.samples.insert(
            id,
            Sample {
                cookie: l.cookie,
                packets: l.n_packets.unwrap_or(0),
                bytes: l.n_bytes.unwrap_or(0),
                duration_ms: l.duration_ms(),
            },
        );
        let same = self
            .info
            .get(&id)
            .is_some_and(|k| k.cookie == l.cookie && k.actions == l.actions);
        if !same {
            self.info.insert(
                id,
                KeptFlow {
                    table: l.table,
                    priority: l.priority,
                    match_expr: l.match_expr.to_string(),
                    actions: l.actions.to_string(),
                    cookie: l.cookie,
                    pin,
                },
            );
        }
    }

    /// Feeds a whole dump.
    pub fn observe(&mut self, text: &str) -> Round {
        let mut round = Round {
            bytes: text.len(),
            ..Round::default()
        };
        for line in text.lines() {
            self.observe_line(&mut round, line);
        }
        round
    }

    /// Closes a round: the movements since the previous one (none for the
    /// first round, which is the baseline).
    pub fn finish_round(&mut self, round: Round) -> RoundDiff {
        let mut out = RoundDiff::default();
        let cur = round.samples;
        if let Some(prev) = &self.prev {
            for (id, s) in &cur {
                let (packets, bytes, reset) = match prev.get(id) {
                    None => (s.packets, s.bytes, Some(Reset::Installed)),
                    Some(p) => delta(p, s),
                };
                if reset.is_some() {
                    out.resets += 1;
                }
                if packets > 0 || bytes > 0 {
                    out.moved.push(Movement {
                        id: *id,
                        packets,
                        bytes,
                        reset,
                    });
                }
            }
            out.vanished = prev.keys().filter(|k| !cur.contains_key(k)).count();
            out.resets += out.vanished;
        }
        self.info.retain(|k, _| cur.contains_key(k));
        self.prev = Some(cur);
        out.moved
            .sort_by(|a, b| b.packets.cmp(&a.packets).then(a.id.cmp(&b.id)));
        out
    }

    pub fn flow(&self, id: u64) -> Option<&KeptFlow> {
        self.info.get(&id)
    }

    /// Kept rules of the last round (for `--expect`: rules that did not move).
    pub fn flows(&self) -> impl Iterator<Item = (&u64, &KeptFlow)> {
        self.info.iter()
    }
}

/// Counter delta of one rule present in both rounds.
fn delta(p: &Sample, s: &Sample) -> (u64, u64, Option<Reset>) {
    let went_back = s.packets < p.packets
        || s.bytes < p.bytes
        || matches!((p.duration_ms, s.duration_ms), (Some(a), Some(b)) if b < a)
        || s.cookie != p.cookie;
    if went_back {
        (s.packets, s.bytes, Some(Reset::Reinstalled))
    } else {
        (s.packets - p.packets, s.bytes - p.bytes, None)
    }
}

/// Packets (or bytes) per second; 0 for an empty interval.
pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 && seconds.is_finite() {
        count as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            datapaths: vec![2],
            ports: vec![(2, 3)],
            ofports: vec![10],
        }
    }

    fn pin(line: &str) -> Option<Pin> {
        scope().classify(&scan_line(line).unwrap())
    }

    #[test]
    fn classification() {
        assert_eq!(
            pin(
                " cookie=0x1, table=0, n_packets=1, n_bytes=1, priority=100,in_port=10 actions=resubmit(,8)"
            ),
            Some(Pin::InPort)
        );
        assert_eq!(
            pin(" cookie=0x1, table=0, priority=100,in_port=3 actions=resubmit(,40)"),
            None
        );
        assert_eq!(
            pin(" cookie=0x1, table=8, priority=50,reg14=0x3,metadata=0x2 actions=drop"),
            Some(Pin::Inport)
        );
        assert_eq!(
            pin(" cookie=0x1, table=8, priority=50,reg14=0x4,metadata=0x2 actions=drop"),
            None
        );
        assert_eq!(
            pin(" cookie=0x1, table=65, priority=100,reg15=0x3,metadata=0x2 actions=output:10"),
            Some(Pin::Outport)
        );
        assert_eq!(
            pin(
                " cookie=0x1, table=46, priority=3000,ip,reg0=0x200/0x200,reg15=0x7,metadata=0x2 actions=drop"
            ),
            Some(Pin::Datapath)
        );
        assert_eq!(
            pin(" cookie=0x1, table=9, priority=0,metadata=0x4 actions=resubmit(,10)"),
            None
        );
        assert_eq!(
            pin(" cookie=0x0, table=37, priority=0 actions=resubmit(,39)"),
            None
        );
    }

    #[test]
    fn reset_and_install_are_counted_from_zero() {
        let mut t = Tracker::new(scope());
        let l = |n: u64, d: &str| {
            format!(
                " cookie=0x9, duration={d}s, table=9, n_packets={n}, n_bytes={}, priority=1,metadata=0x2 actions=drop",
                n * 10
            )
        };
        let r = t.observe(&l(100, "50.0"));
        assert!(t.finish_round(r).moved.is_empty());
        let r = t.observe(&l(105, "51.0"));
        let d = t.finish_round(r);
        assert_eq!(
            (d.moved[0].packets, d.moved[0].bytes, d.moved[0].reset),
            (5, 50, None)
        );
        // recompute: counter back to 2, duration back to 0.5 s
        let r = t.observe(&l(2, "0.5"));
        let d = t.finish_round(r);
        assert_eq!(
            (d.moved[0].packets, d.moved[0].reset),
            (2, Some(Reset::Reinstalled))
        );
        // re-installed with a higher count than before: caught by the duration
        let r = t.observe(&l(400, "3.0"));
        let d = t.finish_round(r);
        assert_eq!(d.moved[0].reset, None);
        let r = t.observe(&l(500, "0.1"));
        let d = t.finish_round(r);
        assert_eq!(
            (d.moved[0].packets, d.moved[0].reset),
            (500, Some(Reset::Reinstalled))
        );
        // vanished, then back
        let r = t.observe("");
        assert_eq!(t.finish_round(r).vanished, 1);
        let r = t.observe(&l(1, "0.2"));
        assert_eq!(t.finish_round(r).moved[0].reset, Some(Reset::Installed));
    }

    #[test]
    fn rates() {
        assert_eq!(rate(10, 2.0), 5.0);
        assert_eq!(rate(10, 0.0), 0.0);
    }
}
