//! From `ns/pod` (and `--peer`s) to what the poller needs: the node, the
//! OVS port (ofport) and the logical port / datapath tunnel keys, from the
//! pod's Kube-OVN annotations, SB Port_Binding / Datapath_Binding and the
//! node's OVS Interface table. Round trips: pod ‖ SB leader ‖ NB leader, then
//! SB bindings ‖ NB rows ‖ port groups, then one interface list per node.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use ko_ovn::cookie::CookieIndex;
use ko_ovn::flowwatch::Scope;
use ko_ovn::ovsdb_json::tables;
use ko_ovn::ovsdb_rows::{DatapathBinding, PortBinding, PortGroup};
use ko_ovn::verdict::nb::NbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsInterface};
use serde::Serialize;

use crate::cluster::{self, Cluster, Db, PodRef, container, ovn_db};
use crate::cmd::tcpdump::parse_pod_ref;
use crate::cmd::trace::source::{self, Sender};
use crate::error::{Error, Result};

/// One watched pod, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watched {
    pub pod: String,
    pub node: String,
    pub logical_switch: String,
    pub logical_port: String,
    /// Datapath_Binding tunnel_key of its switch (`metadata` in OpenFlow).
    pub datapath_key: u64,
    /// Port_Binding tunnel_key (`reg14` in ingress, `reg15` in egress).
    pub port_key: u64,
    pub ofport: u32,
    pub interface: String,
    #[serde(skip)]
    pub logical_router: Option<String>,
}

/// A node to poll and the rules to keep there.
#[derive(Debug, Clone)]
pub struct NodeScope {
    pub node: String,
    pub ovs_pod: PodRef,
    pub scope: Scope,
}

/// The SB rows read once at the start.
#[derive(Debug, Clone, Default)]
pub struct SbTables {
    /// Cookie → Port_Binding / Multicast_Group (logical flows are added as they move).
    pub index: CookieIndex,
    /// Datapath tunnel key → name.
    pub datapaths: BTreeMap<u64, String>,
    /// (datapath key, port key) → logical port name.
    pub ports: HashMap<(u64, u64), String>,
    /// `--format=json list Datapath_Binding` / `Logical_DP_Group` text, to
    /// name the datapaths of logical flows read later.
    pub datapath_json: String,
    pub dp_group_json: String,
}

pub struct Setup {
    pub target: Watched,
    pub peers: Vec<Watched>,
    /// Routers crossed on the way to a peer in another switch (name, key).
    pub routers: Vec<(String, u64)>,
    pub nodes: Vec<NodeScope>,
    pub sb: SbTables,
    pub nb: NbSnapshot,
    /// Port group name → number of ports (a port-group ACL's counter is
    /// shared when it has several).
    pub pg_sizes: HashMap<String, usize>,
    pub sb_leader: PodRef,
    /// Every Service, to name the one behind a load balancer VIP.
    pub services: Vec<Service>,
    pub warnings: Vec<String>,
}

const SB_ARGV: &[&str] = &[
    "ovn-sbctl",
    "--format=json",
    "--columns=_uuid,tunnel_key,external_ids",
    "list",
    "Datapath_Binding",
    "--",
    "--columns=_uuid,logical_port,tunnel_key,datapath,type",
    "list",
    "Port_Binding",
    "--",
    "--columns=_uuid,name,tunnel_key,datapath",
    "list",
    "Multicast_Group",
    "--",
    "--columns=_uuid,datapaths",
    "list",
    "Logical_DP_Group",
];

const PG_ARGV: &[&str] = &[
    "ovn-nbctl",
    "--format=json",
    "--columns=name,ports",
    "list",
    "Port_Group",
];

pub fn pod_ref(pod: &str, namespace: Option<&str>) -> Result<(String, String)> {
    match (pod.contains('/'), namespace) {
        (false, Some(ns)) => parse_pod_ref(&format!("{ns}/{pod}")),
        _ => parse_pod_ref(pod),
    }
}

