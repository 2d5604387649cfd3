//! The OVS side of a verdict: one `ofproto/trace` run per node, each turned
//! into the tables it went through and where the packet left br-int (a pod
//! port, a tunnel toward another chassis, a drop, a load-balancer group).

use serde::{Deserialize, Serialize};

use super::sb_query::{DatapathRef, FlowPlace, FlowRef};
use crate::flows::{match_field, parse_u64};
use crate::layout::{Observation, OpenFlowLayout, OpenFlowTable};
use crate::microflow::TunnelMetadata;
use crate::ofproto::{OfActionKind, OfStep, OfprotoTrace, Pass};
use crate::ovsdb_json::{Cells, TableError, tables as parse_tables};
pub use crate::ovsdb_rows::OvsInterface;
use crate::ovsdb_rows::Pipeline;

/// argv listing the node's interfaces with the bridge/port tables that say
/// which bridge each belongs to (OpenFlow port numbers are per bridge).
pub fn interfaces_argv() -> Vec<String> {
    [
        "ovs-vsctl",
        "--format=json",
        "--columns=_uuid,name,ofport,type,options,external_ids",
        "list",
        "Interface",
        "--",
        "--columns=name,ports",
        "list",
        "Bridge",
        "--",
        "--columns=_uuid,interfaces",
        "list",
        "Port",
    ]
    .map(String::from)
    .to_vec()
}

/// The interfaces of br-int (all interfaces when the bridge tables are absent).
pub fn parse_interfaces(text: &str) -> Result<Vec<OvsInterface>, TableError> {
    let mut tables = parse_tables(text)?.into_iter();
    let rows = tables
        .next()
        .ok_or_else(|| TableError::Tables("ovs-vsctl printed no table".into()))?;
    let bridges = tables.next().unwrap_or_default();
    let ports = tables.next().unwrap_or_default();
    let br_int_ifaces: Option<Vec<String>> =
        bridges.iter().find(|b| b.str("name") == "br-int").map(|b| {
            let port_ids = b.set("ports");
            ports
                .iter()
                .filter(|p| port_ids.contains(&p.str("_uuid")))
                .flat_map(|p| p.set("interfaces"))
                .collect()
        });
    Ok(rows
        .iter()
        .filter(|r| {
            br_int_ifaces
                .as_ref()
                .is_none_or(|ids| ids.contains(&r.str("_uuid")))
        })
        .map(OvsInterface::from_row)
        .collect())
}

/// One OpenFlow table the packet went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsHop {
    /// Which `ofproto/trace` pass (0 = first, then one per recirculation).
    pub pass: usize,
    pub table: u32,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub priority: Option<u32>,
    /// Cookie as 8 hex digits = prefix of the logical flow's UUID.
    pub cookie: Option<String>,
    /// The logical stage this flow implements (from SB Logical_Flow).
    pub stage: Option<String>,
    /// The NB object behind the logical flow (ACL → policy, load balancer).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object: Option<String>,
    /// `drop`, `output:N`, `ct(...)`, ... (the rule's own actions, abridged).
    pub actions: Vec<String>,
}

/// Where the packet left br-int on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OvsExit {
    /// Out of a local port (a pod's veth, ovn0...).
    Port {
        ofport: String,
        interface: Option<String>,
        logical_port: Option<String>,
    },
    /// Into a tunnel toward another chassis.
    Tunnel {
        ofport: String,
        interface: Option<String>,
        remote_ip: Option<String>,
        /// Node that owns `remote_ip` (SB Encap → Chassis).
        remote_node: Option<String>,
        metadata: Option<TunnelMetadata>,
    },
    Dropped {
        pass: usize,
        table: Option<u32>,
        cookie: Option<String>,
        #[serde(rename = "match")]
        match_expr: Option<String>,
    },
    /// An OpenFlow select group (OVN load balancer): ofproto/trace cannot
    /// follow the hash-chosen bucket.
    Group { group: String },
    /// Sent to the controller (ovn-controller handles it: ARP/ND resolution,
    /// ICMP errors, DHCP...).
    Controller { detail: String },
    /// Nothing recognisable; the datapath actions are kept.
    Unknown { datapath_actions: Option<String> },
}

