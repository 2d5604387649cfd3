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
    fn own_pid_is_alive_and_bogus_pid_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(i32::MAX));
    }
}
