//! The router objects that decided a routed packet: the static route, the
//! router policy and the NAT rules whose logical flows the trace hit (joined
//! through the flow's `stage-hint`), with what Kube-OVN made each one for.

use serde::{Deserialize, Serialize};

use super::nb::{Nat, NbSnapshot, RouterPolicy, StaticRoute};

/// A Logical_Router_Static_Route the packet was routed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRef {
    pub uuid: String,
    pub router: Option<String>,
    pub prefix: String,
    pub nexthop: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_port: Option<String>,
    /// `dst-ip` or `src-ip`.
    pub policy: String,
    /// `main` for the default table.
    pub table: String,
    /// What Kube-OVN uses it for, when it is one of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// A Logical_Router_Policy the packet matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterPolicyRef {
    pub uuid: String,
    pub router: Option<String>,
    pub priority: i64,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub action: String,
    pub nexthops: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// A NAT rule whose flow the packet went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRef {
    pub uuid: String,
    pub router: Option<String>,
    /// `snat`, `dnat` or `dnat_and_snat`.
    #[serde(rename = "type")]
    pub nat_type: String,
    pub logical_ip: String,
    pub external_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_port: Option<String>,
    /// The logical stage that applied it (`lr_out_snat`, `lr_in_dnat`...).
    pub stage: String,
}

/// What routed the packet; absent when it never crossed a router rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The first static route hit (a connected subnet has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteRef>,
    /// The first router policy hit (Kube-OVN reroutes override the route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<RouterPolicyRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub nat: Vec<NatRef>,
}

impl Routing {
    pub fn is_empty(&self) -> bool {
        self.route.is_none() && self.policy.is_none() && self.nat.is_empty()
    }
}

/// The router object behind a flow of `stage` with `stage-hint` `hint`.
pub enum RouterObject {
    Route(RouteRef),
    Policy(RouterPolicyRef),
    Nat(NatRef),
}

/// Only router stages name router rows: a switch flow's hint is never one.
pub fn object_of(stage: &str, hint: &str, nb: &NbSnapshot) -> Option<RouterObject> {
    if !stage.starts_with("lr_") {
        return None;
    }
    if stage.starts_with("lr_in_ip_routing") {
        return nb
            .static_route(hint)
            .map(|r| RouterObject::Route(route_ref(r, nb)));
    }
    if stage.starts_with("lr_in_policy") {
        return nb
            .router_policy(hint)
            .map(|p| RouterObject::Policy(policy_ref(p, nb)));
    }
    if stage.contains("nat") {
        return nb
            .nat(hint)
            .map(|n| RouterObject::Nat(nat_ref(n, stage, nb)));
    }
    None
}

impl RouterObject {
    /// The `from` line of a stage (`from static route …`).
    pub fn describe(&self) -> String {
        match self {
            RouterObject::Route(r) => r.describe(),
            RouterObject::Policy(p) => p.describe(),
            RouterObject::Nat(n) => n.describe(),
        }
    }
}

/// ` (router <name><extra>)`, the suffix every description of a router's
/// row ends with.
pub fn router_suffix(router: &Option<String>, extra: &str) -> String {
    match router {
        Some(r) => format!(" (router {r}{extra})"),
        None if !extra.is_empty() => format!(" ({})", extra.trim_start_matches(", ")),
        None => String::new(),
    }
}

fn purpose_suffix(p: &Option<String>) -> String {
    p.as_ref().map(|p| format!(": {p}")).unwrap_or_default()
}

impl RouteRef {
    /// `static route 0.0.0.0/0 via 100.64.0.1 (router ovn-cluster, table main): …`
    pub fn describe(&self) -> String {
        let src = if self.policy == "src-ip" {
            " (by source)"
        } else {
            ""
        };
        let port = self
            .output_port
            .as_ref()
            .map(|p| format!(" out {p}"))
            .unwrap_or_default();
        format!(
            "static route {}{src} via {}{port}{}{}",
            self.prefix,
            self.nexthop,
            router_suffix(&self.router, &format!(", table {}", self.table)),
            purpose_suffix(&self.purpose)
        )
    }
}

impl RouterPolicyRef {
    /// `router policy 29000 reroute <match> → 100.64.0.2 (router ovn-cluster): …`
    pub fn describe(&self) -> String {
        let to = if self.nexthops.is_empty() {
            String::new()
        } else {
            format!(" → {}", self.nexthops.join(", "))
        };
        format!(
            "router policy {} {} {}{to}{}{}",
            self.priority,
            self.action,
            self.match_expr,
            router_suffix(&self.router, ""),
            purpose_suffix(&self.purpose)
        )
    }
}

