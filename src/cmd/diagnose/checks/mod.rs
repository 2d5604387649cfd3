//! The checks: pure functions from typed snapshots to [`Check`]s. No I/O here;
//! `collect` gathers the snapshots.
//!
//! [`Check`]: crate::check::Check

pub mod components;
pub mod connectivity;
pub mod nodes;
pub mod pods;
pub mod raft;
