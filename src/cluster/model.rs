//! Typed views of Kube-OVN's annotations and CRDs (facts §1, §2, §6). Only the
//! fields kubectl-ko uses are typed; unknown fields are ignored.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};

/// Annotation prefix of the default provider; attachments use `<provider>.`.
pub const OVN_PROVIDER: &str = "ovn";

fn annotation<'a>(
    annotations: &'a BTreeMap<String, String>,
    provider: &str,
    key: &str,
) -> Option<&'a str> {
    annotations
        .get(&format!("{provider}.kubernetes.io/{key}"))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn split_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// A pod's network as Kube-OVN annotated it for one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetwork {
    pub provider: String,
    pub allocated: bool,
    pub routed: bool,
    /// IPv4 first, then IPv6 (as Kube-OVN writes them).
    pub ip_addresses: Vec<String>,
    pub mac_address: Option<String>,
    pub cidrs: Vec<String>,
    pub gateways: Vec<String>,
    pub logical_switch: Option<String>,
    pub logical_router: Option<String>,
    pub pod_nic_type: Option<String>,
    pub vlan_id: Option<String>,
    pub provider_network: Option<String>,
}

impl PodNetwork {
    /// Read the annotations of `provider` ("ovn" for the primary network).
    pub fn from_annotations(annotations: &BTreeMap<String, String>, provider: &str) -> Self {
        let a = |k| annotation(annotations, provider, k);
        PodNetwork {
            provider: provider.to_string(),
            allocated: a("allocated") == Some("true"),
            routed: a("routed") == Some("true"),
            ip_addresses: split_list(a("ip_address")),
            mac_address: a("mac_address").map(String::from),
            cidrs: split_list(a("cidr")),
            gateways: split_list(a("gateway")),
            logical_switch: a("logical_switch").map(String::from),
            logical_router: a("logical_router").map(String::from),
            pod_nic_type: a("pod_nic_type").map(String::from),
            vlan_id: a("vlan_id").map(String::from),
            provider_network: a("provider_network").map(String::from),
        }
    }

    pub fn of_pod(pod: &Pod, provider: &str) -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        Self::from_annotations(
            pod.metadata.annotations.as_ref().unwrap_or(&EMPTY),
            provider,
        )
    }

    /// The first IPv4 (`v6 == false`) or IPv6 address.
    pub fn ip(&self, v6: bool) -> Option<&str> {
        self.ip_addresses
            .iter()
            .map(String::as_str)
            .find(|ip| ip.contains(':') == v6)
    }
}

/// A node's join-network identity as Kube-OVN annotated it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNetwork {
    pub allocated: bool,
    pub ip_addresses: Vec<String>,
    pub mac_address: Option<String>,
    pub cidrs: Vec<String>,
    pub gateways: Vec<String>,
    pub logical_switch: Option<String>,
    /// LSP name on the join switch, `node-<node>`.
    pub port_name: Option<String>,
    /// OVN chassis name (system-id), written by kube-ovn-cni.
    pub chassis: Option<String>,
    /// The node's InternalIP addresses from status.
    pub internal_ips: Vec<String>,
}

