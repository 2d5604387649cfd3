//! Who sends the packet: a pod (its Kube-OVN annotations), a hostNetwork pod
//! (traced as its node, upstream #2761) or a node (`node//name`, its join
//! port). Pure functions over the Kubernetes objects.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod};
use ko_ovn::microflow::Mac;

use crate::cluster::{self, NodeNetwork, PodNetwork, model::OVN_PROVIDER};
use crate::error::{Error, Result};

/// The sending side, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `pod` or `node`.
    pub kind: &'static str,
    /// `ns/pod` or node name.
    pub name: String,
    pub node: String,
    pub logical_switch: String,
    pub logical_port: String,
    pub mac: Mac,
    /// Candidate source addresses in preference order.
    pub ips: Vec<IpAddr>,
    /// `logical_router` annotation (pods only).
    pub logical_router: Option<String>,
    /// CIDRs of the sender's subnet.
    pub cidrs: Vec<String>,
    pub pod_nic_type: Option<String>,
}

fn not_ready(what: &str, missing: &str, hint: &str) -> Error {
    Error::Cluster(cluster::Error::NotFound {
        what: format!("Kube-OVN network of {what}"),
        detail: format!(": annotation ovn.kubernetes.io/{missing} is missing"),
        hint: hint.into(),
    })
}

fn parse_mac(what: &str, mac: Option<&str>) -> Result<Mac> {
    let m = mac.ok_or_else(|| {
        not_ready(
            what,
            "mac_address",
            "wait until kube-ovn-controller has allocated its address (`kubectl get ip`)",
        )
    })?;
    m.parse().map_err(|e| Error::Remote {
        what: format!("reading the MAC annotation of {what}"),
        detail: format!("{e}"),
        hint: "check the ovn.kubernetes.io/mac_address annotation".into(),
    })
}

fn ips(list: &[String]) -> Vec<IpAddr> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

/// A non-hostNetwork pod on the default provider.
pub fn from_pod(pod: &Pod) -> Result<Sender> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let what = format!("pod {ns}/{name}");
    let net = PodNetwork::of_pod(pod, OVN_PROVIDER);
    let hint = "is the pod on a Kube-OVN (OVN) network and allocated? `kubectl get pod -o yaml` should show ovn.kubernetes.io/* annotations";
    let ls = net
        .logical_switch
        .clone()
        .ok_or_else(|| not_ready(&what, "logical_switch", hint))?;
    if net.ip_addresses.is_empty() {
        return Err(not_ready(&what, "ip_address", hint));
    }
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .ok_or_else(|| {
            Error::Cluster(cluster::Error::NotFound {
                what: format!("the node of {what}"),
                detail: ": the pod is not scheduled".into(),
                hint: "trace a pod that is running on a node".into(),
            })
        })?;
    // KubeVirt VMs with keep-vm-ip use the VM's name for the LSP (upstream #1778).
    let vm = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "VirtualMachineInstance")
        .map(|o| o.name.clone());
    Ok(Sender {
        kind: "pod",
        name: format!("{ns}/{name}"),
        node,
        logical_switch: ls,
        logical_port: format!("{}.{ns}", vm.unwrap_or(name)),
        mac: parse_mac(&what, net.mac_address.as_deref())?,
        ips: ips(&net.ip_addresses),
        logical_router: net.logical_router.clone(),
        cidrs: net.cidrs.clone(),
        pod_nic_type: net.pod_nic_type.clone(),
    })
}

/// A node through its join-switch port. ARP uses only the join address;
/// IP traffic prefers the InternalIP, as upstream does.
pub fn from_node(node: &Node, arp: bool) -> Result<Sender> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let what = format!("node {name}");
    let net = NodeNetwork::of_node(node);
    let hint =
        "kube-ovn-controller annotates every node with its join-network port; is Kube-OVN running?";
    let lsp = net
        .port_name
        .clone()
        .ok_or_else(|| not_ready(&what, "port_name", hint))?;
    let ls = net
        .logical_switch
        .clone()
        .unwrap_or_else(|| "join".to_string());
    let mut addrs = Vec::new();
    if !arp {
        addrs.extend(ips(&net.internal_ips));
    }
    addrs.extend(ips(&net.ip_addresses));
    if addrs.is_empty() {
        return Err(not_ready(&what, "ip_address", hint));
    }
    Ok(Sender {
        kind: "node",
        name: name.clone(),
        node: name,
        logical_switch: ls,
        logical_port: lsp,
        mac: parse_mac(&what, net.mac_address.as_deref())?,
        ips: addrs,
        logical_router: None,
        cidrs: net.cidrs.clone(),
        pod_nic_type: None,
    })
}

