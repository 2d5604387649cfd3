//! Compact `trace` text (the default): after the verdict block only what
//! decided the packet's fate — each logical stage that dropped, rejected,
//! load-balanced, routed, NATed, changed the outport or hit an ACL /
//! port-security rule — with a count of the stages passed silently, then the
//! OVS hops (node → tunnel → node, final port). `--full` shows every stage and
//! OpenFlow table; JSON always carries everything.

use std::io::{self, Write};

use ko_ovn::verdict::Stage;
use ko_ovn::verdict::TraceReport;
use ko_ovn::verdict::ovs::OvsSegment;

use super::view_path::{exit_text, ovs_path, shown_actions};
use crate::render::Style;

/// Why a stage decided something, or None when the packet passed it silently.
pub fn decision(st: &Stage) -> Option<&'static str> {
    let acts = st.actions.join(" ");
    let has = |w: &str| acts.contains(w);
    let word = |w: &str| {
        st.actions
            .iter()
            .any(|a| a.trim_end_matches(';').trim() == w)
    };
    if word("drop") {
        return Some("dropped");
    }
    if has("reject") || has("tcp_reset") || has("icmp4 {") || has("icmp6 {") {
        return Some("rejected");
    }
    if has("ct_lb") && (has("backends=") || has("reg1 =") || has("xxreg1 =")) {
        return Some("load-balanced");
    }
    if has("ct_dnat(") || has("ct_snat(") || has("ct_dnat_in_czone(") || has("ct_snat_in_czone(") {
        return Some("NATed");
    }
    let is_routing = st.stage.ends_with("ip_routing") || st.stage.ends_with("_policy");
    if is_routing && (has("outport =") || st.object.is_some()) {
        return Some("routed");
    }
    if has("outport =") {
        return Some("outport set");
    }
    if (st.stage.contains("acl") || st.stage.contains("port_sec")) && st.object.is_some() {
        return Some("rule hit");
    }
    None
}

/// The decisive stages and the compact OVS path.
pub fn render(r: &TraceReport, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let stages = &r.logical.stages;
    if !stages.is_empty() {
        let decisive: Vec<(&Stage, &str)> = stages
            .iter()
            .filter_map(|s| decision(s).map(|d| (s, d)))
            .collect();
        writeln!(out)?;
        writeln!(
            out,
            "{}  {} decisive of {} stages; {} passed silently (--full shows every stage)",
            style.bold("Logical path"),
            decisive.len(),
            stages.len(),
            stages.len() - decisive.len()
        )?;
        for (st, why) in decisive {
            render_stage(st, why, out, style)?;
        }
        // ovn-trace's own last line; upstream's e2e and runbooks read it
        if r.logical.flooded_to.is_empty()
            && let Some(port) = &r.logical.outport
        {
            writeln!(out, "  output to \"{port}\"")?;
        }
    }
    ovs_path(r, "OVS path", render_hop, out, style)
}

fn render_stage(st: &Stage, why: &str, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let acts = shown_actions(st);
    let what = match &st.object {
        Some(o) => o.clone(),
        None => shorten(&acts.join(" "), 90),
    };
    writeln!(
        out,
        "  {} {} {:>2} {:<22} {:<13} {what}",
        st.datapath,
        st.pipeline,
        st.table,
        st.stage,
        style.dim(why)
    )
}

fn render_hop(seg: &OvsSegment, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "  node {} ({} tables) → {}",
        style.bold(&seg.node),
        seg.hops.len(),
        exit_text(seg, style)
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, actions: &[&str], object: Option<&str>) -> Stage {
        Stage {
            datapath: "ls".into(),
            pipeline: "ingress".into(),
            table: 1,
            stage: name.into(),
            explanation: None,
            match_expr: "1".into(),
            priority: None,
            flow: None,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            object: object.map(String::from),
        }
    }

    #[test]
    fn decisive_stages_are_told_apart_from_silent_ones() {
        assert_eq!(
            decision(&stage("ls_in_acl", &["drop;"], None)),
            Some("dropped")
        );
        assert_eq!(
            decision(&stage(
                "ls_in_pre_stateful",
                &["reg1 = 10.96.0.10;", "ct_lb_mark;"],
                None
            )),
            Some("load-balanced")
        );
        // conntrack on the way out is not a load-balancing decision
        assert_eq!(
            decision(&stage("ls_out_pre_stateful", &["ct_lb_mark;"], None)),
            None
        );
        assert_eq!(
            decision(&stage(
                "lr_in_ip_routing",
                &["ip.ttl--;", "outport = \"x\";"],
                None
            )),
            Some("routed")
        );
        assert_eq!(
            decision(&stage(
                "lr_in_policy",
                &["next;"],
                Some("router policy 31000 allow")
            )),
            Some("routed")
        );
        assert_eq!(
            decision(&stage(
                "ls_in_l2_lkup",
                &["outport = \"a\";", "output;"],
                None
            )),
            Some("outport set")
        );
        assert_eq!(
            decision(&stage("ls_out_acl", &["next;"], Some("ACL np/x"))),
            Some("rule hit")
        );
        assert_eq!(
            decision(&stage("lr_in_dnat", &["ct_dnat(10.16.0.7);"], None)),
            Some("NATed")
        );
        assert_eq!(
            decision(&stage("ls_in_pre_acl", &["reg0[0] = 1;", "next;"], None)),
            None
        );
        assert_eq!(
            decision(&stage(
                "ls_in_check_port_sec",
                &["reg0[15] = check_in_port_sec();", "next;"],
                None
            )),
            None
        );
    }
}
