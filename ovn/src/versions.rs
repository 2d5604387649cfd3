//! Which OVN and OVS releases a cluster runs, read from the tools' own
//! `--version` (the first line ends with the version: `ovn-controller
//! 25.03.0`, `ovs-vswitchd (Open vSwitch) 3.5.0`, `ovn-northd 26.03.1`), and
//! the skew between them that Kube-OVN upgrades go wrong with.

use serde::{Deserialize, Serialize};

/// `argv` printing the version of one of the OVN/OVS daemons.
pub fn version_argv(tool: &str) -> Vec<String> {
    vec![tool.to_string(), "--version".to_string()]
}

/// The version a `--version` output states on its first line.
pub fn parse_version(text: &str) -> Option<String> {
    let word = text.lines().next()?.split_whitespace().last()?;
    let ok = word.split('.').count() >= 2
        && word
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| word.to_string())
}

/// The versions seen on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVersions {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovn_controller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovs_vswitchd: Option<String>,
}

/// The versions a command saw: ovn-central's (ovn-northd) and each node's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovn_central: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeVersions>,
}

impl Versions {
    pub fn is_empty(&self) -> bool {
        self.ovn_central.is_none() && self.nodes.is_empty()
    }

    /// `OVN 25.03.0 (ovn-central); n1: ovn-controller 25.03.0, OVS 3.5.0`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.ovn_central {
            parts.push(format!("OVN {v} (ovn-central)"));
        }
        for n in &self.nodes {
            let mut what = Vec::new();
            if let Some(v) = &n.ovn_controller {
                what.push(format!("ovn-controller {v}"));
            }
            if let Some(v) = &n.ovs_vswitchd {
                what.push(format!("OVS {v}"));
            }
            if !what.is_empty() {
                parts.push(format!("{}: {}", n.node, what.join(", ")));
            }
        }
        parts.join("; ")
    }

    /// Version skew worth a warning, one sentence each: a node whose
    /// ovn-controller is a different OVN release (major.minor) than
    /// ovn-central, or whose OVS differs from the other nodes' OVS.
    pub fn skew(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mm = |v: &str| crate::layout::major_minor(v);
        if let Some(central) = &self.ovn_central {
            for n in &self.nodes {
                if let Some(c) = &n.ovn_controller
                    && mm(c) != mm(central)
                {
                    out.push(format!(
                        "node {} runs ovn-controller {c} but ovn-central runs OVN {central}: upgrade them together (ovn-controller should not be newer than ovn-northd, and only one release older is supported)",
                        n.node
                    ));
                }
            }
        }
        let mut ovs: Vec<&str> = self
            .nodes
            .iter()
            .filter_map(|n| n.ovs_vswitchd.as_deref())
            .collect();
        ovs.sort();
        ovs.dedup();
        if ovs.len() > 1 {
            let per_node: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|n| Some(format!("{} {}", n.node, n.ovs_vswitchd.as_deref()?)))
                .collect();
            out.push(format!(
                "nodes run different Open vSwitch releases ({}): an upgrade left some nodes behind",
                per_node.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(ver: &str, name: &str) -> String {
        ko_testkit::fixture!(&format!("versions/{ver}/{name}.txt"))
    }

    #[test]
    fn versions_of_real_tools() {
        for (ver, ovs) in [
            ("23.03.1", "3.1.0"),
            ("25.03.0", "3.5.0"),
            ("26.03.1", "4.0.0"),
        ] {
            for tool in ["ovn-controller", "ovn-nbctl"] {
                let out = fixture(ver, &format!("version-{tool}"));
                assert_eq!(parse_version(&out).as_deref(), Some(ver), "{tool}");
            }
            let out = fixture(ver, "version-ovs-vswitchd");
            assert_eq!(parse_version(&out).as_deref(), Some(ovs));
        }
        assert_eq!(parse_version("ovn-controller: unknown option"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn skew_is_reported_with_the_numbers() {
        let node = |n: &str, c: &str, o: &str| NodeVersions {
            node: n.into(),
            ovn_controller: Some(c.into()),
            ovs_vswitchd: Some(o.into()),
        };
        let v = Versions {
            ovn_central: Some("25.03.0".into()),
            nodes: vec![
                node("n1", "25.03.1", "3.5.0"),
                node("n2", "24.03.2", "3.3.0"),
            ],
        };
        let w = v.skew();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("n2") && w[0].contains("24.03.2") && w[0].contains("25.03.0"));
        assert!(w[1].contains("n1 3.5.0") && w[1].contains("n2 3.3.0"));
        // patch releases of the same OVN release are not skew
        let v = Versions {
            ovn_central: Some("25.03.0".into()),
            nodes: vec![node("n1", "25.03.1", "3.5.0")],
        };
        assert!(v.skew().is_empty());
        assert!(
            v.describe()
                .contains("n1: ovn-controller 25.03.1, OVS 3.5.0")
        );
    }
}
