//! The workload controllers of kube-controller-manager, for the DaemonSets,
//! Deployments and ReplicaSets created through the API: a DaemonSet gets one pod per
//! fitting node, a Deployment a ReplicaSet per pod template (`pod-template-hash`), a
//! ReplicaSet its replicas; each keeps its status (numberReady, readyReplicas, ...)
//! in step with its pods so `kubectl rollout status` completes. The pods are created
//! as those controllers create them (generateName, ownerReferences, template labels);
//! the sandbox kubelet then runs them like any other API pod.
//!
//! The workloads `up` planned (loaded from `objects/` at start) are left alone: their
//! pods are the data plane's, and the emulator's own re-creation (controller.rs) keeps
//! them. Deleting a managed workload deletes what it owns (the garbage collector's
//! background propagation).

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde_json::{Value, json};

use crate::app::{App, Shared};
use crate::store::Key;

/// Characters Kubernetes uses for generated name suffixes and hashes (no vowels).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The uids of the workloads loaded at start (planned by `up`).
pub fn planned_workloads(app_store: &crate::store::Store) -> HashSet<String> {
    ["daemonsets", "deployments", "replicasets"]
        .iter()
        .flat_map(|p| app_store.list("apps", p, None).0)
        .filter_map(|o| o["metadata"]["uid"].as_str().map(String::from))
        .collect()
}

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// The uid of the object's controller (its `controller: true` ownerReference).
fn controller_uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

fn managed(app: &App, obj: &Value) -> bool {
    !app.planned_workloads.contains(uid(obj))
}

/// Whether a pod belongs to a workload these controllers manage (then a deleted pod is
/// replaced by a new one under a new name, not recreated under its own).
pub fn pod_has_managed_owner(app: &App, pod: &Value) -> bool {
    let Some(owner) = controller_uid(pod) else {
        return false;
    };
    ["daemonsets", "replicasets"].iter().any(|p| {
        app.store
            .list("apps", p, Some(namespace(pod)))
            .0
            .iter()
            .any(|o| uid(o) == owner && managed(app, o))
    })
}

fn random_suffix(len: usize) -> String {
    let seed = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    encode(h.finish(), len)
}

fn encode(mut n: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHANUMS[(n % ALPHANUMS.len() as u64) as usize] as char;
            n /= ALPHANUMS.len() as u64;
            c
        })
        .collect()
}

/// A stable hash of a pod template (the role of `pod-template-hash` and
/// `controller-revision-hash`: equal templates, equal hash).
fn template_hash(template: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut h);
    encode(h.finish(), 10)
}

fn is_active(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Failed" | "Succeeded")
        )
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn owned<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|o| controller_uid(o) == Some(uid(owner)))
        .collect()
}

fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name(owner), "uid": uid(owner),
            "controller": true, "blockOwnerDeletion": true}])
}

/// A pod from `template` as a workload controller creates it.
fn pod_from(
    template: &Value,
    owner: &Value,
    kind: &str,
    labels: &BTreeMap<&str, String>,
) -> (String, Value) {
    let prefix = format!("{}-", name(owner));
    let pod_name = format!("{prefix}{}", random_suffix(5));
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"].clone(),
        "spec": template["spec"].clone(),
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    if !pod["metadata"].is_object() {
        pod["metadata"] = json!({});
    }
    pod["metadata"]["generateName"] = json!(prefix);
    pod["metadata"]["ownerReferences"] = owner_ref(owner, kind);
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    for (k, v) in labels {
        pod["metadata"]["labels"][*k] = json!(v);
    }
    crate::defaults::apply("", "Pod", &mut pod);
    (pod_name, pod)
}

fn create_pod(app: &App, ns: &str, (pod_name, pod): (String, Value)) {
    if let Err(e) = app.store.create(Key::new("", "pods", ns, &pod_name), pod) {
        tracing::warn!("creating pod {ns}/{pod_name} failed: {}", e.message);
    }
}

fn delete(app: &App, group: &str, plural: &str, obj: &Value) {
    let key = Key::new(group, plural, namespace(obj), name(obj));
    if let Err(e) = app.store.delete(&key) {
        tracing::info!(
            "deleting {plural} {}/{}: {}",
            key.namespace,
            key.name,
            e.message
        );
    }
}

