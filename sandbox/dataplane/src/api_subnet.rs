//! Subnets created through the API (`kubectl apply` of a `kubeovn.io/v1` Subnet):
//! the one rule for what the sandbox makes of such an object, shared by the
//! controller (which writes its switch, router port and policies, then marks it
//! Ready) and the kubelet (which places pods on it once it is Ready).
//!
//! The sandbox realises what its data plane can carry: overlay subnets (IPv4, or dual
//! stack on a `--dual-stack` sandbox) with the distributed or a centralized gateway
//! (active-backup: the first gateway node), in the cluster
//! router `ovn-cluster` or a custom VPC (whose router must exist: the controller
//! checks that), and untagged underlay subnets (a Vlan with id 0, as Kube-OVN's own
//! underlay e2e uses on kind) on the sandbox's provider network, whose gateway host
//! answers for their gateway. Anything else is refused with a
//! `Validated=False` condition that says why, so a test never mistakes a subnet the
//! sandbox ignored for one that works.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::plan::{self, CLUSTER_ROUTER, Plan, Subnet};

/// The condition Kube-OVN sets once a subnet's logical switch is in place.
pub const READY: &str = "Ready";

/// The plan's shape of an API Subnet, or why the sandbox cannot realise it.
/// `vlans`: the API's Vlan objects (an underlay subnet names one).
pub fn from_cr(plan: &Plan, obj: &Value, vlans: &[Value]) -> Result<Subnet, String> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let spec = &obj["spec"];
    let text = |k: &str| spec[k].as_str().unwrap_or("").trim().to_string();
    let vlan = match text("vlan") {
        v if v.is_empty() => None,
        v => Some(underlay(spec, &v, vlans)?),
    };
    // centralized: the first gateway node (`name` or `name:ip`) is the active one, as
    // Kube-OVN's active-backup mode picks the first ready node (all are ready here)
    let gateway_node = match text("gatewayType").as_str() {
        // an underlay subnet's gateway is the physical one
        _ if vlan.is_some() => None,
        "centralized" => {
            let first = text("gatewayNode")
                .split(',')
                .map(|n| n.split(':').next().unwrap_or("").trim().to_string())
                .find(|n| !n.is_empty())
                .ok_or("a centralized gateway needs spec.gatewayNode")?;
            if !plan.nodes.iter().any(|n| n.name == first) {
                return Err(format!("gatewayNode {first} is not a node of the sandbox"));
            }
            Some(first)
        }
        "" | "distributed" => None,
        other => {
            return Err(format!(
                "gatewayType {other:?} is neither distributed nor centralized"
            ));
        }
    };
    let provider = text("provider");
    if !provider.is_empty() && provider != "ovn" {
        return Err(format!(
            "provider {provider}: only OVN subnets (provider `ovn`) are realised by the sandbox"
        ));
    }
    let cidrs = text("cidrBlock");
    let (mut cidr4, mut cidr6) = (None, None);
    for c in cidrs.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if c.contains(':') {
            cidr6 =
                Some(network6(c).ok_or_else(|| format!("spec.cidrBlock {c} is not an IPv6 CIDR"))?);
        } else {
            cidr4 =
                Some(network4(c).ok_or_else(|| format!("spec.cidrBlock {c} is not an IPv4 CIDR"))?);
        }
    }
    let Some((net4, len4)) = cidr4 else {
        return Err(if cidrs.is_empty() {
            "spec.cidrBlock is empty".into()
        } else {
            "IPv6-only subnets are not realised by the sandbox (its pods always have an IPv4 address)".into()
        });
    };
    if len4 > 30 {
        return Err(format!(
            "spec.cidrBlock {cidrs}: a /{len4} has no room for pods"
        ));
    }
    if cidr6.is_some() && !plan.dual_stack {
        return Err(
            "an IPv6 CIDR needs a dual-stack sandbox (`ko-sandbox up --dual-stack`)".into(),
        );
    }
    let gateways: Vec<String> = text("gateway")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    let gw4 = match gateways.iter().find(|g| !g.contains(':')) {
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| format!("spec.gateway {g} is not an IPv4 address"))?;
            if !in4(net4, len4, ip) {
                return Err(format!("spec.gateway {g} is outside {net4}/{len4}"));
            }
            g.clone()
        }
        None => Ipv4Addr::from(u32::from(net4) + 1).to_string(),
    };
    let (cidr6_s, gw6) = match cidr6 {
        Some((net6, len6)) => {
            let gw = match gateways.iter().find(|g| g.contains(':')) {
                Some(g) => g.clone(),
                None => Ipv6Addr::from(u128::from(net6) + 1).to_string(),
            };
            (Some(format!("{net6}/{len6}")), Some(gw))
        }
        None => (None, None),
    };
    let vpc = match text("vpc") {
        v if v.is_empty() => CLUSTER_ROUTER.to_string(),
        v if vlan.is_some() && v != CLUSTER_ROUTER => {
            return Err(format!(
                "underlay subnets in a custom VPC ({v}) are not realised by the sandbox"
            ));
        }
        v => v,
    };
    let cidr4_s = format!("{net4}/{len4}");
    for other in &plan.subnets {
        if other.name == name {
            continue;
        }
        if let Some((o_net, o_len)) = network4(&other.cidr4)
            && overlap4((net4, len4), (o_net, o_len))
        {
            return Err(format!(
                "{cidr4_s} overlaps subnet {} ({})",
                other.name, other.cidr4
            ));
        }
    }
    let namespaces = spec["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    // an underlay subnet is not connected to the router: the physical network's
    // gateway routes its traffic (Kube-OVN's `needRouter` is false for it)
    let (router, lrp_mac) = match vlan {
        Some(_) => (None, String::new()),
        None => (
            Some(vpc.clone()),
            plan::mac_for(&format!("{}/lrp/{name}", plan.name)),
        ),
    };
    Ok(Subnet {
        name: name.to_string(),
        cidr4: cidr4_s,
        gw4,
        cidr6: cidr6_s,
        gw6,
        router,
        vpc,
        lrp_mac,
        vlan,
        namespaces,
        default: false,
        gateway_node,
    })
}

