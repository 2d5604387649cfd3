//! `restore`: rebuild every follower of the RAFT cluster from the leader's data.
//!
//! Upstream's bash restore scales ovn-central to zero and moves database files on
//! the hosts, which needs node access and a rollout. Here every step is an exec
//! in the ovn-central pods and the cluster keeps its ID and its leader, so
//! northd and ovn-controller never see a different database:
//!
//! 1. take a verified backup from the leader (like `backup`);
//! 2. for each follower, one at a time (quorum is kept): remember its
//!    ovsdb-server command line, stop it, kick it from the leader, move its
//!    database file aside, `ovsdb-tool join-cluster --cid=<cluster id>` a fresh
//!    file at the same address, start the same command line, and wait until the
//!    leader sees it connected and caught up.
//!
//! The old files stay in the pods as `<db>.db.<time>.old` for inspection.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use ko_ovn::raft::{self, ClusterStatus};
use serde::Serialize;

use super::backup::{BackupReport, backup_from};
use super::status::host_of;
use super::{Db, central_container};
use crate::cluster::{Cluster, PodRef, locate::unusable_reason};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{Render, Style};

/// How long one rebuilt member may take to rejoin and catch up.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub database: String,
    pub backup: BackupReport,
    pub leader_pod: String,
    pub rebuilt: Vec<RebuiltMember>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuiltMember {
    pub pod: String,
    pub address: String,
    pub old_sid: String,
    pub new_sid: Option<String>,
    /// The previous database file, kept in the pod.
    pub old_file: String,
}

impl Render for RestoreReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        writeln!(out, "backup: {}", self.backup.path.display())?;
        for m in &self.rebuilt {
            writeln!(
                out,
                "rebuilt {} at {} in {}: server {} -> {} (old file kept as {})",
                self.database,
                m.address,
                m.pod,
                m.old_sid,
                m.new_sid.as_deref().unwrap_or("?"),
                m.old_file
            )?;
        }
        writeln!(
            out,
            "{}",
            s.ok(&format!(
                "{} restored from the leader in {}; all members connected",
                self.database, self.leader_pod
            ))
        )
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

struct MemberPlan {
    pod: PodRef,
    container: String,
    sid: String,
    address: String,
    /// ovsdb-server argv to restart it with.
    argv: Vec<String>,
    /// pid of the running server, if any.
    pid: Option<u32>,
}

fn remote_err(what: String, detail: impl Into<String>, hint: &str) -> Error {
    Error::Remote {
        what,
        detail: detail.into(),
        hint: hint.into(),
    }
}

async fn cluster_status(cluster: &Cluster, db: Db, pod: &PodRef) -> Result<ClusterStatus> {
    let text = cluster
        .exec_ok(pod, central_container(pod), &db.cluster_status_argv())
        .await?;
    raft::parse_cluster_status(&text).map_err(|e| {
        remote_err(
            format!("reading {} cluster/status in {pod}", db.name()),
            e.to_string(),
            "run `kubectl ko nb status --raw`",
        )
    })
}

/// The running ovsdb-server's pid and argv, read from its pidfile and /proc.
async fn server_cmdline(cluster: &Cluster, db: Db, pod: &PodRef) -> Result<(u32, Vec<String>)> {
    let c = central_container(pod);
    let pidfile = format!("/var/run/ovn/{}.pid", db.stem());
    let pid_text = cluster.exec_ok(pod, c, &["cat", pidfile.as_str()]).await?;
    let pid: u32 = pid_text.trim().parse().map_err(|_| {
        remote_err(
            format!("reading {pidfile} in {pod}"),
            format!("not a pid: {:?}", pid_text.trim()),
            "check that the database server runs",
        )
    })?;
    let out = cluster
        .exec_capture(pod, c, &["cat", &format!("/proc/{pid}/cmdline")])
        .await?;
    let argv: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let ok = out.success()
        && argv.first().is_some_and(|a| a.ends_with("ovsdb-server"))
        && argv.iter().any(|a| a == &db.file())
        && argv.iter().any(|a| a == "--detach");
    if !ok {
        return Err(remote_err(
            format!("reading the command line of ovsdb-server (pid {pid}) in {pod}"),
            format!("unexpected command line {argv:?}"),
            "restore only rebuilds servers started as `ovsdb-server --detach ... <db file>`",
        ));
    }
    Ok((pid, argv))
}

