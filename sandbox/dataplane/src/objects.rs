//! The Kubernetes objects the emulator serves (CONTRACT.md): complete objects with
//! Kube-OVN's labels, annotations and status, consistent with the data plane.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::plan::{self, Node, Plan, Pod, Role, Service, Subnet};

macro_rules! ts {
    ($p:expr) => {
        $p.created.as_str()
    };
}

fn meta(plan: &Plan, name: &str, ns: Option<&str>, labels: Value, annotations: Value) -> Value {
    let seed = format!("{}/{}/{}", plan.name, ns.unwrap_or(""), name);
    let mut m = json!({
        "name": name,
        "uid": plan::uid_for(&seed),
        "creationTimestamp": ts!(plan),
        "resourceVersion": "1",
        "labels": labels,
        "annotations": annotations,
    });
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

fn obj(api: &str, kind: &str, metadata: Value, spec: Value, status: Value) -> Value {
    let mut o = json!({ "apiVersion": api, "kind": kind, "metadata": metadata });
    if !spec.is_null() {
        o["spec"] = spec;
    }
    if !status.is_null() {
        o["status"] = status;
    }
    o
}

fn list(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

fn ip_families(plan: &Plan) -> Value {
    if plan.dual_stack {
        json!(["IPv4", "IPv6"])
    } else {
        json!(["IPv4"])
    }
}

pub fn node(plan: &Plan, n: &Node) -> Value {
    let join = plan.subnet(plan::JOIN_SUBNET);
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "type": "kind",
    });
    if n.index == 1 {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    if n.central {
        labels["kube-ovn/role"] = json!("master");
    }
    let annotations = json!({
        "ovn.kubernetes.io/allocated": "true",
        "ovn.kubernetes.io/ip_address": n.join_ips().join(","),
        "ovn.kubernetes.io/mac_address": n.join_mac,
        "ovn.kubernetes.io/cidr": join.map(|j| j.cidr_block()).unwrap_or_default(),
        "ovn.kubernetes.io/gateway": join.map(|j| j.gateway()).unwrap_or_default(),
        "ovn.kubernetes.io/logical_switch": plan::JOIN_SUBNET,
        "ovn.kubernetes.io/port_name": format!("node-{}", n.name),
        "ovn.kubernetes.io/chassis": n.name,
        "node.alpha.kubernetes.io/ttl": "0",
    });
    let mut addresses: Vec<Value> = n
        .ips()
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip}))
        .collect();
    addresses.push(json!({"type": "Hostname", "address": n.name}));
    let mut m = meta(plan, &n.name, None, labels, annotations);
    m["uid"] = json!(n.uid);
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": reason,
               "lastHeartbeatTime": ts!(plan), "lastTransitionTime": ts!(plan)})
    };
    obj(
        "v1",
        "Node",
        m,
        json!({ "podCIDR": "10.244.0.0/24", "providerID": format!("kind://docker/kube-ovn/{}", n.name) }),
        json!({
            "addresses": addresses,
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
                cond("Ready", "True", "KubeletReady"),
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "containerRuntimeVersion": "containerd://1.7.24",
                "machineID": format!("{:032x}", plan::fnv(&n.name)),
                "systemUUID": n.uid,
                "bootID": n.uid,
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }),
    )
}

pub fn pod_annotations(plan: &Plan, p: &Pod) -> Value {
    let Some(sname) = &p.subnet else {
        return json!({});
    };
    let Some(s) = plan.subnet(sname) else {
        return json!({});
    };
    let mut a = json!({
        "ovn.kubernetes.io/allocated": "true",
        "ovn.kubernetes.io/ip_address": p.ips().join(","),
        "ovn.kubernetes.io/mac_address": p.mac,
        "ovn.kubernetes.io/cidr": s.cidr_block(),
        "ovn.kubernetes.io/gateway": s.gateway(),
        "ovn.kubernetes.io/logical_switch": s.name,
        "ovn.kubernetes.io/pod_nic_type": "veth-pair",
        "ovn.kubernetes.io/routed": "true",
    });
    match &s.vlan {
        Some((_, id, provider)) => {
            a["ovn.kubernetes.io/vlan_id"] = json!(id.to_string());
            a["ovn.kubernetes.io/provider_network"] = json!(provider);
        }
        None => {
            a["ovn.kubernetes.io/logical_router"] = json!(s.vpc);
        }
    }
    a
}

