//! What each logical stage, register bit and action means.
//!
//! Built from the Kube-OVN notes in seed 003 and the ovn-northd(8) manual and
//! `northd/northd.h` stage list of OVN 23.03, 24.03, 25.03 and 26.03 (tests
//! assert every stage in each release's `lflow-list` capture, and every stage
//! 24.03's source defines, is catalogued).
//!
//! The catalogue holds explanations only, keyed by stage name: table numbers
//! differ between releases and come from the cluster (the SB `Logical_Flow`
//! rows and, for OpenFlow, [`crate::layout`]).
//!
//! - [`stage`]`("ls_in_acl")` → [`StageInfo`]: datapath kind, pipeline,
//!   one-line explanation, registers it reads/writes.
//! - [`explain_register`]`(DatapathKind::Switch, "reg0[8]")` → meaning; the
//!   same register means different things in switch and router pipelines.
//! - [`registers_in`]`(kind, "reg0[7] = 1; next;")` → every register an
//!   action or match reads/writes, explained.
//! - [`explain_action`]`("ct_lb_mark")` → meaning of an OVN action.
//! - [`explain_openflow_field`] for `NXM_NX_XXREG0[111]`, `reg14`, `metadata`...

use serde::Serialize;

use crate::ovsdb_rows::Pipeline;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatapathKind {
    /// Logical switch (`ls_*` stages).
    Switch,
    /// Logical router (`lr_*` stages).
    Router,
}

