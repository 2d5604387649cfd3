//! Parsers for the outputs of qperf, iperf3 (`-J`) and iperf 2 (multicast
//! server reports). Fixtures: `tests/fixtures/perf/` (README there has the
//! exact commands). The `--sizes` argument is parsed in `cli.rs`.

use serde_json::Value;

/// Latencies from one `qperf ... -vu tcp_lat udp_lat` run, in microseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QperfLatency {
    pub tcp_us: Option<f64>,
    pub udp_us: Option<f64>,
    /// Lines qperf printed that are not results (e.g. "failed to connect").
    pub problems: Vec<String>,
}

/// qperf prints one block per test: `tcp_lat:` then indented `latency = 27.8 us`.
pub fn parse_qperf(text: &str) -> QperfLatency {
    let mut out = QperfLatency::default();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) && trimmed.ends_with(':') {
            current = Some(trimmed.trim_end_matches(':'));
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            out.problems.push(trimmed.to_string());
            continue;
        };
        if key.trim() != "latency" {
            continue;
        }
        let us = parse_latency_us(value.trim());
        match (current, us) {
            (Some("tcp_lat"), Some(v)) => out.tcp_us = Some(v),
            (Some("udp_lat"), Some(v)) => out.udp_us = Some(v),
            _ => out.problems.push(trimmed.to_string()),
        }
    }
    out
}

/// `27.8 us` → 27.8; ns/us/ms/sec.
fn parse_latency_us(v: &str) -> Option<f64> {
    let mut it = v.split_whitespace();
    let n: f64 = it.next()?.parse().ok()?;
    let factor = match it.next()? {
        "ns" => 1e-3,
        "us" => 1.0,
        "ms" => 1e3,
        "s" | "sec" => 1e6,
        _ => return None,
    };
    Some(n * factor)
}

/// Summary of one iperf3 run.
#[derive(Debug, Clone, PartialEq)]
pub struct Iperf3Summary {
    /// Received bits per second (what crossed the network).
    pub bits_per_second: f64,
    /// UDP only.
    pub lost_percent: Option<f64>,
    /// UDP only.
    pub jitter_ms: Option<f64>,
}

/// Parse `iperf3 -J` output. UDP: the receiver's sum (`end.sum_received`,
/// older iperf3 only has `end.sum`); TCP: `end.sum_received`.
pub fn parse_iperf3(json: &str, udp: bool) -> Result<Iperf3Summary, String> {
    let v: Value = serde_json::from_str(json.trim()).map_err(|e| {
        let head: String = json.chars().take(200).collect();
        format!("iperf3 did not print JSON ({e}): {head}")
    })?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(format!("iperf3: {err}"));
    }
    let end = v
        .get("end")
        .ok_or("iperf3 JSON has no \"end\" section (the test did not finish)")?;
    let sum = if udp {
        end.get("sum_received").or_else(|| end.get("sum"))
    } else {
        end.get("sum_received")
    }
    .ok_or("iperf3 JSON has no receiver summary (end.sum_received)")?;
    let bps = sum
        .get("bits_per_second")
        .and_then(Value::as_f64)
        .ok_or("iperf3 summary has no bits_per_second")?;
    Ok(Iperf3Summary {
        bits_per_second: bps,
        lost_percent: if udp {
            sum.get("lost_percent").and_then(Value::as_f64)
        } else {
            None
        },
        jitter_ms: if udp {
            sum.get("jitter_ms").and_then(Value::as_f64)
        } else {
            None
        },
    })
}

/// One report line of an iperf 2 UDP server:
/// `[  1] 0.0000-0.9923 sec  4.33 MBytes  36.6 Mbits/sec   0.001 ms 26269/97247 (27%)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Iperf2Report {
    pub id: u32,
    pub start: f64,
    pub end: f64,
    pub bits_per_second: f64,
    pub jitter_ms: f64,
    pub lost: u64,
    pub total: u64,
    pub lost_percent: f64,
}

/// Every UDP report line of an iperf 2 server's output, in order.
pub fn parse_iperf2_server(text: &str) -> Vec<Iperf2Report> {
    text.lines().filter_map(parse_iperf2_line).collect()
}

