//! Running the connectivity matrix: probes exec'd in existing pods (pinger
//! pods by default), with a bound on how many run at once. Nothing is created
//! in the cluster, so an interrupted run leaves nothing behind.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;

use crate::cluster::{Cluster, PodRef};

use super::checks::connectivity::{classify_ping, classify_tcp, classify_udp};
use super::model::{Matrix, Probe, ProbeResult, Source, Target, TargetKind};
use super::probe::{
    PingOutcome, parse_curl, parse_ping, parse_udp, ping_argv, ping_retry_argv, tcp_argv, udp_argv,
};

/// Probes in flight at once (each is one exec over the API server).
pub const PROBE_CONCURRENCY: usize = 16;

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

/// Which (source, target) cells get probed: not a pod to itself, and policy
/// probe rows only towards policy-selected targets.
fn cells(sources: &[(PodRef, Source)], targets: &[Target]) -> Vec<(usize, usize)> {
    let mut jobs = Vec::new();
    for (i, (_, s)) in sources.iter().enumerate() {
        for (j, t) in targets.iter().enumerate() {
            let same_pod = t.kind == TargetKind::Pod && t.address == s.ip;
            let off_topic = s.policy_probe && t.policies.is_empty();
            if !same_pod && !off_topic {
                jobs.push((i, j));
            }
        }
    }
    jobs
}

/// How many probes [`run`] will make (for the progress bar).
pub fn cell_count(sources: &[(PodRef, Source)], targets: &[Target]) -> usize {
    cells(sources, targets).len()
}

/// Probe every target from every source. `skip(source, target)` leaves a
/// cell out (a pod to itself). `tick` is called after each probe (progress).
pub async fn run(
    cluster: &Cluster,
    sources: Vec<(PodRef, Source)>,
    targets: Vec<Target>,
    timeout: Duration,
    tick: &(dyn Fn() + Sync),
) -> Matrix {
    let jobs = cells(&sources, &targets);
    let sources_ref = &sources;
    let targets_ref = &targets;
    let probes: Vec<Probe> = futures::stream::iter(jobs)
        .map(|(i, j)| async move {
            let (pod, src) = &sources_ref[i];
            let tgt = &targets_ref[j];
            let (result, detail) = probe_one(cluster, pod, src, tgt, timeout).await;
            tick();
            Probe {
                from: i,
                to: j,
                result,
                detail,
            }
        })
        .buffer_unordered(PROBE_CONCURRENCY)
        .collect()
        .await;
    let mut probes = probes;
    probes.sort_by_key(|p| (p.from, p.to));
    Matrix {
        sources: sources.into_iter().map(|(_, s)| s).collect(),
        targets,
        probes,
    }
}

async fn probe_one(
    cluster: &Cluster,
    pod: &PodRef,
    src: &Source,
    tgt: &Target,
    timeout: Duration,
) -> (ProbeResult, String) {
    let Some(m) = method(tgt) else {
        return (
            ProbeResult::Error,
            format!("{:?} is not an address kubectl-ko can probe", tgt.address),
        );
    };
    let argv = match m {
        Method::Icmp(ip) => ping_argv(ip),
        Method::Tcp(ip, port) => tcp_argv(ip, port),
        Method::Udp(ip, port) => udp_argv(ip, port),
    };
    let c = pod.container_or_default(PINGER_CONTAINER).to_string();
    match cluster.exec_capture_timeout(pod, &c, &argv, timeout).await {
        Err(e) => (ProbeResult::Error, first_line(&e.to_string())),
        Ok(out) => match m {
            Method::Icmp(ip) => {
                let mut outcome = parse_ping(out.exit_code, &out.stdout_str(), &out.stderr_str());
                if matches!(outcome, PingOutcome::NoReply { .. })
                    && let Ok(again) = cluster
                        .exec_capture_timeout(pod, &c, &ping_retry_argv(ip), timeout)
                        .await
                {
                    outcome = parse_ping(again.exit_code, &again.stdout_str(), &again.stderr_str());
                }
                classify_ping(&outcome, src, tgt)
            }
            Method::Tcp(..) => {
                classify_tcp(&parse_curl(out.exit_code, &out.stderr_str()), src, tgt)
            }
            Method::Udp(..) => classify_udp(
                &parse_udp(out.exit_code, &out.stdout_str(), &out.stderr_str()),
                src,
                tgt,
            ),
        },
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
