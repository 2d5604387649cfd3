//! The OVN RAFT databases as Kube-OVN deploys them: names, files and
//! control sockets inside the ovn-central pods (facts §4), shared by
//! `nb|sb`, `diagnose` and `bundle`.

use super::{Leader, PodRef, container};

/// Which RAFT database, and where its files and control socket live (facts §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Db {
    Nb,
    Sb,
}

impl Db {
    pub fn short(self) -> &'static str {
        match self {
            Db::Nb => "nb",
            Db::Sb => "sb",
        }
    }
    /// For people: `OVN NB` / `OVN SB`.
    pub fn title(self) -> &'static str {
        match self {
            Db::Nb => "OVN NB",
            Db::Sb => "OVN SB",
        }
    }
    /// The OVSDB database name.
    pub fn name(self) -> &'static str {
        match self {
            Db::Nb => "OVN_Northbound",
            Db::Sb => "OVN_Southbound",
        }
    }
    pub fn ctl(self) -> &'static str {
        match self {
            Db::Nb => "/var/run/ovn/ovnnb_db.ctl",
            Db::Sb => "/var/run/ovn/ovnsb_db.ctl",
        }
    }
    /// File stem: `ovnnb_db` / `ovnsb_db`.
    pub fn stem(self) -> &'static str {
        match self {
            Db::Nb => "ovnnb_db",
            Db::Sb => "ovnsb_db",
        }
    }
    /// The clustered database file inside ovn-central.
    pub fn file(self) -> String {
        format!("/etc/ovn/{}.db", self.stem())
    }
    pub fn leader(self) -> Leader {
        match self {
            Db::Nb => Leader::Nb,
            Db::Sb => Leader::Sb,
        }
    }
    pub fn cluster_status_argv(self) -> Vec<String> {
        appctl(self, &["cluster/status", self.name()])
    }
    pub fn storage_status_argv(self) -> Vec<String> {
        appctl(self, &["ovsdb-server/get-db-storage-status", self.name()])
    }
}

pub(crate) fn appctl(db: Db, args: &[&str]) -> Vec<String> {
    ["ovn-appctl", "-t", db.ctl()]
        .iter()
        .chain(args.iter())
        .map(|s| s.to_string())
        .collect()
}

/// The container the database tools run in, for this pod.
pub(crate) fn central_container(pod: &PodRef) -> &str {
    pod.container_or_default(container::OVN_CENTRAL)
}
