//! The OVN NB content, named and tagged as kube-ovn-controller makes it
//! (kube-ovn-facts §5): routers, subnet switches with router ports, join node ports,
//! pod ports, load balancers (empty), router policies/static routes and the node and
//! deny-all port groups. Written in two transactions (topology, then what refers to
//! it). NetworkPolicies, Service VIPs, SecurityGroups and Subnet ACLs are the
//! controller's (src/controller/), for planned and later objects alike.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::argv;
use crate::ctx::Ctx;
use crate::exec::{in_pod, run_with};
use crate::node::NB_PORT;
use crate::plan::{self, CLUSTER_ROUTER, JOIN_SUBNET, Plan, Subnet};

const V: &str = "external_ids:vendor=kube-ovn";

/// An ovn-nbctl transaction: commands joined by `--`.
#[derive(Default)]
pub struct Txn {
    cmds: Vec<Vec<String>>,
    ids: usize,
}

impl Txn {
    pub fn add(&mut self, cmd: Vec<String>) -> &mut Self {
        self.cmds.push(cmd);
        self
    }
    /// A fresh `@name` for `--id=` within this transaction.
    pub fn id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("@{prefix}{}", self.ids)
    }
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
    pub fn argv(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                v.push("--".to_string());
            }
            v.extend(c.iter().cloned());
        }
        v
    }
}

/// ovsdb string literal: always quoted, so ':' '/' ',' and spaces are safe.
pub fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn nbctl(ctx: &Ctx, args: &[String]) -> Result<String> {
    nbctl_timeout(ctx, args, 60)
}

pub fn nbctl_timeout(ctx: &Ctx, args: &[String], secs: u64) -> Result<String> {
    let central = ctx
        .plan
        .central_pods()
        .first()
        .copied()
        .context("no ovn-central pod")?;
    let pid = ctx.pid(central)?;
    let mut a = argv![
        "ovn-nbctl",
        format!("--db={}", ctx.plan.remotes(NB_PORT)),
        format!("--timeout={secs}")
    ];
    a.extend_from_slice(args);
    run_with(&in_pod(pid, &a), None, Duration::from_secs(secs + 10))
}

pub fn sbctl(ctx: &Ctx, args: &[String]) -> Result<String> {
    let central = ctx
        .plan
        .central_pods()
        .first()
        .copied()
        .context("no ovn-central pod")?;
    let pid = ctx.pid(central)?;
    let mut a = argv![
        "ovn-sbctl",
        format!("--db={}", ctx.plan.remotes(crate::node::SB_PORT)),
        "--timeout=60"
    ];
    a.extend_from_slice(args);
    run_with(&in_pod(pid, &a), None, Duration::from_secs(70))
}

fn addresses(mac: &str, ips: &[String]) -> String {
    let mut s = mac.to_string();
    for ip in ips {
        s.push(' ');
        s.push_str(ip);
    }
    s
}

/// A subnet's switch, its router port pair (overlay) or localnet port (underlay).
pub fn switch(t: &mut Txn, s: &Subnet) {
    t.add(argv!["ls-add", s.name]);
    t.add(argv![
        "set",
        "logical_switch",
        s.name,
        V,
        format!("external_ids:vpc={}", q(&s.vpc))
    ]);
    if let Some(r) = &s.router {
        let lrp = format!("{r}-{}", s.name);
        let lsp = format!("{}-{r}", s.name);
        let mut lrp_add = argv![
            "lrp-add",
            r,
            lrp,
            s.lrp_mac,
            format!("{}/{}", s.gw4, s.prefix4())
        ];
        if let Some(g6) = &s.gw6 {
            lrp_add.push(format!("{g6}/{}", s.prefix6()));
        }
        t.add(lrp_add);
        t.add(argv!["set", "logical_router_port", lrp, V]);
        t.add(argv!["lsp-add", s.name, lsp]);
        t.add(argv!["lsp-set-type", lsp, "router"]);
        t.add(argv!["lsp-set-addresses", lsp, "router"]);
        t.add(argv!["lsp-set-options", lsp, format!("router-port={lrp}")]);
        t.add(argv!["set", "logical_switch_port", lsp, V]);
    }
    if let Some((_, vlan_id, provider)) = &s.vlan {
        let ln = format!("localnet.{}", s.name);
        t.add(argv!["lsp-add", s.name, ln]);
        t.add(argv!["lsp-set-type", ln, "localnet"]);
        t.add(argv!["lsp-set-addresses", ln, "unknown"]);
        t.add(argv![
            "lsp-set-options",
            ln,
            format!("network_name={provider}")
        ]);
        let mut set = argv![
            "set",
            "logical_switch_port",
            ln,
            V,
            format!("external_ids:ipv4_network={}", q(&s.cidr4))
        ];
        if let Some(c6) = &s.cidr6 {
            set.push(format!("external_ids:ipv6_network={}", q(c6)));
        }
        if (1..=4095).contains(vlan_id) {
            set.push(format!("tag={vlan_id}"));
        }
        t.add(set);
    }
}

