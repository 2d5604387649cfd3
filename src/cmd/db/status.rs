//! `status` (structured RAFT view), `status --raw`, `dbstatus`, `kick`.

use std::io::Write;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use ko_ovn::raft::{self, ClusterStatus, Role, StorageStatus};
use serde::Serialize;

use super::{Db, central_container};
use crate::cluster::{Cluster, PodRef, locate::unusable_reason};
use crate::cmd::passthrough;
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{OutputFormat, Render, Style};

/// A member whose match_index is this far behind is reported as lagging.
const LAG_PROBLEM: u64 = 100;

/// What one ovn-central pod said about the database.
struct PodView {
    pod: String,
    ip: Option<String>,
    status: std::result::Result<ClusterStatus, String>,
    storage: std::result::Result<StorageStatus, String>,
}

/// One RAFT member as seen by the leader, completed with its own view.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub sid: String,
    pub address: String,
    /// ovn-central pod hosting this member, when known.
    pub pod: Option<String>,
    /// The member's own idea of its role; "unknown" when it could not be asked.
    pub role: String,
    /// Whether the leader has an established connection with it.
    pub connected: bool,
    pub match_index: Option<u64>,
    /// Entries behind the most advanced member (leader view).
    pub lag: Option<u64>,
    pub last_msg_ms: Option<u64>,
    pub term: Option<u64>,
    /// `ok`, the storage error, or why it could not be read.
    pub storage: Option<String>,
}

/// `nb|sb status` result (`-o json|yaml` schema).
#[derive(Debug, Clone, Serialize)]
pub struct DbStatusReport {
    pub database: String,
    /// Leader short server id, None when there is no leader.
    pub leader: Option<String>,
    pub leader_pod: Option<String>,
    pub term: Option<u64>,
    pub members: Vec<Member>,
    pub problems: Vec<String>,
}

pub(super) fn host_of(address: &str) -> Option<&str> {
    // tcp:10.0.0.2:6643, ssl:[fd00::2]:6643
    let rest = address.split_once(':')?.1;
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    rest.rsplit_once(':').map(|(h, _)| h)
}

async fn query_pod(cluster: &Cluster, db: Db, pod: &Pod) -> PodView {
    let r = PodRef::from_pod(pod);
    let name = r.name.clone();
    let ip = r.ip.clone();
    if let Some(why) = unusable_reason(pod) {
        let msg = format!("pod {name} is not usable: {why}");
        return PodView {
            pod: name,
            ip,
            status: Err(msg.clone()),
            storage: Err(msg),
        };
    }
    let c = central_container(&r);
    let (status_argv, storage_argv) = (db.cluster_status_argv(), db.storage_status_argv());
    let (st, sto) = tokio::join!(
        cluster.exec_capture(&r, c, &status_argv),
        cluster.exec_capture(&r, c, &storage_argv)
    );
    let status = match st {
        Ok(o) if o.success() => {
            raft::parse_cluster_status(&o.stdout_str()).map_err(|e| e.to_string())
        }
        Ok(o) => Err(format!(
            "cluster/status exited {}: {}",
            o.exit_code,
            o.stderr_str().trim()
        )),
        Err(e) => Err(first_line(&e.to_string())),
    };
    PodView {
        pod: name,
        ip,
        status,
        storage: storage_from(sto),
    }
}

