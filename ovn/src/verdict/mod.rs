//! The answer of `kubectl ko trace`: a verdict (delivered / dropped / error)
//! and the annotated path, built from the parsed `ovn-trace` and
//! `ofproto/trace` runs joined with NB/SB rows.
//!
//! The serialised [`TraceReport`] is the documented `-o json|yaml` schema:
//! `verdict`, `summary`, `source`, `destination`, `logical.outport`,
//! `logical.stages[]`, `drop.{layer,stage,table,match,reason,policy}`,
//! `lb.{name,vip,backends,backend}`, `routing.{route,policy,nat[]}`,
//! `ovs.segments[]`, `warnings[]`.

pub mod acl_eval;
pub mod nb;
pub mod outcome;
pub mod ovs;
pub mod routing;
pub mod sb_query;
mod verdict_text;

use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::ovn_trace::{ActionKind, DropPoint, DropReason, Hop, OvnTrace, Step, Terminal};
use crate::ovsdb_rows::{LogicalFlow, Pipeline};
use nb::{AclRef, NbSnapshot, PolicyKind, PolicyRef, SbSnapshot};
use ovs::{OvsExit, OvsSegment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The traced packet leaves OVN at the port that owns the destination.
    Delivered,
    /// Nobody gets it and the sender is not told.
    Dropped,
    /// OVN answers the sender itself (TCP RST, ICMP unreachable).
    Rejected,
    /// Copies go to several ports and none owns the destination.
    Flooded,
    /// A router holds the packet until the next hop answers ARP/ND.
    Unresolved,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Dropped => "dropped",
            Verdict::Rejected => "rejected",
            Verdict::Flooded => "flooded",
            Verdict::Unresolved => "unresolved",
            Verdict::Error => "error",
        }
    }

    /// The exit code of `trace --exit-code`: 0 delivered, 5 error, 1 otherwise.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Delivered => 0,
            Verdict::Error => 5,
            _ => 1,
        }
    }
}

/// Where the traced packet comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `pod` or `node` (a hostNetwork pod is traced as its node).
    pub kind: String,
    /// `ns/pod` or the node name.
    pub name: String,
    pub node: String,
    pub logical_switch: String,
    pub logical_port: String,
    pub ip: String,
    pub mac: String,
}

/// Where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub ip: String,
    pub mac: String,
    /// How the MAC was found: `argument`, `logical switch port <lsp>`,
    /// `arping`/`ndisc6` in the pod's netns, `gateway <lrp>`, `broadcast`.
    pub mac_from: String,
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arp: Option<String>,
}

/// One logical flow table the packet went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub datapath: String,
    pub pipeline: String,
    pub table: u32,
    pub stage: String,
    /// One line on what this stage is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(rename = "match")]
    pub match_expr: String,
    pub priority: Option<u32>,
    /// Logical_Flow UUID prefix (= OpenFlow cookie).
    pub flow: Option<String>,
    pub actions: Vec<String>,
    /// The NB object the flow came from (ACL → NetworkPolicy, LB, LSP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Logical {
    /// Logical port the packet finally leaves OVN through.
    pub outport: Option<String>,
    /// Every final output when the packet was flooded (ARP to an unknown
    /// address, broadcast, multicast); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub flooded_to: Vec<String>,
    /// The Kubernetes owner of `outport` (`pod ns/name`, `node n`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outport_owner: Option<String>,
    pub stages: Vec<Stage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    Acl,
    PortSecurity,
    NoRoute,
    Ttl,
    UnknownDestination,
    /// A Service VIP with no backend (in OVN, or absent from OVN altogether).
    LbNoBackends,
    /// A VIP without backends on a load balancer with `options:reject=true`.
    LbReject,
    UnresolvedNextHop,
    /// A router policy with action `drop` (a Vpc's `policyRoutes`).
    RoutePolicy,
    /// The destination's logical port is not bound to any chassis.
    UnboundPort,
    /// A broadcast or multicast destination.
    Broadcast,
    /// The packet leaves OVN at a port that does not own the destination.
    WrongPort,
    Other,
}

