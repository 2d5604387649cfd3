//! kubectl-ko: a Kube-OVN troubleshooting plugin.
//!
//! Data flows one way: `cli` → `cmd` → (`cluster`, `ko_ovn`) → result → `render`.
//! The `ko-ovn` crate (folder `ovn/`) is pure: parsers and catalogues, no I/O.
//! `cluster` is the only code that talks to Kubernetes.

pub mod check;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod error;
pub mod render;