/// Poll until `check` gives a value or `limit` passes.
async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn restore(ctx: &Ctx, db: Db, yes: bool) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let pods = cluster.central_pods().await?;
    all_running(cluster, &pods)?;
    let refs: Vec<PodRef> = pods.iter().map(PodRef::from_pod).collect();
    let statuses = join_all(refs.iter().map(|p| cluster_status(cluster, db, p))).await;
    let (leader_pod, leader_status) = leader_of(db, &refs, &statuses)?;
    let cid = leader_status
        .cluster_id
        .as_ref()
        .and_then(|c| c.full.clone())
        .ok_or_else(|| {
            remote_err(
                format!("reading the cluster ID from {leader_pod}"),
                "cluster/status has no full Cluster ID",
                "upgrade OVS/OVN",
            )
        })?;
    let plans = member_plans(cluster, db, &leader_pod, &leader_status, &refs, &statuses).await?;
    let plan_text = plan_text(db, &leader_pod, &leader_status, &cid, &plans);
    if !yes {
        return Err(Error::NotConfirmed(format!(
            "{plan_text}\nRe-run with --yes to do it."
        )));
    }
    eprintln!("{plan_text}");

    let dir = std::env::current_dir().map_err(|e| Error::io("find the current directory", &e))?;
    let backup = backup_from(cluster, db, &leader_pod, &dir).await?;
    eprintln!("backup written to {}", backup.path.display());

    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut rebuilt = Vec::new();
    for m in &plans {
        eprintln!("rebuilding {} in {} ...", m.address, m.pod);
        rebuilt.push(
            rebuild(
                cluster,
                db,
                &leader_pod,
                &cid,
                m,
                &plans,
                &leader_status,
                &stamp,
            )
            .await?,
        );
    }
    Ok(Outcome::report(
        RestoreReport {
            database: db.name().into(),
            backup,
            leader_pod: leader_pod.to_string(),
            rebuilt,
        },
        ctx.output(None),
        0,
    ))
}

/// Restore rebuilds every member: each ovn-central pod must run.
fn all_running(cluster: &Cluster, pods: &[Pod]) -> Result<()> {
    for p in pods {
        if let Some(why) = unusable_reason(p) {
            return Err(Error::Cluster(crate::cluster::Error::NotRunning {
                pod: format!(
                    "{}/{}",
                    cluster.namespace(),
                    p.metadata.name.as_deref().unwrap_or("?")
                ),
                namespace: cluster.namespace().into(),
                name: p.metadata.name.clone().unwrap_or_default(),
                detail: format!("{why}; restore needs every ovn-central pod running"),
            }));
        }
    }
    Ok(())
}

/// The pod whose server leads, with its status.
fn leader_of(
    db: Db,
    refs: &[PodRef],
    statuses: &[Result<ClusterStatus>],
) -> Result<(PodRef, ClusterStatus)> {
    let mut leader = None;
    for (p, s) in refs.iter().zip(statuses) {
        if let Ok(s) = s
            && s.is_leader()
        {
            leader = Some((p.clone(), s.clone()));
        }
    }
    leader.ok_or_else(|| {
        remote_err(
            format!("finding the {} leader to restore from", db.name()),
            "no ovn-central pod reports role leader",
            "restore copies the leader's data; with no quorum, recover a majority first (see `kubectl ko nb status`)",
        )
    })
}

/// Every member other than the leader, matched to its pod by sid or IP, with the
/// command line to restart it by.
async fn member_plans(
    cluster: &Cluster,
    db: Db,
    leader_pod: &PodRef,
    leader_status: &ClusterStatus,
    refs: &[PodRef],
    statuses: &[Result<ClusterStatus>],
) -> Result<Vec<MemberPlan>> {
    let (_, leader_argv) = server_cmdline(cluster, db, leader_pod).await?;
    let leader_ip = host_of(leader_status.address.as_deref().unwrap_or_default())
        .unwrap_or_default()
        .to_string();

    let mut plans = Vec::new();
    for sv in leader_status.servers.iter().filter(|s| !s.is_self) {
        let own = refs
            .iter()
            .zip(statuses)
            .find(|(_, s)| s.as_ref().is_ok_and(|s| s.server_id.short == sv.sid))
            .map(|(p, _)| p.clone())
            .or_else(|| {
                let h = host_of(&sv.address)?;
                refs.iter().find(|p| p.ip.as_deref() == Some(h)).cloned()
            });
        let Some(pod) = own else {
            return Err(remote_err(
                format!("finding the pod of member {} at {}", sv.sid, sv.address),
                "no ovn-central pod has that server id or IP",
                &format!(
                    "kick the stale member first: `kubectl ko {} kick {} --yes`",
                    db.short(),
                    sv.sid
                ),
            ));
        };
        let (pid, argv) = match server_cmdline(cluster, db, &pod).await {
            Ok((pid, argv)) => (Some(pid), argv),
            // A stopped server: start it like the leader's, at its own address.
            Err(_) => {
                let ip = host_of(&sv.address).unwrap_or_default();
                let argv = leader_argv
                    .iter()
                    .map(|a| {
                        if leader_ip.is_empty() {
                            a.clone()
                        } else {
                            a.replace(&leader_ip, ip)
                        }
                    })
                    .collect();
                (None, argv)
            }
        };
        plans.push(MemberPlan {
            container: central_container(&pod).to_string(),
            pod,
            sid: sv.sid.clone(),
            address: sv.address.clone(),
            argv,
            pid,
        });
    }
    Ok(plans)
}

