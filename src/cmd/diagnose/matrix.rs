//! Running the connectivity matrix: probes exec'd in existing pods (pinger pods by
//! default). Each source runs its probes together, concurrently, in one exec (a few
//! for a very wide row, see `batch.rs`), so the matrix costs about one API round trip
//! per node; which cells are probed is `sample.rs`'s choice. Nothing is created in
//! the cluster, so an interrupted run leaves nothing behind.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;

use crate::cluster::{Cluster, PodRef};

use super::batch::{self, Job, JobOutput};
use super::checks::connectivity::{classify_ping, classify_tcp, classify_udp};
use super::model::{Matrix, MatrixStrategy, Probe, ProbeResult, Source, Target, TargetKind};
use super::probe::{
    parse_curl, parse_ping, parse_udp, ping_argv, ping_retry_argv, tcp_argv, udp_argv,
};
use super::sample::{self, Facts};

/// Execs (each a batch of probes) in flight at once.
pub const EXEC_CONCURRENCY: usize = 16;

/// The container probes run in, when the pod has it.
const PINGER_CONTAINER: &str = "pinger";

/// What to send to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Icmp(IpAddr),
    Tcp(IpAddr, u16),
    Udp(IpAddr, u16),
}

fn method(t: &Target) -> Option<Method> {
    match t.kind {
        TargetKind::Service | TargetKind::IpPort => {
            let (ip, port) = t.ip_port()?;
            Some(if t.is_udp() {
                Method::Udp(ip, port)
            } else {
                Method::Tcp(ip, port)
            })
        }
        _ => t.address.parse().ok().map(Method::Icmp),
    }
}

/// The cells to probe and the strategy that chose them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub strategy: MatrixStrategy,
    pub cells: Vec<(usize, usize)>,
}

/// Decide which cells to probe: a full mesh when asked or small, else sampled.
pub fn plan(
    sources: &[(PodRef, Source)],
    targets: &[Target],
    full_mesh: bool,
    facts: &Facts,
) -> Plan {
    let srcs: Vec<Source> = sources.iter().map(|(_, s)| s.clone()).collect();
    let strategy = sample::strategy(full_mesh, &srcs);
    Plan {
        strategy,
        cells: sample::cells(&srcs, targets, strategy, facts),
    }
}

/// One exec's worth of work: a source and the targets it probes.
type BatchOf = (usize, Vec<usize>);

