//! Per-pod agreement between Kubernetes, NB and SB: the pod's LSP exists, its
//! addresses match the ip/mac annotations, its Port_Binding is on the chassis
//! of the pod's node and up; no LSP outlives its pod.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::{Check, Scope};
use crate::cmd::diagnose::facts::{NodeFacts, OvnTables, PodFacts, SbChassisView};
use crate::cmd::diagnose::ovsdb::{Lsp, PortBinding};
use crate::cmd::diagnose::{Asked, Objects};

use crate::cmd::diagnose::first_line;

/// Stage "pods and subnet": every selected pod's annotations against its
/// NB port and SB binding; for `diagnose subnet`, its logical switch.
pub(in crate::cmd::diagnose) fn stage(
    objects: &Objects,
    what: &Asked,
    tables: &OvnTables,
) -> Vec<Check> {
    let filter = match what {
        Asked::All => Some(PodFilter::All),
        Asked::Node(n) => Some(PodFilter::Node(n)),
        Asked::Subnet(s) => Some(PodFilter::Subnet(s)),
        Asked::IpPorts(_) => None,
    };
    let mut checks = Vec::new();
    if let Some(f) = filter {
        checks.extend(pod_checks(
            &objects.ns,
            f,
            &objects.pods.facts,
            &objects.node_facts,
            &tables.lsps,
            &tables.bindings,
            &tables.sb,
        ));
    }
    if let Asked::Subnet(s) = what {
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
    checks
}

/// Which pods a run looks at.
#[derive(Debug, Clone, Copy)]
pub enum PodFilter<'a> {
    All,
    Node(&'a str),
    Subnet(&'a str),
}

impl PodFilter<'_> {
    fn keeps(&self, p: &PodFacts) -> bool {
        match self {
            PodFilter::All => true,
            PodFilter::Node(n) => p.node.as_deref() == Some(n),
            PodFilter::Subnet(s) => p.logical_switch.as_deref() == Some(s),
        }
    }
    fn keeps_lsp(&self, l: &Lsp) -> bool {
        match self {
            PodFilter::All | PodFilter::Node(_) => true,
            PodFilter::Subnet(s) => l.external_ids.get("ls").map(String::as_str) == Some(s),
        }
    }
    fn scope(&self) -> Scope {
        match self {
            PodFilter::All => Scope::Cluster,
            PodFilter::Node(n) => Scope::node(n),
            PodFilter::Subnet(s) => Scope::Subnet(s.to_string()),
        }
    }
}

fn ip_set<'a>(ips: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    // normalise: parse when possible so `fd00::0a` and `fd00::a` compare equal
    ips.into_iter()
        .map(|s| {
            s.parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| s.clone())
        })
        .collect()
}

pub fn pod_checks(
    namespace: &str,
    filter: PodFilter<'_>,
    pods: &[PodFacts],
    nodes: &[NodeFacts],
    lsps: &Result<Vec<Lsp>, String>,
    bindings: &Result<Vec<PortBinding>, String>,
    sb: &Result<SbChassisView, String>,
) -> Vec<Check> {
    let (lsps, bindings) = match (lsps, bindings) {
        (Ok(l), Ok(b)) => (l, b),
        (Err(e), _) | (_, Err(e)) => {
            return vec![Check::fail(
                "pod-ports",
                filter.scope(),
                format!(
                    "could not read NB ports / SB bindings to check pods: {}",
                    first_line(e)
                ),
                "see the NB/SB database checks",
            )];
        }
    };
    let index = PortIndex::new(lsps, bindings, nodes, sb);
    let mut out = Vec::new();
    let mut checked = 0usize;
    let mut problems = 0usize;
    for p in pods
        .iter()
        .filter(|p| p.is_ovn() && p.running && filter.keeps(p))
    {
        checked += 1;
        let failed = pod_port(namespace, p, &index);
        problems += failed.len();
        out.extend(failed);
    }
    out.extend(stale_ports(filter, pods, lsps));
    if problems == 0 {
        out.push(Check::pass(
            "pod-ports",
            filter.scope(),
            format!("{checked} running pod(s): ports exist, addresses match annotations, bound on their node and up"),
        ));
    }
    out
}

