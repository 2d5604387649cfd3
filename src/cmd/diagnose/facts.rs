//! What diagnose knows about the cluster before it judges it: the facts
//! `collect` gathers from Kubernetes objects and the OVN/OVS tools, and the
//! checks read. Plain data, so the checks depend on it and not on gathering.

use std::collections::BTreeMap;

use ko_ovn::raft::ClusterStatus;
use ko_ovn::versions::NodeVersions;

use super::ovsdb::{self, Chassis, Encap, Interface};

/// A pod as diagnose needs it (from the API object and its Kube-OVN annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    /// phase Running and not being deleted.
    pub running: bool,
    pub host_network: bool,
    /// `ovn.kubernetes.io/ip_address`, split on ','.
    pub ips: Vec<String>,
    /// `ovn.kubernetes.io/mac_address`.
    pub mac: Option<String>,
    /// `ovn.kubernetes.io/logical_switch` (set only for OVN subnets).
    pub logical_switch: Option<String>,
}

impl PodFacts {
    /// Kube-OVN's LSP name for the primary interface.
    pub fn lsp_name(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
    /// Pods Kube-OVN wires into OVN: not hostNetwork, on an OVN logical switch.
    pub fn is_ovn(&self) -> bool {
        !self.host_network && self.logical_switch.is_some()
    }
}

/// A Kubernetes node as diagnose needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub internal_ips: Vec<String>,
    /// The Ready condition (None = not reported).
    pub ready: Option<bool>,
    /// `ovn.kubernetes.io/chassis` (the system-id kube-ovn-cni found).
    pub chassis_annotation: Option<String>,
}

/// What the node's ovs-ovn pod answered. Each field is the parsed answer or
/// why there is none; `error` is set when the node could not be probed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProbe {
    pub ovs_pod: Option<String>,
    pub error: Option<String>,
    /// `ovn-appctl -t ovn-controller connection-status` output.
    pub controller: Result<String, String>,
    pub br_int: Result<bool, String>,
    pub flow_count: Result<u64, String>,
    pub interfaces: Result<Vec<Interface>, String>,
    /// `ovn-controller --version` / `ovs-vswitchd --version` (None = unread).
    pub versions: NodeVersions,
}

impl NodeProbe {
    /// A node whose probe could not run at all (no ovs-ovn pod, timeout...).
    pub fn failed(ovs_pod: Option<String>, error: String) -> Self {
        NodeProbe {
            ovs_pod,
            error: Some(error.clone()),
            controller: Err(error.clone()),
            br_int: Err(error.clone()),
            flow_count: Err(error.clone()),
            interfaces: Err(error),
            versions: NodeVersions::default(),
        }
    }
}

/// SB tables shared by all node checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbChassisView {
    pub chassis: Vec<Chassis>,
    pub encaps: Vec<Encap>,
}

impl SbChassisView {
    pub fn chassis_of(&self, node: &NodeFacts) -> Option<&Chassis> {
        self.chassis
            .iter()
            .find(|c| c.is_node(&node.name, node.chassis_annotation.as_deref()))
    }
    pub fn encap_ips(&self, ch: &Chassis) -> Vec<&str> {
        self.encaps
            .iter()
            .filter(|e| e.belongs_to(ch))
            .map(|e| e.ip.as_str())
            .filter(|ip| !ip.is_empty())
            .collect()
    }
}

/// One ovn-central pod as Kubernetes sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralPod {
    pub name: String,
    pub node: Option<String>,
    pub ip: Option<String>,
    /// Why it cannot be exec'd into, if so.
    pub unusable: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl CentralPod {
    pub fn label_true(&self, key: &str) -> bool {
        self.labels.get(key).map(String::as_str) == Some("true")
    }
}

/// What one pod's database server said (or why it said nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub pod: String,
    pub status: Result<ClusterStatus, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
}

impl WorkloadKind {
    pub fn word(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }
}

/// Status counters of one Deployment/DaemonSet (absent fields are 0, as the
/// API server omits zero counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStatus {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// Deployment: replicas; DaemonSet: desiredNumberScheduled.
    pub desired: i32,
    /// Deployment: updatedReplicas; DaemonSet: currentNumberScheduled.
    pub current: i32,
    pub ready: i32,
    pub available: i32,
}

/// NB/SB tables read from the databases' leader pods.
pub struct OvnTables {
    pub lsps: Result<Vec<ovsdb::Lsp>, String>,
    pub port_groups: Result<Vec<ovsdb::PortGroup>, String>,
    pub switches: Result<Vec<String>, String>,
    pub bindings: Result<Vec<ovsdb::PortBinding>, String>,
    pub sb: Result<SbChassisView, String>,
}