/// The trace on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsSegment {
    pub node: String,
    pub bridge: String,
    /// The flow given to ofproto/trace.
    pub flow: String,
    pub hops: Vec<OvsHop>,
    pub exit: OvsExit,
    /// `Datapath actions:` of the last pass.
    pub datapath_actions: Option<String>,
    /// ofproto/trace errors or warnings (`>>>> ... <<<<`, `Translation failed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `ovn-controller --version` of the node, when it was read: names
    /// ovn-controller's own tables for that release.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ovn_version: Option<String>,
}

struct Exit<'a> {
    pass: usize,
    kind: ExitKind<'a>,
}

enum ExitKind<'a> {
    Output(&'a str),
    Group(&'a str),
    Controller(&'a str),
}

/// Walks the top-level chain of one pass (rules in br-int, not nested
/// lookups like `resubmit(,73)` sub-traces), collecting hops and exits.
fn walk_pass<'a>(
    pass_no: usize,
    steps: &'a [OfStep],
    hops: &mut Vec<OvsHop>,
    exits: &mut Vec<Exit<'a>>,
    last_drop: &mut Option<OvsHop>,
    notes: &mut Vec<String>,
) {
    for step in steps {
        match step {
            // Only the integration bridge: outputs inside br-phy (tunnel
            // underlay) are how the tunnel packet leaves the node.
            OfStep::Bridge { name, steps } if name == "br-int" => {
                walk_pass(pass_no, steps, hops, exits, last_drop, notes)
            }
            OfStep::Bridge { .. } => {}
            OfStep::Rule(rule) => {
                let mut actions = Vec::new();
                let mut dropped = rule.no_match;
                for s in &rule.steps {
                    // rules printed nested under a rule continue its chain;
                    // a nested `No match.` is a lookup (tables 68/69/73...)
                    // testing a condition, not where the packet dies
                    let lookup_miss = matches!(s, OfStep::Rule(r) if r.no_match);
                    if !matches!(s, OfStep::Action(_)) && !lookup_miss {
                        walk_pass(
                            pass_no,
                            std::slice::from_ref(s),
                            hops,
                            exits,
                            last_drop,
                            notes,
                        );
                    }
                    if let OfStep::Action(a) = s {
                        // a resubmit/clone whose sub-trace outputs (router
                        // hops, patch ports) is printed nested under it
                        nested_exits(pass_no, &a.children, exits);
                        match &a.kind {
                            OfActionKind::Output { port } => {
                                exits.push(Exit {
                                    pass: pass_no,
                                    kind: ExitKind::Output(port),
                                });
                                actions.push(a.text.clone());
                            }
                            OfActionKind::Drop => {
                                dropped = true;
                                actions.push(a.text.clone());
                            }
                            OfActionKind::Ct { .. } => actions.push(a.text.clone()),
                            OfActionKind::Error { message } | OfActionKind::Warning { message } => {
                                notes.push(message.clone())
                            }
                            OfActionKind::Other if a.text.starts_with("group:") => {
                                exits.push(Exit {
                                    pass: pass_no,
                                    kind: ExitKind::Group(a.text.trim_start_matches("group:")),
                                });
                                actions.push(a.text.clone());
                            }
                            OfActionKind::Other if a.text.starts_with("controller") => {
                                exits.push(Exit {
                                    pass: pass_no,
                                    kind: ExitKind::Controller(&a.text),
                                });
                                actions.push(a.text.clone());
                            }
                            _ => {}
                        }
                    }
                }
                let hop = OvsHop {
                    pass: pass_no,
                    table: rule.table,
                    match_expr: rule.match_expr.clone(),
                    priority: rule.priority,
                    cookie: rule.cookie.map(|c| format!("{c:08x}")),
                    // named later: from the SB logical flow of the cookie, or
                    // by the node's table layout (`name_physical_hops`)
                    stage: None,
                    object: None,
                    actions,
                };
                if dropped {
                    *last_drop = Some(hop.clone());
                }
                hops.push(hop);
            }
            OfStep::Action(a) => {
                if let OfActionKind::Error { message } = &a.kind {
                    notes.push(message.clone());
                }
            }
        }
    }
}

/// Outputs and groups inside a nested sub-trace (br-int only). Drops there are
/// not collected: nested `No match.` lookups (e.g. tables 68/69/73) are how
/// ovn-controller tests a condition, not where the packet dies.
fn nested_exits<'a>(pass_no: usize, steps: &'a [OfStep], exits: &mut Vec<Exit<'a>>) {
    for step in steps {
        match step {
            OfStep::Bridge { name, steps } if name == "br-int" => {
                nested_exits(pass_no, steps, exits)
            }
            OfStep::Bridge { .. } => {}
            OfStep::Rule(r) => nested_exits(pass_no, &r.steps, exits),
            OfStep::Action(a) => match &a.kind {
                OfActionKind::Output { port } => exits.push(Exit {
                    pass: pass_no,
                    kind: ExitKind::Output(port),
                }),
                OfActionKind::Other if a.text.starts_with("group:") => exits.push(Exit {
                    pass: pass_no,
                    kind: ExitKind::Group(a.text.trim_start_matches("group:")),
                }),
                _ => nested_exits(pass_no, &a.children, exits),
            },
        }
    }
}

