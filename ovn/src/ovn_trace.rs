//! `ovn-trace` output parsed into a typed tree.
//!
//! # Data model (detailed output, the default / `--detailed`)
//!
//! ```text
//! # icmp,reg14=0x2,...                         -> OvnTrace::flow
//! ingress(dp="ovn-default", inport="a.ns")     -> Step::Section (SectionKind::Pipeline)
//! ----------------------------------------
//!  0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid 9b54783d
//!                                              -> Step::Hop (table, stage, source, match, priority, uuid)
//!     reg0[15] = check_in_port_sec();          -> Hop::actions: Step::Action (ActionKind::Assign)
//!     next;                                    -> ActionKind::Next
//!  6. ls_in_pre_stateful (...): reg0[2] == 1, priority 110, uuid ef4d1479
//!     ct_lb_mark;                              -> ActionKind::Ct
//! ct_lb_mark                                   -> Step::Section (SectionKind::Ct): the packet
//! ----------                                      after conntrack; later hops live here
//!  ...
//!     output;                                  -> ActionKind::Output
//!     /* output to "b.ns", type "" */          -> ActionKind::OutputTo { port, port_type }
//! ```
//!
//! The tool prints a chain (next table, next pipeline, ct resume) flat, at
//! one level, so `OvnTrace::steps` is usually a flat list of sections in the
//! order the packet visited them, each holding its hops. A real fork (an
//! action whose sub-trace is followed by more actions, e.g. `clone {}` or an
//! `arp {}` / `icmp4 {}` reply) is printed indented and lands in
//! `Action::children`. `LOG: ACL name=..., verdict=drop` sections (from ACLs
//! with logging) become `SectionKind::Log`.
//!
//! Helpers: [`OvnTrace::hops`] (every hop depth-first with its datapath and
//! pipeline), [`OvnTrace::outcome`] (final output ports, drop point, errors).
//! `ovn-trace` exits 0 even when it prints `*** ...` notes or errors, so
//! those are kept as [`ActionKind::Note`] / [`ActionKind::Error`] and
//! surfaced by `outcome()`.
//!
//! `--summary` and `--minimal` print a brace tree instead (`ingress(...) {`
//! ... `};`); [`parse_summary`] turns it into [`BraceNode`]s with the same
//! [`ActionKind`] classification.
//!
//! All parsers are total: any input gives a value, never a panic.

use serde::{Deserialize, Serialize};

use crate::indent;
use crate::ovsdb_rows::Pipeline;

/// A parsed `ovn-trace --detailed` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OvnTrace {
    /// The microflow line ovn-trace echoes first (`# icmp,reg14=0x2,...`),
    /// without the `# `.
    pub flow: Option<String>,
    /// Top-level steps in printed order.
    pub steps: Vec<Step>,
    /// Lines that were not part of the trace (e.g. warnings mixed in from
    /// stderr), kept so nothing is silently lost.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stray: Vec<String>,
}