/// (vlan name, id, provider network) of an underlay subnet: its Vlan object must
/// exist on the sandbox's one provider network (`provider`, bridged to every node and
/// to the gateway host); `logicalGateway` and `u2oInterconnection` are not realised.
fn underlay(spec: &Value, vlan: &str, vlans: &[Value]) -> Result<(String, u16, String), String> {
    for key in ["logicalGateway", "u2oInterconnection"] {
        if spec[key].as_bool() == Some(true) {
            return Err(format!(
                "spec.{key} on an underlay subnet is not realised by the sandbox"
            ));
        }
    }
    let obj = vlans
        .iter()
        .find(|v| v["metadata"]["name"].as_str() == Some(vlan))
        .ok_or_else(|| {
            format!("failed to get vlan {vlan}: vlan.kubeovn.io \"{vlan}\" not found")
        })?;
    let id = obj["spec"]["id"]
        .as_u64()
        .filter(|id| *id <= 4095)
        .ok_or_else(|| format!("vlan {vlan}: spec.id must be 0..4095"))?;
    if id != 0 {
        // the gateway host would need a VLAN interface: no 802.1Q in this kernel
        // (no 8021q, no VLAN-filtering bridge, no tc vlan action)
        return Err(format!(
            "vlan {vlan}: tagged VLANs (id {id}) are not realised by the sandbox: its gateway host cannot terminate 802.1Q on this kernel; use a Vlan with id 0"
        ));
    }
    let provider = obj["spec"]["provider"].as_str().unwrap_or("").trim();
    if provider != plan::PROVIDER {
        return Err(format!(
            "vlan {vlan}: provider network {provider:?} is not the sandbox's; underlay subnets use provider network `{}`",
            plan::PROVIDER
        ));
    }
    Ok((vlan.to_string(), id as u16, provider.to_string()))
}

