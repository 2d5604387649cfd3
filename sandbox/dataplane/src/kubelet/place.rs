//! Where a pod created through the API goes: its node (what the scheduler decides),
//! its subnet and its addresses (what kube-ovn-controller decides). Pure functions of
//! the plan and the API objects, so they are tested without a sandbox.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::api_subnet::{network4, network6};
use crate::plan::{self, DEFAULT_SUBNET, JOIN_SUBNET, Plan, Subnet};

/// Why a pod cannot run yet; shown as its PodScheduled condition (like the scheduler)
/// or as a sandbox-creation failure (like kubelet/CNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPlaced {
    pub reason: &'static str,
    pub message: String,
    /// Waiting for something that is on its way (a subnet being realised): tried
    /// again on every pass, without counting as a failed attempt.
    pub waiting: bool,
}

/// A refusal like kube-ovn-cni's, not retried.
pub fn sandbox_failed(message: String) -> NotPlaced {
    NotPlaced {
        reason: "FailedCreatePodSandBox",
        message,
        waiting: false,
    }
}

fn unschedulable(message: String) -> NotPlaced {
    NotPlaced {
        reason: "Unschedulable",
        message,
        waiting: false,
    }
}

/// The node index (into `plan.nodes`) for a pod: `spec.nodeName`, else the nodes whose
/// labels match `spec.nodeSelector`, the least loaded first. `nodes` are the Node
/// objects from the API (their labels), `load[i]` the pods already placed on node i.
pub fn schedule(
    plan: &Plan,
    pod: &Value,
    nodes: &[Value],
    load: &[usize],
) -> Result<usize, NotPlaced> {
    let total = plan.nodes.len();
    if let Some(name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        // A pod bound to a node that has no kubelet just stays Pending.
        return plan
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| {
                unschedulable(format!(
                    "spec.nodeName {name} is not a node of this sandbox (its nodes are {})",
                    node_names(plan)
                ))
            });
    }
    let selector = pod["spec"]["nodeSelector"].as_object();
    let fits: Vec<usize> = (0..total)
        .filter(|&i| {
            let Some(sel) = selector else { return true };
            let labels = nodes
                .iter()
                .find(|n| n["metadata"]["name"].as_str() == Some(&plan.nodes[i].name))
                .map(|n| &n["metadata"]["labels"]);
            sel.iter().all(|(k, v)| labels.is_some_and(|l| &l[k] == v))
        })
        .collect();
    fits.into_iter()
        .min_by_key(|&i| (load.get(i).copied().unwrap_or(0), i))
        .ok_or_else(|| {
            // The scheduler's own wording, so tools that grep for it behave the same.
            unschedulable(format!(
                "0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
            ))
        })
}

fn node_names(plan: &Plan) -> String {
    plan.nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pod's subnet as Kube-OVN picks it: the `ovn.kubernetes.io/logical_switch`
/// annotation, else the subnet listing the namespace, else `ovn-default`.
/// `pending`: subnets created through the API and not (yet) realised, with their
/// namespaces and why; a pod bound to one waits for it, as kube-ovn-cni does.
pub fn subnet<'a>(
    plan: &'a Plan,
    pending: &BTreeMap<String, (Vec<String>, String)>,
    pod: &Value,
) -> Result<&'a Subnet, NotPlaced> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let wanted = pod["metadata"]["annotations"]["ovn.kubernetes.io/logical_switch"].as_str();
    let wait = |name: &str| {
        let why = pending.get(name).map(|(_, why)| why.as_str()).unwrap_or("");
        NotPlaced {
            reason: "FailedCreatePodSandBox",
            message: format!("subnet {name} is not ready: {why}"),
            waiting: true,
        }
    };
    let s = match wanted {
        Some(name) if pending.contains_key(name) => return Err(wait(name)),
        Some(name) => plan
            .subnet(name)
            .ok_or_else(|| sandbox_failed(format!("subnet {name} not found")))?,
        None => {
            if let Some((name, _)) = pending
                .iter()
                .find(|(_, (nss, _))| nss.iter().any(|n| n == ns))
            {
                return Err(wait(name));
            }
            plan.subnets
                .iter()
                .find(|s| s.namespaces.iter().any(|n| n == ns))
                .or_else(|| plan.subnet(DEFAULT_SUBNET))
                .ok_or_else(|| {
                    sandbox_failed(format!("no subnet {DEFAULT_SUBNET} in the sandbox plan"))
                })?
        }
    };
    if s.name == JOIN_SUBNET {
        return Err(sandbox_failed(format!(
            "subnet {JOIN_SUBNET} holds node ports, not pods; use another ovn.kubernetes.io/logical_switch"
        )));
    }
    Ok(s)
}

// the CIDR rule is api_subnet's; IPAM counts in integers
fn parse_cidr4(c: &str) -> Option<(u32, u32)> {
    network4(c).map(|(net, len)| (u32::from(net), len))
}

