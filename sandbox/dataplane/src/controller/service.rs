//! Services: the `Endpoints` and `EndpointSlice` objects Kubernetes' endpoints and
//! endpointslice controllers keep (from the selector and the pods' readiness), and
//! the VIPs kube-ovn-controller's `handleUpdateEndpointSlice`
//! (pkg/controller/endpoint_slice.go) puts in the VPC's TCP/UDP/SCTP load balancers
//! (the session ones for `sessionAffinity: ClientIP`); a VIP without ready backends
//! is removed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{Desired, family, host_port};
use super::selector;
use super::world::{self, World};

pub const SLICE_MANAGER: &str = "endpointslice-controller.k8s.io";
const EP_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
const EP_MANAGER: &str = "endpoint-controller";

/// One write to the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiWrite {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

/// A selected pod as an endpoint: address per family, readiness, resolved ports.
struct Backend<'a> {
    pod: &'a Value,
    ready: bool,
}

fn pod_ips(p: &Value) -> Vec<String> {
    let mut ips: Vec<String> = p["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["ip"].as_str().map(str::to_string))
        .collect();
    if ips.is_empty()
        && let Some(ip) = p["status"]["podIP"].as_str()
    {
        ips.push(ip.to_string());
    }
    ips
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The pods a Service selects that have an address (Kubernetes skips the others).
fn backends<'a>(svc: &Value, w: &'a World) -> Vec<Backend<'a>> {
    let ns = world::namespace(svc);
    let mut v: Vec<Backend> = w
        .pods_in(ns)
        .filter(|p| selector::map_matches(&svc["spec"]["selector"], &p["metadata"]["labels"]))
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| !pod_ips(p).is_empty())
        .map(|pod| Backend {
            pod,
            ready: is_ready(pod),
        })
        .collect();
    v.sort_by_key(|b| world::name(b.pod).to_string());
    v
}

/// The container port a Service port targets in a pod (`FindPort`).
fn target_port(svc_port: &Value, pod: Option<&Value>) -> Option<i64> {
    let t = &svc_port["targetPort"];
    if let Some(n) = t.as_i64() {
        return Some(n);
    }
    let Some(name) = t.as_str() else {
        return svc_port["port"].as_i64();
    };
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    pod?["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_i64())
}

fn ports_for(svc: &Value, pod: Option<&Value>) -> Vec<Value> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = target_port(p, pod)?;
            Some(
                json!({"name": p["name"].as_str().unwrap_or(""), "port": port,
                        "protocol": p["protocol"].as_str().unwrap_or("TCP")}),
            )
        })
        .collect()
}

fn target_ref(p: &Value) -> Value {
    json!({"kind": "Pod", "namespace": world::namespace(p), "name": world::name(p),
           "uid": p["metadata"]["uid"]})
}

