//! Step 3 of a trace: the packet both tools trace (the ko-ovn `Microflow`),
//! with the Service backend ovn-trace is told to follow.

use std::net::IpAddr;

use ko_ovn::microflow::{Direction, Mac, Microflow, Protocol};
use ko_ovn::verdict::LbInfo;

use super::Request;
use super::resolve::{Origin, Target};
use super::source::Sender;
use crate::error::{Error, Result};

/// The packet to trace and the ovn-trace command that traces it.
pub(super) struct Packet {
    pub flow: Microflow,
    /// The Service VIP the destination matched, and the backend chosen.
    pub lb: Option<LbInfo>,
    pub ovn_argv: Vec<String>,
}

/// The forward packet: from the sender's port to the destination as given.
pub(super) fn build_microflow(req: &Request, origin: &Origin, target: &Target) -> Result<Packet> {
    let sender = &origin.sender;
    let flow = Microflow {
        logical_switch: sender.logical_switch.clone(),
        inport: sender.logical_port.clone(),
        src_mac: sender.mac,
        src_ip: origin.src_ip,
        dst_mac: target.dst_mac,
        dst_ip: req.dst_ip,
        protocol: req.protocol,
        direction: Direction::Forward,
    };
    flow.validate().map_err(|e| Error::Usage(e.to_string()))?;

    // A Service VIP: tell ovn-trace which backend to follow, so the verdict
    // is reproducible (OVN itself picks one per connection by hash).
    let lb = req.protocol.port().and_then(|port| {
        target
            .nb
            .vip(req.dst_ip, port, req.protocol.name())
            .map(|(lb, vip, backends)| LbInfo {
                name: lb.name.clone(),
                vip,
                backend: backends.first().cloned(),
                backends,
            })
    });
    let mut ovn_argv = flow.ovn_trace_argv();
    if let Some(b) = lb.as_ref().and_then(|l| l.backend.as_ref()) {
        ovn_argv.insert(1, format!("--lb-dst={b}"));
    }
    Ok(Packet { flow, lb, ovn_argv })
}

/// The reply packet (`--reply`): from the server's port, `server_ip` and
/// `server_port` (the backend's for a Service), back to the client, as the
/// reply of an established connection. No `--lb-dst`: replies are not
/// load-balanced.
pub(super) fn build_reply_microflow(
    server: &Sender,
    server_ip: IpAddr,
    server_port: Option<u16>,
    client_ip: IpAddr,
    client_mac: Mac,
    protocol: Protocol,
) -> Result<Packet> {
    let protocol = match (protocol, server_port) {
        (Protocol::Tcp { .. }, Some(port)) => Protocol::Tcp { port },
        (Protocol::Udp { .. }, Some(port)) => Protocol::Udp { port },
        (p, _) => p,
    };
    let flow = Microflow {
        logical_switch: server.logical_switch.clone(),
        inport: server.logical_port.clone(),
        src_mac: server.mac,
        src_ip: server_ip,
        dst_mac: client_mac,
        dst_ip: client_ip,
        protocol,
        direction: Direction::Reply,
    };
    flow.validate().map_err(|e| Error::Usage(e.to_string()))?;
    let ovn_argv = flow.ovn_trace_argv();
    Ok(Packet {
        flow,
        lb: None,
        ovn_argv,
    })
}
