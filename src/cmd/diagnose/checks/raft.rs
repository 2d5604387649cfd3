//! OVN NB/SB RAFT and northd checks over what every ovn-central pod reports
//! (`cluster/status`, `ovn-northd status`), the leader labels and the
//! ovn-nb/ovn-sb/ovn-northd EndpointSlices.

use ko_ovn::raft::{ClusterStatus, Role};

use crate::check::{Check, Scope};
use crate::cluster::{Cluster, PodRef};
use crate::cmd::diagnose::Objects;
use crate::cmd::diagnose::collect;
use crate::cmd::diagnose::facts::{CentralPod, MemberView, OvnTables};
use crate::cmd::diagnose::first_line;

/// A follower this many entries behind the leader's highest match_index is lagging.
pub const LAG_WARN_ENTRIES: u64 = 50;

// The same database identity `nb|sb status` uses (names, sockets, argv).
use crate::cluster::Db;

/// What stage "databases" found: its checks, the NB/SB tables read from the
/// leaders (later stages judge them), and each ovn-central pod's northd
/// version (the nodes stage compares them with the nodes').
pub(in crate::cmd::diagnose) struct Databases {
    pub(in crate::cmd::diagnose) checks: Vec<Check>,
    pub(in crate::cmd::diagnose) tables: OvnTables,
    pub(in crate::cmd::diagnose) central_versions: Vec<(String, Option<String>)>,
}

/// Stage "databases": NB/SB RAFT and northd as every ovn-central pod sees
/// them, then the NB/SB tables from the real leaders (RAFT view first,
/// leader labels second).
pub(in crate::cmd::diagnose) async fn stage(cluster: &Cluster, objects: &Objects) -> Databases {
    let (ns, timeout, central_pods) = (objects.ns.as_str(), objects.timeout, &objects.central_pods);
    let (nb_views, sb_views, northd_views, eps, central_versions) = tokio::join!(
        collect::raft_views(cluster, central_pods, Db::Nb, timeout),
        collect::raft_views(cluster, central_pods, Db::Sb, timeout),
        collect::northd_views(cluster, central_pods, timeout),
        async {
            tokio::join!(
                collect::endpoint_pods(cluster, ns, "ovn-nb"),
                collect::endpoint_pods(cluster, ns, "ovn-sb"),
                collect::endpoint_pods(cluster, ns, "ovn-northd"),
            )
        },
        collect::central_versions(cluster, central_pods, timeout),
    );
    let cps: Vec<CentralPod> = central_pods.iter().map(|(_, c)| c.clone()).collect();
    let (nb_eps, sb_eps, northd_eps) = eps;
    let mut checks = raft(Db::Nb, ns, &cps, &nb_views, &nb_eps);
    checks.extend(raft(Db::Sb, ns, &cps, &sb_views, &sb_eps));
    checks.extend(northd(ns, &cps, &northd_views, &northd_eps));

    let leader_ref = |views: &[MemberView]| -> Option<PodRef> {
        let pod = ko_ovn::raft::leading(
            views
                .iter()
                .filter_map(|v| v.status.as_ref().ok().map(|s| (v, s))),
        )?;
        central_pods
            .iter()
            .find(|(_, c)| c.name == pod.pod)
            .map(|(r, _)| r.clone())
    };
    let nb_pod = match leader_ref(&nb_views) {
        Some(p) => Ok(p),
        None => cluster.nb_leader().await.map_err(|e| e.to_string()),
    };
    let sb_pod = match leader_ref(&sb_views) {
        Some(p) => Ok(p),
        None => cluster.sb_leader().await.map_err(|e| e.to_string()),
    };
    let tables = collect::ovn_tables(cluster, nb_pod, sb_pod, timeout).await;
    Databases {
        checks,
        tables,
        central_versions,
    }
}