async fn sender(cluster: &Cluster, ns: &str, name: &str) -> Result<Sender> {
    let pod = cluster.get_pod(ns, name).await?;
    if source::is_host_network(&pod) {
        return Err(Error::Usage(format!(
            "pod {ns}/{name} uses the host network: it has no logical switch port of its own; \
             watch a pod on the pod network (its node's join port is node-<node>)"
        )));
    }
    source::from_pod(&pod)
}

pub async fn setup(
    cluster: &Cluster,
    target: (String, String),
    peers: &[String],
    namespace: Option<&str>,
) -> Result<Setup> {
    let (sender, sb_leader, nb_leader) = tokio::try_join!(
        sender(cluster, &target.0, &target.1),
        async { Ok(cluster.sb_leader().await?) },
        async { Ok(cluster.nb_leader().await?) },
    )?;
    let mut warnings = Vec::new();
    let mut leaders = (sb_leader, nb_leader);
    let nb_argv = NbSnapshot::argv();
    let (read, services) = tokio::join!(
        read_tables(cluster, &leaders, &nb_argv),
        // a cluster that forbids listing Services still gets its flows,
        // load balancer rules then name the OVN load balancer only
        async {
            cluster
                .list_services()
                .await
                .map_err(|e| format!("load balancer rules are not mapped to Services: {e}"))
        },
    );
    let read = match read {
        // a labelled pod whose server is not the leader (the label lags an
        // election) refused: once more at the RAFT leaders
        Err(Error::Cluster(crate::cluster::Error::RemoteFailed { stderr, .. }))
            if ovn_db::refused_by_a_follower(&stderr) =>
        {
            let (sb, nb) = tokio::join!(cluster.raft_leader(Db::Sb), cluster.raft_leader(Db::Nb));
            for (label, old, real) in [
                ("ovn-sb-leader", &mut leaders.0, sb?),
                ("ovn-nb-leader", &mut leaders.1, nb?),
            ] {
                if let Some(real) = real.filter(|r| r.name != old.name) {
                    warnings.push(format!(
                        "{old} is labelled {label}=true but its server is not the RAFT leader (the label lags an election); read from {real}, the leader by cluster/status"
                    ));
                    *old = real;
                }
            }
            read_tables(cluster, &leaders, &nb_argv).await
        }
        other => other,
    };
    let (sb_text, nb_text, pg_text) = read?;
    let (sb_leader, _) = leaders;

    let services = services.unwrap_or_else(|w| {
        warnings.push(w);
        Vec::new()
    });
    let sb = parse_sb(&sb_text)?;
    let nb = NbSnapshot::parse(&nb_text).map_err(|e| remote(&nb_argv.join(" "), &e))?;
    let pg_sizes = parse_pg_sizes(&pg_text)?;

    let mut senders = vec![sender];
    for p in peers {
        match peer_sender(cluster, p, namespace, &nb).await? {
            Some(s) => senders.push(s),
            None => warnings.push(format!(
                "--peer {p}: no logical switch port has this address; only the routers of the watched pod are added"
            )),
        }
    }
    let mut watched = Vec::new();
    for s in &senders {
        watched.push(keys_of(s, &sb)?);
    }
    let routers = routers_between(&watched, peers.is_empty(), &sb);
    let nodes = node_scopes(cluster, &mut watched, &routers).await?;
    let target = watched.remove(0);
    Ok(Setup {
        target,
        peers: watched,
        routers,
        nodes,
        sb,
        nb,
        pg_sizes,
        sb_leader,
        services,
        warnings,
    })
}

/// The SB rows, the NB snapshot and the port groups from the (sb, nb)
/// leaders, at once.
async fn read_tables(
    cluster: &Cluster,
    (sb_leader, nb_leader): &(PodRef, PodRef),
    nb_argv: &[String],
) -> Result<(String, String, String)> {
    let c = container::OVN_CENTRAL;
    Ok(tokio::try_join!(
        cluster.exec_ok(sb_leader, c, SB_ARGV),
        cluster.exec_ok(nb_leader, c, nb_argv),
        cluster.exec_ok(nb_leader, c, PG_ARGV),
    )?)
}

