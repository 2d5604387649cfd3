//! Errors from talking to the cluster. Every variant says what was attempted,
//! what went wrong and what to try; `exit_code` maps them to the documented codes.

use std::time::Duration;

/// Exit code for "could not reach / use the cluster" (unreachable, forbidden,
/// object not found, no leader, pod not running).
pub const EXIT_CLUSTER: i32 = 3;
/// Exit code for a remote call that did not finish within its timeout.
pub const EXIT_TIMEOUT: i32 = 4;
/// Exit code for a remote tool that failed or printed something we could not understand.
pub const EXIT_REMOTE: i32 = 5;
/// Exit code for a local file or terminal write that failed.
pub const EXIT_LOCAL_IO: i32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "could not load the Kubernetes client configuration: {detail}\n  try: check --kubeconfig / KUBECONFIG and --context (`kubectl config get-contexts`)"
    )]
    Config { detail: String },

    #[error(
        "could not reach the Kubernetes API server while {what}: {detail}\n  try: `kubectl cluster-info` with the same --kubeconfig/--context; check the server address and your network"
    )]
    Unreachable { what: String, detail: String },

    #[error(
        "the API server refused {what}: {detail}\n  try: `kubectl auth can-i` for this verb and resource; kubectl-ko needs to get/list pods and nodes and create pods/exec in the Kube-OVN namespace"
    )]
    Forbidden { what: String, detail: String },

    #[error("{what} was not found{detail}\n  try: {hint}")]
    NotFound {
        what: String,
        detail: String,
        hint: String,
    },

    #[error(
        "no ready {component} leader pod in namespace {namespace} after {tries} tries: {detail}\n  try: `kubectl -n {namespace} get pods -l app=ovn-central -L ovn-nb-leader,ovn-sb-leader,ovn-northd-leader`; if Kube-OVN runs elsewhere, pass --kube-ovn-namespace or set KUBE_OVN_NS"
    )]
    NoLeader {
        component: String,
        namespace: String,
        tries: u32,
        detail: String,
    },

    #[error(
        "pod {pod} is not usable: {detail}\n  try: `kubectl -n {namespace} describe pod {name}`"
    )]
    NotRunning {
        pod: String,
        namespace: String,
        name: String,
        detail: String,
    },

    #[error(
        "{what} did not finish within {:.0?}\n  try: a larger --timeout, or check that the API server and the pod respond",
        after
    )]
    Timeout { what: String, after: Duration },

    #[error("{what} failed: {detail}\n  try: {hint}")]
    Api {
        what: String,
        detail: String,
        hint: String,
    },

    #[error(
        "{what} exited with code {code}: {stderr}\n  try: run the command by hand with `kubectl exec` to see its full output"
    )]
    RemoteFailed {
        what: String,
        code: i32,
        stderr: String,
    },

    #[error("could not write {what}: {detail}")]
    LocalIo { what: String, detail: String },

    #[error("invalid {what} {value:?}: {detail}")]
    InvalidName {
        what: String,
        value: String,
        detail: String,
    },
}

impl Error {
    /// The process exit code for this error (see `kubectl ko --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Timeout { .. } => EXIT_TIMEOUT,
            Error::InvalidName { .. } => 2,
            Error::RemoteFailed { .. } => EXIT_REMOTE,
            Error::LocalIo { .. } => EXIT_LOCAL_IO,
            _ => EXIT_CLUSTER,
        }
    }

    /// Classify a kube-rs error from `what` (e.g. "listing pods in kube-system").
    pub fn from_kube(what: impl Into<String>, err: kube::Error) -> Self {
        let what = what.into();
        match err {
            kube::Error::Api(status) => {
                let detail = if status.message.is_empty() {
                    format!("HTTP {} {}", status.code, status.reason)
                } else {
                    status.message.clone()
                };
                match status.code {
                    401 | 403 => Error::Forbidden { what, detail },
                    404 => Error::NotFound {
                        what,
                        detail: format!(": {detail}"),
                        hint: "check the name and namespace (`kubectl get` it)".into(),
                    },
                    _ => Error::Api {
                        what,
                        detail,
                        hint: "retry; if it persists check the API server logs".into(),
                    },
                }
            }
            kube::Error::UpgradeConnection(up) => {
                let detail = up.to_string();
                // The upgrade error keeps only the HTTP status; map the common ones.
                if detail.contains("403") || detail.contains("401") {
                    Error::Forbidden { what, detail }
                } else if detail.contains("404") {
                    Error::NotFound {
                        what,
                        detail: format!(": {detail}"),
                        hint: "check that the pod still exists (`kubectl get pod`)".into(),
                    }
                } else {
                    Error::Api {
                        what,
                        detail,
                        hint: "check that the pod is Running and the container name exists".into(),
                    }
                }
            }
            kube::Error::HyperError(e) => Error::Unreachable {
                what,
                detail: chain(&e),
            },
            kube::Error::Service(e) => Error::Unreachable {
                what,
                detail: chain(e.as_ref()),
            },
            kube::Error::Auth(e) => Error::Forbidden {
                what,
                detail: chain(&e),
            },
            other => Error::Api {
                what,
                detail: chain(&other),
                hint: "retry with -v for more detail".into(),
            },
        }
    }
}

/// Flatten an error and its sources into one line: the innermost cause is
/// usually the useful one ("connection refused").
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