/// `tcp:10.0.0.1:6643` / `ssl:[fd00::1]:6643` -> the host part.
fn address_host(addr: &str) -> &str {
    let rest = addr.split_once(':').map(|(_, r)| r).unwrap_or(addr);
    let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The pod of RAFT member `sid`: the pod whose own server reported that id; else
/// the one pod at the member's address whose server did not report another id
/// (a stopped member says nothing, and two members can share a node address).
fn pod_for_member<'a>(
    pods: &'a [CentralPod],
    views: &[MemberView],
    sid: &str,
    addr: &str,
) -> Option<&'a CentralPod> {
    let own_sid = |pod: &str| {
        views
            .iter()
            .find(|v| v.pod == pod)
            .and_then(|v| v.status.as_ref().ok())
            .map(|st| st.server_id.short.as_str())
    };
    if let Some(p) = pods.iter().find(|p| own_sid(&p.name) == Some(sid)) {
        return Some(p);
    }
    let host = address_host(addr);
    let mut at_host = pods
        .iter()
        .filter(|p| p.ip.as_deref() == Some(host))
        .filter(|p| own_sid(&p.name).is_none());
    match (at_host.next(), at_host.next()) {
        (Some(p), None) => Some(p),
        _ => None,
    }
}

fn describe_server(pods: &[CentralPod], views: &[MemberView], sid: &str, addr: &str) -> String {
    match pod_for_member(pods, views, sid, addr) {
        Some(p) => format!(
            "member {sid} (pod {}{}, {addr})",
            p.name,
            p.node
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default()
        ),
        None => format!("member {sid} ({addr})"),
    }
}

/// All RAFT checks for one database.
pub fn raft(
    db: Db,
    namespace: &str,
    pods: &[CentralPod],
    views: &[MemberView],
    endpoints: &Result<Vec<String>, String>,
) -> Vec<Check> {
    let s = db.short();
    let t = db.title();
    let mut out = vec![servers_answer(db, namespace, views)];
    let ok: Vec<(&str, &ClusterStatus)> = views
        .iter()
        .filter_map(|v| v.status.as_ref().ok().map(|st| (v.pod.as_str(), st)))
        .collect();
    if ok.is_empty() {
        out.push(Check::fail(
            &format!("{s}-raft-leader"),
            Scope::Cluster,
            format!("no {t} server could be asked for its RAFT status"),
            format!("`kubectl -n {namespace} get pods -l app=ovn-central -o wide`"),
        ));
        return out;
    }

    let candidates: Vec<&str> = ok
        .iter()
        .filter(|(_, st)| st.role == Role::Candidate)
        .map(|(p, _)| *p)
        .collect();
    let leaders: Vec<(&str, &ClusterStatus)> = ok
        .iter()
        .filter(|(_, st)| st.role == Role::Leader)
        .copied()
        .collect();
    let [(leader_pod, lst)] = leaders[..] else {
        out.push(no_sole_leader(db, &leaders, &candidates));
        return out;
    };
    out.push(leader_agreed(db, leader_pod, lst, &ok, &candidates));
    out.push(members_connected(db, namespace, pods, views, lst));
    out.extend(non_members(db, pods, lst));
    // the leader label and EndpointSlice follow the real leader
    out.push(leader_label(
        &format!("{s}-leader-label"),
        &format!("ovn-{s}-leader"),
        t,
        leader_pod,
        pods,
    ));
    out.push(endpoints_check(
        &format!("{s}-endpoints"),
        &format!("ovn-{s}"),
        namespace,
        leader_pod,
        endpoints,
    ));
    out
}

/// Every member answers `cluster/status`.
fn servers_answer(db: Db, namespace: &str, views: &[MemberView]) -> Check {
    let s = db.short();
    let t = db.title();
    let mut silent = Vec::new();
    for v in views {
        if let Err(e) = &v.status {
            silent.push(format!("pod {}: {}", v.pod, first_line(e)));
        }
    }
    if silent.is_empty() {
        Check::pass(
            &format!("{s}-raft-servers"),
            Scope::Cluster,
            format!(
                "{t} database server answers in all {} ovn-central pod(s)",
                views.len()
            ),
        )
    } else {
        Check::fail(
            &format!("{s}-raft-servers"),
            Scope::Cluster,
            format!(
                "{t} database server ({}) does not answer cluster/status in {}",
                db.name(),
                silent.join("; ")
            ),
            format!(
                "`kubectl -n {namespace} logs <pod> -c ovn-central` and /var/log/ovn/ovsdb-server-{s}.log in that pod; restart the pod if ovsdb-server died"
            ),
        )
    }
}

