//! Parser for `ovn-appctl -t <db>.ctl cluster/status <DB>` and
//! `ovsdb-server/get-db-storage-status <DB>` (fixtures: `tests/fixtures/raft/`,
//! captured by `capture.sh` there).
//!
//! The parser is lenient: unknown lines are ignored, missing fields stay
//! `None`, and only text without a `Name:`/`Server ID:` line is an error.

use serde::Serialize;

/// A RAFT server id as printed: short form (4 hex digits) and, when shown, the full UUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerId {
    pub short: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Unknown,
}

impl Role {
    fn parse(s: &str) -> Role {
        match s.trim() {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            _ => Role::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Unknown => "unknown",
        }
    }
}

/// One entry of the `Connections:` line: `->sid` (outgoing), `<-sid`
/// (incoming); in parentheses when not (yet) established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub sid: String,
    pub outgoing: bool,
    pub established: bool,
}

/// One line of the `Servers:` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub sid: String,
    pub address: String,
    pub is_self: bool,
    /// Only the leader reports these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_index: Option<u64>,
    /// Milliseconds since the last message from this server, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_msg_ms: Option<u64>,
}

/// `cluster/status` of one server, as that server sees the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub name: String,
    pub cluster_id: Option<ServerId>,
    pub server_id: ServerId,
    pub address: Option<String>,
    /// e.g. "cluster member", "disconnected from the cluster (election timeout)".
    pub status: Option<String>,
    pub role: Role,
    pub term: Option<u64>,
    /// Leader short sid; `self` is resolved to our own sid; None = unknown.
    pub leader: Option<String>,
    pub vote: Option<String>,
    pub election_timer_ms: Option<u64>,
    /// `Log: [first, last]`.
    pub log: Option<(u64, u64)>,
    pub entries_not_committed: Option<u64>,
    pub entries_not_applied: Option<u64>,
    pub connections: Vec<Connection>,
    pub disconnections: Option<u64>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not cluster/status output: {0}")]
pub struct ParseError(pub String);

fn num(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// `a5aa (a5aaa73c-...)` or `a5aa`.
fn parse_id(s: &str) -> ServerId {
    let s = s.trim();
    match s.split_once('(') {
        Some((short, rest)) => ServerId {
            short: short.trim().to_string(),
            full: Some(rest.trim_end_matches(')').trim().to_string()),
        },
        None => ServerId {
            short: s.to_string(),
            full: None,
        },
    }
}

fn parse_connections(s: &str) -> Vec<Connection> {
    s.split_whitespace()
        .filter_map(|tok| {
            let (inner, established) = match tok.strip_prefix('(') {
                Some(t) => (t.trim_end_matches(')'), false),
                None => (tok, true),
            };
            let (sid, outgoing) = if let Some(sid) = inner.strip_prefix("->") {
                (sid, true)
            } else if let Some(sid) = inner.strip_prefix("<-") {
                (sid, false)
            } else {
                return None;
            };
            Some(Connection {
                sid: sid.to_string(),
                outgoing,
                established,
            })
        })
        .collect()
}

/// `    fc93 (fc93 at tcp:127.0.0.1:26641) (self) next_index=2 match_index=4 last msg 17 ms ago`
fn parse_server(line: &str) -> Option<Server> {
    let line = line.trim();
    let (sid, rest) = line.split_once(' ')?;
    let rest = rest.trim_start();
    let inner_end = rest.find(')')?;
    let inner = rest.strip_prefix('(')?.get(..inner_end.checked_sub(1)?)?;
    let address = inner
        .split_once(" at ")
        .map(|(_, a)| a.trim().to_string())
        .unwrap_or_default();
    let tail = rest.get(inner_end + 1..).unwrap_or_default();
    let mut server = Server {
        sid: sid.to_string(),
        address,
        is_self: tail.contains("(self)"),
        next_index: None,
        match_index: None,
        last_msg_ms: None,
    };
    let words: Vec<&str> = tail.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix("next_index=") {
            server.next_index = num(v);
        } else if let Some(v) = w.strip_prefix("match_index=") {
            server.match_index = num(v);
        } else if *w == "msg" && i > 0 && words[i - 1] == "last" {
            server.last_msg_ms = words.get(i + 1).and_then(|v| num(v));
        }
    }
    Some(server)
}

