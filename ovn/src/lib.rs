//! Pure OVN/OVS knowledge for kubectl-ko: parsers for the tools' outputs
//! (ovn-trace, ofproto/trace, dump-flows, lflow-list, cluster/status), the
//! OVSDB rows the commands read (`ovsdb_rows`), the microflow a trace sends,
//! and the catalogue of logical stages and registers.
//! No I/O and no Kubernetes here: everything is a function of text in, types out.
pub mod catalog;
pub mod cookie;
pub mod flow_owner;
pub mod flows;
pub mod flowwatch;
mod indent;
pub mod layout;
pub mod lflow_list;
pub mod microflow;
pub mod ofproto;
pub mod ovn_trace;
pub mod ovsdb_json;
pub mod ovsdb_rows;
pub mod raft;
pub mod verdict;
pub mod versions;
