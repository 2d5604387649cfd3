//! Subnets created through the API -> their logical switch, router port pair, load
//! balancers and (in `ovn-cluster`) the 31000 allow and the distributed gateway's
//! per-node port groups and 29000 reroutes, as kube-ovn-controller's `handleAddOrUpdateSubnet`
//! writes them; then the object's spec defaults and `Validated`/`Ready` conditions.
//! Planned subnets are `up`'s and never touched. A subnet's rows go when its object
//! is gone and no pod is left on it (Kube-OVN holds the object until then).
//!
//! What the sandbox can realise is one rule, `api_subnet::from_cr`.

use std::collections::{BTreeMap, BTreeSet};

use ko_ovn::ovsdb_json::{self, Row};
use serde_json::{Value, json};

use super::nb_read::NbRead;
use super::service::ApiWrite;
use super::world::{self, World};
use crate::api_subnet::{self, READY};
use crate::argv;
use crate::ctx::Ctx;
use crate::nb::{self, Txn, q};
use crate::plan::{CLUSTER_ROUTER, Plan, Subnet};

/// The external_ids key that marks the switches this controller created.
pub const OWNER: &str = "sandbox.kubectl-ko.io/controller";
/// Beside it, the subnet's CIDRs: the node routes to take away with the switch.
pub const CIDRS: &str = "sandbox.kubectl-ko.io/cidr";

/// What the NB holds that this step compares against.
#[derive(Debug, Default)]
pub struct NbSubnets {
    /// Switch name -> its external_ids.
    pub switches: BTreeMap<String, BTreeMap<String, String>>,
    /// Cluster router policies tagged `subnet=`: (uuid, subnet, what it does).
    pub policies: Vec<(String, String, PolicyKey)>,
    pub lsps: BTreeSet<String>,
    pub port_groups: BTreeSet<String>,
    pub load_balancers: BTreeSet<String>,
    pub routers: BTreeSet<String>,
}

/// Beside them, an underlay subnet's gateway on the gateway host:
/// `<interface> <gw4>/<len>[,<gw6>/<len>]` (see [`gateway_lines`]).
pub const GATEWAY: &str = "sandbox.kubectl-ko.io/gateway";

/// A policy by what it does: (priority, match, action, nexthops).
pub type PolicyKey = (u32, String, String, Vec<String>);

fn key_of(r: &nb::PolicyRow) -> PolicyKey {
    (
        r.priority,
        r.matches.clone(),
        r.action.to_string(),
        r.nexthop.iter().cloned().collect(),
    )
}

fn parse(nb: &NbRead) -> NbSubnets {
    let (switches, policies, pgs) = (
        nb.rows("Logical_Switch"),
        nb.rows("Logical_Router_Policy"),
        nb.rows("Port_Group"),
    );
    let (lbs, routers, lsps) = (
        nb.rows("Load_Balancer"),
        nb.rows("Logical_Router"),
        nb.rows("Logical_Switch_Port"),
    );
    let s = |r: &Row, c: &str| ovsdb_json::cell_str(r, c).unwrap_or_default();
    let map = |r: &Row, c: &str| r.get(c).map(ovsdb_json::map).unwrap_or_default();
    NbSubnets {
        switches: switches
            .iter()
            .map(|r| (s(r, "name"), map(r, "external_ids")))
            .collect(),
        policies: policies
            .iter()
            .filter_map(|r| {
                let subnet = map(r, "external_ids").remove("subnet")?;
                let mut nexthops = r.get("nexthops").map(ovsdb_json::set).unwrap_or_default();
                nexthops.sort();
                let key = (
                    s(r, "priority").parse().unwrap_or(0),
                    s(r, "match"),
                    s(r, "action"),
                    nexthops,
                );
                Some((s(r, "_uuid"), subnet, key))
            })
            .collect(),
        lsps: lsps.iter().map(|r| s(r, "name")).collect(),
        port_groups: pgs.iter().map(|r| s(r, "name")).collect(),
        load_balancers: lbs.iter().map(|r| s(r, "name")).collect(),
        routers: routers.iter().map(|r| s(r, "name")).collect(),
    }
}

