//! The NB rows the controller wants (port groups with their ACLs, address sets,
//! subnet ACLs on switches, load balancer VIPs, pod port settings), as plain values
//! that the builders fill and `nbsync` compares with what the NB holds.

use std::collections::{BTreeMap, BTreeSet};

use crate::nb::q;

pub const VENDOR: &str = "kube-ovn";
/// Kube-OVN's ACL tier for NetworkPolicy and subnet ACLs (`util.NetpolACLTier`).
pub const NETPOL_TIER: u8 = 2;

/// One ACL as Kube-OVN's `newACL` makes it. `tier` is written only when the NB
/// schema has the column (OVN 23.06 and later); it is 0 otherwise.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub direction: String,
    pub priority: u32,
    pub matches: String,
    pub action: String,
    pub name: Option<String>,
    pub options: BTreeMap<String, String>,
    pub external_ids: BTreeMap<String, String>,
    pub tier: u8,
    /// `log=true` with this `severity` (Kube-OVN logs its private-subnet drop).
    pub log_severity: Option<String>,
}

impl Acl {
    /// An ACL of `parent` (port group or switch) tagged `parent=`, `vendor=`.
    pub fn new(parent: &str, direction: &str, priority: u32, m: &str, action: &str) -> Acl {
        Acl {
            direction: direction.into(),
            priority,
            matches: m.into(),
            action: action.into(),
            name: None,
            options: BTreeMap::new(),
            external_ids: BTreeMap::from([
                ("parent".to_string(), parent.to_string()),
                ("vendor".to_string(), VENDOR.to_string()),
            ]),
            tier: 0,
            log_severity: None,
        }
    }

    /// Logged at `severity` (`acl.Log = true; acl.Severity = ...`).
    pub fn logged(mut self, severity: &str) -> Acl {
        self.log_severity = Some(severity.into());
        self
    }

    /// Kube-OVN's `setACLName`: names over 63 characters are cut to 60 + "...".
    pub fn named(mut self, name: &str) -> Acl {
        let name = if name.chars().count() > 63 {
            format!("{}...", name.chars().take(60).collect::<String>())
        } else {
            name.to_string()
        };
        self.name = Some(name);
        self
    }

    pub fn option(mut self, k: &str, v: &str) -> Acl {
        self.options.insert(k.into(), v.into());
        self
    }

    pub fn ext(mut self, k: &str, v: &str) -> Acl {
        self.external_ids.insert(k.into(), v.into());
        self
    }

    pub fn tier(mut self, tier: u8) -> Acl {
        self.tier = tier;
        self
    }

    /// `create acl ...` arguments (without `--id`).
    pub fn create_args(&self, with_tier: bool) -> Vec<String> {
        let mut c = vec![
            "create".to_string(),
            "acl".to_string(),
            format!("direction={}", self.direction),
            format!("priority={}", self.priority),
            format!("match={}", q(&self.matches)),
            format!("action={}", self.action),
        ];
        if let Some(n) = &self.name {
            c.push(format!("name={}", q(n)));
        }
        for (k, v) in &self.options {
            c.push(format!("options:{}={}", q(k), q(v)));
        }
        for (k, v) in &self.external_ids {
            c.push(format!("external_ids:{}={}", q(k), q(v)));
        }
        if with_tier {
            c.push(format!("tier={}", self.tier));
        }
        if let Some(sev) = &self.log_severity {
            c.push("log=true".into());
            c.push(format!("severity={sev}"));
        }
        c
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PortGroup {
    pub external_ids: BTreeMap<String, String>,
    pub ports: BTreeSet<String>,
    pub acls: BTreeSet<Acl>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AddressSet {
    pub external_ids: BTreeMap<String, String>,
    pub addresses: BTreeSet<String>,
}

/// What a pod's annotations ask of its LSP: Kube-OVN's `security_groups`,
/// `associated_sg_<sg>` external_ids and `port_security`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PortSettings {
    pub external_ids: BTreeMap<String, String>,
    pub port_security: Vec<String>,
}

/// Everything the controller owns in the NB.
#[derive(Debug, Default)]
pub struct Desired {
    pub port_groups: BTreeMap<String, PortGroup>,
    pub address_sets: BTreeMap<String, AddressSet>,
    /// Subnet ACLs (`external_ids:subnet=<ls>`) by switch.
    pub switch_acls: BTreeMap<String, BTreeSet<Acl>>,
    /// Load balancer name -> VIP -> backends.
    pub lb_vips: BTreeMap<String, BTreeMap<String, String>>,
    /// LSP name -> settings from its pod.
    pub ports: BTreeMap<String, PortSettings>,
    /// Members of `ovn.sg.kubeovn_deny_all`.
    pub deny_all_ports: BTreeSet<String>,
}

/// `{a=b, c=d}` key/values as external_ids: arguments of `set`/`create`.
pub fn ext_args(col: &str, m: &BTreeMap<String, String>) -> Vec<String> {
    m.iter()
        .map(|(k, v)| format!("{col}:{}={}", q(k), q(v)))
        .collect()
}

/// `ip:port`, or `[ip6]:port` (Kube-OVN's `util.JoinHostPort`).
pub fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Kube-OVN's `util.CheckProtocol` for one address or CIDR.
pub fn family(addr: &str) -> &'static str {
    if addr.contains(':') { "IPv6" } else { "IPv4" }
}

pub fn with_vendor(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("vendor".into(), VENDOR.into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_acl_names_are_cut_like_kube_ovn() {
        let a = Acl::new("pg", "to-lport", 2001, "ip", "drop").named(&"x".repeat(70));
        assert_eq!(
            a.name.as_deref(),
            Some(format!("{}...", "x".repeat(60)).as_str())
        );
        let b = Acl::new("pg", "to-lport", 2001, "ip", "drop").named("short");
        assert_eq!(b.name.as_deref(), Some("short"));
    }

    #[test]
    fn create_args_quote_and_add_tier_only_when_asked() {
        let a = Acl::new("p.g", "from-lport", 2000, "inport == @p.g && ip", "drop")
            .option("apply-after-lb", "true");
        let args = a.create_args(false);
        assert!(args.contains(&"match=\"inport == @p.g && ip\"".to_string()));
        assert!(args.contains(&"options:\"apply-after-lb\"=\"true\"".to_string()));
        assert!(!args.iter().any(|s| s.starts_with("tier=")));
        assert!(a.create_args(true).contains(&"tier=0".to_string()));
    }
}
