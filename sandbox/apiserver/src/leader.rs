//! What a kubelet and Kube-OVN's leader checker would keep up to date: pod liveness from
//! the holder processes, the `ovn-nb-leader` / `ovn-sb-leader` / `ovn-northd-leader`
//! labels from the real RAFT and northd state, and the EndpointSlices of the ovn-nb,
//! ovn-sb and ovn-northd Services pointing at the leader.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::app::Shared;
use crate::runtime::pid_alive;
use crate::store::Key;

pub const INTERVAL: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub const NB_LABEL: &str = "ovn-nb-leader";
pub const SB_LABEL: &str = "ovn-sb-leader";
pub const NORTHD_LABEL: &str = "ovn-northd-leader";
/// An ovn-central pod annotated `<this>=true` keeps its leader labels as they
/// are: Kube-OVN's leader checker lagging an election, on demand (a test
/// relabels the pods by hand and sees what a client makes of a stale label).
pub const FREEZE_ANNOTATION: &str = "sandbox.kubectl-ko.io/freeze-leader-labels";

/// (Service name, leader label) pairs whose EndpointSlices follow the leader.
const SERVICES: [(&str, &str); 3] = [
    ("ovn-nb", NB_LABEL),
    ("ovn-sb", SB_LABEL),
    ("ovn-northd", NORTHD_LABEL),
];

/// True when `ovn-appctl ... cluster/status DB` output says this server leads.
pub fn raft_is_leader(cluster_status: &str) -> bool {
    cluster_status.lines().any(|l| {
        l.trim()
            .strip_prefix("Role:")
            .is_some_and(|r| r.trim() == "leader")
    })
}

/// True when `ovn-appctl -t ovn-northd status` says this northd holds the lock.
pub fn northd_is_active(status: &str) -> bool {
    status.lines().any(|l| {
        l.trim()
            .strip_prefix("Status:")
            .is_some_and(|s| s.trim() == "active")
    })
}

const NB_PROBE: [&str; 5] = [
    "ovn-appctl",
    "-t",
    "/var/run/ovn/ovnnb_db.ctl",
    "cluster/status",
    "OVN_Northbound",
];
const SB_PROBE: [&str; 5] = [
    "ovn-appctl",
    "-t",
    "/var/run/ovn/ovnsb_db.ctl",
    "cluster/status",
    "OVN_Southbound",
];
const NORTHD_PROBE: [&str; 4] = ["ovn-appctl", "-t", "ovn-northd", "status"];

/// Runs argv in the holder's namespaces; None when it fails or times out (a stopped
/// daemon cannot be leader).
async fn probe(pid: i32, argv: &[&str]) -> Option<String> {
    let mut cmd = Command::new("nsenter");
    cmd.arg("-t")
        .arg(pid.to_string())
        .arg("-m")
        .arg("-n")
        .arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
        .await
        .ok()?
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Background task state: pods this task marked Failed (so it can revive only those).
#[derive(Default)]
pub struct Watchdog {
    marked_dead: HashSet<Key>,
}

impl Watchdog {
    pub async fn run(mut self, app: Shared) {
        loop {
            self.tick(&app).await;
            tokio::time::sleep(INTERVAL).await;
        }
    }

    async fn tick(&mut self, app: &Shared) {
        let rt = match app.runtime() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!("pod status refresh skipped: {}", e.message);
                return;
            }
        };
        // One snapshot of the pods serves the liveness pass and the leader probes.
        let (pods, _) = app.store.list("", "pods", None);
        for pod in &pods {
            let Some(p) = rt.pod_of(pod) else {
                continue;
            };
            self.set_alive(app, pod, pid_alive(p.pid));
        }
        let central: Vec<&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "ovn-central")
            .collect();
        let probes = central.iter().map(|pod| {
            let pid = rt.pod_of(pod).map(|p| p.pid).filter(|pid| pid_alive(*pid));
            async move {
                let Some(pid) = pid else {
                    return [false, false, false];
                };
                let (nb, sb, northd) = tokio::join!(
                    probe(pid, &NB_PROBE),
                    probe(pid, &SB_PROBE),
                    probe(pid, &NORTHD_PROBE)
                );
                [
                    nb.as_deref().is_some_and(raft_is_leader),
                    sb.as_deref().is_some_and(raft_is_leader),
                    northd.as_deref().is_some_and(northd_is_active),
                ]
            }
        });
        let results = futures::future::join_all(probes).await;
        for (pod, flags) in central.iter().zip(results) {
            if pod["metadata"]["annotations"][FREEZE_ANNOTATION] == "true" {
                continue;
            }
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            let key = Key::new("", "pods", ns, name);
            let r = app.store.update(&key, |obj| {
                for (label, on) in [NB_LABEL, SB_LABEL, NORTHD_LABEL].iter().zip(flags) {
                    if !obj["metadata"]["labels"].is_object() {
                        obj["metadata"]["labels"] = json!({});
                    }
                    obj["metadata"]["labels"][*label] = json!(if on { "true" } else { "false" });
                }
                Ok(())
            });
            if let Err(e) = r {
                tracing::debug!("leader label update for {ns}/{name} skipped: {}", e.message);
            }
        }
        self.update_endpoint_slices(app);
    }

    /// Decides from the stored phase, so a pod recreated meanwhile is judged afresh.
    fn set_alive(&mut self, app: &Shared, pod: &Value, alive: bool) {
        let key = &Key::new(
            "",
            "pods",
            pod["metadata"]["namespace"].as_str().unwrap_or(""),
            pod["metadata"]["name"].as_str().unwrap_or(""),
        );
        let failed = pod["status"]["phase"] == "Failed";
        let change = match (alive, failed) {
            (false, false) => true,
            // Only revive what this task marked dead; a Failed pod from the data plane stays.
            (true, true) => self.marked_dead.contains(key),
            (true, false) => {
                self.marked_dead.remove(key);
                false
            }
            (false, true) => false,
        };
        if !change {
            return;
        }
        let r = app.store.update(key, |pod| {
            set_pod_readiness(pod, alive);
            Ok(())
        });
        if r.is_ok() {
            if alive {
                tracing::info!("pod {}/{}: holder process is back", key.namespace, key.name);
                self.marked_dead.remove(key);
            } else {
                tracing::info!(
                    "pod {}/{}: holder process died; marking Failed",
                    key.namespace,
                    key.name
                );
                self.marked_dead.insert(key.clone());
            }
        }
    }

    fn update_endpoint_slices(&self, app: &Shared) {
        let (pods, _) = app.store.list("", "pods", None);
        let (slices, _) = app.store.list("discovery.k8s.io", "endpointslices", None);
        for (service, label) in SERVICES {
            for slice in slices
                .iter()
                .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
            {
                let ns = slice["metadata"]["namespace"].as_str().unwrap_or("");
                let name = slice["metadata"]["name"].as_str().unwrap_or("");
                let ipv6 = slice["addressType"] == "IPv6";
                let leader = pods.iter().find(|p| {
                    p["metadata"]["namespace"] == ns
                        && p["metadata"]["labels"][label] == "true"
                        && p["status"]["phase"] == "Running"
                });
                let endpoints = leader
                    .and_then(|p| endpoint_for(p, ipv6))
                    .map(|e| json!([e]))
                    .unwrap_or_else(|| json!([]));
                if slice["endpoints"] == endpoints {
                    continue;
                }
                let key = Key::new("discovery.k8s.io", "endpointslices", ns, name);
                let _ = app.store.update(&key, |s| {
                    s["endpoints"] = endpoints.clone();
                    Ok(())
                });
            }
        }
    }
}