fn container_ports(p: &Pod) -> Value {
    match p.role {
        Role::OvnCentral => json!([
            {"name": "ovn-nb", "containerPort": 6641, "protocol": "TCP"},
            {"name": "ovn-sb", "containerPort": 6642, "protocol": "TCP"},
        ]),
        Role::Cni => json!([{"name": "metrics", "containerPort": 10665, "protocol": "TCP"}]),
        Role::Controller => json!([{"name": "metrics", "containerPort": 10660, "protocol": "TCP"}]),
        _ if p.container == "pinger" => {
            json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
        }
        _ => json!([]),
    }
}

/// The pinger carries the cluster's external probe target like Kube-OVN's
/// DaemonSet does; here it is the sandbox's own external host, so `diagnose`
/// never has to pick an address outside the machine.
fn container_args(plan: &Plan, p: &Pod) -> Value {
    if p.container == "pinger" {
        json!([
            format!("--external-address={}", plan.external.ip4),
            "--ds-namespace=kube-system"
        ])
    } else {
        json!([])
    }
}

fn env(plan: &Plan, p: &Pod) -> Value {
    let mut v = vec![
        json!({"name": "ENABLE_SSL", "value": "false"}),
        json!({"name": "POD_NAME", "value": p.name}),
        json!({"name": "POD_NAMESPACE", "value": p.namespace}),
        json!({"name": "POD_IP", "value": p.ip4}),
        json!({"name": "POD_IPS", "value": p.ips().join(",")}),
    ];
    if p.role == Role::OvnCentral {
        let ips: Vec<String> = plan
            .nodes
            .iter()
            .filter(|n| n.central)
            .map(|n| n.ip4.clone())
            .collect();
        v.push(json!({"name": "NODE_IPS", "value": ips.join(",")}));
    }
    if matches!(p.role, Role::Cni | Role::OvsOvn) {
        v.push(json!({"name": "KUBE_NODE_NAME", "value": plan.nodes[p.node].name}));
    }
    json!(v)
}

pub fn pod(plan: &Plan, p: &Pod) -> Value {
    let n = &plan.nodes[p.node];
    let mut m = meta(
        plan,
        &p.name,
        Some(&p.namespace),
        json!(p.labels),
        pod_annotations(plan, p),
    );
    m["uid"] = json!(p.uid);
    if let Some(o) = &p.owner {
        let (api, uid) = match o.kind.as_str() {
            "DaemonSet" => (
                "apps/v1",
                plan::uid_for(&format!("{}/ds/{}", plan.name, o.name)),
            ),
            _ => (
                "apps/v1",
                plan::uid_for(&format!("{}/rs/{}", plan.name, o.name)),
            ),
        };
        m["ownerReferences"] = json!([{
            "apiVersion": api, "kind": o.kind, "name": o.name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
        if o.kind == "ReplicaSet" {
            m["generateName"] = json!(format!("{}-", o.name));
        }
    }
    let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": ts!(plan)});
    let container_id = format!(
        "containerd://{:016x}{:016x}",
        plan::fnv(&p.uid),
        plan::fnv(&p.name)
    );
    let mut spec = json!({
        "nodeName": n.name,
        "hostNetwork": p.host_network,
        "restartPolicy": "Always",
        "dnsPolicy": if p.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
        "schedulerName": "default-scheduler",
        "serviceAccountName": match p.role {
            Role::OvnCentral | Role::Controller => "ovn",
            Role::OvsOvn => "ovn-ovs",
            Role::Cni => "kube-ovn-cni",
            Role::Workload if p.container == "pinger" => "kube-ovn-app",
            Role::Workload if p.container == "kube-proxy" => "kube-proxy",
            Role::Workload => "default",
        },
        "containers": [{
            "name": p.container,
            "image": p.image,
            "imagePullPolicy": "IfNotPresent",
            "command": match p.role {
                Role::Workload if p.container == "kube-proxy" => json!(["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", format!("--hostname-override={}", n.name)]),
                Role::Workload => json!(["sleep", "infinity"]),
                _ => json!(["/kube-ovn/start.sh"]),
            },
            "args": container_args(plan, p),
            "env": env(plan, p),
            "ports": container_ports(p),
            "resources": {},
        }],
        "terminationGracePeriodSeconds": 30,
    });
    if p.role == Role::OvnCentral {
        spec["nodeSelector"] = json!({"kube-ovn/role": "master", "kubernetes.io/os": "linux"});
    }
    let pod_ips: Vec<Value> = p.ips().iter().map(|ip| json!({"ip": ip})).collect();
    let host_ips: Vec<Value> = n.ips().iter().map(|ip| json!({"ip": ip})).collect();
    obj(
        "v1",
        "Pod",
        m,
        spec,
        json!({
            "phase": "Running",
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
            "hostIP": n.ip4,
            "hostIPs": host_ips,
            "podIP": p.ip4,
            "podIPs": pod_ips,
            "startTime": ts!(plan),
            "qosClass": "BestEffort",
            "containerStatuses": [{
                "name": p.container,
                "ready": true,
                "started": true,
                "restartCount": 0,
                "image": p.image,
                "imageID": format!("{}@sha256:{:064x}", p.image, plan::fnv(&p.image)),
                "containerID": container_id,
                "state": {"running": {"startedAt": ts!(plan)}},
            }],
        }),
    )
}

fn workload_status_ds(n: usize) -> Value {
    json!({
        "currentNumberScheduled": n, "desiredNumberScheduled": n, "numberAvailable": n,
        "numberMisscheduled": 0, "numberReady": n, "observedGeneration": 1, "updatedNumberScheduled": n,
    })
}

fn workload_status_deploy(plan: &Plan, n: usize) -> Value {
    json!({
        "availableReplicas": n, "readyReplicas": n, "replicas": n, "updatedReplicas": n, "observedGeneration": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)},
        ],
    })
}