/// The rule a pass reached last along the chain [`walk_pass`] follows (br-int
/// rules and the rules printed nested under them; lookups that missed are
/// conditions, not the chain).
fn last_rule_reached(steps: &[OfStep]) -> Option<&crate::ofproto::Rule> {
    let mut last = None;
    for s in steps {
        let found = match s {
            OfStep::Bridge { name, steps } if name == "br-int" => last_rule_reached(steps),
            OfStep::Rule(r) if !r.no_match => last_rule_reached(&r.steps).or(Some(r)),
            _ => None,
        };
        if found.is_some() {
            last = found;
        }
    }
    last
}

/// What one ofproto/trace run says, with ports named from the node's interfaces.
pub fn segment(
    node: &str,
    flow: &str,
    trace: &OfprotoTrace,
    interfaces: &[OvsInterface],
) -> OvsSegment {
    let mut hops = Vec::new();
    let mut exits = Vec::new();
    let mut last_drop = None;
    let mut notes = Vec::new();
    for (i, pass) in trace.passes.iter().enumerate() {
        walk_pass(
            i,
            &pass.steps,
            &mut hops,
            &mut exits,
            &mut last_drop,
            &mut notes,
        );
        // the NAT-simulation banner lines carry no information here
        notes.extend(pass.notes.iter().filter(|n| !is_banner(n)).cloned());
    }
    let last_pass = trace.passes.len().saturating_sub(1);
    let datapath_actions = trace
        .passes
        .iter()
        .rev()
        .find_map(|p| p.datapath_actions.clone());
    // Exits of earlier passes are the clones that went to conntrack; the
    // packet's fate is decided in the last pass.
    let final_exit = exits.iter().rev().find(|e| e.pass == last_pass);
    let exit = match final_exit.map(|e| &e.kind) {
        Some(ExitKind::Output(port)) => {
            let iface = interfaces.iter().find(|i| i.ofport.to_string() == *port);
            match iface {
                Some(i) if i.is_tunnel() => OvsExit::Tunnel {
                    ofport: port.to_string(),
                    interface: Some(i.name.clone()),
                    remote_ip: i.remote_ip.clone(),
                    remote_node: None,
                    metadata: trace.passes.get(last_pass).and_then(geneve_metadata),
                },
                _ => OvsExit::Port {
                    ofport: port.to_string(),
                    interface: iface.map(|i| i.name.clone()),
                    logical_port: iface.and_then(|i| i.iface_id.clone()),
                },
            }
        }
        Some(ExitKind::Group(g)) => OvsExit::Group {
            group: g.to_string(),
        },
        Some(ExitKind::Controller(c)) => OvsExit::Controller {
            detail: c.to_string(),
        },
        None => match last_drop.filter(|d| d.pass == last_pass) {
            Some(d) => OvsExit::Dropped {
                pass: d.pass,
                table: Some(d.table),
                cookie: d.cookie,
                match_expr: Some(d.match_expr),
            },
            // no rule said `drop`: the last rule reached neither output nor
            // resubmitted, so the packet ends there (an ACL action stage that
            // only clears registers, for one)
            None if trace.final_actions().is_some_and(|a| a.drop) => {
                let last = trace
                    .passes
                    .get(last_pass)
                    .and_then(|p| last_rule_reached(&p.steps));
                OvsExit::Dropped {
                    pass: last_pass,
                    table: last.map(|r| r.table),
                    cookie: last.and_then(|r| r.cookie).map(|c| format!("{c:08x}")),
                    match_expr: last.map(|r| r.match_expr.clone()),
                }
            }
            None => OvsExit::Unknown {
                datapath_actions: datapath_actions.clone(),
            },
        },
    };
    OvsSegment {
        node: node.to_string(),
        bridge: "br-int".into(),
        flow: flow.to_string(),
        hops,
        exit,
        datapath_actions,
        notes,
        ovn_version: None,
    }
}

