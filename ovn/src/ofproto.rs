//! `ovs-appctl ofproto/trace` output parsed into a typed tree.
//!
//! # Data model
//!
//! ```text
//! Flow: icmp,in_port=3,...                      -> Pass::flow
//! bridge("br-int")                              -> OfStep::Bridge
//! ----------------
//!  0. in_port=3, priority 100, cookie 0x6ad9c59c -> OfStep::Rule (table, match, priority, cookie)
//!     set_field:0x3->reg13                       -> OfStep::Action (OfActionKind::SetField ...)
//!     resubmit(,8)                               -> OfActionKind::Resubmit { table: Some(8) }
//!  8. reg14=0x2,metadata=0x1, priority 50, cookie 0x9b54783d
//!     ct(table=22,zone=NXM_NX_REG13[0..15])      -> OfActionKind::Ct
//!      -> A clone of the packet is forked ...     -> OfActionKind::Detail
//! Final flow: ... / Megaflow: ... / Datapath actions: ...   -> Pass fields
//! ===============================================================================
//! recirc(0x2) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
//! ===============================================================================
//!                                               -> a further Pass (recirc_id = 0x2)
//! ```
//!
//! Like ovn-trace, OVS prints the last sub-node of a chain at its parent's
//! level, so a resubmit chain is flat and only a resubmit followed by more
//! actions nests (its sub-trace is printed indented, under the action, in
//! `OfAction::children`). `>> ...` warnings and `>>>> ... <<<<` errors become
//! `Warning` / `Error` actions.
//!
//! The old (OVS 2.5-era) format with `Rule: table=N cookie=C priority=P`,
//! `OpenFlow actions=...` and `Resubmitted flow:` lines (seed 004) is
//! understood too: each rule becomes an `OfStep::Rule` at the top level with
//! its actions as one `Other` action per comma-separated action.
//!
//! [`DatapathActions`] decodes the `Datapath actions:` line: outputs,
//! tunnels (`set(tunnel(tun_id=0x..,dst=..))` before an output), `ct(...)`,
//! `recirc(0x..)` and drop. Parsing is total: any input yields a value.

use serde::Serialize;

use crate::indent;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct OfprotoTrace {
    /// The first pass, then one pass per recirculation OVS followed.
    pub passes: Vec<Pass>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Pass {
    /// For recirculation passes: the banner line, e.g.
    /// `recirc(0x2) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)`.
    pub header: Option<String>,
    /// `0x2` for `recirc(0x2)` passes.
    pub recirc_id: Option<String>,
    /// The `Flow:` line's value.
    pub flow: Option<String>,
    pub steps: Vec<OfStep>,
    /// `Final flow:` value (`unchanged` as printed).
    pub final_flow: Option<String>,
    pub megaflow: Option<String>,
    /// The raw `Datapath actions:` value.
    pub datapath_actions: Option<String>,
    /// The decoded datapath actions.
    pub datapath: Option<DatapathActions>,
    /// Lines outside the tree that are not one of the above (e.g.
    /// `Translation failed (...)`, `Trailing garbage in command`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OfStep {
    /// `bridge("br-int")` and everything translated in it.
    Bridge {
        name: String,
        steps: Vec<OfStep>,
    },
    Rule(Rule),
    Action(OfAction),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub table: u32,
    /// The OpenFlow match as printed (`in_port=3,metadata=0x1`), empty for a
    /// catch-all rule.
    #[serde(rename = "match")]
    pub match_expr: String,
    pub priority: Option<u32>,
    /// The OpenFlow cookie; OVS omits it when 0. ovn-controller puts the
    /// first 32 bits of the logical flow's UUID here (see `cookie`).
    pub cookie: Option<u64>,
    /// `N. No match.`: the table missed (packet dropped unless the table's
    /// miss behaviour says otherwise).
    pub no_match: bool,
    pub steps: Vec<OfStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfAction {
    pub text: String,
    #[serde(flatten)]
    pub kind: OfActionKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<OfStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OfActionKind {
    /// `resubmit(,8)` / `resubmit(in_port,8)` / `goto_table:8`.
    Resubmit {
        table: Option<u32>,
    },
    /// `output:5`, `output:NXM_NX_REG15[]`, `in_port`, `LOCAL`...
    Output {
        port: String,
    },
    /// `ct(...)`, with the table it resumes at if any.
    Ct {
        resume_table: Option<u32>,
    },
    /// `set_field:VALUE->FIELD` / `load:VALUE->FIELD` / `move:A->B`.
    SetField {
        field: String,
        value: String,
    },
    Drop,
    /// `-> ...` explanation lines.
    Detail {
        message: String,
    },
    /// `>> ...` warnings.
    Warning {
        message: String,
    },
    /// `>>>> ... <<<<` errors.
    Error {
        message: String,
    },
    Other,
}

/// The `Datapath actions:` line, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DatapathActions {
    /// Top-level actions split at commas outside parentheses.
    pub actions: Vec<String>,
    /// Datapath port numbers or names passed to `output` (or bare numbers).
    pub outputs: Vec<String>,
    /// Tunnel metadata set before an output.
    pub tunnels: Vec<TunnelOutput>,
    /// Conntrack calls `ct(...)` as printed.
    pub ct: Vec<String>,
    /// `recirc(0x..)` ids.
    pub recirc: Vec<String>,
    /// `userspace(...)` actions: packets sent to ovn-controller (ACL
    /// logging, ARP/ND resolution, DHCP, controller events).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub userspace: Vec<String>,
    /// The line was `drop` (or empty).
    pub drop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TunnelOutput {
    pub tun_id: Option<String>,
    pub src: Option<String>,
    pub dst: Option<String>,
    /// The raw `tunnel(...)` contents.
    pub raw: String,
    /// Port the tunnelled packet was output to, if an output followed.
    pub output: Option<String>,
}

/// One rule hit with the bridge it was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    pub pass: usize,
    pub bridge: Option<&'a str>,
    pub rule: &'a Rule,
}

impl OfprotoTrace {
    /// Every rule hit, depth-first in printed order over all passes.
    pub fn rules(&self) -> Vec<RuleRef<'_>> {
        fn walk<'a>(
            steps: &'a [OfStep],
            pass: usize,
            bridge: Option<&'a str>,
            out: &mut Vec<RuleRef<'a>>,
        ) {
            for s in steps {
                match s {
                    OfStep::Bridge { name, steps } => walk(steps, pass, Some(name), out),
                    OfStep::Rule(r) => {
                        out.push(RuleRef {
                            pass,
                            bridge,
                            rule: r,
                        });
                        walk(&r.steps, pass, bridge, out);
                    }
                    OfStep::Action(a) => walk(&a.children, pass, bridge, out),
                }
            }
        }
        let mut out = Vec::new();
        for (i, p) in self.passes.iter().enumerate() {
            walk(&p.steps, i, None, &mut out);
        }
        out
    }

    /// The last pass's decoded datapath actions: where the packet finally
    /// went (or `drop`).
    pub fn final_actions(&self) -> Option<&DatapathActions> {
        self.passes.iter().rev().find_map(|p| p.datapath.as_ref())
    }
}

