//! Kubernetes-side component checks: CRDs, Deployments/DaemonSets ready (as
//! upstream's checkDeployment/checkDaemonSet compare their status counters),
//! kube-proxy. [`stage`] reads them from the cluster; the functions after it
//! judge what it read.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::StreamExt;

use crate::check::{Check, Scope};
use crate::cluster::{Cluster, PodRef};
use crate::cmd::diagnose::facts::{WorkloadKind, WorkloadStatus};
use crate::cmd::diagnose::{NODE_CONCURRENCY, Objects, collect, conncheck, first_line, probe};

/// Stage "components": the CRDs, Kube-OVN's Deployments and DaemonSets,
/// coredns and kube-proxy.
pub(in crate::cmd::diagnose) async fn stage(
    cluster: &Cluster,
    objects: &Objects,
    opts: &conncheck::Options,
) -> Vec<Check> {
    let ns = objects.ns.as_str();
    let comps = [
        (WorkloadKind::Deployment, ns, "ovn-central"),
        (WorkloadKind::Deployment, ns, "kube-ovn-controller"),
        (WorkloadKind::DaemonSet, ns, "kube-ovn-cni"),
        (WorkloadKind::DaemonSet, ns, "ovs-ovn"),
        (WorkloadKind::Deployment, "kube-system", "coredns"),
    ];
    let comp_futs = comps
        .iter()
        .map(|(k, n, name)| collect::workload(cluster, *k, n, name));
    let (crds_found, workloads, kube_proxy_ds) = tokio::join!(
        collect::crd_names(cluster),
        futures::future::join_all(comp_futs),
        collect::workload(
            cluster,
            WorkloadKind::DaemonSet,
            "kube-system",
            "kube-proxy"
        ),
    );
    let mut checks = Vec::new();
    match crds_found {
        Ok(c) => checks.push(crds(&c)),
        Err(e) => checks.push(Check::fail(
            "crds",
            Scope::Cluster,
            format!("could not list CRDs: {}", first_line(&e.to_string())),
            "kubectl-ko needs list on customresourcedefinitions (`kubectl auth can-i list crd`)",
        )),
    }
    for ((kind, n, name), w) in comps.iter().zip(workloads) {
        match w {
            Ok(w) => checks.push(workload(*kind, n, name, w.as_ref())),
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
        kube_proxy_check(cluster, objects, kube_proxy_ds).await
    });
    checks
}