/// Write the switches of new subnets and remove those of deleted ones (one
/// transaction) against what `read` holds; the API writes for the objects' spec
/// and status, and whether the NB was written to.
pub fn sync(ctx: &Ctx, w: &World, read: &NbRead) -> (Vec<ApiWrite>, bool) {
    let cur = parse(read);
    let (txn, created) = plan_changes(&ctx.plan, w, &cur);
    let mut realised: BTreeSet<String> = cur.switches.keys().cloned().collect();
    let wrote = !txn.is_empty();
    if wrote {
        match nb::nbctl_timeout(ctx, &txn.argv(), 20) {
            Ok(_) => {
                eprintln!("controller: subnet switches updated");
                realised.extend(created);
                host_routes(ctx, w, &cur);
            }
            // the objects say so (Ready=False) and the next pass tries again
            Err(e) => eprintln!("controller: writing the switches of API subnets: {e:#}"),
        }
    }
    (object_writes(&ctx.plan, w, &realised, &cur.routers), wrote)
}

/// The transaction that brings the NB's API-subnet rows in line with the objects,
/// and the switches it creates (a subnet waits for its VPC's router).
pub fn plan_changes(plan: &Plan, w: &World, cur: &NbSubnets) -> (Txn, BTreeSet<String>) {
    let mut t = Txn::default();
    let mut created = BTreeSet::new();
    for (_, sub) in api_subnet::unplanned(plan, w.subnets.values(), &w.vlans) {
        let Ok(s) = sub else { continue };
        if !cur.switches.contains_key(&s.name) && cur.routers.contains(&s.vpc) {
            create(&mut t, plan, &s, cur);
            created.insert(s.name.clone());
        } else if cur.switches.contains_key(&s.name)
            && s.vpc == CLUSTER_ROUTER
            && s.router.is_some()
        {
            follow_gateway(&mut t, plan, w, &s, cur);
        }
    }
    for (ls, ext) in &cur.switches {
        if removable(plan, w, ls, ext) {
            remove(&mut t, plan, ls, ext, cur);
        }
    }
    (t, created)
}

/// A switch this controller created whose object is gone (or no longer realisable)
/// and that no pod holds any more.
fn removable(plan: &Plan, w: &World, ls: &str, ext: &BTreeMap<String, String>) -> bool {
    let ours = ext.get(OWNER).is_some_and(|v| v == "true");
    let wanted = w
        .subnets
        .get(ls)
        .is_some_and(|o| api_subnet::from_cr(plan, o, &w.vlans).is_ok());
    ours && !wanted && plan.subnet(ls).is_none() && pods_on(w, ls) == 0
}

fn create(t: &mut Txn, plan: &Plan, s: &Subnet, cur: &NbSubnets) {
    nb::switch(t, s);
    t.add(argv![
        "set",
        "logical_switch",
        s.name,
        format!("external_ids:{}=\"true\"", q(OWNER)),
        format!("external_ids:{}={}", q(CIDRS), q(&s.cidr_block()))
    ]);
    // the VPC's load balancers, as Kube-OVN attaches them to every subnet of it
    let lbs = super::vpc::load_balancer_names(&s.vpc);
    for lb in lbs.iter().filter(|lb| cur.load_balancers.contains(*lb)) {
        t.add(argv!["ls-lb-add", s.name, lb]);
    }
    if let Some(gw) = underlay_gateway(s) {
        t.add(argv![
            "set",
            "logical_switch",
            s.name,
            format!("external_ids:{}={}", q(GATEWAY), q(&gw))
        ]);
    }
    // an underlay subnet has no router port: no policies, no gateway groups
    if s.vpc == CLUSTER_ROUTER && s.router.is_some() {
        for n in &plan.nodes {
            if !cur.port_groups.contains(&nb::gateway_port_group(s, n))
                && nb::has_distributed_gateway(s)
            {
                nb::add_gateway_port_group(t, s, n, Vec::new());
            }
        }
        nb::subnet_policies(t, s, &plan.nodes);
    }
}