/// Where and why the packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropInfo {
    /// `logical` (ovn-trace) or `openflow` (ofproto/trace only).
    pub layer: String,
    pub datapath: Option<String>,
    pub pipeline: Option<String>,
    pub table: Option<u32>,
    pub stage: Option<String>,
    #[serde(rename = "match")]
    pub match_expr: Option<String>,
    pub priority: Option<u32>,
    pub flow: Option<String>,
    pub cause: DropCause,
    /// One sentence a person can act on.
    pub reason: String,
    /// The Kubernetes object: NetworkPolicy `ns/name`, SecurityGroup name...
    pub policy: Option<String>,
    pub policy_kind: Option<PolicyKind>,
    pub port_group: Option<String>,
    pub acl: Option<AclRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbInfo {
    pub name: String,
    pub vip: String,
    pub backends: Vec<String>,
    /// The backend this trace followed.
    pub backend: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OvsPath {
    /// One ofproto/trace per node, in the order the packet crossed them.
    pub segments: Vec<OvsSegment>,
}

/// The Kubernetes or OVN object a verdict blames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responsible {
    /// `NetworkPolicy`, `SecurityGroup`, `Subnet`, `Service`, `LoadBalancer`,
    /// `Vpc`, `LogicalRouter`, `LogicalSwitchPort`, `Pod`, `ACL`...
    pub kind: String,
    /// `ns/name` for namespaced objects.
    pub name: String,
    /// The OVN row behind it, in words (ACL, route, LSP and its pod...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The next hop a router is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHop {
    pub address: String,
    pub router: Option<String>,
    pub port: Option<String>,
    /// The ARP/ND request went to these ports.
    pub copies: Vec<String>,
}

/// The Kubernetes Service whose ClusterIP is the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRef {
    /// `ns/name`.
    pub name: String,
    pub cluster_ip: String,
    /// The traced packet's port (`None` for ICMP).
    pub port: Option<u16>,
    /// Whether any OVN load balancer has the VIP.
    pub vip_in_ovn: bool,
    /// Whether the Service defines the packet's protocol and port; when not,
    /// no load balancer rule matches it and OVN routes it as a plain address.
    #[serde(default = "default_true")]
    pub serves_packet: bool,
    /// What the Service does serve, e.g. `tcp/80`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl ServiceRef {
    /// `10.96.0.10:53`, or the bare address for a packet without a port.
    pub fn address(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.cluster_ip),
            None => self.cluster_ip.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReport {
    pub verdict: Verdict,
    /// Why a non-delivered verdict happened.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cause: Option<DropCause>,
    /// The object responsible for a non-delivered verdict.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub responsible: Option<Responsible>,
    /// For `rejected`: what OVN sends back (`TCP RST`, `ICMP unreachable`...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply: Option<String>,
    /// For `unresolved` (and a router ARPing for a flooded destination).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_hop: Option<NextHop>,
    /// The Service the destination VIP belongs to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<ServiceRef>,
    /// Every terminal event of the ovn-trace tree the verdict was derived from.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub terminals: Vec<Terminal>,
    pub summary: String,
    pub source: Source,
    pub destination: Destination,
    pub logical: Logical,
    pub drop: Option<DropInfo>,
    pub lb: Option<LbInfo>,
    /// The static route, router policy and NAT rules that routed the packet.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub routing: Option<routing::Routing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovs: Option<OvsPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Everything the verdict is built from.
pub struct Inputs<'a> {
    pub source: Source,
    pub destination: Destination,
    pub ovn_trace: &'a OvnTrace,
    /// Set when ovn-trace itself failed (non-zero exit, crash): its message.
    pub ovn_trace_failure: Option<String>,
    pub nb: Option<&'a NbSnapshot>,
    pub sb: Option<&'a SbSnapshot>,
    /// The VIP the destination matched and the backend ovn-trace was told to pick.
    pub lb: Option<LbInfo>,
    /// The Kubernetes Service whose ClusterIP and port are the destination.
    pub service: Option<ServiceRef>,
    /// None for `ovn-trace` (logical only).
    pub ovs: Option<Vec<OvsSegment>>,
    pub warnings: Vec<String>,
}