fn template(
    labels: &BTreeMap<String, String>,
    container: &str,
    image: &str,
    host_network: bool,
) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "hostNetwork": host_network,
            "containers": [{"name": container, "image": image}],
        },
    })
}

/// Deployments (+ their ReplicaSets) and DaemonSets, from the pods that carry an owner.
fn workloads(plan: &Plan) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &plan.pods {
        let Some(o) = &p.owner else { continue };
        if !seen.insert((o.kind.clone(), o.name.clone())) {
            continue;
        }
        let count = plan
            .pods
            .iter()
            .filter(|q| q.owner.as_ref().map(|x| (&x.kind, &x.name)) == Some((&o.kind, &o.name)))
            .count();
        let mut sel: BTreeMap<String, String> = p
            .labels
            .iter()
            .filter(|(k, _)| {
                !k.ends_with("-leader")
                    && k.as_str() != "controller-revision-hash"
                    && k.as_str() != "pod-template-generation"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if o.kind == "DaemonSet" {
            // Kube-OVN's DaemonSets select on `app`, kube-proxy's on `k8s-app`
            let (sel_key, ds_labels) = match p.labels.get("app") {
                Some(app) => (
                    "app",
                    json!({"app": app, "component": "network", "type": "infra"}),
                ),
                None => ("k8s-app", json!({"k8s-app": p.labels.get("k8s-app")})),
            };
            let mut m = meta(plan, &o.name, Some(&p.namespace), ds_labels, json!({}));
            m["uid"] = json!(plan::uid_for(&format!("{}/ds/{}", plan.name, o.name)));
            m["generation"] = json!(1);
            out.push(obj(
                "apps/v1",
                "DaemonSet",
                m,
                json!({"selector": {"matchLabels": {sel_key: p.labels.get(sel_key)}}, "template": template(&sel, &p.container, &p.image, p.host_network),
                       "updateStrategy": {"type": "RollingUpdate"}}),
                workload_status_ds(count),
            ));
        } else {
            let hash = sel.remove("pod-template-hash").unwrap_or_default();
            let deploy = o.name.trim_end_matches(&format!("-{hash}")).to_string();
            let dlabels = if p.namespace == plan::KUBE_SYSTEM && deploy != "coredns" {
                json!({"app": deploy, "component": "network", "type": "infra"})
            } else {
                json!(sel)
            };
            let mut m = meta(
                plan,
                &deploy,
                Some(&p.namespace),
                dlabels,
                json!({"deployment.kubernetes.io/revision": "1"}),
            );
            m["generation"] = json!(1);
            let duid = m["uid"].clone();
            out.push(obj(
                "apps/v1",
                "Deployment",
                m,
                json!({"replicas": count, "selector": {"matchLabels": sel}, "template": template(&sel, &p.container, &p.image, p.host_network),
                       "strategy": {"type": "RollingUpdate"}}),
                workload_status_deploy(plan, count),
            ));
            let mut rs_labels = sel.clone();
            rs_labels.insert("pod-template-hash".into(), hash.clone());
            let mut m = meta(
                plan,
                &o.name,
                Some(&p.namespace),
                json!(rs_labels),
                json!({"deployment.kubernetes.io/revision": "1"}),
            );
            m["uid"] = json!(plan::uid_for(&format!("{}/rs/{}", plan.name, o.name)));
            m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy, "uid": duid, "controller": true, "blockOwnerDeletion": true}]);
            out.push(obj(
                "apps/v1",
                "ReplicaSet",
                m,
                json!({"replicas": count, "selector": {"matchLabels": rs_labels}, "template": template(&rs_labels, &p.container, &p.image, p.host_network)}),
                json!({"replicas": count, "readyReplicas": count, "availableReplicas": count, "fullyLabeledReplicas": count, "observedGeneration": 1}),
            ));
        }
    }
    out
}