/// The parsed `get-db-storage-status` reply, or why there is none.
fn storage_from(
    out: crate::cluster::Result<crate::cluster::Output>,
) -> std::result::Result<StorageStatus, String> {
    match out {
        Ok(o) if o.success() => {
            raft::parse_storage_status(&o.stdout_str()).map_err(|e| e.to_string())
        }
        Ok(o) => Err(format!(
            "get-db-storage-status exited {}: {}",
            o.exit_code,
            o.stderr_str().trim()
        )),
        Err(e) => Err(first_line(&e.to_string())),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Combine the pods' views into one report. Pure, so it is unit-tested.
fn build_report(db: Db, views: &[PodView]) -> DbStatusReport {
    let mut problems = Vec::new();
    let parsed: Vec<(&PodView, &ClusterStatus)> = views
        .iter()
        .filter_map(|v| v.status.as_ref().ok().map(|s| (v, s)))
        .collect();
    let leaders: Vec<&(&PodView, &ClusterStatus)> =
        parsed.iter().filter(|(_, s)| s.is_leader()).collect();
    if leaders.len() > 1 {
        problems.push(format!(
            "{} servers claim to be leader: {}",
            leaders.len(),
            leaders
                .iter()
                .map(|(v, s)| format!(
                    "{} in {} (term {})",
                    s.server_id.short,
                    v.pod,
                    s.term.unwrap_or(0)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The reference view: the leader with the highest term, else the most recent view.
    let reference = raft::leading(parsed.iter().map(|&(v, s)| ((v, s), s)))
        .or_else(|| parsed.iter().max_by_key(|(_, s)| s.term).copied());
    let leader = reference.filter(|(_, s)| s.is_leader());
    if leader.is_none() {
        problems.push(format!(
            "no {} leader: no reachable member reports role leader (quorum lost or election in progress)",
            db.name()
        ));
    }
    let own_view = |sid: &str, address: &str| -> Option<&PodView> {
        views
            .iter()
            .find(|v| v.status.as_ref().is_ok_and(|s| s.server_id.short == sid))
            .or_else(|| {
                // A pod we could not ask has no sid: fall back to its IP.
                let host = host_of(address)?;
                views
                    .iter()
                    .find(|v| v.status.is_err() && v.ip.as_deref() == Some(host))
            })
    };
    let mut members = Vec::new();
    if let Some((_, rs)) = reference {
        for sv in &rs.servers {
            let view = own_view(&sv.sid, &sv.address);
            let own = view.and_then(|v| v.status.as_ref().ok());
            let role = own.map(|s| s.role).unwrap_or(Role::Unknown);
            let connected = leader.is_some_and(|(_, l)| l.connected_to(&sv.sid));
            let lag = leader.and_then(|(_, l)| l.match_lag(&sv.sid));
            let storage = view.map(|v| match &v.storage {
                Ok(s) => s.detail.clone(),
                Err(e) => e.clone(),
            });
            let who = match view {
                Some(v) => format!("{} ({})", sv.sid, v.pod),
                None => sv.sid.clone(),
            };
            if leader.is_some() && !connected {
                let since = sv
                    .last_msg_ms
                    .map(|ms| format!(", last message {ms} ms ago"))
                    .unwrap_or_default();
                problems.push(format!(
                    "member {who} at {} is not connected to the leader{since}",
                    sv.address
                ));
            }
            if let Some(l) = lag.filter(|l| *l >= LAG_PROBLEM) {
                problems.push(format!("member {who} is {l} log entries behind"));
            }
            if let Some(v) = view {
                match (&v.status, own) {
                    (Err(e), _) => {
                        problems.push(format!("could not read the status of member {who}: {e}"))
                    }
                    (Ok(_), Some(s)) => {
                        if let Some(st) = s.status.as_deref().filter(|st| *st != "cluster member") {
                            problems.push(format!("member {who} reports status: {st}"));
                        }
                    }
                    _ => {}
                }
                match &v.storage {
                    Ok(s) if !s.ok => problems.push(format!(
                        "member {who} storage status: {} (see `kubectl ko {} restore`)",
                        s.detail,
                        db.short()
                    )),
                    _ => {}
                }
            } else {
                problems.push(format!(
                    "no ovn-central pod found for member {} at {}",
                    sv.sid, sv.address
                ));
            }
            members.push(Member {
                sid: sv.sid.clone(),
                address: sv.address.clone(),
                pod: view.map(|v| v.pod.clone()),
                role: role.as_str().to_string(),
                connected,
                match_index: sv.match_index,
                lag,
                last_msg_ms: sv.last_msg_ms,
                term: own.and_then(|s| s.term),
                storage,
            });
        }
    }
    // Pods that are not members of the cluster at all, or that we could not ask.
    for v in views {
        let listed = members
            .iter()
            .any(|m| m.pod.as_deref() == Some(v.pod.as_str()));
        if !listed {
            match &v.status {
                Ok(s) => problems.push(format!(
                    "pod {} runs server {} which the leader does not list as a member",
                    v.pod, s.server_id.short
                )),
                Err(e) => problems.push(format!("could not query pod {}: {e}", v.pod)),
            }
        }
    }
    DbStatusReport {
        database: db.name().to_string(),
        leader: leader.map(|(_, s)| s.server_id.short.clone()),
        leader_pod: leader.map(|(v, _)| v.pod.clone()),
        term: reference.and_then(|(_, s)| s.term),
        members,
        problems,
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_else(|| "-".into())
}

impl Render for DbStatusReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        let leader = match (&self.leader, &self.leader_pod) {
            (Some(l), Some(p)) => format!("leader {l} ({p})"),
            (Some(l), None) => format!("leader {l}"),
            _ => s.bad("NO LEADER"),
        };
        writeln!(
            out,
            "{}  {leader}  term {}",
            s.bold(&self.database),
            opt(&self.term)
        )?;
        let rows: Vec<[String; 8]> = self
            .members
            .iter()
            .map(|m| {
                [
                    m.sid.clone(),
                    m.address.clone(),
                    m.pod.clone().unwrap_or_else(|| "-".into()),
                    m.role.clone(),
                    if m.connected {
                        "yes".into()
                    } else {
                        "NO".into()
                    },
                    opt(&m.match_index),
                    opt(&m.lag),
                    m.storage.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let header = [
            "SID",
            "ADDRESS",
            "POD",
            "ROLE",
            "CONNECTED",
            "MATCH",
            "LAG",
            "STORAGE",
        ];
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String; 8]| -> String {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    l.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
            }
            l
        };
        writeln!(out, "{}", s.dim(&line(&header.map(String::from))))?;
        for (r, m) in rows.iter().zip(&self.members) {
            let text = line(r);
            let bad = !m.connected || m.storage.as_deref().is_some_and(|st| st != "ok");
            writeln!(out, "{}", if bad { s.bad(&text) } else { text })?;
        }
        if self.problems.is_empty() {
            writeln!(out, "{}", s.ok("healthy"))?;
        } else {
            writeln!(
                out,
                "{}",
                s.bad(&format!("{} problem(s):", self.problems.len()))
            )?;
            for p in &self.problems {
                writeln!(out, "  - {p}")?;
            }
        }
        Ok(())
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

pub async fn status(ctx: &Ctx, db: Db, format: OutputFormat) -> Result<Outcome> {
    let report = status_report(ctx.cluster().await?, db).await?;
    let exit = if report.problems.is_empty() { 0 } else { 1 };
    Ok(Outcome::report(report, format, exit))
}

/// The RAFT view of `db` from every ovn-central pod (also used by `bundle`).
pub async fn status_report(cluster: &Cluster, db: Db) -> Result<DbStatusReport> {
    let pods = cluster.central_pods().await?;
    let views = join_all(pods.iter().map(|p| query_pod(cluster, db, p))).await;
    Ok(build_report(db, &views))
}

/// Upstream's output: cluster/status then the storage status, from the leader.
pub async fn raw(ctx: &Ctx, db: Db) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let pod = cluster.leader(db.leader()).await?;
    let c = central_container(&pod).to_string();
    let first = passthrough::stream(ctx, &pod, &c, &db.cluster_status_argv()).await?;
    if let Outcome::Exit(code) = first
        && code != 0
    {
        return Ok(first);
    }
    passthrough::stream(ctx, &pod, &c, &db.storage_status_argv()).await
}

/// `dbstatus`: the NB and SB storage status of every ovn-central pod (upstream shows
/// both whichever of `nb`/`sb` was given, so this does too).
#[derive(Debug, Clone, Serialize)]
pub struct StorageReport {
    /// One entry per pod and database: pods by name, NB before SB.
    pub entries: Vec<PodStorage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodStorage {
    pub pod: String,
    pub node: Option<String>,
    /// `OVN_Northbound` or `OVN_Southbound`.
    pub database: String,
    pub ok: bool,
    /// `ok`, the storage error, or why it could not be read.
    pub status: String,
}

impl Render for StorageReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        let w = self
            .entries
            .iter()
            .map(|p| p.pod.len())
            .max()
            .unwrap_or(0)
            .max(3);
        writeln!(out, "{:<w$}  {:<14}  STATUS", "POD", "DATABASE")?;
        for p in &self.entries {
            let st = if p.ok {
                s.ok(&p.status)
            } else {
                s.bad(&p.status)
            };
            writeln!(out, "{:<w$}  {:<14}  {st}", p.pod, p.database)?;
        }
        let bad = self.entries.iter().filter(|p| !p.ok).count();
        if bad > 0 {
            writeln!(
                out,
                "{}",
                s.bad(&format!(
                    "{bad} of {} storage statuses are not ok; see `kubectl ko nb status` / `kubectl ko sb status` and the pod's /var/log/ovn/ovsdb-server-*.log",
                    self.entries.len()
                ))
            )?;
        }
        Ok(())
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// The storage status of one database in one pod, never an error: what went wrong
/// becomes the entry's status.
async fn storage_of(cluster: &Cluster, pod: &Pod, db: Db) -> PodStorage {
    let r = PodRef::from_pod(pod);
    let entry = |ok: bool, status: String| PodStorage {
        pod: r.name.clone(),
        node: r.node.clone(),
        database: db.name().into(),
        ok,
        status,
    };
    if let Some(why) = unusable_reason(pod) {
        return entry(false, format!("pod not usable: {why}"));
    }
    let c = central_container(&r);
    match storage_from(cluster.exec_capture(&r, c, &db.storage_status_argv()).await) {
        Ok(st) => entry(st.ok, st.detail),
        Err(e) => entry(false, e),
    }
}

pub async fn dbstatus(ctx: &Ctx, format: OutputFormat) -> Result<Outcome> {
    let report = storage_report(ctx.cluster().await?).await?;
    let exit = if report.entries.iter().all(|p| p.ok) {
        0
    } else {
        1
    };
    Ok(Outcome::report(report, format, exit))
}

/// NB and SB storage status of every ovn-central pod (also used by `bundle`).
pub async fn storage_report(cluster: &Cluster) -> Result<StorageReport> {
    let pods = cluster.central_pods().await?;
    // Every pod × both databases at once.
    let queries = pods
        .iter()
        .flat_map(|p| [Db::Nb, Db::Sb].map(|db| storage_of(cluster, p, db)));
    Ok(StorageReport {
        entries: join_all(queries).await,
    })
}

/// `kick <sid>`: remove a server from the RAFT cluster, run in the leader.
pub async fn kick(ctx: &Ctx, db: Db, sid: &str, yes: bool) -> Result<Outcome> {
    let valid = !sid.is_empty()
        && sid.len() <= 64
        && sid.bytes().all(|b| {
            b.is_ascii_hexdigit()
                || matches!(b, b'-' | b':' | b'.' | b'[' | b']')
                || b.is_ascii_alphanumeric()
        });
    if !valid {
        return Err(Error::Usage(format!(
            "{sid:?} is not a server id: give the 4-hex-digit SID from `kubectl ko {} status`, its full UUID, or its address",
            db.short()
        )));
    }
    let cluster = ctx.cluster().await?;
    let pod = cluster.leader(db.leader()).await?;
    let c = central_container(&pod).to_string();
    let text = cluster.exec_ok(&pod, &c, &db.cluster_status_argv()).await?;
    let status = raft::parse_cluster_status(&text).map_err(|e| Error::Remote {
        what: format!("reading {} cluster/status in {pod}", db.name()),
        detail: e.to_string(),
        hint: format!("run `kubectl ko {} status --raw`", db.short()),
    })?;
    let Some(server) = status.find_server(sid) else {
        let known: Vec<String> = status
            .servers
            .iter()
            .map(|s| format!("{} ({})", s.sid, s.address))
            .collect();
        return Err(Error::Usage(format!(
            "server {sid:?} is not a member of {}; members: {}",
            db.name(),
            known.join(", ")
        )));
    };
    let mut argv = crate::cluster::ovn_db::appctl(db, &["cluster/kick", db.name()]);
    argv.push(server.sid.clone());
    let leader_note = if server.is_self {
        " This server is the current leader: a new election follows."
    } else {
        ""
    };
    let plan = format!(
        "This removes server {} ({}) from the {} RAFT cluster by running `{}` in {pod}.{leader_note}\n\
         The removed server will not rejoin by itself: its database file must be removed and its pod restarted.",
        server.sid,
        server.address,
        db.name(),
        argv.join(" ")
    );
    if !yes {
        return Err(Error::NotConfirmed(format!(
            "{plan}\nRe-run with --yes to do it."
        )));
    }
    eprintln!("{plan}");
    passthrough::stream(ctx, &pod, &c, &argv).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        // the ovn crate's captures of `ovsdb-server cluster/status`
        let ovn = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ovn"));
        ko_testkit::fixture::read(ovn, &format!("raft/{name}"))
    }

    fn view(pod: &str, ip: &str, file: Option<&str>) -> PodView {
        PodView {
            pod: pod.into(),
            ip: Some(ip.into()),
            status: match file {
                Some(f) => Ok(raft::parse_cluster_status(&fixture(f)).unwrap()),
                None => Err("exit 1: cannot connect to /var/run/ovn/ovnnb_db.ctl".into()),
            },
            storage: match file {
                Some(_) => Ok(raft::parse_storage_status("status: ok").unwrap()),
                None => Err("exit 1".into()),
            },
        }
    }

    #[test]
    fn healthy_cluster() {
        // The fixtures are one cluster; pod IPs are all 127.0.0.1, so matching is by sid.
        let views = vec![
            view("c0", "127.0.0.1", Some("status-leader.txt")),
            view("c1", "127.0.0.1", Some("status-follower.txt")),
        ];
        let r = build_report(Db::Nb, &views);
        assert_eq!(r.database, "OVN_Northbound");
        assert_eq!(r.leader.as_deref(), Some("fc93"));
        assert_eq!(r.leader_pod.as_deref(), Some("c0"));
        assert_eq!(r.members.len(), 3);
        assert!(r.members.iter().all(|m| m.connected));
        assert_eq!(r.members[0].role, "leader");
        assert_eq!(r.members[1].role, "follower");
        assert_eq!(r.members[1].pod.as_deref(), Some("c1"));
        // 57ae has no pod in this set: that is a problem.
        assert_eq!(r.members[2].role, "unknown");
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    }

    #[test]
    fn stopped_member_is_disconnected() {
        let views = vec![
            view("c0", "127.0.0.1", Some("status-leader-member-down.txt")),
            view("c1", "127.0.0.1", Some("status-follower-member-down.txt")),
            view("c2", "127.0.0.9", None),
        ];
        let r = build_report(Db::Nb, &views);
        let down = r.members.iter().find(|m| m.sid == "57ae").unwrap();
        assert!(!down.connected);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("57ae") && p.contains("not connected"))
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("could not query pod c2"))
        );
    }

    #[test]
    fn no_quorum_has_no_leader() {
        let views = vec![view("c1", "127.0.0.1", Some("status-no-quorum.txt"))];
        let r = build_report(Db::Nb, &views);
        assert_eq!(r.leader, None);
        assert!(r.members.iter().all(|m| !m.connected));
        assert!(r.problems[0].starts_with("no OVN_Northbound leader"));
        let mut text = Vec::new();
        r.render_text(&mut text, &Style::default()).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("NO LEADER"), "{text}");
    }

    #[test]
    fn address_hosts() {
        assert_eq!(host_of("tcp:10.0.0.2:6643"), Some("10.0.0.2"));
        assert_eq!(host_of("ssl:[fd00::2]:6643"), Some("fd00::2"));
        assert_eq!(host_of("junk"), None);
    }
}
