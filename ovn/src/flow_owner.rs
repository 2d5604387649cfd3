//! What an OpenFlow rule that real packets hit means, and whose it is:
//! cookie → SB logical flow (stage, match, actions, `stage-hint`) or SB
//! Port_Binding / Multicast_Group ([`CookieIndex`]) → the NB row the hint
//! names → the Kubernetes object ([`NbSnapshot::policy_of_acl`], load
//! balancer, router object, logical switch port and its pod).
//!
//! The stage always comes from the rule's logical flow, never from the
//! OpenFlow table number (which moves between OVN releases).

use serde::{Deserialize, Serialize};

use crate::cookie::{CookieIndex, CookieOwner};
use crate::ovsdb_rows::LogicalFlow;
use crate::verdict::DropCause;
use crate::verdict::nb::{NbSnapshot, PolicyKind, PolicyRef};
use crate::verdict::routing::{self, RouterObject};

/// The object a rule belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Owner {
    /// `NetworkPolicy`, `SecurityGroup`, `NodeACL`, `SubnetACL`, `ACL`,
    /// `LoadBalancer`, `Route`, `RouterPolicy`, `NAT`, `LogicalSwitchPort`,
    /// `MulticastGroup`.
    pub kind: String,
    /// `ns/name` of a NetworkPolicy, the LSP name, the load balancer name...
    pub name: String,
    /// The rule inside it: the ACL (name, priority, action, match), the VIP,
    /// the route...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The pod behind a logical switch port (`ns/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Port group of a port-group ACL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_group: Option<String>,
    /// The VIP a load-balancer rule matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip: Option<Vip>,
    /// The Kubernetes Service behind that VIP (`ns/name:port`), filled by
    /// the caller, which reads the Services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A load balancer VIP in a logical match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vip {
    pub ip: std::net::IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `tcp`, `udp`, `sctp`, when the match names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = match self.ip {
            std::net::IpAddr::V6(v6) if self.port.is_some() => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        match (self.port, &self.protocol) {
            (Some(p), Some(proto)) => write!(f, "VIP {ip}:{p} ({proto})"),
            (Some(p), None) => write!(f, "VIP {ip}:{p}"),
            _ => write!(f, "VIP {ip}"),
        }
    }
}

/// A rule's meaning, from its cookie.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meaning {
    /// Logical stage (`ls_out_acl`); `None` for ovn-controller's physical rules.
    pub stage: Option<String>,
    /// Logical flow UUID prefix (= cookie).
    pub lflow: Option<String>,
    /// Logical match and actions.
    pub logical_match: Option<String>,
    pub logical_actions: Option<String>,
    /// One line on what this rule does.
    pub explanation: String,
    pub owner: Option<Owner>,
    /// Sends to every port of a multicast group (`_MC_flood`, `_MC_unknown`).
    pub flood: bool,
}

/// Explains `cookie` with what the indexes know. `watched_ports` are the
/// logical port names of the watched pods (for the physical port rules).
pub fn meaning(cookie: u64, index: &CookieIndex, nb: &NbSnapshot) -> Meaning {
    match index.owner(cookie) {
        CookieOwner::LogicalFlows(flows) => match flows.first() {
            Some(f) => of_logical_flow(f, nb),
            None => Meaning::default(),
        },
        CookieOwner::SbRows(rows) => {
            let Some(row) = rows.first() else {
                return Meaning::default();
            };
            if row.table == "Multicast_Group" {
                Meaning {
                    explanation: format!(
                        "ovn-controller: deliver to every member of multicast group {}",
                        row.name
                    ),
                    owner: Some(Owner {
                        kind: "MulticastGroup".into(),
                        name: row.name.clone(),
                        ..Owner::default()
                    }),
                    flood: row.name.contains("flood") || row.name.contains("unknown"),
                    ..Meaning::default()
                }
            } else {
                Meaning {
                    explanation: format!(
                        "ovn-controller: physical rule of logical port {} (classification, port security check or output)",
                        row.name
                    ),
                    owner: Some(lsp_owner(&row.name, nb)),
                    ..Meaning::default()
                }
            }
        }
        CookieOwner::None if cookie == 0 => Meaning {
            explanation:
                "ovn-controller: physical pipeline rule shared by every port (no logical flow)"
                    .into(),
            ..Meaning::default()
        },
        CookieOwner::None => Meaning {
            explanation: format!(
                "cookie {cookie:#x} matches no logical flow or port binding read (removed since, or from another controller)"
            ),
            ..Meaning::default()
        },
    }
}

fn of_logical_flow(f: &LogicalFlow, nb: &NbSnapshot) -> Meaning {
    let stage = f.stage.clone().unwrap_or_default();
    let summary = crate::catalog::stage(&stage)
        .map(|s| s.summary.to_string())
        .unwrap_or_else(|| format!("logical stage {stage}"));
    Meaning {
        explanation: summary,
        owner: owner_of_flow(f, &stage, nb),
        flood: f.actions.contains("\"_MC_flood") || f.actions.contains("\"_MC_unknown"),
        stage: f.stage.clone(),
        lflow: f.cookie().map(|c| format!("{c:08x}")),
        logical_match: Some(f.match_expr.clone()),
        logical_actions: Some(f.actions.clone()),
    }
}