fn parse_cidr6(c: &str) -> Option<(u128, u32)> {
    network6(c).map(|(net, len)| (u128::from(net), len))
}

/// The lowest host offset k (from 1) whose v4 address (and, for a dual-stack subnet,
/// v6 address base+k) is neither in `used` nor the network/broadcast address: the
/// same offset in both families, like the pods `up` plans.
pub fn allocate(
    s: &Subnet,
    used: &BTreeSet<String>,
) -> Result<(String, Option<String>), NotPlaced> {
    let (base4, len4) = parse_cidr4(&s.cidr4)
        .ok_or_else(|| sandbox_failed(format!("bad CIDR {} in subnet {}", s.cidr4, s.name)))?;
    let v6 = match &s.cidr6 {
        Some(c) => Some(
            parse_cidr6(c)
                .ok_or_else(|| sandbox_failed(format!("bad CIDR {c} in subnet {}", s.name)))?,
        ),
        None => None,
    };
    let hosts4: u64 = (1u64 << (32 - len4)).saturating_sub(1);
    let hosts6: u64 = v6.map_or(u64::MAX, |(_, l)| {
        if 128 - l >= 63 {
            u64::MAX
        } else {
            (1u64 << (128 - l)) - 1
        }
    });
    for k in 1..hosts4.min(hosts6) {
        let ip4 = Ipv4Addr::from(base4 + k as u32).to_string();
        if used.contains(&ip4) {
            continue;
        }
        let ip6 = v6.map(|(b, _)| Ipv6Addr::from(b + u128::from(k)).to_string());
        if ip6.as_ref().is_some_and(|ip| used.contains(ip)) {
            continue;
        }
        return Ok((ip4, ip6));
    }
    Err(sandbox_failed(format!(
        "subnet {} has no free address left",
        s.name
    )))
}

/// The addresses a pod asked for with `ovn.kubernetes.io/ip_address` (Kube-OVN's
/// static IP: "v4" or "v4,v6"), checked as Kube-OVN's IPAM checks them: in the
/// subnet, not its gateway or an excluded address, not held by another pod. A
/// dual-stack subnet's IPv6 address, when not given, takes the IPv4 host offset.
pub fn requested(
    s: &Subnet,
    asked: &str,
    used: &BTreeSet<String>,
) -> Result<(String, Option<String>), NotPlaced> {
    let (mut v4, mut v6) = (None, None);
    for a in asked.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let family_ok = match a.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => v4.replace(a.to_string()).is_none(),
            Ok(std::net::IpAddr::V6(_)) => v6.replace(a.to_string()).is_none(),
            Err(_) => {
                return Err(sandbox_failed(format!(
                    "ovn.kubernetes.io/ip_address {asked:?}: {a} is not an IP address"
                )));
            }
        };
        if !family_ok {
            return Err(sandbox_failed(format!(
                "ovn.kubernetes.io/ip_address {asked:?} names two addresses of one family"
            )));
        }
        if !in_subnet(s, a) {
            return Err(sandbox_failed(format!(
                "{a} is not in subnet {}'s CIDR {}",
                s.name,
                s.cidr_block()
            )));
        }
        if used.contains(a) {
            return Err(sandbox_failed(format!(
                "{a} in subnet {} is the gateway, excluded or held by another pod",
                s.name
            )));
        }
    }
    let Some(v4) = v4 else {
        return Err(sandbox_failed(format!(
            "ovn.kubernetes.io/ip_address {asked:?} has no IPv4 address (the sandbox's pods always have one)"
        )));
    };
    if v6.is_none()
        && let (Some((b6, _)), Some((b4, _)), Ok(a4)) = (
            s.cidr6.as_deref().and_then(parse_cidr6),
            parse_cidr4(&s.cidr4),
            v4.parse::<Ipv4Addr>(),
        )
    {
        v6 = Some(Ipv6Addr::from(b6 + u128::from(u32::from(a4) - b4)).to_string());
    }
    Ok((v4, v6))
}

/// A MAC asked for with `ovn.kubernetes.io/mac_address`, if it is one.
pub fn requested_mac(asked: &str) -> Result<String, NotPlaced> {
    let parts: Vec<&str> = asked.trim().split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
    let unicast = parts
        .first()
        .and_then(|p| u8::from_str_radix(p, 16).ok())
        .is_some_and(|b| b & 1 == 0);
    if ok && unicast {
        Ok(asked.trim().to_ascii_lowercase())
    } else {
        Err(sandbox_failed(format!(
            "ovn.kubernetes.io/mac_address {asked:?} is not a unicast MAC address"
        )))
    }
}