impl DatapathKind {
    /// From a stage name prefix (`ls_`/`lr_`).
    pub fn of_stage(stage: &str) -> Option<Self> {
        if stage.starts_with("ls_") {
            Some(DatapathKind::Switch)
        } else if stage.starts_with("lr_") {
            Some(DatapathKind::Router)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageInfo {
    pub name: &'static str,
    pub kind: DatapathKind,
    pub pipeline: Pipeline,
    /// What the stage does, in one line.
    pub summary: &'static str,
    /// Registers/bits this stage sets or tests, with what they carry here.
    pub registers: &'static [(&'static str, &'static str)],
}

use DatapathKind::{Router as R, Switch as S};
use Pipeline::{Egress as E, Ingress as I};

macro_rules! st {
    ($name:literal, $kind:expr, $pipe:expr, $summary:literal) => {
        st!($name, $kind, $pipe, $summary, [])
    };
    ($name:literal, $kind:expr, $pipe:expr, $summary:literal, [$(($r:literal, $m:literal)),* $(,)?]) => {
        StageInfo {
            name: $name,
            kind: $kind,
            pipeline: $pipe,
            summary: $summary,
            registers: &[$(($r, $m)),*],
        }
    };
}

static STAGES: &[StageInfo] = &[
    // ---- logical switch, ingress (OVN 23.03 numbering)
    st!(
        "ls_in_check_port_sec",
        S,
        I,
        "Admission: drops multicast-source and VLAN-tagged frames and checks the inport's port security (MAC/IP the LSP may send from); the verdict is applied in the next table.",
        [
            (
                "reg0[15]",
                "written: 1 = port security check failed (check_in_port_sec())"
            ),
            (
                "reg0[14]",
                "written: packet came from a HW VTEP (ramp) port"
            )
        ]
    ),
    st!(
        "ls_in_apply_port_sec",
        S,
        I,
        "Drops the packet if the previous table found a port-security violation (spoofed MAC or IP).",
        [("reg0[15]", "read: 1 = drop, port security failed")]
    ),
    st!(
        "ls_in_lookup_fdb",
        S,
        I,
        "For ports with 'unknown' addresses, looks up the source MAC in the switch's MAC learning table (FDB).",
        [(
            "reg0[11]",
            "written: 1 = source MAC already learnt on this port"
        )]
    ),
    st!(
        "ls_in_put_fdb",
        S,
        I,
        "Learns the source MAC of 'unknown'-address ports into the FDB when the lookup missed.",
        [("reg0[11]", "read: 0 = not yet learnt, store it")]
    ),
    st!(
        "ls_in_pre_acl",
        S,
        I,
        "Marks IP traffic for conntrack when the switch has stateful ACLs (NetworkPolicy); router, localnet and multicast/ND traffic skips it.",
        [
            (
                "reg0[0]",
                "written: 1 = send to conntrack (defragment) before ACLs"
            ),
            (
                "reg0[16]",
                "written: matched an allow-stateless ACL, bypass conntrack"
            )
        ]
    ),
    st!(
        "ls_in_pre_lb",
        S,
        I,
        "Marks IP traffic for conntrack when the switch has load balancers (Kube-OVN Service VIPs) so established LB sessions are DNATed.",
        [(
            "reg0[2]",
            "written: 1 = send through ct_lb_mark (conntrack with NAT)"
        )]
    ),
    st!(
        "ls_in_pre_stateful",
        S,
        I,
        "Sends the packet to conntrack (ct_lb_mark for LB hints, ct_next for ACL hints); later stages see ct.new/ct.est/ct.rel.",
        [
            ("reg0[2]", "read: LB hint -> ct_lb_mark"),
            ("reg0[0]", "read: ACL hint -> ct_next"),
            ("reg1", "written: original destination IPv4 (VIP) for LB"),
            ("reg2[0..15]", "written: original L4 destination port")
        ]
    ),
    st!(
        "ls_in_acl_hint",
        S,
        I,
        "Computes hints from the conntrack state so only the relevant ACL flows are evaluated (new, established, blocked).",
        [
            (
                "reg0[7]",
                "written: may match an allow-related ACL and need a new commit"
            ),
            (
                "reg0[8]",
                "written: may match an allow-related ACL, connection already committed"
            ),
            ("reg0[9]", "written: may match a drop/reject ACL"),
            (
                "reg0[10]",
                "written: may match a drop/reject ACL on a previously allowed connection (mark it blocked)"
            )
        ]
    ),
    st!(
        "ls_in_acl",
        S,
        I,
        "from-lport ACLs: egress NetworkPolicy/SecurityGroup rules of the sending pod (Kube-OVN names them np/<policy>.<ns>/egress/...); allow, allow-related, drop or reject.",
        [
            ("reg0[7..10]", "read: hints from ls_in_acl_hint"),
            (
                "reg0[1]",
                "written: 1 = commit this connection in ls_in_stateful"
            ),
            ("reg0[13]", "written: commit an ACL label"),
            ("reg3", "written: ACL label value"),
            (
                "reg0[17]",
                "written: reply/related traffic of an allowed session"
            )
        ]
    ),
    st!(
        "ls_in_qos_mark",
        S,
        I,
        "from-lport QoS: sets DSCP marks configured in NB QoS rows."
    ),
    st!(
        "ls_in_qos_meter",
        S,
        I,
        "from-lport QoS: rate-limits with meters (Kube-OVN ingress/egress rate annotations)."
    ),
    st!(
        "ls_in_lb_aff_check",
        S,
        I,
        "Load-balancer session affinity: checks whether this client already has a backend (sessionAffinity: ClientIP).",
        [(
            "reg9[6]",
            "written: 1 = known affinity session, reuse its backend"
        )]
    ),
    st!(
        "ls_in_lb",
        S,
        I,
        "Service load balancing: a new connection to a VIP:port is DNATed to one backend with ct_lb_mark(backends=...); a VIP with no backends is dropped or rejected.",
        [
            ("reg0[1]", "cleared: the LB commit replaces the ACL commit"),
            ("reg1", "written: VIP (IPv4)"),
            ("reg2[0..15]", "written: VIP port")
        ]
    ),
    st!(
        "ls_in_lb_aff_learn",
        S,
        I,
        "Load-balancer session affinity: remembers the chosen backend for this client for the affinity timeout."
    ),
    st!(
        "ls_in_pre_hairpin",
        S,
        I,
        "After load balancing, checks whether the client is itself the chosen backend (hairpin) or this is a reply to hairpinned traffic.",
        [
            ("reg0[6]", "written: 1 = hairpin (backend == client)"),
            ("reg0[12]", "written: 1 = reply of hairpinned traffic")
        ]
    ),
    st!(
        "ls_in_nat_hairpin",
        S,
        I,
        "For hairpinned LB traffic, SNATs the source to the VIP so the backend replies through OVN.",
        [("reg0[6]", "read"), ("reg0[12]", "read")]
    ),
    st!(
        "ls_in_hairpin",
        S,
        I,
        "Sends hairpinned traffic back out of the port it came in on.",
        [("reg0[6]", "read"), ("reg0[12]", "read")]
    ),
    st!(
        "ls_in_acl_after_lb",
        S,
        I,
        "ACLs marked apply-after-lb (match on the backend address after DNAT).",
        [
            ("reg0[1]", "written: commit hint"),
            ("reg0[17]", "read: reply/related traffic is allowed")
        ]
    ),
    st!(
        "ls_in_stateful",
        S,
        I,
        "Commits the connection to conntrack when an ACL asked for it (ct_commit, clearing ct_mark.blocked / storing the label).",
        [
            ("reg0[1]", "read: 1 = commit"),
            ("reg0[13]", "read: also commit the ACL label from reg3")
        ]
    ),
    st!(
        "ls_in_arp_rsp",
        S,
        I,
        "ARP/ND responder: answers ARP requests and IPv6 neighbor solicitations for known LSP addresses (and router ports) directly, back to the inport."
    ),
    st!(
        "ls_in_dhcp_options",
        S,
        I,
        "Builds DHCPv4/DHCPv6 replies for ports with DHCP options (Kube-OVN subnet dhcpOptions).",
        [("reg0[3]", "written: 1 = put_dhcp_opts succeeded")]
    ),
    st!(
        "ls_in_dhcp_response",
        S,
        I,
        "Sends the DHCP reply built in the previous table back to the inport.",
        [("reg0[3]", "read")]
    ),
    st!(
        "ls_in_dns_lookup",
        S,
        I,
        "Resolves DNS queries against NB DNS records configured on the switch.",
        [("reg0[4]", "written: 1 = dns_lookup resolved the name")]
    ),
    st!(
        "ls_in_dns_response",
        S,
        I,
        "Sends the DNS answer built in the previous table back to the inport.",
        [("reg0[4]", "read")]
    ),
    st!(
        "ls_in_external_port",
        S,
        I,
        "Drops ARP/ND/DHCP from 'external' ports on chassis that do not host them."
    ),
    st!(
        "ls_in_l2_lkup",
        S,
        I,
        "L2 switching: picks the outport from the destination MAC (pod LSP, router port, multicast/flood group); unknown MACs go to the 'unknown' ports.",
        [("reg0[11]", "read: FDB result")]
    ),
    st!(
        "ls_in_l2_unknown",
        S,
        I,
        "Handles destinations no port claims: floods to ports with 'unknown' addresses (localnet/underlay) or drops (outport \"none\")."
    ),
    // ---- logical switch, egress
    st!(
        "ls_out_pre_acl",
        S,
        E,
        "Marks IP traffic for conntrack before to-lport ACLs (skipped for router and localnet ports).",
        [("reg0[0]", "written: send to conntrack")]
    ),
    st!(
        "ls_out_pre_lb",
        S,
        E,
        "Marks IP traffic for conntrack so load-balanced replies are un-DNATed.",
        [("reg0[2]", "written: send through ct_lb_mark")]
    ),
    st!(
        "ls_out_pre_stateful",
        S,
        E,
        "Sends the packet to conntrack (ct_lb_mark or ct_next) based on the egress hints.",
        [("reg0[0]", "read"), ("reg0[2]", "read")]
    ),
    st!(
        "ls_out_acl_hint",
        S,
        E,
        "Conntrack-state hints for the to-lport ACLs, as in ls_in_acl_hint.",
        [
            ("reg0[7]", "written"),
            ("reg0[8]", "written"),
            ("reg0[9]", "written"),
            ("reg0[10]", "written")
        ]
    ),
    st!(
        "ls_out_acl",
        S,
        E,
        "to-lport ACLs: ingress NetworkPolicy/SecurityGroup rules of the receiving pod (np/<policy>.<ns>/ingress/...); this is where a NetworkPolicy blocks traffic to a pod.",
        [
            ("reg0[7..10]", "read: hints"),
            ("reg0[1]", "written: commit hint"),
            ("reg0[13]", "written: label hint"),
            ("reg3", "written: ACL label")
        ]
    ),
    st!("ls_out_qos_mark", S, E, "to-lport QoS DSCP marking."),
    st!("ls_out_qos_meter", S, E, "to-lport QoS rate limiting."),
    st!(
        "ls_out_stateful",
        S,
        E,
        "Commits connections the to-lport ACLs allowed.",
        [("reg0[1]", "read"), ("reg0[13]", "read")]
    ),
    st!(
        "ls_out_check_port_sec",
        S,
        E,
        "Checks egress port security of the outport (may this port receive packets for that MAC/IP).",
        [("reg0[15]", "written: 1 = port security check failed")]
    ),
    st!(
        "ls_out_apply_port_sec",
        S,
        E,
        "Drops on an egress port-security violation, otherwise outputs to the port.",
        [("reg0[15]", "read")]
    ),
    // ---- logical router, ingress
    st!(
        "lr_in_admission",
        R,
        I,
        "Accepts only frames addressed to the router port's MAC (or broadcast/multicast) and not VLAN-tagged; stores the port MAC.",
        [(
            "xreg0[0..47]",
            "written: MAC of the router port the packet came in on"
        )]
    ),
    st!(
        "lr_in_lookup_neighbor",
        R,
        I,
        "Checks whether the sender's IP/MAC from ARP/ND is already in MAC_Binding, to decide whether to learn it.",
        [
            (
                "reg9[2]",
                "written: 1 = binding known or learning not needed"
            ),
            ("reg9[3]", "written: 1 = IP may be learnt")
        ]
    ),
    st!(
        "lr_in_learn_neighbor",
        R,
        I,
        "Learns a new MAC binding (put_arp/put_nd) when the lookup missed.",
        [("reg9[2]", "read"), ("reg9[3]", "read")]
    ),
    st!(
        "lr_in_ip_input",
        R,
        I,
        "Router's own IP handling: answers pings/ARP to router IPs, drops other traffic to them, drops martians, sends ICMP time-exceeded when TTL runs out."
    ),
    st!(
        "lr_in_unsnat",
        R,
        I,
        "Reverses SNAT on replies coming back to a SNAT/EIP address (Kube-OVN NAT gateway, EIP/SNAT rules)."
    ),
    st!(
        "lr_in_defrag",
        R,
        I,
        "Sends traffic to router load-balancer VIPs or DNAT addresses to conntrack (defragmentation).",
        [
            ("reg0", "written: destination IPv4 (VIP)"),
            ("reg9[16..31]", "written: original L4 destination port")
        ]
    ),
    st!(
        "lr_in_lb_aff_check",
        R,
        I,
        "Router load-balancer session affinity check.",
        [("reg9[6]", "written: known affinity session")]
    ),
    st!(
        "lr_in_dnat",
        R,
        I,
        "DNAT: router load balancers (ct_lb_mark to a backend) and dnat_and_snat/EIP rules.",
        [("reg0", "read: VIP"), ("reg9[16..31]", "read: VIP port")]
    ),
    st!(
        "lr_in_lb_aff_learn",
        R,
        I,
        "Router load-balancer session affinity learning."
    ),
    st!(
        "lr_in_ecmp_stateful",
        R,
        I,
        "ECMP symmetric reply: remembers which next hop a connection used so replies return the same way.",
        [("reg9[5]", "written: known ECMP next hop")]
    ),
    st!(
        "lr_in_nd_ra_options",
        R,
        I,
        "Builds IPv6 router advertisements for router solicitations.",
        [("reg0[5]", "written: 1 = put_nd_ra_opts succeeded")]
    ),
    st!(
        "lr_in_nd_ra_response",
        R,
        I,
        "Sends the router advertisement back to the soliciting port.",
        [("reg0[5]", "read")]
    ),
    st!(
        "lr_in_ip_routing_pre",
        R,
        I,
        "Selects the route table for the inport (Kube-OVN custom route tables; 0 = main).",
        [("reg7", "written: route table id")]
    ),
    st!(
        "lr_in_ip_routing",
        R,
        I,
        "Routing (longest prefix match over connected subnets and static routes such as 0.0.0.0/0 via the join gateway): decrements TTL, sets next hop, source IP, source MAC and outport.",
        [
            ("reg7", "read: route table id"),
            ("reg0", "written: next-hop IPv4 (xxreg0 for IPv6)"),
            (
                "reg1",
                "written: IPv4 of the outport used as source (xxreg1 for IPv6)"
            ),
            ("reg8[0..15]", "written: ECMP group id (0 = no ECMP)"),
            ("reg8[16..31]", "written: ECMP member id")
        ]
    ),
    st!(
        "lr_in_ip_routing_ecmp",
        R,
        I,
        "Picks the ECMP member route when the route has several next hops.",
        [
            ("reg8[0..15]", "read: ECMP group"),
            ("reg8[16..31]", "read: ECMP member"),
            ("reg0", "written: next hop"),
            ("reg1", "written: source IP")
        ]
    ),
    st!(
        "lr_in_policy",
        R,
        I,
        "Logical router policies (Kube-OVN lr-policies: 31000 allow to subnet CIDRs, 30000 reroute to node IPs, 29000 reroute to gateway nodes for distributed/centralized subnets); may override the routing decision.",
        [
            ("reg0", "written on reroute: new next hop"),
            ("reg1", "written on reroute: source IP"),
            ("reg8[0..15]", "written: ECMP group for policy next hops")
        ]
    ),
    st!(
        "lr_in_policy_ecmp",
        R,
        I,
        "Picks among the next hops of a reroute policy with several nexthops.",
        [("reg8[0..15]", "read"), ("reg8[16..31]", "read")]
    ),
    st!(
        "lr_in_arp_resolve",
        R,
        I,
        "Resolves the next hop's MAC: from static bindings of known ports, else from MAC_Binding (get_arp/get_nd); unknown leaves eth.dst zero.",
        [("reg0", "read: next-hop IPv4 (xxreg0 for IPv6)")]
    ),
    st!(
        "lr_in_chk_pkt_len",
        R,
        I,
        "Checks packet size against the gateway port MTU (options:gateway_mtu).",
        [("reg9[1]", "written: 1 = packet larger than the MTU")]
    ),
    st!(
        "lr_in_larger_pkts",
        R,
        I,
        "Answers oversized packets with ICMP fragmentation-needed / packet-too-big.",
        [("reg9[1]", "read")]
    ),
    st!(
        "lr_in_gw_redirect",
        R,
        I,
        "Sends traffic for a distributed gateway port to the chassis that hosts it (chassisredirect port)."
    ),
    st!(
        "lr_in_arp_request",
        R,
        I,
        "If the next hop's MAC is still unknown, sends an ARP request / neighbor solicitation instead of the packet (the packet is dropped); otherwise outputs it.",
        [
            ("reg0", "read: target IP of the ARP request"),
            ("reg1", "read: sender IP of the ARP request")
        ]
    ),
    // ---- logical router, egress
    st!(
        "lr_out_chk_dnat_local",
        R,
        E,
        "Checks whether the destination is a dnat_and_snat address handled on this chassis.",
        [("reg9[4]", "written: 1 = destination NAT IP is local")]
    ),
    st!(
        "lr_out_undnat",
        R,
        E,
        "Reverses DNAT on replies from load-balancer backends / DNAT targets."
    ),
    st!(
        "lr_out_post_undnat",
        R,
        E,
        "Commits un-DNATed new connections so later SNAT sees them."
    ),
    st!(
        "lr_out_snat",
        R,
        E,
        "SNAT: source NAT for snat/dnat_and_snat rules (Kube-OVN EIP/SNAT, centralized gateway)."
    ),
    st!(
        "lr_out_post_snat",
        R,
        E,
        "Post-SNAT handling (force_snat_for_lb / for DNAT)."
    ),
    st!(
        "lr_out_egr_loop",
        R,
        E,
        "Hairpins traffic between two NATed addresses behind the same distributed gateway back into the router.",
        [("reg9[0]", "written: egress loopback")]
    ),
    st!(
        "lr_out_delivery",
        R,
        E,
        "Outputs the packet to the router port chosen by routing."
    ),
    // ---- stages of other OVN releases (names only; numbers differ)
    st!(
        "ls_in_port_sec_l2",
        S,
        I,
        "Older OVN: ingress L2 port security (source MAC must belong to the inport)."
    ),
    st!(
        "ls_in_port_sec_ip",
        S,
        I,
        "Older OVN: ingress IP port security (source IP must belong to the inport)."
    ),
    st!(
        "ls_in_port_sec_nd",
        S,
        I,
        "Older OVN: ARP/ND port security (ARP/ND sender must belong to the inport)."
    ),
    st!(
        "ls_out_port_sec_ip",
        S,
        E,
        "Older OVN: egress IP port security of the outport."
    ),
    st!(
        "ls_out_port_sec_l2",
        S,
        E,
        "Older OVN: egress L2 port security, then output."
    ),
    st!(
        "ls_in_after_lb",
        S,
        I,
        "Older/other OVN: rewrites the destination MAC after LB DNAT."
    ),
    st!(
        "ls_in_acl_eval",
        S,
        I,
        "Newer OVN: from-lport ACL evaluation (verdict bits, applied in ls_in_acl_action)."
    ),
    st!(
        "ls_in_acl_action",
        S,
        I,
        "Newer OVN: applies the from-lport ACL verdict."
    ),
    st!(
        "ls_in_acl_after_lb_eval",
        S,
        I,
        "Newer OVN: apply-after-lb ACL evaluation."
    ),
    st!(
        "ls_in_acl_after_lb_action",
        S,
        I,
        "Newer OVN: applies the apply-after-lb ACL verdict."
    ),
    st!(
        "ls_out_acl_eval",
        S,
        E,
        "Newer OVN: to-lport ACL evaluation (NetworkPolicy ingress rules)."
    ),
    st!(
        "ls_out_acl_action",
        S,
        E,
        "Newer OVN: applies the to-lport ACL verdict."
    ),
    // ---- stages added by OVN 24.03 … 26.03 (names from northd/northd.h,
    // meanings from each branch's ovn-northd(8))
    st!(
        "ls_in_mirror",
        S,
        I,
        "Port mirroring (26.03+): clones packets arriving from a port with an attached overlay mirror to the mirror's target port; the original goes on."
    ),
    st!(
        "ls_out_mirror",
        S,
        E,
        "Port mirroring (26.03+): clones packets leaving towards a port with an attached overlay mirror to the mirror's target port."
    ),
    st!(
        "ls_in_acl_sample",
        S,
        I,
        "Samples (IPFIX) packets that matched a from-lport ACL with sampling configured; without sampling it only passes the packet on (25.03+).",
        [("reg0[7..10]", "read: which ACL decision is being sampled")]
    ),
    st!(
        "ls_in_acl_after_lb_sample",
        S,
        I,
        "Samples packets that matched a from-lport after-LB ACL with sampling configured; otherwise a pass-through (25.03+)."
    ),
    st!(
        "ls_out_acl_sample",
        S,
        E,
        "Samples packets that matched a to-lport ACL (ingress NetworkPolicy) with sampling configured; otherwise a pass-through (25.03+)."
    ),
    st!(
        "ls_in_qos",
        S,
        I,
        "from-lport QoS rules (25.03+, replaces qos_mark/qos_meter): DSCP/packet marking and metering (Kube-OVN pod ingress/egress rate limits)."
    ),
    st!(
        "ls_out_qos",
        S,
        E,
        "to-lport QoS rules (25.03+, replaces qos_mark/qos_meter): DSCP/packet marking and metering towards the port."
    ),
    st!(
        "ls_out_lookup_fdb",
        S,
        E,
        "Egress FDB lookup (25.03+), only for 'remote' ports with unknown addresses on interconnection transit switches.",
        [(
            "reg0[11]",
            "written: 1 = source MAC already learnt on this port"
        )]
    ),
    st!(
        "ls_out_put_fdb",
        S,
        E,
        "Egress MAC learning (25.03+) for 'remote' ports of interconnection transit switches when the lookup missed."
    ),
    st!(
        "ls_in_ct_extract",
        S,
        I,
        "Copies the conntrack protocol and destination port of a new connection into registers for the load-balancing stages (26.03+).",
        [
            ("reg1[16..23]", "written: conntrack IP protocol"),
            ("reg1[0..15]", "written: conntrack L4 destination port")
        ]
    ),
    st!(
        "ls_in_pre_network_function",
        S,
        I,
        "Network functions (26.03+): picks the healthy member of the Network_Function_Group an ACL chose for this request.",
        [("reg0[22..29]", "read/written: network function (group) id")]
    ),
    st!(
        "ls_in_network_function",
        S,
        I,
        "Network functions (26.03+): redirects the packet to the selected network function's port instead of its destination.",
        [("reg8[21]", "read: 1 = an ACL asked for a network function")]
    ),
    st!(
        "ls_out_pre_network_function",
        S,
        E,
        "Network functions (26.03+): picks the healthy member of the group a to-lport ACL chose."
    ),
    st!(
        "ls_out_network_function",
        S,
        E,
        "Network functions (26.03+): redirects to-lport requests (and replies of from-lport ones) to the network function's port."
    ),
    st!(
        "lr_in_dhcp_relay_req",
        R,
        I,
        "DHCP relay (25.03+): rewrites DHCP requests a router port relays (checked by dhcp_relay_req_chk in ip_input) towards the DHCP server.",
        [("reg9[7]", "read: 1 = dhcp_relay_req_chk succeeded")]
    ),
    st!(
        "lr_in_post_unsnat",
        R,
        I,
        "After un-SNAT (25.03+): flags packets new to or untracked in the SNAT zone when the router commits all traffic (ct-commit-all); otherwise a pass-through."
    ),
    st!(
        "lr_in_ct_extract",
        R,
        I,
        "Copies the conntrack protocol and destination port of a new connection into registers for the router's load-balancing stages (26.03+)."
    ),
    st!(
        "lr_in_dhcp_relay_resp_chk",
        R,
        I,
        "DHCP relay (25.03+): checks DHCP replies from the relay's server with dhcp_relay_resp_chk, keeping the original destination in reg2.",
        [("reg9[8]", "written: 1 = dhcp_relay_resp_chk succeeded")]
    ),
    st!(
        "lr_in_dhcp_relay_resp",
        R,
        I,
        "DHCP relay (25.03+): turns a checked DHCP server reply into the reply sent back out of the relaying router port.",
        [("reg9[8]", "read: 1 = reply passed the check")]
    ),
    st!(
        "lr_in_network_id",
        R,
        I,
        "Sets flags.network_id from the outport and next hop, so later stages know which of a port's networks the packet is routed on (24.03+)."
    ),
    st!(
        "lr_in_ecmp_stateful_egr",
        R,
        I,
        "Gateway routers with ECMP symmetric-reply routes (25.03+): commits sessions leaving through such a route with their egress port, so replies return the same way."
    ),
];

/// All catalogued stages.
pub fn stages() -> &'static [StageInfo] {
    STAGES
}

/// A stage by name (`ls_in_acl`).
pub fn stage(name: &str) -> Option<&'static StageInfo> {
    STAGES.iter().find(|s| s.name == name)
}

/// Register meanings per datapath kind: (name, meaning). Bit ranges are
/// looked up exactly first, then by the whole register.
static SWITCH_REGS: &[(&str, &str)] = &[
    (
        "reg0[0]",
        "conntrack needed before ACLs (pre-ACL hint: defragment/track)",
    ),
    (
        "reg0[1]",
        "commit the connection to conntrack (set by an allow/allow-related ACL)",
    ),
    (
        "reg0[2]",
        "conntrack with NAT needed for load balancing (pre-LB hint: ct_lb_mark)",
    ),
    ("reg0[3]", "DHCP options lookup succeeded"),
    ("reg0[4]", "DNS lookup succeeded"),
    ("reg0[5]", "IPv6 RA options lookup succeeded"),
    (
        "reg0[6]",
        "LB hairpin: the chosen backend is the client itself",
    ),
    (
        "reg0[7]",
        "ACL hint: may match allow-related, new connection to commit",
    ),
    (
        "reg0[8]",
        "ACL hint: may match allow-related, connection already committed",
    ),
    ("reg0[9]", "ACL hint: may match a drop/reject ACL"),
    (
        "reg0[10]",
        "ACL hint: may match drop/reject on a previously allowed connection (mark blocked)",
    ),
    ("reg0[11]", "MAC learning: source MAC found in the FDB"),
    ("reg0[12]", "LB hairpin reply"),
    (
        "reg0[13]",
        "commit the ACL label (reg3) with the connection",
    ),
    ("reg0[14]", "packet came from a HW VTEP (ramp) port"),
    ("reg0[15]", "port security check failed: drop"),
    (
        "reg0[16]",
        "matched an allow-stateless ACL: bypass conntrack",
    ),
    ("reg0[17]", "reply or related traffic of an allowed session"),
    ("reg0", "switch flag bits (see reg0[N])"),
    ("reg1", "original destination IPv4 (load-balancer VIP)"),
    ("reg2[0..15]", "original L4 destination port (VIP port)"),
    ("reg2", "original L4 destination port in bits 0..15"),
    ("reg3", "ACL label to commit to conntrack"),
    ("reg4", "LB affinity: backend IPv4"),
    ("reg8[0..15]", "LB affinity: backend port"),
    ("reg9[6]", "LB affinity: known session, reuse its backend"),
    (
        "xxreg1",
        "original destination IPv6 (load-balancer VIP) / LB affinity backend IPv6",
    ),
];

static ROUTER_REGS: &[(&str, &str)] = &[
    (
        "reg0",
        "next-hop IPv4 address chosen by routing (ARP target); also the VIP during LB DNAT",
    ),
    (
        "xxreg0",
        "next-hop IPv6 address chosen by routing (ND target)",
    ),
    (
        "xreg0[0..47]",
        "MAC address of the router port the packet entered on",
    ),
    ("reg0[5]", "IPv6 RA options lookup succeeded"),
    (
        "reg1",
        "source IPv4 for the outport (router port IP used for ARP requests / ICMP errors)",
    ),
    ("xxreg1", "source IPv6 for the outport"),
    ("reg7", "route table id (0 = main table)"),
    ("reg8[0..15]", "ECMP group id (0 = single next hop)"),
    ("reg8[16..31]", "ECMP member id within the group"),
    ("reg8", "ECMP group (bits 0..15) and member (bits 16..31)"),
    ("reg9[0]", "egress loopback for NAT hairpin"),
    ("reg9[1]", "packet is larger than the gateway MTU"),
    (
        "reg9[2]",
        "neighbor lookup: binding known or no need to learn the sender's MAC",
    ),
    ("reg9[3]", "neighbor lookup: the sender's IP may be learnt"),
    ("reg9[4]", "destination NAT IP is local to this chassis"),
    (
        "reg9[5]",
        "ECMP reply: next hop already known for this connection",
    ),
    ("reg9[6]", "LB affinity: known session"),
    (
        "reg9[16..31]",
        "original L4 destination port (router LB VIP port)",
    ),
    (
        "reg9",
        "router flag bits (see reg9[N]) and the VIP port in bits 16..31",
    ),
];

/// Fields shared by both kinds (logical metadata, in OVN's symbol names).
static COMMON_FIELDS: &[(&str, &str)] = &[
    ("inport", "logical input port (reg14 in OpenFlow)"),
    ("outport", "logical output port (reg15 in OpenFlow)"),
    (
        "flags.loopback",
        "allow sending the packet back out of its inport",
    ),
    (
        "flags.force_snat_for_dnat",
        "SNAT the packet because it was DNATed",
    ),
    (
        "flags.force_snat_for_lb",
        "SNAT the packet because it was load balanced",
    ),
    (
        "ct_mark.blocked",
        "conntrack mark: the connection is no longer allowed by ACLs",
    ),
    ("ct_label", "conntrack label (ACL label / LB info)"),
];

/// Meaning of a register (`reg0[8]`, `reg9[2]`, `reg0`, `xxreg0`) or logical
/// field (`flags.loopback`) in a switch or router pipeline. Spaces are
/// ignored and `..`/`...` ranges are both accepted.
pub fn explain_register(kind: DatapathKind, reg: &str) -> Option<&'static str> {
    let norm: String = reg
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace("...", "..")
        .replace('\u{2026}', "..");
    let table = match kind {
        DatapathKind::Switch => SWITCH_REGS,
        DatapathKind::Router => ROUTER_REGS,
    };
    let exact = table
        .iter()
        .chain(COMMON_FIELDS.iter())
        .find(|(r, _)| *r == norm)
        .map(|(_, m)| *m);
    if exact.is_some() {
        return exact;
    }
    // `reg0[7..10]` -> describe the first bit; `reg0[3]` unknown -> whole register
    let base = norm.split('[').next().unwrap_or(&norm);
    if let Some(bits) = norm
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.strip_suffix(']'))
        && let Some((first, _)) = bits.split_once("..")
    {
        let single = format!("{base}[{first}]");
        if let Some((_, m)) = table.iter().find(|(r, _)| *r == single) {
            return Some(m);
        }
    }
    table.iter().find(|(r, _)| *r == base).map(|(_, m)| *m)
}

