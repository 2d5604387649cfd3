//! Where ovn-controller puts things in br-int's OpenFlow tables, learnt from
//! the cluster rather than assumed.
//!
//! - The logical pipelines: an OpenFlow rule whose cookie names a logical flow
//!   was generated from that flow, so `OpenFlow table - Logical_Flow.table_id`
//!   is the offset of its pipeline ([`OpenFlowLayout::calibrate`]). OVN 23.03
//!   puts ingress at 8 and egress at 42, 25.03 egress at 45, 26.03 at 48.
//! - ovn-controller's own ("physical") tables have no logical flow. Their
//!   numbers are `OFTABLE_*` in `controller/lflow.h` and move between
//!   releases (26.03 puts local_output at 46, where 23.03 had egress table 4),
//!   so they are named per release ([`physical_tables`]); for a release not
//!   listed only the numbers every listed release agrees on are named, and
//!   anything else is [`OpenFlowTable::Unknown`], never a neighbour's name.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ovsdb_rows::Pipeline;

/// One ovn-controller table: number, `OFTABLE_*` name in lower case, meaning.
pub type PhysicalTable = (u32, &'static str, &'static str);

const PHY_TO_LOG: PhysicalTable = (
    0,
    "phy_to_log",
    "classifies the input port (VIF, tunnel, localnet) and loads the datapath (metadata), logical inport (reg14) and conntrack zones",
);

/// The tables at 64 and above: the same numbers in every release listed
/// here, each release adding some at the end.
const HIGH: &[PhysicalTable] = &[
    (
        64,
        "save_inport",
        "saves/clears in_port so a packet may go back out of the port it came from",
    ),
    (
        65,
        "log_to_phy",
        "maps the logical outport to the physical port (VIF, patch, localnet)",
    ),
    (66, "mac_binding", "MAC_Binding lookup for get_arp/get_nd"),
    (
        67,
        "mac_lookup",
        "MAC_Binding check for lookup_arp/lookup_nd",
    ),
    (68, "chk_lb_hairpin", "LB hairpin check"),
    (69, "chk_lb_hairpin_reply", "LB hairpin reply check"),
    (70, "ct_snat_hairpin", "SNAT of hairpinned LB traffic"),
    (71, "get_fdb", "FDB lookup for get_fdb"),
    (72, "lookup_fdb", "FDB check for lookup_fdb"),
    (
        73,
        "chk_in_port_sec",
        "ingress port-security check (check_in_port_sec)",
    ),
    (
        74,
        "chk_in_port_sec_nd",
        "ingress ARP/ND port-security check",
    ),
    (
        75,
        "chk_out_port_sec",
        "egress port-security check (check_out_port_sec)",
    ),
    (76, "ecmp_nh_mac", "ECMP symmetric reply: next-hop MAC"),
    (77, "ecmp_nh", "ECMP symmetric reply: next hop"),
    (78, "chk_lb_affinity", "LB affinity check"),
    (
        79,
        "mac_cache_use",
        "marks MAC_Binding/FDB entries as used (aging)",
    ),
    (
        80,
        "ct_zone_lookup",
        "finds the conntrack zone of a port (ct_next with zone switching)",
    ),
    (
        81,
        "ct_orig_nw_dst_load",
        "loads the original IPv4 destination (LB VIP) from conntrack",
    ),
    (
        82,
        "ct_orig_ip6_dst_load",
        "loads the original IPv6 destination (LB VIP) from conntrack",
    ),
    (
        83,
        "ct_orig_tp_dst_load",
        "loads the original L4 destination port from conntrack",
    ),
    (
        84,
        "flood_remote_chassis",
        "floods multicast/broadcast to remote chassis",
    ),
    (
        85,
        "ct_state_save",
        "saves the conntrack state for later stages",
    ),
    (
        86,
        "ct_orig_proto_load",
        "loads the original IP protocol from conntrack",
    ),
    (
        87,
        "get_remote_fdb",
        "FDB lookup of MACs learnt on remote chassis",
    ),
    (
        88,
        "learn_remote_fdb",
        "learns MACs of remote chassis into the FDB",
    ),
];

