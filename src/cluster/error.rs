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
        "could not reach the Kubernetes API server{} while {what}: {detail}\n  try: `kubectl cluster-info` with the same --kubeconfig/--context; check the server address and your network",
        server.as_deref().map(|s| format!(" at {s}")).unwrap_or_default()
    )]
    Unreachable {
        what: String,
        detail: String,
        /// The server URL from the kubeconfig, when known.
        server: Option<String>,
    },

    #[error("the API server refused {what}: {detail}\n  try: {hint}")]
    Forbidden {
        what: String,
        detail: String,
        hint: String,
    },

    #[error(
        "the API server did not accept your credentials while {what}: {detail}\n  try: check the user of your kubeconfig context (`kubectl config view --minify`): its token or client certificate may be wrong or expired; `kubectl auth whoami` shows who the server thinks you are"
    )]
    Unauthorized { what: String, detail: String },

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
        "pod {pod} is not usable: {detail}\n  try: `kubectl -n {namespace} describe pod {name}` (its events and container states say why) and `kubectl -n {namespace} logs {name} --all-containers`; kubectl-ko runs commands only in Running, Ready pods"
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
                    401 => Error::Unauthorized { what, detail },
                    403 => Error::forbidden(what, detail),
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
                if detail.contains("401") {
                    Error::Unauthorized { what, detail }
                } else if detail.contains("403") {
                    Error::forbidden(what, detail)
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
                server: None,
            },
            kube::Error::Service(e) => Error::Unreachable {
                what,
                detail: chain(e.as_ref()),
                server: None,
            },
            kube::Error::Auth(e) => Error::Unauthorized {
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

impl Error {
    /// Name the API server in an Unreachable error (the kube error does not).
    pub fn with_server(self, url: Option<&str>) -> Self {
        match self {
            Error::Unreachable {
                what,
                detail,
                server: None,
            } => Error::Unreachable {
                what,
                detail,
                server: url.map(String::from),
            },
            other => other,
        }
    }

    /// A 403, with the `kubectl auth can-i` line and the RBAC rule to grant when the
    /// server's message names them (`User "u" cannot create resource "pods/exec" in
    /// API group "" in the namespace "kube-system"`).
    pub fn forbidden(what: String, detail: String) -> Self {
        let hint = match Denied::parse(&detail) {
            Some(d) => d.hint(),
            None => {
                format!("`kubectl auth can-i --list -n <namespace>` shows what you may do; {NEEDS}")
            }
        };
        Error::Forbidden { what, detail, hint }
    }
}

/// What kubectl-ko needs from RBAC, said whenever something is forbidden.
const NEEDS: &str = "kubectl-ko needs get/list on pods and nodes (and Kube-OVN's subnets/vpcs for trace and diagnose) and create on pods/exec in the Kube-OVN namespace";

/// The verb, resource and scope a 403 message says were denied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Denied {
    user: String,
    verb: String,
    resource: String,
    group: String,
    namespace: Option<String>,
}

impl Denied {
    fn parse(message: &str) -> Option<Self> {
        let quoted = |s: &str| -> Option<(String, usize)> {
            let start = s.find('"')? + 1;
            let len = s[start..].find('"')?;
            Some((s[start..start + len].to_string(), start + len + 1))
        };
        let rest = &message[message.find("User ")? + 5..];
        let (user, end) = quoted(rest)?;
        let rest = rest[end..].trim_start().strip_prefix("cannot ")?;
        let (verb, rest) = rest.split_once(' ')?;
        let rest = rest.strip_prefix("resource ")?;
        let (resource, end) = quoted(rest)?;
        let rest = rest[end..].trim_start().strip_prefix("in API group ")?;
        let (group, end) = quoted(rest)?;
        let rest = &rest[end..];
        let namespace = match rest.find("in the namespace ") {
            Some(i) => Some(quoted(&rest[i..])?.0),
            None => None,
        };
        Some(Denied {
            user,
            verb: verb.to_string(),
            resource,
            group,
            namespace,
        })
    }

    fn hint(&self) -> String {
        let res = if self.group.is_empty() {
            self.resource.clone()
        } else {
            // can-i takes resource.group; the subresource goes last.
            match self.resource.split_once('/') {
                Some((r, sub)) => format!("{r}.{}/{sub}", self.group),
                None => format!("{}.{}", self.resource, self.group),
            }
        };
        let (scope, flag, kind) = match &self.namespace {
            Some(ns) => (
                format!("in namespace {ns}"),
                format!(" -n {ns}"),
                "a Role (and RoleBinding)",
            ),
            None => (
                "cluster-wide".to_string(),
                String::new(),
                "a ClusterRole (and ClusterRoleBinding)",
            ),
        };
        format!(
            "user {} may not {} {res} {scope}: check with `kubectl auth can-i {} {res}{flag}`, and have an admin grant {kind} with apiGroups [\"{}\"], resources [\"{}\"], verbs [\"{}\"]; {NEEDS}",
            self.user, self.verb, self.verb, self.group, self.resource, self.verb
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_exec_names_the_rbac_to_grant() {
        let e = Error::forbidden(
            "running `ovn-nbctl show`".into(),
            r#"pods "ovn-central-x" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "kube-system""#.into(),
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`kubectl auth can-i create pods/exec -n kube-system`"),
            "{msg}"
        );
        assert!(
            msg.contains(r#"resources ["pods/exec"], verbs ["create"]"#),
            "{msg}"
        );
        assert!(msg.contains("a Role"), "{msg}");
        assert_eq!(e.exit_code(), EXIT_CLUSTER);
    }

    #[test]
    fn forbidden_cluster_scope_and_groups() {
        let d = Denied::parse(
            r#"subnets.kubeovn.io is forbidden: User "system:serviceaccount:a:b" cannot list resource "subnets" in API group "kubeovn.io" at the cluster scope"#,
        )
        .unwrap();
        assert_eq!(d.user, "system:serviceaccount:a:b");
        assert_eq!(d.namespace, None);
        let h = d.hint();
        assert!(
            h.contains("`kubectl auth can-i list subnets.kubeovn.io`"),
            "{h}"
        );
        assert!(h.contains("ClusterRole"), "{h}");
    }

    #[test]
    fn unparsable_forbidden_still_says_what_to_check() {
        for msg in ["", "forbidden", "User \"x", "User \"x\" cannot"] {
            let e = Error::forbidden("listing pods".into(), msg.into());
            assert!(e.to_string().contains("kubectl auth can-i --list"), "{e}");
        }
    }
}