/// A pod's LSP `<pod>.<ns>` as kube-ovn-controller creates it (no-op for hostNetwork).
pub fn pod_port(t: &mut Txn, p: &plan::Pod) {
    let Some(ls) = &p.subnet else { return };
    let lsp = p.lsp();
    t.add(argv!["lsp-add", ls, lsp]);
    t.add(argv!["lsp-set-addresses", lsp, addresses(&p.mac, &p.ips())]);
    t.add(argv![
        "set",
        "logical_switch_port",
        lsp,
        V,
        format!("external_ids:ls={}", q(ls)),
        format!("external_ids:pod={}", q(&p.key()))
    ]);
}

/// The distributed-gateway port group of a pod (`ovn.default.<node>`), if it has one.
pub fn pod_port_group(plan: &Plan, p: &plan::Pod) -> Option<String> {
    let s = plan.subnet(p.subnet.as_deref()?)?;
    let node = plan.nodes.get(p.node)?;
    has_distributed_gateway(s).then(|| gateway_port_group(s, node))
}

/// Transaction 1: routers, switches, router/localnet/node/pod ports, load balancers.
pub fn topology(plan: &Plan) -> Txn {
    let mut t = Txn::default();
    for r in [CLUSTER_ROUTER, plan::VPC_NAME] {
        t.add(argv!["lr-add", r]);
        t.add(argv![
            "set",
            "logical_router",
            r,
            V,
            "options:mac_binding_age_threshold=300",
            "options:dynamic_neigh_routers=true"
        ]);
    }
    for s in &plan.subnets {
        switch(&mut t, s);
    }
    for n in &plan.nodes {
        let lsp = format!("node-{}", n.name);
        t.add(argv!["lsp-add", JOIN_SUBNET, lsp]);
        t.add(argv![
            "lsp-set-addresses",
            lsp,
            addresses(&n.join_mac, &n.join_ips())
        ]);
        t.add(argv![
            "set",
            "logical_switch_port",
            lsp,
            V,
            "external_ids:ls=join"
        ]);
    }
    for p in plan.pods.iter().filter(|p| !p.host_network) {
        pod_port(&mut t, p);
    }
    // Load balancers: cluster-* on every ovn-cluster subnet except join; vpc-* on vpc1.
    let cluster_switches: Vec<&str> = plan
        .subnets
        .iter()
        .filter(|s| s.vpc == CLUSTER_ROUTER && s.name != JOIN_SUBNET)
        .map(|s| s.name.as_str())
        .collect();
    let vpc_switches: Vec<&str> = plan
        .subnets
        .iter()
        .filter(|s| s.vpc == plan::VPC_NAME)
        .map(|s| s.name.as_str())
        .collect();
    let mut k = 0;
    for proto in ["tcp", "udp", "sctp"] {
        for session in [false, true] {
            for (name, switches, vips) in [
                (
                    if session {
                        format!("cluster-{proto}-session-loadbalancer")
                    } else {
                        format!("cluster-{proto}-loadbalancer")
                    },
                    &cluster_switches,
                    // VIPs come from the controller (Services + EndpointSlices)
                    Vec::<String>::new(),
                ),
                (
                    if session {
                        format!("vpc-{}-{proto}-sess-load", plan::VPC_NAME)
                    } else {
                        format!("vpc-{}-{proto}-load", plan::VPC_NAME)
                    },
                    &vpc_switches,
                    vec![],
                ),
            ] {
                k += 1;
                let id = format!("@lb{k}");
                let mut c = argv![
                    format!("--id={id}"),
                    "create",
                    "load_balancer",
                    format!("name={name}"),
                    format!("protocol={proto}"),
                    V
                ];
                if session {
                    c.push("selection_fields=ip_src".into());
                    c.push("options:affinity_timeout=10800".into());
                } else if proto == "udp" {
                    c.push("options:ct_flush=true".into());
                }
                c.extend(vips);
                t.add(c);
                for sw in switches.iter() {
                    t.add(argv!["add", "logical_switch", sw, "load_balancer", id]);
                }
            }
        }
    }
    t
}

