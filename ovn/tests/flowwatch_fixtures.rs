//! The dump-flows scanner and the counter tracker of `kubectl ko flows` on
//! real captures (fixtures/dump-flows/sandbox-node1-*.txt, each command in
//! its .cmd: the sandbox's node 1 before and after 3 pings from client-1 to
//! db that NetworkPolicy default/protect-db drops; and an OpenFlow 1.5 dump),
//! plus a property test: no panic and no negative rate, whatever the
//! counters do between rounds (resets, vanishing rules, re-installs).

use ko_ovn::flows::{self, scan_line};
use ko_ovn::flowwatch::{Pin, Reset, Round, Scope, Tracker, rate};
use proptest::prelude::*;

fn read(rel: &str) -> String {
    ko_testkit::fixture!(rel)
}

/// client-1 in the capture: switch ovn-default key 2, port key 3, ofport 10.
fn client1() -> Scope {
    Scope {
        datapaths: vec![2],
        ports: vec![(2, 3)],
        ofports: vec![10],
    }
}

#[test]
fn scanner_reads_every_flow_line_like_the_full_parser() {
    for f in [
        "dump-flows/sandbox-node1-before.txt",
        "dump-flows/sandbox-node1-after.txt",
        "dump-flows/sandbox-node1-of15.txt",
        "dump-flows/br-int-after.txt",
    ] {
        let text = read(f);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" actions=")).collect();
        assert!(lines.len() > 100, "{f}");
        for l in &lines {
            let s = scan_line(l).unwrap_or_else(|| panic!("{f}: not scanned: {l}"));
            let full = flows::parse_line(l).unwrap();
            assert_eq!(
                (s.cookie, s.table, s.priority, s.n_packets, s.n_bytes),
                (
                    full.cookie,
                    full.table,
                    full.priority,
                    full.n_packets,
                    full.n_bytes
                )
            );
            assert_eq!(s.match_expr, full.match_expr);
            assert_eq!(s.actions, full.actions);
            assert!(s.duration_ms().is_some(), "{l}");
            assert!(!s.match_expr.starts_with("priority="), "{l}");
        }
    }
}

#[test]
fn tracker_sees_the_networkpolicy_drop_and_the_pods_own_port() {
    let mut t = Tracker::new(client1());
    let r = t.observe(&read("dump-flows/sandbox-node1-before.txt"));
    assert!(r.lines > 1000);
    // kept: the pod's port and its switch, not the other switches
    assert!(r.samples.len() > 100 && r.samples.len() < r.lines / 2);
    assert!(t.finish_round(r).moved.is_empty());
    let r = t.observe(&read("dump-flows/sandbox-node1-after.txt"));
    let d = t.finish_round(r);
    let drop = d
        .moved
        .iter()
        .find(|m| t.flow(m.id).is_some_and(|f| f.is_drop() && f.table == 46))
        .expect("the ACL drop moved");
    let f = t.flow(drop.id).unwrap();
    assert_eq!(drop.packets, 3);
    assert_eq!(drop.reset, None);
    assert_eq!(f.priority, 3000);
    assert_eq!(f.cookie, 0x9deaf609);
    // db's egress rule (reg15=0x7) is not the watched port's
    assert_eq!(f.pin, Pin::Datapath);
    let in_port = d
        .moved
        .iter()
        .find(|m| t.flow(m.id).is_some_and(|f| f.pin == Pin::InPort))
        .expect("table 0 classification of ofport 10 moved");
    assert!(in_port.packets >= 3);
    // nothing of the underlay switch (metadata 0x4) is kept
    assert!(
        d.moved
            .iter()
            .all(|m| { !t.flow(m.id).unwrap().match_expr.contains("metadata=0x4") })
    );
}

#[test]
fn a_recompute_between_dumps_is_a_reset_not_a_negative_rate() {
    let before = read("dump-flows/sandbox-node1-after.txt");
    // the same dump after ovn-controller re-installed everything: counters
    // and durations back near zero
    let reinstalled: String = before
        .lines()
        .map(|l| {
            let Some(s) = scan_line(l) else {
                return format!("{l}\n");
            };
            format!(
                " cookie={:#x}, duration=0.5s, table={}, n_packets=1, n_bytes=60, priority={},{} actions={}\n",
                s.cookie, s.table, s.priority, s.match_expr, s.actions
            )
        })
        .collect();
    let mut t = Tracker::new(client1());
    let r = t.observe(&before);
    t.finish_round(r);
    let r = t.observe(&reinstalled);
    let d = t.finish_round(r);
    assert!(!d.moved.is_empty());
    assert!(
        d.moved
            .iter()
            .all(|m| m.packets == 1 && m.reset == Some(Reset::Reinstalled))
    );
}

#[derive(Debug, Clone)]
enum Step {
    Add(u32),
    Reset(u32),
    Vanish,
    Same,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u32..10_000).prop_map(Step::Add),
        (0u32..100).prop_map(Step::Reset),
        Just(Step::Vanish),
        Just(Step::Same),
    ]
}

fn line(table: u32, packets: u64, duration_ms: u64) -> String {
    format!(
        " cookie=0x1, duration={}.{:03}s, table={table}, n_packets={packets}, n_bytes={}, idle_age=0, priority=1,metadata=0x2 actions=drop\n",
        duration_ms / 1000,
        duration_ms % 1000,
        packets * 60
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the counters do, deltas never exceed the current count, no
    /// rate is negative or NaN, and growth without a reset is exact.
    #[test]
    fn no_negative_rate_across_resets(steps in proptest::collection::vec((step(), step()), 1..40),
                                      secs in 0.0f64..5.0) {
        let mut t = Tracker::new(client1());
        let mut state = [(Some(0u64), 1000u64), (Some(0u64), 1000u64)];
        let r = t.observe(&(line(10, 0, 1000) + &line(11, 0, 1000)));
        t.finish_round(r);
        for (a, b) in steps {
            let mut text = String::new();
            let mut expect = Vec::new();
            for (i, s) in [a, b].into_iter().enumerate() {
                let (count, dur) = &mut state[i];
                *dur += 1000;
                let before = *count;
                match s {
                    Step::Add(n) => *count = Some(count.unwrap_or(0) + u64::from(n)),
                    Step::Reset(n) => { *count = Some(u64::from(n)); *dur = 100; }
                    Step::Vanish => *count = None,
                    Step::Same => {}
                }
                if let Some(c) = *count {
                    text.push_str(&line(10 + i as u32, c, *dur));
                    expect.push((i, before, c, matches!(s, Step::Add(_) | Step::Same)));
                }
            }
            let r: Round = t.observe(&text);
            let d = t.finish_round(r);
            for m in &d.moved {
                let f = t.flow(m.id).unwrap();
                let i = (f.table - 10) as usize;
                let cur = state[i].0.unwrap();
                prop_assert!(m.packets <= cur);
                let pps = rate(m.packets, secs);
                prop_assert!(pps >= 0.0 && pps.is_finite());
                if let Some((_, Some(prev), c, true)) = expect.iter().find(|e| e.0 == i) && m.reset.is_none() {
                    prop_assert_eq!(m.packets, c - prev);
                }
            }
        }
    }

    /// The scanner never panics on arbitrary text and never reads a
    /// negative or absurd table.
    #[test]
    fn scanner_total_on_noise(s in "\\PC{0,200}") {
        if let Some(l) = scan_line(&s) {
            let _ = l.duration_ms();
            let _ = client1().classify(&l);
        }
    }
}