impl NatRef {
    /// `NAT snat 10.16.0.0/16 → 172.18.0.9 (router ovn-cluster)`
    pub fn describe(&self) -> String {
        let port = self
            .logical_port
            .as_ref()
            .map(|p| format!(" on port {p}"))
            .unwrap_or_default();
        format!(
            "NAT {} {} → {}{port}{}",
            self.nat_type,
            self.logical_ip,
            self.external_ip,
            router_suffix(&self.router, "")
        )
    }
}

fn route_ref(r: &StaticRoute, nb: &NbSnapshot) -> RouteRef {
    let table = if r.route_table.is_empty() {
        "main".to_string()
    } else {
        r.route_table.clone()
    };
    let kube_ovn = r
        .external_ids
        .get("vendor")
        .is_some_and(|v| v == "kube-ovn");
    let default = r.ip_prefix == "0.0.0.0/0" || r.ip_prefix == "::/0";
    // Kube-OVN's own default route points at the join network's gateway (the
    // node side); any other route in a VPC comes from the Vpc's staticRoutes.
    let purpose = match (kube_ovn, default) {
        (true, true) => Some(
            "Kube-OVN default route of the VPC to the join subnet's gateway (traffic leaving the cluster network goes to a node)".into(),
        ),
        (true, false) => Some("Kube-OVN route (Vpc spec.staticRoutes or a subnet gateway)".into()),
        _ => None,
    };
    RouteRef {
        uuid: r.uuid.clone(),
        router: nb.router_of(&r.uuid).map(String::from),
        prefix: r.ip_prefix.clone(),
        nexthop: r.nexthop.clone(),
        output_port: r.output_port.clone(),
        policy: if r.policy.is_empty() {
            "dst-ip".into()
        } else {
            r.policy.clone()
        },
        table,
        purpose,
    }
}

fn policy_ref(p: &RouterPolicy, nb: &NbSnapshot) -> RouterPolicyRef {
    RouterPolicyRef {
        uuid: p.uuid.clone(),
        router: nb.router_of(&p.uuid).map(String::from),
        priority: p.priority,
        match_expr: p.match_expr.clone(),
        action: p.action.clone(),
        nexthops: p.nexthops.clone(),
        purpose: policy_purpose(p),
    }
}

/// Kube-OVN's policy priorities (pkg/util/const.go; set in
/// pkg/controller/subnet.go and node.go), only for rows Kube-OVN wrote.
fn policy_purpose(p: &RouterPolicy) -> Option<String> {
    if p.external_ids.get("vendor").is_none_or(|v| v != "kube-ovn") {
        return None;
    }
    let ids = &p.external_ids;
    let node = ids.get("node");
    let subnet = ids.get("subnet");
    match (p.priority, p.action.as_str()) {
        (31000, "allow") => Some(format!(
            "Kube-OVN: traffic to the CIDR of subnet {} stays inside the cluster network (skips the gateway reroutes)",
            subnet.map(String::as_str).unwrap_or("?")
        )),
        (30000, "reroute") => Some(format!(
            "Kube-OVN: traffic to the IP of node {} goes to that node over the join subnet",
            node.map(String::as_str).unwrap_or("?")
        )),
        (29000, "reroute") => Some(match (subnet, node) {
            (Some(s), Some(n)) => format!(
                "Kube-OVN distributed gateway of subnet {s}: pods of that subnet on node {n} leave the cluster through node {n}"
            ),
            (Some(s), None) => format!(
                "Kube-OVN centralized gateway of subnet {s}: its pods leave the cluster through the gateway node(s)"
            ),
            _ => {
                "Kube-OVN subnet gateway reroute (to the node that is the subnet's gateway)".into()
            }
        }),
        // the other fixed priorities of pkg/util/const.go, named by feature
        (29090 | 29100 | 29150, _) => Some("Kube-OVN VpcEgressGateway policy".into()),
        (29190 | 29200, _) => Some("Kube-OVN VPC NAT gateway policy".into()),
        (29250, _) => Some("Kube-OVN north gateway of a subnet (spec.northGateway)".into()),
        (29400 | 30050 | 30060, _) => {
            Some("Kube-OVN underlay-to-overlay interconnection (u2oInterconnection)".into())
        }
        (29500, _) => Some("Kube-OVN OVN-IC (interconnection with another cluster)".into()),
        (30100, _) => Some("Kube-OVN NodeLocal DNSCache policy".into()),
        _ => Some("Kube-OVN policy (Vpc spec.policyRoutes or a Kube-OVN feature)".into()),
    }
}

fn nat_ref(n: &Nat, stage: &str, nb: &NbSnapshot) -> NatRef {
    NatRef {
        uuid: n.uuid.clone(),
        router: nb.router_of(&n.uuid).map(String::from),
        nat_type: n.nat_type.clone(),
        logical_ip: n.logical_ip.clone(),
        external_ip: n.external_ip.clone(),
        logical_port: n.logical_port.clone(),
        stage: stage.to_string(),
    }
}
