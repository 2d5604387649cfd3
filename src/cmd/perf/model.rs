//! Results of `kubectl ko perf` as data, and their text rendering.

use std::io::Write;

use serde::Serialize;

use crate::render::{Render, Style};

#[derive(Debug, Clone, Serialize)]
pub struct PerfReport {
    pub namespace: String,
    pub image: String,
    pub duration_secs: u64,
    pub server_node: String,
    pub client_node: String,
    /// Pod, host and service network tests, in that order (those selected).
    pub unicast: Vec<UnicastTest>,
    pub multicast: Vec<MulticastTest>,
    /// Only with `--leader-recover --yes`.
    pub leader_recover: Vec<LeaderRecovery>,
    /// Objects that could not be removed afterwards (empty when all were).
    pub left_behind: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Pod,
    Host,
    Service,
}

impl Network {
    pub fn title(self) -> &'static str {
        match self {
            Network::Pod => "Pod network",
            Network::Host => "Host network",
            Network::Service => "Service network",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UnicastTest {
    pub network: Network,
    pub client: String,
    pub server: String,
    /// Address the client connected to (pod IP, node IP or service VIP).
    pub target: String,
    pub rows: Vec<UnicastRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UnicastRow {
    pub size: String,
    pub size_bytes: u32,
    pub tcp_latency_us: Option<f64>,
    pub tcp_bandwidth_bps: Option<f64>,
    pub udp_latency_us: Option<f64>,
    pub udp_lost_percent: Option<f64>,
    pub udp_bandwidth_bps: Option<f64>,
    /// Why a cell is empty (tool error, unparsable output).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum McastNetwork {
    Pod,
    Host,
}

#[derive(Debug, Clone, Serialize)]
pub struct MulticastTest {
    pub network: McastNetwork,
    pub group: String,
    pub client: String,
    pub server: String,
    pub rows: Vec<MulticastRow>,
    /// Set when the server received nothing: why, and what to check.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MulticastRow {
    pub size: String,
    pub size_bytes: u32,
    /// iperf 2's server-side jitter at its default 1 Mbit/s rate (upstream
    /// prints it as "UDP Latency").
    pub udp_jitter_ms: Option<f64>,
    pub udp_lost_percent: Option<f64>,
    pub udp_bandwidth_bps: Option<f64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaderRecovery {
    /// nb, sb or northd.
    pub component: String,
    pub deleted_pod: String,
    /// Seconds from the delete until Deployment ovn-central had all replicas available.
    pub deployment_available_secs: Option<f64>,
    /// Seconds from the delete until a Running+Ready pod carried the leader label again.
    pub leader_back_secs: Option<f64>,
    pub new_leader: Option<String>,
    pub error: Option<String>,
}

impl UnicastTest {
    pub fn has_errors(&self) -> bool {
        self.rows.iter().any(|r| !r.errors.is_empty())
    }
}

/// "27.8 us", "1.25 ms".
fn latency(us: Option<f64>) -> String {
    match us {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
        Some(v) => format!("{v:.1} us"),
    }
}

/// "940 Mbits/s" style, like iperf.
fn bandwidth(bps: Option<f64>) -> String {
    match bps {
        None => "-".into(),
        Some(v) if v >= 1e9 => format!("{:.2} Gbits/s", v / 1e9),
        Some(v) if v >= 1e6 => format!("{:.1} Mbits/s", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.1} Kbits/s", v / 1e3),
        Some(v) => format!("{v:.0} bits/s"),
    }
}

fn percent(p: Option<f64>) -> String {
    p.map(|v| format!("{v:.2} %")).unwrap_or_else(|| "-".into())
}

fn seconds(s: Option<f64>) -> String {
    s.map(|v| format!("{v:.2} s")).unwrap_or_else(|| "-".into())
}

fn table(out: &mut dyn Write, head: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::from("  ");
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Size left-aligned, numbers right-aligned.
            if i == 0 {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("  {c:>w$}"));
            }
        }
        s
    };
    writeln!(
        out,
        "{}",
        line(head.iter().map(|h| h.to_string()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r.clone()))?;
    }
    Ok(())
}

fn errors(out: &mut dyn Write, s: &Style, size: &str, errs: &[String]) -> std::io::Result<()> {
    for e in errs {
        writeln!(out, "  {} size {size}: {e}", s.bad("error"))?;
    }
    Ok(())
}

impl Render for PerfReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "{} server node {}, client node {}, {} s per measurement, image {}",
            s.bold("kubectl ko perf:"),
            self.server_node,
            self.client_node,
            self.duration_secs,
            self.image
        )?;
        for t in &self.unicast {
            writeln!(out)?;
            writeln!(
                out,
                "{} ({} → {} {})",
                s.bold(t.network.title()),
                t.client,
                t.server,
                t.target
            )?;
            let rows: Vec<Vec<String>> = t
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.size.clone(),
                        latency(r.tcp_latency_us),
                        bandwidth(r.tcp_bandwidth_bps),
                        latency(r.udp_latency_us),
                        percent(r.udp_lost_percent),
                        bandwidth(r.udp_bandwidth_bps),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "Size",
                    "TCP Latency",
                    "TCP Bandwidth",
                    "UDP Latency",
                    "UDP Lost Rate",
                    "UDP Bandwidth",
                ],
                &rows,
            )?;
            for r in &t.rows {
                errors(out, s, &r.size, &r.errors)?;
            }
        }
        for m in &self.multicast {
            writeln!(out)?;
            let title = match m.network {
                McastNetwork::Pod => "Pod multicast",
                McastNetwork::Host => "Host multicast",
            };
            writeln!(
                out,
                "{} ({} → {} group {})",
                s.bold(title),
                m.client,
                m.server,
                m.group
            )?;
            if let Some(note) = &m.note {
                writeln!(out, "  {} {note}", s.warn("no measurement:"))?;
                continue;
            }
            let rows: Vec<Vec<String>> = m
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.size.clone(),
                        r.udp_jitter_ms
                            .map(|j| format!("{j:.3} ms"))
                            .unwrap_or_else(|| "-".into()),
                        percent(r.udp_lost_percent),
                        bandwidth(r.udp_bandwidth_bps),
                    ]
                })
                .collect();
            table(
                out,
                &["Size", "UDP Jitter", "UDP Lost Rate", "UDP Bandwidth"],
                &rows,
            )?;
            for r in &m.rows {
                errors(out, s, &r.size, &r.errors)?;
            }
        }
        if !self.leader_recover.is_empty() {
            writeln!(out)?;
            writeln!(out, "{}", s.bold("OVN leader recovery"))?;
            let rows: Vec<Vec<String>> = self
                .leader_recover
                .iter()
                .map(|l| {
                    vec![
                        l.component.clone(),
                        l.deleted_pod.clone(),
                        seconds(l.deployment_available_secs),
                        seconds(l.leader_back_secs),
                        l.new_leader.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "Leader",
                    "Deleted pod",
                    "Deployment available",
                    "Leader back",
                    "New leader",
                ],
                &rows,
            )?;
            for l in &self.leader_recover {
                if let Some(e) = &l.error {
                    writeln!(out, "  {} {}: {e}", s.bad("error"), l.component)?;
                }
            }
        }
        if !self.left_behind.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{} these test objects could not be removed:",
                s.bad("warning:")
            )?;
            for o in &self.left_behind {
                writeln!(out, "  {o}")?;
            }
        }
        Ok(())
    }

    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_human() {
        assert_eq!(latency(Some(27.84)), "27.8 us");
        assert_eq!(latency(Some(1250.0)), "1.25 ms");
        assert_eq!(bandwidth(Some(40_368_851.0)), "40.4 Mbits/s");
        assert_eq!(bandwidth(Some(9.4e9)), "9.40 Gbits/s");
        assert_eq!(bandwidth(None), "-");
        assert_eq!(percent(Some(27.0)), "27.00 %");
    }
}