/// Whether `ip` lies in the subnet (either family); used to collect the addresses
/// other pods already hold there.
pub fn in_subnet(s: &Subnet, ip: &str) -> bool {
    if let Ok(a) = ip.parse::<Ipv4Addr>() {
        return parse_cidr4(&s.cidr4).is_some_and(|(b, l)| {
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            u32::from(a) & mask == b
        });
    }
    if let (Ok(a), Some((b, l))) = (
        ip.parse::<Ipv6Addr>(),
        s.cidr6.as_deref().and_then(parse_cidr6),
    ) {
        let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
        return u128::from(a) & mask == b;
    }
    false
}

/// Pod and namespace names end up in netns names and `ip -batch` lines: only what
/// Kubernetes itself accepts (DNS-1123) gets through.
pub fn valid_names(name: &str, ns: &str) -> Result<(), NotPlaced> {
    let ok = |s: &str, max: usize, dots: bool| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
            })
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    // `<sandbox (20)>-<name>.<ns>` must fit a file name (255) under /run/netns
    if ok(name, 180, true) && ok(ns, 50, false) {
        Ok(())
    } else {
        Err(sandbox_failed(format!(
            "pod name {name:?} or namespace {ns:?} is not a DNS-1123 name the sandbox can use for a network namespace"
        )))
    }
}

