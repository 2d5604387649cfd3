//! What a real API server fills in when a Service is created: a ClusterIP per IP
//! family from the service ranges (kind's defaults here), `ipFamilies`,
//! `ipFamilyPolicy`, `type`, and each port's `protocol`/`targetPort`. Clients such
//! as `kubectl ko perf` read the ClusterIP back from the created object.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use crate::status::ApiError;
use crate::store::Store;

/// `--service-cluster-ip-range` of the emulated server (kind's defaults); the
/// sandbox's own Services (10.96.x.x, fd00:10:96::x) lie inside.
const V4_BASE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);
const V4_PREFIX: u32 = 12;
const V6_BASE: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0);
const V6_PREFIX: u32 = 112;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    /// The n-th address of the range (n ≥ 1).
    fn nth(self, n: u32) -> Option<IpAddr> {
        match self {
            Family::V4 => (n < (1 << (32 - V4_PREFIX)) - 1)
                .then(|| IpAddr::V4(Ipv4Addr::from(u32::from(V4_BASE) + n))),
            Family::V6 => (n < (1 << (128 - V6_PREFIX)) - 1)
                .then(|| IpAddr::V6(Ipv6Addr::from(u128::from(V6_BASE) + u128::from(n)))),
        }
    }
}

/// Every ClusterIP already held by a Service in the store.
fn allocated(store: &Store) -> HashSet<IpAddr> {
    let (services, _) = store.list("", "services", None);
    services
        .iter()
        .flat_map(|s| {
            let spec = &s["spec"];
            let ips = spec["clusterIPs"].as_array().cloned().unwrap_or_default();
            ips.into_iter()
                .chain(std::iter::once(spec["clusterIP"].clone()))
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect::<Vec<IpAddr>>()
        })
        .collect()
}

fn invalid(name: &str, detail: String) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("Service \"{name}\" is invalid: {detail}"),
    )
}

