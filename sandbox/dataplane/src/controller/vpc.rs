//! Vpc objects -> logical routers, as kube-ovn-controller's `handleAddOrUpdateVpc`
//! writes them: a VPC created through the API gets its router and its six load
//! balancers (`vpc-<vpc>-{tcp,udp,sctp}-load`, `...-sess-load`) and a status; every
//! VPC, planned ones too, gets the static routes and policies its
//! `spec.staticRoutes` / `spec.policyRoutes` list (tagged `vendor=kube-ovn`) and
//! the peer router port `<vpc>-<remote>` (networks `localConnectIP`, peer
//! `<remote>-<vpc>`) of each `spec.vpcPeerings` entry (`CreatePeerRouterPort`). Only
//! rows this controller wrote (marked [`OWNER`]) are ever changed or removed, so the
//! sandbox's own routes and rows written with `kubectl ko nbctl` stay.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{Context, Result};
use ko_ovn::ovsdb_json::{self, Row};
use serde_json::{Value, json};

use super::nb_read::NbRead;
use super::service::ApiWrite;
use super::subnet::OWNER;
use super::world::{self, World};
use crate::argv;
use crate::ctx::Ctx;
use crate::nb::{self, Txn, q};
use crate::plan::{CLUSTER_ROUTER, VPC_NAME};

/// A static route as the NB row holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub prefix: String,
    pub nexthop: String,
    /// `dst-ip` or `src-ip`.
    pub policy: String,
    pub table: String,
}

/// A router policy as the NB row holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Policy {
    pub priority: i64,
    pub matches: String,
    pub action: String,
    pub nexthops: Vec<String>,
}

#[derive(Debug, Default)]
pub struct RouterRows {
    pub ours: bool,
    /// This controller's routes and policies on the router, with their UUIDs.
    pub routes: Vec<(String, Route)>,
    pub policies: Vec<(String, Policy)>,
    /// Ports other than peer ports (those of subnets).
    pub ports: usize,
    /// This controller's peer ports: remote VPC -> networks.
    pub peers: BTreeMap<String, Vec<String>>,
}

/// The external_ids key of a peer router port this controller wrote: the remote VPC.
const PEERING: &str = "sandbox.kubectl-ko.io/peering";

#[derive(Debug, Default)]
pub struct NbRouters {
    pub routers: BTreeMap<String, RouterRows>,
    pub load_balancers: BTreeSet<String>,
}

fn ours(r: &Row) -> bool {
    r.get("external_ids")
        .map(ovsdb_json::map)
        .unwrap_or_default()
        .get(OWNER)
        .is_some_and(|v| v == "true")
}

fn parse(nb: &NbRead) -> NbRouters {
    let (routers, routes, policies) = (
        nb.rows("Logical_Router"),
        nb.rows("Logical_Router_Static_Route"),
        nb.rows("Logical_Router_Policy"),
    );
    let (lbs, lrps) = (nb.rows("Load_Balancer"), nb.rows("Logical_Router_Port"));
    let s = |r: &Row, c: &str| ovsdb_json::cell_str(r, c).unwrap_or_default();
    let set = |r: &Row, c: &str| r.get(c).map(ovsdb_json::set).unwrap_or_default();
    let route_rows: BTreeMap<String, Route> = routes
        .iter()
        .filter(|r| ours(r))
        .map(|r| {
            let policy = match s(r, "policy") {
                p if p.is_empty() => "dst-ip".to_string(),
                p => p,
            };
            (
                s(r, "_uuid"),
                Route {
                    prefix: s(r, "ip_prefix"),
                    nexthop: s(r, "nexthop"),
                    policy,
                    table: s(r, "route_table"),
                },
            )
        })
        .collect();
    let policy_rows: BTreeMap<String, Policy> = policies
        .iter()
        .filter(|r| ours(r))
        .map(|r| {
            let mut nexthops = set(r, "nexthops");
            nexthops.sort();
            (
                s(r, "_uuid"),
                Policy {
                    priority: s(r, "priority").parse().unwrap_or(0),
                    matches: s(r, "match"),
                    action: s(r, "action"),
                    nexthops,
                },
            )
        })
        .collect();
    let mut out = NbRouters {
        load_balancers: lbs.iter().map(|r| s(r, "name")).collect(),
        ..NbRouters::default()
    };
    // peer ports by UUID: (remote VPC, networks)
    let peer_ports: BTreeMap<String, (String, Vec<String>)> = lrps
        .iter()
        .filter_map(|r| {
            let ext = r
                .get("external_ids")
                .map(ovsdb_json::map)
                .unwrap_or_default();
            let mut networks = set(r, "networks");
            networks.sort();
            ext.get(PEERING)
                .map(|remote| (s(r, "_uuid"), (remote.clone(), networks)))
        })
        .collect();
    for r in routers {
        let ports = set(r, "ports");
        let peers = ports
            .iter()
            .filter_map(|u| peer_ports.get(u).cloned())
            .collect();
        let routes = set(r, "static_routes")
            .into_iter()
            .filter_map(|u| route_rows.get(&u).map(|x| (u.clone(), x.clone())))
            .collect();
        let policies = set(r, "policies")
            .into_iter()
            .filter_map(|u| policy_rows.get(&u).map(|x| (u.clone(), x.clone())))
            .collect();
        out.routers.insert(
            s(r, "name"),
            RouterRows {
                ours: ours(r),
                routes,
                policies,
                ports: ports
                    .iter()
                    .filter(|u| !peer_ports.contains_key(*u))
                    .count(),
                peers,
            },
        );
    }
    out
}