/// The pod's address of the slice's family, as an EndpointSlice endpoint.
fn endpoint_for(pod: &Value, ipv6: bool) -> Option<Value> {
    let mut ips: Vec<&str> = pod["status"]["podIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["ip"].as_str()).collect())
        .unwrap_or_default();
    if let Some(ip) = pod["status"]["podIP"].as_str() {
        ips.push(ip);
    }
    let ip = ips.into_iter().find(|ip| ip.contains(':') == ipv6)?;
    let m = &pod["metadata"];
    let mut e = json!({
        "addresses": [ip],
        "conditions": {"ready": true, "serving": true, "terminating": false},
        "targetRef": {"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"]},
    });
    if let Some(node) = pod["spec"]["nodeName"].as_str() {
        e["nodeName"] = json!(node);
    }
    Some(e)
}

/// Sets phase, Ready/ContainersReady conditions and container readiness together.
pub fn set_pod_readiness(pod: &mut Value, alive: bool) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let flag = if alive { "True" } else { "False" };
    pod["status"]["phase"] = json!(if alive { "Running" } else { "Failed" });
    let mut conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for t in ["Ready", "ContainersReady"] {
        match conditions.iter_mut().find(|c| c["type"] == t) {
            Some(c) => {
                c["status"] = json!(flag);
                c["lastTransitionTime"] = json!(now);
            }
            None => conditions.push(json!({"type": t, "status": flag, "lastTransitionTime": now})),
        }
    }
    pod["status"]["conditions"] = json!(conditions);
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in statuses {
            c["ready"] = json!(alive);
            c["started"] = json!(alive);
            c["state"] = if alive {
                json!({"running": {"startedAt": now}})
            } else {
                json!({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now}})
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real outputs, captured with the commands in the .cmd files next to them.
    const LEADER: &str = include_str!("../tests/fixtures/probes/nb-cluster-status-leader.txt");
    const FOLLOWER: &str = include_str!("../tests/fixtures/probes/nb-cluster-status-follower.txt");
    const ACTIVE: &str = include_str!("../tests/fixtures/probes/northd-status-active.txt");
    const STANDBY: &str = include_str!("../tests/fixtures/probes/northd-status-standby.txt");
    const STANDALONE: &str =
        include_str!("../tests/fixtures/probes/sb-cluster-status-standalone.txt");

    #[test]
    fn raft_roles() {
        assert!(raft_is_leader(LEADER));
        assert!(!raft_is_leader(FOLLOWER));
        assert!(!raft_is_leader(STANDALONE));
        assert!(!raft_is_leader(""));
        assert!(!raft_is_leader("Role: candidate\n"));
    }

    #[test]
    fn northd_status() {
        assert!(northd_is_active(ACTIVE));
        assert!(!northd_is_active(STANDBY));
        assert!(!northd_is_active("Status: paused\n"));
    }

    #[test]
    fn readiness_flip() {
        let mut pod = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "ready": true}]}});
        set_pod_readiness(&mut pod, false);
        assert_eq!(pod["status"]["phase"], "Failed");
        assert_eq!(pod["status"]["conditions"][0]["status"], "False");
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], false);
        set_pod_readiness(&mut pod, true);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
    }

    #[test]
    fn endpoint_picks_family() {
        let pod = json!({"metadata": {"name": "p", "namespace": "kube-system", "uid": "u"},
            "spec": {"nodeName": "node1"},
            "status": {"podIP": "172.18.0.2", "podIPs": [{"ip": "172.18.0.2"}, {"ip": "fc00::2"}]}});
        assert_eq!(
            endpoint_for(&pod, false).unwrap()["addresses"][0],
            "172.18.0.2"
        );
        assert_eq!(endpoint_for(&pod, true).unwrap()["addresses"][0], "fc00::2");
        assert_eq!(endpoint_for(&pod, true).unwrap()["targetRef"]["name"], "p");
    }
}
