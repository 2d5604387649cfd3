//! Reading `kube-ovn-pinger --mode=job` output. Upstream's job exits 0 even
//! when pings are lost (unless `--exit-code` is given, which upstream's own
//! diagnose does not pass), so the verdict comes from its klog lines: error
//! and fatal lines, "loss count N" with N > 0, and "... connectivity ... failed".
//! Fixtures: `tests/fixtures/diagnose/pinger/` (the sandbox's stand-in, which
//! logs upstream's messages; see COMMANDS.tsv).
//! [`choose`] picks the pinger pods, [`stage`] runs the job in them after the
//! matrix, [`checks`] judges the runs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;

use super::model::{Matrix, MatrixStrategy, PingerRun, PingerStrategy, ProbeResult, Source};
use super::{Asked, first_line};
use crate::check::{Check, Scope};
use crate::cluster::{Cluster, PodRef};

/// Upstream pinger jobs at once. Each job pings every pinger pod and node in
/// turn, so a job's own load grows with the cluster: many at once on a large
/// cluster made the nodes' datapaths drop the very pings being judged.
const PINGER_CONCURRENCY: usize = 4;

/// Most pinger pods that run the job when the matrix is sampled.
pub const SAMPLED_PINGER_JOBS: usize = 4;

/// The pinger pods (indices into `sources`) that run upstream's job, and the
/// strategy the report names. A full-mesh matrix runs it in every pinger pod,
/// as upstream does. A sampled one (a cluster past the full-mesh size) runs
/// it only from the nodes whose own matrix row had a failure, at most
/// [`SAMPLED_PINGER_JOBS`]: upstream's job pings every pinger pod and every
/// node one after another, so one run grows with the cluster (~0.2 s a target:
/// 14 s at 32 nodes, minutes at hundreds), and the sampled matrix has already
/// probed those targets. Where a row failed, upstream's own view from that
/// node is worth its time; on a healthy large cluster it is not run
/// (`Skipped`), and `--full-mesh` runs it everywhere.
pub(super) fn choose(
    sources: &[(PodRef, Source)],
    strategy: MatrixStrategy,
    troubled: &BTreeSet<String>,
) -> (Vec<usize>, PingerStrategy) {
    let n = sources.len();
    if matches!(strategy, MatrixStrategy::FullMesh) {
        return ((0..n).collect(), PingerStrategy::Every { pods: n });
    }
    let mut picked: Vec<usize> = (0..n)
        .filter(|&i| troubled.contains(&sources[i].1.node))
        .collect();
    picked.sort_by(|&a, &b| sources[a].1.node.cmp(&sources[b].1.node));
    picked.truncate(SAMPLED_PINGER_JOBS);
    picked.sort_unstable();
    let strategy = if picked.is_empty() {
        PingerStrategy::Skipped { of: n }
    } else {
        PingerStrategy::Troubled {
            ran: picked.len(),
            of: n,
        }
    };
    (picked, strategy)
}

/// Nodes whose pinger row of the matrix has a failed probe (not a policy's
/// denial, not open|filtered).
pub(super) fn troubled_nodes(m: &Matrix) -> BTreeSet<String> {
    m.probes
        .iter()
        .filter(|p| matches!(p.result, ProbeResult::Unreachable | ProbeResult::Error))
        .filter_map(|p| m.sources.get(p.from))
        .filter(|s| !s.policy_probe)
        .map(|s| s.node.clone())
        .collect()
}

/// klog's header `Lmmdd hh:mm:ss.uuuuuu threadid file:line] ` -> (severity, message).
fn klog(line: &str) -> Option<(char, &str)> {
    let sev = line.chars().next()?;
    if !matches!(sev, 'I' | 'W' | 'E' | 'F') || !line[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let (_, msg) = line.split_once("] ")?;
    Some((sev, msg.trim()))
}

fn lost(msg: &str) -> bool {
    msg.split_once("loss count ")
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<u32>().ok())
        })
        .is_some_and(|n| n > 0)
}

/// The problems one run reported, each as the pinger's own message.
pub fn problems(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let (sev, msg) = klog(l.trim_end())?;
            let failed = matches!(sev, 'E' | 'F')
                || lost(msg)
                || (msg.contains("connectivity to") && msg.ends_with("failed"));
            failed.then(|| msg.to_string())
        })
        .collect()
}