/// The `subsets` of the Service's Endpoints object (absent when there is no pod).
fn subsets(svc: &Value, bs: &[Backend]) -> Value {
    // pods whose named ports resolve alike share a subset, as in Kubernetes
    #[derive(Default)]
    struct Group {
        ready: Vec<Value>,
        not_ready: Vec<Value>,
        ports: Vec<Value>,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for b in bs {
        // Endpoints omit an empty port name (EndpointSlices keep it as "")
        let mut ports = ports_for(svc, Some(b.pod));
        for p in &mut ports {
            if p["name"] == ""
                && let Some(m) = p.as_object_mut()
            {
                m.remove("name");
            }
        }
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let e = groups.entry(key).or_insert_with(|| Group {
            ports,
            ..Group::default()
        });
        let mut addr = json!({"ip": pod_ips(b.pod)[0], "targetRef": target_ref(b.pod)});
        if let Some(n) = b.pod["spec"]["nodeName"].as_str() {
            addr["nodeName"] = json!(n);
        }
        if b.ready {
            e.ready.push(addr)
        } else {
            e.not_ready.push(addr)
        }
    }
    let subsets: Vec<Value> = groups
        .into_values()
        .map(|g| {
            let mut s = json!({"ports": g.ports});
            if !g.ready.is_empty() {
                s["addresses"] = json!(g.ready);
            }
            if !g.not_ready.is_empty() {
                s["notReadyAddresses"] = json!(g.not_ready);
            }
            s
        })
        .collect();
    if subsets.is_empty() {
        Value::Null
    } else {
        json!(subsets)
    }
}

/// The endpoints of one family's slice, shaped like the emulator's leader probe
/// writes them for ovn-nb/sb/northd, so both agree on those Services.
fn slice_endpoints(bs: &[Backend], fam: &str) -> Value {
    let eps: Vec<Value> = bs
        .iter()
        .filter_map(|b| {
            let ip = pod_ips(b.pod).into_iter().find(|ip| family(ip) == fam)?;
            let mut e = json!({"addresses": [ip],
                "conditions": {"ready": b.ready, "serving": b.ready, "terminating": false},
                "targetRef": target_ref(b.pod)});
            if let Some(n) = b.pod["spec"]["nodeName"].as_str() {
                e["nodeName"] = json!(n);
            }
            Some(e)
        })
        .collect();
    json!(eps)
}

fn families(svc: &Value) -> Vec<String> {
    let f: Vec<String> = svc["spec"]["ipFamilies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    if f.is_empty() { vec!["IPv4".into()] } else { f }
}

/// The Endpoints/EndpointSlice writes that bring the API in line with the
/// Services; `slices` becomes what the API will hold afterwards.
pub fn endpoint_writes(w: &World, slices: &mut Vec<Value>) -> Vec<ApiWrite> {
    let mut writes = Vec::new();
    let svc_key = |o: &Value| format!("{}/{}", world::namespace(o), world::name(o));
    let services: BTreeMap<String, &Value> = w.services.iter().map(|s| (svc_key(s), s)).collect();
    for svc in w.services.iter().filter(|s| {
        s["spec"]["selector"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    }) {
        let bs = backends(svc, w);
        endpoints_object(svc, &bs, w, &mut writes);
        for fam in families(svc) {
            slice_object(svc, &bs, &fam, slices, &mut writes);
        }
    }
    // objects this controller manages whose Service is gone
    for ep in &w.endpoints {
        if ep["metadata"]["labels"][EP_MANAGED_BY] == EP_MANAGER
            && !services.contains_key(&svc_key(ep))
        {
            writes.push(ApiWrite {
                method: "DELETE",
                path: format!(
                    "/api/v1/namespaces/{}/endpoints/{}",
                    world::namespace(ep),
                    world::name(ep)
                ),
                body: None,
            });
        }
    }
    slices.retain(|s| {
        let labels = &s["metadata"]["labels"];
        let owner = format!(
            "{}/{}",
            world::namespace(s),
            labels["kubernetes.io/service-name"].as_str().unwrap_or("")
        );
        let orphan = labels["endpointslice.kubernetes.io/managed-by"] == SLICE_MANAGER
            && !services.contains_key(&owner);
        if orphan && !world::name(s).is_empty() {
            writes.push(ApiWrite {
                method: "DELETE",
                path: format!(
                    "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices/{}",
                    world::namespace(s),
                    world::name(s)
                ),
                body: None,
            });
        }
        !orphan
    });
    writes
}

fn endpoints_object(svc: &Value, bs: &[Backend], w: &World, writes: &mut Vec<ApiWrite>) {
    let (ns, name) = (world::namespace(svc), world::name(svc));
    let want = subsets(svc, bs);
    let mut labels = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(EP_MANAGED_BY.into(), json!(EP_MANAGER));
    let existing = w
        .endpoints
        .iter()
        .find(|e| world::namespace(e) == ns && world::name(e) == name);
    match existing {
        None => writes.push(ApiWrite {
            method: "POST",
            path: format!("/api/v1/namespaces/{ns}/endpoints"),
            body: Some(json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "subsets": want})),
        }),
        Some(e) if e["subsets"] != want || e["metadata"]["labels"] != json!(labels) => {
            writes.push(ApiWrite {
                method: "PATCH",
                path: format!("/api/v1/namespaces/{ns}/endpoints/{name}"),
                body: Some(json!({"metadata": {"labels": labels}, "subsets": want})),
            })
        }
        Some(_) => {}
    }
}

fn slice_object(
    svc: &Value,
    bs: &[Backend],
    fam: &str,
    slices: &mut Vec<Value>,
    writes: &mut Vec<ApiWrite>,
) {
    let (ns, name) = (world::namespace(svc), world::name(svc));
    let endpoints = slice_endpoints(bs, fam);
    let ports = json!(ports_for(svc, bs.first().map(|b| b.pod)));
    let mine = |s: &Value| {
        world::namespace(s) == ns
            && s["metadata"]["labels"]["kubernetes.io/service-name"] == name
            && s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == SLICE_MANAGER
            && s["addressType"] == fam
    };
    if let Some(s) = slices.iter_mut().find(|s| mine(s)) {
        if s["endpoints"] != endpoints || s["ports"] != ports {
            s["endpoints"] = endpoints.clone();
            s["ports"] = ports.clone();
            writes.push(ApiWrite {
                method: "PATCH",
                path: format!(
                    "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{}",
                    world::name(s)
                ),
                body: Some(json!({"endpoints": endpoints, "ports": ports})),
            });
        }
        return;
    }
    let mut labels = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert("kubernetes.io/service-name".into(), json!(name));
    labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        json!(SLICE_MANAGER),
    );
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                "uid": svc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
        "addressType": fam, "endpoints": endpoints, "ports": ports});
    slices.push(slice.clone());
    writes.push(ApiWrite {
        method: "POST",
        path: format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"),
        body: Some(slice),
    });
}

