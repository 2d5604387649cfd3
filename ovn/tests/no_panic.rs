//! Property tests: every parser in this crate returns (never panics) on
//! arbitrary text and on mutated real fixtures, and its result serialises.

use ko_ovn::catalog::{self, DatapathKind};
use ko_ovn::cookie::{CookieIndex, NbIndex, NbTable, uuid_prefix};
use ko_ovn::{flows, lflow_list, ofproto, ovn_trace, ovsdb_rows};
use proptest::prelude::*;

fn fixtures() -> &'static [String] {
    static ALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ALL.get_or_init(load_fixtures)
}

fn load_fixtures() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "ovn-trace",
        "ofproto",
        "dump-flows",
        "lflow-list",
        "seeds",
        "sb-json",
    ] {
        for (_, text) in ko_testkit::fixtures_in!(dir, "txt") {
            // keep mutated inputs small enough for many cases
            out.push(text.chars().take(20_000).collect());
        }
    }
    assert!(out.len() > 40);
    out
}

/// Runs every parser and helper on `s`.
fn exercise(s: &str) {
    let t = ovn_trace::parse(s);
    let _ = t.hops();
    let o = t.outcome();
    let _ = t.first_inport();
    serde_json::to_string(&t).unwrap();
    serde_json::to_string(&o).unwrap();
    let su = ovn_trace::parse_summary(s);
    let _ = su.outputs();
    serde_json::to_string(&su).unwrap();
    for line in s.lines().take(50) {
        let _ = ovn_trace::parse_hop(line);
        let _ = ovn_trace::classify_action(line);
        let _ = ovn_trace::section_kind(line);
        let _ = ofproto::parse_rule(line);
        let _ = ofproto::classify_action(line);
        let _ = ofproto::parse_datapath_actions(line);
        let _ = flows::parse_line(line);
        let _ = uuid_prefix(line);
        let _ = catalog::explain_register(DatapathKind::Switch, line);
        let _ = catalog::explain_register(DatapathKind::Router, line);
        let _ = catalog::explain_openflow_field(Some(DatapathKind::Switch), line);
        let _ = catalog::explain_action(line);
        let _ = catalog::stage(line);
    }
    let of = ofproto::parse(s);
    let _ = of.rules();
    let _ = of.final_actions();
    serde_json::to_string(&of).unwrap();
    let d = flows::parse(s);
    let _ = flows::diff(&d, &flows::parse(&s.replace("n_packets=1", "n_packets=0")));
    let l = lflow_list::parse(s);
    let _ = CookieIndex::new(l).lookup(0x1234);
    if let Ok(j) = ovsdb_rows::parse_logical_flows(s, Some(s), Some(s)) {
        let _ = CookieIndex::new(j);
    }
    let mut nb = NbIndex::default();
    let _ = nb.add_table(NbTable::Acl, s);
    let mut idx = CookieIndex::default();
    let _ = idx.add_port_bindings(s);
    let _ = idx.owner(1);
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    Reindent(usize, usize),
    Truncate(usize),
    Insert(usize, String),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), 0usize..40).prop_map(|(l, n)| Mutation::Reindent(l, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), "[ -~]{0,40}|\\PC{0,10}").prop_map(|(l, s)| Mutation::Insert(l, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in muts {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Reindent(i, k) => {
                let l = lines[i % n].trim_start().to_string();
                lines[i % n] = format!("{}{l}", " ".repeat(*k));
            }
            Mutation::Truncate(i) => {
                let l = &lines[i % n];
                let cut = l
                    .char_indices()
                    .nth(i % (l.chars().count() + 1))
                    .map_or(l.len(), |(b, _)| b);
                lines[i % n] = l[..cut].to_string();
            }
            Mutation::Insert(i, s) => lines.insert(i % n, s.clone()),
            Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
        }
    }
    lines.join("\n")
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N for a longer run
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        exercise(&s);
    }

    #[test]
    fn tool_shaped_noise_never_panics(
        lines in prop::collection::vec(
            "( {0,12})(\\d{1,3}\\. |-{1,5}|={3,80}|# |\\*\\*\\* |/\\* |cookie=0x[0-9a-f]{0,20}, |Datapath actions: |Flow: |Rule: table=|uuid=0x|table=\\d+ ?\\(|ingress\\(dp=\"|egress\\(|multicast\\(|LOG: ACL |recirc\\(0x|\\{|\\};)?[ -~]{0,60}",
            0..60)
    ) {
        exercise(&lines.join("\n"));
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..12)
    ) {
        let all = fixtures();
        let text = &all[pick.index(all.len())];
        exercise(&apply(text, &muts));
    }
}

#[test]
fn every_fixture_unmodified_is_accepted() {
    for f in fixtures() {
        exercise(f);
    }
}