/// One check per pinger run: its log decides, not only its exit code.
pub(super) fn checks(runs: &[PingerRun]) -> Vec<Check> {
    let mut checks = Vec::new();
    for run in runs {
        checks.push(match run.exit_code {
            Some(0) if run.problems.is_empty() => Check::pass(
                "pinger-job",
                Scope::node(&run.node),
                format!("kube-ovn-pinger --mode=job in {} succeeded", run.pod),
            ),
            // upstream's job exits 0 after lost pings: its log is the verdict
            Some(0) => Check::fail(
                "pinger-job",
                Scope::node(&run.node),
                format!(
                    "kube-ovn-pinger --mode=job in {} reported {} problem(s): {}",
                    run.pod,
                    run.problems.len(),
                    run.problems.join("; ")
                ),
                format!(
                    "the connectivity matrix shows the same paths from kubectl-ko's own probes; trace one: `kubectl ko trace {} <dst-ip> icmp`",
                    run.pod
                ),
            ),
            // cut at --timeout: what it reported so far decides
            None if !run.problems.is_empty() => Check::fail(
                "pinger-job",
                Scope::node(&run.node),
                format!(
                    "kube-ovn-pinger --mode=job in {} did not finish ({}) and had reported {} problem(s): {}",
                    run.pod,
                    run.unfinished.as_deref().unwrap_or("no exit status"),
                    run.problems.len(),
                    run.problems.join("; ")
                ),
                "upstream's job waits 30 s for each node that does not answer; the node and connectivity checks show which",
            ),
            None => Check::warn(
                "pinger-job",
                Scope::node(&run.node),
                format!(
                    "kube-ovn-pinger --mode=job in {} did not finish ({}); no problem reported before that",
                    run.pod,
                    run.unfinished.as_deref().unwrap_or("no exit status"),
                ),
                "it pings every pinger pod and node in turn; raise --timeout to let it finish",
            ),
            code => Check::fail(
                "pinger-job",
                Scope::node(&run.node),
                format!(
                    "kube-ovn-pinger --mode=job in {} failed{}: {}",
                    run.pod,
                    code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
                    last_line(&run.output)
                ),
                "its full output is in the report's pinger section (-o yaml)",
            ),
        });
    }
    checks
}

