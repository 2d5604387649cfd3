//! `kubectl ko diagnose all | node <n> | subnet <s> | IPPorts <list>`: a doctor
//! that checks Kubernetes, OVN NB, OVN SB and OVS agree, on every node at once.
//!
//! Flow: validate the arguments (exit 2 on bad input) → gather the nodes and
//! Kube-OVN's own pods → (beside the listing of every pod) ask every
//! ovn-central pod for RAFT/northd state, read NB/SB tables from the real
//! leaders, probe every node's ovs-ovn pod (bounded concurrency, per-node
//! timeout) → connectivity matrix from the pinger pods → then upstream's
//! `kube-ovn-pinger --mode=job` where the binary exists (see `pinger::choose`)
//! → a [`model::Report`] rendered by `view.rs`.
//!
//! Decisions worth knowing:
//! - A probe that gets no answer to a pod selected by a NetworkPolicy is
//!   `blocked-by-policy` and makes its row a *warning*: the policy explains it.
//!   Workload pods of the same namespace and switch probe each such pod, so the
//!   matrix shows which peers the policy allows and which it denies.
//! - A Service (kube-dns, TCP) that does not accept a connection is a warning:
//!   the probe cannot tell a broken load balancer from backends that do not
//!   listen; pod-to-pod, node and external probes are the hard failures.
//!   A refused connection counts as reached.
//! - UDP `IPPorts` targets get one datagram from bash's `/dev/udp` (a
//!   connected socket, so an ICMP port unreachable surfaces as ECONNREFUSED):
//!   reply or port unreachable = reached; silence = `open-or-filtered`, a
//!   warning, because a listener that ignores the datagram looks the same as a drop.
//! - Upstream's `kube-ovn-pinger --mode=job` exits 0 after lost pings (no
//!   `--exit-code` in upstream's diagnose), so its check fails on the problems
//!   its log reports (see `pinger.rs`), not only on a non-zero exit.
//! - Nothing is created in the cluster (probes run in existing pods), so Ctrl-C
//!   leaves nothing to clean up.
//! - `--external-address` defaults, for `all`/`node`, to the address the
//!   cluster's own `kube-ovn-pinger` pods are configured with (their
//!   `--external-address=` argument), like upstream's pinger. With neither, the
//!   external probe is skipped and a warning says how to ask for it: this tool
//!   never picks an outside address on its own.

pub mod batch;
pub mod checks;
pub mod collect;
pub mod conncheck;
pub mod facts;
pub mod ipports;
pub mod matrix;
pub mod model;
pub mod ovsdb;
pub mod pinger;
pub mod probe;
pub mod sample;
pub mod view;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Ctx, Outcome};
use crate::cli::{DiagnoseArgs, DiagnoseScope};
use crate::cluster::{Cluster, PodRef};
use crate::error::{Error, Result};
use crate::render::progress::Progress;

use crate::check::{Check, Scope};
use checks::components;
use checks::raft as raft_checks;
use facts::{CentralPod, NodeFacts, PodFacts};
use model::Report;

/// Nodes probed at once (one exec each, on its own node: the bound is for the
/// API server and this client).
pub const NODE_CONCURRENCY: usize = 32;

/// What the user asked for, validated.
enum Asked {
    All,
    Node(String),
    Subnet(String),
    IpPorts(Vec<ipports::IpPort>),
}

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> Result<Outcome> {
    let started = Instant::now();
    let what = match args.scope.as_ref().unwrap_or(&DiagnoseScope::All) {
        DiagnoseScope::All => Asked::All,
        DiagnoseScope::Node { node } => {
            crate::cluster::validate_name("node name", node)?;
            Asked::Node(node.clone())
        }
        DiagnoseScope::Subnet { subnet } => {
            crate::cluster::validate_name("subnet name", subnet)?;
            Asked::Subnet(subnet.clone())
        }
        DiagnoseScope::IpPorts { targets } => {
            Asked::IpPorts(ipports::parse(targets).map_err(Error::Usage)?)
        }
    };
    let external = match (&args.external_address, &what) {
        (Some(a), _) => External::Given(a.parse().map_err(|_| {
            Error::Usage(format!(
                "--external-address {a:?} is not an IP address; give one address, e.g. --external-address 192.0.2.10"
            ))
        })?),
        (None, Asked::All | Asked::Node(_)) => External::FromPinger,
        (None, _) => External::None,
    };
    let format = ctx.output(args.output);
    let cluster = ctx.cluster().await?;
    let opts = conncheck::Options {
        tcp_port: args.tcp_conn_check_port,
        udp_port: args.udp_conn_check_port,
        without_kube_proxy: args.without_kube_proxy,
    };
    let report = diagnose(
        cluster,
        &what,
        external,
        &opts,
        args.full_mesh,
        started,
        Progress::new(),
    )
    .await?;
    let exit = report.exit_code();
    Ok(Outcome::report(report, format, exit))
}

