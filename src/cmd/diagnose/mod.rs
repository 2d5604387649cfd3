//! `kubectl ko diagnose all | node <n> | subnet <s> | IPPorts <list>`: a doctor
//! that checks Kubernetes, OVN NB, OVN SB and OVS agree, on every node at once.
//!
//! Flow: validate the arguments (exit 2 on bad input) → gather Kubernetes
//! objects → ask every ovn-central pod for RAFT/northd state → read NB/SB
//! tables from the real leaders → probe every node's ovs-ovn pod (bounded
//! concurrency, per-node timeout) → connectivity matrix from the pinger pods →
//! upstream's `kube-ovn-pinger --mode=job` where the binary exists → a
//! [`model::Report`] rendered by `render::diagnose`.
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
pub mod ipports;
pub mod matrix;
pub mod model;
pub mod ovsdb;
pub mod pinger;
pub mod probe;
pub mod sample;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{Ctx, Outcome};
use crate::cli::{DiagnoseArgs, DiagnoseScope};
use crate::cluster::{Cluster, PodRef};
use crate::error::{Error, Result};
use crate::render::diagnose::Progress;

use checks::components::{self, WorkloadKind};
use checks::nodes::{NodeFacts, NodeProbe};
use checks::pods::{PodFacts, PodFilter};
use checks::raft::{self as raft_checks, CentralPod, Db};
use model::{Check, PingerRun, Report, Scope, Source, Target, TargetKind};

/// Nodes probed at once.
pub const NODE_CONCURRENCY: usize = 8;
/// Upstream pinger jobs at once (each may run for the whole --timeout, so wide).
const PINGER_CONCURRENCY: usize = 32;
/// At most this many NetworkPolicy-selected pods join the matrix as targets.
const MAX_POLICY_TARGETS: usize = 8;
/// Workload pods of the same namespace probing each policy-protected target.
const MAX_POLICY_SOURCES_PER_TARGET: usize = 4;