/// kube-proxy as upstream checks it: the DaemonSet when there is one;
/// otherwise curl :10256/healthz from each
/// node's kube-ovn-cni pod.
async fn kube_proxy_check(
    cluster: &Cluster,
    objects: &Objects,
    ds: crate::cluster::Result<Option<WorkloadStatus>>,
) -> Check {
    let (nodes, timeout) = (&objects.node_facts, objects.timeout);
    match ds {
        Ok(Some(w)) => {
            return workload(
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
    let cni: Vec<PodRef> = objects
        .app_pods("kube-ovn-cni")
        .filter(|p| crate::cluster::locate::unusable_reason(p).is_none())
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
    kube_proxy_healthz(&results)
}

/// The CRDs upstream `diagnose` requires (`kubectl get crd <x>.kubeovn.io`).
pub const REQUIRED_CRDS: &[&str] = &[
    "vpcs",
    "vpc-nat-gateways",
    "vpc-egress-gateways",
    "subnets",
    "ips",
    "vlans",
    "provider-networks",
    "security-groups",
    "vips",
    "vpc-dnses",
    "switch-lb-rules",
    "ippools",
    "ovn-eips",
    "ovn-fips",
    "ovn-dnat-rules",
    "ovn-snat-rules",
    "iptables-eips",
    "iptables-fip-rules",
    "iptables-snat-rules",
    "iptables-dnat-rules",
];

pub fn crds(present: &BTreeSet<String>) -> Check {
    let missing: Vec<String> = REQUIRED_CRDS
        .iter()
        .map(|c| format!("{c}.kubeovn.io"))
        .filter(|c| !present.contains(c))
        .collect();
    if missing.is_empty() {
        Check::pass(
            "crds",
            Scope::Cluster,
            format!("all {} Kube-OVN CRDs are installed", REQUIRED_CRDS.len()),
        )
    } else {
        Check::fail(
            "crds",
            Scope::Cluster,
            format!("missing CRDs: {}", missing.join(", ")),
            "install or upgrade Kube-OVN's CRDs (install.sh / the chart); `kubectl get crd | grep kubeovn.io`",
        )
    }
}

/// One component: `found` None = the object does not exist.
pub fn workload(
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    found: Option<&WorkloadStatus>,
) -> Check {
    let check_name = format!("component/{name}");
    let Some(w) = found else {
        return Check::fail(
            &check_name,
            Scope::Cluster,
            format!("{} {namespace}/{name} does not exist", kind.word()),
            format!(
                "is Kube-OVN installed in namespace {namespace}? pass --kube-ovn-namespace / KUBE_OVN_NS if it runs elsewhere; `kubectl get {} -A | grep {name}`",
                kind.word()
            ),
        );
    };
    let counters = format!(
        "desired {}, {} {}, ready {}, available {}",
        w.desired,
        match kind {
            WorkloadKind::Deployment => "updated",
            WorkloadKind::DaemonSet => "scheduled",
        },
        w.current,
        w.ready,
        w.available
    );
    if w.desired == w.current && w.current == w.ready && w.ready == w.available {
        Check::pass(
            &check_name,
            Scope::Cluster,
            format!("{} {namespace}/{name} ready ({counters})", kind.word()),
        )
    } else {
        Check::fail(
            &check_name,
            Scope::Cluster,
            format!("{} {namespace}/{name} not ready ({counters})", kind.word()),
            format!(
                "`kubectl -n {namespace} get pods -o wide | grep {name}` and describe the pods that are not ready"
            ),
        )
    }
}

/// kube-proxy: a DaemonSet check when it exists; otherwise the per-node
/// healthz probe results (node, Ok(()) or the failure).
pub fn kube_proxy_healthz(results: &[(String, Result<(), String>)]) -> Check {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    if results.is_empty() {
        return Check::warn(
            "component/kube-proxy",
            Scope::Cluster,
            "no kube-proxy DaemonSet and no node to probe :10256/healthz on",
            "set WITHOUT_KUBE_PROXY=true if the cluster runs without kube-proxy",
        );
    }
    if failed.is_empty() {
        Check::pass(
            "component/kube-proxy",
            Scope::Cluster,
            format!("kube-proxy healthz answers on {} node(s)", results.len()),
        )
    } else {
        // Warn, not fail: many clusters run without kube-proxy; the Service
        // probe in the connectivity matrix is what proves Services work.
        Check::warn(
            "component/kube-proxy",
            Scope::Cluster,
            format!(
                "no kube-proxy DaemonSet, and :10256/healthz does not answer on {}",
                failed.join("; ")
            ),
            "if the cluster runs without kube-proxy, set WITHOUT_KUBE_PROXY=true to skip this check",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn missing_crds_are_named() {
        let mut present: BTreeSet<String> = REQUIRED_CRDS
            .iter()
            .map(|c| format!("{c}.kubeovn.io"))
            .collect();
        assert_eq!(crds(&present).status, Status::Pass);
        present.remove("vips.kubeovn.io");
        let c = crds(&present);
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("vips.kubeovn.io"));
    }

    #[test]
    fn workload_counters_must_agree() {
        let mut w = WorkloadStatus {
            kind: WorkloadKind::DaemonSet,
            namespace: "kube-system".into(),
            name: "ovs-ovn".into(),
            desired: 3,
            current: 3,
            ready: 3,
            available: 3,
        };
        let ok = workload(WorkloadKind::DaemonSet, "kube-system", "ovs-ovn", Some(&w));
        assert_eq!(ok.status, Status::Pass);
        w.ready = 2;
        let bad = workload(WorkloadKind::DaemonSet, "kube-system", "ovs-ovn", Some(&w));
        assert_eq!(bad.status, Status::Fail);
        assert!(bad.message.contains("ready 2"));
        let gone = workload(WorkloadKind::Deployment, "kube-ovn", "ovn-central", None);
        assert_eq!(gone.status, Status::Fail);
        assert!(gone.hint.contains("KUBE_OVN_NS"));
    }

    #[test]
    fn kube_proxy_probe_failures_warn() {
        let c = kube_proxy_healthz(&[
            ("n1".into(), Ok(())),
            ("n2".into(), Err("connection refused".into())),
        ]);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("n2: connection refused"));
        assert_eq!(
            kube_proxy_healthz(&[("n1".into(), Ok(()))]).status,
            Status::Pass
        );
    }
}