/// The gateway of an existing subnet changed (distributed <-> centralized, another
/// gateway node): its policies are written again, and a distributed gateway's
/// per-node groups get the subnet's pods on that node, as Kube-OVN reconciles them.
fn follow_gateway(t: &mut Txn, plan: &Plan, w: &World, s: &Subnet, cur: &NbSubnets) {
    let want: BTreeSet<PolicyKey> = nb::subnet_policy_rows(s, &plan.nodes)
        .iter()
        .map(key_of)
        .collect();
    let have: BTreeSet<PolicyKey> = cur
        .policies
        .iter()
        .filter(|(_, sub, _)| *sub == s.name)
        .map(|(_, _, k)| k.clone())
        .collect();
    if want == have {
        return;
    }
    for (uuid, _, _) in cur.policies.iter().filter(|(_, sub, _)| *sub == s.name) {
        t.add(argv!["--if-exists", "lr-policy-del", CLUSTER_ROUTER, uuid]);
    }
    nb::subnet_policies(t, s, &plan.nodes);
    if !nb::has_distributed_gateway(s) {
        return;
    }
    for n in &plan.nodes {
        let pg = nb::gateway_port_group(s, n);
        let members: Vec<String> = w
            .pods
            .iter()
            .filter(|p| p["spec"]["nodeName"].as_str() == Some(n.name.as_str()))
            .filter(|p| {
                world::annotation(p, "ovn.kubernetes.io/logical_switch") == Some(s.name.as_str())
            })
            .filter_map(world::pod_lsp)
            .filter(|l| cur.lsps.contains(l))
            .collect();
        if cur.port_groups.contains(&pg) {
            let mut c = argv!["pg-set-ports", pg];
            if members.is_empty() {
                c = argv!["clear", "port_group", pg, "ports"];
            } else {
                c.extend(members);
            }
            t.add(c);
        } else {
            nb::add_gateway_port_group(t, s, n, members);
        }
    }
}

fn remove(t: &mut Txn, plan: &Plan, ls: &str, ext: &BTreeMap<String, String>, cur: &NbSubnets) {
    let router = ext
        .get("vpc")
        .cloned()
        .unwrap_or_else(|| CLUSTER_ROUTER.to_string());
    t.add(argv!["--if-exists", "lrp-del", format!("{router}-{ls}")]);
    t.add(argv!["--if-exists", "ls-del", ls]);
    for (uuid, _, _) in cur.policies.iter().filter(|(_, s, _)| s == ls) {
        t.add(argv!["--if-exists", "lr-policy-del", CLUSTER_ROUTER, uuid]);
    }
    for n in &plan.nodes {
        let pg = nb::pg_name(&format!("{ls}.{}", n.name));
        if cur.port_groups.contains(&pg) {
            t.add(argv!["pg-del", pg]);
        }
    }
}

/// What kube-ovn-cni does on every node for a cluster-router subnet: route its CIDRs
/// into OVN through ovn0; and the sandbox's external host routes them back through
/// the first node, as it does the planned pod CIDR. Added for the switches just
/// created, taken away with the switches just removed (the planned ones never).
fn host_routes(ctx: &Ctx, w: &World, cur: &NbSubnets) {
    let plan = &ctx.plan;
    let mut changes: Vec<(String, bool)> = Vec::new();
    let mut gateways: Vec<String> = Vec::new();
    for (_, sub) in api_subnet::unplanned(plan, w.subnets.values(), &w.vlans) {
        let Ok(s) = sub else { continue };
        if cur.switches.contains_key(&s.name) {
            continue;
        }
        match underlay_gateway(&s) {
            Some(gw) => gateways.extend(gateway_lines(&gw, true)),
            None if s.vpc == CLUSTER_ROUTER => changes.push((s.cidr_block(), true)),
            None => {}
        }
    }
    for (ls, ext) in &cur.switches {
        if !removable(plan, w, ls, ext) {
            continue;
        }
        if let Some(gw) = ext.get(GATEWAY) {
            gateways.extend(gateway_lines(gw, false));
        } else if ext.get("vpc").is_none_or(|v| v == CLUSTER_ROUTER)
            && let Some(c) = ext.get(CIDRS)
        {
            changes.push((c.clone(), false));
        }
    }
    for (netns, lines) in route_lines(plan, &changes) {
        if let Err(e) = crate::exec::ip_batch(Some(&netns), &lines) {
            eprintln!("controller: routes in {netns}: {e:#}");
        }
    }
    if let Err(e) = crate::exec::ip_batch(Some(&plan.netns_gw), &gateways) {
        eprintln!("controller: gateway host: {e:#}");
    }
}