/// Whether the controller has marked the object Ready (its switch is in the NB).
pub fn is_ready(obj: &Value) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == READY && c["status"] == "True")
}

/// The API subnets the sandbox did not plan, each realisable or not.
pub fn unplanned<'a>(
    plan: &'a Plan,
    objs: impl IntoIterator<Item = &'a Value> + 'a,
    vlans: &'a [Value],
) -> impl Iterator<Item = (&'a Value, Result<Subnet, String>)> + 'a {
    objs.into_iter()
        .filter(|o| {
            plan.subnet(o["metadata"]["name"].as_str().unwrap_or(""))
                .is_none()
        })
        .map(move |o| (o, from_cr(plan, o, vlans)))
}

/// Addresses a subnet hands out: the hosts of its IPv4 CIDR minus the gateway
/// (Kube-OVN's `v4availableIPs` of an empty subnet, e.g. 65533 for a /16).
pub fn size4(cidr: &str) -> u64 {
    let len = cidr
        .split_once('/')
        .and_then(|(_, l)| l.parse::<u32>().ok())
        .filter(|l| *l <= 30)
        .unwrap_or(24);
    (1u64 << (32 - len)).saturating_sub(3)
}

/// The same for IPv6 (capped: a /64 is "a lot", as in Kube-OVN's float counters).
pub fn size6(cidr: &str) -> u64 {
    let len = cidr
        .split_once('/')
        .and_then(|(_, l)| l.parse::<u32>().ok())
        .filter(|l| *l <= 126)
        .unwrap_or(112);
    let bits = (128 - len).min(62);
    (1u64 << bits).saturating_sub(3)
}

/// An IPv4 CIDR as (network address, prefix length); host bits cleared.
pub fn network4(c: &str) -> Option<(Ipv4Addr, u32)> {
    let (ip, len) = c.trim().split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((Ipv4Addr::from(u32::from(ip) & mask), len))
}

/// The same for IPv6.
pub fn network6(c: &str) -> Option<(Ipv6Addr, u32)> {
    let (ip, len) = c.trim().split_once('/')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 128)?;
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    Some((Ipv6Addr::from(u128::from(ip) & mask), len))
}

fn in4(net: Ipv4Addr, len: u32, ip: Ipv4Addr) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net)
}