pub fn build(inp: Inputs<'_>) -> TraceReport {
    let mut warnings = inp.warnings.clone();
    let stages = stages(&inp);
    let outcome = inp.ovn_trace.outcome();
    let mut logical = Logical {
        outport: None,
        flooded_to: Vec::new(),
        outport_owner: None,
        stages,
        notes: outcome.notes.clone(),
    };
    let mut ovs = inp.ovs.clone().map(|segments| OvsPath { segments });
    if let (Some(path), Some(sb)) = (ovs.as_mut(), inp.sb) {
        annotate_ovs(path, sb, inp.nb);
    }
    let mut report = TraceReport {
        verdict: Verdict::Error,
        cause: None,
        responsible: None,
        reply: None,
        next_hop: None,
        service: inp.service.clone(),
        terminals: outcome.terminals.clone(),
        summary: String::new(),
        source: inp.source.clone(),
        destination: inp.destination.clone(),
        logical: Logical::default(),
        drop: None,
        lb: None,
        routing: None,
        ovs: None,
        error: None,
        warnings: Vec::new(),
    };

    let error = inp.ovn_trace_failure.clone().or_else(|| {
        (logical.stages.is_empty() && !outcome.errors.is_empty()).then(|| outcome.errors.join("; "))
    });
    if let Some(err) = error {
        report.summary = format!("error: ovn-trace could not trace the packet: {err}");
        report.error = Some(err);
        report.logical = logical;
        report.ovs = ovs;
        report.warnings = warnings;
        return report;
    }
    if logical.stages.is_empty() {
        // ovn-trace reports bad datapaths/ports on its output and exits 0
        let said: Vec<&str> = inp
            .ovn_trace
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Action(a) => Some(a.text.as_str()),
                Step::Section(sec) => Some(sec.title.as_str()),
                Step::Hop(_) => None,
            })
            .chain(inp.ovn_trace.stray.iter().map(String::as_str))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let err = if said.is_empty() {
            "ovn-trace printed no logical flow table (is the source port bound and the datapath known?)".to_string()
        } else {
            format!("ovn-trace: {}", said.join("; "))
        };
        report.summary = format!("error: {err}");
        report.error = Some(err);
        report.logical = logical;
        report.ovs = ovs;
        report.warnings = warnings;
        return report;
    }
    warnings.extend(outcome.errors.iter().map(|e| format!("ovn-trace: {e}")));

    report.lb = inp
        .lb
        .clone()
        .filter(|lb| went_through_lb(inp.ovn_trace, &lb.vip));
    if let (Some(lb), None) = (&inp.lb, &report.lb) {
        warnings.push(format!(
            "{} is a VIP of load balancer {}, but the trace did not go through a load-balancing stage",
            lb.vip, lb.name
        ));
    }

    if let Some(out) = outcome.outputs.last() {
        logical.outport = Some(out.port.clone());
        logical.outport_owner = inp.nb.and_then(|nb| owner_of_port(nb, &out.port));
    }
    report.routing = Some(routing_of(&inp)).filter(|r| !r.is_empty());
    let exp = outcome::Expect {
        owners: owners(&inp, &report.lb),
        dst_ip: inp.destination.ip.clone(),
        address_request: inp.destination.arp.as_deref() == Some("request"),
    };
    let class = outcome::classify(&outcome.terminals, &exp);
    let ovs_drop = ovs.as_ref().and_then(|p| ovs_drop_info(p, inp.sb, inp.nb));
    verdict_text::apply(
        &mut report,
        &mut logical,
        class,
        ovs_drop,
        &inp,
        &mut warnings,
    );
    report.summary = summary(&report, &logical, ovs.as_ref());
    if report.verdict == Verdict::Error {
        report.error = Some("the trace neither delivered nor dropped the packet".into());
    }
    report.logical = logical;
    report.ovs = ovs;
    report.warnings = warnings;
    report
}