/// What restore is about to do, step by step (shown before `--yes` and while doing it).
fn plan_text(
    db: Db,
    leader_pod: &PodRef,
    leader_status: &ClusterStatus,
    cid: &str,
    plans: &[MemberPlan],
) -> String {
    let mut text = format!(
        "This rebuilds the {} RAFT cluster from its leader {} ({leader_pod}):\n  1. back up the leader's data to ./{}.<time>.backup (verified);\n",
        db.name(),
        leader_status.server_id.short,
        db.stem()
    );
    for (i, m) in plans.iter().enumerate() {
        text.push_str(&format!(
            "  {}. stop server {} at {} in {}, kick it, move {} aside, rejoin it empty (cluster {cid}) and restart it; it then copies the leader's data;\n",
            i + 2,
            m.sid,
            m.address,
            m.pod,
            db.file()
        ));
    }
    text.push_str("The leader keeps serving throughout; one member is rebuilt at a time.");
    text
}

#[allow(clippy::too_many_arguments)]
async fn rebuild(
    cluster: &Cluster,
    db: Db,
    leader_pod: &PodRef,
    cid: &str,
    m: &MemberPlan,
    all: &[MemberPlan],
    leader_status: &ClusterStatus,
    stamp: &str,
) -> Result<RebuiltMember> {
    let c = m.container.as_str();
    let ctl = db.ctl();
    // 1. Stop the server (it may already be down).
    if let Some(pid) = m.pid {
        let _ = cluster
            .exec_capture(&m.pod, c, &["ovn-appctl", "-t", ctl, "exit"])
            .await;
        let pid = pid.to_string();
        let gone = wait_for(Duration::from_secs(15), || async {
            cluster
                .exec_capture(&m.pod, c, &["kill", "-0", pid.as_str()])
                .await
                .is_ok_and(|o| !o.success())
                .then_some(())
        })
        .await
        .is_some();
        if !gone {
            return Err(remote_err(
                format!("stopping ovsdb-server (pid {pid}) in {}", m.pod),
                "it is still running 15 s after `exit`",
                "stop it by hand, then re-run restore",
            ));
        }
    }
    // 2. Remove it from the cluster; wait until the leader no longer lists it.
    let kick = crate::cluster::ovn_db::appctl(db, &["cluster/kick", db.name(), m.sid.as_str()]);
    let lc = central_container(leader_pod);
    let out = cluster.exec_capture(leader_pod, lc, &kick).await?;
    if !out.success() {
        return Err(remote_err(
            format!("kicking server {} from {}", m.sid, db.name()),
            out.stderr_str().trim().to_string(),
            "check `kubectl ko nb status`; the stopped member can be restarted by hand",
        ));
    }
    let removed = wait_for(Duration::from_secs(30), || async {
        cluster_status(cluster, db, leader_pod)
            .await
            .is_ok_and(|s| s.servers.iter().all(|sv| sv.sid != m.sid))
            .then_some(())
    })
    .await
    .is_some();
    if !removed {
        return Err(remote_err(
            format!("removing server {} from {}", m.sid, db.name()),
            "the leader still lists it after 30 s",
            "check `kubectl ko nb status --raw` on the leader",
        ));
    }
    // 3. Fresh database file joined to the same cluster at the same address.
    let file = db.file();
    let old = format!("{file}.{stamp}.old");
    cluster
        .exec_ok(&m.pod, c, &["mv", "-f", file.as_str(), old.as_str()])
        .await?;
    let mut join = vec![
        "ovsdb-tool".to_string(),
        format!("--cid={cid}"),
        "join-cluster".into(),
        file.clone(),
        db.name().into(),
        m.address.clone(),
    ];
    join.extend(
        std::iter::once(leader_status.address.clone().unwrap_or_default())
            .chain(
                all.iter()
                    .filter(|o| o.sid != m.sid)
                    .map(|o| o.address.clone()),
            )
            .filter(|a| !a.is_empty()),
    );
    cluster.exec_ok(&m.pod, c, &join).await?;
    // 4. Start it exactly as it ran before.
    cluster.exec_ok(&m.pod, c, &m.argv).await?;
    // 5. Wait until the leader sees it connected and caught up.
    let new_sid = wait_for(REJOIN_TIMEOUT, || async {
        let s = cluster_status(cluster, db, leader_pod).await.ok()?;
        let sv = s.servers.iter().find(|sv| sv.address == m.address)?;
        (s.connected_to(&sv.sid) && s.match_lag(&sv.sid) == Some(0)).then(|| sv.sid.clone())
    })
    .await;
    if new_sid.is_none() {
        return Err(remote_err(
            format!(
                "waiting for {} in {} to rejoin {}",
                m.address,
                m.pod,
                db.name()
            ),
            format!(
                "not connected and caught up after {}s",
                REJOIN_TIMEOUT.as_secs()
            ),
            &format!(
                "check `kubectl ko {} status` and the pod's /var/log/ovn logs; the old file is {old}",
                db.short()
            ),
        ));
    }
    Ok(RebuiltMember {
        pod: m.pod.to_string(),
        address: m.address.clone(),
        old_sid: m.sid.clone(),
        new_sid,
        old_file: old,
    })
}