fn is_banner(note: &str) -> bool {
    let n = note.trim();
    n.starts_with("Replacing src/dst")
        || n.starts_with("Initial flow")
        || n.starts_with("Modified flow")
}

/// The logical flows an OVS trace went through: each rule of a logical-flow
/// table gives its cookie (the flow's 8-hex-digit UUID prefix) and where the
/// flow lives (pipeline and logical table from the node's release layout, the
/// OpenFlow priority, which is the logical one, and `metadata`, the datapath's
/// tunnel key). Physical tables carry other rows' UUIDs as cookies and are
/// skipped; for an unknown release every table not known as ovn-controller's
/// own is taken without a place (the SB lookup tolerates misses).
pub fn logical_flow_refs(trace: &OfprotoTrace, ovn_version: Option<&str>) -> Vec<FlowRef> {
    let layout = OpenFlowLayout::for_release(ovn_version);
    trace
        .rules()
        .iter()
        .filter_map(|r| {
            let cookie = r
                .rule
                .cookie
                .filter(|c| *c != 0 && *c <= u64::from(u32::MAX))?;
            let place = match layout.classify(r.rule.table) {
                OpenFlowTable::Physical { .. } => return None,
                OpenFlowTable::Logical { pipeline, table } => {
                    let key = match_field(&r.rule.match_expr, "metadata")
                        .and_then(|v| parse_u64(v.split('/').next().unwrap_or(v)))
                        .and_then(|k| i64::try_from(k).ok());
                    match (r.rule.priority, key) {
                        (Some(priority), Some(key)) => Some(FlowPlace {
                            pipeline,
                            table,
                            priority,
                            datapath: DatapathRef::TunnelKey(key),
                        }),
                        _ => None,
                    }
                }
                OpenFlowTable::Unknown => None,
            };
            Some(FlowRef {
                prefix: format!("{cookie:08x}"),
                place,
            })
        })
        .collect()
}

/// The OpenFlow layout of a segment's node, calibrated from its hops whose
/// cookie `lflow_of` resolves to a logical flow (pipeline, table_id).
pub fn layout_of(
    seg: &OvsSegment,
    lflow_of: impl Fn(&str) -> Option<(Pipeline, u32)>,
) -> OpenFlowLayout {
    let observed: Vec<Observation> = seg
        .hops
        .iter()
        .filter_map(|h| {
            let (pipeline, logical_table) = lflow_of(h.cookie.as_deref()?)?;
            Some(Observation {
                openflow_table: h.table,
                pipeline,
                logical_table,
            })
        })
        .collect();
    OpenFlowLayout::calibrate(seg.ovn_version.as_deref(), &observed)
}

/// Names the hops no logical flow named: ovn-controller's own tables by
/// their name in the node's release; anything else keeps no name.
pub fn name_physical_hops(seg: &mut OvsSegment, layout: &OpenFlowLayout) {
    for hop in seg.hops.iter_mut().filter(|h| h.stage.is_none()) {
        if let OpenFlowTable::Physical { name, .. } = layout.classify(hop.table) {
            hop.stage = Some(name.to_string());
        }
    }
}

/// OVN's geneve encoding: tunnel id = datapath key (OpenFlow `metadata`),
/// option 0 = logical inport << 16 | logical outport (reg14, reg15).
fn geneve_metadata(pass: &Pass) -> Option<TunnelMetadata> {
    let flow = pass.final_flow.as_deref()?;
    let field = |name: &str| {
        flow.split(',').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| parse_hex(v)).flatten()
        })
    };
    let dp = field("metadata")?;
    let inport = field("reg14").unwrap_or(0);
    let outport = field("reg15")?;
    Some(TunnelMetadata {
        tun_id: format!("{dp:#x}"),
        tun_src: None,
        tun_dst: None,
        tun_metadata0: Some(format!(
            "{:#x}",
            ((inport & 0x7fff) << 16) | (outport & 0xffff)
        )),
    })
}

fn parse_hex(v: &str) -> Option<u64> {
    let v = v.split('/').next()?;
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The packet fields of the last pass's final flow (what leaves the node).
pub fn final_packet(trace: &OfprotoTrace) -> Option<String> {
    let pass = trace.passes.last()?;
    match pass.final_flow.as_deref() {
        Some("unchanged") | None => pass.flow.clone(),
        Some(f) => Some(f.to_string()),
    }
}