fn owner_of_flow(f: &LogicalFlow, stage: &str, nb: &NbSnapshot) -> Option<Owner> {
    let hint = f.stage_hint.as_deref();
    if stage.contains("_acl") {
        let policy = match hint.and_then(|h| nb.acl(h)) {
            Some(acl) => Some(nb.policy_of_acl(acl)),
            None => nb.policy_of_match(&f.match_expr),
        };
        return policy.map(policy_owner);
    }
    // ls_in_lb, ls_in_pre_stateful, lr_in_dnat, hairpin, affinity: any
    // flow whose hint is a Load_Balancer row (UUIDs are unique across tables)
    if let Some(lb) = hint.and_then(|h| nb.load_balancer(h)) {
        let vip = vip_of(&f.match_expr);
        return Some(Owner {
            kind: "LoadBalancer".into(),
            name: lb.name.clone(),
            rule: vip.as_ref().map(Vip::to_string),
            vip,
            ..Owner::default()
        });
    }
    if let Some(obj) = hint.and_then(|h| routing::object_of(stage, h, nb)) {
        let (kind, router) = match &obj {
            RouterObject::Route(r) => ("Route", r.router.clone()),
            RouterObject::Policy(p) => ("RouterPolicy", p.router.clone()),
            RouterObject::Nat(n) => ("NAT", n.router.clone()),
        };
        return Some(Owner {
            kind: kind.into(),
            name: router.unwrap_or_default(),
            rule: Some(obj.describe()),
            ..Owner::default()
        });
    }
    // port security, L2 lookup, ARP/ND/DHCP responders name their port in the match
    quoted_port(&f.match_expr).map(|p| lsp_owner(&p, nb))
}

fn policy_owner(p: PolicyRef) -> Owner {
    let kind = match p.kind {
        PolicyKind::NetworkPolicy => "NetworkPolicy",
        PolicyKind::SecurityGroup => "SecurityGroup",
        PolicyKind::NodeAcl => "NodeACL",
        PolicyKind::SubnetAcl => "SubnetACL",
        PolicyKind::PrivateSubnet => "PrivateSubnet",
        PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
        PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
        PolicyKind::Acl => "ACL",
    };
    let rule = p.acl.as_ref().map(|a| {
        let name = if a.name.is_empty() {
            String::new()
        } else {
            format!("{} ", a.name)
        };
        format!(
            "{name}({} priority {} {}: {})",
            a.direction, a.priority, a.action, a.match_expr
        )
    });
    Owner {
        kind: kind.into(),
        name: p
            .name
            .clone()
            .or_else(|| p.acl.as_ref().map(|a| a.name.clone()))
            .or_else(|| p.port_group.clone())
            .unwrap_or_default(),
        rule,
        port_group: p.port_group,
        ..Owner::default()
    }
}

/// The owner of logical switch port `name`, with its pod when Kube-OVN
/// recorded one (`external_ids:pod`).
pub fn lsp_owner(name: &str, nb: &NbSnapshot) -> Owner {
    let pod = nb
        .lsp(name)
        .and_then(|l| l.external_ids.get("pod").cloned());
    Owner {
        kind: "LogicalSwitchPort".into(),
        name: name.to_string(),
        pod,
        ..Owner::default()
    }
}

/// The first `inport == "x"` / `outport == "x"` port of a logical match.
fn quoted_port(m: &str) -> Option<String> {
    for key in ["inport == \"", "outport == \""] {
        if let Some(at) = m.find(key) {
            let rest = &m[at + key.len()..];
            let end = rest.find('"')?;
            let name = &rest[..end];
            if !name.starts_with("_MC_") {
                return Some(name.to_string());
            }
        }
    }
    None
}