/// The output tables between the pipelines, from `OFTABLE_OUTPUT_INIT` on.
fn output_tables(start: u32, remote_vtep: bool) -> Vec<PhysicalTable> {
    let mut t = vec![
        (
            start,
            "output_large_pkt_detect",
            "detects packets larger than the gateway MTU",
        ),
        (
            start + 1,
            "output_large_pkt_process",
            "handles oversized packets",
        ),
        (
            start + 2,
            "remote_output",
            "sends packets for ports on other chassis into a tunnel (geneve)",
        ),
    ];
    let mut next = start + 3;
    if remote_vtep {
        t.push((
            next,
            "remote_vtep_output",
            "sends packets to remote VTEP (EVPN) endpoints",
        ));
        next += 1;
    }
    t.push((
        next,
        "local_output",
        "hands packets for local ports (and multicast groups) to the egress pipeline",
    ));
    t.push((
        next + 1,
        "check_loopback",
        "drops packets whose outport equals their inport unless loopback is allowed",
    ));
    t
}

/// A release's `controller/lflow.h` layout: (major.minor, output tables
/// start, has remote_vtep_output, last `OFTABLE_*` at 64+, gaps at 64+).
struct Release {
    version: &'static str,
    output_start: u32,
    remote_vtep: bool,
    high_last: u32,
    high_missing: &'static [u32],
}

/// Read from branch-23.03 … branch-26.03 of github.com/ovn-org/ovn.
const RELEASES: &[Release] = &[
    Release {
        version: "23.03",
        output_start: 37,
        remote_vtep: false,
        high_last: 78,
        high_missing: &[],
    },
    Release {
        version: "23.06",
        output_start: 37,
        remote_vtep: false,
        high_last: 78,
        high_missing: &[],
    },
    Release {
        version: "23.09",
        output_start: 37,
        remote_vtep: false,
        high_last: 83,
        high_missing: &[80],
    },
    Release {
        version: "24.03",
        output_start: 37,
        remote_vtep: false,
        high_last: 85,
        high_missing: &[84],
    },
    Release {
        version: "24.09",
        output_start: 40,
        remote_vtep: false,
        high_last: 85,
        high_missing: &[84],
    },
    Release {
        version: "25.03",
        output_start: 40,
        remote_vtep: false,
        high_last: 85,
        high_missing: &[],
    },
    Release {
        version: "25.09",
        output_start: 41,
        remote_vtep: true,
        high_last: 87,
        high_missing: &[],
    },
    Release {
        version: "26.03",
        output_start: 42,
        remote_vtep: true,
        high_last: 88,
        high_missing: &[],
    },
];

/// `"25.03.0"`, `"ovn-controller 25.03.1"`, `"25.03"` → `"25.03"`.
pub fn major_minor(version: &str) -> Option<String> {
    let v = version.split_whitespace().last()?;
    let mut it = v.split('.');
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    Some(format!("{major}.{minor:02}"))
}

/// ovn-controller's own tables of an OVN release (`"25.03.0"`), or `None`
/// when the release is not one whose source was read.
pub fn physical_tables(version: &str) -> Option<Vec<PhysicalTable>> {
    let mm = major_minor(version)?;
    let r = RELEASES.iter().find(|r| r.version == mm)?;
    let mut t = vec![PHY_TO_LOG];
    t.extend(output_tables(r.output_start, r.remote_vtep));
    t.extend(
        HIGH.iter()
            .filter(|(n, _, _)| *n <= r.high_last && !r.high_missing.contains(n))
            .copied(),
    );
    Some(t)
}

/// The tables every listed release names alike (for an unknown release).
fn common_physical_tables() -> Vec<PhysicalTable> {
    let all: Vec<Vec<PhysicalTable>> = RELEASES
        .iter()
        .filter_map(|r| physical_tables(r.version))
        .collect();
    let Some(first) = all.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|t| all.iter().all(|other| other.contains(t)))
        .copied()
        .collect()
}

/// What an OpenFlow table number of br-int is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenFlowTable {
    /// A logical pipeline table: `table` is the logical `table_id`.
    Logical {
        pipeline: Pipeline,
        table: u32,
    },
    /// One of ovn-controller's own tables.
    Physical {
        name: &'static str,
        summary: &'static str,
    },
    Unknown,
}

