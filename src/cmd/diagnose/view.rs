//! `diagnose` output: a grouped text report with failures first (colour only
//! when allowed), JSON/YAML via serde.

use std::io::{self, Write};

use super::model::{Matrix, MatrixStrategy, PingerStrategy, ProbeResult, Report};
use crate::check::{Check, Status};

use crate::render::{Render, Style};

impl Render for Report {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        let verdict = if self.healthy {
            style.ok("HEALTHY")
        } else {
            style.bad("UNHEALTHY")
        };
        writeln!(
            out,
            "diagnose {}: {verdict} — {} failed, {} warnings, {} passed ({:.1}s)",
            self.target,
            self.summary.fail,
            self.summary.warn,
            self.summary.pass,
            self.elapsed_ms as f64 / 1000.0
        )?;
        for (status, title) in [
            (Status::Fail, "Failures"),
            (Status::Warn, "Warnings"),
            (Status::Pass, "Passed"),
        ] {
            let group: Vec<&Check> = self.checks.iter().filter(|c| c.status == status).collect();
            if group.is_empty() {
                continue;
            }
            writeln!(out)?;
            writeln!(out, "{}", style.bold(&format!("{title} ({})", group.len())))?;
            for c in group {
                let tag = match c.status {
                    Status::Fail => style.bad("FAIL"),
                    Status::Warn => style.warn("WARN"),
                    Status::Pass => style.ok("PASS"),
                };
                writeln!(
                    out,
                    "  {tag} {:<20} {}",
                    c.name,
                    style.dim(&c.scope.to_string())
                )?;
                writeln!(out, "       {}", c.message)?;
                if !c.hint.is_empty() && c.status != Status::Pass {
                    writeln!(out, "       {} {}", style.dim("hint:"), c.hint)?;
                }
            }
        }
        if let Some(m) = &self.connectivity {
            writeln!(out)?;
            render_matrix(m, out, style)?;
        }
        if let Some(p) = self.pinger_strategy {
            writeln!(out, "  {}", pinger_line(p))?;
        }
        // a passing run is one PASS line above; only a failing run's log helps
        // on screen (all logs are in -o json|yaml)
        for run in self
            .pinger
            .iter()
            .filter(|r| r.exit_code != Some(0) || !r.problems.is_empty())
        {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                style.bold(&format!(
                    "kube-ovn-pinger --mode=job in {} ({})",
                    run.pod, run.node
                ))
            )?;
            for l in run.output.lines() {
                writeln!(out, "  {l}")?;
            }
        }
        Ok(())
    }

    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

fn cell(r: Option<ProbeResult>, style: &Style) -> (String, usize) {
    let (s, painted) = match r {
        None => ("-", style.dim("-")),
        Some(ProbeResult::Ok) => ("ok", style.ok("ok")),
        Some(ProbeResult::BlockedByPolicy) => ("policy", style.warn("policy")),
        Some(ProbeResult::Unreachable) => ("FAIL", style.bad("FAIL")),
        Some(ProbeResult::Error) => ("error", style.bad("error")),
        Some(ProbeResult::OpenOrFiltered) => ("open|f", style.warn("open|f")),
    };
    (painted, s.len())
}

/// Which cells were probed and what it cost, e.g. "strategy: sampled, ...".
fn strategy_line(m: &Matrix) -> String {
    let how = match m.strategy {
        MatrixStrategy::FullMesh => "full mesh (every source to every target)".to_string(),
        MatrixStrategy::Sampled { peers } => format!(
            "sampled: each node probes {peers} peer pods and {peers} peer nodes (every node and subnet covered) plus the control plane and shared targets; --full-mesh probes every cell"
        ),
    };
    format!(
        "strategy: {how}; {} probes in {} execs",
        m.probes.len(),
        m.execs
    )
}

/// Where upstream's pinger job ran, e.g. "kube-ovn-pinger --mode=job: from 4 of 32 ...".
fn pinger_line(p: PingerStrategy) -> String {
    match p {
        PingerStrategy::Every { pods } => {
            format!("kube-ovn-pinger --mode=job: from every pinger pod ({pods})")
        }
        PingerStrategy::Troubled { ran, of } => format!(
            "kube-ovn-pinger --mode=job: from {ran} of {of} pinger pods, on the nodes whose matrix row failed (the matrix is sampled; --full-mesh runs it from every one)"
        ),
        PingerStrategy::Skipped { of } => format!(
            "kube-ovn-pinger --mode=job: not run (the matrix is sampled and no row failed; each run pings every pinger pod and node one after another, so it grows with the cluster); --full-mesh runs it from all {of} pinger pods"
        ),
    }
}

