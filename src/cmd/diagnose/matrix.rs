//! Stage "connectivity": who probes whom ([`probes`]), then the matrix run
//! ([`stage`]). Running the connectivity matrix: probes exec'd in existing pods (pinger pods by
//! default). Each source runs its probes together, concurrently, in one exec (a few
//! for a very wide row, see `batch.rs`), so the matrix costs about one API round trip
//! per node; which cells are probed is `sample.rs`'s choice. Nothing is created in
//! the cluster, so an interrupted run leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;

use crate::cluster::{Cluster, PodRef};
use crate::render::progress::Progress;

use super::batch::{self, Job, JobOutput};
use super::checks::connectivity::{classify_ping, classify_tcp, classify_udp};
use super::collect;
use super::facts::OvnTables;
use super::facts::PodFacts;
use super::model::{Matrix, MatrixStrategy, Probe, ProbeResult, Source, Target, TargetKind};
use super::probe::{
    parse_curl, parse_ping, parse_udp, ping_argv, ping_retry_argv, tcp_argv, udp_argv,
};
use super::sample::{self, Facts};
use super::{Asked, Objects, conncheck, ipports};
use crate::check::{Check, Scope};

/// Execs (each a batch of up to `batch::MAX_PER_EXEC` probes) in flight at once.
/// The sources are one pod per node (plus a few policy-probe pods), so execs at
/// once mostly load different nodes: the bound is for the API server and this
/// client. With 8, a sampled matrix waited out one round of probe timeouts per
/// 8 nodes (19 s of 35 at 32 nodes).
pub const EXEC_CONCURRENCY: usize = 64;

/// At most this many NetworkPolicy-selected pods join the matrix as targets.
const MAX_POLICY_TARGETS: usize = 8;
/// Workload pods of the same namespace probing each policy-protected target.
const MAX_POLICY_SOURCES_PER_TARGET: usize = 4;

/// The container probes run in, when the pod has it.
const PINGER_CONTAINER: &str = "pinger";

/// Who probes whom: the matrix's sources and targets, and the sources that
/// also run upstream's pinger job.
pub(super) struct Probes {
    pub(super) sources: Vec<(PodRef, Source)>,
    pub(super) targets: Vec<Target>,
    pub(super) pinger_sources: Vec<(PodRef, Source)>,
}

/// Stage "connectivity", first half: choose the sources (one pinger pod per
/// node, or for a subnet one of its pods per node), the targets (pods,
/// nodes and their conn-check listeners, kube-dns, the external address, or
/// the IPPorts asked for), and the workload pods that probe each
/// NetworkPolicy-protected target.
pub(super) async fn probes(
    cluster: &Cluster,
    objects: &Objects,
    what: &Asked,
    tables: &OvnTables,
    external: Option<IpAddr>,
    opts: &conncheck::Options,
) -> Probes {
    let pingers: Vec<(PodRef, PodFacts)> = objects
        .app_pods("kube-ovn-pinger")
        .map(|p| (PodRef::from_pod(p), collect::pod_facts(p)))
        .filter(|(r, f)| f.running && r.ip.is_some())
        .collect();
    let policy_of = policy_index(tables);
    let mut sources = sources(objects, what, &pingers, &policy_of);
    let targets = match what {
        Asked::IpPorts(list) => ip_port_targets(list),
        _ => {
            targets(
                cluster, objects, what, &pingers, &sources, &policy_of, external, opts,
            )
            .await
        }
    };
    if !matches!(what, Asked::IpPorts(_) | Asked::Node(_)) {
        policy_sources(objects, what, &targets, &policy_of, &mut sources);
    }
    let pinger_sources = sources
        .iter()
        .filter(|(r, _)| pingers.iter().any(|(p, _)| p.name == r.name))
        .cloned()
        .collect();
    Probes {
        sources,
        targets,
        pinger_sources,
    }
}

/// The matrix's rows: one pinger pod per node (for a node, that node's);
/// for a subnet, one of its running pods per node, pinger pods first.
fn sources(
    objects: &Objects,
    what: &Asked,
    pingers: &[(PodRef, PodFacts)],
    policy_of: &dyn Fn(&str, &str) -> Vec<String>,
) -> Vec<(PodRef, Source)> {
    match what {
        Asked::Subnet(s) => one_per_node(
            objects
                .pods
                .refs
                .iter()
                .zip(&objects.pods.facts)
                .map(|(r, f)| (r.clone(), f.clone()))
                .filter(|(r, f)| {
                    f.running && r.ip.is_some() && f.logical_switch.as_deref() == Some(s)
                })
                // prefer pinger pods, then name order
                .map(|(r, f)| {
                    let is_pinger = pingers.iter().any(|(pr, _)| pr.name == r.name);
                    (!is_pinger, r, f)
                }),
            policy_of,
        ),
        Asked::Node(n) => one_per_node(
            pingers
                .iter()
                .filter(|(r, _)| r.node.as_deref() == Some(n))
                .map(|(r, f)| (false, r.clone(), f.clone())),
            policy_of,
        ),
        _ => one_per_node(
            pingers.iter().map(|(r, f)| (false, r.clone(), f.clone())),
            policy_of,
        ),
    }
}

