//! `<state>/api/runtime.json`: which holder process backs each pod and where its
//! container logs are. Re-read on every use because the data plane rewrites it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::status::ApiError;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct PodRuntime {
    pub pid: i32,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub logs: BTreeMap<String, PathBuf>,
    /// The uid of the pod object this process backs. Set by the sandbox kubelet,
    /// whose pods can be deleted and recreated under the same name: an entry left
    /// from the old pod must not speak for the new one.
    #[serde(default)]
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Runtime {
    #[serde(default)]
    pub pods: BTreeMap<String, PodRuntime>,
}

impl Runtime {
    /// A missing file means "no pods have processes yet", not an error.
    pub fn load(path: &Path) -> Result<Self, ApiError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "reading the sandbox runtime file {} failed: {e}; check that the sandbox is up",
                    path.display()
                )));
            }
        };
        serde_json::from_str(&text).map_err(|e| {
            ApiError::internal(format!(
                "the sandbox runtime file {} is not valid: {e}; recreate the sandbox",
                path.display()
            ))
        })
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodRuntime> {
        self.pods.get(&format!("{namespace}/{name}"))
    }

    /// The entry backing this pod object: same namespace/name and, when the entry
    /// names a uid, the same uid.
    pub fn pod_of(&self, pod: &serde_json::Value) -> Option<&PodRuntime> {
        let meta = &pod["metadata"];
        let entry = self.pod(
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().unwrap_or(""),
        )?;
        match &entry.uid {
            Some(uid) if meta["uid"].as_str() != Some(uid.as_str()) => None,
            _ => Some(entry),
        }
    }
}

/// Whether a process with this pid still exists (zombies count as gone).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 (after the parenthesised comm) is the state; Z = zombie, X = dead.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_contract_shape() {
        let rt: Runtime = serde_json::from_str(
            r#"{"pods":{"kube-system/ovn-central-0":{"pid":42,"containers":["ovn-central"],
               "logs":{"ovn-central":"/tmp/x.log"}}}}"#,
        )
        .unwrap();
        let p = rt.pod("kube-system", "ovn-central-0").unwrap();
        assert_eq!(p.pid, 42);
        assert_eq!(p.logs["ovn-central"], PathBuf::from("/tmp/x.log"));
        assert!(rt.pod("kube-system", "other").is_none());
    }

    #[test]
    fn an_entry_with_a_uid_backs_only_that_pod_object() {
        let rt: Runtime = serde_json::from_str(
            r#"{"pods":{"kube-system/test-client":{"pid":42,"uid":"old"},
                        "kube-system/planned":{"pid":43}}}"#,
        )
        .unwrap();
        let obj = |name: &str, uid: &str| serde_json::json!({"metadata": {"namespace": "kube-system", "name": name, "uid": uid}});
        assert_eq!(rt.pod_of(&obj("test-client", "old")).unwrap().pid, 42);
        assert!(rt.pod_of(&obj("test-client", "new")).is_none());
        // Entries without a uid (pods planned at `up`) match by name alone.
        assert_eq!(rt.pod_of(&obj("planned", "any")).unwrap().pid, 43);
    }

    #[test]
    fn own_pid_is_alive_and_bogus_pid_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(i32::MAX));
    }
}
