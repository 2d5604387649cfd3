//! `default/kubernetes`: the Service every cluster has, with the Endpoints and
//! EndpointSlice the API server itself maintains for it (its reconciler, not the
//! endpoint controllers). It points where a kind cluster's API server is: the
//! control-plane node's IP, port 6443 — in the sandbox the emulator's HTTPS port
//! forwarded there by `ko-sandbox kube-proxy-health` (see kube_proxy.rs), so pods
//! reach the emulator the way they reach a real API server.

use serde_json::{Value, json};

use crate::plan::{self, Plan};

/// The first address of the service range (kind: 10.96.0.0/16), as the API server
/// reserves it for this Service.
pub const CLUSTER_IP: &str = "10.96.0.1";
/// kube-apiserver's secure port in kind/kubeadm clusters.
pub const API_PORT: u16 = 6443;

/// The API server's address as seen from the cluster: the control-plane node's IP.
pub fn endpoint_ip(plan: &Plan) -> String {
    plan.nodes[0].ip4.clone()
}

fn meta(plan: &Plan, name: &str, labels: Value) -> Value {
    json!({
        "name": name,
        "namespace": "default",
        "uid": plan::uid_for(&format!("{}/kubernetes-svc/{name}/{}", plan.name, labels)),
        "creationTimestamp": plan.created,
        "resourceVersion": "1",
        "labels": labels,
    })
}

pub fn objects(plan: &Plan) -> Vec<Value> {
    let ip = endpoint_ip(plan);
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(plan, "kubernetes", json!({"component": "apiserver", "provider": "kubernetes"})),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": CLUSTER_IP,
            "clusterIPs": [CLUSTER_IP],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": API_PORT}],
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    });
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta(plan, "kubernetes", json!({"endpointslice.kubernetes.io/skip-mirror": "true"})),
        "subsets": [{
            "addresses": [{"ip": ip}],
            "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}],
        }],
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta(plan, "kubernetes", json!({"kubernetes.io/service-name": "kubernetes"})),
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}}],
        "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}],
    });
    vec![svc, endpoints, slice]
}