/// Parse `cluster/status` output.
pub fn parse_cluster_status(text: &str) -> Result<ClusterStatus, ParseError> {
    let mut name = None;
    let mut server_id = None;
    let mut st = ClusterStatus {
        name: String::new(),
        cluster_id: None,
        server_id: ServerId {
            short: String::new(),
            full: None,
        },
        address: None,
        status: None,
        role: Role::Unknown,
        term: None,
        leader: None,
        vote: None,
        election_timer_ms: None,
        log: None,
        entries_not_committed: None,
        entries_not_applied: None,
        connections: Vec::new(),
        disconnections: None,
        servers: Vec::new(),
    };
    let mut in_servers = false;
    for line in text.lines() {
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if in_servers && indented {
            if let Some(s) = parse_server(line) {
                st.servers.push(s);
            }
            continue;
        }
        in_servers = false;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Name" => name = Some(value.to_string()),
            "Cluster ID" => st.cluster_id = Some(parse_id(value)),
            "Server ID" => server_id = Some(parse_id(value)),
            "Address" => st.address = Some(value.to_string()),
            "Status" => st.status = Some(value.to_string()),
            "Role" => st.role = Role::parse(value),
            "Term" => st.term = num(value),
            "Leader" => {
                st.leader = match value {
                    "unknown" | "" => None,
                    v => Some(v.to_string()),
                }
            }
            "Vote" => {
                st.vote = match value {
                    "unknown" | "" => None,
                    v => Some(v.to_string()),
                }
            }
            "Election timer" => st.election_timer_ms = num(value),
            "Log" => {
                let inner = value.trim_start_matches('[').trim_end_matches(']');
                if let Some((a, b)) = inner.split_once(',')
                    && let (Some(a), Some(b)) = (num(a), num(b))
                {
                    st.log = Some((a, b));
                }
            }
            "Entries not yet committed" => st.entries_not_committed = num(value),
            "Entries not yet applied" => st.entries_not_applied = num(value),
            "Connections" => st.connections = parse_connections(value),
            "Disconnections" => st.disconnections = num(value),
            "Servers" => in_servers = true,
            _ => {}
        }
    }
    let (Some(name), Some(server_id)) = (name, server_id) else {
        let first = text.lines().next().unwrap_or_default();
        return Err(ParseError(format!(
            "no Name:/Server ID: lines (first line: {first:?})"
        )));
    };
    st.name = name;
    if st.leader.as_deref() == Some("self") {
        st.leader = Some(server_id.short.clone());
    }
    if st.vote.as_deref() == Some("self") {
        st.vote = Some(server_id.short.clone());
    }
    st.server_id = server_id;
    Ok(st)
}

/// Of several members' views, the member that leads: the one reporting role
/// leader with the highest term (right after a failover two may claim it; the
/// newer term is the real one). None when no view says leader.
pub fn leading<'a, T>(views: impl IntoIterator<Item = (T, &'a ClusterStatus)>) -> Option<T> {
    views
        .into_iter()
        .filter(|(_, s)| s.is_leader())
        .max_by_key(|(_, s)| s.term)
        .map(|(member, _)| member)
}

impl ClusterStatus {
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Whether this server has an established connection with `sid`
    /// (itself counts as connected).
    pub fn connected_to(&self, sid: &str) -> bool {
        sid == self.server_id.short
            || self
                .connections
                .iter()
                .any(|c| c.sid == sid && c.established)
    }

    /// How far each server's match_index is behind the highest one (leader view only).
    pub fn match_lag(&self, sid: &str) -> Option<u64> {
        let max = self.servers.iter().filter_map(|s| s.match_index).max()?;
        let m = self.servers.iter().find(|s| s.sid == sid)?.match_index?;
        Some(max.saturating_sub(m))
    }

    /// Find a server by short sid, full-uuid prefix, or address.
    pub fn find_server(&self, key: &str) -> Option<&Server> {
        self.servers
            .iter()
            .find(|s| s.sid == key || s.address == key)
            .or_else(|| {
                (self
                    .server_id
                    .full
                    .as_deref()
                    .is_some_and(|f| f.starts_with(key))
                    && key.len() >= 4)
                    .then(|| self.servers.iter().find(|s| s.is_self))
                    .flatten()
            })
            .or_else(|| {
                (key.len() > 4)
                    .then(|| self.servers.iter().find(|s| key.starts_with(&s.sid)))
                    .flatten()
            })
    }
}

/// `ovsdb-server/get-db-storage-status`: `status: ok` or `status: <error>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageStatus {
    pub ok: bool,
    /// The text after `status:` (e.g. "ok", or the ovsdb error).
    pub detail: String,
}