/// Whether a register is tested/used or assigned in a piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

/// A register mentioned in a match or action, with its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterNote {
    /// As written, e.g. `reg0[7]`, `xxreg0`, `reg9[16..31]`.
    pub register: String,
    pub access: Access,
    pub meaning: &'static str,
}

/// Registers named in a logical flow's match or actions (`reg0[7] = 1;
/// reg0[9] = 1; next;`, `reg0[2] == 1`) with their meaning for this
/// datapath kind; assignments (`reg = ...`, `reg = f();`) are writes,
/// everything else reads. Unknown registers are left out.
pub fn registers_in(kind: DatapathKind, text: &str) -> Vec<RegisterNote> {
    let mut out: Vec<RegisterNote> = Vec::new();
    for stmt in text.split(';') {
        let lhs_end = stmt
            .find(" = ")
            .filter(|&i| !stmt[..i].contains("==") && !stmt[..i].contains('{'));
        let bytes = stmt.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let at_word_start = i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b'.');
            let rest = &stmt[i..];
            let prefix = ["xxreg", "xreg", "reg"]
                .into_iter()
                .find(|p| rest.starts_with(p));
            let (true, Some(p)) = (at_word_start, prefix) else {
                i += 1;
                continue;
            };
            let digits = rest[p.len()..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                i += p.len();
                continue;
            }
            let mut end = p.len() + digits;
            if rest[end..].starts_with('[')
                && let Some(close) = rest[end..].find(']')
            {
                end += close + 1;
            }
            let token = &rest[..end];
            let access = match lhs_end {
                Some(l) if i < l => Access::Write,
                _ => Access::Read,
            };
            if let Some(meaning) = explain_register(kind, token)
                && !out
                    .iter()
                    .any(|n| n.register == token && n.access == access)
            {
                out.push(RegisterNote {
                    register: token.to_string(),
                    access,
                    meaning,
                });
            }
            i += end;
        }
    }
    out
}

