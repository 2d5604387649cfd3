//! Destinations by name: `<ns>/<pod>`, `svc/<ns>/<name>`, `node//<name>`
//! besides upstream's IP. A pod becomes its IP of the sender's family (its
//! MAC then comes from its LSP, as for an IP), a Service its ClusterIP of that
//! family and, when the protocol has no port, the Service's first port of that
//! protocol; a node its InternalIP. The IP form is untouched (no API call).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Api;
use serde::Serialize;

use super::args::{DestRef, Parsed, SourceRef};
use super::{Request, source};
use crate::cluster::{self, Cluster};
use crate::error::{Error, Result};

/// What a destination given by name resolved to (shown with the verdict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedDestination {
    /// `pod`, `service` or `node`.
    pub kind: String,
    /// `<ns>/<name>` or the node name.
    pub name: String,
    pub ip: String,
    /// The port taken from the Service, when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_from_service: Option<u16>,
}

/// The request with its destination resolved, and what the name resolved to.
pub async fn resolve(
    cluster: &Cluster,
    parsed: &Parsed,
) -> Result<(Request, Option<NamedDestination>)> {
    if let DestRef::Ip(ip) = parsed.destination {
        return Ok((parsed.resolved(ip, None)?, None));
    }
    let (want_v4, sender_ips) = sender_family(cluster, &parsed.source).await?;
    let pick = |ips: &[IpAddr], what: &str| -> Result<IpAddr> {
        ips.iter()
            .copied()
            .find(|ip| ip.is_ipv4() == want_v4)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{what} has no IPv{} address (it has {}), the family of the source ({}); trace one of its addresses explicitly",
                    if want_v4 { 4 } else { 6 },
                    list(ips),
                    list(&sender_ips)
                ))
            })
    };
    let named = |kind: &str, name: String, ip: IpAddr, port: Option<u16>| NamedDestination {
        kind: kind.into(),
        name,
        ip: ip.to_string(),
        port_from_service: port,
    };
    match &parsed.destination {
        DestRef::Ip(ip) => Ok((parsed.resolved(*ip, None)?, None)),
        DestRef::Pod { namespace, name } => {
            let pod = cluster.get_pod(namespace, name).await?;
            let ip = pick(&pod_ips(&pod), &format!("pod {namespace}/{name}"))?;
            let n = named("pod", format!("{namespace}/{name}"), ip, None);
            Ok((parsed.resolved(ip, None)?, Some(n)))
        }
        DestRef::Node(name) => {
            let node = cluster.get_node(name).await?;
            let ip = pick(&node_ips(&node), &format!("node {name}"))?;
            Ok((
                parsed.resolved(ip, None)?,
                Some(named("node", name.clone(), ip, None)),
            ))
        }
        DestRef::Service { namespace, name } => {
            let svc = get_service(cluster, namespace, name).await?;
            let what = format!("Service {namespace}/{name}");
            let ip = pick(&cluster_ips(&svc), &what)?;
            let port = match (parsed.port(), parsed.protocol_name()) {
                (None, Some(proto)) => Some(service_port(&svc, proto).ok_or_else(|| {
                    Error::Usage(format!(
                        "{what} has no {} port; give one: ... svc/{namespace}/{name} {proto} <port>",
                        proto.to_uppercase()
                    ))
                })?),
                _ => None,
            };
            Ok((
                parsed.resolved(ip, port)?,
                Some(named("service", format!("{namespace}/{name}"), ip, port)),
            ))
        }
    }
}

fn list(ips: &[IpAddr]) -> String {
    if ips.is_empty() {
        return "none".into();
    }
    ips.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family the sender sends in: IPv4 when it has an IPv4 address.
async fn sender_family(cluster: &Cluster, src: &SourceRef) -> Result<(bool, Vec<IpAddr>)> {
    let ips = match src {
        SourceRef::Node(n) => node_ips(&cluster.get_node(n).await?),
        SourceRef::Pod { namespace, name } => {
            let pod = cluster.get_pod(namespace, name).await?;
            if source::is_host_network(&pod) {
                let node = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                node_ips(&cluster.get_node(&node).await?)
            } else {
                pod_ips(&pod)
            }
        }
    };
    Ok((ips.is_empty() || ips.iter().any(IpAddr::is_ipv4), ips))
}

fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let status = pod.status.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if ips.is_empty()
        && let Some(ip) = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|i| i.parse().ok())
    {
        ips.push(ip);
    }
    ips
}

fn node_ips(node: &Node) -> Vec<IpAddr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .filter_map(|i| i.parse().ok())
        .collect();
    if ips.is_empty()
        && let Some(ip) = spec.cluster_ip.as_deref().and_then(|i| i.parse().ok())
    {
        ips.push(ip);
    }
    ips
}

/// The Service's first port of `proto` (`tcp`/`udp`; Kubernetes' default is TCP).
fn service_port(svc: &Service, proto: &str) -> Option<u16> {
    svc.spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| {
            p.protocol
                .as_deref()
                .unwrap_or("TCP")
                .eq_ignore_ascii_case(proto)
        })
        .and_then(|p| u16::try_from(p.port).ok())
}

/// A broadcast/multicast destination goes to its Ethernet group address,
/// not to the gateway: the MAC and how it was derived.
pub fn group_mac(ip: IpAddr) -> Option<(ko_ovn::microflow::Mac, String)> {
    let mac = ko_ovn::microflow::Mac::of_group(ip)?;
    let how = match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => "broadcast",
        IpAddr::V4(_) => "IPv4 multicast group (RFC 1112)",
        IpAddr::V6(_) => "IPv6 multicast group (RFC 2464)",
    };
    Some((mac, how.to_string()))
}

async fn get_service(cluster: &Cluster, namespace: &str, name: &str) -> Result<Service> {
    cluster::validate_name("namespace", namespace)?;
    cluster::validate_name("Service name", name)?;
    let api: Api<Service> = Api::namespaced(cluster.client().clone(), namespace);
    let svc = cluster
        .call(
            format!("getting Service {namespace}/{name}"),
            api.get_opt(name),
        )
        .await?;
    svc.ok_or_else(|| {
        Error::Cluster(cluster::Error::NotFound {
            what: format!("Service {name} in namespace {namespace}"),
            detail: String::new(),
            hint: format!("`kubectl get services -n {namespace}`"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    #[test]
    fn service_ports_and_addresses() {
        let svc = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.10".into()),
                cluster_ips: Some(vec!["10.96.0.10".into(), "fd00:10:96::a".into()]),
                ports: Some(vec![
                    ServicePort {
                        port: 53,
                        protocol: Some("UDP".into()),
                        ..Default::default()
                    },
                    ServicePort {
                        port: 9153,
                        protocol: None,
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(service_port(&svc, "udp"), Some(53));
        assert_eq!(service_port(&svc, "tcp"), Some(9153));
        assert_eq!(cluster_ips(&svc).len(), 2);
        let headless = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(cluster_ips(&headless).is_empty());
    }
}