fn service(plan: &Plan, s: &Service) -> Vec<Value> {
    let mut cips = vec![s.cluster_ip4.clone()];
    cips.extend(s.cluster_ip6.clone());
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| json!({"name": p.name, "protocol": p.protocol, "port": p.port, "targetPort": p.target_port}))
        .collect();
    let labels = if s.name.starts_with("ovn-") {
        json!({})
    } else {
        json!({"app": s.name})
    };
    let mut m = meta(plan, &s.name, Some(&s.namespace), labels, json!({}));
    m["uid"] = json!(s.uid);
    let svc = obj(
        "v1",
        "Service",
        m,
        json!({
            "type": "ClusterIP",
            "clusterIP": s.cluster_ip4,
            "clusterIPs": cips,
            "ipFamilies": ip_families(plan),
            "ipFamilyPolicy": if plan.dual_stack { "PreferDualStack" } else { "SingleStack" },
            "selector": s.selector,
            "ports": ports,
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
        }),
        json!({"loadBalancer": {}}),
    );
    let mut out = vec![svc];
    let backends: Vec<&Pod> = s.backends.iter().filter_map(|k| plan.pod(k)).collect();
    let fams: Vec<&str> = if plan.dual_stack {
        vec!["IPv4", "IPv6"]
    } else {
        vec!["IPv4"]
    };
    for fam in fams {
        let eps: Vec<Value> = backends
            .iter()
            .filter_map(|b| {
                let ip = if fam == "IPv4" { Some(b.ip4.clone()) } else { b.ip6.clone() };
                ip.map(|ip| {
                    json!({
                        "addresses": [ip],
                        "conditions": {"ready": true, "serving": true, "terminating": false},
                        "nodeName": plan.nodes[b.node].name,
                        "targetRef": {"kind": "Pod", "name": b.name, "namespace": b.namespace, "uid": b.uid},
                    })
                })
            })
            .collect();
        let eports: Vec<Value> = s
            .ports
            .iter()
            .map(|p| json!({"name": p.name, "protocol": p.protocol, "port": p.target_port}))
            .collect();
        let name = format!(
            "{}-{}",
            s.name,
            plan::suffix(&format!("{}/eps/{}/{fam}", plan.name, s.name), 5)
        );
        let mut m = meta(
            plan,
            &name,
            Some(&s.namespace),
            json!({"kubernetes.io/service-name": s.name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}),
            json!({}),
        );
        m["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Service", "name": s.name, "uid": s.uid, "controller": true, "blockOwnerDeletion": true}]);
        let mut es = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": m,
            "addressType": fam,
            "ports": eports,
        });
        es["endpoints"] = json!(eps);
        out.push(es);
    }
    out
}

/// The address counters of a Subnet's status: planned pods (and nodes on `join`) plus
/// `extra` (pods the kubelet started).
pub fn subnet_usage(plan: &Plan, s: &Subnet, extra: usize) -> Value {
    let used = plan
        .pods
        .iter()
        .filter(|p| p.subnet.as_deref() == Some(s.name.as_str()))
        .count()
        + if s.name == plan::JOIN_SUBNET {
            plan.nodes.len()
        } else {
            0
        }
        + extra;
    let size4 = crate::api_subnet::size4(&s.cidr4);
    let size6 = s.cidr6.as_deref().map(crate::api_subnet::size6);
    json!({
        "v4availableIPs": size4.saturating_sub(used as u64),
        "v4usingIPs": used,
        "v6availableIPs": size6.map_or(0, |z| z.saturating_sub(used as u64)),
        "v6usingIPs": if size6.is_some() { used } else { 0 },
    })
}

