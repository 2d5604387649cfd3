//! What `diagnose` reports: named checks (the shared model in `crate::check`)
//! plus the connectivity matrix and the upstream pinger runs.
//! This is the stable `-o json|yaml` schema.

use serde::Serialize;

use crate::check::{Check, Status};

/// Result of one probe in the connectivity matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeResult {
    /// Answered.
    Ok,
    /// No answer, and nothing explains it.
    Unreachable,
    /// No answer, and a NetworkPolicy on the target (or source) explains it.
    BlockedByPolicy,
    /// The probe itself could not run (exec failed, tool missing, timeout).
    Error,
    /// UDP only: no reply and no ICMP error. A listener that ignores the
    /// datagram and a silent drop look the same ("open|filtered").
    OpenOrFiltered,
}

impl ProbeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeResult::Ok => "ok",
            ProbeResult::Unreachable => "unreachable",
            ProbeResult::BlockedByPolicy => "blocked-by-policy",
            ProbeResult::Error => "error",
            ProbeResult::OpenOrFiltered => "open-or-filtered",
        }
    }
}

/// Kind of probe target (a column of the matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Pod,
    Node,
    Service,
    External,
    /// A `<proto>-<ip>-<port>` from `diagnose IPPorts`.
    IpPort,
}

/// A column of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub kind: TargetKind,
    /// Short label: pod `<ns>/<name>`, node name, service `<ns>/<name>`, the address.
    pub label: String,
    /// The address probed (`ip` or `ip:port`).
    pub address: String,
    /// Node the target lives on (pods, nodes), to skip probing a node from itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// NetworkPolicies (`<ns>/<name>`) whose port groups contain the target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

impl Target {
    /// The `ip:port` / `[v6]:port` of a Service or IPPorts target.
    pub fn ip_port(&self) -> Option<(std::net::IpAddr, u16)> {
        if !matches!(self.kind, TargetKind::Service | TargetKind::IpPort) {
            return None;
        }
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host.parse().ok()?, port.parse().ok()?))
    }

    /// A UDP IPPorts target (its label is `udp-<ip>-<port>`); Services are TCP.
    pub fn is_udp(&self) -> bool {
        self.kind == TargetKind::IpPort && self.label.starts_with("udp-")
    }
}

/// A row of the matrix: the pod probes run from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub node: String,
    pub pod: String,
    pub ip: String,
    /// NetworkPolicies whose port groups contain the source pod.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// A workload pod added to show what NetworkPolicies allow: it probes only
    /// policy-selected targets, and its row is reported with pod scope.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub policy_probe: bool,
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Index into `sources`.
    pub from: usize,
    /// Index into `targets`.
    pub to: usize,
    pub result: ProbeResult,
    /// The command's evidence: `1 received`, the error, the policy.
    pub detail: String,
}

/// How the matrix chose its cells (see `sample.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MatrixStrategy {
    /// Every source to every target.
    #[default]
    FullMesh,
    /// Every source to `peers` peer pods and `peers` peer nodes, covering every node
    /// and subnet, plus the control plane, Services and other shared targets.
    Sampled { peers: usize },
}

/// Sources × targets. Cells absent from `probes` were not probed (a node to itself,
/// or left out by a sampled strategy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub strategy: MatrixStrategy,
    /// Execs the probes took (each source runs its probes together in one or a few).
    pub execs: usize,
    pub sources: Vec<Source>,
    pub targets: Vec<Target>,
    pub probes: Vec<Probe>,
}

impl Matrix {
    pub fn cell(&self, from: usize, to: usize) -> Option<&Probe> {
        self.probes.iter().find(|p| p.from == from && p.to == to)
    }
}

/// `kube-ovn-pinger --mode=job` as upstream runs it, from one pinger pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PingerRun {
    pub pod: String,
    pub node: String,
    /// Remote exit code, or None when the exec did not complete.
    pub exit_code: Option<i32>,
    /// stdout+stderr tail as the pinger printed it.
    pub output: String,
    /// What the run reported as failed (its own messages, from the whole output).
    pub problems: Vec<String>,
    /// Why it has no exit status (cut at --timeout, exec failed), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
}

/// Which pinger pods ran upstream's `kube-ovn-pinger --mode=job` (see `pinger::choose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PingerStrategy {
    /// Every pinger pod, as upstream's diagnose does (the matrix was a full mesh).
    Every { pods: usize },
    /// `ran` of the `of` pinger pods, those on nodes whose matrix row failed
    /// (the matrix was sampled).
    Troubled { ran: usize, of: usize },
    /// None of the `of` pinger pods: the matrix was sampled and no row failed.
    /// Each run pings every pinger pod and node one after another, so it grows
    /// with the cluster, and the matrix probed those targets already.
    Skipped { of: usize },
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
}

/// The whole result of `kubectl ko diagnose ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No check failed (warnings do not make a cluster unhealthy).
    pub healthy: bool,
    /// What was diagnosed: `all`, `node <n>`, `subnet <s>`, `IPPorts <list>`.
    pub target: String,
    pub summary: Summary,
    /// Failures first, then warnings, then passes; stable within a status.
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Matrix>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pinger: Vec<PingerRun>,
    /// Which pinger pods were asked to run the job (absent when the matrix
    /// had no pinger pod to choose from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinger_strategy: Option<PingerStrategy>,
    /// Wall time of the run, milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    pub fn new(
        target: String,
        mut checks: Vec<Check>,
        connectivity: Option<Matrix>,
        pinger: Vec<PingerRun>,
        pinger_strategy: Option<PingerStrategy>,
        elapsed_ms: u64,
    ) -> Self {
        // Stable sort: within a status the collection order (cluster, databases,
        // nodes, pods, connectivity) is kept, which reads top-down.
        checks.sort_by_key(|c| c.status);
        let mut summary = Summary::default();
        for c in &checks {
            match c.status {
                Status::Pass => summary.pass += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
            }
        }
        Report {
            healthy: summary.fail == 0,
            target,
            summary,
            checks,
            connectivity,
            pinger,
            pinger_strategy,
            elapsed_ms,
        }
    }

    /// Exit code: 0 healthy, 1 a check failed.
    pub fn exit_code(&self) -> i32 {
        if self.healthy { 0 } else { 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Scope;

    #[test]
    fn failures_sort_first_and_decide_health() {
        let r = Report::new(
            "all".into(),
            vec![
                Check::pass("a", Scope::Cluster, "ok"),
                Check::warn("b", Scope::node("n1"), "meh", "look"),
                Check::fail("c", Scope::pod("default", "p"), "bad", "fix"),
            ],
            None,
            vec![],
            None,
            0,
        );
        assert!(!r.healthy);
        assert_eq!(r.exit_code(), 1);
        let names: Vec<_> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert_eq!(
            r.summary,
            Summary {
                pass: 1,
                warn: 1,
                fail: 1
            }
        );
    }

    #[test]
    fn warnings_keep_the_cluster_healthy() {
        let r = Report::new(
            "all".into(),
            vec![Check::warn("b", Scope::Cluster, "meh", "look")],
            None,
            vec![],
            None,
            0,
        );
        assert!(r.healthy);
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn scope_serializes_as_a_path() {
        let c = Check::fail("x", Scope::pod("ns1", "web-1"), "m", "h");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["scope"], "pod/ns1/web-1");
        assert_eq!(v["status"], "fail");
        assert_eq!(
            serde_json::to_value(Scope::Subnet("ovn-default".into())).unwrap(),
            "subnet/ovn-default"
        );
    }
}
