//! `ovn-sbctl lflow-list` text (with or without `--uuid`) parsed into the
//! [`LogicalFlow`] rows of [`crate::ovsdb_rows`] (the JSON form,
//! `--format=json list Logical_Flow`, is read there and also carries
//! `external_ids`: `stage-name`, `source` and `stage-hint`).
//!
//! ```text
//! Datapath: "join" (6969b2d3-...)  Pipeline: ingress
//!   uuid=0x6fb68516, table=0 (ls_in_check_port_sec), priority=100  , match=(eth.src[40]), action=(drop;)
//! ```
//! A flow shared by several datapaths (a datapath group) is printed under
//! each of them; [`parse`] keeps one [`LogicalFlow`] per printed line.

use std::collections::BTreeMap;

use crate::ovsdb_rows::{LogicalFlow, Pipeline};

/// Parses `ovn-sbctl [--uuid] lflow-list [datapath]` text.
pub fn parse(input: &str) -> Vec<LogicalFlow> {
    let mut out = Vec::new();
    let mut dp: Option<String> = None;
    let mut pipeline: Option<Pipeline> = None;
    for line in input.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Datapath:") {
            dp = first_quoted(rest).or_else(|| rest.split_whitespace().next().map(str::to_string));
            pipeline = rest
                .split("Pipeline:")
                .nth(1)
                .and_then(|p| Pipeline::parse(p.trim()));
            continue;
        }
        if let Some(mut f) = parse_flow_line(t) {
            f.datapaths = dp.iter().cloned().collect();
            f.pipeline = pipeline;
            out.push(f);
        }
    }
    out
}

fn first_quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

/// `[uuid=0x..., ]table=N (stage), priority=P , match=(M), action=(A)`
fn parse_flow_line(t: &str) -> Option<LogicalFlow> {
    let mut rest = t;
    let mut uuid = None;
    if let Some(r) = rest.strip_prefix("uuid=") {
        let (u, r) = r.split_once(',')?;
        uuid = Some(u.trim().trim_start_matches("0x").to_string());
        rest = r.trim_start();
    }
    let r = rest.strip_prefix("table=")?;
    let num_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    let table: u32 = r[..num_end].parse().ok()?;
    let r = &r[num_end..];
    let mut stage = None;
    let r = match r.trim_start().strip_prefix('(') {
        Some(inner) => {
            let close = inner.find(')')?;
            stage = Some(inner[..close].trim().to_string());
            &inner[close + 1..]
        }
        None => r,
    };
    let p = r.find("priority=")? + "priority=".len();
    let r = &r[p..];
    let num_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    let priority: u32 = r[..num_end].parse().ok()?;
    let r = &r[num_end..];
    let m = r.find("match=(")? + "match=(".len();
    let r = &r[m..];
    let a = r.find("), action=(")?;
    let match_expr = r[..a].to_string();
    let actions = r[a + "), action=(".len()..]
        .strip_suffix(')')
        .unwrap_or(&r[a + "), action=(".len()..])
        .to_string();
    Some(LogicalFlow {
        uuid,
        datapaths: Vec::new(),
        pipeline: None,
        table,
        stage,
        priority,
        match_expr,
        actions,
        source: None,
        stage_hint: None,
        external_ids: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_line_with_uuid() {
        let f = parse(
            "Datapath: \"join\" (6969b2d3-3142-4460-9b94-8d308f4cc1bf)  Pipeline: ingress\n  uuid=0x6fb68516, table=0 (ls_in_check_port_sec), priority=100  , match=(eth.src[40]), action=(drop;)\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].uuid.as_deref(), Some("6fb68516"));
        assert_eq!(f[0].datapaths, vec!["join".to_string()]);
        assert_eq!(f[0].pipeline, Some(Pipeline::Ingress));
        assert_eq!(f[0].stage.as_deref(), Some("ls_in_check_port_sec"));
        assert_eq!((f[0].table, f[0].priority), (0, 100));
        assert_eq!(f[0].match_expr, "eth.src[40]");
        assert_eq!(f[0].actions, "drop;");
        assert_eq!(f[0].cookie(), Some(0x6fb68516));
    }
}