/// One printed node of the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// An underlined title: a pipeline, a conntrack resume, a LOG, a fork.
    Section(Section),
    /// A logical flow table visited (`NN. stage (source): match, priority P, uuid U`).
    Hop(Hop),
    /// An action line, a comment, a `***` note or an error.
    Action(Action),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub title: String,
    pub kind: SectionKind,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SectionKind {
    /// `ingress(dp="ovn-default", inport="a.ns")` /
    /// `egress(dp=..., inport=..., outport=...)`.
    Pipeline {
        pipeline: Pipeline,
        datapath: String,
        inport: Option<String>,
        outport: Option<String>,
    },
    /// The packet after a conntrack action: `ct_next(ct_state=est|trk /* default
    /// (use --ct to customize) */)`, `ct_lb_mark`, `ct_dnat`, `ct_snat(...)`...
    Ct {
        /// The action name (`ct_next`, `ct_lb_mark`, `ct_dnat`, ...).
        action: String,
        /// The `ct_state=` the trace assumed, when printed.
        ct_state: Option<String>,
        /// True when ovn-trace used its default state (no `--ct` given for this step).
        default_state: bool,
    },
    /// `multicast(dp="join", mcgroup="_MC_flood_l2")`: the packet is copied to
    /// every member; each copy's egress pipeline is a nested section.
    Multicast { datapath: String, group: String },
    /// `LOG: ACL name=..., direction=OUT, verdict=drop, severity=info, packet="..."`.
    Log {
        name: Option<String>,
        direction: Option<String>,
        verdict: Option<String>,
        severity: Option<String>,
    },
    /// Any other sub-trace title (`clone`, `arp`, `icmp4`, `trigger_event`...).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Logical table number in this pipeline.
    pub table: u32,
    /// Stage name (`ls_in_acl`), when ovn-trace knows it.
    pub stage: Option<String>,
    /// Source hint, e.g. `northd.c:6809`.
    pub source: Option<String>,
    /// The logical flow's match; `None` when no flow matched.
    #[serde(rename = "match")]
    pub match_expr: Option<String>,
    pub priority: Option<u32>,
    /// First 32 bits of the SB Logical_Flow UUID, 8 hex digits as printed
    /// (also the OpenFlow cookie of its flows, see `cookie`).
    pub uuid: Option<String>,
    /// `NN. stage: no match (implicit drop)`.
    pub no_match: bool,
    /// Actions executed, in order (may contain nested sections for forks).
    pub actions: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// The line as printed, trimmed.
    pub text: String,
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Indented sub-trace printed under this action (a fork).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    /// `next;` / `next(pipeline=..., table=N);`
    Next,
    /// `output;`
    Output,
    /// `/* output to "port", type "patch" */` (detailed) or `output("port");`
    /// (summary/minimal): where the packet actually left the pipeline.
    OutputTo {
        port: String,
        port_type: Option<String>,
    },
    /// `drop;`
    Drop,
    /// A conntrack action: `ct_next;`, `ct_lb_mark;`,
    /// `ct_lb_mark(backends=a:80,b:80);`, `ct_commit {...};`, `ct_dnat;`...
    Ct {
        name: String,
        /// Backends listed by `ct_lb`/`ct_lb_mark(backends=...)`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        backends: Vec<String>,
    },
    /// `reg0[7] = 1;`, `outport = "x";`, `reg0 = ip4.dst;`, `ip.ttl--;`, `a <-> b;`
    Assign { target: String, value: String },
    /// `log(name="...", verdict=drop, ...);`
    Log { verdict: Option<String> },
    /// `reject { ... };`, `tcp_reset {...};`, `sctp_abort {...};`: the
    /// packet is answered with a reset/unreachable instead of forwarded.
    Reject,
    /// `arp { ... };`, `icmp4 { ... };`, `nd_ns { ... };`, `clone { ... };`:
    /// OVN builds (or copies) a packet; its trace is the section titled `name`.
    Generate { name: String },
    /// `*** ...` notes ovn-trace prints where it cannot or does not simulate.
    Note { message: String },
    /// Error lines (the tool prints them but still exits 0).
    Error { message: String },
    /// An OpenFlow rule `ovn-trace --ovs` prints under a hop (a
    /// `dump-flows`-style line; parse `Action::text` with
    /// `flows::parse_line` for the rest).
    OpenFlow {
        cookie: u64,
        table: u32,
        priority: u32,
        n_packets: Option<u64>,
    },
    /// `/* ... */` comments other than the output one.
    Comment { text: String },
    /// Anything else (`put_arp(...)`, `get_arp(...)`, `flags.loopback = 1` ...
    /// are Assign; this is what is left).
    Other,
}

/// One hop with the context it was visited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopRef<'a> {
    pub datapath: Option<&'a str>,
    pub pipeline: Option<Pipeline>,
    pub hop: &'a Hop,
}

/// What finally happened to the packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TraceOutcome {
    /// Ports the packet was finally output to (after the last pipeline;
    /// `patch` outputs that lead to another datapath are not final).
    pub outputs: Vec<Delivery>,
    /// Where the packet was dropped, when it was.
    pub drops: Vec<DropPoint>,
    /// `***` notes.
    pub notes: Vec<String>,
    /// Error lines.
    pub errors: Vec<String>,
    /// Load-balancer decisions, in order.
    pub load_balancing: Vec<LbDecision>,
    /// Every place a packet's life ended, across all ct forks, recirculations,
    /// clones, multicast copies and generated packets, in printed order.
    pub terminals: Vec<Terminal>,
}

/// One end of one packet copy in the trace tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Terminal {
    /// Left OVN through a logical port (not a patch into another datapath).
    Output(Delivery),
    /// An action that hands the packet to ovn-controller or makes OVN build
    /// a packet of its own: `arp`/`nd_ns` (next-hop resolution),
    /// `reject`/`tcp_reset`/`icmp4`/`icmp6` (an answer to the sender),
    /// `put_arp`, `handle_svc_check`, `trigger_event`...
    Controller(ControllerAction),
    /// Dropped: `drop;`, no flow matched, or a multicast copy not sent back
    /// to its own inport.
    Drop(DropPoint),
}

/// A controller action and where it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerAction {
    /// `arp`, `nd_ns`, `reject`, `tcp_reset`, `icmp4`, `icmp6`, `put_arp`...
    pub action: String,
    /// For `reject`: the packet ovn-trace says OVN built (`tcp_reset`,
    /// `icmp4`, `icmp6`), from the title of the section that follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    pub datapath: Option<String>,
    pub pipeline: Option<Pipeline>,
    pub stage: Option<String>,
    #[serde(rename = "match")]
    pub match_expr: Option<String>,
    pub uuid: Option<String>,
    /// Set when the action ran on a packet OVN generated (see `Delivery::generated_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<String>,
    /// The logical output port last assigned before the action (for `arp`/
    /// `nd_ns`: the router port the request goes out of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outport: Option<String>,
    /// For `arp`/`nd_ns`: the address being resolved, from the last
    /// `reg0 = ...` / `xxreg0 = ...` of the routing stages (`ip4.dst` /
    /// `ip6.dst` when the destination itself is the next hop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    /// The action line as printed.
    pub text: String,
}