fn remote(what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Remote {
        what: format!("reading `{what}`"),
        detail: e.to_string(),
        hint: "run the command with `kubectl ko nbctl` / `kubectl ko sbctl` to see what it prints"
            .into(),
    }
}

async fn peer_sender(
    cluster: &Cluster,
    peer: &str,
    namespace: Option<&str>,
    nb: &NbSnapshot,
) -> Result<Option<Sender>> {
    if let Ok(ip) = peer.parse::<IpAddr>() {
        let Some((_, lsp)) = nb.mac_of_ip(ip) else {
            return Ok(None);
        };
        let Some((ns, name)) = lsp
            .pod()
            .and_then(|p| p.split_once('/'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
        else {
            return Ok(None);
        };
        return sender(cluster, &ns, &name).await.map(Some);
    }
    let (ns, name) = pod_ref(peer, namespace)?;
    sender(cluster, &ns, &name).await.map(Some)
}

/// Datapath_Binding, Port_Binding, Multicast_Group and Logical_DP_Group, in
/// [`SB_ARGV`] order.
fn parse_sb(text: &str) -> Result<SbTables> {
    let what = SB_ARGV.join(" ");
    let values: Vec<serde_json::Value> = serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| remote(&what, &e))?;
    if values.len() != 4 {
        return Err(remote(
            &what,
            &format!("expected 4 tables, got {}", values.len()),
        ));
    }
    let json: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let t = tables(text).map_err(|e| remote(&what, &e))?;
    let mut sb = SbTables::default();
    let mut dp_by_uuid: HashMap<String, u64> = HashMap::new();
    for dp in t[0].iter().map(DatapathBinding::from_row) {
        let Some(key) = dp.tunnel_key.and_then(|k| u64::try_from(k).ok()) else {
            continue;
        };
        dp_by_uuid.insert(dp.uuid, key);
        sb.datapaths.insert(key, dp.name);
    }
    for pb in t[1].iter().map(PortBinding::from_row) {
        if let (Some(dp), Some(key)) = (dp_by_uuid.get(&pb.datapath), pb.tunnel_key) {
            sb.ports.insert((*dp, key as u64), pb.logical_port);
        }
    }
    sb.index
        .add_port_bindings(&json[1])
        .map_err(|e| remote(&what, &e))?;
    sb.index
        .add_multicast_groups(&json[2])
        .map_err(|e| remote(&what, &e))?;
    sb.datapath_json = json[0].clone();
    sb.dp_group_json = json[3].clone();
    Ok(sb)
}

fn parse_pg_sizes(text: &str) -> Result<HashMap<String, usize>> {
    let t = tables(text).map_err(|e| remote(&PG_ARGV.join(" "), &e))?;
    Ok(t.first()
        .map(|rows| {
            rows.iter()
                .map(PortGroup::from_row)
                .map(|pg| (pg.name, pg.ports.len()))
                .collect()
        })
        .unwrap_or_default())
}

fn keys_of(s: &Sender, sb: &SbTables) -> Result<Watched> {
    let dp = sb
        .datapaths
        .iter()
        .find(|(_, n)| **n == s.logical_switch)
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            Error::Cluster(cluster::Error::NotFound {
                what: format!("SB Datapath_Binding of logical switch {}", s.logical_switch),
                detail: format!(" (pod {})", s.name),
                hint: "is ovn-northd running? `kubectl ko sbctl list Datapath_Binding`".into(),
            })
        })?;
    let port = sb
        .ports
        .iter()
        .find(|((d, _), n)| *d == dp && **n == s.logical_port)
        .map(|((_, k), _)| *k)
        .ok_or_else(|| {
            Error::Cluster(cluster::Error::NotFound {
                what: format!("SB Port_Binding of {}", s.logical_port),
                detail: format!(" on logical switch {}", s.logical_switch),
                hint: format!(
                    "`kubectl ko nbctl lsp-list {}`: kube-ovn-controller creates the port",
                    s.logical_switch
                ),
            })
        })?;
    Ok(Watched {
        pod: s.name.clone(),
        node: s.node.clone(),
        logical_switch: s.logical_switch.clone(),
        logical_port: s.logical_port.clone(),
        datapath_key: dp,
        port_key: port,
        ofport: 0,
        interface: String::new(),
        logical_router: s.logical_router.clone(),
    })
}

