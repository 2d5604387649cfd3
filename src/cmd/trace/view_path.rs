//! What the full and the compact `trace` text both draw below the verdict
//! block: a stage's actions worth showing, the OVS block's frame, and where
//! one node's OpenFlow walk left the packet.

use std::io::{self, Write};

use ko_ovn::verdict::Stage;
use ko_ovn::verdict::TraceReport;
use ko_ovn::verdict::ovs::{OvsExit, OvsSegment};

use crate::render::Style;

/// A stage's actions without the `next;` that nearly every stage ends with.
pub(super) fn shown_actions(st: &Stage) -> Vec<&str> {
    st.actions
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "next;")
        .collect()
}

/// The OVS block under a report's logical part (full and compact views): its
/// title, then each node's segment as `segment` draws it.
pub(super) fn ovs_path(
    r: &TraceReport,
    title: &str,
    segment: fn(&OvsSegment, &mut dyn Write, &Style) -> io::Result<()>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    if let Some(ovs) = &r.ovs {
        writeln!(out)?;
        writeln!(out, "{}", style.bold(title))?;
        if ovs.segments.is_empty() {
            writeln!(out, "  (no OVS trace ran; see warnings)")?;
        }
        for seg in &ovs.segments {
            segment(seg, out, style)?;
        }
    }
    Ok(())
}

/// Where one node's OpenFlow walk left the packet.
pub(super) fn exit_text(seg: &OvsSegment, style: &Style) -> String {
    match &seg.exit {
        OvsExit::Port {
            ofport,
            interface,
            logical_port,
        } => format!(
            "output to port {ofport}{}{}",
            interface
                .as_ref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default(),
            logical_port
                .as_ref()
                .map(|l| format!(", logical port {l}"))
                .unwrap_or_default()
        ),
        OvsExit::Tunnel {
            ofport,
            interface,
            remote_ip,
            remote_node,
            metadata,
        } => format!(
            "tunnel port {ofport}{} to {}{}{}",
            interface
                .as_ref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default(),
            remote_ip.as_deref().unwrap_or("?"),
            remote_node
                .as_ref()
                .map(|n| format!(" = node {n}"))
                .unwrap_or_default(),
            metadata
                .as_ref()
                .map(|m| format!(
                    ", tun_id {}{}",
                    m.tun_id,
                    m.tun_metadata0
                        .as_ref()
                        .map(|t| format!(" metadata0 {t}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
        OvsExit::Dropped { table, cookie, .. } => format!(
            "{} in table {}{}{}",
            style.bad("dropped"),
            table.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            // the stage the hop of that rule was named after
            seg.hops
                .iter()
                .rfind(|h| Some(h.table) == *table && h.cookie == *cookie)
                .and_then(|h| h.stage.as_ref())
                .map(|st| format!(" {st}"))
                .unwrap_or_default(),
            cookie
                .as_ref()
                .map(|c| format!(" (cookie {c})"))
                .unwrap_or_default()
        ),
        OvsExit::Group { group } => format!(
            "select group {group} (OVN load balancer): ofproto/trace cannot follow the hash-chosen bucket"
        ),
        OvsExit::Controller { detail } => format!("sent to ovn-controller: {detail}"),
        OvsExit::Unknown { datapath_actions } => format!(
            "datapath actions: {}",
            datapath_actions.as_deref().unwrap_or("(none)")
        ),
    }
}