/// A node or subnet that does not exist: exit 3 like every other "not found".
fn not_found<'a>(
    kind: &str,
    name: &str,
    existing: impl Iterator<Item = &'a str>,
    hint: &str,
) -> Error {
    Error::Cluster(crate::cluster::Error::NotFound {
        what: format!("{kind} {name}"),
        detail: format!(" ({kind}s: {})", existing.collect::<Vec<_>>().join(", ")),
        hint: hint.to_string(),
    })
}

fn label_of(what: &Asked) -> String {
    match what {
        Asked::All => "all".into(),
        Asked::Node(n) => format!("node {n}"),
        Asked::Subnet(s) => format!("subnet {s}"),
        Asked::IpPorts(v) => format!(
            "IPPorts {}",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Where the external probe's address comes from.
enum External {
    Given(IpAddr),
    /// The `--external-address=` the cluster's pinger pods run with, if any.
    FromPinger,
    None,
}

/// The first `--external-address=<ip>[,<ip>]` among the pinger pods' container
/// arguments (Kube-OVN's pinger DaemonSet carries the cluster's chosen target).
fn pinger_external_address(ko_pods: &[k8s_openapi::api::core::v1::Pod]) -> Option<IpAddr> {
    ko_pods
        .iter()
        .filter(|p| conncheck::app_of(p) == Some("kube-ovn-pinger"))
        .filter_map(|p| p.spec.as_ref())
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.command.iter().flatten().chain(c.args.iter().flatten()))
        .filter_map(|a| a.strip_prefix("--external-address="))
        .flat_map(|v| v.split(','))
        .find_map(|ip| ip.trim().parse().ok())
}

/// `diagnose all` with the defaults and no progress output (for `bundle`).
pub async fn report_all(cluster: &Cluster) -> Result<Report> {
    let opts = conncheck::Options::default();
    let quiet = Progress::hidden();
    diagnose(
        cluster,
        &Asked::All,
        External::FromPinger,
        &opts,
        false,
        Instant::now(),
        quiet,
    )
    .await
}

/// The cluster's objects, read once at the start; every stage reads them.
struct Objects {
    /// Kube-OVN's namespace.
    ns: String,
    /// The per-call --timeout.
    timeout: Duration,
    /// Kube-OVN's own pods (namespace `ns`), whole.
    ko_pods: Vec<k8s_openapi::api::core::v1::Pod>,
    node_facts: Vec<NodeFacts>,
    /// Every pod of the cluster; read beside the first stages (see `diagnose`),
    /// empty until then.
    pods: AllPods,
    central_pods: Vec<(PodRef, CentralPod)>,
    /// The subnet asked for (`diagnose subnet <s>`).
    subnet_spec: Option<crate::cluster::model::SubnetSpec>,
}

/// Every pod of the cluster as what the checks read of it: `refs[i]` and
/// `facts[i]` are the same pod.
#[derive(Default)]
struct AllPods {
    refs: Vec<PodRef>,
    facts: Vec<PodFacts>,
}

impl Objects {
    /// Nodes that run an ovn-central pod.
    fn control_plane_nodes(&self) -> std::collections::BTreeSet<String> {
        self.central_pods
            .iter()
            .filter_map(|(_, c)| c.node.clone())
            .collect()
    }

    /// Kube-OVN's pods of one `app` label (ovs, kube-ovn-cni, kube-ovn-pinger).
    fn app_pods<'a>(
        &'a self,
        app: &'a str,
    ) -> impl Iterator<Item = &'a k8s_openapi::api::core::v1::Pod> + 'a {
        self.ko_pods
            .iter()
            .filter(move |p| conncheck::app_of(p) == Some(app))
    }
}

/// The pipeline: each stage is a function in the module of what it checks,
/// and adds its checks in this order (the report keeps it).
async fn diagnose(
    cluster: &Cluster,
    what: &Asked,
    external: External,
    opts: &conncheck::Options,
    full_mesh: bool,
    started: Instant,
    progress: Progress,
) -> Result<Report> {
    progress.stage("reading cluster objects");
    let mut objects = collect::objects(cluster, what).await?;
    let mut checks: Vec<Check> = Vec::new();
    let external = external_address(external, &objects.ko_pods, &mut checks);

    progress.stage("checking components and OVN databases");
    // Listing every pod is the longest read on a large cluster (one page of 500
    // after the other) and only the pod checks and the matrix need it: it runs
    // beside the component, database and node stages.
    let (all_pods, (components, databases, nodes)) =
        tokio::join!(collect::all_pods(cluster), async {
            let (components, databases) = tokio::join!(
                components::stage(cluster, &objects, opts),
                raft_checks::stage(cluster, &objects),
            );
            let nodes = checks::nodes::stage(
                cluster,
                &objects,
                what,
                &databases.tables,
                &databases.central_versions,
                &progress,
            )
            .await;
            (components, databases, nodes)
        },);
    objects.pods = all_pods?;
    checks.extend(components);
    checks.extend(databases.checks);
    checks.extend(nodes);
    let tables = &databases.tables;
    checks.extend(checks::pods::stage(&objects, what, tables));

    progress.stage("probing connectivity");
    let probes = matrix::probes(cluster, &objects, what, tables, external, opts).await;
    let (connectivity, runs, pinger_strategy) = if probes.sources.is_empty() {
        checks.push(matrix::nothing_to_probe_from(what, &objects.ns));
        (None, Vec::new(), None)
    } else {
        let m = matrix::stage(
            cluster,
            &objects,
            probes.sources,
            probes.targets,
            full_mesh,
            &progress,
        )
        .await;
        // after the matrix, not beside it: both at once on a large cluster
        // overloaded the nodes they were judging; and which nodes run it
        // depends on the matrix's failures
        let (chosen, strategy) = pinger::choose(
            &probes.pinger_sources,
            m.strategy,
            &pinger::troubled_nodes(&m),
        );
        let pingers: Vec<(PodRef, model::Source)> = chosen
            .into_iter()
            .filter_map(|i| probes.pinger_sources.get(i).cloned())
            .collect();
        if !pingers.is_empty() {
            progress.stage("running kube-ovn-pinger --mode=job");
        }
        let runs = pinger::stage(cluster, &pingers, what, external, objects.timeout).await;
        checks.extend(checks::connectivity::matrix_checks(&m));
        checks.extend(pinger::checks(&runs));
        let strategy = (!probes.pinger_sources.is_empty()).then_some(strategy);
        (Some(m), runs, strategy)
    };
    progress.finish();
    Ok(Report::new(
        label_of(what),
        checks,
        connectivity,
        runs,
        pinger_strategy,
        elapsed_ms(started),
    ))
}

/// The external probe's address; when the pinger pods were to give it and
/// carry none, a warning says how to ask for it.
fn external_address(
    external: External,
    ko_pods: &[k8s_openapi::api::core::v1::Pod],
    checks: &mut Vec<Check>,
) -> Option<IpAddr> {
    match external {
        External::Given(ip) => Some(ip),
        External::None => None,
        External::FromPinger => {
            let ip = pinger_external_address(ko_pods);
            if ip.is_none() {
                checks.push(Check::warn(
                    "connectivity/external",
                    Scope::Cluster,
                    "external connectivity was not probed: no --external-address was given and the kube-ovn-pinger pods carry none",
                    "pass --external-address <ip> with an address outside the cluster that should answer ping",
                ));
            }
            ip
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The first non-blank line of a tool's output or an error: what a check's
/// one-line message quotes.
fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(s)
}