pub fn parse_storage_status(text: &str) -> Result<StorageStatus, ParseError> {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("status:") else {
        let first = t.lines().next().unwrap_or_default();
        return Err(ParseError(format!(
            "storage status does not start with \"status:\" (got {first:?})"
        )));
    };
    let detail = rest.trim().to_string();
    Ok(StorageStatus {
        ok: detail == "ok",
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        ko_testkit::fixture!(&format!("raft/{name}"))
    }

    #[test]
    fn the_leader_with_the_newest_term_leads() {
        let leader = parse_cluster_status(&fixture("status-leader.txt")).unwrap();
        let follower = parse_cluster_status(&fixture("status-follower.txt")).unwrap();
        let mut stale = leader.clone();
        stale.term = leader.term.map(|t| t.saturating_sub(1));
        let views = [("a", &stale), ("b", &follower), ("c", &leader)];
        assert_eq!(leading(views), Some("c"));
        assert_eq!(leading([("b", &follower)]), None);
    }

    #[test]
    fn healthy_leader() {
        let s = parse_cluster_status(&fixture("status-leader.txt")).unwrap();
        assert_eq!(s.name, "OVN_Northbound");
        assert_eq!(s.server_id.short, "fc93");
        assert_eq!(
            s.server_id.full.as_deref(),
            Some("fc9372d9-8b36-455d-82fd-d912e11f1a46")
        );
        assert_eq!(s.role, Role::Leader);
        assert_eq!(s.leader.as_deref(), Some("fc93"));
        assert_eq!(s.term, Some(1));
        assert_eq!(s.log, Some((2, 5)));
        assert_eq!(s.election_timer_ms, Some(1000));
        assert_eq!(s.servers.len(), 3);
        assert!(s.servers[0].is_self);
        assert_eq!(s.servers[1].address, "tcp:127.0.0.1:26642");
        assert_eq!(s.servers[1].match_index, Some(4));
        assert_eq!(s.servers[2].last_msg_ms, Some(17));
        for sv in &s.servers {
            assert!(s.connected_to(&sv.sid), "{}", sv.sid);
            assert_eq!(s.match_lag(&sv.sid), Some(0));
        }
    }

    #[test]
    fn leader_sees_stopped_member_disconnected() {
        let s = parse_cluster_status(&fixture("status-leader-member-down.txt")).unwrap();
        assert!(s.is_leader());
        assert!(s.connected_to("8351"));
        assert!(!s.connected_to("57ae"));
        assert_eq!(s.disconnections, Some(1));
        assert_eq!(s.servers[2].last_msg_ms, Some(4053));
    }

    #[test]
    fn follower_and_no_quorum() {
        let f = parse_cluster_status(&fixture("status-follower.txt")).unwrap();
        assert_eq!(f.role, Role::Follower);
        assert_eq!(f.leader.as_deref(), Some("fc93"));
        assert_eq!(f.vote, None);
        assert!(f.servers.iter().all(|s| s.match_index.is_none()));
        assert!(f.connected_to("fc93"));

        let n = parse_cluster_status(&fixture("status-no-quorum.txt")).unwrap();
        assert_eq!(n.role, Role::Candidate);
        assert_eq!(n.leader, None);
        assert_eq!(n.vote.as_deref(), Some("8351"));
        assert!(n.status.as_deref().unwrap().starts_with("disconnected"));
        assert!(!n.connected_to("fc93"));
        assert_eq!(n.term, Some(3));
    }

    #[test]
    fn find_server_by_sid_address_or_uuid() {
        let s = parse_cluster_status(&fixture("status-leader.txt")).unwrap();
        assert_eq!(s.find_server("57ae").unwrap().sid, "57ae");
        assert_eq!(s.find_server("tcp:127.0.0.1:26642").unwrap().sid, "8351");
        assert_eq!(s.find_server("fc9372d9").unwrap().sid, "fc93");
        assert!(s.find_server("zzzz").is_none());
    }

    #[test]
    fn storage_status() {
        let ok = parse_storage_status(&fixture("storage-ok.txt")).unwrap();
        assert!(ok.ok);
        let bad = parse_storage_status("status: ovsdb error: inconsistent data\n").unwrap();
        assert!(!bad.ok);
        assert_eq!(bad.detail, "ovsdb error: inconsistent data");
        assert!(parse_storage_status("garbage").is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_cluster_status("").is_err());
        assert!(parse_cluster_status("ovs-appctl: cannot connect").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_cluster_status(&s);
            let _ = parse_storage_status(&s);
        }

        #[test]
        fn never_panics_on_mangled_fixture(cut in 0usize..1400, junk in "[ ()<>:=a-f0-9-]{0,20}") {
            let f = include_str!("../tests/fixtures/raft/status-leader.txt");
            let mut s: String = f.chars().take(cut).collect();
            s.push_str(&junk);
            s.push_str(&f.chars().skip(cut).collect::<String>());
            let _ = parse_cluster_status(&s);
        }
    }
}