/// Cells grouped by source, split so no exec runs more than `batch::MAX_PER_EXEC`.
fn batches(cells: &[(usize, usize)]) -> Vec<BatchOf> {
    let mut by_source: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &(i, j) in cells {
        by_source.entry(i).or_default().push(j);
    }
    by_source
        .into_iter()
        .flat_map(|(i, js)| {
            js.chunks(batch::MAX_PER_EXEC)
                .map(|c| (i, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Probe the planned cells. `tick` is called once per probe (progress).
pub async fn run(
    cluster: &Cluster,
    sources: Vec<(PodRef, Source)>,
    targets: Vec<Target>,
    plan: Plan,
    timeout: Duration,
    tick: &(dyn Fn() + Sync),
) -> Matrix {
    let work = batches(&plan.cells);
    let execs = work.len();
    let (sources_ref, targets_ref) = (&sources, &targets);
    let rows: Vec<Vec<Probe>> = futures::stream::iter(work)
        .map(|(i, js)| async move {
            let (pod, src) = &sources_ref[i];
            let probes = run_batch(cluster, pod, (i, src), targets_ref, &js, timeout).await;
            probes.iter().for_each(|_| tick());
            probes
        })
        .buffer_unordered(EXEC_CONCURRENCY)
        .collect()
        .await;
    let mut probes: Vec<Probe> = rows.into_iter().flatten().collect();
    probes.sort_by_key(|p| (p.from, p.to));
    Matrix {
        strategy: plan.strategy,
        execs,
        sources: sources.into_iter().map(|(_, s)| s).collect(),
        targets,
        probes,
    }
}

fn job(m: Method) -> Job {
    match m {
        Method::Icmp(ip) => Job {
            argv: ping_argv(ip),
            // one lost packet on a busy node is not an outage: three more, longer wait
            retry: Some(ping_retry_argv(ip)),
        },
        Method::Tcp(ip, port) => Job {
            argv: tcp_argv(ip, port),
            retry: None,
        },
        Method::Udp(ip, port) => Job {
            argv: udp_argv(ip, port),
            retry: None,
        },
    }
}

/// Runs one source's probes towards `js` in one exec and classifies each.
async fn run_batch(
    cluster: &Cluster,
    pod: &PodRef,
    (from, src): (usize, &Source),
    targets: &[Target],
    js: &[usize],
    timeout: Duration,
) -> Vec<Probe> {
    let methods: Vec<(usize, Option<Method>)> =
        js.iter().map(|&j| (j, method(&targets[j]))).collect();
    let jobs: Vec<Job> = methods.iter().filter_map(|(_, m)| m.map(job)).collect();
    let c = pod.container_or_default(PINGER_CONTAINER).to_string();
    let ran = if jobs.is_empty() {
        Ok(Vec::new())
    } else {
        exec_batch(cluster, pod, &c, &jobs, timeout).await
    };
    let mut outputs = match &ran {
        Ok(v) => v.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    methods
        .into_iter()
        .map(|(to, m)| {
            let (result, detail) = match (m, &ran) {
                (None, _) => (
                    ProbeResult::Error,
                    format!(
                        "{:?} is not an address kubectl-ko can probe",
                        targets[to].address
                    ),
                ),
                (Some(_), Err(e)) => (ProbeResult::Error, e.clone()),
                (Some(m), Ok(_)) => match outputs.next().flatten() {
                    Some(out) => classify(m, &out, src, &targets[to]),
                    None => (
                        ProbeResult::Error,
                        "the probe left no result (the exec was cut short)".into(),
                    ),
                },
            };
            Probe {
                from,
                to,
                result,
                detail,
            }
        })
        .collect()
}

/// One exec running `jobs`; an error when the exec itself failed or the script
/// could not run at all.
async fn exec_batch(
    cluster: &Cluster,
    pod: &PodRef,
    container: &str,
    jobs: &[Job],
    timeout: Duration,
) -> Result<Vec<Option<JobOutput>>, String> {
    let out = cluster
        .exec_capture_timeout(pod, container, &batch::argv(jobs), timeout)
        .await
        .map_err(|e| first_line(&e.to_string()))?;
    let results = batch::parse(&out.stdout, jobs.len());
    if out.exit_code != 0 && results.iter().all(Option::is_none) {
        return Err(match out.exit_code {
            126 | 127 => format!("bash is not available in {pod}"),
            n => format!(
                "the probe script exited {n} in {pod}: {}",
                first_line(&out.stderr_str())
            ),
        });
    }
    Ok(results)
}

fn classify(m: Method, out: &JobOutput, src: &Source, tgt: &Target) -> (ProbeResult, String) {
    match m {
        Method::Icmp(_) => classify_ping(
            &parse_ping(out.exit_code, &out.stdout, &out.stderr),
            src,
            tgt,
        ),
        Method::Tcp(..) => classify_tcp(&parse_curl(out.exit_code, &out.stderr), src, tgt),
        Method::Udp(..) => classify_udp(
            &parse_udp(out.exit_code, &out.stdout, &out.stderr),
            src,
            tgt,
        ),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: TargetKind, addr: &str) -> Target {
        Target {
            kind,
            label: addr.into(),
            address: addr.into(),
            node: None,
            policies: vec![],
        }
    }

    #[test]
    fn targets_map_to_methods() {
        assert_eq!(
            method(&t(TargetKind::Pod, "10.16.0.5")),
            Some(Method::Icmp("10.16.0.5".parse().unwrap()))
        );
        assert_eq!(
            method(&t(TargetKind::Service, "10.96.0.10:53")),
            Some(Method::Tcp("10.96.0.10".parse().unwrap(), 53))
        );
        assert_eq!(
            method(&t(TargetKind::IpPort, "[fd00::a]:80")),
            Some(Method::Tcp("fd00::a".parse().unwrap(), 80))
        );
        assert_eq!(method(&t(TargetKind::Node, "not-an-ip; rm")), None);
        let mut udp = t(TargetKind::IpPort, "10.96.0.10:53");
        udp.label = "udp-10.96.0.10-53".into();
        assert_eq!(
            method(&udp),
            Some(Method::Udp("10.96.0.10".parse().unwrap(), 53))
        );
    }
}