fn overlap4(a: (Ipv4Addr, u32), b: (Ipv4Addr, u32)) -> bool {
    let len = a.1.min(b.1);
    in4(a.0, len, b.0) || in4(b.0, len, a.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(dual: bool) -> Plan {
        plan::build("t", 3, dual)
    }

    fn cr(spec: Value) -> Value {
        json!({"metadata": {"name": "s2"}, "spec": spec})
    }

    #[test]
    fn an_overlay_subnet_gets_its_gateway_router_port_and_namespaces() {
        let s = from_cr(
            &plan(false),
            &cr(json!({"cidrBlock": "10.17.3.9/16", "namespaces": ["ns2"]})),
            &[],
        )
        .unwrap();
        assert_eq!(s.cidr4, "10.17.0.0/16");
        assert_eq!(s.gw4, "10.17.0.1");
        assert_eq!(s.vpc, "ovn-cluster");
        assert_eq!(s.router.as_deref(), Some("ovn-cluster"));
        assert_eq!(s.namespaces, vec!["ns2".to_string()]);
        assert!(s.cidr6.is_none() && s.vlan.is_none() && !s.lrp_mac.is_empty());
        let v = from_cr(
            &plan(true),
            &cr(json!({"cidrBlock": "10.18.0.0/24,fd00:10:18::/112", "gateway": "10.18.0.254", "vpc": "vpc1"})),
            &[],
        )
        .unwrap();
        assert_eq!(v.gw4, "10.18.0.254");
        assert_eq!(v.gw6.as_deref(), Some("fd00:10:18::1"));
        assert_eq!(v.router.as_deref(), Some("vpc1"));
    }

    #[test]
    fn what_the_sandbox_cannot_carry_is_refused_with_the_reason() {
        let p = plan(false);
        let refused = |spec: Value| from_cr(&p, &cr(spec), &[]).unwrap_err();
        assert!(
            refused(json!({"cidrBlock": "10.16.5.0/24"})).contains("overlaps subnet ovn-default")
        );
        assert!(
            refused(json!({"cidrBlock": "10.17.0.0/16", "vlan": "v1"}))
                .contains("vlan.kubeovn.io \"v1\" not found")
        );
        assert!(refused(json!({"cidrBlock": "fd00::/112"})).contains("IPv6-only"));
        assert!(refused(json!({"cidrBlock": "10.17.0.0/16,fd00:17::/112"})).contains("dual-stack"));
        assert!(
            refused(json!({"cidrBlock": "10.17.0.0/16", "gateway": "10.99.0.1"}))
                .contains("outside")
        );
        assert!(
            refused(json!({"cidrBlock": "10.17.0.0/16", "gatewayType": "centralized"}))
                .contains("needs spec.gatewayNode")
        );
        assert!(refused(json!({"cidrBlock": "10.17.0.0/16", "gatewayType": "centralized", "gatewayNode": "nope"})).contains("not a node"));
        let c = from_cr(
            &p,
            &cr(
                json!({"cidrBlock": "10.17.0.0/16", "gatewayType": "centralized",
            "gatewayNode": "kube-ovn-worker:172.18.0.3,kube-ovn-worker2"}),
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.gateway_node.as_deref(), Some("kube-ovn-worker"));
        assert!(refused(json!({})).contains("empty"));
    }

    #[test]
    fn an_underlay_subnet_takes_its_vlan_and_no_router_port() {
        let p = plan(false);
        let vlans = [
            json!({"metadata": {"name": "v0"}, "spec": {"id": 0, "provider": "provider"}}),
            json!({"metadata": {"name": "v100"}, "spec": {"id": 100, "provider": "provider"}}),
            json!({"metadata": {"name": "other"}, "spec": {"id": 0, "provider": "eth9"}}),
        ];
        let spec =
            json!({"cidrBlock": "172.30.5.0/24", "vlan": "v0", "gatewayType": "centralized"});
        let s = from_cr(&p, &cr(spec), &vlans).unwrap();
        assert_eq!(s.vlan, Some(("v0".into(), 0, "provider".into())));
        assert_eq!((s.router, s.gateway_node), (None, None));
        assert_eq!(
            (s.gw4.as_str(), s.vpc.as_str()),
            ("172.30.5.1", "ovn-cluster")
        );
        let refused = |spec: Value| from_cr(&p, &cr(spec), &vlans).unwrap_err();
        let ul = |vlan: &str, extra: Value| {
            let mut spec = json!({"cidrBlock": "172.30.6.0/24", "vlan": vlan});
            for (k, v) in extra.as_object().into_iter().flatten() {
                spec[k] = v.clone();
            }
            refused(spec)
        };
        assert!(ul("other", json!({})).contains("provider network \"eth9\""));
        assert!(ul("v100", json!({})).contains("tagged VLANs (id 100)"));
        assert!(ul("v0", json!({"vpc": "vpc1"})).contains("custom VPC"));
        assert!(ul("v0", json!({"u2oInterconnection": true})).contains("u2oInterconnection"));
        // the planned underlay's CIDR is taken
        assert!(
            refused(json!({"cidrBlock": "172.17.0.0/24", "vlan": "v0"}))
                .contains("overlaps subnet underlay")
        );
    }

    #[test]
    fn sizes_follow_the_prefix() {
        assert_eq!(size4("10.16.0.0/16"), 65533);
        assert_eq!(size4("10.16.0.0/24"), 253);
        assert_eq!(size6("fd00::/112"), 65533);
    }

    #[test]
    fn readiness_is_the_ready_condition() {
        assert!(!is_ready(&cr(json!({}))));
        let mut o = cr(json!({}));
        o["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        assert!(is_ready(&o));
    }
}
