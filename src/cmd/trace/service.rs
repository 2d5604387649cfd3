//! The Kubernetes Service behind a destination ClusterIP, so a verdict on a
//! VIP names it, also when Kube-OVN removed the VIP from OVN or the packet is
//! for a port (or ICMP) the Service does not serve.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use ko_ovn::verdict::ServiceRef;

use crate::cluster::{Cluster, Result};

/// Lists the Services unless the packet is ARP (a ClusterIP answers no ARP).
pub async fn list_unless_arp(cluster: &Cluster, arp: bool) -> Result<Vec<Service>> {
    if arp {
        Ok(Vec::new())
    } else {
        cluster.list_services().await
    }
}

/// The Service with `ip` among its ClusterIPs; whether it serves the
/// packet's `proto` and `port` (ICMP: `None`, which no Service port serves)
/// and what it serves.
pub fn of_destination(
    services: &[Service],
    ip: IpAddr,
    port: Option<u16>,
    proto: &str,
    vip_in_ovn: bool,
) -> Option<ServiceRef> {
    let ip_s = ip.to_string();
    services.iter().find_map(|svc| {
        let spec = svc.spec.as_ref()?;
        let has_ip = spec.cluster_ip.as_deref() == Some(ip_s.as_str())
            || spec.cluster_ips.iter().flatten().any(|i| *i == ip_s);
        if !has_ip {
            return None;
        }
        let svc_ports = spec.ports.iter().flatten();
        let ports: Vec<String> = svc_ports
            .clone()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                    p.port
                )
            })
            .collect();
        let serves_packet = port.is_some_and(|port| {
            svc_ports.clone().any(|p| {
                p.port == i32::from(port)
                    && p.protocol
                        .as_deref()
                        .unwrap_or("TCP")
                        .eq_ignore_ascii_case(proto)
            })
        });
        Some(ServiceRef {
            name: format!(
                "{}/{}",
                svc.metadata.namespace.as_deref().unwrap_or_default(),
                svc.metadata.name.as_deref().unwrap_or_default()
            ),
            cluster_ip: ip_s.clone(),
            port,
            vip_in_ovn,
            serves_packet,
            ports,
        })
    })
}
