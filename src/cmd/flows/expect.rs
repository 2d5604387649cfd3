//! `--expect dhcp|arp|<stage>|match:<text>`: the logical flows of the
//! pod's switch that real traffic should hit (read once with
//! `ovn-sbctl --uuid lflow-list <switch>`), and whether their OpenFlow rules
//! moved during the run (seed 000: the DHCPv6 responder rule that did not
//! count while the security group was on). A stage's catch-all flow (match
//! `1`) is never selected: every packet passes it.

use std::collections::HashMap;

use ko_ovn::lflow_list;
use ko_ovn::ovsdb_rows::LogicalFlow;

use super::report::{Expectation, ExpectedFlow};
use super::resolve::Setup;
use crate::cluster::{Cluster, container};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct Expectations {
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    what: String,
    flows: Vec<ExpectedFlow>,
    cookies: Vec<u64>,
    packets: u64,
    rules: usize,
}

impl Expectations {
    /// Adds moved packets of a rule with `cookie`.
    pub fn count(&mut self, cookie: u64, packets: u64) {
        for i in &mut self.items {
            if i.cookies.contains(&cookie) {
                i.packets += packets;
            }
        }
    }

    /// Counts the installed rules of each expectation (last round).
    pub fn count_rules(&mut self, cookies: impl Iterator<Item = u64>) {
        if self.items.is_empty() {
            return;
        }
        let mut n: HashMap<u64, usize> = HashMap::new();
        for c in cookies {
            *n.entry(c).or_default() += 1;
        }
        for i in &mut self.items {
            i.rules = i
                .cookies
                .iter()
                .map(|c| n.get(c).copied().unwrap_or(0))
                .sum();
        }
    }

    pub fn results(&self) -> Vec<Expectation> {
        self.items
            .iter()
            .map(|i| Expectation {
                what: i.what.clone(),
                lflows: i.flows.clone(),
                openflow_rules: i.rules,
                packets: i.packets,
                hit: i.packets > 0,
                note: note(i),
            })
            .collect()
    }
}

fn note(i: &Item) -> String {
    if i.flows.is_empty() {
        format!("no logical flow of the pod's switch matches `{}`", i.what)
    } else if i.rules == 0 {
        "the logical flows exist but no OpenFlow rule of theirs is installed on the polled node(s)"
            .into()
    } else if i.packets == 0 {
        "NOT HIT: no packet reached these rules; look at the drops above and at earlier stages"
            .into()
    } else {
        format!("hit by {} packet(s)", i.packets)
    }
}

/// The forms `--expect` takes.
const KINDS: &str =
    "dhcp, arp, a stage name (ls_in_dhcp_options, lr_in_ip_routing) or match:<text>";

/// Rejects what `--expect` cannot mean, before anything is read.
pub fn check(what: &[String]) -> Result<()> {
    for w in what {
        let ok = matches!(w.as_str(), "dhcp" | "arp")
            || w.strip_prefix("match:").is_some_and(|m| !m.is_empty())
            || ((w.starts_with("ls_") || w.starts_with("lr_"))
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !ok {
            return Err(Error::Usage(format!(
                "--expect {w}: expected one of {KINDS}"
            )));
        }
    }
    Ok(())
}

/// Which logical flows an expectation means.
fn selects(what: &str, f: &LogicalFlow, lsp: &str) -> bool {
    let stage = f.stage.as_deref().unwrap_or_default();
    let m = f.match_expr.trim();
    if m == "1" {
        return false;
    }
    let picked = match what {
        "dhcp" => stage.contains("dhcp"),
        "arp" => stage.contains("arp_rsp") && m.contains("arp"),
        w if w.starts_with("match:") => m.contains(&w["match:".len()..]),
        w => stage == w,
    };
    // flows naming a port must name the watched one
    let names_port = m.contains("inport == \"") || m.contains("outport == \"");
    picked && (!names_port || m.contains(&format!("\"{lsp}\"")))
}

pub async fn select(cluster: &Cluster, setup: &Setup, what: &[String]) -> Result<Expectations> {
    if what.is_empty() {
        return Ok(Expectations::default());
    }
    let ls = &setup.target.logical_switch;
    let argv = ["ovn-sbctl", "--uuid", "lflow-list", ls.as_str()];
    let text = cluster
        .exec_ok(&setup.sb_leader, container::OVN_CENTRAL, &argv)
        .await
        .map_err(Error::from)?;
    let flows = lflow_list::parse(&text);
    let items = what
        .iter()
        .map(|w| {
            let picked: Vec<&LogicalFlow> = flows
                .iter()
                .filter(|f| selects(w, f, &setup.target.logical_port))
                .collect();
            Item {
                what: w.clone(),
                flows: picked
                    .iter()
                    .map(|f| ExpectedFlow {
                        lflow: f.uuid.clone().unwrap_or_default(),
                        stage: f.stage.clone().unwrap_or_default(),
                        match_expr: f.match_expr.clone(),
                    })
                    .collect(),
                cookies: picked
                    .iter()
                    .filter_map(|f| f.cookie())
                    .map(u64::from)
                    .collect(),
                packets: 0,
                rules: 0,
            }
        })
        .collect();
    Ok(Expectations { items })
}
