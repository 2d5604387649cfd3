//! Pure OVN/OVS knowledge for kubectl-ko: parsers for the tools' outputs
//! (ovn-trace, ofproto/trace, dump-flows, lflow-list, cluster/status), the
//! microflow a trace sends, and the catalogue of logical stages and registers.
//! No I/O and no Kubernetes here: everything is a function of text in, types out.
pub mod catalog;
pub mod cookie;
pub mod flow_owner;
pub mod flows;
pub mod flowwatch;
mod indent;
pub mod layout;
pub mod lflow;
pub mod microflow;
pub mod ofproto;
pub mod ovsdb_json;
pub mod raft;
pub mod rows;
pub mod trace;
pub mod verdict;
pub mod versions;
