//! The Kubernetes objects perf creates (pods, Service) and their lifecycle:
//! create, wait for Ready, delete and wait until gone.

use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::cluster::{self, Cluster, PodRef, unusable_reason};
use crate::error::{Error, Result};

/// Label every perf object carries (as upstream).
pub const LABEL_APP: &str = "PerfTest";
pub const SELECTOR: &str = "app=PerfTest";
pub const SERVICE: &str = "test-server";
/// qperf's control port and iperf3's default port (upstream's Service ports).
const QPERF_PORT: i32 = 19765;
const IPERF3_PORT: i32 = 5201;

/// One test pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    pub name: &'static str,
    pub node: String,
    /// Value for the `kubernetes.io/hostname` node selector.
    pub hostname: String,
    pub host_network: bool,
    /// The Service selects the pod-network server by `env=server`.
    pub server: bool,
}

/// The pod manifest: the container only sleeps; perf starts the servers over
/// exec so that it controls their lifetime and sees their output.
pub fn pod_manifest(p: &PodPlan, namespace: &str, image: &str) -> serde_json::Value {
    let mut labels = json!({ "app": LABEL_APP });
    if p.server && !p.host_network {
        labels["env"] = json!("server");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": p.name, "namespace": namespace, "labels": labels },
        "spec": {
            "hostNetwork": p.host_network,
            "nodeSelector": { "kubernetes.io/hostname": p.hostname },
            // `sleep` as PID 1 ignores SIGTERM: don't wait 30 s for it.
            "terminationGracePeriodSeconds": 1,
            "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{
                "name": p.name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "infinity"],
            }],
        },
    })
}

pub fn service_manifest(namespace: &str) -> serde_json::Value {
    let port = |name: &str, proto: &str, port: i32| json!({ "name": name, "protocol": proto, "port": port, "targetPort": port });
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": SERVICE, "namespace": namespace, "labels": { "app": LABEL_APP } },
        "spec": {
            "selector": { "env": "server" },
            "ports": [
                port("qperf-udp", "UDP", QPERF_PORT),
                port("iperf3-udp", "UDP", IPERF3_PORT),
                port("qperf-tcp", "TCP", QPERF_PORT),
                port("iperf3-tcp", "TCP", IPERF3_PORT),
            ],
        },
    })
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Remote {
        what: format!("building the {what} manifest"),
        detail: e.to_string(),
        hint: "this is a bug in kubectl-ko; please report it".into(),
    })
}

pub async fn create_pod(cluster: &Cluster, p: &PodPlan, image: &str) -> Result<()> {
    let ns = cluster.namespace();
    let pod: Pod = decode("pod", pod_manifest(p, ns, image))?;
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    cluster
        .call(
            format!("creating pod {ns}/{}", p.name),
            api.create(&PostParams::default(), &pod),
        )
        .await?;
    Ok(())
}

/// Create the Service; returns the Service as the API server stored it.
pub async fn create_service(cluster: &Cluster) -> Result<Service> {
    let ns = cluster.namespace();
    let svc: Service = decode("service", service_manifest(ns))?;
    let api: Api<Service> = Api::namespaced(cluster.client().clone(), ns);
    Ok(cluster
        .call(
            format!("creating service {ns}/{SERVICE}"),
            api.create(&PostParams::default(), &svc),
        )
        .await?)
}

/// Phase and conditions of a pod, for "not Ready" errors.
pub fn describe_state(pod: &Pod) -> String {
    let Some(st) = pod.status.as_ref() else {
        return "no status yet".into();
    };
    let mut s = format!("phase {}", st.phase.as_deref().unwrap_or("Unknown"));
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        s.push_str(&format!(", node {node}"));
    }
    for c in st.conditions.iter().flatten() {
        s.push_str(&format!(", {}={}", c.type_, c.status));
        let why: Vec<&str> = [c.reason.as_deref(), c.message.as_deref()]
            .into_iter()
            .flatten()
            .filter(|w| !w.is_empty())
            .collect();
        if !why.is_empty() {
            s.push_str(&format!(" ({})", why.join(": ")));
        }
    }
    s
}