/// Actions that end in ovn-controller or build a new packet (by name).
const CONTROLLER_ACTIONS: &[&str] = &[
    "arp",
    "nd_ns",
    "nd_na",
    "nd_na_router",
    "icmp4",
    "icmp4_error",
    "icmp6",
    "icmp6_error",
    "tcp_reset",
    "sctp_abort",
    "reject",
    "put_arp",
    "put_nd",
    "put_fdb",
    "handle_svc_check",
    "trigger_event",
    "controller",
    "bind_vport",
    "put_dhcp_opts",
    "put_dhcpv6_opts",
    "dns_lookup",
    "handle_dhcpv6_reply",
    "igmp",
    "mld",
];

/// The controller action an action line starts with: `arp { ... };`,
/// `put_arp(inport, arp.spa, arp.sha);`, `reg0[3] = put_dhcp_opts(...)`.
pub fn controller_action(text: &str) -> Option<&'static str> {
    let t = text.trim();
    // `reg0[3] = put_dhcp_opts(...)`: the call is on the right
    let t = match t.split_once(" = ") {
        Some((lhs, rhs)) if !lhs.contains([' ', '{', '(']) => rhs.trim(),
        _ => t,
    };
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    let rest = rest.trim_start();
    if !(rest.starts_with('(') || rest.starts_with('{') || rest.starts_with(';') || rest.is_empty())
    {
        return None;
    }
    CONTROLLER_ACTIONS.iter().copied().find(|a| *a == name)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub datapath: Option<String>,
    pub port: String,
    pub port_type: Option<String>,
    /// Set when this output is a packet OVN generated instead of the traced
    /// one: the title of the sub-trace that built it (`arp` for an ARP
    /// request sent because no MAC binding exists, `icmp4`/`icmp6` for an
    /// ICMP error such as TTL exceeded, `tcp_reset`, `nd_ns`...).
    pub generated_by: Option<String>,
    /// The output port is the port the trace started on: OVN answered the
    /// sender (ARP/ND responder, ICMP error, reject) rather than forwarding.
    pub back_to_sender: bool,
    /// The multicast group (`_MC_flood`, `_MC_unknown`...) this copy was
    /// sent to, when it was one of several copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicast: Option<String>,
}

/// A load-balancing step: `ct_lb_mark(backends=...)` and the backend the
/// rest of the trace went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbDecision {
    pub datapath: Option<String>,
    pub stage: Option<String>,
    pub table: Option<u32>,
    pub uuid: Option<String>,
    pub backends: Vec<String>,
    /// The backend whose address appears in the hops after the decision
    /// (ovn-trace picks one, or the one given with `--lb-dst`); `None` when
    /// no later line names any backend.
    pub chosen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropPoint {
    pub datapath: Option<String>,
    pub pipeline: Option<Pipeline>,
    pub table: Option<u32>,
    pub stage: Option<String>,
    #[serde(rename = "match")]
    pub match_expr: Option<String>,
    pub priority: Option<u32>,
    pub uuid: Option<String>,
    pub reason: DropReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// A flow's actions said `drop;`.
    DropAction,
    /// An ACL with logging: `log(..., verdict=drop|reject)`.
    AclVerdict,
    /// `reject {...}` / `tcp_reset` style reply instead of forwarding.
    Rejected,
    /// No flow matched in that table.
    NoMatch,
    /// The trace just stopped after this hop without an output.
    EndOfTrace,
    /// A multicast copy not sent back out of the port it came in on
    /// (`omitting output because inport == outport`).
    Loopback,
}