fn parse_iperf2_line(line: &str) -> Option<Iperf2Report> {
    let rest = line.trim().strip_prefix('[')?;
    let (id, rest) = rest.split_once(']')?;
    let id: u32 = id.trim().parse().ok()?;
    // "0.0000-0.9923 sec" (iperf 2.1) or "0.0- 1.0 sec" (iperf 2.0).
    let (interval, rest) = rest.split_once(" sec")?;
    let (start, end) = interval.split_once('-')?;
    let start: f64 = start.trim().parse().ok()?;
    let end: f64 = end.trim().parse().ok()?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    // transfer, unit, bandwidth, unit, jitter, "ms", lost/total, (pct%)
    let bw_at = words.iter().position(|w| w.ends_with("bits/sec"))?;
    let bw: f64 = words.get(bw_at.checked_sub(1)?)?.parse().ok()?;
    let bits_per_second = bw * unit_factor(words[bw_at])?;
    let jitter_ms: f64 = words.get(bw_at + 1)?.parse().ok()?;
    if *words.get(bw_at + 2)? != "ms" {
        return None;
    }
    // iperf 2.0 pads "0/   89": rejoin everything after "ms" before splitting.
    let tail: String = words.get(bw_at + 3..)?.concat();
    let (counts, pct) = tail.split_once('(')?;
    let (lost, total) = counts.split_once('/')?;
    let pct = pct.trim_end_matches(')').trim_end_matches('%');
    Some(Iperf2Report {
        id,
        start,
        end,
        bits_per_second,
        jitter_ms,
        lost: lost.parse().ok()?,
        total: total.parse().ok()?,
        lost_percent: pct.parse().ok()?,
    })
}

fn unit_factor(unit: &str) -> Option<f64> {
    Some(match unit {
        "bits/sec" => 1.0,
        "Kbits/sec" => 1e3,
        "Mbits/sec" => 1e6,
        "Gbits/sec" => 1e9,
        "Tbits/sec" => 1e12,
        _ => return None,
    })
}

/// What one iperf 2 client run delivered, from the server's reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Iperf2Summary {
    pub bits_per_second: f64,
    pub jitter_ms: f64,
    pub lost_percent: f64,
}