/// Why there is no single leader: none (an election not settled), or several.
fn no_sole_leader(db: Db, leaders: &[(&str, &ClusterStatus)], candidates: &[&str]) -> Check {
    let s = db.short();
    let t = db.title();
    if leaders.is_empty() {
        return Check::fail(
            &format!("{s}-raft-leader"),
            Scope::Cluster,
            format!(
                "{t} has no RAFT leader{}",
                if candidates.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; election not settled (candidate: {})",
                        candidates.join(", ")
                    )
                }
            ),
            "a majority of members must be up and connected; check the stopped/failed members above",
        );
    }
    let who: Vec<String> = leaders
        .iter()
        .map(|(p, st)| format!("{p} (term {})", st.term.unwrap_or(0)))
        .collect();
    Check::fail(
        &format!("{s}-raft-leader"),
        Scope::Cluster,
        format!(
            "{t} has {} servers claiming leadership: {}",
            leaders.len(),
            who.join(", ")
        ),
        "a stale leader that lost contact; check the network between ovn-central pods",
    )
}

/// Every other member follows that leader, and none is campaigning.
fn leader_agreed(
    db: Db,
    leader_pod: &str,
    lst: &ClusterStatus,
    ok: &[(&str, &ClusterStatus)],
    candidates: &[&str],
) -> Check {
    let s = db.short();
    let t = db.title();
    let leader_sid = lst.server_id.short.clone();
    let disagree: Vec<String> = ok
        .iter()
        .filter(|(_, st)| st.role != Role::Leader)
        .filter(|(_, st)| st.leader.as_deref() != Some(leader_sid.as_str()))
        .map(|(p, st)| {
            format!(
                "{p} follows {}",
                st.leader.as_deref().unwrap_or("no leader")
            )
        })
        .collect();
    if disagree.is_empty() && candidates.is_empty() {
        Check::pass(
            &format!("{s}-raft-leader"),
            Scope::Cluster,
            format!(
                "{t} leader is {leader_sid} in pod {leader_pod} (term {}), all members agree",
                lst.term.unwrap_or(0)
            ),
        )
    } else {
        Check::fail(
            &format!("{s}-raft-leader"),
            Scope::Cluster,
            format!(
                "{t} leader {leader_sid} (pod {leader_pod}) is not recognised by every member: {}",
                disagree
                    .into_iter()
                    .chain(candidates.iter().map(|c| format!("{c} is a candidate")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "an election is in progress or a member is partitioned; re-run in a few seconds, then check the member's connectivity",
        )
    }
}

/// The members are connected and not lagging, from the leader's view.
fn members_connected(
    db: Db,
    namespace: &str,
    pods: &[CentralPod],
    views: &[MemberView],
    lst: &ClusterStatus,
) -> Check {
    let s = db.short();
    let t = db.title();
    let timer = lst.election_timer_ms.unwrap_or(1000).max(1000);
    let mut down = Vec::new();
    let mut down_pods = Vec::new();
    let mut down_addrs = Vec::new();
    let mut lagging = Vec::new();
    for srv in lst.servers.iter().filter(|x| !x.is_self) {
        let who = describe_server(pods, views, &srv.sid, &srv.address);
        let stale = srv.last_msg_ms.is_some_and(|ms| ms > 2 * timer);
        if !lst.connected_to(&srv.sid) || stale {
            if let Some(p) = pod_for_member(pods, views, &srv.sid, &srv.address) {
                down_pods.push(p.name.clone());
            }
            down_addrs.push(srv.address.clone());
            down.push(format!(
                "{who} is not connected to the leader{}",
                srv.last_msg_ms
                    .map(|ms| format!(" (last message {ms} ms ago)"))
                    .unwrap_or_default()
            ));
        } else if let Some(lag) = lst.match_lag(&srv.sid)
            && lag > LAG_WARN_ENTRIES
        {
            lagging.push(format!("{who} is {lag} log entries behind"));
        }
    }
    if !down.is_empty() {
        Check::fail(
            &format!("{s}-raft-members"),
            Scope::Cluster,
            format!("{t}: {}", down.join("; ")),
            // name the pod and the member's own RAFT address: a generic "<pod>" and
            // a default port send the operator looking in the wrong place
            format!(
                "check that ovsdb-server runs in {} (`kubectl -n {namespace} exec {} -c ovn-central -- {}`) and that {} is reachable from the other ovn-central pods",
                if down_pods.is_empty() {
                    "that pod".to_string()
                } else {
                    format!("pod {}", down_pods.join(", "))
                },
                down_pods.first().map(String::as_str).unwrap_or("<pod>"),
                db.cluster_status_argv().join(" "),
                down_addrs.join(", ")
            ),
        )
    } else if !lagging.is_empty() {
        Check::warn(
            &format!("{s}-raft-members"),
            Scope::Cluster,
            format!("{t}: {}", lagging.join("; ")),
            "a member far behind may be overloaded or on a slow disk; watch whether the gap closes",
        )
    } else {
        Check::pass(
            &format!("{s}-raft-members"),
            Scope::Cluster,
            format!(
                "{t}: all {} members connected to the leader and up to date",
                lst.servers.len()
            ),
        )
    }
}

/// ovn-central pods that are not in the RAFT cluster at all.
fn non_members(db: Db, pods: &[CentralPod], lst: &ClusterStatus) -> Option<Check> {
    let s = db.short();
    let t = db.title();
    let outsiders: Vec<&str> = pods
        .iter()
        .filter(|p| p.ip.is_some())
        .filter(|p| {
            !lst.servers
                .iter()
                .any(|srv| address_host(&srv.address) == p.ip.as_deref().unwrap_or_default())
        })
        .map(|p| p.name.as_str())
        .collect();
    (!outsiders.is_empty()).then(|| {
        Check::warn(
            &format!("{s}-raft-membership"),
            Scope::Cluster,
            format!(
                "ovn-central pod(s) {} are not members of the {t} RAFT cluster",
                outsiders.join(", ")
            ),
            "NODE_IPS of ovn-central must list every master; a removed member needs `kubectl ko {s} kick` and a rejoin",
        )
    })
}

fn leader_label(
    name: &str,
    label: &str,
    what: &str,
    leader_pod: &str,
    pods: &[CentralPod],
) -> Check {
    let labelled: Vec<&str> = pods
        .iter()
        .filter(|p| p.label_true(label))
        .map(|p| p.name.as_str())
        .collect();
    if labelled == [leader_pod] {
        Check::pass(
            name,
            Scope::Cluster,
            format!("label {label}=true is on {leader_pod}, the real {what} leader"),
        )
    } else {
        Check::fail(
            name,
            Scope::Cluster,
            format!(
                "label {label}=true is on [{}] but the real {what} leader is pod {leader_pod}",
                labelled.join(", ")
            ),
            "kube-ovn-leader-checker in ovn-central sets these labels; check its log in each ovn-central pod (stale labels break Services and kubectl-ko)",
        )
    }
}

fn endpoints_check(
    name: &str,
    service: &str,
    namespace: &str,
    leader_pod: &str,
    endpoints: &Result<Vec<String>, String>,
) -> Check {
    match endpoints {
        Err(e) => Check::fail(
            name,
            Scope::Cluster,
            format!(
                "could not read the EndpointSlices of Service {namespace}/{service}: {}",
                first_line(e)
            ),
            format!(
                "`kubectl -n {namespace} get endpointslice -l kubernetes.io/service-name={service}`"
            ),
        ),
        Ok(targets) if targets.len() == 1 && targets[0] == leader_pod => Check::pass(
            name,
            Scope::Cluster,
            format!("Service {namespace}/{service} points at the leader {leader_pod}"),
        ),
        Ok(targets) => Check::fail(
            name,
            Scope::Cluster,
            format!(
                "Service {namespace}/{service} has {} ready endpoint(s) [{}], expected exactly the leader {leader_pod}",
                targets.len(),
                targets.join(", ")
            ),
            "the Service selects app=ovn-central plus the leader label; fix the labels (see the leader-label check)",
        ),
    }
}

/// `ovn-appctl -t ovn-northd status` per pod: exactly one `Status: active`.
pub fn northd(
    namespace: &str,
    pods: &[CentralPod],
    views: &[(String, Result<String, String>)],
    endpoints: &Result<Vec<String>, String>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut active = Vec::new();
    let mut silent = Vec::new();
    for (pod, r) in views {
        match r {
            Ok(text) => {
                let st = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Status:"))
                    .map(str::trim)
                    .unwrap_or("unknown");
                if st == "active" {
                    active.push(pod.as_str());
                }
            }
            Err(e) => silent.push(format!("pod {pod}: {}", first_line(e))),
        }
    }
    if !silent.is_empty() {
        out.push(Check::fail(
            "northd-servers",
            Scope::Cluster,
            format!("ovn-northd does not answer in {}", silent.join("; ")),
            format!("/var/log/ovn/ovn-northd.log in that pod; `kubectl -n {namespace} logs <pod> -c ovn-central`"),
        ));
    }
    match active.as_slice() {
        [one] => {
            out.push(Check::pass(
                "northd-active",
                Scope::Cluster,
                format!("exactly one active ovn-northd, in pod {one}"),
            ));
            out.push(leader_label(
                "northd-leader-label",
                "ovn-northd-leader",
                "ovn-northd",
                one,
                pods,
            ));
            out.push(endpoints_check(
                "northd-endpoints",
                "ovn-northd",
                namespace,
                one,
                endpoints,
            ));
        }
        [] => out.push(Check::fail(
            "northd-active",
            Scope::Cluster,
            "no ovn-northd is active: logical flows are not being computed",
            "ovn-northd takes its lock in the SB database; check SB health and northd logs",
        )),
        many => out.push(Check::fail(
            "northd-active",
            Scope::Cluster,
            format!(
                "{} ovn-northd instances are active: {}",
                many.len(),
                many.join(", ")
            ),
            "only one may hold the SB lock; restart the extra instance",
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use ko_ovn::raft::parse_cluster_status;

    fn fx(path: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/{path}"))
    }

    fn pods(leader: usize, label: &str) -> Vec<CentralPod> {
        (1..=3)
            .map(|i| CentralPod {
                name: format!("ovn-central-{i}"),
                node: Some(format!("node{i}")),
                ip: Some(format!("10.250.0.{i}")),
                unusable: None,
                labels: [(label.to_string(), (i == leader).to_string())].into(),
            })
            .collect()
    }

    fn views(dir: &str, db: &str) -> Vec<MemberView> {
        (1..=3)
            .map(|i| {
                let text = fx(&format!("{dir}/{db}-status-c{i}.txt"));
                MemberView {
                    pod: format!("ovn-central-{i}"),
                    status: parse_cluster_status(&text).map_err(|_| text.clone()),
                }
            })
            .collect()
    }

    fn by_name<'a>(cs: &'a [Check], name: &str) -> &'a Check {
        cs.iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {cs:#?}"))
    }

    /// 2-node sandbox: members 1 and 3 share node 1's address (3 on ports + 10);
    /// member 3's NB server is stopped. The member must be named as pod 3, not
    /// as pod 1 that merely has the same IP.
    #[test]
    fn members_sharing_a_node_address_are_told_apart() {
        let ips = ["172.18.0.2", "172.18.0.3", "172.18.0.2"];
        let pods: Vec<CentralPod> = (1..=3)
            .map(|i| CentralPod {
                name: format!("ovn-central-{i}"),
                node: Some(format!("node{}", 2 - i % 2)),
                ip: Some(ips[i - 1].to_string()),
                unusable: None,
                labels: [("ovn-nb-leader".to_string(), (i == 1).to_string())].into(),
            })
            .collect();
        let cs = raft(
            Db::Nb,
            "kube-system",
            &pods,
            &views("two-nodes-member-stopped", "nb"),
            &Ok(vec!["ovn-central-1".into()]),
        );
        let members = by_name(&cs, "nb-raft-members");
        assert_eq!(members.status, Status::Fail);
        assert!(
            members.message.contains("pod ovn-central-3")
                && members.message.contains("172.18.0.2:6653")
                && !members.message.contains("ovn-central-1"),
            "{}",
            members.message
        );
        assert!(members.hint.contains("ovn-central-3"), "{}", members.hint);
        // the two answering members are members: no "outsider" warning
        assert!(cs.iter().all(|c| c.name != "nb-raft-membership"), "{cs:#?}");
    }

    #[test]
    fn healthy_cluster_passes() {
        let cs = raft(
            Db::Nb,
            "kube-system",
            &pods(1, "ovn-nb-leader"),
            &views("healthy", "nb"),
            &Ok(vec!["ovn-central-1".into()]),
        );
        assert!(cs.iter().all(|c| c.status == Status::Pass), "{cs:#?}");
        assert!(
            by_name(&cs, "nb-raft-leader")
                .message
                .contains("ovn-central-1")
        );
    }

    #[test]
    fn stopped_nb_member_fails_naming_pod_and_database() {
        let cs = raft(
            Db::Nb,
            "kube-system",
            &pods(1, "ovn-nb-leader"),
            &views("raft-member-stopped", "nb"),
            &Ok(vec!["ovn-central-1".into()]),
        );
        let servers = by_name(&cs, "nb-raft-servers");
        assert_eq!(servers.status, Status::Fail);
        assert!(
            servers.message.contains("ovn-central-3"),
            "{}",
            servers.message
        );
        assert!(servers.message.contains("OVN NB"));
        let members = by_name(&cs, "nb-raft-members");
        assert_eq!(members.status, Status::Fail);
        assert!(
            members.message.contains("pod ovn-central-3"),
            "{}",
            members.message
        );
        assert_eq!(by_name(&cs, "nb-raft-leader").status, Status::Pass);
    }

    #[test]
    fn stopped_sb_member_fails() {
        let cs = raft(
            Db::Sb,
            "kube-system",
            &pods(1, "ovn-sb-leader"),
            &views("raft-member-stopped", "sb"),
            &Ok(vec!["ovn-central-1".into()]),
        );
        let members = by_name(&cs, "sb-raft-members");
        assert_eq!(members.status, Status::Fail);
        assert!(
            members.message.contains("ovn-central-2"),
            "{}",
            members.message
        );
    }

    #[test]
    fn wrong_label_and_endpoints_fail() {
        let cs = raft(
            Db::Nb,
            "kube-system",
            &pods(2, "ovn-nb-leader"),
            &views("healthy", "nb"),
            &Ok(vec!["ovn-central-1".into(), "ovn-central-2".into()]),
        );
        let l = by_name(&cs, "nb-leader-label");
        assert_eq!(l.status, Status::Fail);
        assert!(l.message.contains("ovn-central-2") && l.message.contains("ovn-central-1"));
        assert_eq!(by_name(&cs, "nb-endpoints").status, Status::Fail);
    }

    #[test]
    fn no_leader_is_a_failure() {
        let mut v = views("healthy", "nb");
        v.remove(0);
        let cs = raft(
            Db::Nb,
            "kube-system",
            &pods(1, "ovn-nb-leader"),
            &v,
            &Ok(vec![]),
        );
        assert_eq!(by_name(&cs, "nb-raft-leader").status, Status::Fail);
    }

    #[test]
    fn northd_exactly_one_active() {
        let v: Vec<(String, Result<String, String>)> = (1..=3)
            .map(|i| {
                (
                    format!("ovn-central-{i}"),
                    Ok(fx(&format!("healthy/northd-status-c{i}.txt"))),
                )
            })
            .collect();
        let cs = northd(
            "kube-system",
            &pods(1, "ovn-northd-leader"),
            &v,
            &Ok(vec!["ovn-central-1".into()]),
        );
        assert!(cs.iter().all(|c| c.status == Status::Pass), "{cs:#?}");
        let none: Vec<_> = v.iter().skip(1).cloned().collect();
        let cs = northd(
            "kube-system",
            &pods(1, "ovn-northd-leader"),
            &none,
            &Ok(vec![]),
        );
        assert_eq!(by_name(&cs, "northd-active").status, Status::Fail);
    }

    #[test]
    fn addresses_map_to_hosts() {
        assert_eq!(address_host("tcp:10.0.0.1:6643"), "10.0.0.1");
        assert_eq!(address_host("ssl:[fd00::1]:6643"), "fd00::1");
    }
}