/// The logical ports that may receive the packet: the LSP owning the
/// destination, the chosen backend, and the owner of every next hop a
/// router forwarded to (a node's join port for its node IP...).
fn owners(inp: &Inputs<'_>, lb: &Option<LbInfo>) -> Vec<String> {
    let Some(nb) = inp.nb else {
        return Vec::new();
    };
    let lsp_of = |ip: &str| {
        ip.parse()
            .ok()
            .and_then(|ip| nb.mac_of_ip(ip))
            .map(|(_, lsp)| lsp.name.clone())
    };
    let mut out: Vec<String> = lsp_of(&inp.destination.ip).into_iter().collect();
    if let Some(b) = lb.as_ref().and_then(|l| l.backend.as_deref()) {
        out.extend(lsp_of(lb_backend_ip(b)));
    }
    for h in inp.ovn_trace.hops() {
        if !h.hop.stage.as_deref().is_some_and(|s| s.starts_with("lr_")) {
            continue;
        }
        for a in &h.hop.actions {
            if let Step::Action(a) = a
                && let ActionKind::Assign { target, value } = &a.kind
                && (target == "reg0" || target == "xxreg0")
            {
                out.extend(lsp_of(value));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `10.0.0.1:80` / `[fd00::1]:80` → the address.
fn lb_backend_ip(b: &str) -> &str {
    if let Some(rest) = b.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match b.rsplit_once(':') {
        Some((ip, _)) if !ip.contains(':') => ip,
        _ => b,
    }
}

fn pipeline_name(p: Option<Pipeline>) -> String {
    p.map(Pipeline::as_str).unwrap_or_default().to_string()
}

fn stages(inp: &Inputs<'_>) -> Vec<Stage> {
    inp.ovn_trace
        .hops()
        .into_iter()
        .map(|h| {
            let stage = h.hop.stage.clone().unwrap_or_default();
            let actions: Vec<String> = h
                .hop
                .actions
                .iter()
                .filter_map(|s| match s {
                    Step::Action(a) => Some(a.text.clone()),
                    _ => None,
                })
                .collect();
            let match_expr = h.hop.match_expr.clone().unwrap_or_else(|| {
                if h.hop.no_match {
                    "no match (implicit drop)".into()
                } else {
                    String::new()
                }
            });
            Stage {
                datapath: h.datapath.unwrap_or_default().to_string(),
                pipeline: pipeline_name(h.pipeline),
                table: h.hop.table,
                explanation: catalog::stage(&stage).map(|s| s.summary.to_string()),
                object: object_of(&stage, h.hop.uuid.as_deref(), &match_expr, &actions, inp),
                stage,
                match_expr,
                priority: h.hop.priority,
                flow: h.hop.uuid.clone(),
                actions,
            }
        })
        .collect()
}

/// The NB object behind a logical flow, when it is worth naming.
fn object_of(
    stage: &str,
    uuid: Option<&str>,
    match_expr: &str,
    actions: &[String],
    inp: &Inputs<'_>,
) -> Option<String> {
    let nb = inp.nb?;
    let hint = uuid
        .and_then(|u| inp.sb.and_then(|sb| sb.lflow(u)))
        .and_then(|f| f.stage_hint.clone());
    if let Some(obj) = hint
        .as_deref()
        .and_then(|h| routing::object_of(stage, h, nb))
    {
        return Some(obj.describe());
    }
    if stage.contains("_acl") && !stage.contains("hint") {
        if let Some(acl) = hint.as_deref().and_then(|h| nb.acl(h)) {
            let p = nb.policy_of_acl(acl);
            let name = if acl.name.is_empty() {
                &acl.uuid[..8.min(acl.uuid.len())]
            } else {
                &acl.name
            };
            return Some(format!(
                "ACL {name} ({}): {} {}",
                p.describe(),
                acl.action,
                acl.match_expr
            ));
        }
        return nb.policy_of_match(match_expr).map(|p| p.describe());
    }
    if stage.contains("_lb")
        && let Some(lb) = hint.as_deref().and_then(|h| nb.load_balancer(h))
    {
        return Some(format!("load balancer {}", lb.name));
    }
    if stage.ends_with("l2_lkup") {
        let port = actions.iter().find_map(|a| {
            a.strip_prefix("outport = \"")
                .and_then(|r| r.split('"').next())
                .map(String::from)
        })?;
        return owner_of_port(nb, &port).map(|o| format!("{port}: {o}"));
    }
    None
}

/// The router rows behind the trace's router hops, in path order.
fn routing_of(inp: &Inputs<'_>) -> routing::Routing {
    let mut out = routing::Routing::default();
    let (Some(nb), Some(sb)) = (inp.nb, inp.sb) else {
        return out;
    };
    for h in inp.ovn_trace.hops() {
        let stage = h.hop.stage.as_deref().unwrap_or_default();
        let Some(hint) = h
            .hop
            .uuid
            .as_deref()
            .and_then(|u| sb.lflow(u))
            .and_then(|f| f.stage_hint.as_deref())
        else {
            continue;
        };
        match routing::object_of(stage, hint, nb) {
            Some(routing::RouterObject::Route(r)) if out.route.is_none() => out.route = Some(r),
            Some(routing::RouterObject::Policy(p)) if out.policy.is_none() => out.policy = Some(p),
            Some(routing::RouterObject::Nat(n)) if !out.nat.contains(&n) => out.nat.push(n),
            _ => {}
        }
    }
    out
}

/// `pod ns/name` for a pod LSP, `node n` for a node LSP, the router port.
fn owner_of_port(nb: &NbSnapshot, port: &str) -> Option<String> {
    let lsp = nb.lsp(port)?;
    if let Some(pod) = lsp.external_ids.get("pod") {
        return Some(format!("pod {pod}"));
    }
    if let Some(node) = port.strip_prefix("node-") {
        return Some(format!("node {node}"));
    }
    match lsp.port_type.as_str() {
        "router" => Some("logical router port".into()),
        "localnet" => Some("localnet (underlay network)".into()),
        "" => None,
        t => Some(format!("{t} port")),
    }
}

/// Whether the packet hit the load balancer of `vip` (`ip:port` / `[ip]:port`):
/// a `ct_lb*(backends=...)` action, or (with `--lb-dst`, where ovn-trace
/// DNATs at the first `ct_lb*`) a load-balancing stage matching the VIP.
fn went_through_lb(trace: &OvnTrace, vip: &str) -> bool {
    fn walk(steps: &[Step]) -> bool {
        steps.iter().any(|s| match s {
            Step::Section(sec) => walk(&sec.steps),
            Step::Hop(h) => walk(&h.actions),
            Step::Action(a) => {
                matches!(&a.kind, ActionKind::Ct { backends, .. } if !backends.is_empty())
                    || walk(&a.children)
            }
        })
    }
    let ip = vip
        .rsplit_once(':')
        .map(|(ip, _)| ip.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(vip);
    let vip_matches = [format!("ip4.dst == {ip}"), format!("ip6.dst == {ip}")];
    walk(&trace.steps)
        || trace.hops().iter().any(|h| {
            let stage = h.hop.stage.as_deref().unwrap_or_default();
            let m = h.hop.match_expr.as_deref().unwrap_or_default();
            (stage.contains("lb") || stage.contains("stateful") || stage.contains("dnat"))
                && vip_matches.iter().any(|v| m.contains(v.as_str()))
        })
}

fn classify(stage: &str, match_expr: &str, reason: &DropReason) -> (DropCause, String) {
    let s = stage;
    if s.contains("_acl") && !s.contains("hint") {
        return (DropCause::Acl, "an ACL dropped it".into());
    }
    if s.contains("port_sec") {
        return (
            DropCause::PortSecurity,
            "port security: the source MAC/IP is not what the logical port allows (check the pod's mac/ip annotations against the LSP's port_security)".into(),
        );
    }
    if match_expr.contains("ip.ttl == {0, 1}")
        || match_expr.contains("ip.ttl == 0")
        || match_expr.contains("ip.ttl == 1")
    {
        return (DropCause::Ttl, "TTL expired on the router".into());
    }
    if s == "lr_in_policy" && *reason == DropReason::DropAction {
        return (DropCause::RoutePolicy, "a router policy drops it".into());
    }
    if s == "lr_in_ip_routing"
        || s == "lr_in_ip_routing_ecmp"
        || s == "lr_in_policy" && *reason == DropReason::NoMatch
    {
        return (
            DropCause::NoRoute,
            "no route: the logical router has no route (or policy) for the destination".into(),
        );
    }
    if s.ends_with("l2_lkup") || s.ends_with("l2_unknown") {
        return (
            DropCause::UnknownDestination,
            "no logical port of this switch has the destination MAC (and no port takes unknown addresses)".into(),
        );
    }
    if s.ends_with("_lb") && *reason == DropReason::DropAction {
        return (
            DropCause::LbNoBackends,
            "the load balancer VIP has no backends: OVN drops the packet".into(),
        );
    }
    if s == "lr_in_admission" {
        return (
            DropCause::Other,
            "the router does not accept this destination MAC on that port".into(),
        );
    }
    let how = match reason {
        DropReason::NoMatch => "no logical flow matched",
        DropReason::Rejected => "rejected",
        DropReason::AclVerdict => "an ACL with logging dropped it",
        DropReason::EndOfTrace => "the trace ended without an output",
        DropReason::Loopback => "not sent back out of the port it came in on",
        DropReason::DropAction => "a logical flow dropped it",
    };
    (DropCause::Other, how.into())
}

fn logical_drop_info(d: &DropPoint, inp: &Inputs<'_>) -> DropInfo {
    let stage = d.stage.clone().unwrap_or_default();
    let match_expr = d.match_expr.clone().unwrap_or_default();
    let (cause, mut reason) = classify(&stage, &match_expr, &d.reason);
    let eval = if cause == DropCause::Acl {
        acl_eval_hop(d, inp)
    } else {
        None
    };
    let policy = if cause == DropCause::Acl {
        // OVN >= 24.03 evaluates ACLs in `*_acl_eval` and drops in a generic
        // `*_acl_action` flow: the ACL that decided is the eval hop's.
        let (uuid, m) = eval
            .map(|h| (h.uuid.clone(), h.match_expr.clone().unwrap_or_default()))
            .unwrap_or((d.uuid.clone(), match_expr.clone()));
        acl_policy(uuid.as_deref(), &m, inp.sb, inp.nb)
    } else {
        None
    };
    // the flow that decided is the ACL's own (the eval hop), not the generic action
    let (table, stage_name, match_out, priority, flow) = match eval {
        Some(h) => (
            Some(h.table),
            h.stage.clone(),
            h.match_expr.clone(),
            h.priority,
            h.uuid.clone(),
        ),
        None => (
            d.table,
            d.stage.clone(),
            d.match_expr.clone(),
            d.priority,
            d.uuid.clone(),
        ),
    };
    let mut policy = policy;
    if let Some(p) = policy.as_mut() {
        reason = match deny_all_groups(p, inp) {
            Some(groups) => {
                let reason = format!(
                    "no rule of SecurityGroup {groups} allows it: the pod's port is in Kube-OVN's deny-all group {}, which drops what its security groups do not allow",
                    p.port_group.as_deref().unwrap_or(DENY_ALL_PORT_GROUP)
                );
                p.name = Some(groups);
                reason
            }
            None => p.dropped_it(),
        };
    }
    DropInfo {
        layer: "logical".into(),
        datapath: d.datapath.clone(),
        pipeline: Some(pipeline_name(d.pipeline)).filter(|p| !p.is_empty()),
        table,
        stage: stage_name,
        match_expr: match_out,
        priority,
        flow,
        cause,
        reason,
        policy: policy.as_ref().and_then(|p| p.name.clone()),
        policy_kind: policy.as_ref().map(|p| p.kind),
        port_group: policy.as_ref().and_then(|p| p.port_group.clone()),
        acl: policy.and_then(|p| p.acl),
        node: None,
    }
}

/// Kube-OVN's deny-all port group (`util.DenyAllSecurityGroup`): every port
/// of a pod with security groups joins it; no SecurityGroup CR stands behind it.
const DENY_ALL_PORT_GROUP: &str = "ovn.sg.kubeovn_deny_all";

/// For a drop by the deny-all group's ACL, the security groups of the pod
/// the ACL applied to (LSP `external_ids:security_groups`, `/`-separated):
/// the destination's port for a to-lport ACL, the source's for from-lport.
fn deny_all_groups(p: &PolicyRef, inp: &Inputs<'_>) -> Option<String> {
    if p.kind != PolicyKind::SecurityGroup || p.port_group.as_deref() != Some(DENY_ALL_PORT_GROUP) {
        return None;
    }
    let nb = inp.nb?;
    let lsp = match p.acl.as_ref().map(|a| a.direction.as_str()) {
        Some("from-lport") => nb.lsp(&inp.source.logical_port),
        _ => nb
            .mac_of_ip(inp.destination.ip.parse().ok()?)
            .map(|(_, lsp)| lsp),
    }?;
    let groups: Vec<&str> = lsp
        .external_ids
        .get("security_groups")?
        .split('/')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    (!groups.is_empty()).then(|| groups.join(", "))
}

/// For a drop in an ACL `*_action` stage (OVN >= 24.03), the last hop of
/// the same datapath and pipeline before it that [`acl_eval::decides`] it
/// (the ACL that set the verdict bit).
fn acl_eval_hop<'a>(d: &DropPoint, inp: &Inputs<'a>) -> Option<&'a Hop> {
    let action = acl_eval::AclFlow {
        datapath: d.datapath.as_deref(),
        stage: d.stage.as_deref(),
        logical_match: d.match_expr.as_deref(),
        logical_actions: None,
    };
    let stage = action.stage?;
    acl_eval::eval_stage_of(stage)?;
    let mut found = None;
    for h in inp.ovn_trace.hops() {
        if h.pipeline != d.pipeline || h.hop.uuid.is_none() {
            continue;
        }
        if h.datapath == action.datapath && h.hop.uuid == d.uuid && h.hop.stage == d.stage {
            break;
        }
        let eval = acl_eval::AclFlow {
            datapath: h.datapath,
            stage: h.hop.stage.as_deref(),
            logical_match: h.hop.match_expr.as_deref(),
            // the path is linear: the last eval hop set the bit
            logical_actions: None,
        };
        if acl_eval::decides(&action, &eval) {
            found = Some(h.hop);
        }
    }
    found
}

/// The OpenFlow counterpart of [`acl_eval_hop`]: for a drop in an ACL
/// `*_action` flow, the last flow of the same node's segment whose logical
/// flow [`acl_eval::decides`] it (the eval stage, sets the bit). Datapaths are
/// not compared: shared flows list several; the action follows its eval, so
/// the last eval flow setting the bit is this datapath's.
fn acl_eval_flow<'a>(
    seg: &OvsSegment,
    action: &'a LogicalFlow,
    sb: &'a SbSnapshot,
) -> Option<&'a LogicalFlow> {
    let as_acl_flow = |f: &'a LogicalFlow| acl_eval::AclFlow {
        datapath: None,
        stage: f.stage.as_deref(),
        logical_match: Some(f.match_expr.as_str()),
        logical_actions: Some(f.actions.as_str()),
    };
    let action_flow = acl_eval::AclFlow {
        logical_actions: None,
        ..as_acl_flow(action)
    };
    seg.hops
        .iter()
        .rev()
        .filter_map(|h| h.cookie.as_deref().and_then(|c| sb.lflow(c)))
        .find(|f| acl_eval::decides(&action_flow, &as_acl_flow(f)))
}