/// Where the logical pipelines start in OpenFlow and which tables are
/// ovn-controller's, for one chassis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenFlowLayout {
    /// The ovn-controller release the physical table names are for, when known.
    pub ovn_version: Option<String>,
    /// First OpenFlow table of the logical ingress pipeline.
    pub ingress_start: Option<u32>,
    /// First OpenFlow table of the logical egress pipeline.
    pub egress_start: Option<u32>,
    /// Last OpenFlow table (inclusive) seen or known to belong to each
    /// pipeline: the next physical table bounds it for a known release,
    /// the highest observed logical table for an unknown one.
    pub ingress_last: Option<u32>,
    pub egress_last: Option<u32>,
    /// How the offsets were found.
    pub source: LayoutSource,
    #[serde(skip)]
    physical: Vec<PhysicalTable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSource {
    /// From rules whose cookie names a logical flow.
    Cookies,
    /// From the release's source (`controller/lflow.h`).
    Release,
    /// Neither: only the tables every known release agrees on are named.
    None,
}

/// One OpenFlow rule observed with the logical flow its cookie names.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub openflow_table: u32,
    pub pipeline: Pipeline,
    pub logical_table: u32,
}

impl OpenFlowLayout {
    /// The layout of a release as its source states it (no calibration).
    pub fn for_release(version: Option<&str>) -> Self {
        let physical = version.and_then(physical_tables);
        let known = physical.is_some();
        let egress_start = physical.as_ref().and_then(|t| {
            // the egress pipeline starts right after check_loopback
            t.iter()
                .find(|(_, n, _)| *n == "check_loopback")
                .map(|(n, _, _)| n + 1)
        });
        let ingress_start = known.then_some(8);
        let mut layout = OpenFlowLayout {
            ovn_version: version.map(str::to_string),
            ingress_start,
            egress_start,
            ingress_last: None,
            egress_last: None,
            source: if known {
                LayoutSource::Release
            } else {
                LayoutSource::None
            },
            physical: physical.clone().unwrap_or_else(common_physical_tables),
        };
        if known {
            layout.ingress_last = layout.next_physical(ingress_start).map(|n| n - 1);
            layout.egress_last = layout.next_physical(egress_start).map(|n| n - 1);
        }
        layout
    }

    fn next_physical(&self, start: Option<u32>) -> Option<u32> {
        let start = start?;
        self.physical
            .iter()
            .map(|(n, _, _)| *n)
            .filter(|n| *n > start)
            .min()
    }

    /// Calibrates the pipeline offsets from rules whose cookie names a
    /// logical flow; the most frequent offset per pipeline wins (a rule can
    /// be matched to the wrong flow when two flows share a UUID prefix).
    /// Offsets not observed keep the release's values.
    pub fn calibrate(version: Option<&str>, observed: &[Observation]) -> Self {
        let mut layout = Self::for_release(version);
        let mut counts: BTreeMap<(Pipeline, u32), usize> = BTreeMap::new();
        for o in observed {
            if let Some(off) = o.openflow_table.checked_sub(o.logical_table) {
                *counts.entry((o.pipeline, off)).or_default() += 1;
            }
        }
        let best = |p: Pipeline| {
            counts
                .iter()
                .filter(|((pp, _), _)| *pp == p)
                .max_by_key(|(_, n)| **n)
                .map(|((_, off), _)| *off)
        };
        let (ing, eg) = (best(Pipeline::Ingress), best(Pipeline::Egress));
        if ing.is_some() || eg.is_some() {
            layout.source = LayoutSource::Cookies;
        }
        let known = version.and_then(physical_tables).is_some();
        let highest = |p: Pipeline, off: Option<u32>| {
            let off = off?;
            observed
                .iter()
                .filter(|o| {
                    o.pipeline == p && o.openflow_table.checked_sub(o.logical_table) == Some(off)
                })
                .map(|o| o.openflow_table)
                .max()
        };
        if ing.is_some() {
            layout.ingress_start = ing;
            layout.ingress_last = if known {
                layout.next_physical(ing).map(|n| n - 1)
            } else {
                highest(Pipeline::Ingress, ing)
            };
        }
        if eg.is_some() {
            layout.egress_start = eg;
            layout.egress_last = if known {
                layout.next_physical(eg).map(|n| n - 1)
            } else {
                highest(Pipeline::Egress, eg)
            };
        }
        layout
    }

