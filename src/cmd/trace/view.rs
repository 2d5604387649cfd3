//! `trace` output: the verdict first, then the annotated logical path and
//! the OVS path; `--raw` prints the tools' own output as upstream did.

use std::io::{self, Write};

use ko_ovn::verdict::ovs::OvsSegment;
use ko_ovn::verdict::routing::{Routing, router_suffix};
use ko_ovn::verdict::{TraceReport, Verdict};
use ko_ovn::versions::Versions;
use serde::Serialize;

use super::reads::RawRun;
use super::view_compact;
use super::view_path::{exit_text, ovs_path, shown_actions};
use crate::render::{Render, Style};

/// Both directions in one answer (`round_trip` in `-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    /// Both directions delivered.
    pub works: bool,
    pub forward: Verdict,
    /// Where the reply leaves from: the server's address (and port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The reply's verdict; absent when it was not traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Verdict>,
    /// Why the reply was not traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_traced: Option<String>,
    /// For a Service: what conntrack does to the reply that the traces do not show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<String>,
    /// The reply's full report, as for the forward direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Box<TraceReport>>,
}

/// What `trace` renders.
#[derive(Debug, Clone, Serialize)]
pub struct TraceView {
    #[serde(flatten)]
    pub report: TraceReport,
    /// The OVN/OVS releases the trace ran on (ovn-northd, and ovn-controller
    /// and ovs-vswitchd of each node traced).
    #[serde(skip_serializing_if = "Versions::is_empty")]
    pub versions: Versions,
    /// With `--raw`: the ovn-trace run, then each ofproto/trace run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Vec<RawRun>>,
    /// The destination as named on the command line (pod, Service, node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_name: Option<crate::cmd::trace::destination::NamedDestination>,
    /// Text shows every stage and table (`--full`), not only the decisive ones.
    #[serde(skip)]
    pub full: bool,
    /// With `--reply`: both directions' verdicts and the reply's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<RoundTrip>,
}

impl Render for TraceView {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        if let Some(runs) = &self.raw {
            return render_raw(runs, out);
        }
        if let Some(rt) = &self.round_trip {
            render_round_trip_head(rt, out, style)?;
        }
        render_report(
            &self.report,
            &self.versions,
            self.destination_name.as_ref(),
            self.full,
            out,
            style,
        )?;
        match &self.round_trip {
            Some(rt) => render_reply(rt, self.full, out, style),
            None => Ok(()),
        }
    }

    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

fn verdict_word(v: Verdict) -> String {
    format!("{v:?}").to_lowercase()
}

/// `--reply`'s first line: does the round trip work, and which way fails.
fn render_round_trip_head(rt: &RoundTrip, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let head = if rt.works {
        style.ok("ROUND TRIP WORKS")
    } else {
        style.bad("ROUND TRIP BROKEN")
    };
    let reply = match (rt.reply, &rt.not_traced) {
        (Some(v), _) => format!("reply {}", verdict_word(v)),
        (None, _) => "reply not traced".to_string(),
    };
    writeln!(
        out,
        "{head}  forward {}, {reply}\n",
        verdict_word(rt.forward)
    )
}

/// `--reply`: the reply's verdict block after the forward one.
fn render_reply(rt: &RoundTrip, full: bool, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    writeln!(out, "\n{}", style.bold("Reply (the way back)"))?;
    if let Some(why) = &rt.not_traced {
        writeln!(out, "  not traced: {why}")?;
    }
    if let Some(r) = &rt.trace {
        render_report(r, &Versions::default(), None, full, out, style)?;
    }
    if let Some(nat) = &rt.nat {
        writeln!(out, "\n  nat          {nat}")?;
    }
    Ok(())
}

/// What a destination given by name resolved to.
fn render_destination_name(
    named: Option<&crate::cmd::trace::destination::NamedDestination>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(n) = named else { return Ok(()) };
    writeln!(
        out,
        "  named        {} {} resolved to {}{}",
        n.kind,
        n.name,
        n.ip,
        n.port_from_service
            .map(|p| format!(", port {p} from the Service"))
            .unwrap_or_default()
    )
}

