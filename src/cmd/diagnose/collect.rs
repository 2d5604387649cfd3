//! Gathering the snapshots the checks read: Kubernetes objects through the
//! `cluster` API, OVN/OVS state by exec'ing the tools in ovn-central and
//! ovs-ovn pods. Every remote call has a timeout; a failure becomes an `Err`
//! inside the snapshot (and so a failed check), never an aborted run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

use crate::cluster::{self, Cluster, NodeNetwork, PodNetwork, PodRef, container};

use super::batch::{self, Job, JobOutput};
use super::conncheck::app_of;
use super::facts::{
    CentralPod, MemberView, NodeFacts, NodeProbe, OvnTables, PodFacts, SbChassisView, WorkloadKind,
    WorkloadStatus,
};
use super::ovsdb::{self, commands};
use super::{AllPods, Asked, Objects, not_found};
use crate::cluster::Db;
use ko_ovn::versions::{self, NodeVersions};

/// Run one exec and return stdout on exit 0, or a one-line reason.
pub async fn exec_text(
    cluster: &Cluster,
    pod: &PodRef,
    container: &str,
    argv: &[&str],
    timeout: Duration,
) -> Result<String, String> {
    let c = pod.container_or_default(container).to_string();
    match cluster.exec_capture_timeout(pod, &c, argv, timeout).await {
        Ok(out) if out.success() => Ok(out.stdout_str()),
        Ok(out) => {
            let err = out.stderr_str();
            let msg = err
                .lines()
                .rev()
                .chain(out.stdout_str().lines().rev())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output")
                .to_string();
            Err(format!(
                "`{}` exited {}: {msg}",
                argv.join(" "),
                out.exit_code
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

pub fn pod_facts(p: &Pod) -> PodFacts {
    let net = PodNetwork::of_pod(p, cluster::model::OVN_PROVIDER);
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    PodFacts {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        node: spec.and_then(|s| s.node_name.clone()),
        running: p.metadata.deletion_timestamp.is_none()
            && status.and_then(|s| s.phase.as_deref()) == Some("Running"),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ips: net.ip_addresses.clone(),
        mac: net.mac_address.clone(),
        logical_switch: net.logical_switch.clone(),
    }
}

pub fn node_facts(n: &Node) -> NodeFacts {
    let net = NodeNetwork::of_node(n);
    NodeFacts {
        name: n.metadata.name.clone().unwrap_or_default(),
        internal_ips: net.internal_ips,
        ready: n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status == "True"),
        chassis_annotation: net.chassis,
    }
}

pub fn central_pod(p: &Pod) -> CentralPod {
    let r = PodRef::from_pod(p);
    CentralPod {
        name: r.name,
        node: r.node,
        ip: r.ip,
        unusable: cluster::locate::unusable_reason(p),
        labels: p.metadata.labels.clone().unwrap_or_default(),
    }
}

/// Names of the installed CRDs.
pub async fn crd_names(cluster: &Cluster) -> cluster::Result<BTreeSet<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().clone());
    let names = cluster
        .list_mapped(
            &api,
            &ListParams::default(),
            "listing CustomResourceDefinitions",
            |c| c.metadata.name,
        )
        .await?;
    Ok(names.into_iter().collect())
}

/// A Deployment's or DaemonSet's counters; Ok(None) when it does not exist.
pub async fn workload(
    cluster: &Cluster,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> cluster::Result<Option<WorkloadStatus>> {
    let what = format!("getting {kind:?} {namespace}/{name}");
    match kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(cluster.client().clone(), namespace);
            let d = cluster.call(what, api.get_opt(name)).await?;
            Ok(d.map(|d| {
                let st = d.status.unwrap_or_default();
                WorkloadStatus {
                    kind,
                    namespace: namespace.into(),
                    name: name.into(),
                    desired: st.replicas.unwrap_or(0),
                    current: st.updated_replicas.unwrap_or(0),
                    ready: st.ready_replicas.unwrap_or(0),
                    available: st.available_replicas.unwrap_or(0),
                }
            }))
        }
        WorkloadKind::DaemonSet => {
            let api: Api<DaemonSet> = Api::namespaced(cluster.client().clone(), namespace);
            let d = cluster.call(what, api.get_opt(name)).await?;
            Ok(d.map(|d| {
                let st = d.status.unwrap_or_default();
                WorkloadStatus {
                    kind,
                    namespace: namespace.into(),
                    name: name.into(),
                    desired: st.desired_number_scheduled,
                    current: st.current_number_scheduled,
                    ready: st.number_ready,
                    available: st.number_available.unwrap_or(0),
                }
            }))
        }
    }
}

/// Ready endpoint pod names of a Service (upstream's checkLeader query).
pub async fn endpoint_pods(
    cluster: &Cluster,
    namespace: &str,
    service: &str,
) -> Result<Vec<String>, String> {
    let api: Api<EndpointSlice> = Api::namespaced(cluster.client().clone(), namespace);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = cluster
        .list_paged(
            &api,
            &lp,
            &format!("listing EndpointSlices of Service {namespace}/{service}"),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    for slice in slices {
        for ep in slice.endpoints.into_iter().flatten() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            if ready && let Some(t) = ep.target_ref.and_then(|t| t.name) {
                names.insert(t);
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// A Service's first ClusterIP and TCP port, if it exists.
pub async fn service_tcp(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> cluster::Result<Option<(String, u16)>> {
    let api: Api<Service> = Api::namespaced(cluster.client().clone(), namespace);
    let s = cluster
        .call(
            format!("getting Service {namespace}/{name}"),
            api.get_opt(name),
        )
        .await?;
    Ok(s.and_then(|s| {
        let spec = s.spec?;
        let ip = spec
            .cluster_ip
            .filter(|ip| ip != "None" && !ip.is_empty())?;
        let port = spec
            .ports?
            .into_iter()
            .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")?
            .port;
        Some((ip, u16::try_from(port).ok()?))
    }))
}

/// `cluster/status` of `db` from every usable ovn-central pod, concurrently.
pub async fn raft_views(
    cluster: &Cluster,
    pods: &[(PodRef, CentralPod)],
    db: Db,
    timeout: Duration,
) -> Vec<MemberView> {
    let argv = db.cluster_status_argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let argv = argv.as_slice();
    let futs = pods.iter().map(|(r, c)| async move {
        let status = match &c.unusable {
            Some(why) => Err(format!("pod is not usable: {why}")),
            None => exec_text(cluster, r, container::OVN_CENTRAL, argv, timeout)
                .await
                .and_then(|t| ko_ovn::raft::parse_cluster_status(&t).map_err(|e| e.to_string())),
        };
        MemberView {
            pod: c.name.clone(),
            status,
        }
    });
    futures::future::join_all(futs).await
}

/// `ovn-appctl -t ovn-northd status` from every usable ovn-central pod.
pub async fn northd_views(
    cluster: &Cluster,
    pods: &[(PodRef, CentralPod)],
    timeout: Duration,
) -> Vec<(String, Result<String, String>)> {
    let argv = ["ovn-appctl", "-t", "ovn-northd", "status"];
    let futs = pods.iter().map(|(r, c)| async move {
        let res = match &c.unusable {
            Some(why) => Err(format!("pod is not usable: {why}")),
            None => exec_text(cluster, r, container::OVN_CENTRAL, &argv, timeout).await,
        };
        (c.name.clone(), res)
    });
    futures::future::join_all(futs).await
}

/// `ovn-northd --version` of every usable ovn-central pod (`None` when it
/// could not be read: the version check then says so).
pub async fn central_versions(
    cluster: &Cluster,
    pods: &[(PodRef, CentralPod)],
    timeout: Duration,
) -> Vec<(String, Option<String>)> {
    let argv = ["ovn-northd", "--version"];
    let futs = pods.iter().map(|(r, c)| async move {
        let v = match &c.unusable {
            Some(_) => None,
            None => exec_text(cluster, r, container::OVN_CENTRAL, &argv, timeout)
                .await
                .ok()
                .and_then(|t| versions::parse_version(&t)),
        };
        (c.name.clone(), v)
    });
    futures::future::join_all(futs).await
}

/// Stage "reading cluster objects": the nodes and Kube-OVN's own pods (whole:
/// their labels, container arguments and status are read), and the node or
/// subnet asked for checked to exist. Every pod of the cluster is read apart,
/// by [`all_pods`], beside the stages that do not need them.
pub(super) async fn objects(cluster: &Cluster, what: &Asked) -> crate::error::Result<Objects> {
    let ns = cluster.namespace().to_string();
    let nodes_api: Api<Node> = Api::all(cluster.client().clone());
    let all = ListParams::default();
    let (node_facts, ko_pods) = tokio::try_join!(
        // a summary per node as its page arrives: a 1,000-node list is not kept whole
        cluster.list_mapped(&nodes_api, &all, "listing nodes", |n| Some(node_facts(&n))),
        cluster.list_pods(Some(&ns), None),
    )?;
    let mut central: Vec<&Pod> = ko_pods
        .iter()
        .filter(|p| app_of(p) == Some("ovn-central"))
        .collect();
    central.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if central.is_empty() {
        return Err(crate::error::Error::Usage(format!(
            "Kube-OVN was not found in namespace {ns}: no ovn-central pods (label app=ovn-central) there\n  try: `kubectl get pods -A -l app=ovn-central` to find its namespace, then pass --kube-ovn-namespace <ns> or set KUBE_OVN_NS"
        )));
    }

    // validate node / subnet now that we know what exists
    let mut subnet_spec = None;
    match what {
        Asked::Node(n) if !node_facts.iter().any(|f| &f.name == n) => {
            return Err(not_found(
                "node",
                n,
                node_facts.iter().map(|f| f.name.as_str()),
                "`kubectl get nodes`",
            ));
        }
        Asked::Subnet(s) => {
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
    let central_pods = central
        .iter()
        .map(|p| (PodRef::from_pod(p), central_pod(p)))
        .collect();
    Ok(Objects {
        ns,
        timeout: cluster.timeout(),
        ko_pods,
        node_facts,
        pods: AllPods::default(),
        central_pods,
        subnet_spec,
    })
}

/// Every pod of the cluster, each kept only as what the checks read of it
/// (a 30,000-pod cluster is a few MB this way, not hundreds as whole objects).
pub(super) async fn all_pods(cluster: &Cluster) -> cluster::Result<AllPods> {
    let api: Api<Pod> = Api::all(cluster.client().clone());
    let pods = cluster
        .list_mapped(
            &api,
            &ListParams::default(),
            "listing pods in all namespaces",
            |p| Some((PodRef::from_pod(&p), pod_facts(&p))),
        )
        .await?;
    let (refs, facts) = pods.into_iter().unzip();
    Ok(AllPods { refs, facts })
}

pub async fn ovn_tables(
    cluster: &Cluster,
    nb: Result<PodRef, String>,
    sb: Result<PodRef, String>,
    timeout: Duration,
) -> OvnTables {
    async fn table<T>(
        cluster: &Cluster,
        pod: &Result<PodRef, String>,
        argv: &[&str],
        parse: fn(&str) -> Result<T, ovsdb::TableError>,
        timeout: Duration,
    ) -> Result<T, String> {
        let pod = pod.as_ref().map_err(Clone::clone)?;
        let text = exec_text(cluster, pod, container::OVN_CENTRAL, argv, timeout).await?;
        parse(&text).map_err(|e| format!("`{}`: {e}", argv.join(" ")))
    }
    fn switch_names(json: &str) -> Result<Vec<String>, ovsdb::TableError> {
        Ok(ovsdb::rows(json)?
            .iter()
            .filter_map(|r| r.get("name").and_then(ovsdb::atom))
            .collect())
    }
    let ls_argv = [
        "ovn-nbctl",
        "--format=json",
        "--columns=name",
        "list",
        "Logical_Switch",
    ];
    let (lsps, port_groups, switches, bindings, chassis, encaps) = tokio::join!(
        table(cluster, &nb, commands::NB_LSP, ovsdb::lsps, timeout),
        table(
            cluster,
            &nb,
            commands::NB_PORT_GROUP,
            ovsdb::port_groups,
            timeout
        ),
        table(cluster, &nb, &ls_argv, switch_names, timeout),
        table(
            cluster,
            &sb,
            commands::SB_PORT_BINDING,
            ovsdb::port_bindings,
            timeout
        ),
        table(cluster, &sb, commands::SB_CHASSIS, ovsdb::chassis, timeout),
        table(cluster, &sb, commands::SB_ENCAP, ovsdb::encaps, timeout),
    );
    let sb = match (chassis, encaps) {
        (Ok(chassis), Ok(encaps)) => Ok(SbChassisView { chassis, encaps }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    OvnTables {
        lsps,
        port_groups,
        switches,
        bindings,
        sb,
    }
}

/// Everything the node checks need from one node's ovs-ovn pod: four reads run
/// together in one exec (see `batch.rs`), so a node costs one API round trip.
pub async fn probe_node(
    cluster: &Cluster,
    ovs_pods: &BTreeMap<String, PodRef>,
    node: &str,
    timeout: Duration,
) -> NodeProbe {
    let Some(pod) = ovs_pods.get(node) else {
        return NodeProbe::failed(
            None,
            format!("no ovs-ovn pod (app=ovs) runs on node {node}"),
        );
    };
    const CONN: &[&str] = &["ovn-appctl", "-t", "ovn-controller", "connection-status"];
    const BR: &[&str] = &["ovs-vsctl", "br-exists", "br-int"];
    const AGG: &[&str] = &["ovs-ofctl", "dump-aggregate", "br-int"];
    const OVN_V: &[&str] = &["ovn-controller", "--version"];
    const OVS_V: &[&str] = &["ovs-vswitchd", "--version"];
    let reads = [CONN, BR, AGG, commands::OVS_INTERFACES, OVN_V, OVS_V];
    let outputs = match node_reads(cluster, pod, &reads, timeout).await {
        Ok(o) => o,
        Err(e) => return NodeProbe::failed(Some(pod.name.clone()), e),
    };
    let text = |k: usize| read_text(reads[k], outputs[k].as_ref());
    let (controller, agg, ifaces) = (text(0), text(2), text(3));
    let (ovn_v, ovs_v) = (text(4), text(5));
    NodeProbe {
        ovs_pod: Some(pod.name.clone()),
        error: None,
        controller,
        // br-exists: exit 0 yes, 2 no
        br_int: match &outputs[1] {
            Some(o) if o.exit_code == 0 => Ok(true),
            Some(o) if o.exit_code == 2 => Ok(false),
            Some(o) => Err(format!(
                "`ovs-vsctl br-exists br-int` exited {}: {}",
                o.exit_code,
                o.stderr.trim()
            )),
            None => Err("`ovs-vsctl br-exists br-int` left no result".into()),
        },
        flow_count: agg.and_then(|t| {
            ovsdb::aggregate_flow_count(&t)
                .ok_or_else(|| format!("no flow_count in dump-aggregate output: {}", t.trim()))
        }),
        interfaces: ifaces.and_then(|t| ovsdb::interfaces(&t).map_err(|e| e.to_string())),
        versions: NodeVersions {
            node: node.to_string(),
            ovn_controller: ovn_v.ok().and_then(|t| versions::parse_version(&t)),
            ovs_vswitchd: ovs_v.ok().and_then(|t| versions::parse_version(&t)),
        },
    }
}

/// Runs `reads` concurrently in one exec in the pod's openvswitch container.
async fn node_reads(
    cluster: &Cluster,
    pod: &PodRef,
    reads: &[&[&str]],
    timeout: Duration,
) -> Result<Vec<Option<JobOutput>>, String> {
    let jobs: Vec<Job> = reads
        .iter()
        .map(|argv| Job {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            retry: None,
        })
        .collect();
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let out = cluster
        .exec_capture_timeout(pod, &c, &batch::argv(&jobs), timeout)
        .await
        .map_err(|e| e.to_string())?;
    let results = batch::parse(&out.stdout, jobs.len());
    if results.iter().all(Option::is_none) {
        return Err(format!(
            "the node's reads did not run in {pod} (exit {}): {}",
            out.exit_code,
            out.stderr_str().trim()
        ));
    }
    Ok(results)
}

/// stdout of one read on exit 0, or a one-line reason (as [`exec_text`] words it).
fn read_text(argv: &[&str], out: Option<&JobOutput>) -> Result<String, String> {
    let Some(out) = out else {
        return Err(format!("`{}` left no result", argv.join(" ")));
    };
    if out.exit_code == 0 {
        return Ok(out.stdout.clone());
    }
    let msg = out
        .stderr
        .lines()
        .rev()
        .chain(out.stdout.lines().rev())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    Err(format!(
        "`{}` exited {}: {msg}",
        argv.join(" "),
        out.exit_code
    ))
}