fn acl_policy(
    flow: Option<&str>,
    match_expr: &str,
    sb: Option<&SbSnapshot>,
    nb: Option<&NbSnapshot>,
) -> Option<PolicyRef> {
    let nb = nb?;
    let by_hint = flow
        .and_then(|u| sb.and_then(|sb| sb.lflow(u)))
        .and_then(|f| f.stage_hint.as_deref())
        .and_then(|h| nb.acl(h))
        .map(|acl| nb.policy_of_acl(acl));
    by_hint.or_else(|| nb.policy_of_match(match_expr))
}

/// Names OpenFlow hops by their logical stage; finds the chassis behind tunnels.
fn annotate_ovs(path: &mut OvsPath, sb: &SbSnapshot, nb: Option<&NbSnapshot>) {
    for seg in &mut path.segments {
        for hop in &mut seg.hops {
            if let Some(f) = hop.cookie.as_deref().and_then(|c| sb.lflow(c)) {
                hop.stage = f.stage.clone();
                hop.object = nb.and_then(|nb| nb_object_of_flow(f, nb));
            }
        }
        // ovn-controller's own tables: named by the node's calibrated layout
        let layout = ovs::layout_of(seg, |c| sb.lflow(c).and_then(|f| f.pipeline_table()));
        ovs::name_physical_hops(seg, &layout);
        if let OvsExit::Tunnel {
            remote_ip: Some(ip),
            remote_node,
            ..
        } = &mut seg.exit
            && remote_node.is_none()
        {
            *remote_node = sb.chassis_by_encap_ip(ip).map(|c| c.node.clone());
        }
    }
}