/// Where the gateway host answers for an underlay subnet's gateway: on `eth0`, its
/// leg on the provider bridge (only untagged VLANs are realised, see
/// `api_subnet`), as `<interface> <gw4>/<len>[,<gw6>/<len>]`. None for an overlay
/// subnet.
pub fn underlay_gateway(s: &Subnet) -> Option<String> {
    s.vlan.as_ref()?;
    let mut addrs = vec![format!("{}/{}", s.gw4, s.prefix4())];
    if let Some(g6) = &s.gw6 {
        addrs.push(format!("{g6}/{}", s.prefix6()));
    }
    Some(format!("eth0 {}", addrs.join(",")))
}

/// The `ip` lines in the gateway host's netns that add (or take away) the
/// addresses of [`underlay_gateway`].
pub fn gateway_lines(gw: &str, add: bool) -> Vec<String> {
    let Some((dev, addrs)) = gw.split_once(' ') else {
        return Vec::new();
    };
    let verb = if add { "replace" } else { "del" };
    addrs
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|a| format!("addr {verb} {a} dev {dev}"))
        .collect()
}

/// Per network namespace, the `ip` lines for those CIDR changes (add or delete).
pub fn route_lines(plan: &Plan, changes: &[(String, bool)]) -> Vec<(String, Vec<String>)> {
    let join = plan.subnet(crate::plan::JOIN_SUBNET);
    let first = plan.nodes.first();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (cidrs, add) in changes {
        for cidr in cidrs.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let v6 = cidr.contains(':');
            let verb = if *add { "replace" } else { "del" };
            let via_join = join.and_then(|j| {
                if v6 {
                    j.gw6.clone()
                } else {
                    Some(j.gw4.clone())
                }
            });
            if let Some(gw) = via_join {
                for n in &plan.nodes {
                    // the node's InternalIP as source, as kube-ovn-cni's routes have it
                    let src = if v6 {
                        n.ip6.clone()
                    } else {
                        Some(n.ip4.clone())
                    };
                    let src = match (add, src) {
                        (true, Some(ip)) => format!(" src {ip}"),
                        _ => String::new(),
                    };
                    out.entry(n.netns.clone())
                        .or_default()
                        .push(format!("route {verb} {cidr} via {gw} dev ovn0{src}"));
                }
            }
            let via_node = first.and_then(|n| {
                if v6 {
                    n.ip6.clone()
                } else {
                    Some(n.ip4.clone())
                }
            });
            if let Some(nh) = via_node {
                out.entry(plan.external.netns.clone())
                    .or_default()
                    .push(format!("route {verb} {cidr} via {nh}"));
            }
        }
    }
    out.into_iter().collect()
}

/// Pods Kube-OVN placed on the switch (they hold the subnet, as its finalizer does).
fn pods_on(w: &World, ls: &str) -> usize {
    w.pods
        .iter()
        .filter(|p| world::annotation(p, "ovn.kubernetes.io/logical_switch") == Some(ls))
        .count()
}

