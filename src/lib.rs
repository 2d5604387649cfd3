//! kubectl-ko: a Kube-OVN troubleshooting plugin.
//!
//! Data flows one way: `cli` → `cmd` → (`cluster`, `ovn`) → result → `render`.
//! `ovn` is pure (parsers, catalogues, no I/O); `cluster` is the only code that
//! talks to Kubernetes.

pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod ovn;
pub mod render;
