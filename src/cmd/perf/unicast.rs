//! Pod, host and service network measurements: qperf latency, iperf3 UDP
//! and TCP bandwidth, one row per message size.

use std::time::Duration;

use super::model::{Network, UnicastRow, UnicastTest};
use super::parse;
use crate::cli::MsgSize;
use crate::cluster::{Cluster, PodRef};

/// Knobs shared by every measurement.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub duration: u64,
    pub parallel: u32,
    pub sizes: Vec<MsgSize>,
}

impl Knobs {
    /// Exec timeout for a tool that runs `runs` tests of `duration` seconds.
    fn timeout(&self, runs: u64) -> Duration {
        Duration::from_secs(self.duration * runs + 30)
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

async fn qperf(
    cluster: &Cluster,
    client: &PodRef,
    target: &str,
    k: &Knobs,
    size: &MsgSize,
    row: &mut UnicastRow,
) {
    let dur = k.duration.to_string();
    let msg = format!("msg_size:{}", size.label);
    let argv = [
        "qperf", "-t", &dur, target, "-ub", "-oo", &msg, "-vu", "tcp_lat", "udp_lat",
    ];
    let container = client.container_or_default(&client.name).to_string();
    match cluster
        .exec_capture_timeout(client, &container, &argv, k.timeout(2))
        .await
    {
        Ok(out) => {
            let text = format!("{}\n{}", out.stdout_str(), out.stderr_str());
            let q = parse::parse_qperf(&text);
            row.tcp_latency_us = q.tcp_us;
            row.udp_latency_us = q.udp_us;
            if q.tcp_us.is_none() || q.udp_us.is_none() {
                let why = q
                    .problems
                    .first()
                    .cloned()
                    .unwrap_or_else(|| first_line(&text));
                row.errors
                    .push(format!("qperf (exit {}): {why}", out.exit_code));
            }
        }
        Err(e) => row.errors.push(format!("qperf: {e}")),
    }
}

async fn iperf3(
    cluster: &Cluster,
    client: &PodRef,
    target: &str,
    k: &Knobs,
    size: &MsgSize,
    udp: bool,
    row: &mut UnicastRow,
) {
    let dur = k.duration.to_string();
    let par = k.parallel.to_string();
    let mut argv = vec![
        "iperf3",
        "-c",
        target,
        "-t",
        &dur,
        "-P",
        &par,
        "-l",
        &size.label,
        "-J",
    ];
    if udp {
        // As upstream: send as fast as possible and report what arrived.
        argv.extend(["-u", "-b", "1000G"]);
    }
    let container = client.container_or_default(&client.name).to_string();
    let proto = if udp { "UDP" } else { "TCP" };
    // The server takes one test at a time and may still be finishing the last one.
    for attempt in 0..3 {
        let out = match cluster
            .exec_capture_timeout(client, &container, &argv, k.timeout(1))
            .await
        {
            Ok(o) => o,
            Err(e) => {
                row.errors.push(format!("iperf3 {proto}: {e}"));
                return;
            }
        };
        match parse::parse_iperf3(&out.stdout_str(), udp) {
            Ok(s) => {
                if udp {
                    row.udp_bandwidth_bps = Some(s.bits_per_second);
                    row.udp_lost_percent = s.lost_percent;
                } else {
                    row.tcp_bandwidth_bps = Some(s.bits_per_second);
                }
                return;
            }
            Err(e) if e.contains("busy") && attempt < 2 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                let stderr = out.stderr_str();
                let extra = if stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!(" ({})", first_line(&stderr))
                };
                row.errors.push(format!(
                    "iperf3 {proto} (exit {}): {e}{extra}",
                    out.exit_code
                ));
                return;
            }
        }
    }
}

/// Run every size from `client` against `target`.
pub async fn measure(
    cluster: &Cluster,
    network: Network,
    client: &PodRef,
    server: &PodRef,
    target: &str,
    k: &Knobs,
) -> UnicastTest {
    let mut rows = Vec::new();
    for size in &k.sizes {
        eprintln!(
            "perf: {} {} → {target}, message size {}",
            network.title().to_lowercase(),
            client.name,
            size.label
        );
        let mut row = UnicastRow {
            size: size.label.clone(),
            size_bytes: size.bytes,
            ..Default::default()
        };
        qperf(cluster, client, target, k, size, &mut row).await;
        iperf3(cluster, client, target, k, size, true, &mut row).await;
        iperf3(cluster, client, target, k, size, false, &mut row).await;
        rows.push(row);
    }
    UnicastTest {
        network,
        client: client.name.clone(),
        server: server.name.clone(),
        target: target.to_string(),
        rows,
    }
}