    /// What OpenFlow table `table` is on this chassis.
    pub fn classify(&self, table: u32) -> OpenFlowTable {
        if let Some(&(_, name, summary)) = self.physical.iter().find(|(n, _, _)| *n == table) {
            return OpenFlowTable::Physical { name, summary };
        }
        for (pipeline, start, last) in [
            (Pipeline::Egress, self.egress_start, self.egress_last),
            (Pipeline::Ingress, self.ingress_start, self.ingress_last),
        ] {
            if let (Some(start), Some(last)) = (start, last)
                && (start..=last).contains(&table)
            {
                return OpenFlowTable::Logical {
                    pipeline,
                    table: table - start,
                };
            }
        }
        OpenFlowTable::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_match_their_source() {
        // spot checks against controller/lflow.h of each branch
        let t23 = physical_tables("23.03.1").unwrap();
        assert!(t23.iter().any(|t| t.0 == 39 && t.1 == "remote_output"));
        assert!(!t23.iter().any(|t| t.0 == 79));
        let t24 = physical_tables("24.03.2").unwrap();
        assert!(t24.iter().any(|t| t.0 == 85) && !t24.iter().any(|t| t.0 == 84));
        let t26 = physical_tables("26.03.1").unwrap();
        assert!(t26.iter().any(|t| t.0 == 45 && t.1 == "remote_vtep_output"));
        assert!(t26.iter().any(|t| t.0 == 88));
        assert_eq!(physical_tables("22.03.0"), None);
    }

    #[test]
    fn release_layouts() {
        let l = OpenFlowLayout::for_release(Some("25.03.0"));
        assert_eq!((l.ingress_start, l.egress_start), (Some(8), Some(45)));
        assert_eq!(
            l.classify(46),
            OpenFlowTable::Logical {
                pipeline: Pipeline::Egress,
                table: 1
            }
        );
        assert!(matches!(
            l.classify(42),
            OpenFlowTable::Physical {
                name: "remote_output",
                ..
            }
        ));
        let l = OpenFlowLayout::for_release(Some("26.03.1"));
        assert_eq!(l.egress_start, Some(48));
        assert!(matches!(
            l.classify(46),
            OpenFlowTable::Physical {
                name: "local_output",
                ..
            }
        ));
        let l = OpenFlowLayout::for_release(Some("23.03.1"));
        assert_eq!(l.egress_start, Some(42));
        assert_eq!(
            l.classify(36),
            OpenFlowTable::Logical {
                pipeline: Pipeline::Ingress,
                table: 28
            }
        );
    }

    #[test]
    fn unknown_release_names_only_common_tables() {
        let l = OpenFlowLayout::for_release(Some("99.03.0"));
        assert_eq!(l.source, LayoutSource::None);
        assert!(matches!(
            l.classify(65),
            OpenFlowTable::Physical {
                name: "log_to_phy",
                ..
            }
        ));
        // remote_output is 39, 42, 43 or 44 depending on the release
        assert_eq!(l.classify(39), OpenFlowTable::Unknown);
        assert_eq!(l.classify(42), OpenFlowTable::Unknown);
        assert_eq!(l.classify(84), OpenFlowTable::Unknown);
        assert_eq!(l.classify(10), OpenFlowTable::Unknown);
        // calibrated from cookies, the pipelines are known again
        let obs = [
            Observation {
                openflow_table: 50,
                pipeline: Pipeline::Egress,
                logical_table: 0,
            },
            Observation {
                openflow_table: 12,
                pipeline: Pipeline::Ingress,
                logical_table: 4,
            },
        ];
        let l = OpenFlowLayout::calibrate(Some("99.03.0"), &obs);
        assert_eq!((l.ingress_start, l.egress_start), (Some(8), Some(50)));
        assert_eq!(l.source, LayoutSource::Cookies);
        assert_eq!(
            l.classify(50),
            OpenFlowTable::Logical {
                pipeline: Pipeline::Egress,
                table: 0
            }
        );
        // beyond what was observed stays unknown for an unknown release
        assert_eq!(l.classify(55), OpenFlowTable::Unknown);
        assert_eq!(l.classify(13), OpenFlowTable::Unknown);
    }
}