fn set_status(app: &App, group: &str, plural: &str, obj: &Value, status: Value) {
    let key = Key::new(group, plural, namespace(obj), name(obj));
    let result = app.store.update(&key, |o| {
        let mut s = status.clone();
        if let (Some(new), Some(old)) = (s.as_object_mut(), o["status"].as_object()) {
            // keep what the controllers do not own (e.g. conditions' first transition times)
            for (k, v) in old {
                new.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        o["status"] = s;
        Ok(())
    });
    if let Err(e) = result {
        tracing::info!(
            "updating the status of {plural} {}/{}: {}",
            key.namespace,
            key.name,
            e.message
        );
    }
}

/// Deletes what a managed workload owned once it is gone (called on DELETE).
pub fn cascade(app: &App, deleted: &Value) {
    if !managed(app, deleted) {
        return;
    }
    let ns = namespace(deleted);
    let (pods, _) = app.store.list("", "pods", Some(ns));
    for p in owned(&pods, deleted) {
        delete(app, "", "pods", p);
    }
    let (rss, _) = app.store.list("apps", "replicasets", Some(ns));
    for rs in owned(&rss, deleted) {
        delete(app, "apps", "replicasets", rs);
        cascade(app, rs);
    }
}

pub async fn run(app: Shared) {
    let (_, mut rx) = app.store.subscribe(None);
    loop {
        reconcile(&app);
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        // Let a burst of changes (a kubelet publishing several pods) settle first.
        tokio::time::sleep(Duration::from_millis(150)).await;
        while rx.try_recv().is_ok() {}
    }
}

fn reconcile(app: &App) {
    let (deploys, _) = app.store.list("apps", "deployments", None);
    for d in deploys.iter().filter(|d| managed(app, d)) {
        deployment(app, d);
    }
    let (rss, _) = app.store.list("apps", "replicasets", None);
    for rs in rss.iter().filter(|r| managed(app, r)) {
        replica_set(app, rs);
    }
    let (dss, _) = app.store.list("apps", "daemonsets", None);
    for ds in dss.iter().filter(|d| managed(app, d)) {
        daemon_set(app, ds);
    }
}

fn replica_set(app: &App, rs: &Value) {
    let ns = namespace(rs);
    let (pods, _) = app.store.list("", "pods", Some(ns));
    let mut active: Vec<&Value> = owned(&pods, rs)
        .into_iter()
        .filter(|p| is_active(p))
        .collect();
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .map(String::from);
    let mut labels = BTreeMap::new();
    if let Some(h) = hash {
        labels.insert("pod-template-hash", h);
    }
    for _ in active.len()..want {
        create_pod(
            app,
            ns,
            pod_from(&rs["spec"]["template"], rs, "ReplicaSet", &labels),
        );
    }
    if active.len() > want {
        // Not-ready pods go first, as the ReplicaSet controller ranks them.
        active.sort_by_key(|p| is_ready(p));
        for p in active.drain(..active.len() - want) {
            delete(app, "", "pods", p);
        }
    }
    let (pods, _) = app.store.list("", "pods", Some(ns));
    let now: Vec<&Value> = owned(&pods, rs)
        .into_iter()
        .filter(|p| is_active(p))
        .collect();
    let ready = now.iter().filter(|p| is_ready(p)).count();
    set_status(
        app,
        "apps",
        "replicasets",
        rs,
        json!({
            "replicas": now.len(), "fullyLabeledReplicas": now.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
        }),
    );
}

fn revision(obj: &Value) -> i64 {
    obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The Deployment controller: the ReplicaSet of the current template gets every
/// replica, older ones are scaled to zero (once the new pods are ready, as a rolling
/// update ends); the status sums their pods.
fn deployment(app: &App, d: &Value) {
    let ns = namespace(d);
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let (rss, _) = app.store.list("apps", "replicasets", Some(ns));
    let mine = owned(&rss, d);
    let new_rs = mine
        .iter()
        .find(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    let rev = match new_rs {
        Some(rs) => {
            if rs["spec"]["replicas"].as_i64() != Some(want) {
                let key = Key::new("apps", "replicasets", ns, name(rs));
                let _ = app.store.update(&key, |o| {
                    o["spec"]["replicas"] = json!(want);
                    Ok(())
                });
            }
            revision(rs)
        }
        None => {
            let rev = mine.iter().map(|r| revision(r)).max().unwrap_or(0) + 1;
            create_replica_set(app, d, &hash, want, rev);
            rev
        }
    };
    let (rss, _) = app.store.list("apps", "replicasets", Some(ns));
    let (pods, _) = app.store.list("", "pods", Some(ns));
    let mut total = 0;
    let mut updated = 0;
    let mut ready = 0;
    let mut new_ready = 0;
    for rs in owned(&rss, d) {
        let ps: Vec<&Value> = owned(&pods, rs)
            .into_iter()
            .filter(|p| is_active(p))
            .collect();
        let r = ps.iter().filter(|p| is_ready(p)).count();
        total += ps.len();
        ready += r;
        if rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str() {
            updated += ps.len();
            new_ready += r;
        }
    }
    if new_ready as i64 >= want {
        for rs in owned(&rss, d) {
            if rs["metadata"]["labels"]["pod-template-hash"] != hash.as_str()
                && rs["spec"]["replicas"].as_i64() != Some(0)
            {
                let key = Key::new("apps", "replicasets", ns, name(rs));
                let _ = app.store.update(&key, |o| {
                    o["spec"]["replicas"] = json!(0);
                    Ok(())
                });
            }
        }
    }
    if revision(d) != rev {
        let key = Key::new("apps", "deployments", ns, name(d));
        let _ = app.store.update(&key, |o| {
            o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(rev.to_string());
            Ok(())
        });
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let done = updated as i64 == want && total == updated && new_ready as i64 >= want;
    let available = ready as i64 >= want;
    let cond = |t: &str, ok: bool, reason: &str, msg: String| {
        json!({"type": t, "status": if ok { "True" } else { "False" }, "reason": reason, "message": msg,
               "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let rs_name = format!("{}-{hash}", name(d));
    let conditions = json!([
        cond(
            "Available",
            available,
            if available {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available {
                "Deployment has minimum availability.".into()
            } else {
                "Deployment does not have minimum availability.".into()
            }
        ),
        cond(
            "Progressing",
            true,
            if done {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            },
            if done {
                format!("ReplicaSet \"{rs_name}\" has successfully progressed.")
            } else {
                format!("ReplicaSet \"{rs_name}\" is progressing.")
            }
        ),
    ]);
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"], "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": ready,
    });
    if (ready as i64) < total as i64 {
        status["unavailableReplicas"] = json!(total - ready);
    }
    // Conditions change only with their state, so a steady Deployment is not rewritten.
    let old = &d["status"]["conditions"];
    let same = old.as_array().is_some_and(|o| {
        o.len() == 2
            && (0..2).all(|i| {
                o[i]["status"] == conditions[i]["status"]
                    && o[i]["reason"] == conditions[i]["reason"]
            })
    });
    status["conditions"] = if same { old.clone() } else { conditions };
    let key = Key::new("apps", "deployments", ns, name(d));
    let _ = app.store.update(&key, |o| {
        o["status"] = status.clone();
        Ok(())
    });
}

fn create_replica_set(app: &App, d: &Value, hash: &str, replicas: i64, rev: i64) {
    let ns = namespace(d);
    let rs_name = format!("{}-{hash}", name(d));
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": replicas.to_string(),
                "deployment.kubernetes.io/revision": rev.to_string(),
            },
            "ownerReferences": owner_ref(d, "Deployment"),
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template,
                 "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0)},
        "status": {"replicas": 0},
    });
    if let Err(e) = app
        .store
        .create(Key::new("apps", "replicasets", ns, &rs_name), rs)
    {
        tracing::warn!("creating ReplicaSet {ns}/{rs_name} failed: {}", e.message);
    }
}

/// Whether a DaemonSet pod may run on `node`: its nodeSelector matches the node's
/// labels and every NoSchedule/NoExecute taint is tolerated.
fn fits(template_spec: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selected = template_spec["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels[k] == *v));
    let tolerations = template_spec["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tolerated = node["spec"]["taints"].as_array().is_none_or(|taints| {
        taints
            .iter()
            .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
            .all(|t| {
                tolerations.iter().any(|tol| {
                    (tol["operator"] == "Exists"
                        && tol["key"]
                            .as_str()
                            .is_none_or(|k| k.is_empty() || t["key"] == k))
                        || (tol["key"] == t["key"] && tol["value"] == t["value"])
                })
            })
    });
    selected && tolerated
}

/// Tolerations the DaemonSet controller adds to its pods.
fn daemon_tolerations(spec: &mut Value) {
    let mut tols = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        if !tols.iter().any(|t| t["key"] == key) {
            tols.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    spec["tolerations"] = json!(tols);
}

fn daemon_set(app: &App, ds: &Value) {
    let ns = namespace(ds);
    let template = &ds["spec"]["template"];
    let hash = template_hash(template);
    let (nodes, _) = app.store.list("", "nodes", None);
    let (pods, _) = app.store.list("", "pods", Some(ns));
    let mine: Vec<&Value> = owned(&pods, ds)
        .into_iter()
        .filter(|p| is_active(p))
        .collect();
    let eligible: Vec<&Value> = nodes
        .iter()
        .filter(|n| fits(&template["spec"], n))
        .collect();
    let on = |node: &str| -> Vec<&Value> {
        mine.iter()
            .copied()
            .filter(|p| p["spec"]["nodeName"] == node)
            .collect()
    };
    let generation = ds["metadata"]["generation"]
        .as_i64()
        .unwrap_or(1)
        .to_string();
    for node in &eligible {
        if !on(name(node)).is_empty() {
            continue;
        }
        let labels = BTreeMap::from([
            ("controller-revision-hash", hash.clone()),
            ("pod-template-generation", generation.clone()),
        ]);
        let (pod_name, mut pod) = pod_from(template, ds, "DaemonSet", &labels);
        // Scheduled as the DaemonSet controller asks (node affinity on the node's name);
        // nodeName is what the scheduler then sets.
        pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name(node)]}]}]}}});
        pod["spec"]["nodeName"] = json!(name(node));
        daemon_tolerations(&mut pod["spec"]);
        create_pod(app, ns, (pod_name, pod));
    }
    let eligible_names: HashSet<&str> = eligible.iter().map(|n| name(n)).collect();
    for p in &mine {
        if !eligible_names.contains(p["spec"]["nodeName"].as_str().unwrap_or("")) {
            delete(app, "", "pods", p);
        }
    }
    // Rolling update, maxUnavailable 1: replace one outdated pod while all others are ready.
    let outdated: Vec<&&Value> = mine
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] != hash.as_str())
        .collect();
    if let Some(first) = outdated.first()
        && mine.iter().all(|p| is_ready(p))
        && ds["spec"]["updateStrategy"]["type"] != "OnDelete"
    {
        delete(app, "", "pods", first);
    }
    let (pods, _) = app.store.list("", "pods", Some(ns));
    let now: Vec<&Value> = owned(&pods, ds)
        .into_iter()
        .filter(|p| {
            is_active(p) && eligible_names.contains(p["spec"]["nodeName"].as_str().unwrap_or(""))
        })
        .collect();
    let scheduled: HashSet<&str> = now
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    let ready = now.iter().filter(|p| is_ready(p)).count();
    let updated = now
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == hash.as_str())
        .count();
    let desired = eligible.len();
    let mut status = json!({
        "desiredNumberScheduled": desired, "currentNumberScheduled": scheduled.len(),
        "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
        "updatedNumberScheduled": updated, "observedGeneration": ds["metadata"]["generation"],
    });
    if ready < desired {
        status["numberUnavailable"] = json!(desired - ready);
    }
    let key = Key::new("apps", "daemonsets", ns, name(ds));
    let _ = app.store.update(&key, |o| {
        o["status"] = status.clone();
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_templates_hash_equal_and_names_use_the_safe_alphabet() {
        let a = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&json!({"spec": {}})));
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)));
    }

    #[test]
    fn daemon_pods_fit_by_selector_and_taints() {
        let node = json!({"metadata": {"name": "n", "labels": {"kubernetes.io/os": "linux"}},
                          "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
        assert!(!fits(&json!({}), &node));
        assert!(fits(
            &json!({"tolerations": [{"operator": "Exists"}]}),
            &node
        ));
        let plain = json!({"metadata": {"name": "n", "labels": {"kubernetes.io/os": "linux"}}});
        assert!(fits(
            &json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
            &plain
        ));
        assert!(!fits(
            &json!({"nodeSelector": {"kubernetes.io/os": "windows"}}),
            &plain
        ));
    }
}