/// Spec defaults and conditions, written only where they differ (each write wakes
/// the controller again). `realised`: the switches the NB has; `routers`: its routers.
pub fn object_writes(
    plan: &Plan,
    w: &World,
    realised: &BTreeSet<String>,
    routers: &BTreeSet<String>,
) -> Vec<ApiWrite> {
    let mut out = Vec::new();
    for (obj, sub) in api_subnet::unplanned(plan, w.subnets.values(), &w.vlans) {
        let name = world::name(obj);
        if name.is_empty() {
            continue;
        }
        let base = format!("/apis/kubeovn.io/v1/subnets/{name}");
        if let Ok(s) = &sub {
            let defaults = spec_defaults(s, &obj["spec"]);
            if !defaults.is_empty() {
                out.push(ApiWrite {
                    method: "PATCH",
                    path: base.clone(),
                    body: Some(json!({ "spec": defaults })),
                });
            }
        }
        let (validated, ready, message) = match &sub {
            Ok(_) if realised.contains(name) => (true, true, String::new()),
            Ok(s) if !routers.contains(&s.vpc) => (
                true,
                false,
                format!("VPC {} does not exist (no logical router {0})", s.vpc),
            ),
            Ok(_) => (
                true,
                false,
                "its logical switch could not be written to the NB (see the controller log)"
                    .to_string(),
            ),
            Err(why) => (false, false, why.clone()),
        };
        let want = [
            condition(
                "Validated",
                validated,
                if validated {
                    "ValidatedLogicalSwitch"
                } else {
                    "ValidateLogicalSwitchFailed"
                },
                &message,
            ),
            condition(
                READY,
                ready,
                if ready {
                    "ResetLogicalSwitchAclSuccess"
                } else {
                    "NotRealised"
                },
                &message,
            ),
        ];
        let have = obj["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let same = want.iter().all(|c| {
            have.iter().any(|h| {
                h["type"] == c["type"] && h["status"] == c["status"] && h["message"] == c["message"]
            })
        });
        let mut status = serde_json::Map::new();
        if !same {
            status.insert("conditions".into(), Value::Array(want.to_vec()));
        }
        if let Ok(s) = &sub
            && let Some(gw) = &s.gateway_node
            && obj["status"]["activateGateway"].as_str() != Some(gw.as_str())
        {
            status.insert("activateGateway".into(), json!(gw));
        }
        if let Ok(s) = &sub
            && ready
            && obj["status"]["v4availableIPs"].is_null()
        {
            let used = pods_on(w, name) as u64;
            status.insert("v4usingIPs".into(), json!(used));
            status.insert(
                "v4availableIPs".into(),
                json!(api_subnet::size4(&s.cidr4).saturating_sub(used)),
            );
            let (u6, a6) = match &s.cidr6 {
                Some(c6) => (used, api_subnet::size6(c6).saturating_sub(used)),
                None => (0, 0),
            };
            status.insert("v6usingIPs".into(), json!(u6));
            status.insert("v6availableIPs".into(), json!(a6));
        }
        if !status.is_empty() {
            out.push(ApiWrite {
                method: "PATCH",
                path: format!("{base}/status"),
                body: Some(json!({ "status": status })),
            });
        }
    }
    out
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastUpdateTime": now(),
        "lastTransitionTime": now(),
    })
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::plan::rfc3339(secs)
}

