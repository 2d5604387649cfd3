//! The Kubernetes Service behind a destination ClusterIP, so a verdict on a
//! VIP names it, also when Kube-OVN removed the VIP from OVN.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use ko_ovn::verdict::ServiceRef;

use crate::cluster::{Cluster, Result};

/// Lists the Services only when the destination has a port (a VIP needs one).
pub async fn list_if_port(cluster: &Cluster, port: Option<u16>) -> Result<Vec<Service>> {
    match port {
        Some(_) => cluster.list_services().await,
        None => Ok(Vec::new()),
    }
}

/// The Service with `ip` among its ClusterIPs and a port `port`/`proto`.
pub fn of_destination(
    services: &[Service],
    ip: IpAddr,
    port: u16,
    proto: &str,
    vip_in_ovn: bool,
) -> Option<ServiceRef> {
    let ip_s = ip.to_string();
    services.iter().find_map(|svc| {
        let spec = svc.spec.as_ref()?;
        let has_ip = spec.cluster_ip.as_deref() == Some(ip_s.as_str())
            || spec.cluster_ips.iter().flatten().any(|i| *i == ip_s);
        let has_port = spec.ports.iter().flatten().any(|p| {
            p.port == i32::from(port)
                && p.protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .eq_ignore_ascii_case(proto)
        });
        (has_ip && has_port).then(|| ServiceRef {
            name: format!(
                "{}/{}",
                svc.metadata.namespace.as_deref().unwrap_or_default(),
                svc.metadata.name.as_deref().unwrap_or_default()
            ),
            cluster_ip: ip_s.clone(),
            port,
            vip_in_ovn,
        })
    })
}