/// The ACL (with its policy), load balancer or router row a logical flow
/// came from.
fn nb_object_of_flow(f: &LogicalFlow, nb: &NbSnapshot) -> Option<String> {
    let stage = f.stage.as_deref().unwrap_or_default();
    let hint = f.stage_hint.as_deref()?;
    if let Some(obj) = routing::object_of(stage, hint, nb) {
        return Some(obj.describe());
    }
    if stage.contains("_acl") && !stage.contains("hint") {
        let acl = nb.acl(hint)?;
        let name = if acl.name.is_empty() {
            "(unnamed)"
        } else {
            &acl.name
        };
        return Some(format!("ACL {name} ({})", nb.policy_of_acl(acl).describe()));
    }
    if stage.contains("_lb") {
        return nb
            .load_balancer(hint)
            .map(|lb| format!("load balancer {}", lb.name));
    }
    None
}

fn ovs_drop_info(
    path: &OvsPath,
    sb: Option<&SbSnapshot>,
    nb: Option<&NbSnapshot>,
) -> Option<DropInfo> {
    let seg = path.segments.last()?;
    let OvsExit::Dropped {
        table,
        cookie,
        match_expr,
        ..
    } = &seg.exit
    else {
        return None;
    };
    let lflow = cookie
        .as_deref()
        .and_then(|c| sb.and_then(|sb| sb.lflow(c)));
    let stage = lflow.and_then(|f| f.stage.clone());
    let lmatch = lflow.map(|f| f.match_expr.clone());
    let (cause, mut reason) = classify(
        stage.as_deref().unwrap_or_default(),
        lmatch.as_deref().unwrap_or_default(),
        &DropReason::DropAction,
    );
    let policy = if cause == DropCause::Acl {
        // OVN >= 24.03 drops in the generic `*_acl_action` flow: the ACL that
        // decided is the eval flow of this segment that set the bit
        let eval = lflow.and_then(|action| acl_eval_flow(seg, action, sb?));
        let (flow, m) = match eval {
            Some(e) => (e.uuid.as_deref(), e.match_expr.as_str()),
            None => (cookie.as_deref(), lmatch.as_deref().unwrap_or_default()),
        };
        acl_policy(flow, m, sb, nb)
    } else {
        None
    };
    if let Some(p) = &policy {
        reason = p.dropped_it();
    } else if lflow.is_none() {
        reason = format!(
            "OpenFlow table {} dropped it{}",
            table.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            if cookie.is_some() {
                " (its logical flow is not in the SB any more: stale flows?)"
            } else {
                " (a flow not generated from a logical flow)"
            }
        );
    }
    Some(DropInfo {
        layer: "openflow".into(),
        datapath: None,
        pipeline: lflow.map(|f| pipeline_name(f.pipeline)),
        table: *table,
        stage,
        match_expr: lmatch.or_else(|| match_expr.clone()),
        priority: lflow.map(|f| f.priority),
        flow: cookie.clone(),
        cause,
        reason,
        policy: policy.as_ref().and_then(|p| p.name.clone()),
        policy_kind: policy.as_ref().map(|p| p.kind),
        port_group: policy.as_ref().and_then(|p| p.port_group.clone()),
        acl: policy.and_then(|p| p.acl),
        node: Some(seg.node.clone()),
    })
}

