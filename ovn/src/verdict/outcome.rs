//! From the terminal events of an `ovn-trace` tree (every ct fork,
//! recirculation, clone, multicast copy and generated packet) to one class of
//! outcome. Only stage names are used, never table numbers, so the rules hold
//! for every OVN version.
//!
//! The rule the whole verdict rests on: `Delivered` needs an output of the
//! traced packet itself (not a packet OVN generated) to a logical port that
//! owns the destination (see [`Expect::owners`]), or, for an ARP/ND request
//! to an address some port owns, OVN's responder answering the sender.

use crate::ovn_trace::{ControllerAction, Delivery, DropPoint, DropReason, Terminal};

/// What the caller knows about the destination.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Logical ports that legitimately receive the packet: the LSP whose
    /// addresses hold the destination IP, the LSP of the chosen LB backend,
    /// the LSP owning a next hop a router forwarded to.
    pub owners: Vec<String>,
    /// The destination IP as ovn-trace prints it.
    pub dst_ip: String,
    /// The traced packet is an ARP request / ND solicitation.
    pub address_request: bool,
}

/// One class of outcome with the terminal event that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// The traced packet left OVN at a port owning the destination.
    Delivered {
        port: String,
    },
    /// OVN answered the sender instead (`reject`, `tcp_reset`, `icmp4/6`).
    Rejected {
        action: ControllerAction,
    },
    /// A router holds the packet while it resolves the next hop.
    Unresolved {
        action: ControllerAction,
        /// Where the ARP/ND request copies went.
        copies: Vec<String>,
    },
    /// Copies went to several ports (broadcast/multicast/unknown), or the
    /// router ARPs for a destination no port owns.
    Flooded {
        group: Option<String>,
        ports: Vec<String>,
        /// The copies are the router's ARP/ND request for the destination.
        resolving: Option<ControllerAction>,
    },
    /// The traced packet left OVN at a port that does not own the destination.
    WrongPort {
        port: String,
    },
    Dropped {
        at: Option<DropPoint>,
    },
    /// No terminal event at all.
    Nothing,
}

const REPLIES: &[&str] = &[
    "reject",
    "tcp_reset",
    "sctp_abort",
    "icmp4",
    "icmp4_error",
    "icmp6",
    "icmp6_error",
];

fn is_router_stage(a: &ControllerAction) -> bool {
    a.stage.as_deref().is_some_and(|s| s.starts_with("lr_"))
}

/// `ip4.dst`/`ip6.dst` or the destination address itself.
pub fn next_hop_is_destination(next_hop: Option<&str>, dst_ip: &str) -> bool {
    matches!(next_hop, Some("ip4.dst" | "ip6.dst")) || next_hop == Some(dst_ip)
}

/// Classifies the terminal events (see the module doc for the rule).
pub fn classify(terminals: &[Terminal], exp: &Expect) -> Class {
    let own_outputs: Vec<&Delivery> = terminals
        .iter()
        .filter_map(|t| match t {
            Terminal::Output(d) if d.generated_by.is_none() => Some(d),
            _ => None,
        })
        .collect();
    let own_actions: Vec<&ControllerAction> = terminals
        .iter()
        .filter_map(|t| match t {
            Terminal::Controller(c) if c.generated_by.is_none() => Some(c),
            _ => None,
        })
        .collect();

    if let Some(d) = own_outputs.iter().find(|d| exp.owners.contains(&d.port)) {
        return Class::Delivered {
            port: d.port.clone(),
        };
    }
    // the ARP/ND responder answers for an address a port owns
    if exp.address_request
        && !exp.owners.is_empty()
        && let Some(d) = own_outputs
            .iter()
            .find(|d| d.back_to_sender && d.multicast.is_none())
    {
        return Class::Delivered {
            port: d.port.clone(),
        };
    }
    if let Some(a) = own_actions
        .iter()
        .find(|a| REPLIES.contains(&a.action.as_str()))
    {
        return Class::Rejected {
            action: (*a).clone(),
        };
    }
    if let Some(a) = own_actions
        .iter()
        .find(|a| matches!(a.action.as_str(), "arp" | "nd_ns") && is_router_stage(a))
    {
        let copies: Vec<String> = terminals
            .iter()
            .filter_map(|t| match t {
                Terminal::Output(d) if d.generated_by.as_deref() == Some(a.action.as_str()) => {
                    Some(d.port.clone())
                }
                _ => None,
            })
            .collect();
        if exp.owners.is_empty() && next_hop_is_destination(a.next_hop.as_deref(), &exp.dst_ip) {
            return Class::Flooded {
                group: None,
                ports: copies,
                resolving: Some((*a).clone()),
            };
        }
        return Class::Unresolved {
            action: (*a).clone(),
            copies,
        };
    }
    // no port owns the address: the underlay behind a localnet port does
    // (reached directly or as the only member of the unknown-MAC group)
    if exp.owners.is_empty()
        && let Some(d) = own_outputs.iter().find(|d| {
            d.port_type.as_deref() == Some("localnet")
                && matches!(d.multicast.as_deref(), None | Some("_MC_unknown"))
        })
    {
        return Class::Delivered {
            port: d.port.clone(),
        };
    }
    let flooded: Vec<&&Delivery> = own_outputs
        .iter()
        .filter(|d| d.multicast.is_some())
        .collect();
    if !flooded.is_empty() {
        return Class::Flooded {
            group: flooded.first().and_then(|d| d.multicast.clone()),
            ports: flooded.iter().map(|d| d.port.clone()).collect(),
            resolving: None,
        };
    }
    if let Some(d) = own_outputs.first() {
        return Class::WrongPort {
            port: d.port.clone(),
        };
    }
    let drops: Vec<&DropPoint> = terminals
        .iter()
        .filter_map(|t| match t {
            Terminal::Drop(d) => Some(d),
            _ => None,
        })
        .collect();
    // a copy not sent back to its own port matters only when nothing else happened
    let real = drops.iter().rfind(|d| d.reason != DropReason::Loopback);
    if let Some(d) = real.or(drops.last()) {
        return Class::Dropped {
            at: Some((*d).clone()),
        };
    }
    if terminals.is_empty() {
        Class::Nothing
    } else {
        Class::Dropped { at: None }
    }
}