/// Wait until every named pod is Running and Ready; returns them in `names` order.
pub async fn wait_ready(cluster: &Cluster, names: &[&str], limit: Duration) -> Result<Vec<Pod>> {
    let ns = cluster.namespace();
    let deadline = Instant::now() + limit;
    loop {
        let pods = cluster.list_pods(Some(ns), Some(SELECTOR)).await?;
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for name in names {
            match pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(*name))
            {
                Some(p) if unusable_reason(p).is_none() => ready.push(p.clone()),
                Some(p) => {
                    let failed = p
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.as_deref())
                        .is_some_and(|ph| ph == "Failed" || ph == "Succeeded");
                    if failed {
                        return Err(not_ready(ns, name, &describe_state(p), "it stopped"));
                    }
                    waiting.push((name, describe_state(p)));
                }
                None => waiting.push((name, "it does not exist (deleted by someone?)".into())),
            }
        }
        if waiting.is_empty() {
            return Ok(ready);
        }
        if Instant::now() >= deadline {
            let (name, state) = &waiting[0];
            let others: Vec<String> = waiting[1..]
                .iter()
                .map(|(n, s)| format!("{n}: {s}"))
                .collect();
            let mut detail = state.clone();
            if !others.is_empty() {
                detail.push_str(&format!("; also not ready: {}", others.join("; ")));
            }
            return Err(not_ready(
                ns,
                name,
                &detail,
                &format!("not Ready after {}s (--ready-timeout)", limit.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn not_ready(ns: &str, name: &str, state: &str, why: &str) -> Error {
    Error::Cluster(cluster::Error::NotRunning {
        pod: format!("{ns}/{name}"),
        namespace: ns.into(),
        name: name.into(),
        detail: format!("{why}: {state}"),
    })
}

pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef::from_pod(pod)
}

/// Delete pods by name (gone already = fine) and wait until they are gone.
/// Returns the names that could not be removed, with the reason.
pub async fn delete_pods(cluster: &Cluster, names: &[String]) -> Vec<String> {
    let ns = cluster.namespace();
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(1),
        ..Default::default()
    };
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    let (api, dp) = (&api, &dp);
    let deletes = names.iter().map(|name| async move {
        let r = cluster
            .call(format!("deleting pod {ns}/{name}"), api.delete(name, dp))
            .await;
        (name, r)
    });
    for (name, r) in join_all(deletes).await {
        match r {
            Ok(_) => pending.push(name.clone()),
            Err(cluster::Error::NotFound { .. }) => {}
            Err(e) => failed.push(format!("pod {ns}/{name}: {e}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() && Instant::now() < deadline {
        // One list per round instead of a get per pod; on error, try again.
        if let Ok(left) = cluster.list_pods(Some(ns), Some(SELECTOR)).await {
            pending.retain(|n| left.iter().any(|p| p.metadata.name.as_ref() == Some(n)));
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    failed.extend(
        pending
            .into_iter()
            .map(|n| format!("pod {ns}/{n}: still there 60s after deletion")),
    );
    failed
}

pub async fn delete_service(cluster: &Cluster, name: &str) -> Option<String> {
    let ns = cluster.namespace();
    let api: Api<Service> = Api::namespaced(cluster.client().clone(), ns);
    match cluster
        .call(
            format!("deleting service {ns}/{name}"),
            api.delete(name, &DeleteParams::default()),
        )
        .await
    {
        Ok(_) | Err(cluster::Error::NotFound { .. }) => None,
        Err(e) => Some(format!("service {ns}/{name}: {e}")),
    }
}

/// Names of existing `app=PerfTest` pods and services (another run, or leftovers).
pub async fn existing(cluster: &Cluster) -> Result<(Vec<String>, Vec<String>)> {
    let ns = cluster.namespace();
    let pods = cluster.list_pods(Some(ns), Some(SELECTOR)).await?;
    let api: Api<Service> = Api::namespaced(cluster.client().clone(), ns);
    let svcs = cluster
        .list_paged(
            &api,
            &ListParams::default().labels(SELECTOR),
            &format!("listing services in {ns} with labels {SELECTOR}"),
        )
        .await?;
    let names = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.name.clone().unwrap_or_default()
    };
    Ok((
        pods.iter().map(|p| names(&p.metadata)).collect(),
        svcs.iter().map(|s| names(&s.metadata)).collect(),
    ))
}

/// The ClusterIP the API server assigned, if any.
pub fn cluster_ip(svc: &Service) -> Option<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_decode_and_only_the_pod_server_is_selected() {
        let server = PodPlan {
            name: "test-server",
            node: "n1".into(),
            hostname: "n1".into(),
            host_network: false,
            server: true,
        };
        let pod: Pod = decode("pod", pod_manifest(&server, "kube-system", "img")).unwrap();
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["env"], "server");
        let spec = pod.spec.unwrap();
        assert_eq!(
            spec.containers[0].command.as_deref().unwrap(),
            ["sleep", "infinity"]
        );
        let host = PodPlan {
            name: "test-host-server",
            host_network: true,
            ..server
        };
        let pod: Pod = decode("pod", pod_manifest(&host, "kube-system", "img")).unwrap();
        assert!(!pod.metadata.labels.unwrap().contains_key("env"));
        assert_eq!(pod.spec.unwrap().host_network, Some(true));
        let svc: Service = decode("service", service_manifest("kube-system")).unwrap();
        assert_eq!(svc.spec.unwrap().ports.unwrap().len(), 4);
    }
}