pub fn is_host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Whether `ip` lies in one of `cidrs` (same family only).
pub fn in_cidrs(ip: IpAddr, cidrs: &[String]) -> bool {
    cidrs.iter().any(|c| {
        let Some((net, len)) = c.split_once('/') else {
            return false;
        };
        let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
            return false;
        };
        match (ip, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    })
}

/// A source pod that cannot send yet (or any more): one sentence with its
/// phase and what to do.
pub fn ready(pod: &Pod) -> cluster::Result<()> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let why = status
        .and_then(|s| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.status != "True" && c.message.is_some())
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.reason.clone().unwrap_or_else(|| c.type_.clone()),
                        c.message.clone().unwrap_or_default()
                    )
                })
                .or_else(|| s.reason.clone())
        })
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let on = node
        .as_deref()
        .map(|n| format!(" on node {n}"))
        .unwrap_or_else(|| ", not scheduled to any node".into());
    let (detail, hint) = if pod.metadata.deletion_timestamp.is_some() {
        (
            format!(
                "pod {ns}/{name} is being deleted (phase {phase}{on}): its port is going away, there is nothing to trace"
            ),
            "trace from its replacement, or another pod".to_string(),
        )
    } else if phase == "Pending" {
        (
            format!(
                "pod {ns}/{name} is Pending{why}{on}: it has no network yet, there is nothing to trace"
            ),
            format!(
                "`kubectl -n {ns} describe pod {name}` says why it is not running; trace again once it is Running"
            ),
        )
    } else if phase != "Running" {
        (
            format!(
                "pod {ns}/{name} is {phase}{why}{on}: it does not send packets, there is nothing to trace"
            ),
            format!("`kubectl -n {ns} describe pod {name}`; trace from a Running pod"),
        )
    } else {
        return Ok(());
    };
    Err(cluster::Error::Api {
        what: format!("tracing from pod {ns}/{name}"),
        detail,
        hint,
    })
}

/// The node a source pod is bound to must exist.
pub fn known_node(node: cluster::Result<Node>, ns: &str, pod: &str) -> cluster::Result<()> {
    existing_node(node, ns, pod).map(|_| ())
}

/// The pod's node as read, a missing one said as the pod's problem.
pub fn existing_node(node: cluster::Result<Node>, ns: &str, pod: &str) -> cluster::Result<Node> {
    match node {
        Ok(n) => Ok(n),
        Err(cluster::Error::NotFound { what, detail, .. }) => Err(cluster::Error::Api {
            what: format!("tracing from pod {ns}/{pod}"),
            detail: format!(
                "the pod is bound to {what}, which does not exist{detail}: no ovn-controller serves it, there is nothing to trace"
            ),
            hint: format!(
                "`kubectl get nodes`; delete the pod (`kubectl -n {ns} delete pod {pod}`) so it is scheduled again"
            ),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let c = vec!["10.16.0.0/16".to_string(), "fd00:10:16::/112".to_string()];
        assert!(in_cidrs("10.16.3.4".parse().unwrap(), &c));
        assert!(!in_cidrs("10.17.0.1".parse().unwrap(), &c));
        assert!(in_cidrs("fd00:10:16::ff".parse().unwrap(), &c));
        assert!(!in_cidrs("fd00:10:17::1".parse().unwrap(), &c));
        assert!(!in_cidrs(
            "10.16.0.1".parse().unwrap(),
            &["garbage".to_string()]
        ));
    }

    #[test]
    fn pods_without_annotations_are_refused() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": []}
        }))
        .unwrap();
        let e = from_pod(&pod).unwrap_err();
        assert!(e.to_string().contains("logical_switch"), "{e}");
        let vm: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "virt-launcher-vm1-x", "namespace": "default",
              "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "vm1", "uid": "u"}],
              "annotations": {"ovn.kubernetes.io/logical_switch": "ovn-default",
                "ovn.kubernetes.io/ip_address": "10.16.0.5", "ovn.kubernetes.io/mac_address": "0a:58:0a:10:00:05",
                "ovn.kubernetes.io/cidr": "10.16.0.0/16"}},
            "spec": {"nodeName": "n1", "containers": []}
        }))
        .unwrap();
        let s = from_pod(&vm).unwrap();
        assert_eq!(s.logical_port, "vm1.default");
        assert_eq!(s.ips, vec!["10.16.0.5".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn pending_and_deleted_pods_are_refused_with_their_phase() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": []},
            "status": {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available"}]}
        }))
        .unwrap();
        let e = ready(&pod).unwrap_err().to_string();
        assert!(e.contains("pod default/p is Pending (Unschedulable: 0/3 nodes are available), not scheduled to any node"), "{e}");
        assert!(e.contains("nothing to trace"), "{e}");
        pod.status.as_mut().unwrap().phase = Some("Running".into());
        assert!(ready(&pod).is_ok());
        pod.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        let e = ready(&pod).unwrap_err().to_string();
        assert!(e.contains("is being deleted"), "{e}");
    }
}
