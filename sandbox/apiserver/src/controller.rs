//! The one piece of controller behaviour the sandbox needs: a deleted pod that a
//! workload controller owns (DaemonSet, ReplicaSet, StatefulSet ...) comes back, as
//! `kubectl delete pod` / `kubectl ko reload` expect. The replacement keeps the name
//! (the data plane's holder process and runtime.json entry stay valid), gets a new uid
//! and creationTimestamp, and starts Running/ready.

use std::time::Duration;

use serde_json::{Value, json};

use crate::app::Shared;
use crate::store::{Key, metadata_mut};

/// How long a replacement takes to appear (long enough for `kubectl delete --wait`
/// to observe the deletion).
pub const RECREATE_DELAY: Duration = Duration::from_secs(1);

pub fn is_controlled(pod: &Value) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true))
}

/// The replacement object: identity and runtime fields reset, everything else kept.
pub fn replacement(deleted: &Value) -> Value {
    let mut pod = deleted.clone();
    let meta = metadata_mut(&mut pod);
    for field in [
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        meta.remove(field);
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    pod["status"]["startTime"] = json!(now);
    crate::leader::set_pod_readiness(&mut pod, true);
    pod
}

pub fn recreate_later(app: Shared, key: Key, deleted: Value) {
    tokio::spawn(async move {
        tokio::time::sleep(RECREATE_DELAY).await;
        match app.store.create(key.clone(), replacement(&deleted)) {
            Ok(_) => tracing::info!("recreated controlled pod {}/{}", key.namespace, key.name),
            // Someone (the data plane) already created it again: nothing to do.
            Err(e) => tracing::info!(
                "not recreating pod {}/{}: {}",
                key.namespace,
                key.name,
                e.message
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_resets_identity_and_readiness() {
        let pod = json!({"metadata": {"name": "p", "namespace": "kube-system", "uid": "u1",
            "creationTimestamp": "2020-01-01T00:00:00Z", "resourceVersion": "7",
            "ownerReferences": [{"kind": "DaemonSet", "name": "d", "controller": true}]},
            "status": {"phase": "Failed", "containerStatuses": [{"ready": false}]}});
        assert!(is_controlled(&pod));
        let r = replacement(&pod);
        assert!(r["metadata"].get("uid").is_none());
        assert!(r["metadata"].get("creationTimestamp").is_none());
        assert_eq!(r["metadata"]["name"], "p");
        assert_eq!(r["status"]["phase"], "Running");
        assert_eq!(r["status"]["containerStatuses"][0]["ready"], true);
        assert!(!is_controlled(&json!({"metadata": {}})));
    }
}