/// `ip4.dst == 10.96.0.10 && tcp.dst == 80` → 10.96.0.10, port 80, tcp
/// (`ls_in_lb`, `ls_in_pre_stateful`, `lr_in_dnat`; newer OVN may match the
/// VIP in `reg0`/`xxreg0` and the port in `reg1[0..15]`).
pub fn vip_of(m: &str) -> Option<Vip> {
    let ip = ["ip4.dst == ", "ip6.dst == ", "reg0 == ", "xxreg0 == "]
        .iter()
        .find_map(|k| {
            let at = m.find(k)?;
            let rest = &m[at + k.len()..];
            rest.split(|c: char| c.is_whitespace() || c == ')' || c == '&')
                .next()?
                .parse::<std::net::IpAddr>()
                .ok()
        })?;
    let (port, protocol) = [
        ("tcp.dst == ", Some("tcp")),
        ("udp.dst == ", Some("udp")),
        ("sctp.dst == ", Some("sctp")),
        ("reg1[0..15] == ", None),
    ]
    .iter()
    .find_map(|(k, proto)| {
        let at = m.find(k)?;
        let digits: String = m[at + k.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some((digits.parse::<u16>().ok(), proto.map(String::from)))
    })
    .unwrap_or((None, None));
    Some(Vip {
        ip,
        port,
        protocol: protocol.or_else(|| {
            // reg1[16..23] carries the IP protocol number where reg1[0..15] is the port
            m.contains("reg1[16..23] == 6")
                .then(|| "tcp".to_string())
                .or_else(|| m.contains("reg1[16..23] == 17").then(|| "udp".to_string()))
        }),
    })
}

/// Whether logical actions end in a drop: `drop;`, or northd's
/// `/* drop */` (an empty action list after register clears, as OVN >= 24.03
/// writes the ACL drop verdict; its OpenFlow rule then has no `drop`
/// action, only loads).
pub fn is_logical_drop(actions: &str) -> bool {
    actions.contains("/* drop */") || actions.split(';').any(|a| a.trim() == "drop")
}

/// Why a dropping rule drops, from its stage.
pub fn drop_cause(stage: Option<&str>) -> DropCause {
    let Some(s) = stage else {
        return DropCause::Other;
    };
    if s.contains("_acl") {
        DropCause::Acl
    } else if s.contains("port_sec") {
        DropCause::PortSecurity
    } else if s.contains("ip_routing") || s.contains("policy") {
        DropCause::NoRoute
    } else if s.contains("ttl") || s.contains("ip_input") {
        DropCause::Ttl
    } else if s.contains("l2_lkup") || s.contains("l2_unknown") || s.contains("arp_resolve") {
        DropCause::UnknownDestination
    } else {
        DropCause::Other
    }
}

/// One sentence on a drop cause.
pub fn drop_reason(cause: DropCause, owner: Option<&Owner>) -> String {
    let by = owner
        .map(|o| format!(" ({} {})", o.kind, o.name))
        .unwrap_or_default();
    match cause {
        DropCause::Acl => format!("dropped by an ACL{by}"),
        DropCause::PortSecurity => {
            format!("port security: the source MAC/IP is not one the logical port may use{by}")
        }
        DropCause::NoRoute => format!("no route / router policy drop{by}"),
        DropCause::RoutePolicy => format!("a router policy drops it{by}"),
        DropCause::Ttl => format!("TTL expired or invalid IP on a router{by}"),
        DropCause::UnknownDestination => format!("unknown destination on the logical switch{by}"),
        DropCause::LbNoBackends => format!("a load balancer VIP with no backends{by}"),
        DropCause::LbReject => format!("a load balancer VIP without backends rejects it{by}"),
        DropCause::UnresolvedNextHop => {
            format!("held while the router resolves the next hop's MAC{by}")
        }
        DropCause::UnboundPort => format!("the destination port is not bound to a chassis{by}"),
        DropCause::Broadcast => format!("a broadcast/multicast copy{by}"),
        DropCause::WrongPort => format!("sent to a port that does not own the destination{by}"),
        DropCause::Other => format!("dropped{by}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_vips_from_matches() {
        assert_eq!(
            quoted_port("inport == \"client-1.default\" && eth.src == {0a:58:0a:10:00:08}")
                .as_deref(),
            Some("client-1.default")
        );
        assert_eq!(quoted_port("outport == \"_MC_flood\""), None);
        // `ovn-sbctl lflow-list ovn-default` on the 25.03 sandbox (Service default/web)
        let vip = vip_of("ct.new && ip4.dst == 10.96.100.10 && tcp.dst == 80").unwrap();
        assert_eq!(vip.to_string(), "VIP 10.96.100.10:80 (tcp)");
        assert_eq!(vip.port, Some(80));
        let vip = vip_of("reg0[2] == 1 && ip4.dst == 10.96.0.10 && udp.dst == 53").unwrap();
        assert_eq!(vip.to_string(), "VIP 10.96.0.10:53 (udp)");
        assert_eq!(vip_of("ip4.dst == 10.16.0.0/16"), None);
        assert_eq!(drop_cause(Some("ls_out_acl")), DropCause::Acl);
        assert_eq!(
            drop_cause(Some("ls_in_apply_port_sec")),
            DropCause::PortSecurity
        );
        assert_eq!(drop_cause(None), DropCause::Other);
        // ls_out_acl_action on the 25.03 sandbox (`ovn-sbctl lflow-list ovn-default`)
        assert!(is_logical_drop(
            "reg8[16] = 0; reg8[17] = 0; reg8[18] = 0; reg8[30..31] = 0; /* drop */"
        ));
        assert!(is_logical_drop("drop;"));
        assert!(!is_logical_drop(
            "reg8[16] = 0; reg8[17] = 0; reg8[18] = 0; reg8[30..31] = 0; next;"
        ));
    }
}