/// Port group names: OVN forbids '-' there, kube-ovn replaces it by '.'.
pub fn pg_name(s: &str) -> String {
    s.replace('-', ".")
}

/// Kube-OVN's OVN tier of SecurityGroup tier 0 (`SecurityGroupOvnTierBase`).
pub const SG_OVN_TIER_BASE: u8 = 2;

/// Transaction 2: node and deny-all port groups, router policies and static routes.
/// `acl_tiers`: the NB's ACL table has the `tier` column (OVN >= 23.06).
pub fn policies(plan: &Plan, acl_tiers: bool) -> Txn {
    let mut t = Txn::default();
    router_policies(plan, &mut t);
    default_routes(plan, &mut t);
    node_port_groups(plan, &mut t);
    deny_all_group(acl_tiers, &mut t);
    t
}

/// One policy of the cluster router.
fn policy(
    t: &mut Txn,
    prio: u32,
    m: String,
    action: &str,
    nexthop: Option<&str>,
    ext: Vec<String>,
) {
    let id = t.id("p");
    let mut c = argv![
        format!("--id={id}"),
        "create",
        "logical_router_policy",
        format!("priority={prio}"),
        format!("match={}", q(&m)),
        format!("action={action}"),
        V
    ];
    if let Some(nh) = nexthop {
        c.push(format!("nexthops={}", q(nh)));
    }
    c.extend(ext);
    t.add(c);
    t.add(argv![
        "add",
        "logical_router",
        CLUSTER_ROUTER,
        "policies",
        id
    ]);
}

/// Whether Kube-OVN gives the subnet a distributed gateway in the cluster router:
/// per-node port groups `<subnet>.<node>` and 29000 reroutes through each node.
pub fn has_distributed_gateway(s: &Subnet) -> bool {
    s.vpc == CLUSTER_ROUTER
        && s.router.is_some()
        && s.name != JOIN_SUBNET
        && s.gateway_node.is_none()
}

/// One cluster-router policy as Kube-OVN writes it for a subnet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyRow {
    pub priority: u32,
    pub matches: String,
    pub action: &'static str,
    pub nexthop: Option<String>,
    /// external_ids besides `vendor`.
    pub ext: Vec<(String, String)>,
}

/// A cluster-router subnet's own policies: its addresses stay local (31000); with a
/// centralized gateway the whole CIDR leaves through the active gateway node, with a
/// distributed one each node's pods leave through that node (29000).
pub fn subnet_policy_rows(s: &Subnet, nodes: &[plan::Node]) -> Vec<PolicyRow> {
    let sub = || vec![("subnet".to_string(), s.name.clone())];
    let row = |priority, matches: String, action, nexthop: Option<&String>, ext| PolicyRow {
        priority,
        matches,
        action,
        nexthop: nexthop.cloned(),
        ext,
    };
    let mut out = vec![row(
        31000,
        format!("ip4.dst == {}", s.cidr4),
        "allow",
        None,
        sub(),
    )];
    if let Some(c6) = &s.cidr6 {
        out.push(row(31000, format!("ip6.dst == {c6}"), "allow", None, sub()));
    }
    // centralized: external_ids `subnet` and `<node>=<ip>` (`buildPolicyRouteExternalIDs`)
    if let Some(gw) = s.gateway_node.as_deref() {
        if let Some(n) = nodes.iter().find(|n| n.name == gw) {
            let ext = |ip: &String| {
                vec![
                    ("subnet".to_string(), s.name.clone()),
                    (n.name.clone(), ip.clone()),
                ]
            };
            let m = format!("ip4.src == {}", s.cidr4);
            out.push(row(
                29000,
                m,
                "reroute",
                Some(&n.join_ip4),
                ext(&n.join_ip4),
            ));
            if let (Some(c6), Some(j6)) = (&s.cidr6, &n.join_ip6) {
                out.push(row(
                    29000,
                    format!("ip6.src == {c6}"),
                    "reroute",
                    Some(j6),
                    ext(j6),
                ));
            }
        }
        return out;
    }
    if !has_distributed_gateway(s) {
        return out;
    }
    for n in nodes {
        let pg = gateway_port_group(s, n);
        let ext = || {
            vec![
                ("subnet".to_string(), s.name.clone()),
                ("node".to_string(), n.name.clone()),
            ]
        };
        out.push(row(
            29000,
            format!("ip4.src == ${pg}_ip4"),
            "reroute",
            Some(&n.join_ip4),
            ext(),
        ));
        if let Some(j6) = &n.join_ip6 {
            out.push(row(
                29000,
                format!("ip6.src == ${pg}_ip6"),
                "reroute",
                Some(j6),
                ext(),
            ));
        }
    }
    out
}