fn render_raw(runs: &[RawRun], out: &mut dyn Write) -> io::Result<()> {
    for (i, run) in runs.iter().enumerate() {
        if i == 1 {
            // upstream's separator between the logical and the OVS trace
            writeln!(out, "--------\nStart OVS Tracing\n\n")?;
        }
        writeln!(out, "+ [{}] {}", run.pod, shell_words(&run.argv))?;
        out.write_all(run.output.as_bytes())?;
        if !run.output.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// argv shown as a copy-pasteable command line (display only, never executed).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@[]".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One direction's report: the verdict block, the packet's ends, the drop,
/// then the path (compact unless `full`).
fn render_report(
    r: &TraceReport,
    versions: &Versions,
    named: Option<&crate::cmd::trace::destination::NamedDestination>,
    full: bool,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    render_verdict(r, out, style)?;
    writeln!(out)?;
    render_ends(r, versions, out)?;
    render_drop(r, out, style)?;
    if let Some(e) = &r.error {
        writeln!(out, "  {}        {e}", style.bad("error"))?;
    }
    render_destination_name(named, out)?;
    if !full {
        return view_compact::render(r, out, style);
    }
    render_logical_path(r, out, style)?;
    ovs_path(r, "OVS path (ofproto/trace)", render_segment, out, style)
}

/// The verdict line, then what qualifies it: path warnings, the cause and
/// who is responsible, the Service asked for.
fn render_verdict(r: &TraceReport, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let head = match r.verdict {
        Verdict::Delivered => style.ok("DELIVERED"),
        Verdict::Dropped => style.bad("DROPPED"),
        Verdict::Rejected => style.bad("REJECTED"),
        Verdict::Flooded => style.warn("FLOODED"),
        Verdict::Unresolved => style.warn("UNRESOLVED"),
        Verdict::Error => style.bad("ERROR"),
    };
    let body = r
        .summary
        .split_once(": ")
        .map(|(_, rest)| rest)
        .unwrap_or(&r.summary);
    writeln!(out, "{head}  {}", style.bold(body))?;
    // path health first: it says whether the rest can be trusted
    for w in &r.warnings {
        writeln!(out, "  {}      {w}", style.warn("warning"))?;
    }
    if let Some(c) = &r.cause {
        let blame = r
            .responsible
            .as_ref()
            .map(|o| {
                format!(
                    ": {} {}{}",
                    o.kind,
                    o.name,
                    o.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let cause = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        writeln!(out, "  cause        {cause}{blame}")?;
    }
    if let Some(svc) = &r.service {
        writeln!(
            out,
            "  service      Service {} (ClusterIP {}{})",
            svc.name,
            svc.address(),
            if !svc.serves_packet {
                format!(
                    "; it serves only {}: no load balancer rule matches this packet",
                    if svc.ports.is_empty() {
                        "no port".to_string()
                    } else {
                        svc.ports.join(", ")
                    }
                )
            } else if svc.vip_in_ovn {
                String::new()
            } else {
                ", VIP absent from every OVN load balancer".into()
            }
        )?;
    }
    Ok(())
}

/// Where the packet starts and where it is bound: source, destination, the
/// releases traced, the logical outport, the routing and load balancing.
fn render_ends(r: &TraceReport, versions: &Versions, out: &mut dyn Write) -> io::Result<()> {
    let s = &r.source;
    writeln!(
        out,
        "  source       {} {} on node {}: port {} on {}, {} {}",
        s.kind, s.name, s.node, s.logical_port, s.logical_switch, s.ip, s.mac
    )?;
    let d = &r.destination;
    let what = match (d.port, &d.arp) {
        (Some(p), _) => format!("{}/{p}", d.protocol),
        (None, Some(op)) => format!("arp {op}"),
        _ => d.protocol.clone(),
    };
    writeln!(
        out,
        "  destination  {} {what}, MAC {} (from {})",
        d.ip, d.mac, d.mac_from
    )?;
    if !versions.is_empty() {
        writeln!(out, "  versions     {}", versions.describe())?;
    }
    if let Some(port) = &r.logical.outport {
        let owner = r
            .logical
            .outport_owner
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        writeln!(out, "  outport      {port}{owner}")?;
    }
    if let Some(routing) = r.routing.as_ref().filter(|x| !x.is_empty()) {
        writeln!(out, "  routed by    {}", routed_by(routing))?;
    }
    if let Some(lb) = &r.lb {
        writeln!(
            out,
            "  service      load balancer {} VIP {} → backend {} (backends: {}; OVN picks one per connection, this trace follows the first)",
            lb.name,
            lb.vip,
            lb.backend.as_deref().unwrap_or("?"),
            lb.backends.join(", ")
        )?;
    }
    Ok(())
}

/// Where and why the packet was dropped: the table, the flow, the ACL.
fn render_drop(r: &TraceReport, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let Some(dr) = &r.drop else {
        return Ok(());
    };
    writeln!(
        out,
        "  {}         {} {} table {} {}{}",
        style.bad("drop"),
        dr.datapath.as_deref().unwrap_or("br-int"),
        dr.pipeline.as_deref().unwrap_or(""),
        dr.table
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into()),
        dr.stage.as_deref().unwrap_or(""),
        dr.node
            .as_ref()
            .map(|n| format!(" (OpenFlow, node {n})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "               why: {}", dr.reason)?;
    if let Some(m) = &dr.match_expr {
        writeln!(
            out,
            "               flow: {m}{}{}",
            dr.priority
                .map(|p| format!(", priority {p}"))
                .unwrap_or_default(),
            dr.flow
                .as_ref()
                .map(|f| format!(", uuid {f}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(acl) = &dr.acl {
        writeln!(
            out,
            "               ACL: {} {} priority {} {} `{}`{}",
            if acl.name.is_empty() {
                "(unnamed)"
            } else {
                &acl.name
            },
            acl.direction,
            acl.priority,
            acl.action,
            acl.match_expr,
            dr.port_group
                .as_ref()
                .map(|p| format!(" on port group {p}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `--full`: every logical stage ovn-trace passed, with its match, actions
/// and the NB object behind it.
fn render_logical_path(r: &TraceReport, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    if !r.logical.stages.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", style.bold("Logical path (ovn-trace)"))?;
        let mut last = (String::new(), String::new());
        for st in &r.logical.stages {
            let here = (st.datapath.clone(), st.pipeline.clone());
            if here != last {
                writeln!(out, "  {} {}", style.bold(&st.datapath), st.pipeline)?;
                last = here;
            }
            let expl = st
                .explanation
                .as_ref()
                .map(|e| format!("  — {}", style.dim(e)))
                .unwrap_or_default();
            writeln!(out, "    {:>2} {}{expl}", st.table, st.stage)?;
            writeln!(
                out,
                "       {} {}",
                style.dim("match"),
                if st.match_expr.is_empty() {
                    "1"
                } else {
                    &st.match_expr
                }
            )?;
            let acts = shown_actions(st);
            if !acts.is_empty() {
                writeln!(out, "       {} {}", style.dim("do"), acts.join(" "))?;
            }
            if let Some(o) = &st.object {
                writeln!(out, "       {} {o}", style.dim("from"))?;
            }
        }
        for n in &r.logical.notes {
            writeln!(out, "  note: {n}")?;
        }
    }
    Ok(())
}

fn render_segment(seg: &OvsSegment, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    writeln!(out, "  node {} {}", style.bold(&seg.node), seg.bridge)?;
    writeln!(out, "    {} {}", style.dim("flow"), seg.flow)?;
    let mut pass = 0;
    for h in &seg.hops {
        if h.pass != pass {
            pass = h.pass;
            writeln!(out, "    {}", style.dim("(after conntrack, recirculated)"))?;
        }
        // A table neither a logical flow nor this release's layout names: say so,
        // rather than leave a bare number that reads like an omission.
        let stage = h.stage.as_deref().unwrap_or("(unknown table)");
        let acts = if h.actions.is_empty() {
            String::new()
        } else {
            format!("  {}", h.actions.join(" "))
        };
        let object = h
            .object
            .as_ref()
            .map(|o| format!("  [{o}]"))
            .unwrap_or_default();
        writeln!(out, "    {:>3} {:<24}{acts}{object}", h.table, stage)?;
    }
    let exit = exit_text(seg, style);
    writeln!(out, "    → {exit}")?;
    for n in &seg.notes {
        writeln!(out, "    note: {n}")?;
    }
    Ok(())
}

/// One line for the verdict block: `route … ; policy …; NAT …`.
fn routed_by(r: &Routing) -> String {
    let mut parts = Vec::new();
    if let Some(route) = &r.route {
        parts.push(format!(
            "route {} via {}{}",
            route.prefix,
            route.nexthop,
            router_suffix(&route.router, &format!(", table {}", route.table))
        ));
    }
    if let Some(p) = &r.policy {
        let to = if p.nexthops.is_empty() {
            String::new()
        } else {
            format!(" → {}", p.nexthops.join(", "))
        };
        parts.push(format!(
            "policy {} {}{to}{}",
            p.priority,
            p.action,
            router_suffix(&p.router, "")
        ));
    }
    for n in &r.nat {
        parts.push(format!(
            "{} {} → {}{}",
            n.nat_type,
            n.logical_ip,
            n.external_ip,
            router_suffix(&n.router, "")
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quoting() {
        assert_eq!(
            shell_words(&["ovn-trace".into(), "ls".into(), "inport == \"a\"".into()]),
            "ovn-trace ls 'inport == \"a\"'"
        );
        assert_eq!(shell_words(&["it's".into()]), "'it'\\''s'");
    }

    #[test]
    fn a_table_nobody_names_reads_unknown() {
        use ko_ovn::verdict::ovs::{OvsExit, OvsHop};
        let seg = OvsSegment {
            node: "n1".into(),
            bridge: "br-int".into(),
            flow: "in_port=3".into(),
            hops: vec![OvsHop {
                pass: 0,
                table: 99,
                match_expr: "metadata=0x1".into(),
                priority: Some(100),
                cookie: None,
                stage: None,
                object: None,
                actions: vec!["drop".into()],
            }],
            exit: OvsExit::Dropped {
                pass: 0,
                table: Some(99),
                cookie: None,
                match_expr: None,
            },
            datapath_actions: Some("drop".into()),
            notes: vec![],
            ovn_version: Some("99.03.0".into()),
        };
        let mut out = Vec::new();
        render_segment(&seg, &mut out, &Style { color: false }).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" 99 (unknown table)"), "{text}");
    }
}

#[cfg(test)]
mod routed_by_tests {
    use super::*;

    #[test]
    fn route_policy_and_nat_in_one_line() {
        let r: Routing = serde_json::from_value(serde_json::json!({
            "route": {"uuid": "u1", "router": "lr1", "prefix": "0.0.0.0/0",
                      "nexthop": "172.20.0.254", "policy": "dst-ip", "table": "main"},
            "policy": {"uuid": "u2", "router": "lr1", "priority": 1000,
                       "match": "ip4", "action": "allow", "nexthops": []},
            "nat": [{"uuid": "u3", "router": "lr1", "type": "snat",
                     "logical_ip": "10.0.0.0/24", "external_ip": "172.20.0.100",
                     "stage": "lr_out_snat"}]
        }))
        .expect("a Routing");
        assert_eq!(
            routed_by(&r),
            "route 0.0.0.0/0 via 172.20.0.254 (router lr1, table main); policy 1000 allow (router lr1); snat 10.0.0.0/24 → 172.20.0.100 (router lr1)"
        );
    }
}
