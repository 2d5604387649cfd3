//! Step 3 of a trace: the packet both tools trace (the ko-ovn `Microflow`),
//! with the Service backend ovn-trace is told to follow.

use ko_ovn::microflow::Microflow;
use ko_ovn::verdict::LbInfo;

use super::Request;
use super::resolve::{Origin, Target};
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