/// Write those policies.
pub fn subnet_policies(t: &mut Txn, s: &Subnet, nodes: &[plan::Node]) {
    for r in subnet_policy_rows(s, nodes) {
        let ext = r
            .ext
            .iter()
            .map(|(k, v)| format!("external_ids:{}={}", q(k), q(v)))
            .collect();
        policy(
            t,
            r.priority,
            r.matches,
            r.action,
            r.nexthop.as_deref(),
            ext,
        );
    }
}

/// The distributed gateway's port group of a subnet on a node.
pub fn gateway_port_group(s: &Subnet, n: &plan::Node) -> String {
    pg_name(&format!("{}.{}", s.name, n.name))
}

/// Create that port group with its first members.
pub fn add_gateway_port_group(t: &mut Txn, s: &Subnet, n: &plan::Node, members: Vec<String>) {
    let pg = gateway_port_group(s, n);
    let mut add = argv!["pg-add", pg];
    add.extend(members);
    t.add(add);
    t.add(argv![
        "set",
        "port_group",
        pg,
        V,
        format!("external_ids:subnet={}", q(&s.name)),
        format!("external_ids:node={}", q(&n.name)),
        format!("external_ids:np={}", q(&format!("{}/{}", s.name, n.name)))
    ]);
}

/// The cluster router's policies: subnets stay local (31000), node addresses go
/// through the node's join IP (30000), and each node's pods leave through it (29000).
fn router_policies(plan: &Plan, t: &mut Txn) {
    for s in plan
        .subnets
        .iter()
        .filter(|s| s.vpc == CLUSTER_ROUTER && s.router.is_some())
    {
        subnet_policies(t, s, &plan.nodes);
    }
    for n in &plan.nodes {
        let ext = |af: &str| {
            vec![
                format!("external_ids:node={}", q(&n.name)),
                format!("external_ids:address-family={af}"),
            ]
        };
        policy(
            t,
            30000,
            format!("ip4.dst == {}", n.ip4),
            "reroute",
            Some(&n.join_ip4),
            ext("4"),
        );
        if let (Some(ip6), Some(j6)) = (&n.ip6, &n.join_ip6) {
            policy(
                t,
                30000,
                format!("ip6.dst == {ip6}"),
                "reroute",
                Some(j6),
                ext("6"),
            );
        }
    }
}

/// The cluster router's default routes, through the join subnet's gateway.
fn default_routes(plan: &Plan, t: &mut Txn) {
    let join = plan.subnet(JOIN_SUBNET);
    let mut routes = vec![("0.0.0.0/0".to_string(), join.map(|j| j.gw4.clone()))];
    if plan.dual_stack {
        routes.push(("::/0".to_string(), join.and_then(|j| j.gw6.clone())));
    }
    for (i, (prefix, nh)) in routes.into_iter().enumerate() {
        let Some(nh) = nh else { continue };
        let id = format!("@r{i}");
        t.add(argv![
            format!("--id={id}"),
            "create",
            "logical_router_static_route",
            format!("ip_prefix={}", q(&prefix)),
            format!("nexthop={}", q(&nh)),
            "policy=dst-ip",
            V
        ]);
        t.add(argv![
            "add",
            "logical_router",
            CLUSTER_ROUTER,
            "static_routes",
            id
        ]);
    }
}

/// Port groups node.<node> and <subnet>.<node> (distributed gateway).
fn node_port_groups(plan: &Plan, t: &mut Txn) {
    for (i, n) in plan.nodes.iter().enumerate() {
        let pg = pg_name(&format!("node-{}", n.name));
        t.add(argv!["pg-add", pg, format!("node-{}", n.name)]);
        t.add(argv![
            "set",
            "port_group",
            pg,
            V,
            format!("external_ids:node={}", q(&n.name)),
            format!("external_ids:np={}", q(&format!("node/{}", n.name)))
        ]);
        for s in plan.subnets.iter().filter(|s| has_distributed_gateway(s)) {
            let members = plan
                .pods
                .iter()
                .filter(|p| p.node == i && p.subnet.as_deref() == Some(s.name.as_str()))
                .map(|p| p.lsp())
                .collect();
            add_gateway_port_group(t, s, n, members);
        }
    }
}