static ACTIONS: &[(&str, &str)] = &[
    ("next", "continue with the next table of this pipeline"),
    (
        "output",
        "end this pipeline: ingress -> egress pipeline of outport; egress -> deliver to the port",
    ),
    ("drop", "discard the packet"),
    (
        "ct_next",
        "send through conntrack, continue in the next table with ct.* state set",
    ),
    (
        "ct_commit",
        "commit the connection to conntrack (optionally setting ct_mark/ct_label)",
    ),
    (
        "ct_lb",
        "conntrack + DNAT to a load-balancer backend (older form of ct_lb_mark)",
    ),
    (
        "ct_lb_mark",
        "conntrack + DNAT to one of the listed load-balancer backends; for established traffic re-applies the existing NAT",
    ),
    (
        "ct_dnat",
        "conntrack DNAT (to the given IP, or reverse/apply the existing DNAT)",
    ),
    (
        "ct_snat",
        "conntrack SNAT (to the given IP, or reverse/apply the existing SNAT)",
    ),
    ("ct_dnat_in_czone", "DNAT in the common NAT zone"),
    ("ct_snat_in_czone", "SNAT in the common NAT zone"),
    ("ct_snat_to_vip", "SNAT hairpinned LB traffic to the VIP"),
    ("ct_clear", "clear conntrack state"),
    ("ct_flush", "flush conntrack entries"),
    (
        "reject",
        "drop and answer with TCP RST or ICMP unreachable (reject ACL)",
    ),
    ("tcp_reset", "answer with a TCP RST"),
    (
        "icmp4",
        "build and send an ICMPv4 packet (e.g. TTL exceeded, unreachable)",
    ),
    ("icmp4_error", "build an ICMPv4 error reply"),
    ("icmp6", "build and send an ICMPv6 packet"),
    ("icmp6_error", "build an ICMPv6 error reply"),
    (
        "arp",
        "build and send an ARP request (next hop MAC unknown)",
    ),
    ("nd_ns", "build and send an IPv6 neighbor solicitation"),
    ("nd_na", "build and send an IPv6 neighbor advertisement"),
    (
        "nd_na_router",
        "build an IPv6 neighbor advertisement with the router flag",
    ),
    (
        "put_arp",
        "store an IP->MAC binding learnt from ARP in MAC_Binding",
    ),
    ("put_nd", "store an IPv6->MAC binding learnt from ND"),
    (
        "get_arp",
        "look up the next hop's MAC in MAC_Binding (sets eth.dst)",
    ),
    ("get_nd", "look up the IPv6 next hop's MAC"),
    (
        "lookup_arp",
        "check whether an ARP sender's binding is known",
    ),
    (
        "lookup_arp_ip",
        "check whether the ARP sender's IP may be learnt",
    ),
    ("lookup_nd", "check whether an ND sender's binding is known"),
    (
        "lookup_nd_ip",
        "check whether the ND sender's IP may be learnt",
    ),
    (
        "put_dhcp_opts",
        "build a DHCPv4 reply from the port's DHCP options",
    ),
    ("put_dhcpv6_opts", "build a DHCPv6 reply"),
    ("put_nd_ra_opts", "build an IPv6 router advertisement"),
    ("dns_lookup", "answer a DNS query from NB DNS records"),
    (
        "check_in_port_sec",
        "check ingress port security of the inport",
    ),
    (
        "check_out_port_sec",
        "check egress port security of the outport",
    ),
    (
        "chk_lb_hairpin",
        "is this LB-DNATed packet going back to its own client",
    ),
    (
        "chk_lb_hairpin_reply",
        "is this a reply to hairpinned LB traffic",
    ),
    (
        "chk_lb_aff",
        "is there an LB affinity entry for this client",
    ),
    (
        "commit_lb_aff",
        "remember the LB backend for this client (affinity)",
    ),
    ("lookup_fdb", "look up a MAC in the switch's FDB"),
    ("put_fdb", "learn a MAC into the switch's FDB"),
    ("get_fdb", "set outport from the FDB"),
    (
        "log",
        "log the packet (ACL logging); verdict= shows what the ACL does",
    ),
    (
        "clone",
        "process a copy of the packet with the nested actions",
    ),
    (
        "trigger_event",
        "notify ovn-controller (e.g. empty LB backends)",
    ),
    (
        "handle_svc_check",
        "hand service-monitor health-check replies to ovn-controller",
    ),
    ("select", "pick one of several values (ECMP)"),
    ("set_queue", "select a QoS queue"),
    ("ip.ttl--", "decrement the IP TTL (routing)"),
];

