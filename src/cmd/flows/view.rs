//! Text views of `kubectl ko flows`: the one-shot summary and the live frame
//! (redrawn in place on a terminal).

use std::io::{self, Write};

use crate::cli::FlowsArgs;
use crate::cmd::flows::Watched;
use crate::cmd::flows::report::{DropRow, FlowRow, FlowsReport, Interval};
use crate::render::{Render, Style};

/// How many rule rows the text views print at most.
const MAX_ROWS: usize = 40;

fn owner_text(o: Option<&ko_ovn::flow_owner::Owner>) -> String {
    match o {
        Some(o) => {
            let pod = o
                .pod
                .as_ref()
                .map(|p| format!(" (pod {p})"))
                .unwrap_or_default();
            let svc = o
                .service
                .as_ref()
                .map(|s| format!(" (Service {s})"))
                .unwrap_or_default();
            format!("{} {}{pod}{svc}", o.kind, o.name)
        }
        None => "-".into(),
    }
}

fn header(w: &Watched) -> String {
    format!(
        "{} on {}: switch {} (key {}), port {} (key {}), OVS {} (ofport {})",
        w.pod,
        w.node,
        w.logical_switch,
        w.datapath_key,
        w.logical_port,
        w.port_key,
        w.interface,
        w.ofport
    )
}

fn drop_lines(out: &mut dyn Write, drops: &[DropRow], style: &Style) -> io::Result<()> {
    for d in drops {
        let shared = if d.shared { " [shared counter]" } else { "" };
        writeln!(
            out,
            "  {} {:>6} pkts {:>8.1}/s  {} (table {}, cookie {}){shared}",
            style.bad("DROP"),
            d.packets,
            d.rate_pps,
            d.stage.as_deref().unwrap_or("physical"),
            d.table,
            d.cookie
        )?;
        writeln!(out, "       {}", d.reason)?;
        if let Some(rule) = d.owner.as_ref().and_then(|o| o.rule.as_ref()) {
            writeln!(out, "       rule: {rule}")?;
        }
        if let Some(how) = &d.inferred {
            writeln!(out, "       {how}")?;
        }
    }
    Ok(())
}

fn flow_lines(out: &mut dyn Write, rows: &[FlowRow], style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "  {:>8} {:>9} {:>10}  {:<5} {:<24} {:<40} EXPLANATION",
        "PKTS", "PPS", "BYTES/S", "TABLE", "STAGE", "OWNER"
    )?;
    for r in rows.iter().take(MAX_ROWS) {
        let mut stage = r.stage.clone().unwrap_or_else(|| "physical".into());
        if r.shared {
            stage.push('*');
        }
        let line = format!(
            "  {:>8} {:>9.1} {:>10.0}  {:<5} {:<24} {:<40} {}{}",
            r.packets,
            r.rate_pps,
            r.rate_bps,
            r.table,
            stage,
            owner_text(r.owner.as_ref()),
            r.explanation,
            if r.flood { " [flood]" } else { "" }
        );
        writeln!(out, "{}", if r.drop { style.bad(&line) } else { line })?;
    }
    if rows.len() > MAX_ROWS {
        writeln!(
            out,
            "  ... {} more (-o json lists all)",
            rows.len() - MAX_ROWS
        )?;
    }
    Ok(())
}

impl Render for FlowsReport {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        writeln!(out, "{}", style.bold(&header(&self.target)))?;
        for p in &self.peers {
            writeln!(out, "peer {}", header(p))?;
        }
        if !self.routers.is_empty() {
            writeln!(out, "routers watched: {}", self.routers.join(", "))?;
        }
        writeln!(
            out,
            "{:.1}s watched on {} ({} interval(s) of {:.1}s)\n",
            self.duration_s,
            self.nodes.join(", "),
            self.cost.dumps / self.nodes.len().max(1) as u64,
            self.interval_s
        )?;
        if self.drops.is_empty() {
            writeln!(out, "{}", style.ok("no drop grew"))?;
        } else {
            writeln!(out, "{}", style.bad("GROWING DROPS"))?;
            drop_lines(out, &self.drops, style)?;
        }
        writeln!(out)?;
        if self.flows.is_empty() {
            writeln!(
                out,
                "no rule of this pod moved: no packet from or to it was seen"
            )?;
        } else {
            writeln!(
                out,
                "RULES THAT MOVED (whole run; * = counter shared with other pods)"
            )?;
            flow_lines(out, &self.flows, style)?;
        }
        for e in &self.expect {
            let status = if e.hit {
                style.ok("hit")
            } else {
                style.bad("NOT HIT")
            };
            writeln!(
                out,
                "\nexpect {}: {status} ({} logical flow(s), {} OpenFlow rule(s)): {}",
                e.what,
                e.lflows.len(),
                e.openflow_rules,
                e.note
            )?;
        }
        for w in &self.warnings {
            writeln!(out, "{} {w}", style.warn("warning:"))?;
        }
        Ok(())
    }

    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// The live view's terminal state.
pub struct LiveView {
    style: Style,
    frames: u64,
}

impl LiveView {
    pub fn new(style: Style) -> Self {
        LiveView { style, frames: 0 }
    }

    /// Redraws the screen: cursor home, clear, frame.
    pub fn show(&mut self, frame: &str) {
        let mut out = io::stdout().lock();
        let _ = write!(out, "\x1b[H\x1b[2J{frame}");
        let _ = out.flush();
        self.frames += 1;
    }

    /// Leaves the last frame on screen; the summary follows it.
    pub fn end(&mut self) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "\n--- summary ---");
        let _ = out.flush();
    }
}

/// One live frame: the last interval, drops first.
pub fn live_frame(v: &LiveView, w: &Watched, i: &Interval, args: &FlowsArgs) -> String {
    let mut buf = Vec::new();
    let style = &v.style;
    let _ = writeln!(buf, "{}", style.bold(&header(w)));
    let _ = writeln!(
        buf,
        "interval {:.1}s at {:.0}s (every {:?}; Ctrl-C ends with a summary){}\n",
        i.elapsed_s,
        i.at_s,
        args.interval,
        if i.resets > 0 {
            format!(", {} rule(s) re-installed", i.resets)
        } else {
            String::new()
        }
    );
    if !i.drops.is_empty() {
        let _ = writeln!(buf, "{}", style.bad("GROWING DROPS"));
        let _ = drop_lines(&mut buf, &i.drops, style);
        let _ = writeln!(buf);
    }
    if i.flows.is_empty() {
        let _ = writeln!(buf, "nothing moved in this interval");
    } else {
        let _ = flow_lines(&mut buf, &i.flows, style);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