/// Sources as rows, targets as numbered columns with a legend below.
fn render_matrix(m: &Matrix, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        style.bold("Connectivity (rows: from the pinger pod on each node, or from a workload pod next to a NetworkPolicy target; columns: targets)")
    )?;
    writeln!(out, "  {}", strategy_line(m))?;
    let row_label = |s: &super::model::Source| {
        if s.policy_probe {
            s.pod.clone()
        } else {
            s.node.clone()
        }
    };
    let row_w = m
        .sources
        .iter()
        .map(|s| row_label(s).len())
        .max()
        .unwrap_or(4)
        .max(4);
    let col_w = 7;
    write!(out, "  {:<row_w$}", "from")?;
    for j in 0..m.targets.len() {
        write!(out, " {:>col_w$}", format!("[{}]", j + 1))?;
    }
    writeln!(out)?;
    for (i, s) in m.sources.iter().enumerate() {
        write!(out, "  {:<row_w$}", row_label(s))?;
        for j in 0..m.targets.len() {
            let (text, width) = cell(m.cell(i, j).map(|p| p.result), style);
            write!(out, " {}{text}", " ".repeat(col_w.saturating_sub(width)))?;
        }
        writeln!(out)?;
    }
    for (j, t) in m.targets.iter().enumerate() {
        let pol = if t.policies.is_empty() {
            String::new()
        } else {
            format!("  (NetworkPolicy {})", t.policies.join(", "))
        };
        writeln!(
            out,
            "  [{}] {:<8} {} {}{pol}",
            j + 1,
            format!("{:?}", t.kind).to_lowercase(),
            t.label,
            style.dim(&t.address)
        )?;
    }
    writeln!(
        out,
        "  {}",
        style.dim("ok = answered, policy = no answer explained by a NetworkPolicy, FAIL = no answer, error = probe could not run, open|f = UDP open|filtered (no reply, no ICMP error), - = not probed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Scope;
    use crate::cmd::diagnose::model::{Probe, Source, Target, TargetKind};

    fn report() -> Report {
        Report::new(
            "all".into(),
            vec![
                Check::pass("crds", Scope::Cluster, "all CRDs"),
                Check::fail(
                    "chassis",
                    Scope::node("n2"),
                    "node n2 has no Chassis",
                    "restart ovs-ovn",
                ),
            ],
            Some(Matrix {
                strategy: Default::default(),
                execs: 0,
                sources: vec![Source {
                    node: "n1".into(),
                    pod: "kube-system/p1".into(),
                    ip: "10.16.0.2".into(),
                    policies: vec![],
                    policy_probe: false,
                }],
                targets: vec![Target {
                    kind: TargetKind::Pod,
                    label: "default/web".into(),
                    address: "10.16.0.9".into(),
                    node: Some("n2".into()),
                    policies: vec!["default/deny".into()],
                }],
                probes: vec![Probe {
                    from: 0,
                    to: 0,
                    result: ProbeResult::BlockedByPolicy,
                    detail: String::new(),
                }],
            }),
            vec![],
            Some(PingerStrategy::Troubled { ran: 2, of: 32 }),
            1200,
        )
    }

    #[test]
    fn text_puts_failures_first_without_colour() {
        let mut buf = Vec::new();
        report()
            .render_text(&mut buf, &Style { color: false })
            .unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(s.starts_with("diagnose all: UNHEALTHY — 1 failed, 0 warnings, 1 passed"));
        let fail = s.find("FAIL chassis").unwrap();
        let pass = s.find("PASS crds").unwrap();
        assert!(fail < pass);
        assert!(s.contains("hint: restart ovs-ovn"));
        assert!(s.contains("policy") && s.contains("NetworkPolicy default/deny"));
        assert!(s.contains("kube-ovn-pinger --mode=job: from 2 of 32 pinger pods, on the nodes whose matrix row failed"));
        assert!(!s.contains('\u{1b}'));
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = report().to_value().unwrap();
        assert_eq!(v["healthy"], false);
        let c = &v["checks"][0];
        for k in ["name", "scope", "status", "message", "hint"] {
            assert!(c.get(k).is_some(), "missing {k}");
        }
        assert_eq!(c["scope"], "node/n2");
        assert_eq!(
            v["connectivity"]["probes"][0]["result"],
            "blocked-by-policy"
        );
        assert_eq!(v["pinger_strategy"]["kind"], "troubled");
        assert_eq!(v["pinger_strategy"]["ran"], 2);
        assert_eq!(v["pinger_strategy"]["of"], 32);
    }
}