const BANNER: &str = "================";

/// Parses `ofproto/trace` output (current or legacy format).
pub fn parse(input: &str) -> OfprotoTrace {
    let mut out = OfprotoTrace::default();
    let mut pass = Pass::default();
    let mut body = String::new();
    let mut legacy: Vec<OfStep> = Vec::new();
    let mut started = false;
    let lines: Vec<&str> = input.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        i += 1;
        if t.starts_with(BANNER) && t.bytes().all(|b| b == b'=') {
            // banner: `====`, header line, `====`
            if started {
                finish(&mut pass, &body, &mut legacy);
                out.passes.push(std::mem::take(&mut pass));
                body.clear();
            }
            started = true;
            // header lines up to the closing banner: the first names the pass,
            // the rest (NAT simulation details) are kept as notes
            while let Some(h) = lines.get(i).map(|l| l.trim()) {
                if h.starts_with(BANNER) {
                    i += 1;
                    break;
                }
                i += 1;
                if h.is_empty() {
                    continue;
                }
                if pass.header.is_none() {
                    pass.header = Some(h.to_string());
                    pass.recirc_id = h
                        .strip_prefix("recirc(")
                        .and_then(|r| r.split_once(')'))
                        .map(|(id, _)| id.to_string());
                } else {
                    pass.notes.push(h.to_string());
                }
            }
            continue;
        }
        started = true;
        if let Some(v) = t.strip_prefix("Flow:") {
            pass.flow = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Final flow:") {
            pass.final_flow = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Megaflow:") {
            pass.megaflow = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Datapath actions:") {
            let v = v.trim();
            pass.datapath_actions = Some(v.to_string());
            pass.datapath = Some(parse_datapath_actions(v));
        } else if let Some(rule) = t.strip_prefix("Rule:") {
            legacy.push(OfStep::Rule(legacy_rule(rule)));
        } else if let Some(acts) = t.strip_prefix("OpenFlow actions=") {
            if let Some(OfStep::Rule(r)) = legacy.last_mut() {
                r.steps.extend(
                    split_top_level(acts)
                        .into_iter()
                        .map(|a| OfStep::Action(action_of(&a, Vec::new()))),
                );
            }
        } else if t.starts_with("Resubmitted ")
            || t.starts_with("Translation failed")
            || t.starts_with("Trailing garbage")
        {
            pass.notes.push(t.to_string());
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if started {
        finish(&mut pass, &body, &mut legacy);
        out.passes.push(pass);
    }
    out
}

fn finish(pass: &mut Pass, body: &str, legacy: &mut Vec<OfStep>) {
    let tree = indent::parse(body);
    pass.steps = tree.iter().map(step_of).collect();
    pass.steps.append(legacy);
}

fn step_of(node: &indent::Node<'_>) -> OfStep {
    let children: Vec<OfStep> = node.children.iter().map(step_of).collect();
    if node.title {
        let name = node
            .text
            .strip_prefix("bridge(\"")
            .and_then(|r| r.strip_suffix("\")"))
            .unwrap_or(node.text)
            .to_string();
        return OfStep::Bridge {
            name,
            steps: children,
        };
    }
    if let Some(mut rule) = parse_rule(node.text) {
        rule.steps = children;
        return OfStep::Rule(rule);
    }
    OfStep::Action(action_of(node.text, children))
}

/// Parses a rule line: ` 0. in_port=3, priority 100, cookie 0x6ad9c59c`,
/// ` 0. priority 0`, ` 1. No match.`
pub fn parse_rule(line: &str) -> Option<Rule> {
    let t = line.trim();
    let dot = t.find(". ")?;
    let table: u32 = t[..dot].trim().parse().ok()?;
    let rest = t[dot + 2..].trim();
    let mut rule = Rule {
        table,
        match_expr: String::new(),
        priority: None,
        cookie: None,
        no_match: false,
        steps: Vec::new(),
    };
    if rest.starts_with("No match") {
        rule.no_match = true;
        return Some(rule);
    }
    let mut m = rest;
    if let Some(i) = m.rfind("cookie ") {
        let v = m[i + 7..].trim();
        rule.cookie = parse_u64(v);
        m = m[..i].trim_end().trim_end_matches(',');
    }
    let prio_at = if m.starts_with("priority ") {
        Some(0)
    } else {
        m.rfind(", priority ").map(|i| i + 2)
    };
    let i = prio_at?;
    rule.priority = m[i + 9..].trim().parse().ok();
    rule.match_expr = m[..i].trim_end().trim_end_matches(',').to_string();
    Some(rule)
}

fn parse_u64(v: &str) -> Option<u64> {
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn legacy_rule(s: &str) -> Rule {
    // `table=20 cookie=0 priority=1` or `table=55 cookie=0 priority=100,metadata=0x2,...`
    let mut rule = Rule {
        table: 0,
        match_expr: String::new(),
        priority: None,
        cookie: None,
        no_match: false,
        steps: Vec::new(),
    };
    for word in s.split_whitespace() {
        if let Some(v) = word.strip_prefix("table=") {
            rule.table = v.parse().unwrap_or(0);
        } else if let Some(v) = word.strip_prefix("cookie=") {
            rule.cookie = parse_u64(v);
        } else if let Some(v) = word.strip_prefix("priority=") {
            let (p, m) = v.split_once(',').unwrap_or((v, ""));
            rule.priority = p.parse().ok();
            rule.match_expr = m.to_string();
        }
    }
    rule
}

fn action_of(text: &str, children: Vec<OfStep>) -> OfAction {
    OfAction {
        text: text.trim().to_string(),
        kind: classify_action(text),
        children,
    }
}

/// Classifies one OpenFlow action line of a trace.
pub fn classify_action(text: &str) -> OfActionKind {
    let t = text.trim();
    if let Some(m) = t.strip_prefix(">>>>") {
        return OfActionKind::Error {
            message: m.trim().trim_end_matches("<<<<").trim().to_string(),
        };
    }
    if let Some(m) = t.strip_prefix(">>") {
        return OfActionKind::Warning {
            message: m.trim().to_string(),
        };
    }
    if let Some(m) = t.strip_prefix("->") {
        return OfActionKind::Detail {
            message: m.trim().to_string(),
        };
    }
    if let Some(args) = t
        .strip_prefix("resubmit(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let table = args.split(',').nth(1).and_then(|s| s.trim().parse().ok());
        return OfActionKind::Resubmit { table };
    }
    if let Some(n) = t.strip_prefix("goto_table:") {
        return OfActionKind::Resubmit {
            table: n.trim().parse().ok(),
        };
    }
    if let Some(p) = t.strip_prefix("output:") {
        return OfActionKind::Output {
            port: p.trim().to_string(),
        };
    }
    if t == "drop" {
        return OfActionKind::Drop;
    }
    if t.starts_with("ct(") {
        let resume_table = t.find("table=").and_then(|i| {
            let r = &t[i + 6..];
            let end = r.find([',', ')']).unwrap_or(r.len());
            r[..end].parse().ok()
        });
        return OfActionKind::Ct { resume_table };
    }
    for prefix in ["set_field:", "load:", "move:"] {
        if let Some(r) = t.strip_prefix(prefix)
            && let Some((value, field)) = r.rsplit_once("->")
        {
            return OfActionKind::SetField {
                field: field.to_string(),
                value: value.to_string(),
            };
        }
    }
    OfActionKind::Other
}

/// Splits at commas that are not inside parentheses.
pub fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth: usize = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Decodes a `Datapath actions:` value.
pub fn parse_datapath_actions(s: &str) -> DatapathActions {
    let s = s.trim();
    let mut out = DatapathActions {
        actions: split_top_level(s),
        ..DatapathActions::default()
    };
    out.drop = s.is_empty() || s == "drop";
    let mut pending_tunnel: Option<TunnelOutput> = None;
    for a in &out.actions {
        if let Some(inner) = a
            .strip_prefix("set(tunnel(")
            .and_then(|r| r.strip_suffix("))"))
        {
            let mut tun = TunnelOutput {
                raw: inner.to_string(),
                ..TunnelOutput::default()
            };
            for kv in split_top_level(inner) {
                if let Some((k, v)) = kv.split_once('=') {
                    match k {
                        "tun_id" => tun.tun_id = Some(v.to_string()),
                        "src" | "ipv6_src" => tun.src = Some(v.to_string()),
                        "dst" | "ipv6_dst" => tun.dst = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            pending_tunnel = Some(tun);
        } else if let Some(inner) = a
            .strip_prefix("tnl_push(")
            .and_then(|r| r.strip_suffix(')'))
        {
            // userspace datapath: tnl_push(tnl_port(N),header(...,ipv4(src=..,dst=..),
            // ...,geneve(...,vni=0x3,...)),out_port(M)), followed by the output
            pending_tunnel = Some(TunnelOutput {
                tun_id: field_value(inner, "vni="),
                src: field_value(inner, "ipv4(src=").or_else(|| field_value(inner, "ipv6(src=")),
                dst: ip_dst(inner),
                raw: inner.to_string(),
                output: None,
            });
        } else if a.starts_with("ct(") {
            out.ct.push(a.clone());
        } else if a.starts_with("userspace(") {
            out.userspace.push(a.clone());
        } else if let Some(id) = a.strip_prefix("recirc(").and_then(|r| r.strip_suffix(')')) {
            out.recirc.push(id.to_string());
        } else if let Some(port) = output_port(a) {
            if let Some(mut tun) = pending_tunnel.take() {
                tun.output = Some(port.clone());
                out.tunnels.push(tun);
            }
            out.outputs.push(port);
        }
    }
    if let Some(tun) = pending_tunnel {
        out.tunnels.push(tun);
    }
    out
}

/// The value after `key` up to the next `,` or `)`.
fn field_value(s: &str, key: &str) -> Option<String> {
    let start = s.find(key)? + key.len();
    let rest = &s[start..];
    let end = rest.find([',', ')']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The tunnel destination inside a `tnl_push` header's `ipv4(...)`/`ipv6(...)`.
fn ip_dst(s: &str) -> Option<String> {
    let at = s.find("ipv4(").or_else(|| s.find("ipv6("))?;
    field_value(&s[at..], "dst=")
}

fn output_port(a: &str) -> Option<String> {
    // datapath outputs print as a bare port number, or `output(port=..)` /
    // a port name for some datapaths
    if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) {
        return Some(a.to_string());
    }
    a.strip_prefix("output(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines() {
        let r = parse_rule(" 0. in_port=3, priority 100, cookie 0x6ad9c59c").unwrap();
        assert_eq!(
            (r.table, r.priority, r.cookie),
            (0, Some(100), Some(0x6ad9c59c))
        );
        assert_eq!(r.match_expr, "in_port=3");
        let r = parse_rule(" 0. priority 0").unwrap();
        assert_eq!(
            (r.match_expr.as_str(), r.priority, r.cookie),
            ("", Some(0), None)
        );
        assert!(parse_rule(" 1. No match.").unwrap().no_match);
    }

    #[test]
    fn datapath_actions_with_tunnel() {
        let d = parse_datapath_actions(
            "set(tunnel(tun_id=0x1,dst=172.31.0.2,ttl=64,tp_dst=6081,geneve({class=0x102,type=0x80,len=4,0x10002}),flags(df|csum|key))),2",
        );
        assert_eq!(d.outputs, vec!["2".to_string()]);
        assert_eq!(d.tunnels.len(), 1);
        assert_eq!(d.tunnels[0].dst.as_deref(), Some("172.31.0.2"));
        assert_eq!(d.tunnels[0].output.as_deref(), Some("2"));
        let d = parse_datapath_actions("ct(zone=1,nat),recirc(0x2)");
        assert_eq!(d.recirc, vec!["0x2".to_string()]);
        assert!(parse_datapath_actions("drop").drop);
    }
}