/// The NB ports and SB bindings a run reads, keyed as the per-pod checks look them up.
struct PortIndex<'a> {
    lsp_by_name: BTreeMap<&'a str, &'a Lsp>,
    pb_by_port: BTreeMap<&'a str, &'a PortBinding>,
    /// chassis row uuid -> node name
    chassis_node: BTreeMap<String, String>,
    chassis_name: BTreeMap<&'a str, &'a str>,
}

impl<'a> PortIndex<'a> {
    fn new(
        lsps: &'a [Lsp],
        bindings: &'a [PortBinding],
        nodes: &[NodeFacts],
        sb: &'a Result<SbChassisView, String>,
    ) -> Self {
        let lsp_by_name = lsps.iter().map(|l| (l.name.as_str(), l)).collect();
        let pb_by_port = bindings
            .iter()
            .map(|b| (b.logical_port.as_str(), b))
            .collect();
        let chassis_node = match sb {
            Ok(view) => nodes
                .iter()
                .filter_map(|n| view.chassis_of(n).map(|c| (c.uuid.clone(), n.name.clone())))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let chassis_name = match sb {
            Ok(view) => view
                .chassis
                .iter()
                .map(|c| (c.uuid.as_str(), c.name.as_str()))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        PortIndex {
            lsp_by_name,
            pb_by_port,
            chassis_node,
            chassis_name,
        }
    }
}

/// One running OVN pod: the failed checks of its port (none when all is well).
fn pod_port(namespace: &str, p: &PodFacts, index: &PortIndex) -> Vec<Check> {
    let scope = Scope::pod(&p.namespace, &p.name);
    let lsp_name = p.lsp_name();
    let ls = p.logical_switch.as_deref().unwrap_or_default();
    let Some(lsp) = index.lsp_by_name.get(lsp_name.as_str()) else {
        return vec![Check::fail(
            "pod-port",
            scope,
            format!(
                "running pod {}/{} has no logical switch port {lsp_name} in the NB database (switch {ls})",
                p.namespace, p.name
            ),
            format!(
                "kube-ovn-controller creates it; check its log (`kubectl -n {namespace} logs deploy/kube-ovn-controller | grep {lsp_name}`), then recreate the pod"
            ),
        )];
    };
    let mut out = Vec::new();
    // addresses vs annotations
    let (lsp_mac, lsp_ips) = lsp.mac_and_ips().unwrap_or_default();
    let want_mac = p.mac.as_deref().unwrap_or_default().to_ascii_lowercase();
    if lsp_mac != want_mac || ip_set(&lsp_ips) != ip_set(&p.ips) {
        out.push(Check::fail(
            "pod-addresses",
            scope.clone(),
            format!(
                "pod {}/{} annotations say ip {} mac {}, but its port {lsp_name} has addresses \"{}\"",
                p.namespace,
                p.name,
                p.ips.join(","),
                if want_mac.is_empty() { "<none>" } else { &want_mac },
                lsp.addresses.join("\", \"")
            ),
            "the pod's ovn.kubernetes.io/ip_address|mac_address annotations and its LSP disagree: traffic to the annotated address is dropped by port security; recreate the pod so kube-ovn-controller reallocates both",
        ));
    }
    out.extend(binding(p, &lsp_name, scope, index));
    out
}

/// The pod's Port_Binding: present, bound on the pod's node, up.
fn binding(p: &PodFacts, lsp_name: &str, scope: Scope, index: &PortIndex) -> Option<Check> {
    let node = p.node.as_deref().unwrap_or("<unscheduled>");
    let Some(pb) = index.pb_by_port.get(lsp_name) else {
        return Some(Check::fail(
            "pod-binding",
            scope,
            format!(
                "port {lsp_name} of pod {}/{} has no Port_Binding in the SB database",
                p.namespace, p.name
            ),
            "ovn-northd creates Port_Bindings from NB ports: see the northd and SB checks",
        ));
    };
    let Some(uuid) = pb.chassis.as_deref() else {
        return Some(Check::fail(
            "pod-binding",
            scope,
            format!(
                "port {lsp_name} of pod {}/{} is not bound to any chassis (pod runs on {node})",
                p.namespace, p.name
            ),
            format!(
                "ovn-controller on {node} binds the port when an OVS interface has external_ids:iface-id={lsp_name}: `kubectl ko vsctl {node} find interface external_ids:iface-id={lsp_name}`"
            ),
        ));
    };
    let bound_node = index.chassis_node.get(uuid).map(String::as_str);
    if bound_node != p.node.as_deref() {
        let on = bound_node
            .map(str::to_string)
            .or_else(|| index.chassis_name.get(uuid).map(|c| format!("chassis {c}")))
            .unwrap_or_else(|| format!("unknown chassis {uuid}"));
        return Some(Check::fail(
            "pod-binding",
            scope,
            format!(
                "port {lsp_name} of pod {}/{} is bound to {on}, but the pod runs on {node}",
                p.namespace, p.name
            ),
            format!(
                "a stale iface-id on the other node claims the port; remove it there (`kubectl ko vsctl <node> find interface external_ids:iface-id={lsp_name}`)"
            ),
        ));
    }
    (pb.up == Some(false)).then(|| {
        Check::fail(
            "pod-binding",
            scope,
            format!(
                "port {lsp_name} of pod {}/{} is bound on {node} but not up",
                p.namespace, p.name
            ),
            format!("ovn-controller on {node} has not finished installing its flows; see its log"),
        )
    })
}

/// LSPs created for a pod that no longer exists.
fn stale_ports(filter: PodFilter<'_>, pods: &[PodFacts], lsps: &[Lsp]) -> Option<Check> {
    let existing: BTreeSet<String> = pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let mut stale = Vec::new();
    for l in lsps.iter().filter(|l| filter.keeps_lsp(l)) {
        let Some(owner) = l.pod() else { continue };
        if matches!(filter, PodFilter::Node(_)) {
            break; // an LSP without a pod has no node to attribute it to
        }
        // attachments are <pod>.<ns>.<provider>; only judge primary ports
        if !existing.contains(owner) && l.name.matches('.').count() == 1 {
            stale.push(l.name.clone());
        }
    }
    (!stale.is_empty()).then(|| {
        Check::warn(
            "stale-ports",
            filter.scope(),
            format!(
                "{} logical switch port(s) belong to pods that no longer exist: {}",
                stale.len(),
                stale.join(", ")
            ),
            "kube-ovn-controller's GC removes them; if they persist, `kubectl ko nbctl lsp-del <port>` after checking no pod uses the IP",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::cmd::diagnose::ovsdb;

    fn fx(path: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/{path}"))
    }

    fn pinger(name: &str, node: &str, ip: &str, mac: &str) -> PodFacts {
        PodFacts {
            namespace: "kube-system".into(),
            name: name.into(),
            node: Some(node.into()),
            running: true,
            host_network: false,
            ips: vec![ip.into()],
            mac: Some(mac.into()),
            logical_switch: Some("ovn-default".into()),
        }
    }

    fn nodes() -> Vec<NodeFacts> {
        ["diagf-node1", "diagf-node2"]
            .iter()
            .map(|n| NodeFacts {
                name: n.to_string(),
                internal_ips: vec![],
                ready: Some(true),
                chassis_annotation: None,
            })
            .collect()
    }

    fn run(dir: &str, pods: &[PodFacts], filter: PodFilter<'_>) -> Vec<Check> {
        let sb = Ok(SbChassisView {
            chassis: ovsdb::chassis(&fx(&format!("{dir}/sb-chassis.json"))).unwrap(),
            encaps: ovsdb::encaps(&fx(&format!("{dir}/sb-encap.json"))).unwrap(),
        });
        pod_checks(
            "kube-system",
            filter,
            pods,
            &nodes(),
            &ovsdb::lsps(&fx(&format!("{dir}/nb-lsp.json"))).map_err(|e| e.to_string()),
            &ovsdb::port_bindings(&fx(&format!("{dir}/sb-port-binding.json")))
                .map_err(|e| e.to_string()),
            &sb,
        )
    }

    fn healthy_pods() -> Vec<PodFacts> {
        vec![
            pinger("pinger-a", "diagf-node1", "10.16.0.11", "0a:58:0a:10:00:11"),
            pinger("pinger-b", "diagf-node2", "10.16.0.12", "0a:58:0a:10:00:12"),
        ]
    }

    #[test]
    fn healthy_pods_pass_and_stale_port_warns() {
        let cs = run("healthy", &healthy_pods(), PodFilter::All);
        let pass = cs.iter().find(|c| c.name == "pod-ports").unwrap();
        assert_eq!(pass.status, Status::Pass);
        assert!(pass.message.starts_with("2 running"));
        let stale = cs.iter().find(|c| c.name == "stale-ports").unwrap();
        assert_eq!(stale.status, Status::Warn);
        assert!(stale.message.contains("stale.default"));
        assert!(cs.iter().all(|c| c.status != Status::Fail), "{cs:#?}");
    }

    #[test]
    fn drifted_annotation_fails_naming_the_pod() {
        let mut pods = healthy_pods();
        pods[0].ips = vec!["10.16.0.200".into()];
        let cs = run("healthy", &pods, PodFilter::All);
        let c = cs.iter().find(|c| c.name == "pod-addresses").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.scope, Scope::pod("kube-system", "pinger-a"));
        assert!(c.message.contains("10.16.0.200") && c.message.contains("10.16.0.11"));
    }

    #[test]
    fn unbound_port_fails() {
        let cs = run(
            "unbound-and-chassis-deleted",
            &healthy_pods(),
            PodFilter::All,
        );
        let a = cs
            .iter()
            .find(|c| c.name == "pod-binding" && c.scope == Scope::pod("kube-system", "pinger-a"))
            .unwrap();
        assert!(a.message.contains("not bound"), "{}", a.message);
        // pinger-b's chassis was deleted too: also unbound
        assert!(
            cs.iter().any(
                |c| c.name == "pod-binding" && c.scope == Scope::pod("kube-system", "pinger-b")
            )
        );
    }

    #[test]
    fn pod_bound_on_the_wrong_node_fails() {
        let mut pods = healthy_pods();
        pods[0].node = Some("diagf-node2".into());
        let cs = run("healthy", &pods, PodFilter::All);
        let c = cs.iter().find(|c| c.name == "pod-binding").unwrap();
        assert!(
            c.message.contains("bound to diagf-node1") && c.message.contains("runs on diagf-node2"),
            "{}",
            c.message
        );
    }

    #[test]
    fn missing_lsp_fails_and_filters_apply() {
        let mut pods = healthy_pods();
        pods.push(pinger(
            "ghost",
            "diagf-node2",
            "10.16.0.50",
            "0a:58:0a:10:00:50",
        ));
        let cs = run("healthy", &pods, PodFilter::Node("diagf-node2"));
        let c = cs.iter().find(|c| c.name == "pod-port").unwrap();
        assert_eq!(c.scope, Scope::pod("kube-system", "ghost"));
        assert!(!cs.iter().any(|c| c.name == "stale-ports"));
        let cs = run("healthy", &healthy_pods(), PodFilter::Subnet("join"));
        assert!(
            cs.iter()
                .any(|c| c.name == "pod-ports" && c.message.starts_with("0 running"))
        );
    }
}