/// Routers between the watched pod and peers in other switches (their
/// `logical_router` annotation).
fn routers_between(w: &[Watched], no_peers: bool, sb: &SbTables) -> Vec<(String, u64)> {
    if no_peers {
        return Vec::new();
    }
    let mut out: Vec<(String, u64)> = Vec::new();
    let first_ls = w.first().map(|x| x.logical_switch.as_str());
    let crosses = w
        .iter()
        .any(|x| Some(x.logical_switch.as_str()) != first_ls);
    for x in w {
        let Some(r) = &x.logical_router else { continue };
        if let Some((k, n)) = sb.datapaths.iter().find(|(_, n)| *n == r)
            && (crosses || w.len() == 1)
            && !out.iter().any(|(_, key)| key == k)
        {
            out.push((n.clone(), *k));
        }
    }
    out
}

/// One scope per node: every watched datapath and port, the local ofports.
async fn node_scopes(
    cluster: &Cluster,
    watched: &mut [Watched],
    routers: &[(String, u64)],
) -> Result<Vec<NodeScope>> {
    let mut nodes: Vec<String> = watched.iter().map(|w| w.node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    let pods = futures::future::try_join_all(nodes.iter().map(|n| cluster.ovs_pod_on(n))).await?;
    let ifaces = futures::future::try_join_all(pods.iter().map(|p| interfaces(cluster, p))).await?;
    let mut datapaths: Vec<u64> = watched.iter().map(|w| w.datapath_key).collect();
    datapaths.extend(routers.iter().map(|(_, k)| *k));
    datapaths.sort();
    datapaths.dedup();
    let ports: Vec<(u64, u64)> = watched
        .iter()
        .map(|w| (w.datapath_key, w.port_key))
        .collect();
    for w in watched.iter_mut() {
        let i = nodes.iter().position(|n| *n == w.node).unwrap_or(0);
        let iface = ifaces
            .get(i)
            .and_then(|list| {
                list.iter()
                    .find(|f| f.iface_id.as_deref() == Some(w.logical_port.as_str()))
            })
            .ok_or_else(|| {
                Error::Cluster(cluster::Error::NotFound {
                    what: format!("OVS interface of {} on node {}", w.logical_port, w.node),
                    detail: " (no br-int interface has that external_ids:iface-id)".into(),
                    hint: format!(
                        "`kubectl ko vsctl {} find interface external_ids:iface-id={}`",
                        w.node, w.logical_port
                    ),
                })
            })?;
        w.ofport = u32::try_from(iface.ofport).map_err(|_| Error::Remote {
            what: format!("OVS interface {} of {}", iface.name, w.logical_port),
            detail: format!("it has no OpenFlow port (ofport {})", iface.ofport),
            hint: format!(
                "`kubectl ko vsctl {} list interface {}`",
                w.node, iface.name
            ),
        })?;
        w.interface = iface.name.clone();
    }
    Ok(nodes
        .into_iter()
        .zip(pods)
        .map(|(node, ovs_pod)| NodeScope {
            scope: Scope {
                datapaths: datapaths.clone(),
                ports: ports.clone(),
                ofports: watched
                    .iter()
                    .filter(|w| w.node == node)
                    .map(|w| w.ofport)
                    .collect(),
            },
            node,
            ovs_pod,
        })
        .collect())
}

async fn interfaces(cluster: &Cluster, pod: &PodRef) -> Result<Vec<OvsInterface>> {
    let argv = vovs::interfaces_argv();
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let text = cluster.exec_ok(pod, &c, &argv).await?;
    vovs::parse_interfaces(&text).map_err(|e| remote(&argv.join(" "), &e))
}