/// What kube-ovn-controller's `formatSubnet` fills in when the object leaves it out.
fn spec_defaults(s: &Subnet, spec: &Value) -> serde_json::Map<String, Value> {
    let mut d = serde_json::Map::new();
    let missing = |k: &str| spec[k].as_str().is_none_or(|v| v.is_empty());
    let protocol = if s.cidr6.is_some() { "Dual" } else { "IPv4" };
    for (k, v) in [
        ("provider", "ovn".to_string()),
        ("vpc", s.vpc.clone()),
        ("gatewayType", "distributed".to_string()),
        ("protocol", protocol.to_string()),
        ("gateway", s.gateway()),
    ] {
        if missing(k) {
            d.insert(k.into(), json!(v));
        }
    }
    if spec["excludeIps"].as_array().is_none_or(|a| a.is_empty()) {
        d.insert(
            "excludeIps".into(),
            json!(s.gateway().split(',').collect::<Vec<_>>()),
        );
    }
    d
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::plan;

    fn world(subnets: &[Value], pods: Vec<Value>) -> World {
        let mut w = World::default();
        for s in subnets {
            w.subnets.insert(world::name(s).to_string(), s.clone());
        }
        w.pods = pods;
        w
    }

    fn cmds(t: &Txn) -> String {
        t.argv().join(" ")
    }

    #[test]
    fn a_new_subnet_gets_its_switch_router_port_lbs_policies_and_gateway_groups() {
        let plan = plan::build("t", 2, false);
        let w = world(
            &[json!({"metadata": {"name": "s2"}, "spec": {"cidrBlock": "10.17.0.0/16"}})],
            vec![],
        );
        let mut cur = NbSubnets::default();
        cur.routers.insert("ovn-cluster".into());
        // no router vpc2 (yet): its subnet waits
        let w2 = world(
            &[
                json!({"metadata": {"name": "s3"}, "spec": {"cidrBlock": "10.18.0.0/16", "vpc": "vpc2"}}),
            ],
            vec![],
        );
        assert!(plan_changes(&plan, &w2, &cur).0.is_empty());
        cur.load_balancers.insert("cluster-tcp-loadbalancer".into());
        let c = cmds(&plan_changes(&plan, &w, &cur).0);
        for want in [
            "ls-add s2",
            "lrp-add ovn-cluster ovn-cluster-s2",
            "10.17.0.1/16",
            "lsp-set-type s2-ovn-cluster router",
            "ls-lb-add s2 cluster-tcp-loadbalancer",
            "priority=31000 match=\"ip4.dst == 10.17.0.0/16\" action=allow",
            "pg-add s2.kube.ovn.control.plane",
            "match=\"ip4.src == $s2.kube.ovn.control.plane_ip4\" action=reroute",
        ] {
            assert!(c.contains(want), "{want} missing from {c}");
        }
        assert!(
            !c.contains("cluster-udp-loadbalancer"),
            "only existing LBs are attached"
        );
        // already there: nothing to do
        cur.switches.insert("s2".into(), BTreeMap::new());
        let s = api_subnet::from_cr(&plan, &w.subnets["s2"], &[]).unwrap();
        for (i, r) in nb::subnet_policy_rows(&s, &plan.nodes).iter().enumerate() {
            cur.policies.push((format!("u{i}"), "s2".into(), key_of(r)));
        }
        assert!(plan_changes(&plan, &w, &cur).0.is_empty());
    }

    /// Kube-OVN's underlay subnet: switch and localnet port, no router port,
    /// policies or gateway groups; the gateway host answers for its gateway.
    #[test]
    fn an_underlay_subnet_gets_a_localnet_port_and_its_gateway_on_the_gateway_host() {
        let plan = plan::build("t", 2, false);
        let mut w = world(
            &[
                json!({"metadata": {"name": "ul2"}, "spec": {"cidrBlock": "172.30.5.0/24", "vlan": "v0"}}),
            ],
            vec![],
        );
        let mut cur = NbSubnets::default();
        cur.routers.insert("ovn-cluster".into());
        // no Vlan object yet: nothing is written
        assert!(plan_changes(&plan, &w, &cur).0.is_empty());
        w.vlans =
            vec![json!({"metadata": {"name": "v0"}, "spec": {"id": 0, "provider": "provider"}})];
        let c = cmds(&plan_changes(&plan, &w, &cur).0);
        for want in [
            "ls-add ul2",
            "lsp-add ul2 localnet.ul2",
            "lsp-set-type localnet.ul2 localnet",
            "network_name=provider",
            "\"sandbox.kubectl-ko.io/gateway\"=\"eth0 172.30.5.1/24\"",
        ] {
            assert!(c.contains(want), "{want} missing from {c}");
        }
        for unwanted in ["lrp-add", "priority=31000", "pg-add", "reroute", "tag="] {
            assert!(!c.contains(unwanted), "{unwanted} in {c}");
        }
        let s = api_subnet::from_cr(&plan, &w.subnets["ul2"], &w.vlans).unwrap();
        let gw = underlay_gateway(&s).unwrap();
        assert_eq!(
            gateway_lines(&gw, true),
            ["addr replace 172.30.5.1/24 dev eth0"]
        );
        assert_eq!(
            gateway_lines("eth0 172.30.6.1/24,fd00::1/120", false),
            [
                "addr del 172.30.6.1/24 dev eth0",
                "addr del fd00::1/120 dev eth0"
            ]
        );
    }

    #[test]
    fn nodes_route_a_new_cluster_subnet_into_ovn0_and_the_external_host_back() {
        let plan = plan::build("t", 2, false);
        let r = route_lines(&plan, &[("10.17.0.0/16".into(), true)]);
        assert_eq!(r.len(), 3, "two nodes and the external host: {r:?}");
        let all: Vec<&String> = r.iter().flat_map(|(_, l)| l).collect();
        let into_ovn0 = all
            .iter()
            .filter(|l| {
                l.starts_with("route replace 10.17.0.0/16 via 100.64.0.1 dev ovn0 src 172.18.")
            })
            .count();
        assert_eq!(into_ovn0, 2, "{all:?}");
        assert!(
            all.iter()
                .any(|l| l.starts_with("route replace 10.17.0.0/16 via 172.18."))
        );
        let d = route_lines(&plan, &[("10.17.0.0/16".into(), false)]);
        assert!(
            d.iter()
                .flat_map(|(_, l)| l)
                .all(|l| l.starts_with("route del 10.17.0.0/16"))
        );
    }

    #[test]
    fn a_gateway_change_rewrites_the_policies_and_fills_the_node_groups() {
        let plan = plan::build("t", 2, false);
        let central = json!({"metadata": {"name": "s2"}, "spec": {"cidrBlock": "10.17.0.0/16",
            "gatewayType": "centralized", "gatewayNode": "kube-ovn-worker"}});
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "annotations": {
            "ovn.kubernetes.io/allocated": "true", "ovn.kubernetes.io/logical_switch": "s2"}},
            "spec": {"nodeName": "kube-ovn-control-plane"}});
        let mut cur = NbSubnets::default();
        cur.routers.insert("ovn-cluster".into());
        cur.switches.insert("s2".into(), BTreeMap::new());
        cur.lsps.insert("p.n".into());
        // as the centralized subnet was written: nothing to do
        let s = api_subnet::from_cr(&plan, &central, &[]).unwrap();
        for (i, r) in nb::subnet_policy_rows(&s, &plan.nodes).iter().enumerate() {
            cur.policies.push((format!("u{i}"), "s2".into(), key_of(r)));
        }
        assert!(
            plan_changes(&plan, &world(&[central], vec![pod.clone()]), &cur)
                .0
                .is_empty()
        );
        // now distributed: the old policies go, the per-node ones come, with the pod
        let dist = json!({"metadata": {"name": "s2"}, "spec": {"cidrBlock": "10.17.0.0/16"}});
        let c = cmds(&plan_changes(&plan, &world(&[dist], vec![pod]), &cur).0);
        assert!(
            c.contains("lr-policy-del ovn-cluster u0")
                && c.contains("lr-policy-del ovn-cluster u1"),
            "{c}"
        );
        assert!(c.contains("pg-add s2.kube.ovn.control.plane p.n"), "{c}");
        assert!(c.contains("ip4.src == $s2.kube.ovn.worker_ip4"), "{c}");
    }

    #[test]
    fn a_deleted_subnet_loses_its_rows_once_no_pod_holds_it() {
        let plan = plan::build("t", 1, false);
        let mut cur = NbSubnets::default();
        let ours = BTreeMap::from([
            (OWNER.to_string(), "true".to_string()),
            ("vpc".into(), "ovn-cluster".into()),
        ]);
        cur.switches.insert("s2".into(), ours);
        cur.switches.insert("synthetic".into(), BTreeMap::new());
        cur.policies.push((
            "u1".into(),
            "s2".into(),
            (
                31000,
                "ip4.dst == 10.17.0.0/16".into(),
                "allow".into(),
                vec![],
            ),
        ));
        cur.port_groups.insert("s2.kube.ovn.control.plane".into());
        let held = json!({"metadata": {"name": "p", "annotations": {"ovn.kubernetes.io/logical_switch": "s2"}}});
        assert!(
            plan_changes(&plan, &world(&[], vec![held]), &cur)
                .0
                .is_empty()
        );
        let c = cmds(&plan_changes(&plan, &world(&[], vec![]), &cur).0);
        for want in [
            "lrp-del ovn-cluster-s2",
            "ls-del s2",
            "lr-policy-del ovn-cluster u1",
            "pg-del s2.kube.ovn.control.plane",
        ] {
            assert!(c.contains(want), "{want} missing from {c}");
        }
        assert!(
            !c.contains("synthetic"),
            "switches the controller did not create stay"
        );
    }

    #[test]
    fn status_says_ready_or_why_not_and_is_not_rewritten() {
        let plan = plan::build("t", 1, false);
        let good = json!({"metadata": {"name": "s2"}, "spec": {"cidrBlock": "10.17.0.0/16"}});
        let bad = json!({"metadata": {"name": "s3"}, "spec": {"cidrBlock": "10.16.0.0/24"}});
        let realised = BTreeSet::from(["s2".to_string()]);
        let routers = BTreeSet::from(["ovn-cluster".to_string()]);
        let elsewhere = json!({"metadata": {"name": "s4"}, "spec": {"cidrBlock": "10.19.0.0/16", "vpc": "vpc9"}});
        let writes = object_writes(
            &plan,
            &world(&[good.clone(), bad, elsewhere], vec![]),
            &realised,
            &routers,
        );
        let body = |path: &str| {
            writes
                .iter()
                .find(|w| w.path == path)
                .and_then(|w| w.body.clone())
                .unwrap_or_default()
        };
        let s2 = body("/apis/kubeovn.io/v1/subnets/s2/status");
        assert_eq!(s2["status"]["conditions"][1]["status"], "True");
        assert_eq!(s2["status"]["v4availableIPs"], 65533);
        assert_eq!(
            body("/apis/kubeovn.io/v1/subnets/s2")["spec"]["gateway"],
            "10.17.0.1"
        );
        let s3 = body("/apis/kubeovn.io/v1/subnets/s3/status");
        assert_eq!(s3["status"]["conditions"][0]["status"], "False");
        assert!(
            s3["status"]["conditions"][0]["message"]
                .as_str()
                .unwrap_or("")
                .contains("overlaps")
        );
        // once written, nothing more
        let mut done = good;
        done["spec"] = json!({"cidrBlock": "10.17.0.0/16", "provider": "ovn", "vpc": "ovn-cluster",
            "gatewayType": "distributed", "protocol": "IPv4", "gateway": "10.17.0.1", "excludeIps": ["10.17.0.1"]});
        done["status"] = s2["status"].clone();
        let s4 = body("/apis/kubeovn.io/v1/subnets/s4/status");
        assert!(
            s4["status"]["conditions"][1]["message"]
                .as_str()
                .unwrap_or("")
                .contains("VPC vpc9 does not exist")
        );
        assert!(
            object_writes(&plan, &world(&[done.clone()], vec![]), &realised, &routers).is_empty()
        );
        // a switch the NB refused: not Ready
        let w = object_writes(&plan, &world(&[done], vec![]), &BTreeSet::new(), &routers);
        assert_eq!(
            w[0].body
                .as_ref()
                .map(|b| b["status"]["conditions"][1]["status"].clone()),
            Some(json!("False"))
        );
    }
}