fn subnet_cr(plan: &Plan, s: &Subnet) -> Value {
    let protocol = if plan.dual_stack { "Dual" } else { "IPv4" };
    let mut spec = json!({
        "vpc": s.vpc,
        "protocol": protocol,
        "cidrBlock": s.cidr_block(),
        "gateway": s.gateway(),
        "excludeIps": s.gateway().split(',').collect::<Vec<_>>(),
        "provider": "ovn",
        "gatewayType": "distributed",
        "natOutgoing": s.name == plan::DEFAULT_SUBNET,
        "default": s.default,
        "private": false,
        "namespaces": s.namespaces,
        "enableLb": true,
    });
    if let Some((vlan, _, _)) = &s.vlan {
        spec["vlan"] = json!(vlan);
        spec["natOutgoing"] = json!(false);
    }
    let ready = json!({"type": "Ready", "status": "True", "reason": "ResourceReady", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)});
    let mut status = subnet_usage(plan, s, 0);
    status["conditions"] = json!([
        ready,
        {"type": "Validated", "status": "True", "reason": "ValidatedSuccessfully", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)},
    ]);
    if s.vlan.is_none() {
        status["activateGateway"] = json!("");
    }
    let m = meta(plan, &s.name, None, json!({}), json!({}));
    obj("kubeovn.io/v1", "Subnet", m, spec, status)
}

fn vpc_cr(plan: &Plan, name: &str, default: bool) -> Value {
    let subnets: Vec<&str> = plan
        .subnets
        .iter()
        .filter(|s| s.vpc == name)
        .map(|s| s.name.as_str())
        .collect();
    let lb = |proto: &str, sess: bool| -> String {
        match (default, sess) {
            (true, false) => format!("cluster-{proto}-loadbalancer"),
            (true, true) => format!("cluster-{proto}-session-loadbalancer"),
            (false, false) => format!("vpc-{name}-{proto}-load"),
            (false, true) => format!("vpc-{name}-{proto}-sess-load"),
        }
    };
    let spec = if default {
        json!({})
    } else {
        json!({"namespaces": [plan::VPC_NAMESPACE]})
    };
    let m = meta(plan, name, None, json!({}), json!({}));
    obj(
        "kubeovn.io/v1",
        "Vpc",
        m,
        spec,
        json!({
            "standby": true,
            "default": default,
            "defaultLogicalSwitch": if default { plan::DEFAULT_SUBNET } else { "" },
            "router": name,
            "tcpLoadBalancer": lb("tcp", false),
            "tcpSessionLoadBalancer": lb("tcp", true),
            "udpLoadBalancer": lb("udp", false),
            "udpSessionLoadBalancer": lb("udp", true),
            "sctpLoadBalancer": lb("sctp", false),
            "sctpSessionLoadBalancer": lb("sctp", true),
            "subnets": subnets,
            "enableExternal": false,
            "conditions": [{"type": "Ready", "status": "True", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)}],
        }),
    )
}

#[allow(clippy::too_many_arguments)] // one IP CR = this many independent fields
pub fn ip_cr(
    plan: &Plan,
    name: &str,
    subnet: &str,
    pod_name: &str,
    ns: &str,
    node: &str,
    ips: &[String],
    mac: &str,
    pod_type: &str,
) -> Value {
    let labels = json!({
        "ovn.kubernetes.io/subnet": subnet,
        "ovn.kubernetes.io/node-name": node,
        subnet: "",
    });
    let m = meta(plan, name, None, labels, json!({}));
    let v4 = ips
        .iter()
        .find(|i| !i.contains(':'))
        .cloned()
        .unwrap_or_default();
    let v6 = ips
        .iter()
        .find(|i| i.contains(':'))
        .cloned()
        .unwrap_or_default();
    obj(
        "kubeovn.io/v1",
        "IP",
        m,
        json!({
            "podName": pod_name, "namespace": ns, "subnet": subnet, "nodeName": node,
            "ipAddress": ips.join(","), "v4IpAddress": v4, "v6IpAddress": v6, "macAddress": mac,
            "attachSubnets": [], "attachIps": [], "attachMacs": [], "containerID": "", "podType": pod_type,
        }),
        Value::Null,
    )
}

fn crd(
    ts: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    short: &[&str],
    columns: Value,
) -> Value {
    group_crd(
        ts,
        ("kubeovn.io", "v1"),
        plural,
        singular,
        kind,
        short,
        columns,
    )
}