/// `diagnose IPPorts`: TCP gets a connect; UDP one datagram, where silence
/// is only "open|filtered" (see probe::UdpOutcome).
fn ip_port_targets(list: &[ipports::IpPort]) -> Vec<Target> {
    list.iter()
        .map(|t| Target {
            kind: TargetKind::IpPort,
            label: t.to_string(),
            address: match t.ip {
                IpAddr::V4(v4) => format!("{v4}:{}", t.port),
                IpAddr::V6(v6) => format!("[{v6}]:{}", t.port),
            },
            node: None,
            policies: vec![],
        })
        .collect()
}

/// The matrix's columns for `all`, `node` and `subnet`.
#[allow(clippy::too_many_arguments)] // one call site; each is a different fact
async fn targets(
    cluster: &Cluster,
    objects: &Objects,
    what: &Asked,
    pingers: &[(PodRef, PodFacts)],
    sources: &[(PodRef, Source)],
    policy_of: &dyn Fn(&str, &str) -> Vec<String>,
    external: Option<IpAddr>,
    opts: &conncheck::Options,
) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    // pods: every other source pod (for node scope, the pingers everywhere)
    let pod_targets: Vec<(PodRef, Source)> = match what {
        Asked::Node(_) => one_per_node(
            pingers.iter().map(|(r, f)| (false, r.clone(), f.clone())),
            policy_of,
        ),
        _ => sources.to_vec(),
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
    for f in objects
        .pods
        .facts
        .iter()
        .filter(|f| f.is_ovn() && f.running)
    {
        if targets.iter().filter(|t| !t.policies.is_empty()).count() >= MAX_POLICY_TARGETS {
            break;
        }
        if let Asked::Subnet(s) = what
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
    if let (Asked::Subnet(s), Some(spec)) = (what, &objects.subnet_spec) {
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
        let conn_check = conncheck::ports(opts, &objects.ko_pods);
        for n in &objects.node_facts {
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
        if let Ok(Some((ip, port))) = collect::service_tcp(cluster, "kube-system", "kube-dns").await
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
    targets
}

/// Workload pods next to each policy-protected target show what the policy
/// allows and denies (e.g. client-1 denied, client-2 allowed).
fn policy_sources(
    objects: &Objects,
    what: &Asked,
    targets: &[Target],
    policy_of: &dyn Fn(&str, &str) -> Vec<String>,
    sources: &mut Vec<(PodRef, Source)>,
) {
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
        let ls_t = objects
            .pods
            .facts
            .iter()
            .find(|f| f.namespace == ns_t && f.name == name_t)
            .and_then(|f| f.logical_switch.clone());
        let mut n = 0;
        for (r, f) in objects
            .pods
            .refs
            .iter()
            .zip(&objects.pods.facts)
            .filter(|(_, f)| {
                f.namespace == ns_t && f.is_ovn() && f.running && f.logical_switch == ls_t
            })
            .map(|(r, f)| (r.clone(), f))
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
            if let Asked::Subnet(s) = what
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

/// The warning when no pod could probe: connectivity was not checked.
pub(super) fn nothing_to_probe_from(what: &Asked, ns: &str) -> Check {
    Check::warn(
        "connectivity",
        match what {
            Asked::Node(n) => Scope::node(n),
            Asked::Subnet(s) => Scope::Subnet(s.clone()),
            _ => Scope::Cluster,
        },
        match what {
            Asked::Subnet(s) => format!("no running pod in subnet {s} to probe from"),
            _ => format!(
                "no running kube-ovn-pinger pod in namespace {ns}{}: connectivity was not probed",
                match what {
                    Asked::Node(n) => format!(" on node {n}"),
                    _ => String::new(),
                }
            ),
        },
        "deploy the kube-ovn-pinger DaemonSet (part of the Kube-OVN install)",
    )
}

/// Stage "connectivity", second half: plan the cells (see `sample.rs`) and
/// probe them.
pub(super) async fn stage(
    cluster: &Cluster,
    objects: &Objects,
    sources: Vec<(PodRef, Source)>,
    targets: Vec<Target>,
    full_mesh: bool,
    progress: &Progress,
) -> Matrix {
    let subnet_of = subnet_index(&objects.pods.facts);
    let control_plane = objects.control_plane_nodes();
    let facts = sample::Facts {
        subnet_of: &subnet_of,
        control_plane: &control_plane,
    };
    let plan = plan(&sources, &targets, full_mesh, &facts);
    progress.start("probing connectivity", plan.cells.len() as u64);
    let tick = || progress.inc();
    run(cluster, sources, targets, plan, objects.timeout, &tick).await
}

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
    let strategy = sample::strategy(full_mesh, &srcs, targets);
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

/// `(ns, pod) -> ["<ns>/<np>", ...]` from NB port groups that carry `external_ids:np`.
fn policy_index(tables: &OvnTables) -> impl Fn(&str, &str) -> Vec<String> + use<> {
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