/// Summarize the reports of a server that saw one client run: its final
/// `0.0-N sec` line when printed; otherwise (the client's closing datagram
/// was lost, so no final line) the interval lines combined.
pub fn summarize_iperf2(reports: &[Iperf2Report]) -> Option<Iperf2Summary> {
    let last = reports.last()?;
    let latest_end = reports
        .iter()
        .filter(|r| r.start > 0.0)
        .map(|r| r.end)
        .fold(0.0, f64::max);
    let finals: Vec<&Iperf2Report> = reports
        .iter()
        .filter(|r| r.start == 0.0 && r.end >= latest_end * 0.9)
        .collect();
    if let Some(f) = finals.last() {
        return Some(Iperf2Summary {
            bits_per_second: f.bits_per_second,
            jitter_ms: f.jitter_ms,
            lost_percent: f.lost_percent,
        });
    }
    // Only intervals (0-1, 1-2, ...): weight rates by interval length.
    let span: f64 = reports.iter().map(|r| r.end - r.start).sum();
    let bits: f64 = reports
        .iter()
        .map(|r| r.bits_per_second * (r.end - r.start))
        .sum();
    let (lost, total) = reports
        .iter()
        .fold((0u64, 0u64), |(l, t), r| (l + r.lost, t + r.total));
    Some(Iperf2Summary {
        bits_per_second: if span > 0.0 { bits / span } else { 0.0 },
        jitter_ms: last.jitter_ms,
        lost_percent: if total > 0 {
            lost as f64 * 100.0 / total as f64
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_size, parse_sizes};

    fn fixture(name: &str) -> String {
        ko_testkit::fixture!(&format!("perf/{name}"))
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64").unwrap().bytes, 64);
        assert_eq!(parse_size("1k").unwrap().bytes, 1024);
        assert_eq!(parse_size("4K").unwrap().label, "4K");
        assert!(parse_size("0").is_err());
        assert!(parse_size("70k").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1").is_err());
        let all = parse_sizes("64,128,512,1k,4k").unwrap();
        assert_eq!(
            all.iter().map(|s| s.bytes).collect::<Vec<_>>(),
            [64, 128, 512, 1024, 4096]
        );
        assert!(parse_sizes(",").is_err());
    }

    #[test]
    fn qperf_latencies() {
        let q = parse_qperf(&fixture("qperf-lat-64.txt"));
        assert_eq!(q.tcp_us, Some(27.8));
        assert_eq!(q.udp_us, Some(15.5));
        assert!(q.problems.is_empty(), "{:?}", q.problems);
        let q = parse_qperf(&fixture("qperf-lat-4k.txt"));
        assert_eq!(q.tcp_us, Some(21.1));
        assert_eq!(q.udp_us, Some(20.7));
    }

    #[test]
    fn qperf_failure_is_a_problem_not_a_number() {
        let q = parse_qperf(&fixture("qperf-refused.txt"));
        assert_eq!(q.tcp_us, None);
        assert_eq!(q.udp_us, None);
        assert_eq!(q.problems, ["10.250.0.2: failed to connect"]);
    }

    #[test]
    fn latency_units() {
        assert_eq!(parse_latency_us("2.5 ms"), Some(2500.0));
        assert_eq!(parse_latency_us("1 sec"), Some(1e6));
        assert_eq!(parse_latency_us("500 ns"), Some(0.5));
        assert_eq!(parse_latency_us("5 parsecs"), None);
    }

    #[test]
    fn iperf3_udp_and_tcp() {
        let u = parse_iperf3(&fixture("iperf3-udp-64.json"), true).unwrap();
        assert!((u.bits_per_second - 40368851.76242395).abs() < 1e-3);
        assert_eq!(u.lost_percent, Some(0.0));
        assert!(u.jitter_ms.is_some_and(|j| j > 0.0));
        let t = parse_iperf3(&fixture("iperf3-tcp-64.json"), false).unwrap();
        assert!((t.bits_per_second - 60142093.826560244).abs() < 1e-3);
        assert_eq!(t.lost_percent, None);
    }

    #[test]
    fn iperf3_error_is_reported() {
        let e = parse_iperf3(&fixture("iperf3-refused.json"), false).unwrap_err();
        assert!(e.contains("Connection refused"), "{e}");
        assert!(parse_iperf3("iperf3: error - unable to connect", true).is_err());
    }

    #[test]
    fn iperf2_multicast_server_reports() {
        let r = parse_iperf2_server(&fixture("iperf2-mcast-server.txt"));
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].id, 1);
        assert!((r[0].bits_per_second - 36.6e6).abs() < 1.0);
        assert_eq!((r[0].lost, r[0].total), (26269, 97247));
        assert_eq!(r[0].lost_percent, 27.0);
        // Two client runs against one server: the last line is the second's total.
        let sum = summarize_iperf2(&r).unwrap();
        assert_eq!(sum.jitter_ms, 0.002);
        assert_eq!(sum.lost_percent, 0.0);
        // The client's own report has no jitter/loss columns: not a server report.
        assert!(parse_iperf2_server(&fixture("iperf2-mcast-client.txt")).is_empty());
        assert!(parse_iperf2_server(&fixture("iperf2-mcast-server-nothing.txt")).is_empty());
        assert!(summarize_iperf2(&[]).is_none());
    }

    #[test]
    fn iperf2_final_line_or_intervals() {
        let r = parse_iperf2_server(&fixture("iperf2-mcast-server-3s.txt"));
        assert_eq!(r.len(), 4);
        let sum = summarize_iperf2(&r).unwrap();
        assert!((sum.bits_per_second - 33.3e6).abs() < 1.0);
        assert_eq!(sum.lost_percent, 31.0);
        // Without the final line (its closing datagram lost): intervals combined.
        let sum = summarize_iperf2(&r[..3]).unwrap();
        assert!((sum.bits_per_second - (30.5e6 + 37.4e6 + 32.4e6) / 3.0).abs() < 1.0);
        let want = (19613.0 + 31734.0 + 35053.0) * 100.0 / (79163.0 + 104818.0 + 98428.0);
        assert!((sum.lost_percent - want).abs() < 1e-9);
    }
}