/// A cluster-scoped CRD of `group`/`version` with a status subresource.
fn group_crd(
    ts: &str,
    (group, version): (&str, &str),
    plural: &str,
    singular: &str,
    kind: &str,
    short: &[&str],
    columns: Value,
) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"), "uid": plan::uid_for(plural), "creationTimestamp": ts, "resourceVersion": "1"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": plural, "singular": singular, "kind": kind, "listKind": format!("{kind}List"), "shortNames": short},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "additionalPrinterColumns": columns,
            }],
        },
        "status": {"acceptedNames": {"plural": plural, "singular": singular, "kind": kind, "listKind": format!("{kind}List"), "shortNames": short}},
    })
}

fn col(name: &str, path: &str) -> Value {
    json!({"name": name, "type": "string", "jsonPath": path})
}

fn crds(ts: &str) -> Vec<Value> {
    let mut v = vec![
        crd(
            ts,
            "subnets",
            "subnet",
            "Subnet",
            &["subnet"],
            json!([
                col("Provider", ".spec.provider"), col("Vpc", ".spec.vpc"), col("Vlan", ".spec.vlan"),
                col("Protocol", ".spec.protocol"), col("CIDR", ".spec.cidrBlock"),
                {"name": "Private", "type": "boolean", "jsonPath": ".spec.private"},
                {"name": "NAT", "type": "boolean", "jsonPath": ".spec.natOutgoing"},
                {"name": "Default", "type": "boolean", "jsonPath": ".spec.default"},
                col("GatewayType", ".spec.gatewayType"),
                {"name": "V4Used", "type": "number", "jsonPath": ".status.v4usingIPs"},
                {"name": "V4Available", "type": "number", "jsonPath": ".status.v4availableIPs"},
                {"name": "V6Used", "type": "number", "jsonPath": ".status.v6usingIPs"},
                {"name": "V6Available", "type": "number", "jsonPath": ".status.v6availableIPs"},
                col("ExcludeIPs", ".spec.excludeIps"),
            ]),
        ),
        crd(
            ts,
            "vpcs",
            "vpc",
            "Vpc",
            &["vpc"],
            json!([
                {"name": "EnableExternal", "type": "boolean", "jsonPath": ".status.enableExternal"},
                {"name": "Standby", "type": "boolean", "jsonPath": ".status.standby"},
                col("Subnets", ".status.subnets"), col("Namespaces", ".spec.namespaces"),
            ]),
        ),
        crd(
            ts,
            "ips",
            "ip",
            "IP",
            &["ip"],
            json!([
                col("V4IP", ".spec.v4IpAddress"),
                col("V6IP", ".spec.v6IpAddress"),
                col("Mac", ".spec.macAddress"),
                col("Node", ".spec.nodeName"),
                col("Subnet", ".spec.subnet"),
            ]),
        ),
        crd(
            ts,
            "vlans",
            "vlan",
            "Vlan",
            &["vlan"],
            json!([
                {"name": "ID", "type": "string", "jsonPath": ".spec.id"}, col("Provider", ".spec.provider"),
            ]),
        ),
        crd(
            ts,
            "provider-networks",
            "provider-network",
            "ProviderNetwork",
            &["pn"],
            json!([
                col("DefaultInterface", ".spec.defaultInterface"),
                {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
            ]),
        ),
    ];
    // Present in a real install; `diagnose` checks that they exist.
    for (plural, singular, kind) in [
        ("vpc-nat-gateways", "vpc-nat-gateway", "VpcNatGateway"),
        (
            "vpc-egress-gateways",
            "vpc-egress-gateway",
            "VpcEgressGateway",
        ),
        ("security-groups", "security-group", "SecurityGroup"),
        ("vips", "vip", "Vip"),
        ("vpc-dnses", "vpc-dns", "VpcDns"),
        ("switch-lb-rules", "switch-lb-rule", "SwitchLBRule"),
        ("ippools", "ippool", "IPPool"),
        ("ovn-eips", "ovn-eip", "OvnEip"),
        ("ovn-fips", "ovn-fip", "OvnFip"),
        ("ovn-dnat-rules", "ovn-dnat-rule", "OvnDnatRule"),
        ("ovn-snat-rules", "ovn-snat-rule", "OvnSnatRule"),
        ("iptables-eips", "iptables-eip", "IptablesEIP"),
        ("iptables-fip-rules", "iptables-fip-rule", "IptablesFIPRule"),
        (
            "iptables-snat-rules",
            "iptables-snat-rule",
            "IptablesSnatRule",
        ),
        (
            "iptables-dnat-rules",
            "iptables-dnat-rule",
            "IptablesDnatRule",
        ),
    ] {
        v.push(crd(ts, plural, singular, kind, &[], json!([])));
    }
    // sigs.k8s.io/network-policy-api, which Kube-OVN's install.sh applies with
    // ENABLE_ANP=true; the sandbox's controller always acts on them
    let anp = ("policy.networking.k8s.io", "v1alpha1");
    v.push(group_crd(
        ts,
        anp,
        "adminnetworkpolicies",
        "adminnetworkpolicy",
        "AdminNetworkPolicy",
        &["anp"],
        json!([{"name": "Priority", "type": "string", "jsonPath": ".spec.priority"}]),
    ));
    v.push(group_crd(
        ts,
        anp,
        "baselineadminnetworkpolicies",
        "baselineadminnetworkpolicy",
        "BaselineAdminNetworkPolicy",
        &["banp"],
        json!([]),
    ));
    v
}

fn rbac(plan: &Plan) -> Vec<Value> {
    let mut v = Vec::new();
    for sa in ["ovn", "ovn-ovs", "kube-ovn-cni", "kube-ovn-app"] {
        v.push(obj(
            "v1",
            "ServiceAccount",
            meta(plan, sa, Some(plan::KUBE_SYSTEM), json!({}), json!({})),
            Value::Null,
            Value::Null,
        ));
    }
    for cr in [
        "system:ovn",
        "system:ovn-ovs",
        "system:kube-ovn-cni",
        "system:kube-ovn-app",
    ] {
        let mut o = obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            meta(plan, cr, None, json!({}), json!({})),
            Value::Null,
            Value::Null,
        );
        o["rules"] = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
        v.push(o);
    }
    for (crb, role, sa) in [
        ("ovn", "system:ovn", "ovn"),
        ("ovn-ovs", "system:ovn-ovs", "ovn-ovs"),
        ("kube-ovn-cni", "system:kube-ovn-cni", "kube-ovn-cni"),
        ("kube-ovn-app", "system:kube-ovn-app", "kube-ovn-app"),
    ] {
        let mut o = obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            meta(plan, crb, None, json!({}), json!({})),
            Value::Null,
            Value::Null,
        );
        o["roleRef"] =
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role});
        o["subjects"] =
            json!([{"kind": "ServiceAccount", "name": sa, "namespace": plan::KUBE_SYSTEM}]);
        v.push(o);
    }
    v
}