fn summary(r: &TraceReport, logical: &Logical, ovs: Option<&OvsPath>) -> String {
    let what = match r.destination.port {
        Some(p) => format!("{} {}/{}", r.destination.ip, r.destination.protocol, p),
        None => match &r.destination.arp {
            Some(op) => format!("{} arp {op}", r.destination.ip),
            None => format!("{} {}", r.destination.ip, r.destination.protocol),
        },
    };
    let from = format!("{} {}", r.source.kind, r.source.name);
    match r.verdict {
        Verdict::Delivered => {
            let port = logical.outport.clone().unwrap_or_default();
            let owner = logical
                .outport_owner
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            let answered = port == r.source.logical_port;
            let mut s = if answered {
                format!(
                    "delivered: {from} → {what}: OVN answers it itself and sends the reply back to {port}"
                )
            } else {
                format!("delivered: {from} → {what} leaves OVN at logical port {port}{owner}")
            };
            if let Some(lb) = &r.lb {
                s.push_str(&format!(
                    ", load-balanced by {} to backend {}",
                    lb.name,
                    lb.backend.as_deref().unwrap_or("?")
                ));
            }
            if let Some(svc) = r.service.as_ref().filter(|s| !s.serves_packet) {
                s.push_str(&format!(
                    "; not load-balanced: {} is the ClusterIP of Service {}, which serves only {}, so no backend pod gets this packet and OVN routes it as a plain address",
                    svc.cluster_ip,
                    svc.name,
                    if svc.ports.is_empty() { "no port".to_string() } else { svc.ports.join(", ") }
                ));
            }
            if let Some(path) = ovs {
                let nodes: Vec<&str> = path.segments.iter().map(|s| s.node.as_str()).collect();
                if nodes.len() > 1 {
                    s.push_str(&format!("; OVS path {}", nodes.join(" → tunnel → ")));
                } else if let Some(seg) = path.segments.first() {
                    match &seg.exit {
                        OvsExit::Port { interface, .. } => s.push_str(&format!(
                            "; OVS on {} outputs to {}",
                            seg.node,
                            interface.as_deref().unwrap_or("a local port")
                        )),
                        OvsExit::Tunnel { remote_node, .. } => s.push_str(&format!(
                            "; OVS on {} tunnels it to {}",
                            seg.node,
                            remote_node.as_deref().unwrap_or("another chassis")
                        )),
                        OvsExit::Group { group } => s.push_str(&format!(
                            "; OVS on {} hands it to load-balancer group {group}",
                            seg.node
                        )),
                        _ => {}
                    }
                }
            }
            s
        }
        Verdict::Dropped => {
            let Some(d) = &r.drop else {
                return format!("dropped: {from} → {what}");
            };
            let at = format!(
                "{} {} table {} {}",
                d.datapath
                    .as_deref()
                    .or(d.node.as_deref().map(|_| "br-int"))
                    .unwrap_or("?"),
                d.pipeline.as_deref().unwrap_or(""),
                d.table.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                d.stage.as_deref().unwrap_or("")
            );
            if d.stage.is_none() && d.table.is_none() {
                return format!("dropped: {from} → {what}: {}", d.reason);
            }
            format!(
                "dropped: {from} → {what} at {}: {}",
                at.split_whitespace().collect::<Vec<_>>().join(" "),
                d.reason
            )
        }
        Verdict::Rejected => format!(
            "rejected: {from} → {what}: {}",
            r.drop
                .as_ref()
                .map(|d| d.reason.clone())
                .unwrap_or_else(|| "OVN answers the sender itself".into())
        ),
        Verdict::Unresolved => {
            let nh = r.next_hop.as_ref();
            let addr = nh.map(|n| n.address.as_str()).unwrap_or("?");
            format!(
                "unresolved: {from} → {what}: router {} has no MAC for next hop {addr}{}; OVN sent an ARP/ND request{} and holds the packet until {addr} answers: check that {addr} is alive and `kubectl ko sbctl find MAC_Binding ip={addr}`",
                nh.and_then(|n| n.router.as_deref()).unwrap_or("?"),
                nh.and_then(|n| n.port.as_deref())
                    .map(|p| format!(" (port {p})"))
                    .unwrap_or_default(),
                nh.map(|n| format!(" to {} ports", n.copies.len()))
                    .unwrap_or_default()
            )
        }
        Verdict::Flooded => {
            let n = logical.flooded_to.len();
            let list = logical.flooded_to.join(", ");
            match (&r.next_hop, r.cause) {
                (Some(nh), _) => format!(
                    "flooded: {from} → {what}: no logical port owns {}; router {} {} for it on {n} ports ({list}) and nobody answers",
                    nh.address,
                    nh.router.as_deref().unwrap_or("?"),
                    if nh.address.contains(':') {
                        "sends an ND neighbour solicitation"
                    } else {
                        "ARPs"
                    }
                ),
                (None, Some(DropCause::Broadcast)) => format!(
                    "flooded: {from} → {what} is a broadcast/multicast: copies to {n} ports: {list}"
                ),
                _ => format!(
                    "flooded: {from} → {what}: no logical port owns the destination; copies to {n} ports: {list}"
                ),
            }
        }
        Verdict::Error => {
            format!("error: {from} → {what}: the trace neither delivered nor dropped the packet")
        }
    }
}

#[cfg(test)]
mod tests;