impl OvnTrace {
    /// Every hop, depth-first in printed order, with its datapath/pipeline.
    pub fn hops(&self) -> Vec<HopRef<'_>> {
        let mut out = Vec::new();
        let mut ctx = (None, None);
        collect_hops(&self.steps, &mut ctx, &mut out);
        out
    }

    /// Final outputs, drop points, load-balancer decisions, notes and errors.
    pub fn outcome(&self) -> TraceOutcome {
        let mut events = Vec::new();
        let mut ctx = Ctx::default();
        flatten(&self.steps, &mut ctx, &mut events);
        outcome_of(&events, self.first_inport())
    }

    /// The inport of the first pipeline (where the traced packet entered).
    pub fn first_inport(&self) -> Option<&str> {
        fn find(steps: &[Step]) -> Option<&str> {
            for s in steps {
                let found = match s {
                    Step::Section(sec) => match &sec.kind {
                        SectionKind::Pipeline { inport, .. } => inport.as_deref(),
                        _ => find(&sec.steps),
                    },
                    Step::Hop(h) => find(&h.actions),
                    Step::Action(a) => find(&a.children),
                };
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        find(&self.steps)
    }
}

fn collect_hops<'a>(
    steps: &'a [Step],
    ctx: &mut (Option<&'a str>, Option<Pipeline>),
    out: &mut Vec<HopRef<'a>>,
) {
    for step in steps {
        match step {
            Step::Section(s) => {
                if let SectionKind::Pipeline {
                    pipeline, datapath, ..
                } = &s.kind
                {
                    *ctx = (Some(datapath.as_str()), Some(*pipeline));
                }
                collect_hops(&s.steps, ctx, out);
            }
            Step::Hop(h) => {
                out.push(HopRef {
                    datapath: ctx.0,
                    pipeline: ctx.1,
                    hop: h,
                });
                collect_hops(&h.actions, ctx, out);
            }
            Step::Action(a) => collect_hops(&a.children, ctx, out),
        }
    }
}

#[derive(Default, Clone)]
struct Ctx<'a> {
    datapath: Option<&'a str>,
    pipeline: Option<Pipeline>,
    hop: Option<&'a Hop>,
    generated: Option<&'a str>,
    /// The multicast group this copy came out of.
    multicast: Option<&'a str>,
}

enum Event<'a> {
    PipelineStart,
    Title(&'a str),
    Hop(Ctx<'a>),
    Action(Ctx<'a>, &'a Action),
}

fn flatten<'a>(steps: &'a [Step], ctx: &mut Ctx<'a>, out: &mut Vec<Event<'a>>) {
    for step in steps {
        match step {
            Step::Section(s) => {
                if let SectionKind::Pipeline {
                    pipeline, datapath, ..
                } = &s.kind
                {
                    ctx.datapath = Some(datapath.as_str());
                    ctx.pipeline = Some(*pipeline);
                    ctx.hop = None;
                    if *pipeline == Pipeline::Ingress {
                        out.push(Event::PipelineStart);
                    }
                }
                if s.kind == SectionKind::Other && s.title != "clone" {
                    // the rest of this chain carries a packet OVN built
                    ctx.generated = Some(s.title.as_str());
                }
                out.push(Event::Title(&s.title));
                if let SectionKind::Multicast { group, .. } = &s.kind {
                    // every copy is a nested chain of its own
                    let mut copy = ctx.clone();
                    copy.multicast = Some(group.as_str());
                    flatten(&s.steps, &mut copy, out);
                } else {
                    flatten(&s.steps, ctx, out);
                }
            }
            Step::Hop(h) => {
                ctx.hop = Some(h);
                out.push(Event::Hop(ctx.clone()));
                flatten(&h.actions, ctx, out);
            }
            Step::Action(a) => {
                out.push(Event::Action(ctx.clone(), a));
                // an indented fork must not change the context of what follows it
                let mut fork = ctx.clone();
                flatten(&a.children, &mut fork, out);
            }
        }
    }
}

fn drop_at(ctx: &Ctx<'_>, reason: DropReason) -> DropPoint {
    DropPoint {
        datapath: ctx.datapath.map(str::to_string),
        pipeline: ctx.pipeline,
        table: ctx.hop.map(|h| h.table),
        stage: ctx.hop.and_then(|h| h.stage.clone()),
        match_expr: ctx.hop.and_then(|h| h.match_expr.clone()),
        priority: ctx.hop.and_then(|h| h.priority),
        uuid: ctx.hop.and_then(|h| h.uuid.clone()),
        reason,
    }
}