fn network_policy(plan: &Plan) -> Value {
    let m = meta(plan, plan::NP_NAME, Some("default"), json!({}), json!({}));
    obj(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        m,
        json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "db"}}}]}],
        }),
        Value::Null,
    )
}

fn underlay_objects(plan: &Plan) -> Vec<Value> {
    let nodes: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut pn_conditions = Vec::new();
    for n in &nodes {
        pn_conditions.push(json!({"node": n, "type": "Ready", "status": "True", "reason": "InitOVSBridgeSucceeded", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)}));
    }
    let pn = obj(
        "kubeovn.io/v1",
        "ProviderNetwork",
        meta(plan, plan::PROVIDER, None, json!({}), json!({})),
        json!({"defaultInterface": "prov0"}),
        json!({"ready": true, "readyNodes": nodes, "vlans": [plan::VLAN], "conditions": pn_conditions}),
    );
    let vlan = obj(
        "kubeovn.io/v1",
        "Vlan",
        meta(plan, plan::VLAN, None, json!({}), json!({})),
        json!({"id": 0, "provider": plan::PROVIDER}),
        json!({"subnets": [plan::UNDERLAY_SUBNET], "conditions": [{"type": "Ready", "status": "True", "lastUpdateTime": ts!(plan), "lastTransitionTime": ts!(plan)}]}),
    );
    vec![pn, vlan]
}

