//! What one reconcile pass reads: the API objects the controller acts on (one list
//! per kind from the emulator) and the LSPs the NB has.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::api;

/// An LSP as the NB has it (what the SecurityGroup and port group code needs).
#[derive(Clone, Debug, Default)]
pub struct Lsp {
    pub uuid: String,
    pub addresses: Vec<String>,
    pub port_security: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct World {
    pub pods: Vec<Value>,
    pub namespaces: Vec<Value>,
    pub subnets: BTreeMap<String, Value>,
    pub services: Vec<Value>,
    pub slices: Vec<Value>,
    pub endpoints: Vec<Value>,
    pub policies: Vec<Value>,
    pub security_groups: Vec<Value>,
    pub vpcs: Vec<Value>,
    pub nodes: Vec<Value>,
    pub vlans: Vec<Value>,
    pub admin_policies: Vec<Value>,
    pub baseline_policies: Vec<Value>,
    pub lsps: BTreeMap<String, Lsp>,
}

/// The collections the controller lists (and watches): path and what it fills.
pub const COLLECTIONS: &[&str] = &[
    "/api/v1/pods",
    "/api/v1/namespaces",
    "/api/v1/services",
    "/api/v1/endpoints",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/apis/networking.k8s.io/v1/networkpolicies",
    "/apis/kubeovn.io/v1/subnets",
    "/apis/kubeovn.io/v1/security-groups",
    "/apis/kubeovn.io/v1/vpcs",
    "/api/v1/nodes",
    VLANS,
    ADMIN_POLICIES,
    BASELINE_POLICIES,
];

const VLANS: &str = "/apis/kubeovn.io/v1/vlans";
const ADMIN_POLICIES: &str = "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies";
const BASELINE_POLICIES: &str =
    "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies";

/// The collections whose changes call for a pass (the controller's own writes to
/// Endpoints are not among them).
pub const WATCHED: &[&str] = &[
    "/api/v1/pods",
    "/api/v1/namespaces",
    "/api/v1/services",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/apis/networking.k8s.io/v1/networkpolicies",
    "/apis/kubeovn.io/v1/subnets",
    "/apis/kubeovn.io/v1/security-groups",
    "/apis/kubeovn.io/v1/vpcs",
    VLANS,
    ADMIN_POLICIES,
    BASELINE_POLICIES,
];

fn list(port: u16, path: &str) -> Result<Vec<Value>> {
    let (code, body) = api::request(port, "GET", path, None)?;
    if code != 200 {
        bail!(
            "GET {path} on the emulator answered {code}: {}",
            body.trim()
        );
    }
    let v: Value =
        serde_json::from_str(&body).with_context(|| format!("parsing the answer to GET {path}"))?;
    Ok(v["items"].as_array().cloned().unwrap_or_default())
}

impl World {
    /// Every API collection; the LSPs are filled by the NB reader.
    pub fn fetch(port: u16) -> Result<World> {
        let mut w = World::default();
        for path in COLLECTIONS {
            let items = list(port, path)?;
            match *path {
                "/api/v1/pods" => w.pods = items,
                "/api/v1/namespaces" => w.namespaces = items,
                "/api/v1/services" => w.services = items,
                "/api/v1/endpoints" => w.endpoints = items,
                "/apis/discovery.k8s.io/v1/endpointslices" => w.slices = items,
                "/apis/networking.k8s.io/v1/networkpolicies" => w.policies = items,
                "/apis/kubeovn.io/v1/subnets" => {
                    w.subnets = items
                        .into_iter()
                        .map(|s| (name(&s).to_string(), s))
                        .collect()
                }
                "/apis/kubeovn.io/v1/vpcs" => w.vpcs = items,
                "/api/v1/nodes" => w.nodes = items,
                "/apis/kubeovn.io/v1/security-groups" => w.security_groups = items,
                VLANS => w.vlans = items,
                ADMIN_POLICIES => w.admin_policies = items,
                BASELINE_POLICIES => w.baseline_policies = items,
                other => bail!("the controller lists {other} but keeps it nowhere"),
            }
        }
        Ok(w)
    }

    pub fn pods_in(&self, ns: &str) -> impl Iterator<Item = &Value> + '_ {
        let ns = ns.to_string();
        self.pods.iter().filter(move |p| namespace(p) == ns)
    }
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

/// A pod's addresses as Kube-OVN records them (`ovn.kubernetes.io/ip_address`; on a
/// Node, its join addresses).
pub fn pod_ips(p: &Value) -> Vec<String> {
    annotation(p, "ovn.kubernetes.io/ip_address")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The LSP of a pod Kube-OVN has allocated on an OVN subnet (`<pod>.<ns>`).
pub fn pod_lsp(p: &Value) -> Option<String> {
    if p["spec"]["hostNetwork"].as_bool() == Some(true)
        || annotation(p, "ovn.kubernetes.io/allocated") != Some("true")
    {
        return None;
    }
    Some(format!("{}.{}", name(p), namespace(p)))
}
