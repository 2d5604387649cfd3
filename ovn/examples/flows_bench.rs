//! Throughput of `kubectl ko flows`' dump-flows path on a synthetic dump of
//! N flows (default 100 000) built from the captured sandbox dump
//! (tests/fixtures/dump-flows/sandbox-node1-after.txt): every line repeated
//! with a different datapath key (`metadata=`) and cookie, so that, as on a
//! big node, most rules belong to other switches and a few hundred to the
//! watched pod. Run: `cargo run --release -p ko-ovn --example flows_bench [N]`.
//! Prints MB/s and flows/s; asserts nothing (bench/flows.md records results).

use std::time::Instant;

use ko_ovn::flows::{self, scan_line};
use ko_ovn::flowwatch::{Scope, Tracker};

fn synthetic(n: usize) -> String {
    let path = format!(
        "{}/tests/fixtures/dump-flows/sandbox-node1-after.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let one = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(1)
    });
    let lines: Vec<&str> = one.lines().filter(|l| l.contains(" actions=")).collect();
    let mut out = String::with_capacity(n * 260);
    out.push_str("NXST_FLOW reply (xid=0x4): flags=[more]\n");
    let mut copy = 0u64;
    let mut count = 0usize;
    while count < n {
        for l in &lines {
            if count >= n {
                break;
            }
            // copy 0 is the real dump; later copies move to datapath 100+copy
            if copy == 0 {
                out.push_str(l);
            } else {
                let l = l
                    .replace("metadata=0x2", &format!("metadata={:#x}", 100 + copy))
                    .replacen("cookie=0x", &format!("cookie=0x{:x}", copy % 15 + 1), 1);
                out.push_str(&l);
            }
            out.push('\n');
            count += 1;
        }
        copy += 1;
    }
    out
}

/// This thread's time on a CPU (ns), from /proc/thread-self/schedstat: on a
/// shared, loaded machine wall time also counts waiting for a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Clock(Instant, u64);

fn start() -> Clock {
    Clock(Instant::now(), cpu_ns())
}

fn report(what: &str, bytes: usize, flows: usize, c: Clock) {
    let wall = c.0.elapsed().as_secs_f64();
    let cpu = (cpu_ns().saturating_sub(c.1)) as f64 / 1e9;
    let mb = bytes as f64 / 1e6;
    println!(
        "{what:<40} {mb:>6.1} MB {flows:>7} flows: wall {wall:>6.3} s = {:>6.1} MB/s | on-CPU {cpu:>6.3} s = {:>6.1} MB/s, {:>5.2} M flows/s",
        mb / wall,
        mb / cpu,
        flows as f64 / 1e6 / cpu
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let text = synthetic(n);
    let flows_n = text.lines().filter(|l| l.contains(" actions=")).count();
    let scope = Scope {
        datapaths: vec![2],
        ports: vec![(2, 3)],
        ofports: vec![10],
    };
    for round in 0..3 {
        let t = start();
        let mut c = 0u64;
        for l in text.lines() {
            if let Some(f) = scan_line(l) {
                c = c.wrapping_add(f.n_packets.unwrap_or(0));
            }
        }
        std::hint::black_box(c);
        report(
            &format!("scan_line (no alloc) #{round}"),
            text.len(),
            flows_n,
            t,
        );
    }
    let mut tracker = Tracker::new(scope);
    for round in 0..3 {
        let t = start();
        let r = tracker.observe(&text);
        let kept = r.samples.len();
        let d = tracker.finish_round(r);
        report(
            &format!("Tracker round (scan+filter+diff) #{round}"),
            text.len(),
            flows_n,
            t,
        );
        if round == 2 {
            println!(
                "  kept {kept} rules of the watched pod, {} moved",
                d.moved.len()
            );
        }
    }
    let t = start();
    let full = flows::parse(&text);
    report(
        "flows::parse (owned Flow per line)",
        text.len(),
        full.flows.len(),
        t,
    );
}