/// Meaning of an OVN logical action by name (`ct_lb_mark`, `next`, `reg0[1] = 1` -> none).
pub fn explain_action(name: &str) -> Option<&'static str> {
    let n = name.trim().trim_end_matches(';').trim();
    let key = if n == "ip.ttl--" {
        n
    } else {
        let end = n
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(n.len());
        &n[..end]
    };
    ACTIONS.iter().find(|(a, _)| *a == key).map(|(_, m)| *m)
}

/// Meaning of an OpenFlow field as ovn-controller uses it: `reg14`,
/// `metadata`, `NXM_NX_REG13[0..15]`, `NXM_NX_XXREG0[111]` (= logical
/// `reg0[15]`, returned with its meaning for `kind`), `tun_metadata0`.
pub fn explain_openflow_field(kind: Option<DatapathKind>, field: &str) -> Option<String> {
    let f = field.trim();
    let upper = f.to_ascii_uppercase();
    let plain = upper
        .trim_start_matches("NXM_NX_")
        .trim_start_matches("OXM_OF_")
        .to_ascii_lowercase();
    let (name, bits) = match plain.split_once('[') {
        Some((n, b)) => (n.to_string(), Some(b.trim_end_matches(']').to_string())),
        None => (plain.clone(), None),
    };
    let fixed = match name.as_str() {
        "metadata" => Some("datapath tunnel key (which logical switch/router)"),
        "reg10" => Some("logical flags (flags.loopback, force_snat..., check port security)"),
        "reg11" => Some("conntrack zone for DNAT (router)"),
        "reg12" => Some("conntrack zone for SNAT (router)"),
        "reg13" => Some("conntrack zone of the logical port (switch)"),
        "reg14" => Some("logical input port tunnel key"),
        "reg15" => Some("logical output port tunnel key"),
        "tun_id" => Some("geneve VNI = datapath tunnel key"),
        "tun_metadata0" => Some("geneve option: logical inport key << 16 | outport key"),
        _ => None,
    };
    if let Some(m) = fixed {
        return Some(m.to_string());
    }
    // OVS xxregN is regs 4N..4N+3 with reg 4N as the most significant word
    if let Some(n) = name
        .strip_prefix("xxreg")
        .and_then(|n| n.parse::<u32>().ok())
        && let Some(bit) = bits
            .as_deref()
            .and_then(|b| b.split("..").next()?.parse::<u32>().ok())
        && bit < 128
    {
        let reg = 4 * n + (3 - bit / 32);
        let logical = format!("reg{reg}[{}]", bit % 32);
        let meaning = kind.and_then(|k| explain_register(k, &logical));
        return Some(match meaning {
            Some(m) => format!("{logical}: {m}"),
            None => logical,
        });
    }
    if let Some(n) = name.strip_prefix("reg").and_then(|n| n.parse::<u32>().ok())
        && n < 10
    {
        let logical = match &bits {
            Some(b) => format!("reg{n}[{b}]"),
            None => format!("reg{n}"),
        };
        return kind
            .and_then(|k| explain_register(k, &logical))
            .map(|m| format!("{logical}: {m}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_differ_by_datapath_kind() {
        assert!(
            explain_register(S, "reg0[8]")
                .unwrap()
                .contains("allow-related")
        );
        assert!(explain_register(R, "reg0").unwrap().contains("next-hop"));
        assert!(
            explain_register(S, "reg0[7..10]")
                .unwrap()
                .contains("allow-related")
        );
        assert!(
            explain_register(R, "reg9[16...31]")
                .unwrap()
                .contains("port")
        );
        assert_eq!(explain_register(S, "reg5[3]"), None);
    }

    #[test]
    fn registers_in_actions_and_matches() {
        let notes = registers_in(S, "reg0[7] = 1; reg0[9] = 1; next;");
        assert_eq!(notes.len(), 2);
        assert!(notes.iter().all(|n| n.access == Access::Write));
        let notes = registers_in(S, "reg0[2] == 1 && ip4");
        assert_eq!(notes[0].register, "reg0[2]");
        assert_eq!(notes[0].access, Access::Read);
        // a router action: next hop written, source read from the route
        let notes = registers_in(R, "reg0 = ip4.dst; reg1 = 100.64.0.1; next;");
        assert_eq!(notes.len(), 2);
        assert!(notes[0].meaning.contains("next-hop"));
        assert!(registers_in(S, "outport = \"x\"; output;").is_empty());
        assert!(
            registers_in(R, "xreg0[0..47] = 00:00:00:63:b3:f9; next;")[0]
                .meaning
                .contains("MAC")
        );
    }

    #[test]
    fn openflow_fields() {
        let f = explain_openflow_field(Some(S), "NXM_NX_XXREG0[111]").unwrap();
        assert!(f.starts_with("reg0[15]:"), "{f}");
        assert!(explain_openflow_field(None, "NXM_NX_REG14[]").is_some());
    }

    #[test]
    fn stage_names_are_unique_and_match_their_kind() {
        for (i, a) in STAGES.iter().enumerate() {
            assert_eq!(DatapathKind::of_stage(a.name), Some(a.kind), "{}", a.name);
            let pipe = if a.name[3..].starts_with("in_") { I } else { E };
            assert_eq!(a.pipeline, pipe, "{}", a.name);
            assert!(
                !STAGES[i + 1..].iter().any(|b| b.name == a.name),
                "{} catalogued twice",
                a.name
            );
        }
    }
}
