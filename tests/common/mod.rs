//! The kubectl-ko integration tests' view of the workspace test kit (`testkit/`):
//! everything from `ko_testkit`, plus the plugin binary cargo built for these tests.
//!
//! Sandbox tests bring up (or reuse) a sandbox with `e2e/sandbox up --name <name>`
//! and need root. If `KO_E2E_KUBECONFIG` is set, that cluster is used instead
//! (how the suite runs against a real kind cluster). Children see only what the
//! test gives them (see `ko_testkit::hermetic`).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub use ko_testkit::*;
use serde_json::Value;

pub const KO: &str = env!("CARGO_BIN_EXE_kubectl-ko");

/// `kubectl ko --kubeconfig <kc> <args>`.
pub fn ko(kc: &Path) -> Command {
    let mut c = hermetic(KO);
    c.arg("--kubeconfig").arg(kc);
    c
}

/// `kubectl ko` without any cluster configuration.
pub fn ko_bare() -> Command {
    hermetic(KO)
}

/// `kubectl ko --kubeconfig <kc> -o json <args>`: (exit code, document, stderr).
pub fn ko_json(kc: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut c = ko(kc);
    c.args(["-o", "json"]).args(args);
    json_of(c)
}

/// `kubectl ko --kubeconfig <kc> <args>` that must succeed; returns stdout.
pub fn ko_ok(kc: &Path, args: &[&str]) -> String {
    let mut c = ko(kc);
    c.args(args);
    ok(c)
}