/// What the user asked for, validated.
enum Target_ {
    All,
    Node(String),
    Subnet(String),
    IpPorts(Vec<ipports::IpPort>),
}

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> Result<Outcome> {
    let started = Instant::now();
    let what = match args.scope.as_ref().unwrap_or(&DiagnoseScope::All) {
        DiagnoseScope::All => Target_::All,
        DiagnoseScope::Node { node } => {
            crate::cluster::validate_name("node name", node)?;
            Target_::Node(node.clone())
        }
        DiagnoseScope::Subnet { subnet } => {
            crate::cluster::validate_name("subnet name", subnet)?;
            Target_::Subnet(subnet.clone())
        }
        DiagnoseScope::IpPorts { targets } => {
            Target_::IpPorts(ipports::parse(targets).map_err(Error::Usage)?)
        }
    };
    let external = match (&args.external_address, &what) {
        (Some(a), _) => External::Given(a.parse().map_err(|_| {
            Error::Usage(format!(
                "--external-address {a:?} is not an IP address; give one address, e.g. --external-address 192.0.2.10"
            ))
        })?),
        (None, Target_::All | Target_::Node(_)) => External::FromPinger,
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

/// A node's TCP and UDP conn-check listeners (see `conncheck`), as
/// `tcp-<ip>-<port>` / `udp-<ip>-<port>` targets like IPPorts'.
fn conn_check_targets(ports: Option<conncheck::Ports>, ip: &str, node: &str) -> Vec<Target> {
    let Some((p, Ok(addr))) = ports.map(|p| (p, ip.parse::<IpAddr>())) else {
        return Vec::new();
    };
    [("tcp", p.tcp), ("udp", p.udp)]
        .into_iter()
        .map(|(proto, port)| Target {
            kind: TargetKind::IpPort,
            label: format!("{proto}-{addr}-{port}"),
            address: match addr {
                IpAddr::V4(v4) => format!("{v4}:{port}"),
                IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            },
            node: Some(node.to_string()),
            policies: vec![],
        })
        .collect()
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

fn label_of(what: &Target_) -> String {
    match what {
        Target_::All => "all".into(),
        Target_::Node(n) => format!("node {n}"),
        Target_::Subnet(s) => format!("subnet {s}"),
        Target_::IpPorts(v) => format!(
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
fn pinger_external_address(pods: &[k8s_openapi::api::core::v1::Pod]) -> Option<IpAddr> {
    pods.iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some("kube-ovn-pinger")
        })
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
        &Target_::All,
        External::FromPinger,
        &opts,
        false,
        Instant::now(),
        quiet,
    )
    .await
}

async fn diagnose(
    cluster: &Cluster,
    what: &Target_,
    external: External,
    opts: &conncheck::Options,
    full_mesh: bool,
    started: Instant,
    progress: Progress,
) -> Result<Report> {
    let ns = cluster.namespace().to_string();
    let timeout = cluster.timeout();
    progress.stage("reading cluster objects");

    let (nodes, pods, central) =
        tokio::try_join!(cluster.list_nodes(), cluster.list_pods(None, None), async {
            // "not found" here means Kube-OVN is not in this namespace: a usage problem
            match cluster.central_pods().await {
                Err(crate::cluster::Error::NotFound { .. }) => Ok(Vec::new()),
                other => other,
            }
        },)?;
    if central.is_empty() {
        return Err(Error::Usage(format!(
            "Kube-OVN was not found in namespace {ns}: no ovn-central pods (label app=ovn-central) there\n  try: `kubectl get pods -A -l app=ovn-central` to find its namespace, then pass --kube-ovn-namespace <ns> or set KUBE_OVN_NS"
        )));
    }
    let mut checks: Vec<Check> = Vec::new();
    let external: Option<IpAddr> = match external {
        External::Given(ip) => Some(ip),
        External::None => None,
        External::FromPinger => {
            let ip = pinger_external_address(&pods);
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
    };
    let node_facts: Vec<NodeFacts> = nodes.iter().map(collect::node_facts).collect();
    let pod_facts: Vec<PodFacts> = pods.iter().map(collect::pod_facts).collect();

    // validate node / subnet now that we know what exists
    let mut subnet_spec = None;
    match what {
        Target_::Node(n) if !node_facts.iter().any(|f| &f.name == n) => {
            return Err(not_found(
                "node",
                n,
                node_facts.iter().map(|f| f.name.as_str()),
                "`kubectl get nodes`",
            ));
        }
        Target_::Subnet(s) => {
            let subnets = cluster.list_subnets().await?;
            match subnets.iter().find(|x| x.name() == s) {
                Some(sub) => subnet_spec = Some(sub.spec.clone()),
                None => {
                    return Err(not_found(
                        "subnet",
                        s,
                        subnets.iter().map(|x| x.name()),
                        "`kubectl get subnets`",
                    ));
                }
            }
        }
        _ => {}
    }

    // --- components
    progress.stage("checking components and OVN databases");
    let central_pods: Vec<(PodRef, CentralPod)> = central
        .iter()
        .map(|p| (PodRef::from_pod(p), collect::central_pod(p)))
        .collect();
    let cps: Vec<CentralPod> = central_pods.iter().map(|(_, c)| c.clone()).collect();
    let comps = [
        (WorkloadKind::Deployment, ns.as_str(), "ovn-central"),
        (WorkloadKind::Deployment, ns.as_str(), "kube-ovn-controller"),
        (WorkloadKind::DaemonSet, ns.as_str(), "kube-ovn-cni"),
        (WorkloadKind::DaemonSet, ns.as_str(), "ovs-ovn"),
        (WorkloadKind::Deployment, "kube-system", "coredns"),
    ];
    let comp_futs = comps
        .iter()
        .map(|(k, n, name)| collect::workload(cluster, *k, n, name));
    let (crds, workloads, kube_proxy_ds, nb_views, sb_views, northd_views, eps, central_versions) = tokio::join!(
        collect::crd_names(cluster),
        futures::future::join_all(comp_futs),
        collect::workload(
            cluster,
            WorkloadKind::DaemonSet,
            "kube-system",
            "kube-proxy"
        ),
        collect::raft_views(cluster, &central_pods, Db::Nb, timeout),
        collect::raft_views(cluster, &central_pods, Db::Sb, timeout),
        collect::northd_views(cluster, &central_pods, timeout),
        async {
            tokio::join!(
                collect::endpoint_pods(cluster, &ns, "ovn-nb"),
                collect::endpoint_pods(cluster, &ns, "ovn-sb"),
                collect::endpoint_pods(cluster, &ns, "ovn-northd"),
            )
        },
        collect::central_versions(cluster, &central_pods, timeout),
    );
    match crds {
        Ok(c) => checks.push(components::crds(&c)),
        Err(e) => checks.push(Check::fail(
            "crds",
            Scope::Cluster,
            format!("could not list CRDs: {}", first_line(&e.to_string())),
            "kubectl-ko needs list on customresourcedefinitions (`kubectl auth can-i list crd`)",
        )),
    }
    for ((kind, n, name), w) in comps.iter().zip(workloads) {
        match w {
            Ok(w) => checks.push(components::workload(*kind, n, name, w.as_ref())),
            Err(e) => checks.push(Check::fail(
                &format!("component/{name}"),
                Scope::Cluster,
                format!("could not read {n}/{name}: {}", first_line(&e.to_string())),
                "check API access (`kubectl auth can-i get deployments,daemonsets`)",
            )),
        }
    }
    checks.push(if opts.without_kube_proxy {
        Check::pass(
            "component/kube-proxy",
            Scope::Cluster,
            "WITHOUT_KUBE_PROXY / --without-kube-proxy: kube-proxy not checked",
        )
    } else {
        kube_proxy_check(cluster, &ns, &node_facts, &pods, kube_proxy_ds, timeout).await
    });

    let (nb_eps, sb_eps, northd_eps) = eps;
    checks.extend(raft_checks::raft(Db::Nb, &ns, &cps, &nb_views, &nb_eps));
    checks.extend(raft_checks::raft(Db::Sb, &ns, &cps, &sb_views, &sb_eps));
    checks.extend(raft_checks::northd(&ns, &cps, &northd_views, &northd_eps));

    // --- NB/SB tables from the real leaders (RAFT view first, labels second)
    let leader_ref = |views: &[raft_checks::MemberView]| -> Option<PodRef> {
        let pod = views
            .iter()
            .find(|v| v.status.as_ref().is_ok_and(|s| s.is_leader()))?;
        central_pods
            .iter()
            .find(|(_, c)| c.name == pod.pod)
            .map(|(r, _)| r.clone())
    };
    let nb_pod = match leader_ref(&nb_views) {
        Some(p) => Ok(p),
        None => cluster.nb_leader().await.map_err(|e| e.to_string()),
    };
    let sb_pod = match leader_ref(&sb_views) {
        Some(p) => Ok(p),
        None => cluster.sb_leader().await.map_err(|e| e.to_string()),
    };
    let tables = collect::ovn_tables(cluster, nb_pod, sb_pod, timeout).await;

    // --- nodes, in parallel
    let ovs_pods: BTreeMap<String, PodRef> = pods
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .map(String::as_str)
                    == Some("ovs")
                && crate::cluster::locate::unusable_reason(p).is_none()
        })
        .filter_map(|p| {
            let r = PodRef::from_pod(p);
            r.node.clone().map(|n| (n, r))
        })
        .collect();
    let selected_nodes: Vec<&NodeFacts> = node_facts
        .iter()
        .filter(|n| match what {
            Target_::Node(x) => &n.name == x,
            Target_::IpPorts(_) => false,
            _ => true,
        })
        .collect();
    progress.start("probing nodes", selected_nodes.len() as u64);
    let node_results: Vec<(usize, NodeProbe)> =
        futures::stream::iter(selected_nodes.iter().enumerate())
            .map(|(i, n)| {
                let ovs_pods = &ovs_pods;
                let progress = &progress;
                async move {
                    let r = collect::probe_node(cluster, ovs_pods, &n.name, timeout).await;
                    progress.inc();
                    (i, r)
                }
            })
            .buffer_unordered(NODE_CONCURRENCY)
            .collect()
            .await;
    let mut node_results = node_results;
    node_results.sort_by_key(|(i, _)| *i);
    for (i, probe) in &node_results {
        checks.extend(checks::nodes::node_checks(
            &ns,
            selected_nodes[*i],
            probe,
            &tables.sb,
        ));
    }
    let probes: Vec<&NodeProbe> = node_results.iter().map(|(_, p)| p).collect();
    checks.extend(checks::nodes::version_checks(&central_versions, &probes));

    // --- pods and subnet
    let filter = match what {
        Target_::All => Some(PodFilter::All),
        Target_::Node(n) => Some(PodFilter::Node(n)),
        Target_::Subnet(s) => Some(PodFilter::Subnet(s)),
        Target_::IpPorts(_) => None,
    };
    if let Some(f) = filter {
        checks.extend(checks::pods::pod_checks(
            &ns,
            f,
            &pod_facts,
            &node_facts,
            &tables.lsps,
            &tables.bindings,
            &tables.sb,
        ));
    }
    if let Target_::Subnet(s) = what {
        checks.push(match &tables.switches {
            Ok(ls) if ls.iter().any(|x| x == s) => Check::pass(
                "logical-switch",
                Scope::Subnet(s.clone()),
                format!("logical switch {s} exists in the NB database"),
            ),
            Ok(_) => Check::fail(
                "logical-switch",
                Scope::Subnet(s.clone()),
                format!("subnet {s} has no logical switch {s} in the NB database"),
                "kube-ovn-controller creates it; check its log for the subnet",
            ),
            Err(e) => Check::fail(
                "logical-switch",
                Scope::Subnet(s.clone()),
                format!("could not list NB logical switches: {}", first_line(e)),
                "see the NB database checks",
            ),
        });
    }

    // --- connectivity
    progress.stage("probing connectivity");
    let pingers: Vec<(PodRef, PodFacts)> = pods
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .map(String::as_str)
                    == Some("kube-ovn-pinger")
        })
        .map(|p| (PodRef::from_pod(p), collect::pod_facts(p)))
        .filter(|(r, f)| f.running && r.ip.is_some())
        .collect();
    let policy_of = policy_index(&tables);
    let sources: Vec<(PodRef, Source)> = match what {
        Target_::Subnet(s) => one_per_node(
            pods.iter()
                .map(|p| (PodRef::from_pod(p), collect::pod_facts(p)))
                .filter(|(r, f)| {
                    f.running && r.ip.is_some() && f.logical_switch.as_deref() == Some(s)
                })
                // prefer pinger pods, then name order
                .map(|(r, f)| {
                    let is_pinger = pingers.iter().any(|(pr, _)| pr.name == r.name);
                    (!is_pinger, r, f)
                }),
            &policy_of,
        ),
        Target_::Node(n) => one_per_node(
            pingers
                .iter()
                .filter(|(r, _)| r.node.as_deref() == Some(n))
                .map(|(r, f)| (false, r.clone(), f.clone())),
            &policy_of,
        ),
        _ => one_per_node(
            pingers.iter().map(|(r, f)| (false, r.clone(), f.clone())),
            &policy_of,
        ),
    };
    let mut targets: Vec<Target> = Vec::new();
    match what {
        Target_::IpPorts(list) => {
            // TCP: a connect; UDP: one datagram, where silence is only
            // "open|filtered" (see probe::UdpOutcome)
            for t in list {
                targets.push(Target {
                    kind: TargetKind::IpPort,
                    label: t.to_string(),
                    address: match t.ip {
                        IpAddr::V4(v4) => format!("{v4}:{}", t.port),
                        IpAddr::V6(v6) => format!("[{v6}]:{}", t.port),
                    },
                    node: None,
                    policies: vec![],
                });
            }
        }
        _ => {
            // pods: every other source pod (for node scope, the pingers everywhere)
            let pod_targets: Vec<(PodRef, Source)> = match what {
                Target_::Node(_) => one_per_node(
                    pingers.iter().map(|(r, f)| (false, r.clone(), f.clone())),
                    &policy_of,
                ),
                _ => sources.clone(),
            };
            for (r, s) in &pod_targets {
                targets.push(Target {
                    kind: TargetKind::Pod,
                    label: r.to_string(),
                    address: s.ip.clone(),
                    node: Some(s.node.clone()),
                    policies: policy_of(&r.namespace, &r.name),
                });
            }
            // pods a NetworkPolicy selects: the matrix shows what the policy does
            let mut seen: BTreeSet<String> = targets.iter().map(|t| t.label.clone()).collect();
            for f in pod_facts.iter().filter(|f| f.is_ovn() && f.running) {
                if targets.iter().filter(|t| !t.policies.is_empty()).count() >= MAX_POLICY_TARGETS {
                    break;
                }
                if let Target_::Subnet(s) = what
                    && f.logical_switch.as_deref() != Some(s.as_str())
                {
                    continue;
                }
                let pols = policy_of(&f.namespace, &f.name);
                let label = format!("{}/{}", f.namespace, f.name);
                if pols.is_empty() || seen.contains(&label) {
                    continue;
                }
                let Some(ip) = f.ips.first() else { continue };
                seen.insert(label.clone());
                targets.push(Target {
                    kind: TargetKind::Pod,
                    label,
                    address: ip.clone(),
                    node: f.node.clone(),
                    policies: pols,
                });
            }
            if let (Target_::Subnet(s), Some(spec)) = (what, &subnet_spec) {
                for gw in spec.gateway.iter().flat_map(|g| g.split(',')) {
                    targets.push(Target {
                        kind: TargetKind::Node,
                        label: format!("gateway of {s}"),
                        address: gw.trim().to_string(),
                        node: None,
                        policies: vec![],
                    });
                }
            } else {
                let conn_check = conncheck::ports(opts, &pods);
                for n in &node_facts {
                    if let Some(ip) = n.internal_ips.first() {
                        targets.push(Target {
                            kind: TargetKind::Node,
                            label: n.name.clone(),
                            address: ip.clone(),
                            node: Some(n.name.clone()),
                            policies: vec![],
                        });
                        targets.extend(conn_check_targets(conn_check, ip, &n.name));
                    }
                }
                if let Ok(Some((ip, port))) =
                    collect::service_tcp(cluster, "kube-system", "kube-dns").await
                {
                    targets.push(Target {
                        kind: TargetKind::Service,
                        label: "kube-system/kube-dns".into(),
                        address: if ip.contains(':') {
                            format!("[{ip}]:{port}")
                        } else {
                            format!("{ip}:{port}")
                        },
                        node: None,
                        policies: vec![],
                    });
                }
            }
            if let Some(ext) = external {
                targets.push(Target {
                    kind: TargetKind::External,
                    label: "external".into(),
                    address: ext.to_string(),
                    node: None,
                    policies: vec![],
                });
            }
        }
    }

    // Workload pods next to each policy-protected target show what the policy
    // allows and denies (e.g. client-1 denied, client-2 allowed).
    let mut sources = sources;
    if !matches!(what, Target_::IpPorts(_) | Target_::Node(_)) {
        let protected: Vec<&Target> = targets
            .iter()
            .filter(|t| t.kind == TargetKind::Pod && !t.policies.is_empty())
            .collect();
        let mut added: BTreeSet<String> = sources.iter().map(|(_, s)| s.pod.clone()).collect();
        for t in protected {
            let Some((ns_t, name_t)) = t.label.split_once('/') else {
                continue;
            };
            // peers on the same logical switch: other subnets add routing to the question
            let ls_t = pod_facts
                .iter()
                .find(|f| f.namespace == ns_t && f.name == name_t)
                .and_then(|f| f.logical_switch.clone());
            let mut n = 0;
            // pod_facts is pods' facts in the same order: read, not rebuilt per target
            for (r, f) in pods
                .iter()
                .zip(&pod_facts)
                .filter(|(_, f)| {
                    f.namespace == ns_t && f.is_ovn() && f.running && f.logical_switch == ls_t
                })
                .map(|(p, f)| (PodRef::from_pod(p), f))
            {
                if n >= MAX_POLICY_SOURCES_PER_TARGET {
                    break;
                }
                let label = r.to_string();
                let (Some(node), Some(ip)) = (r.node.clone(), r.ip.clone()) else {
                    continue;
                };
                if label == t.label || added.contains(&label) {
                    continue;
                }
                if let Target_::Subnet(s) = what
                    && f.logical_switch.as_deref() != Some(s.as_str())
                {
                    continue;
                }
                n += 1;
                added.insert(label.clone());
                let policies = policy_of(&r.namespace, &r.name);
                sources.push((
                    r,
                    Source {
                        node,
                        pod: label,
                        ip,
                        policies,
                        policy_probe: true,
                    },
                ));
            }
        }
    }

    let connectivity = if sources.is_empty() {
        checks.push(Check::warn(
            "connectivity",
            match what {
                Target_::Node(n) => Scope::node(n),
                Target_::Subnet(s) => Scope::Subnet(s.clone()),
                _ => Scope::Cluster,
            },
            match what {
                Target_::Subnet(s) => format!("no running pod in subnet {s} to probe from"),
                _ => format!("no running kube-ovn-pinger pod in namespace {ns}{}: connectivity was not probed",
                    match what { Target_::Node(n) => format!(" on node {n}"), _ => String::new() }),
            },
            "deploy the kube-ovn-pinger DaemonSet (part of the Kube-OVN install)",
        ));
        None
    } else {
        let pinger_sources: Vec<(PodRef, Source)> = sources
            .iter()
            .filter(|(r, _)| pingers.iter().any(|(p, _)| p.name == r.name))
            .cloned()
            .collect();
        let subnet_of = subnet_index(&pod_facts);
        let control_plane: BTreeSet<String> = cps.iter().filter_map(|c| c.node.clone()).collect();
        let facts = sample::Facts {
            subnet_of: &subnet_of,
            control_plane: &control_plane,
        };
        let plan = matrix::plan(&sources, &targets, full_mesh, &facts);
        progress.start("probing connectivity", plan.cells.len() as u64);
        let tick = || progress.inc();
        let (m, runs) = tokio::join!(
            matrix::run(cluster, sources, targets, plan, timeout, &tick),
            pinger_jobs(cluster, &pinger_sources, what, external, timeout),
        );
        checks.extend(checks::connectivity::matrix_checks(&m));
        for run in &runs {
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
        progress.finish();
        return Ok(Report::new(
            label_of(what),
            checks,
            Some(m),
            runs,
            elapsed_ms(started),
        ));
    };
    progress.finish();
    Ok(Report::new(
        label_of(what),
        checks,
        connectivity,
        vec![],
        elapsed_ms(started),
    ))
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(s)
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
}

/// `(ns, pod) -> ["<ns>/<np>", ...]` from NB port groups that carry `external_ids:np`.
fn policy_index(tables: &collect::OvnTables) -> impl Fn(&str, &str) -> Vec<String> + use<> {
    let mut by_lsp: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let (Ok(pgs), Ok(lsps)) = (&tables.port_groups, &tables.lsps) {
        let name_of: BTreeMap<&str, &str> = lsps
            .iter()
            .map(|l| (l.uuid.as_str(), l.name.as_str()))
            .collect();
        for pg in pgs {
            let Some(np) = pg.network_policy() else {
                continue;
            };
            for port in &pg.ports {
                if let Some(lsp) = name_of.get(port.as_str()) {
                    by_lsp
                        .entry(lsp.to_string())
                        .or_default()
                        .push(np.to_string());
                }
            }
        }
    }
    move |ns: &str, pod: &str| {
        by_lsp
            .get(&format!("{pod}.{ns}"))
            .cloned()
            .unwrap_or_default()
    }
}

/// A pod target's logical switch, looked up by its address.
fn subnet_index(pods: &[PodFacts]) -> impl Fn(&Target) -> Option<String> + use<> {
    let by_ip: BTreeMap<String, String> = pods
        .iter()
        .filter_map(|f| Some((f.logical_switch.clone()?, f)))
        .flat_map(|(ls, f)| f.ips.iter().map(move |ip| (ip.clone(), ls.clone())))
        .collect();
    move |t: &Target| by_ip.get(&t.address).cloned()
}

/// Keep the first pod per node (candidates sorted by preference, then name).
fn one_per_node(
    candidates: impl Iterator<Item = (bool, PodRef, PodFacts)>,
    policy_of: &dyn Fn(&str, &str) -> Vec<String>,
) -> Vec<(PodRef, Source)> {
    let mut all: Vec<(bool, PodRef, PodFacts)> = candidates.collect();
    all.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    let mut by_node: BTreeMap<String, (PodRef, Source)> = BTreeMap::new();
    for (_, r, f) in all {
        let (Some(node), Some(ip)) = (r.node.clone(), r.ip.clone()) else {
            continue;
        };
        by_node.entry(node.clone()).or_insert_with(|| {
            let policies = policy_of(&f.namespace, &f.name);
            (
                r.clone(),
                Source {
                    node,
                    pod: r.to_string(),
                    ip,
                    policies,
                    policy_probe: false,
                },
            )
        });
    }
    by_node.into_values().collect()
}

/// kube-proxy as upstream checks it: the DaemonSet when there is one;
/// otherwise curl :10256/healthz from each
/// node's kube-ovn-cni pod.
async fn kube_proxy_check(
    cluster: &Cluster,
    ns: &str,
    nodes: &[NodeFacts],
    pods: &[k8s_openapi::api::core::v1::Pod],
    ds: crate::cluster::Result<Option<components::WorkloadStatus>>,
    timeout: Duration,
) -> Check {
    match ds {
        Ok(Some(w)) => {
            return components::workload(
                WorkloadKind::DaemonSet,
                "kube-system",
                "kube-proxy",
                Some(&w),
            );
        }
        Err(e) => {
            return Check::warn(
                "component/kube-proxy",
                Scope::Cluster,
                format!(
                    "could not read DaemonSet kube-system/kube-proxy: {}",
                    first_line(&e.to_string())
                ),
                "check API access",
            );
        }
        Ok(None) => {}
    }
    let cni: Vec<PodRef> = pods
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .map(String::as_str)
                    == Some("kube-ovn-cni")
                && crate::cluster::locate::unusable_reason(p).is_none()
        })
        .map(PodRef::from_pod)
        .collect();
    let futs = nodes.iter().filter_map(|n| {
        let pod = cni
            .iter()
            .find(|p| p.node.as_deref() == Some(n.name.as_str()))?;
        let ip: IpAddr = pod.ip.as_deref()?.parse().ok()?;
        Some(async move {
            let argv = probe::tcp_argv(ip, 10256);
            // healthz path instead of `/`
            let mut argv = argv;
            if let Some(last) = argv.last_mut() {
                last.push_str("healthz");
            }
            let c = pod
                .container_or_default(crate::cluster::container::CNI_SERVER)
                .to_string();
            let r = match cluster.exec_capture_timeout(pod, &c, &argv, timeout).await {
                Ok(o) if o.exit_code == 0 => Ok(()),
                Ok(o) => Err(match probe::parse_curl(o.exit_code, &o.stderr_str()) {
                    probe::TcpOutcome::Refused => "connection refused".to_string(),
                    probe::TcpOutcome::TimedOut => "timed out".to_string(),
                    probe::TcpOutcome::Connected => {
                        format!("healthz answered with an error (curl exit {})", o.exit_code)
                    }
                    probe::TcpOutcome::Error { detail } => detail,
                }),
                Err(e) => Err(first_line(&e.to_string()).to_string()),
            };
            (n.name.clone(), r)
        })
    });
    let results: Vec<_> = futures::stream::iter(futs)
        .buffered(NODE_CONCURRENCY)
        .collect()
        .await;
    components::kube_proxy_healthz(&results)
}

/// Upstream's `kube-ovn-pinger --mode=job`, where the binary exists in the
/// pinger pods. Pods without it (the sandbox, custom images) are skipped.
async fn pinger_jobs(
    cluster: &Cluster,
    sources: &[(PodRef, Source)],
    what: &Target_,
    external: Option<IpAddr>,
    timeout: Duration,
) -> Vec<PingerRun> {
    let mut argv: Vec<String> = vec!["/kube-ovn/kube-ovn-pinger".into(), "--mode=job".into()];
    if let Some(ext) = external {
        argv.push(format!("--external-address={ext}"));
    }
    if let Target_::IpPorts(list) = what {
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
                    problems: pinger::problems(&text),
                    output: tail(&text, 40),
                    unfinished: None,
                })
            }
            Err(e) => Some(PingerRun {
                pod: pod.to_string(),
                node: src.node.clone(),
                exit_code: None,
                problems: pinger::problems(&text),
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