/// The deny-all SecurityGroup's port group and its drop ACLs.
fn deny_all_group(acl_tiers: bool, t: &mut Txn) {
    let deny = "ovn.sg.kubeovn_deny_all";
    t.add(argv!["pg-add", deny]);
    t.add(argv![
        "set",
        "port_group",
        deny,
        V,
        "external_ids:type=security_group",
        "external_ids:sg=kubeovn_deny_all"
    ]);
    // Kube-OVN's CreateSgDenyAllACL: one drop pair per SecurityGroup tier (API tiers
    // 0 and 1 are OVN tiers 2 and 3), so a SecurityGroup's allow rules in its own
    // tier are evaluated before this drop rather than after it. No tier column
    // (OVN < 23.06): one pair.
    let tiers: &[Option<u8>] = if acl_tiers {
        &[Some(SG_OVN_TIER_BASE), Some(SG_OVN_TIER_BASE + 1)]
    } else {
        &[None]
    };
    for (i, tier) in tiers.iter().enumerate() {
        let ext: Vec<String> = tier.map(|t| format!("tier={t}")).into_iter().collect();
        acl(
            t,
            &format!("d{i}in"),
            deny,
            "to-lport",
            2003,
            &format!("outport == @{deny} && ip"),
            "drop",
            None,
            ext.clone(),
        );
        acl(
            t,
            &format!("d{i}out"),
            deny,
            "from-lport",
            2003,
            &format!("inport == @{deny} && ip"),
            "drop",
            None,
            ext,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn acl(
    t: &mut Txn,
    id: &str,
    pg: &str,
    dir: &str,
    prio: u32,
    m: &str,
    action: &str,
    name: Option<&str>,
    ext: Vec<String>,
) {
    let id = format!("@acl_{}", id.replace('-', "_"));
    let mut c = argv![
        format!("--id={id}"),
        "create",
        "acl",
        format!("direction={dir}"),
        format!("priority={prio}"),
        format!("match={}", q(m)),
        format!("action={action}"),
        V,
        format!("external_ids:parent={}", q(pg))
    ];
    if let Some(n) = name {
        c.push(format!("name={}", q(n)));
    }
    c.extend(ext);
    t.add(c);
    t.add(argv!["add", "port_group", pg, "acls", id]);
}

/// Build the whole NB (after the RAFT cluster formed; ovn-nbctl finds the leader).
pub fn apply(ctx: &Ctx) -> Result<()> {
    nbctl(ctx, &topology(&ctx.plan).argv()).context("writing the NB topology")?;
    let tiers = nb_has_acl_tier(ctx)?;
    nbctl(ctx, &policies(&ctx.plan, tiers).argv())
        .context("writing NB policies, port groups and ACLs")?;
    Ok(())
}

/// Whether the NB schema has `ACL.tier` (asked of the running NB, not guessed from
/// the version: a column nbctl does not know is refused by name).
fn nb_has_acl_tier(ctx: &Ctx) -> Result<bool> {
    match nbctl(ctx, &argv!["--columns=tier", "--format=csv", "list", "ACL"]) {
        Ok(_) => Ok(true),
        Err(e) if format!("{e:#}").contains("does not contain a column") => Ok(false),
        Err(e) => Err(e.context("asking the NB whether ACLs have a tier column")),
    }
}

/// Tag SB chassis like kube-ovn-controller (`vendor=kube-ovn`, `node=<node>`), once
/// every ovn-controller registered.
pub fn tag_chassis(ctx: &Ctx, timeout: Duration) -> Result<()> {
    let want: Vec<&str> = ctx.plan.nodes.iter().map(|n| n.name.as_str()).collect();
    crate::exec::poll(
        "every ovn-controller to register its chassis",
        timeout,
        || {
            let out = sbctl(ctx, &argv!["--bare", "--columns=name", "list", "chassis"]).ok()?;
            let have: Vec<&str> = out.split_whitespace().collect();
            want.iter().all(|w| have.contains(w)).then_some(())
        },
    )?;
    let mut t = Txn::default();
    for n in &ctx.plan.nodes {
        t.add(argv![
            "set",
            "chassis",
            n.name,
            V,
            format!("external_ids:node={}", q(&n.name))
        ]);
    }
    sbctl(ctx, &t.argv()).context("tagging SB chassis")?;
    Ok(())
}
