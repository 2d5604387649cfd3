//! The shared check model: a named check with a status, a scope, a message
//! and a hint. `diagnose` and `env-check` report lists of them; each command's
//! view renders them. Part of the stable `-o json|yaml` schema.

use std::fmt;

use serde::Serialize;

/// Outcome of one check. Ordered by severity so sorting puts failures first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Fail,
    Warn,
    Pass,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Pass => "pass",
        }
    }
}

/// What a check is about. Serialized as a path: `cluster`, `node/<n>`,
/// `pod/<ns>/<name>`, `subnet/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Cluster,
    Node(String),
    Pod { namespace: String, name: String },
    Subnet(String),
}

impl Scope {
    pub fn node(n: &str) -> Self {
        Scope::Node(n.to_string())
    }
    pub fn pod(namespace: &str, name: &str) -> Self {
        Scope::Pod {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
    /// The kind word used to group the text report.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Cluster => "cluster",
            Scope::Node(_) => "node",
            Scope::Pod { .. } => "pod",
            Scope::Subnet(_) => "subnet",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster"),
            Scope::Node(n) => write!(f, "node/{n}"),
            Scope::Pod { namespace, name } => write!(f, "pod/{namespace}/{name}"),
            Scope::Subnet(s) => write!(f, "subnet/{s}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One named result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `nb-raft-members`, `chassis`, `pod-port-binding`.
    pub name: String,
    pub scope: Scope,
    pub status: Status,
    /// What was found, naming the node/pod/database.
    pub message: String,
    /// What to do next; empty for passing checks that need nothing.
    pub hint: String,
}

impl Check {
    pub fn new(
        name: &str,
        scope: Scope,
        status: Status,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Check {
            name: name.to_string(),
            scope,
            status,
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn pass(name: &str, scope: Scope, message: impl Into<String>) -> Self {
        Self::new(name, scope, Status::Pass, message, "")
    }
    pub fn warn(
        name: &str,
        scope: Scope,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(name, scope, Status::Warn, message, hint)
    }
    pub fn fail(
        name: &str,
        scope: Scope,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(name, scope, Status::Fail, message, hint)
    }
}
