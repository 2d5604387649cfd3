//! Throughput of the parsers on the captured fixtures, scaled up.
//! Run: `cargo run --release -p ko-ovn --example parse_bench [MB]`
//! (default 100 MB of dump-flows). Prints MB/s; asserts nothing.

use std::time::Instant;

use ko_ovn::{flows, lflow_list, ofproto, ovn_trace};

fn fixture(rel: &str) -> String {
    ko_testkit::fixture!(rel)
}

fn report(what: &str, bytes: usize, secs: f64) {
    let mb = bytes as f64 / 1e6;
    println!(
        "{what:<34} {mb:>8.1} MB in {secs:>6.3} s = {:>7.1} MB/s",
        mb / secs
    );
}

fn main() {
    let target_mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);

    // dump-flows: the captured dump repeated to the target size
    let one = fixture("dump-flows/br-int-after.txt");
    let body: String = one.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let copies = (target_mb * 1_000_000 / body.len()).max(1);
    let big = body.repeat(copies);
    let t = Instant::now();
    let dump = flows::parse(&big);
    report("flows::parse", big.len(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let deltas = flows::diff(&dump, &dump);
    report(
        "flows::diff (same dump)",
        big.len(),
        t.elapsed().as_secs_f64(),
    );
    println!("  {} rules, {} deltas", dump.flows.len(), deltas.len());

    // ovn-trace / ofproto/trace / lflow-list: each fixture parsed many times
    for (what, rel, f) in [
        (
            "ovn_trace::parse + outcome",
            "ovn-trace/pod-to-lb-vip.txt",
            0,
        ),
        (
            "ofproto::parse",
            "ofproto/pod-to-pod-remote-node-geneve.txt",
            1,
        ),
        ("lflow_list::parse", "lflow-list/all.txt", 2),
    ] {
        let text = fixture(rel);
        let n = (20_000_000 / text.len()).max(1);
        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..n {
            sink += match f {
                0 => ovn_trace::parse(&text).outcome().outputs.len(),
                1 => ofproto::parse(&text).passes.len(),
                _ => lflow_list::parse(&text).len(),
            };
        }
        report(what, text.len() * n, t.elapsed().as_secs_f64());
        std::hint::black_box(sink);
    }
}
