//! The OVN RAFT databases as Kube-OVN deploys them: names, files and
//! control sockets inside the ovn-central pods (facts §4), shared by
//! `nb|sb`, `diagnose` and `bundle`.

use super::{Cluster, Leader, PodRef, Result, container, unusable_reason};

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

/// What ovn-nbctl, ovn-sbctl and ovn-trace print when the ovn-central pod
/// they run in has a server that is not (or no longer) the RAFT leader: they
/// connect leader-only through the pod's socket and give up. Nothing was read
/// or written, so the command can run again at the leader.
pub fn refused_by_a_follower(stderr: &str) -> bool {
    stderr.contains("database connection failed")
}

/// The container the database tools run in, for this pod.
pub(crate) fn central_container(pod: &PodRef) -> &str {
    pod.container_or_default(container::OVN_CENTRAL)
}

impl Cluster {
    /// The ovn-central pod whose `db` server says, through `cluster/status`,
    /// that it is the RAFT leader (the highest term if several do); None when
    /// no usable member says so (an election in progress). Every member is
    /// asked at once. The `ovn-nb-leader` / `ovn-sb-leader` labels are
    /// Kube-OVN's view and lag an election; this is the servers' own.
    pub async fn raft_leader(&self, db: Db) -> Result<Option<PodRef>> {
        let pods = self.central_pods().await?;
        let usable: Vec<PodRef> = pods
            .iter()
            .filter(|p| unusable_reason(p).is_none())
            .map(PodRef::from_pod)
            .collect();
        let argv = db.cluster_status_argv();
        let answers = futures::future::join_all(
            usable
                .iter()
                .map(|p| self.exec_capture(p, central_container(p), &argv)),
        )
        .await;
        let views: Vec<(PodRef, ko_ovn::raft::ClusterStatus)> = usable
            .into_iter()
            .zip(answers)
            .filter_map(|(pod, answer)| {
                let out = answer.ok().filter(|o| o.success())?;
                let status = ko_ovn::raft::parse_cluster_status(&out.stdout_str()).ok()?;
                Some((pod, status))
            })
            .collect();
        Ok(ko_ovn::raft::leading(views.iter().map(|(p, s)| (p, s))).cloned())
    }
}