/// The routers `up` made; never created or removed here.
fn planned(name: &str) -> bool {
    name == CLUSTER_ROUTER || name == VPC_NAME
}

/// The six load balancers Kube-OVN gives a custom VPC (`GenVpcLoadBalancer`):
/// (name, protocol, session affinity).
pub fn load_balancers(vpc: &str) -> Vec<(String, &'static str, bool)> {
    ["tcp", "udp", "sctp"]
        .iter()
        .flat_map(|p| {
            [
                (format!("vpc-{vpc}-{p}-load"), *p, false),
                (format!("vpc-{vpc}-{p}-sess-load"), *p, true),
            ]
        })
        .collect()
}

/// The load balancers Kube-OVN attaches to every subnet of a VPC.
pub fn load_balancer_names(vpc: &str) -> Vec<String> {
    if vpc == CLUSTER_ROUTER {
        ["tcp", "udp", "sctp"]
            .iter()
            .flat_map(|p| {
                [
                    format!("cluster-{p}-loadbalancer"),
                    format!("cluster-{p}-session-loadbalancer"),
                ]
            })
            .collect()
    } else {
        load_balancers(vpc)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect()
    }
}

/// `spec.staticRoutes`, or why one of them cannot be written.
pub fn wanted_routes(vpc: &Value) -> Result<Vec<Route>, String> {
    let mut out = Vec::new();
    for r in vpc["spec"]["staticRoutes"].as_array().into_iter().flatten() {
        let cidr = r["cidr"].as_str().unwrap_or("").trim();
        let nh = r["nextHopIP"].as_str().unwrap_or("").trim();
        let ip_part = cidr.split('/').next().unwrap_or("");
        if ip_part.parse::<IpAddr>().is_err() || nh.parse::<IpAddr>().is_err() {
            return Err(format!(
                "static route {r}: cidr and nextHopIP must be addresses"
            ));
        }
        let policy = match r["policy"].as_str().unwrap_or("policyDst") {
            "policySrc" => "src-ip",
            _ => "dst-ip",
        };
        out.push(Route {
            prefix: cidr.to_string(),
            nexthop: nh.to_string(),
            policy: policy.to_string(),
            table: r["routeTable"].as_str().unwrap_or("").to_string(),
        });
    }
    out.sort();
    Ok(out)
}

/// `spec.vpcPeerings` as remote VPC -> the local port's networks
/// (`localConnectIP`, comma-separated CIDRs), or why one cannot be written.
pub fn wanted_peers(vpc: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for p in vpc["spec"]["vpcPeerings"].as_array().into_iter().flatten() {
        let remote = p["remoteVpc"].as_str().unwrap_or("").trim();
        let ip = p["localConnectIP"].as_str().unwrap_or("").trim();
        let mut networks: Vec<String> = ip
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let valid = |c: &String| {
            c.split_once('/')
                .is_some_and(|(a, l)| a.parse::<IpAddr>().is_ok() && l.parse::<u8>().is_ok())
        };
        if remote.is_empty() || networks.is_empty() || !networks.iter().all(valid) {
            return Err(format!(
                "vpc peering {p}: remoteVpc and localConnectIP (a CIDR) are required"
            ));
        }
        networks.sort();
        out.insert(remote.to_string(), networks);
    }
    Ok(out)
}