/// Addresses a new pod of `s` must not take: planned pods, the gateway, excludeIps of
/// the Subnet object, and whatever other pods in the API hold (annotations, podIPs).
pub fn used_ips(
    plan: &Plan,
    s: &Subnet,
    subnet_obj: Option<&Value>,
    pods: &[Value],
) -> BTreeSet<String> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    used.extend(s.gateway().split(',').map(str::to_string));
    for p in plan.pods.iter().filter(|p| !p.host_network) {
        used.extend(p.ips());
    }
    for ex in subnet_obj
        .and_then(|o| o["spec"]["excludeIps"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        used.extend(expand_exclude(ex));
    }
    for p in pods {
        let ann = p["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"].as_str();
        used.extend(
            ann.into_iter()
                .flat_map(|a| a.split(','))
                .map(str::to_string),
        );
        used.extend(
            p["status"]["podIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["ip"].as_str())
                .map(str::to_string),
        );
    }
    used.retain(|ip| in_subnet(s, ip));
    used
}

/// excludeIps entries are single addresses or `a..b` ranges (v4 ranges expanded up to
/// a sane size; anything else is taken literally).
fn expand_exclude(ex: &str) -> Vec<String> {
    let Some((a, b)) = ex.split_once("..") else {
        return vec![ex.to_string()];
    };
    match (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
        (Ok(a), Ok(b)) if u32::from(b) >= u32::from(a) && u32::from(b) - u32::from(a) < 65536 => {
            (u32::from(a)..=u32::from(b))
                .map(|x| Ipv4Addr::from(x).to_string())
                .collect()
        }
        _ => vec![a.to_string(), b.to_string()],
    }
}

/// A MAC for a pod instance (uid in the seed: a recreated pod gets a new one, as a
/// real one would).
pub fn mac(sandbox: &str, ns: &str, name: &str, uid: &str) -> String {
    plan::mac_for(&format!("{sandbox}/apipod/{ns}/{name}/{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nodes(plan: &Plan) -> Vec<Value> {
        plan.nodes
            .iter()
            .map(|n| json!({"metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name}}}))
            .collect()
    }

    #[test]
    fn schedule_honours_node_name_selector_and_load() {
        let plan = plan::build("t", 3, false);
        let ns = nodes(&plan);
        let by_sel =
            json!({"spec": {"nodeSelector": {"kubernetes.io/hostname": "kube-ovn-worker"}}});
        assert_eq!(schedule(&plan, &by_sel, &ns, &[0, 0, 0]), Ok(1));
        let by_name = json!({"spec": {"nodeName": "kube-ovn-worker2"}});
        assert_eq!(schedule(&plan, &by_name, &ns, &[0, 0, 0]), Ok(2));
        let free = json!({"spec": {}});
        assert_eq!(schedule(&plan, &free, &ns, &[2, 1, 0]), Ok(2));
        let unknown = json!({"spec": {"nodeSelector": {"kubernetes.io/hostname": "nope"}}});
        let e = schedule(&plan, &unknown, &ns, &[0, 0, 0]).unwrap_err();
        assert_eq!(e.reason, "Unschedulable");
        assert!(
            e.message.starts_with("0/3 nodes are available"),
            "{}",
            e.message
        );
    }

    #[test]
    fn subnet_follows_annotation_then_namespace_then_default() {
        let plan = plan::build("t", 3, false);
        let none = BTreeMap::new();
        let pod = |ns: &str, ann: Value| json!({"metadata": {"namespace": ns, "annotations": ann}});
        assert_eq!(
            subnet(&plan, &none, &pod("default", json!({})))
                .unwrap()
                .name,
            "ovn-default"
        );
        assert_eq!(
            subnet(&plan, &none, &pod("vpc1", json!({}))).unwrap().name,
            "vpc1-subnet"
        );
        let ul = json!({"ovn.kubernetes.io/logical_switch": "underlay"});
        assert_eq!(
            subnet(&plan, &none, &pod("default", ul)).unwrap().name,
            "underlay"
        );
        let bad = json!({"ovn.kubernetes.io/logical_switch": "nope"});
        let e = subnet(&plan, &none, &pod("default", bad)).unwrap_err();
        assert!(!e.waiting);
    }

    #[test]
    fn a_static_address_is_taken_when_free_and_in_the_subnet() {
        let plan = plan::build("t", 3, true);
        let s = plan.subnet("ovn-default").unwrap();
        let used = BTreeSet::from(["10.16.0.1".to_string(), "10.16.0.9".to_string()]);
        let (v4, v6) = requested(s, "10.16.0.50", &used).unwrap();
        assert_eq!(v4, "10.16.0.50");
        assert_eq!(
            v6.as_deref(),
            Some("fd00:10:16::32"),
            "same host offset in IPv6"
        );
        let both = requested(s, "10.16.0.51,fd00:10:16::99", &used).unwrap();
        assert_eq!(both.1.as_deref(), Some("fd00:10:16::99"));
        assert!(
            requested(s, "10.16.0.9", &used)
                .unwrap_err()
                .message
                .contains("held by another pod")
        );
        assert!(
            requested(s, "10.17.0.9", &used)
                .unwrap_err()
                .message
                .contains("not in subnet ovn-default")
        );
        assert!(requested(s, "nope", &used).is_err());
        assert!(
            requested(s, "fd00:10:16::5", &used)
                .unwrap_err()
                .message
                .contains("no IPv4")
        );
        assert_eq!(
            requested_mac("00:00:00:AA:bb:01").unwrap(),
            "00:00:00:aa:bb:01"
        );
        assert!(requested_mac("01:00:00:00:00:01").is_err(), "multicast");
        assert!(requested_mac("zz").is_err());
    }

    #[test]
    fn a_pod_bound_to_a_subnet_not_yet_realised_waits_for_it() {
        let plan = plan::build("t", 3, false);
        let pending = BTreeMap::from([(
            "s2".to_string(),
            (
                vec!["ns2".to_string()],
                "the controller has not realised it yet".to_string(),
            ),
        )]);
        let pod = |ns: &str, ann: Value| json!({"metadata": {"namespace": ns, "annotations": ann}});
        let by_ns = subnet(&plan, &pending, &pod("ns2", json!({}))).unwrap_err();
        assert!(by_ns.waiting && by_ns.message.contains("subnet s2 is not ready"));
        let by_ann = json!({"ovn.kubernetes.io/logical_switch": "s2"});
        assert!(
            subnet(&plan, &pending, &pod("default", by_ann))
                .unwrap_err()
                .waiting
        );
        // other namespaces are not held up
        assert_eq!(
            subnet(&plan, &pending, &pod("default", json!({})))
                .unwrap()
                .name,
            "ovn-default"
        );
    }

    #[test]
    fn allocation_skips_planned_pods_gateway_and_other_pods() {
        let plan = plan::build("t", 3, true);
        let s = plan.subnet("ovn-default").unwrap();
        let other = json!({"metadata": {"annotations": {"ovn.kubernetes.io/ip_address": "10.16.0.14,fd00:10:16::e"}}});
        let obj = json!({"spec": {"excludeIps": ["10.16.0.1", "10.16.0.15..10.16.0.16"]}});
        let used = used_ips(&plan, s, Some(&obj), &[other]);
        assert!(used.contains("10.16.0.13"), "planned db pod");
        let (v4, v6) = allocate(s, &used).unwrap();
        assert_eq!(v4, "10.16.0.17");
        assert_eq!(v6.as_deref(), Some("fd00:10:16::11"));
    }

    #[test]
    fn a_full_subnet_is_reported() {
        let mut plan = plan::build("t", 3, false);
        plan.subnets[0].cidr4 = "10.9.0.0/30".into();
        let s = &plan.subnets[0];
        let used: BTreeSet<String> = ["10.9.0.1", "10.9.0.2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(allocate(s, &used).is_err());
    }

    #[test]
    fn names_that_could_break_ip_batch_are_refused() {
        assert!(valid_names("test-client", "kube-system").is_ok());
        assert!(valid_names("a b", "default").is_err());
        assert!(valid_names("x\nnetns delete y", "default").is_err());
        assert!(valid_names("ok", "Bad").is_err());
        assert!(valid_names(&"a".repeat(180), &"b".repeat(50)).is_ok());
        assert!(valid_names(&"a".repeat(181), "default").is_err());
    }
}