impl NodeNetwork {
    pub fn of_node(node: &Node) -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        let ann = node.metadata.annotations.as_ref().unwrap_or(&EMPTY);
        let a = |k| annotation(ann, OVN_PROVIDER, k);
        NodeNetwork {
            allocated: a("allocated") == Some("true"),
            ip_addresses: split_list(a("ip_address")),
            mac_address: a("mac_address").map(String::from),
            cidrs: split_list(a("cidr")),
            gateways: split_list(a("gateway")),
            logical_switch: a("logical_switch").map(String::from),
            port_name: a("port_name").map(String::from),
            chassis: a("chassis").map(String::from),
            internal_ips: node
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .map(|addrs| {
                    addrs
                        .iter()
                        .filter(|a| a.type_ == "InternalIP")
                        .map(|a| a.address.clone())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// kubeovn.io/v1 Subnet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: SubnetSpec,
    #[serde(default)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubnetSpec {
    pub default: bool,
    pub vpc: Option<String>,
    pub protocol: Option<String>,
    pub namespaces: Vec<String>,
    pub cidr_block: Option<String>,
    pub gateway: Option<String>,
    pub exclude_ips: Vec<String>,
    pub provider: Option<String>,
    pub gateway_type: Option<String>,
    pub gateway_node: Option<String>,
    pub nat_outgoing: bool,
    pub private: bool,
    pub allow_subnets: Vec<String>,
    pub vlan: Option<String>,
    pub logical_gateway: bool,
    pub u2o_interconnection: bool,
    pub enable_lb: Option<bool>,
}

impl Subnet {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Underlay subnet without an OVN logical gateway (trace uses ARP for the gw MAC).
    pub fn is_underlay(&self) -> bool {
        self.spec.vlan.as_deref().is_some_and(|v| !v.is_empty())
            && !self.spec.logical_gateway
            && !self.spec.u2o_interconnection
    }
}

/// kubeovn.io/v1 Vpc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vpc {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default)]
    pub status: VpcStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VpcStatus {
    pub default: bool,
    pub default_logical_switch: Option<String>,
    pub router: Option<String>,
    pub subnets: Vec<String>,
    pub standby: bool,
}

impl Vpc {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}

fn kubeovn(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubeovn.io", "v1", kind), plural)
}

pub fn subnet_resource() -> ApiResource {
    kubeovn("Subnet", "subnets")
}

pub fn vpc_resource() -> ApiResource {
    kubeovn("Vpc", "vpcs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_stack_pod_annotations() {
        let mut ann = BTreeMap::new();
        for (k, v) in [
            ("allocated", "true"),
            ("ip_address", "10.16.0.12,fd00:10:16::c"),
            ("mac_address", "a6:1f:3c:8e:20:7b"),
            ("cidr", "10.16.0.0/16,fd00:10:16::/112"),
            ("gateway", "10.16.0.1,fd00:10:16::1"),
            ("logical_switch", "ovn-default"),
            ("pod_nic_type", "veth-pair"),
            ("logical_router", "ovn-cluster"),
        ] {
            ann.insert(format!("ovn.kubernetes.io/{k}"), v.to_string());
        }
        ann.insert(
            "attachnet.default.ovn.kubernetes.io/ip_address".into(),
            "172.17.0.2".into(),
        );
        let n = PodNetwork::from_annotations(&ann, OVN_PROVIDER);
        assert!(n.allocated);
        assert!(!n.routed);
        assert_eq!(n.ip(false), Some("10.16.0.12"));
        assert_eq!(n.ip(true), Some("fd00:10:16::c"));
        assert_eq!(n.logical_switch.as_deref(), Some("ovn-default"));
        assert_eq!(n.gateways.len(), 2);
        let att = PodNetwork::from_annotations(&ann, "attachnet.default.ovn");
        assert_eq!(att.ip_addresses, vec!["172.17.0.2".to_string()]);
        assert_eq!(att.logical_switch, None);
    }

    #[test]
    fn subnet_decodes_from_crd_json() {
        let v = serde_json::json!({
            "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
            "metadata": {"name": "ovn-default"},
            "spec": {"default": true, "vpc": "ovn-cluster", "cidrBlock": "10.16.0.0/16",
                     "gateway": "10.16.0.1", "natOutgoing": true, "provider": "ovn",
                     "excludeIps": ["10.16.0.1"], "someNewField": 1},
            "status": {"v4availableIPs": 65530}
        });
        let s: Subnet = serde_json::from_value(v).unwrap();
        assert_eq!(s.name(), "ovn-default");
        assert!(s.spec.default && s.spec.nat_outgoing);
        assert!(!s.is_underlay());
        assert_eq!(s.spec.cidr_block.as_deref(), Some("10.16.0.0/16"));
    }
}