/// Stage "pinger": upstream's `kube-ovn-pinger --mode=job` in `sources` (see
/// [`choose`]), where the binary exists in the pinger pods. Pods without it
/// (custom images) are skipped.
pub(super) async fn stage(
    cluster: &Cluster,
    sources: &[(PodRef, Source)],
    what: &Asked,
    external: Option<IpAddr>,
    timeout: Duration,
) -> Vec<PingerRun> {
    let mut argv: Vec<String> = vec!["/kube-ovn/kube-ovn-pinger".into(), "--mode=job".into()];
    if let Some(ext) = external {
        argv.push(format!("--external-address={ext}"));
    }
    if let Asked::IpPorts(list) = what {
        argv.push(format!(
            "--target-ip-ports={}",
            list.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    let argv = &argv;
    // Upstream's job waits 30 s for each node that does not answer, one after
    // the other: it gets the per-call --timeout, not more, so one dead node
    // does not hold the whole report; what it logged until then is kept.
    let futs = sources.iter().map(|(pod, src)| async move {
        let c = pod.container_or_default("pinger").to_string();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = cluster
            .exec_stream(pod, &c, argv, &mut out, &mut err, Some(timeout))
            .await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
        match r {
            Ok(code) => {
                // only the binary's own absence means "no pinger here"; the
                // pinger's log may well say "not found" about something else
                let missing = code == 126
                    || code == 127
                    || (code != 0
                        && text.contains("kube-ovn-pinger")
                        && (text.contains("No such file") || text.contains("not found")));
                (!missing).then(|| PingerRun {
                    pod: pod.to_string(),
                    node: src.node.clone(),
                    exit_code: Some(code),
                    problems: problems(&text),
                    output: tail(&text, 40),
                    unfinished: None,
                })
            }
            Err(e) => Some(PingerRun {
                pod: pod.to_string(),
                node: src.node.clone(),
                exit_code: None,
                problems: problems(&text),
                output: tail(&format!("{text}\n{e}"), 40),
                unfinished: Some(match &e {
                    crate::cluster::Error::Timeout { after, .. } => {
                        format!("cut after {}s, the --timeout", after.as_secs())
                    }
                    other => first_line(&other.to_string()).to_string(),
                }),
            }),
        }
    });
    let runs: Vec<Option<PingerRun>> = futures::stream::iter(futs)
        .buffered(PINGER_CONCURRENCY)
        .collect()
        .await;
    runs.into_iter().flatten().collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::diagnose::model::Probe;

    /// Pinger pods on nodes n00..n{count-1}, listed in reverse to show the
    /// choice does not depend on the input order.
    fn pingers(count: usize) -> Vec<(PodRef, Source)> {
        (0..count)
            .rev()
            .map(|i| {
                let node = format!("n{i:02}");
                let pod = PodRef {
                    namespace: "kube-system".into(),
                    name: format!("pinger-{node}"),
                    node: Some(node.clone()),
                    ip: Some(format!("10.16.0.{}", i + 2)),
                    containers: vec!["pinger".into()],
                };
                let src = Source {
                    node,
                    pod: pod.to_string(),
                    ip: format!("10.16.0.{}", i + 2),
                    policies: vec![],
                    policy_probe: false,
                };
                (pod, src)
            })
            .collect()
    }

    fn nodes(of: &[(PodRef, Source)], chosen: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = chosen.iter().map(|&i| of[i].1.node.clone()).collect();
        v.sort();
        v
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const SAMPLED: MatrixStrategy = MatrixStrategy::Sampled { peers: 8 };

    #[test]
    fn a_full_mesh_runs_the_job_everywhere() {
        let p = pingers(12);
        let (all, s) = choose(&p, MatrixStrategy::FullMesh, &set(&["n03"]));
        assert_eq!(all, (0..12).collect::<Vec<_>>());
        assert_eq!(s, PingerStrategy::Every { pods: 12 });
    }

    #[test]
    fn a_healthy_sampled_matrix_skips_the_job() {
        for count in [2, 32] {
            let p = pingers(count);
            let (chosen, s) = choose(&p, SAMPLED, &set(&[]));
            assert!(chosen.is_empty(), "{chosen:?}");
            assert_eq!(s, PingerStrategy::Skipped { of: count });
        }
    }

    #[test]
    fn a_sampled_matrix_runs_the_job_from_troubled_nodes_only() {
        let p = pingers(32);
        let (chosen, s) = choose(&p, SAMPLED, &set(&["n30", "n05", "gone"]));
        assert_eq!(nodes(&p, &chosen), ["n05", "n30"]);
        assert_eq!(s, PingerStrategy::Troubled { ran: 2, of: 32 });
        // more troubled nodes than runs: the bound holds, in node-name order
        let many: BTreeSet<String> = (0..10).map(|i| format!("n{:02}", i * 3)).collect();
        let (chosen, s) = choose(&p, SAMPLED, &many);
        assert_eq!(nodes(&p, &chosen), ["n00", "n03", "n06", "n09"]);
        assert_eq!(s, PingerStrategy::Troubled { ran: 4, of: 32 });
    }

    #[test]
    fn troubled_nodes_are_the_rows_with_a_hard_failure() {
        let p = pingers(3);
        let mut sources: Vec<Source> = p.into_iter().map(|(_, s)| s).collect();
        sources[1].policy_probe = true;
        let probe = |from, result| Probe {
            from,
            to: 0,
            result,
            detail: String::new(),
        };
        let m = Matrix {
            sources,
            probes: vec![
                probe(0, ProbeResult::Unreachable),
                // a policy probe's failure says nothing about its node
                probe(1, ProbeResult::Error),
                probe(2, ProbeResult::BlockedByPolicy),
                probe(2, ProbeResult::OpenOrFiltered),
            ],
            ..Matrix::default()
        };
        assert_eq!(troubled_nodes(&m), set(&["n02"]));
    }

    fn fx(name: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/pinger/{name}"))
    }

    #[test]
    fn a_clean_run_has_no_problems() {
        let out = fx("job-ok.txt");
        assert!(out.contains("ping pod:"));
        assert_eq!(problems(&out), Vec::<String>::new());
    }

    #[test]
    fn lost_pings_and_failed_connects_are_problems() {
        let p = problems(&fx("job-failures.txt"));
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("TCP connectivity to targetIPPort 172.18.0.2:1 failed"));
        assert!(p[1].contains("172.18.0.250") && p[1].contains("loss count 3"));
    }

    #[test]
    fn error_lines_count_and_other_text_does_not() {
        let out = "E1125 10:00:00.000001       1 ping.go:1] failed to list nodes, boom\n\
                   I1125 10:00:00.000002       1 ping.go:2] ping pod: a 10.0.0.1, count: 3, loss count 0, average rtt 1.00ms\n\
                   Error from server: not klog\n";
        assert_eq!(problems(out), ["failed to list nodes, boom"]);
        // none of these is a klog line: no panic, and no problem read from them
        for junk in ["", "\u{0}", "E", "I] x", "Ex] y", "E1 no bracket"] {
            assert_eq!(problems(junk), Vec::<String>::new(), "{junk:?}");
        }
    }
}