fn outcome_of(events: &[Event<'_>], first_inport: Option<&str>) -> TraceOutcome {
    let mut out = TraceOutcome::default();
    let mut last_ctx: Option<&Ctx<'_>> = None;
    let mut saw_acl_drop: Option<&Ctx<'_>> = None;
    // what the routing stages of the current pipeline decided
    let mut next_hop: Option<&str> = None;
    let mut outport: Option<&str> = None;
    for (i, ev) in events.iter().enumerate() {
        match ev {
            Event::PipelineStart => {
                next_hop = None;
                outport = None;
            }
            Event::Title(_) => {}
            Event::Hop(ctx) => {
                last_ctx = Some(ctx);
                if ctx.hop.is_some_and(|h| h.no_match) {
                    let d = drop_at(ctx, DropReason::NoMatch);
                    out.terminals.push(Terminal::Drop(d.clone()));
                    out.drops.push(d);
                }
            }
            Event::Action(ctx, action) => {
                last_ctx = Some(ctx);
                if let Some(name) = controller_action(&action.text) {
                    out.terminals.push(Terminal::Controller(ControllerAction {
                        action: name.to_string(),
                        reply: reply_title(events.get(i + 1..).unwrap_or_default()),
                        datapath: ctx.datapath.map(str::to_string),
                        pipeline: ctx.pipeline,
                        stage: ctx.hop.and_then(|h| h.stage.clone()),
                        match_expr: ctx.hop.and_then(|h| h.match_expr.clone()),
                        uuid: ctx.hop.and_then(|h| h.uuid.clone()),
                        generated_by: ctx.generated.map(str::to_string),
                        outport: outport.map(str::to_string),
                        next_hop: matches!(name, "arp" | "nd_ns")
                            .then(|| next_hop.map(str::to_string))
                            .flatten(),
                        text: action.text.clone(),
                    }));
                }
                match &action.kind {
                    ActionKind::Assign { target, value } => match target.as_str() {
                        "reg0" | "xxreg0" => next_hop = Some(value.as_str()),
                        "outport" => outport = Some(value.trim_matches('"')),
                        _ => {}
                    },
                    ActionKind::OutputTo { port, port_type } => {
                        // an output into a patch port continues in the peer datapath
                        let continues = matches!(events.get(i + 1), Some(Event::PipelineStart));
                        if !continues {
                            let d = Delivery {
                                datapath: ctx.datapath.map(str::to_string),
                                port: port.clone(),
                                port_type: port_type.clone(),
                                generated_by: ctx.generated.map(str::to_string),
                                back_to_sender: first_inport == Some(port.as_str()),
                                multicast: ctx.multicast.map(str::to_string),
                            };
                            out.terminals.push(Terminal::Output(d.clone()));
                            out.outputs.push(d);
                        }
                    }
                    ActionKind::Comment { text } if text.starts_with("omitting output") => {
                        out.terminals
                            .push(Terminal::Drop(drop_at(ctx, DropReason::Loopback)));
                    }
                    ActionKind::Drop => {
                        let d = drop_at(ctx, DropReason::DropAction);
                        out.terminals.push(Terminal::Drop(d.clone()));
                        out.drops.push(d);
                    }
                    ActionKind::Reject => out.drops.push(drop_at(ctx, DropReason::Rejected)),
                    ActionKind::Log { verdict } => {
                        if matches!(verdict.as_deref(), Some("drop" | "reject")) {
                            saw_acl_drop = Some(ctx);
                        }
                    }
                    ActionKind::Ct { backends, .. } if !backends.is_empty() => {
                        out.load_balancing.push(LbDecision {
                            datapath: ctx.datapath.map(str::to_string),
                            stage: ctx.hop.and_then(|h| h.stage.clone()),
                            table: ctx.hop.map(|h| h.table),
                            uuid: ctx.hop.and_then(|h| h.uuid.clone()),
                            backends: backends.clone(),
                            chosen: chosen_backend(
                                backends,
                                events.get(i + 1..).unwrap_or_default(),
                            ),
                        });
                    }
                    ActionKind::Note { message } => out.notes.push(message.clone()),
                    ActionKind::Error { message } => out.errors.push(message.clone()),
                    _ => {}
                }
            }
        }
    }
    if out.outputs.is_empty() && out.drops.is_empty() {
        let end = if let Some(ctx) = saw_acl_drop {
            Some(drop_at(ctx, DropReason::AclVerdict))
        } else {
            last_ctx.map(|ctx| drop_at(ctx, DropReason::EndOfTrace))
        };
        if let Some(d) = end {
            if out.terminals.is_empty() {
                out.terminals.push(Terminal::Drop(d.clone()));
            }
            out.drops.push(d);
        }
    }
    out
}

/// The title of the section that shows the packet a `reject {}` built
/// (`tcp_reset`, `icmp4`...), when it follows right after the action.
fn reply_title(later: &[Event<'_>]) -> Option<String> {
    match later.first() {
        Some(Event::Title(t)) if !t.contains('(') && !t.starts_with("ct_") => Some(t.to_string()),
        _ => None,
    }
}

/// The first backend whose address is named by a later line of the trace.
fn chosen_backend(backends: &[String], later: &[Event<'_>]) -> Option<String> {
    for ev in later {
        let text = match ev {
            Event::Title(t) => *t,
            Event::Hop(ctx) => ctx.hop.and_then(|h| h.match_expr.as_deref()).unwrap_or(""),
            Event::Action(_, a) => a.text.as_str(),
            Event::PipelineStart => "",
        };
        if let Some(b) = backends
            .iter()
            .find(|b| mentions_addr(text, backend_addr(b)))
        {
            return Some(b.clone());
        }
    }
    None
}

/// `10.0.0.1:80` -> `10.0.0.1`, `[fd00::1]:80` -> `fd00::1`, `10.0.0.1` -> itself.
fn backend_addr(b: &str) -> &str {
    if let Some(rest) = b.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match b.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|c| c.is_ascii_digit()) => ip,
        _ => b,
    }
}

/// `addr` occurs in `text` as a whole address (not inside a longer one).
fn mentions_addr(text: &str, addr: &str) -> bool {
    if addr.is_empty() {
        return false;
    }
    let part_of_addr = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find(addr)) {
        let start = from + pos;
        let end = start + addr.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !before.is_some_and(part_of_addr) && !after.is_some_and(part_of_addr) {
            return true;
        }
        from = end;
    }
    false
}