/// The load balancer a Service port goes to, by the VPC of its backends.
fn lb_name(vpc: &str, proto: &str, session: bool) -> String {
    match (vpc, session) {
        ("ovn-cluster", false) => format!("cluster-{proto}-loadbalancer"),
        ("ovn-cluster", true) => format!("cluster-{proto}-session-loadbalancer"),
        (v, false) => format!("vpc-{v}-{proto}-load"),
        (v, true) => format!("vpc-{v}-{proto}-sess-load"),
    }
}

/// The VPC of a Service: that of its first endpoint pod's subnet (`ovn-cluster` when
/// there is none), as `getVpcAndSubnetForEndpoints` decides.
fn service_vpc(svc_slices: &[&Value], w: &World) -> String {
    let first = svc_slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find_map(|e| {
            let (ns, n) = (
                e["targetRef"]["namespace"].as_str()?,
                e["targetRef"]["name"].as_str()?,
            );
            w.pods
                .iter()
                .find(|p| world::namespace(p) == ns && world::name(p) == n)
        });
    first
        .and_then(|p| world::annotation(p, "ovn.kubernetes.io/logical_switch"))
        .and_then(|s| w.subnets.get(s))
        .and_then(|s| s["spec"]["vpc"].as_str())
        .unwrap_or("ovn-cluster")
        .to_string()
}

/// The VIPs of every Service with ready backends; also the `ovn.kubernetes.io/vpc`
/// annotation Kube-OVN puts on the Service.
pub fn lb_vips(w: &World, slices: &[Value], out: &mut Desired) -> Vec<ApiWrite> {
    let mut writes = Vec::new();
    for svc in &w.services {
        let (ns, name) = (world::namespace(svc), world::name(svc));
        let svc_slices: Vec<&Value> = slices
            .iter()
            .filter(|s| {
                world::namespace(s) == ns
                    && s["metadata"]["labels"]["kubernetes.io/service-name"] == name
            })
            .collect();
        let vpc = service_vpc(&svc_slices, w);
        let session = svc["spec"]["sessionAffinity"] == "ClientIP";
        let ips: Vec<&str> = svc["spec"]["clusterIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .chain(svc["spec"]["clusterIP"].as_str())
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .collect();
        if ips.is_empty() {
            continue;
        }
        let mut seen = std::collections::BTreeSet::new();
        for ip in ips.into_iter().filter(|ip| seen.insert(ip.to_string())) {
            for port in svc["spec"]["ports"].as_array().into_iter().flatten() {
                let proto = port["protocol"].as_str().unwrap_or("TCP").to_lowercase();
                let pname = port["name"].as_str().unwrap_or("");
                let mut backends: Vec<String> = Vec::new();
                for s in &svc_slices {
                    let Some(tp) = s["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"].as_str().unwrap_or("") == pname)
                        .and_then(|p| p["port"].as_i64())
                    else {
                        continue;
                    };
                    for e in s["endpoints"].as_array().into_iter().flatten() {
                        if e["conditions"]["ready"] == false {
                            continue;
                        }
                        for a in e["addresses"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                        {
                            if family(a) == family(ip) {
                                backends.push(host_port(a, tp));
                            }
                        }
                    }
                }
                if backends.is_empty() {
                    continue;
                }
                backends.sort();
                backends.dedup();
                let vip = host_port(ip, port["port"].as_i64().unwrap_or(0));
                out.lb_vips
                    .entry(lb_name(&vpc, &proto, session))
                    .or_default()
                    .insert(vip, backends.join(","));
            }
        }
        if world::annotation(svc, "ovn.kubernetes.io/vpc") != Some(vpc.as_str()) {
            writes.push(ApiWrite {
                method: "PATCH",
                path: format!("/api/v1/namespaces/{ns}/services/{name}"),
                body: Some(json!({"metadata": {"annotations": {"ovn.kubernetes.io/vpc": vpc}}})),
            });
        }
    }
    writes
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests;
