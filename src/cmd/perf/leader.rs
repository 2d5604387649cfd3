//! Leader recovery (destructive): delete the NB, SB and northd leader pods one
//! after the other and time until Deployment ovn-central is fully available
//! again and until a Ready pod carries the leader label again.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};

use super::model::LeaderRecovery;
use crate::cluster::{Cluster, Leader, unusable_reason};

const DEPLOYMENT: &str = "ovn-central";
const LIMIT: Duration = Duration::from_secs(300);

fn uid(p: &Pod) -> Option<String> {
    p.metadata.uid.clone()
}

/// The Deployment is available again: every replica available, the deleted pod
/// (by uid) gone and as many Ready pods as replicas, so a status not yet
/// updated after the delete does not count.
async fn deployment_back(cluster: &Cluster, old_uid: &str) -> crate::cluster::Result<bool> {
    let ns = cluster.namespace();
    let pods = cluster
        .list_pods(Some(ns), Some(&format!("app={DEPLOYMENT}")))
        .await?;
    if pods.iter().any(|p| uid(p).as_deref() == Some(old_uid)) {
        return Ok(false);
    }
    // The status may lag behind the delete: also count Ready pods ourselves.
    let ready = pods.iter().filter(|p| unusable_reason(p).is_none()).count();
    let api: Api<Deployment> = Api::namespaced(cluster.client().clone(), ns);
    let d = cluster
        .call(
            format!("getting deployment {ns}/{DEPLOYMENT}"),
            api.get(DEPLOYMENT),
        )
        .await?;
    let want = d.spec.replicas.unwrap_or(1);
    let have = d
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    Ok(have >= want && i32::try_from(ready).unwrap_or(i32::MAX) >= want)
}

/// A Ready pod other than the deleted one carries `<leader label>=true`.
async fn leader_back(
    cluster: &Cluster,
    which: Leader,
    old_uid: &str,
) -> crate::cluster::Result<Option<String>> {
    let ns = cluster.namespace();
    let pods = cluster
        .list_pods(Some(ns), Some(&format!("{}=true", which.label())))
        .await?;
    Ok(pods
        .iter()
        .find(|p| uid(p).as_deref() != Some(old_uid) && unusable_reason(p).is_none())
        .and_then(|p| p.metadata.name.clone()))
}

async fn recover_one(cluster: &Cluster, which: Leader, component: &str) -> LeaderRecovery {
    let mut r = LeaderRecovery {
        component: component.into(),
        deleted_pod: String::new(),
        deployment_available_secs: None,
        leader_back_secs: None,
        new_leader: None,
        error: None,
    };
    let leader = match cluster.leader(which).await {
        Ok(l) => l,
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    r.deleted_pod = leader.name.clone();
    let ns = cluster.namespace();
    let old_uid = match cluster.get_pod(ns, &leader.name).await {
        Ok(p) => uid(&p).unwrap_or_default(),
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    eprintln!(
        "perf: deleting the {component} leader pod {ns}/{}",
        leader.name
    );
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    let start = Instant::now();
    if let Err(e) = cluster
        .call(
            format!("deleting pod {ns}/{}", leader.name),
            api.delete(&leader.name, &DeleteParams::default()),
        )
        .await
    {
        r.error = Some(e.to_string());
        return r;
    }
    while start.elapsed() < LIMIT {
        if r.deployment_available_secs.is_none() {
            match deployment_back(cluster, &old_uid).await {
                Ok(true) => r.deployment_available_secs = Some(start.elapsed().as_secs_f64()),
                Ok(false) => {}
                Err(e) => r.error = Some(e.to_string()),
            }
        }
        if r.leader_back_secs.is_none() {
            match leader_back(cluster, which, &old_uid).await {
                Ok(Some(name)) => {
                    r.leader_back_secs = Some(start.elapsed().as_secs_f64());
                    r.new_leader = Some(name);
                }
                Ok(None) => {}
                Err(e) => r.error = Some(e.to_string()),
            }
        }
        if r.deployment_available_secs.is_some() && r.leader_back_secs.is_some() {
            r.error = None;
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.error = Some(format!(
        "not recovered within {}s: `kubectl -n {ns} get deploy {DEPLOYMENT}; kubectl -n {ns} get pods -l app={DEPLOYMENT} -L {}`",
        LIMIT.as_secs(),
        which.label()
    ));
    r
}

/// NB, then SB, then northd, 5 s apart (as upstream).
pub async fn measure(cluster: &Cluster) -> Vec<LeaderRecovery> {
    let mut out = Vec::new();
    for (i, (which, name)) in [
        (Leader::Nb, "nb"),
        (Leader::Sb, "sb"),
        (Leader::Northd, "northd"),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        out.push(recover_one(cluster, which, name).await);
    }
    out
}