/// Parses `ovn-trace` detailed output. Never fails: unknown lines become
/// [`ActionKind::Other`] actions or `stray` lines.
pub fn parse(input: &str) -> OvnTrace {
    let mut trace = OvnTrace::default();
    let mut body = String::with_capacity(input.len());
    for line in input.lines() {
        let t = line.trim();
        if trace.flow.is_none() && body.is_empty() && t.starts_with("# ") {
            trace.flow = Some(t[2..].trim().to_string());
        } else if is_log_line(t) {
            // ovs vlog lines (from stderr) are not part of the trace
            trace.stray.push(t.to_string());
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    let tree = indent::parse(&body);
    trace.steps = tree.iter().map(step_of).collect();
    trace
}

fn is_log_line(t: &str) -> bool {
    // 2026-11-25T19:39:50Z|00001|ovntrace|WARN|...
    let mut parts = t.splitn(4, '|');
    let (Some(ts), Some(seq), Some(_module)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    ts.len() >= 10
        && ts.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
}

fn step_of(node: &indent::Node<'_>) -> Step {
    let children: Vec<Step> = node.children.iter().map(step_of).collect();
    if node.title {
        return Step::Section(Section {
            title: node.text.to_string(),
            kind: section_kind(node.text),
            steps: children,
        });
    }
    // a pipeline header that lost its underline (copied from a web page or a
    // chat) still opens a pipeline: its hops follow as siblings
    if let kind @ SectionKind::Pipeline { .. } = section_kind(node.text) {
        return Step::Section(Section {
            title: node.text.to_string(),
            kind,
            steps: children,
        });
    }
    if let Some(mut hop) = parse_hop(node.text) {
        hop.actions = children;
        return Step::Hop(hop);
    }
    Step::Action(Action {
        text: node.text.to_string(),
        kind: classify_action(node.text),
        children,
    })
}

/// Parses a title line into its kind.
pub fn section_kind(title: &str) -> SectionKind {
    let t = title.trim();
    for pipeline in [Pipeline::Ingress, Pipeline::Egress] {
        if let Some(args) = t
            .strip_prefix(pipeline.as_str())
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
        {
            let kv = key_values(args);
            if let Some(dp) = kv.iter().find(|(k, _)| k == "dp") {
                return SectionKind::Pipeline {
                    pipeline,
                    datapath: dp.1.clone(),
                    inport: kv.iter().find(|(k, _)| k == "inport").map(|p| p.1.clone()),
                    outport: kv.iter().find(|(k, _)| k == "outport").map(|p| p.1.clone()),
                };
            }
        }
    }
    if let Some(args) = t
        .strip_prefix("multicast(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let kv = key_values(args);
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|p| p.1.clone());
        return SectionKind::Multicast {
            datapath: get("dp").unwrap_or_default(),
            group: get("mcgroup").unwrap_or_default(),
        };
    }
    if let Some(rest) = t.strip_prefix("LOG:") {
        let kv = key_values(rest.trim().strip_prefix("ACL").unwrap_or(rest));
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|p| p.1.clone());
        return SectionKind::Log {
            name: get("name"),
            direction: get("direction"),
            verdict: get("verdict"),
            severity: get("severity"),
        };
    }
    if t.starts_with("ct_") {
        let name_end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        let action = t[..name_end].to_string();
        let default_state = t.contains("/* default");
        let ct_state = t.find("ct_state=").map(|i| {
            let rest = &t[i + "ct_state=".len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ')' || c == ',')
                .unwrap_or(rest.len());
            rest[..end].to_string()
        });
        return SectionKind::Ct {
            action,
            ct_state,
            default_state,
        };
    }
    SectionKind::Other
}

/// Splits `a="x, y", b=z` into pairs, honouring double quotes.
fn key_values(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    out
}

/// Parses a table line: `NN. stage (source): match, priority P, uuid U`,
/// `NN. stage: match, priority P`, `NN. stage: no match (implicit drop)`.
pub fn parse_hop(line: &str) -> Option<Hop> {
    let t = line.trim();
    let dot = t.find(". ")?;
    let table: u32 = t[..dot].trim().parse().ok()?;
    let rest = &t[dot + 2..];
    let mut hop = Hop {
        table,
        stage: None,
        source: None,
        match_expr: None,
        priority: None,
        uuid: None,
        no_match: false,
        actions: Vec::new(),
    };
    // stage name: an identifier at the start, followed by " (" or ":"
    let ident_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let mut after = rest;
    if ident_end > 0 && (rest[ident_end..].starts_with(" (") || rest[ident_end..].starts_with(':'))
    {
        hop.stage = Some(rest[..ident_end].to_string());
        after = rest[ident_end..].trim_start();
    }
    if let Some(src) = after.strip_prefix('(') {
        let close = src.find("):")?;
        hop.source = Some(src[..close].to_string());
        after = &src[close + 1..];
    }
    after = after.strip_prefix(':').unwrap_or(after).trim_start();
    if after.starts_with("no match") {
        hop.no_match = true;
        return Some(hop);
    }
    if hop.stage.is_none() && hop.source.is_none() && !after.contains(", priority ") {
        // "1. foo" without the shape of a table line is an ordinary line
        return None;
    }
    let mut m = after;
    if let Some(i) = m.rfind(", uuid ") {
        hop.uuid = Some(m[i + 7..].trim().to_string());
        m = &m[..i];
    }
    if let Some(i) = m.rfind(", priority ") {
        hop.priority = m[i + 11..].trim().parse().ok();
        m = &m[..i];
    }
    hop.match_expr = Some(m.to_string());
    Some(hop)
}

/// Classifies one action line (detailed or summary form).
pub fn classify_action(line: &str) -> ActionKind {
    let t = line.trim();
    if let Some(msg) = t.strip_prefix("***") {
        return ActionKind::Note {
            message: msg.trim().to_string(),
        };
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("error") || lower.starts_with("*** error") || lower.contains(": error:") {
        return ActionKind::Error {
            message: t.to_string(),
        };
    }
    if let Some(inner) = t.strip_prefix("/*") {
        let inner = inner.trim_end_matches(';').trim_end();
        let inner = inner.strip_suffix("*/").unwrap_or(inner).trim();
        if let Some(rest) = inner.strip_prefix("output to ") {
            let kv_port = quoted_first(rest);
            let port_type = rest
                .find("type ")
                .and_then(|i| quoted_first(&rest[i..]).or(Some(String::new())));
            if let Some(port) = kv_port {
                return ActionKind::OutputTo { port, port_type };
            }
        }
        return ActionKind::Comment {
            text: inner.to_string(),
        };
    }
    if t.starts_with("cookie=")
        && let Some(f) = crate::flows::parse_line(t)
    {
        return ActionKind::OpenFlow {
            cookie: f.cookie,
            table: f.table,
            priority: f.priority,
            n_packets: f.n_packets,
        };
    }
    let stmt = t.trim_end_matches(';').trim();
    if stmt == "next" || stmt.starts_with("next(") {
        return ActionKind::Next;
    }
    if stmt == "output" {
        return ActionKind::Output;
    }
    if let Some(arg) = stmt.strip_prefix("output(")
        && let Some(port) = quoted_first(arg)
    {
        return ActionKind::OutputTo {
            port,
            port_type: None,
        };
    }
    if stmt == "drop" {
        return ActionKind::Drop;
    }
    if stmt.starts_with("log(") {
        let kv = key_values(stmt.trim_start_matches("log(").trim_end_matches(')'));
        return ActionKind::Log {
            verdict: kv.into_iter().find(|(k, _)| k == "verdict").map(|p| p.1),
        };
    }
    for reply in ["reject", "tcp_reset", "sctp_abort"] {
        if stmt == reply
            || stmt.starts_with(&format!("{reply} "))
            || stmt.starts_with(&format!("{reply}{{"))
        {
            return ActionKind::Reject;
        }
    }
    if let Some((head, _)) = stmt.split_once(" {")
        && !head.is_empty()
        && !head.starts_with("ct_")
        && head.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return ActionKind::Generate {
            name: head.to_string(),
        };
    }
    if stmt.starts_with("ct_") {
        let name_end = stmt
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(stmt.len());
        let name = stmt[..name_end].to_string();
        let backends = stmt
            .find("backends=")
            .map(|i| {
                let rest = &stmt[i + "backends=".len()..];
                let end = rest.find([')', ';']).unwrap_or(rest.len());
                rest[..end]
                    .split(',')
                    .map(|b| b.trim().to_string())
                    .filter(|b| !b.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        return ActionKind::Ct { name, backends };
    }
    if let Some(target) = stmt.strip_suffix("--") {
        return ActionKind::Assign {
            target: target.trim().to_string(),
            value: "-1".to_string(),
        };
    }
    for op in [" = ", " <-> "] {
        if let Some((l, r)) = stmt.split_once(op) {
            let l = l.trim();
            if !l.is_empty() && !l.contains(' ') {
                return ActionKind::Assign {
                    target: l.to_string(),
                    value: r.trim().to_string(),
                };
            }
        }
    }
    ActionKind::Other
}

/// The first double-quoted string in `s`.
fn quoted_first(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

/// A node of the `--summary` / `--minimal` brace tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BraceNode {
    /// The statement, without the trailing `{` or `;`.
    pub text: String,
    /// Set for statements; blocks (`ingress(...) {`) are classified by
    /// their `section` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<SectionKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<BraceNode>,
}

/// A parsed `--summary` or `--minimal` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SummaryTrace {
    pub flow: Option<String>,
    pub nodes: Vec<BraceNode>,
}

impl SummaryTrace {
    /// Ports named by `output("port");` / `/* output to "port" */` lines,
    /// in order, with nesting flattened.
    pub fn outputs(&self) -> Vec<String> {
        fn walk(nodes: &[BraceNode], out: &mut Vec<String>) {
            for n in nodes {
                if let Some(ActionKind::OutputTo { port, .. }) = &n.action {
                    out.push(port.clone());
                }
                walk(&n.children, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }
}

fn close_block(stack: &mut Vec<BraceNode>) {
    if let Some(done) = stack.pop()
        && let Some(parent) = stack.last_mut()
    {
        parent.children.push(done);
    }
}

/// Parses `ovn-trace --summary` / `--minimal` output (brace blocks).
pub fn parse_summary(input: &str) -> SummaryTrace {
    let mut trace = SummaryTrace::default();
    // stack of open blocks; index 0 is the root
    let mut stack: Vec<BraceNode> = vec![BraceNode {
        text: String::new(),
        action: None,
        section: None,
        children: Vec::new(),
    }];
    for line in input.lines() {
        let t = line.trim();
        if t.is_empty() || is_log_line(t) {
            continue;
        }
        if trace.flow.is_none() && stack.len() == 1 && t.starts_with("# ") {
            trace.flow = Some(t[2..].trim().to_string());
            continue;
        }
        if t == "};" || t == "}" {
            if stack.len() > 1 {
                close_block(&mut stack);
            }
            continue;
        }
        // statements that hold their whole block on one line, e.g.
        // `ct_commit { ct_mark.blocked = 0; };`, stay statements
        if let Some(head) = t.strip_suffix('{') {
            let head = head.trim().to_string();
            stack.push(BraceNode {
                section: Some(section_kind(&head)),
                text: head,
                action: None,
                children: Vec::new(),
            });
            continue;
        }
        let stmt = BraceNode {
            text: t.trim_end_matches(';').trim().to_string(),
            action: Some(classify_action(t)),
            section: None,
            children: Vec::new(),
        };
        if let Some(top) = stack.last_mut() {
            top.children.push(stmt);
        }
    }
    // unterminated blocks (truncated output) are closed here
    while stack.len() > 1 {
        close_block(&mut stack);
    }
    trace.nodes = stack.pop().map(|root| root.children).unwrap_or_default();
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_line_forms() {
        let h =
            parse_hop(" 8. ls_in_acl (northd.c:6809): ip && !ct.est, priority 1, uuid f5eaa090")
                .unwrap();
        assert_eq!(h.table, 8);
        assert_eq!(h.stage.as_deref(), Some("ls_in_acl"));
        assert_eq!(h.source.as_deref(), Some("northd.c:6809"));
        assert_eq!(h.match_expr.as_deref(), Some("ip && !ct.est"));
        assert_eq!(h.priority, Some(1));
        assert_eq!(h.uuid.as_deref(), Some("f5eaa090"));

        let h = parse_hop("13. ls_in_l2_lkup: no match (implicit drop)").unwrap();
        assert!(h.no_match);
        assert_eq!(h.stage.as_deref(), Some("ls_in_l2_lkup"));

        let h = parse_hop("25. ls_in_l2_lkup: eth.dst == 00:00:00:00:0b:01, priority 50").unwrap();
        assert_eq!(
            h.match_expr.as_deref(),
            Some("eth.dst == 00:00:00:00:0b:01")
        );
        assert_eq!(h.uuid, None);
        assert!(parse_hop("1. just a sentence").is_none());
    }

    #[test]
    fn action_kinds() {
        assert_eq!(classify_action("next;"), ActionKind::Next);
        assert_eq!(
            classify_action("/* output to \"b.default\", type \"\" */"),
            ActionKind::OutputTo {
                port: "b.default".into(),
                port_type: Some(String::new())
            }
        );
        assert_eq!(
            classify_action("ct_lb_mark(backends=10.16.0.11:8080,10.16.0.12:8080);"),
            ActionKind::Ct {
                name: "ct_lb_mark".into(),
                backends: vec!["10.16.0.11:8080".into(), "10.16.0.12:8080".into()]
            }
        );
        assert_eq!(
            classify_action("ip.ttl--;"),
            ActionKind::Assign {
                target: "ip.ttl".into(),
                value: "-1".into()
            }
        );
        assert!(matches!(
            classify_action("*** no OpenFlow flows"),
            ActionKind::Note { .. }
        ));
    }

    #[test]
    fn section_titles() {
        assert_eq!(
            section_kind("egress(dp=\"ovn-default\", inport=\"a.default\", outport=\"b.default\")"),
            SectionKind::Pipeline {
                pipeline: Pipeline::Egress,
                datapath: "ovn-default".into(),
                inport: Some("a.default".into()),
                outport: Some("b.default".into())
            }
        );
        assert_eq!(
            section_kind("ct_next(ct_state=est|trk /* default (use --ct to customize) */)"),
            SectionKind::Ct {
                action: "ct_next".into(),
                ct_state: Some("est|trk".into()),
                default_state: true
            }
        );
    }
}