/// Fills the defaults of a new Service in place.
pub fn default_new_service(store: &Store, name: &str, svc: &mut Value) -> Result<(), ApiError> {
    let spec = match svc.get_mut("spec") {
        Some(Value::Object(_)) => &mut svc["spec"],
        _ => {
            svc["spec"] = json!({});
            &mut svc["spec"]
        }
    };
    if spec["type"].as_str().is_none_or(str::is_empty) {
        spec["type"] = json!("ClusterIP");
    }
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports.iter_mut() {
            if p["protocol"].as_str().is_none_or(str::is_empty) {
                p["protocol"] = json!("TCP");
            }
            if p.get("targetPort").is_none_or(Value::is_null) {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        if spec["externalTrafficPolicy"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        if spec["type"] == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts").is_none() {
            spec["allocateLoadBalancerNodePorts"] = json!(true);
        }
        let used = used_node_ports(store, None);
        allocate_node_ports(name, spec, &used)?;
    }
    if spec["clusterIP"] == "None" {
        spec["clusterIPs"] = json!(["None"]);
        return Ok(());
    }

    let used = allocated(store);
    let mut ips: Vec<IpAddr> = Vec::new();
    // Requested addresses first, as the real allocator validates them.
    let requested: Vec<String> = match spec["clusterIPs"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => spec["clusterIP"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .into_iter()
            .collect(),
    };
    for r in &requested {
        let ip: IpAddr = r.parse().map_err(|_| {
            invalid(
                name,
                format!("spec.clusterIPs: Invalid value: \"{r}\": must be a valid IP address"),
            )
        })?;
        if used.contains(&ip) {
            return Err(invalid(
                name,
                format!(
                    "spec.clusterIPs: Invalid value: [\"{r}\"]: failed to allocate IP {r}: provided IP is already allocated"
                ),
            ));
        }
        ips.push(ip);
    }

    let policy = spec["ipFamilyPolicy"]
        .as_str()
        .unwrap_or("SingleStack")
        .to_string();
    let mut families: Vec<Family> = spec["ipFamilies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(Family::parse))
                .collect()
        })
        .unwrap_or_default();
    if families.is_empty() {
        families = ips.iter().map(Family::of).collect();
    }
    if families.is_empty() {
        families.push(Family::V4);
    }
    if policy != "SingleStack" && families.len() == 1 {
        families.push(if families[0] == Family::V4 {
            Family::V6
        } else {
            Family::V4
        });
    }
    if policy == "SingleStack" {
        families.truncate(1);
    }
    for fam in &families {
        if ips.iter().any(|ip| Family::of(ip) == *fam) {
            continue;
        }
        // Skip the first address: the `kubernetes` Service's in a real cluster.
        let free = (2..)
            .map_while(|n| fam.nth(n))
            .find(|ip| !used.contains(ip));
        let Some(ip) = free else {
            return Err(ApiError::internal(format!(
                "failed to allocate a service IP: the {} range is full",
                fam.name()
            )));
        };
        ips.push(ip);
    }
    let strings: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    spec["clusterIP"] = json!(strings[0]);
    spec["clusterIPs"] = json!(strings);
    spec["ipFamilies"] = json!(
        ips.iter()
            .map(|ip| Family::of(ip).name())
            .collect::<Vec<_>>()
    );
    spec["ipFamilyPolicy"] = json!(policy);
    Ok(())
}

/// `--service-node-port-range` of the emulated server (the default).
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Every nodePort held by a Service, except those of `except` (namespace, name).
pub fn used_node_ports(store: &Store, except: Option<(&str, &str)>) -> HashSet<i64> {
    let (services, _) = store.list("", "services", None);
    services
        .iter()
        .filter(|s| {
            except.is_none_or(|(ns, n)| {
                s["metadata"]["namespace"] != ns || s["metadata"]["name"] != n
            })
        })
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect()
}

/// Gives every port of a NodePort/LoadBalancer Service a nodePort: a requested one is
/// checked (range, not taken), the others get the lowest free port of the range. A
/// LoadBalancer with `allocateLoadBalancerNodePorts: false` gets none.
pub fn allocate_node_ports(
    name: &str,
    spec: &mut Value,
    used: &HashSet<i64>,
) -> Result<(), ApiError> {
    if !matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"))
        || spec["allocateLoadBalancerNodePorts"] == false
    {
        return Ok(());
    }
    let mut taken = used.clone();
    let Some(ports) = spec["ports"].as_array_mut() else {
        return Ok(());
    };
    // Requested ports first (they must be free), then the lowest free ones.
    for (i, p) in ports.iter().enumerate() {
        let Some(n) = p["nodePort"].as_i64().filter(|n| *n != 0) else {
            continue;
        };
        if !NODE_PORTS.contains(&n) {
            return Err(invalid(
                name,
                format!(
                    "spec.ports[{i}].nodePort: Invalid value: {n}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                ),
            ));
        }
        if !taken.insert(n) {
            return Err(invalid(
                name,
                format!(
                    "spec.ports[{i}].nodePort: Invalid value: {n}: provided port is already allocated"
                ),
            ));
        }
    }
    for p in ports.iter_mut() {
        if p["nodePort"].as_i64().is_some_and(|n| n != 0) {
            continue;
        }
        let free = NODE_PORTS
            .clone()
            .find(|n| !taken.contains(n))
            .ok_or_else(|| {
                ApiError::internal("failed to allocate a nodePort: the range 30000-32767 is full")
            })?;
        taken.insert(free);
        p["nodePort"] = json!(free);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Key;

    fn store_with(ips: &[&str]) -> Store {
        let store = Store::new();
        for (i, ip) in ips.iter().enumerate() {
            let name = format!("s{i}");
            store
                .create(
                    Key::new("", "services", "default", &name),
                    json!({"spec": {"clusterIP": ip, "clusterIPs": [ip]}}),
                )
                .unwrap();
        }
        store
    }

    #[test]
    fn allocates_a_free_ipv4_and_fills_defaults() {
        let store = store_with(&["10.96.0.2", "10.96.0.3"]);
        let mut svc = json!({"spec": {"ports": [{"port": 5201}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}});
        default_new_service(&store, "t", &mut svc).unwrap();
        let spec = &svc["spec"];
        assert_eq!(spec["clusterIP"], "10.96.0.4");
        assert_eq!(spec["clusterIPs"], json!(["10.96.0.4"]));
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["ports"][0]["targetPort"], 5201);
        assert_eq!(spec["ports"][1]["targetPort"], "dns");
    }

    #[test]
    fn dual_stack_gets_both_families_and_headless_none() {
        let store = store_with(&["fd00:10:96::2"]);
        let mut svc = json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}});
        default_new_service(&store, "t", &mut svc).unwrap();
        assert_eq!(
            svc["spec"]["clusterIPs"],
            json!(["10.96.0.2", "fd00:10:96::3"])
        );
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

        let mut headless = json!({"spec": {"clusterIP": "None"}});
        default_new_service(&store, "h", &mut headless).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn a_requested_ip_is_kept_or_refused_when_taken() {
        let store = store_with(&["10.96.100.10"]);
        let mut mine = json!({"spec": {"clusterIP": "10.96.7.7"}});
        default_new_service(&store, "m", &mut mine).unwrap();
        assert_eq!(mine["spec"]["clusterIPs"], json!(["10.96.7.7"]));

        let mut taken = json!({"spec": {"clusterIP": "10.96.100.10"}});
        let e = default_new_service(&store, "t", &mut taken).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message.contains("provided IP is already allocated"),
            "{}",
            e.message
        );
        let mut bad = json!({"spec": {"clusterIP": "nope"}});
        assert!(default_new_service(&store, "b", &mut bad).is_err());
    }

    #[test]
    fn node_ports_are_unique_in_range_and_checked() {
        let store = store_with(&[]);
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30000}]}});
        let e = default_new_service(&store, "np", &mut svc.clone());
        assert!(e.is_ok());
        default_new_service(&store, "np", &mut svc).unwrap();
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 30000);
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30001);
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        let used: HashSet<i64> = [30000, 30001].into();
        let mut again = json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30001}]});
        let e = allocate_node_ports("x", &mut again, &used).unwrap_err();
        assert!(e.message.contains("already allocated"), "{}", e.message);
        let mut out = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]});
        assert!(allocate_node_ports("x", &mut out, &used).is_err());
        let mut cip = json!({"type": "ClusterIP", "ports": [{"port": 80}]});
        allocate_node_ports("x", &mut cip, &used).unwrap();
        assert!(cip["ports"][0].get("nodePort").is_none());
    }
}