/// `spec.policyRoutes`, or why one of them cannot be written.
pub fn wanted_policies(vpc: &Value) -> Result<Vec<Policy>, String> {
    let mut out = Vec::new();
    for p in vpc["spec"]["policyRoutes"].as_array().into_iter().flatten() {
        let action = p["action"].as_str().unwrap_or("");
        if !matches!(action, "allow" | "drop" | "reroute") {
            return Err(format!(
                "policy route {p}: action must be allow, drop or reroute"
            ));
        }
        let Some(priority) = p["priority"].as_i64().filter(|n| (0..=32767).contains(n)) else {
            return Err(format!("policy route {p}: priority must be 0..32767"));
        };
        let matches = p["match"].as_str().unwrap_or("").trim().to_string();
        if matches.is_empty() {
            return Err(format!("policy route {p}: match is empty"));
        }
        let mut nexthops: Vec<String> = p["nextHopIP"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if action == "reroute"
            && (nexthops.is_empty() || nexthops.iter().any(|n| n.parse::<IpAddr>().is_err()))
        {
            return Err(format!(
                "policy route {p}: reroute needs nextHopIP addresses"
            ));
        }
        if action != "reroute" {
            nexthops.clear();
        }
        nexthops.sort();
        out.push(Policy {
            priority,
            matches,
            action: action.to_string(),
            nexthops,
        });
    }
    out.sort();
    Ok(out)
}

/// Write routers, routes, policies and peer ports (one transaction) against what
/// `read` holds; the status writes of the VPCs, and whether the NB changed.
pub fn sync(ctx: &Ctx, w: &World, read: &NbRead) -> Result<(Vec<ApiWrite>, bool)> {
    let txn = plan_changes(w, &parse(read));
    let wrote = !txn.is_empty();
    if wrote {
        nb::nbctl_timeout(ctx, &txn.argv(), 20).context("writing the routers of VPCs")?;
        eprintln!("controller: VPC routers updated");
    }
    Ok((status_writes(w), wrote))
}

/// The transaction for every VPC object against the NB.
pub fn plan_changes(w: &World, cur: &NbRouters) -> Txn {
    let mut t = Txn::default();
    let empty = RouterRows::default();
    for vpc in &w.vpcs {
        let name = world::name(vpc);
        if name.is_empty() {
            continue;
        }
        let have = cur.routers.get(name);
        if have.is_none() && !planned(name) {
            create_router(&mut t, name, cur);
        }
        let have = have.unwrap_or(&empty);
        // a route list that cannot be written is left as it is (the status says why)
        if let Ok(want) = wanted_routes(vpc) {
            for (uuid, r) in &have.routes {
                if !want.contains(r) {
                    t.add(argv![
                        "remove",
                        "logical_router",
                        name,
                        "static_routes",
                        uuid
                    ]);
                }
            }
            for r in want
                .iter()
                .filter(|r| !have.routes.iter().any(|(_, h)| h == *r))
            {
                add_route(&mut t, name, r);
            }
        }
        if let Ok(want) = wanted_peers(vpc) {
            for remote in have.peers.keys().filter(|r| !want.contains_key(*r)) {
                t.add(argv!["--if-exists", "lrp-del", format!("{name}-{remote}")]);
            }
            for (remote, networks) in &want {
                match have.peers.get(remote) {
                    Some(n) if n == networks => {}
                    Some(_) => {
                        let list: Vec<String> = networks.iter().map(|n| q(n)).collect();
                        t.add(argv![
                            "set",
                            "logical_router_port",
                            format!("{name}-{remote}"),
                            format!("networks=[{}]", list.join(","))
                        ]);
                    }
                    None => add_peer_port(&mut t, name, remote, networks),
                }
            }
        }
        if let Ok(want) = wanted_policies(vpc) {
            for (uuid, p) in &have.policies {
                if !want.contains(p) {
                    t.add(argv!["remove", "logical_router", name, "policies", uuid]);
                }
            }
            for p in want
                .iter()
                .filter(|p| !have.policies.iter().any(|(_, h)| h == *p))
            {
                add_policy(&mut t, name, p);
            }
        }
    }
    // routers this controller made whose object is gone and that no subnet uses
    for (name, rows) in &cur.routers {
        let gone = !w.vpcs.iter().any(|v| world::name(v) == name);
        if rows.ours && gone && rows.ports == 0 && !planned(name) {
            t.add(argv!["lr-del", name]);
            for (lb, _, _) in load_balancers(name) {
                if cur.load_balancers.contains(&lb) {
                    t.add(argv!["lb-del", lb]);
                }
            }
        }
    }
    t
}

fn create_router(t: &mut Txn, name: &str, cur: &NbRouters) {
    t.add(argv!["lr-add", name]);
    t.add(argv![
        "set",
        "logical_router",
        name,
        "external_ids:vendor=kube-ovn",
        format!("external_ids:{}=\"true\"", q(OWNER))
    ]);
    for (lb, proto, session) in load_balancers(name) {
        if cur.load_balancers.contains(&lb) {
            continue;
        }
        let mut c = argv![
            "create",
            "load_balancer",
            format!("name={lb}"),
            format!("protocol={proto}"),
            "external_ids:vendor=kube-ovn"
        ];
        if session {
            c.push("selection_fields=ip_src".into());
            c.push("options:affinity_timeout=10800".into());
        }
        t.add(c);
    }
}

/// `CreatePeerRouterPort`: `<router>-<remote>` peered with `<remote>-<router>`.
fn add_peer_port(t: &mut Txn, router: &str, remote: &str, networks: &[String]) {
    let port = format!("{router}-{remote}");
    let mut c = argv![
        "lrp-add",
        router,
        port,
        crate::plan::mac_for(&format!("peer/{router}/{remote}"))
    ];
    c.extend(networks.iter().cloned());
    c.push(format!("peer={remote}-{router}"));
    t.add(c);
    t.add(argv![
        "set",
        "logical_router_port",
        port,
        format!("external_ids:{}={}", q(PEERING), q(remote))
    ]);
}

fn add_route(t: &mut Txn, router: &str, r: &Route) {
    let id = t.id("vr");
    t.add(argv![
        format!("--id={id}"),
        "create",
        "logical_router_static_route",
        format!("ip_prefix={}", q(&r.prefix)),
        format!("nexthop={}", q(&r.nexthop)),
        format!("policy={}", r.policy),
        format!("route_table={}", q(&r.table)),
        "external_ids:vendor=kube-ovn",
        format!("external_ids:{}=\"true\"", q(OWNER))
    ]);
    t.add(argv!["add", "logical_router", router, "static_routes", id]);
}

fn add_policy(t: &mut Txn, router: &str, p: &Policy) {
    let id = t.id("vp");
    let mut c = argv![
        format!("--id={id}"),
        "create",
        "logical_router_policy",
        format!("priority={}", p.priority),
        format!("match={}", q(&p.matches)),
        format!("action={}", p.action),
        "external_ids:vendor=kube-ovn",
        format!("external_ids:{}=\"true\"", q(OWNER))
    ];
    if !p.nexthops.is_empty() {
        let list: Vec<String> = p.nexthops.iter().map(|n| q(n)).collect();
        c.push(format!("nexthops=[{}]", list.join(",")));
    }
    t.add(c);
    t.add(argv!["add", "logical_router", router, "policies", id]);
}

/// The status kube-ovn-controller patches onto a VPC it created; a route list it
/// cannot write is reported in `conditions`.
pub fn status_writes(w: &World) -> Vec<ApiWrite> {
    let mut out = Vec::new();
    for vpc in &w.vpcs {
        let name = world::name(vpc);
        if name.is_empty() {
            continue;
        }
        let subnets: Vec<&str> = w
            .subnets
            .values()
            .filter(|s| {
                let v = s["spec"]["vpc"].as_str().unwrap_or("");
                v == name || (v.is_empty() && name == CLUSTER_ROUTER)
            })
            .map(world::name)
            .collect();
        let problem = wanted_routes(vpc)
            .err()
            .or(wanted_policies(vpc).err())
            .or(wanted_peers(vpc).err());
        let mut want = serde_json::Map::new();
        if !planned(name) {
            let lbs = load_balancers(name);
            let lb = |i: usize| json!(lbs.get(i).map(|l| l.0.clone()).unwrap_or_default());
            for (k, v) in [
                ("router", json!(name)),
                ("standby", json!(true)),
                ("default", json!(false)),
                ("subnets", json!(subnets)),
                ("tcpLoadBalancer", lb(0)),
                ("tcpSessionLoadBalancer", lb(1)),
                ("udpLoadBalancer", lb(2)),
                ("udpSessionLoadBalancer", lb(3)),
                ("sctpLoadBalancer", lb(4)),
                ("sctpSessionLoadBalancer", lb(5)),
            ] {
                want.insert(k.into(), v);
            }
        }
        let cond = json!([{
            "type": "Ready",
            "status": if problem.is_none() { "True" } else { "False" },
            "reason": if problem.is_none() { "Synced" } else { "InvalidRoutes" },
            "message": problem.clone().unwrap_or_default(),
        }]);
        let had_conditions = vpc["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        if !planned(name) || problem.is_some() || had_conditions {
            want.insert("conditions".into(), cond);
        }
        // Kube-OVN records the peerings it made (`status.vpcPeerings`)
        if let Ok(peers) = wanted_peers(vpc) {
            let list: Vec<&String> = peers.keys().collect();
            if !planned(name) || !list.is_empty() || !vpc["status"]["vpcPeerings"].is_null() {
                want.insert("vpcPeerings".into(), json!(list));
            }
        }
        let have = &vpc["status"];
        let same = want.iter().all(|(k, v)| {
            if k == "conditions" {
                have[k][0]["status"] == v[0]["status"] && have[k][0]["message"] == v[0]["message"]
            } else {
                &have[k] == v
            }
        });
        if !same {
            out.push(ApiWrite {
                method: "PATCH",
                path: format!("/apis/kubeovn.io/v1/vpcs/{name}/status"),
                body: Some(json!({ "status": want })),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    fn world(vpcs: Vec<Value>) -> World {
        let mut w = World::default();
        w.vpcs = vpcs;
        w
    }

    #[test]
    fn a_new_vpc_gets_its_router_load_balancers_routes_and_policies() {
        let vpc = json!({"metadata": {"name": "vpc2"}, "spec": {
            "staticRoutes": [{"cidr": "0.0.0.0/0", "nextHopIP": "10.0.1.254", "policy": "policyDst"}],
            "policyRoutes": [{"priority": 31000, "match": "ip4.dst == 10.99.0.7", "action": "drop"},
                             {"priority": 30000, "match": "ip4.src == 10.0.1.0/24", "action": "reroute", "nextHopIP": "10.0.1.253"}]}});
        let c = plan_changes(&world(vec![vpc.clone()]), &NbRouters::default())
            .argv()
            .join(" ");
        for want in [
            "lr-add vpc2",
            "name=vpc-vpc2-tcp-load protocol=tcp",
            "name=vpc-vpc2-udp-sess-load protocol=udp",
            "ip_prefix=\"0.0.0.0/0\" nexthop=\"10.0.1.254\" policy=dst-ip",
            "add logical_router vpc2 static_routes",
            "priority=31000 match=\"ip4.dst == 10.99.0.7\" action=drop",
            "action=reroute external_ids:vendor=kube-ovn",
            "nexthops=[\"10.0.1.253\"]",
        ] {
            assert!(c.contains(want), "{want} missing from {c}");
        }
        let st = status_writes(&world(vec![vpc]));
        let body = st[0].body.clone().unwrap_or_default();
        assert_eq!(body["status"]["tcpLoadBalancer"], "vpc-vpc2-tcp-load");
        assert_eq!(body["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn only_this_controllers_rows_change_and_a_planned_router_is_never_made_or_removed() {
        let mut cur = NbRouters::default();
        let kept = Policy {
            priority: 31000,
            matches: "ip4.dst == 1.2.3.4".into(),
            action: "drop".into(),
            nexthops: vec![],
        };
        let stale = Policy {
            priority: 100,
            matches: "ip4".into(),
            action: "allow".into(),
            nexthops: vec![],
        };
        cur.routers.insert(
            "vpc1".into(),
            RouterRows {
                ours: false,
                policies: vec![("u-kept".into(), kept), ("u-stale".into(), stale)],
                ..RouterRows::default()
            },
        );
        cur.routers.insert(
            "vpc-old".into(),
            RouterRows {
                ours: true,
                ..RouterRows::default()
            },
        );
        cur.routers
            .insert("someone-elses".into(), RouterRows::default());
        let vpc1 = json!({"metadata": {"name": "vpc1"}, "spec": {
            "policyRoutes": [{"priority": 31000, "match": "ip4.dst == 1.2.3.4", "action": "drop"}]}});
        let c = plan_changes(&world(vec![vpc1]), &cur).argv().join(" ");
        assert!(!c.contains("lr-add"), "{c}");
        assert!(
            c.contains("remove logical_router vpc1 policies u-stale"),
            "{c}"
        );
        assert!(
            !c.contains("u-kept") && !c.contains("priority=31000"),
            "{c}"
        );
        assert!(
            c.contains("lr-del vpc-old") && !c.contains("someone-elses"),
            "{c}"
        );
    }

    /// Kube-OVN's `CreatePeerRouterPort` for each `spec.vpcPeerings` entry; a
    /// peering taken out of the spec loses its port, a changed address is set.
    #[test]
    fn a_vpc_peering_becomes_a_peered_router_port() {
        let vpc = |peerings: Value| json!({"metadata": {"name": "vpc1"}, "spec": {"vpcPeerings": peerings}});
        let mut cur = NbRouters::default();
        cur.routers.insert("vpc1".into(), RouterRows::default());
        let c = plan_changes(
            &world(vec![vpc(
                json!([{"remoteVpc": "vpc2", "localConnectIP": "169.254.0.1/30"}]),
            )]),
            &cur,
        )
        .argv()
        .join(" ");
        assert!(
            c.contains("lrp-add vpc1 vpc1-vpc2 ") && c.contains("169.254.0.1/30 peer=vpc2-vpc1"),
            "{c}"
        );
        assert!(
            c.contains("\"sandbox.kubectl-ko.io/peering\"=\"vpc2\""),
            "{c}"
        );
        let rows = cur.routers.get_mut("vpc1").unwrap();
        rows.peers
            .insert("vpc2".into(), vec!["169.254.0.1/30".into()]);
        rows.peers
            .insert("vpc3".into(), vec!["169.254.1.1/30".into()]);
        let c = plan_changes(
            &world(vec![vpc(
                json!([{"remoteVpc": "vpc2", "localConnectIP": "169.254.0.5/30"}]),
            )]),
            &cur,
        )
        .argv()
        .join(" ");
        assert!(c.contains("lrp-del vpc1-vpc3"), "{c}");
        assert!(
            c.contains("set logical_router_port vpc1-vpc2 networks=[\"169.254.0.5/30\"]"),
            "{c}"
        );
        assert!(!c.contains("lrp-add"), "{c}");
        let bad = vpc(json!([{"remoteVpc": "vpc2", "localConnectIP": "169.254.0.1"}]));
        assert!(wanted_peers(&bad).unwrap_err().contains("localConnectIP"));
        let st = status_writes(&world(vec![vpc(
            json!([{"remoteVpc": "vpc2", "localConnectIP": "169.254.0.1/30"}]),
        )]));
        let body = st[0].body.clone().unwrap_or_default();
        assert_eq!(body["status"]["vpcPeerings"], json!(["vpc2"]));
    }

    #[test]
    fn routes_that_cannot_be_written_are_reported() {
        let bad = json!({"metadata": {"name": "vpc3"}, "spec": {
            "policyRoutes": [{"priority": 1, "match": "ip4", "action": "reroute"}]}});
        assert!(
            wanted_policies(&bad)
                .unwrap_err()
                .contains("reroute needs nextHopIP")
        );
        let st = status_writes(&world(vec![bad]));
        let body = st[0].body.clone().unwrap_or_default();
        assert_eq!(body["status"]["conditions"][0]["status"], "False");
        let bad_route = json!({"spec": {"staticRoutes": [{"cidr": "x", "nextHopIP": "1.1.1.1"}]}});
        assert!(wanted_routes(&bad_route).is_err());
    }
}