fn namespaces(plan: &Plan) -> Vec<Value> {
    let mut v = Vec::new();
    for ns in [
        "default",
        plan::KUBE_SYSTEM,
        "kube-public",
        "kube-node-lease",
        plan::VPC_NAMESPACE,
    ] {
        let mut ann = json!({});
        if let Some(s) = plan
            .subnets
            .iter()
            .find(|s| s.namespaces.iter().any(|n| n == ns))
        {
            ann = json!({"ovn.kubernetes.io/logical_switch": s.name, "ovn.kubernetes.io/cidr": s.cidr_block()});
        } else if ns != plan::VPC_NAMESPACE
            && let Some(s) = plan.subnet(plan::DEFAULT_SUBNET)
        {
            ann = json!({"ovn.kubernetes.io/logical_switch": s.name, "ovn.kubernetes.io/cidr": s.cidr_block()});
        }
        let m = meta(
            plan,
            ns,
            None,
            json!({"kubernetes.io/metadata.name": ns}),
            ann,
        );
        v.push(obj(
            "v1",
            "Namespace",
            m,
            json!({"finalizers": ["kubernetes"]}),
            json!({"phase": "Active"}),
        ));
    }
    v
}

/// Every object, grouped by file name.
pub fn all(plan: &Plan) -> Vec<(String, Value)> {
    let mut files = vec![
        ("namespaces.json".to_string(), list(namespaces(plan))),
        (
            "nodes.json".into(),
            list(plan.nodes.iter().map(|n| node(plan, n)).collect()),
        ),
        (
            "pods.json".into(),
            list(plan.pods.iter().map(|p| pod(plan, p)).collect()),
        ),
        ("workloads.json".into(), list(workloads(plan))),
        (
            "services.json".into(),
            list(
                plan.services
                    .iter()
                    .flat_map(|s| service(plan, s))
                    .collect(),
            ),
        ),
        (
            "kubernetes-service.json".into(),
            list(crate::kubernetes_svc::objects(plan)),
        ),
        ("crds.json".into(), list(crds(ts!(plan)))),
        ("rbac.json".into(), list(rbac(plan))),
        (
            "networkpolicies.json".into(),
            list(vec![network_policy(plan)]),
        ),
    ];
    let mut cr = Vec::new();
    for s in &plan.subnets {
        cr.push(subnet_cr(plan, s));
    }
    cr.push(vpc_cr(plan, plan::CLUSTER_ROUTER, true));
    cr.push(vpc_cr(plan, plan::VPC_NAME, false));
    cr.extend(underlay_objects(plan));
    for n in &plan.nodes {
        cr.push(ip_cr(
            plan,
            &format!("node-{}", n.name),
            plan::JOIN_SUBNET,
            &n.name,
            "",
            &n.name,
            &n.join_ips(),
            &n.join_mac,
            "node",
        ));
    }
    for p in plan.pods.iter().filter(|p| !p.host_network) {
        if let Some(s) = &p.subnet {
            cr.push(ip_cr(
                plan,
                &p.lsp(),
                s,
                &p.name,
                &p.namespace,
                &plan.nodes[p.node].name,
                &p.ips(),
                &p.mac,
                "",
            ));
        }
    }
    files.push(("kubeovn.json".into(), list(cr)));
    files
}

pub fn write(plan: &Plan, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (file, v) in all(plan) {
        crate::state::write_json(&dir.join(&file), &v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_has_the_metadata_a_real_apiserver_returns() {
        let plan = plan::build("t", 3, true);
        for (_, l) in all(&plan) {
            for o in l["items"].as_array().cloned().unwrap_or_default() {
                for k in ["apiVersion", "kind"] {
                    assert!(o[k].is_string(), "{k} missing in {o}");
                }
                for k in ["name", "uid", "creationTimestamp", "resourceVersion"] {
                    assert!(
                        o["metadata"][k].is_string(),
                        "metadata.{k} missing in {}",
                        o["metadata"]
                    );
                }
            }
        }
    }

    #[test]
    fn dual_stack_pod_annotations_list_v4_first() {
        let plan = plan::build("t", 3, true);
        let p = plan.pod("default/web-1").unwrap();
        let a = pod_annotations(&plan, p);
        let ip = a["ovn.kubernetes.io/ip_address"].as_str().unwrap();
        let (v4, v6) = ip.split_once(',').unwrap();
        assert!(v4.parse::<std::net::Ipv4Addr>().is_ok());
        assert!(v6.parse::<std::net::Ipv6Addr>().is_ok());
        assert_eq!(a["ovn.kubernetes.io/logical_router"], "ovn-cluster");
        let u = plan.pod("default/underlay-1").unwrap();
        let a = pod_annotations(&plan, u);
        assert_eq!(a["ovn.kubernetes.io/provider_network"], "provider");
        assert!(a.get("ovn.kubernetes.io/logical_router").is_none());
    }
}
