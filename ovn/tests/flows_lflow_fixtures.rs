//! dump-flows, lflow-list, SB/NB JSON and the cookie / stage-hint mapping on
//! real captures (fixtures/dump-flows, lflow-list, sb-json, nb-json; the
//! command of each in its .cmd) and on seed 002's dump-flows lines.

use ko_ovn::catalog;
use ko_ovn::cookie::{CookieIndex, CookieOwner, NbIndex, NbTable, lflow_prefix};
use ko_ovn::flows;
use ko_ovn::layout::{OpenFlowLayout, OpenFlowTable};
use ko_ovn::lflow_list;
use ko_ovn::ovn_trace;
use ko_ovn::ovsdb_rows::{self, LogicalFlow};

fn read(rel: &str) -> String {
    ko_testkit::fixture!(rel)
}

fn sb_flows() -> Vec<LogicalFlow> {
    ovsdb_rows::parse_logical_flows(
        &read("sb-json/Logical_Flow.txt"),
        Some(&read("sb-json/Datapath_Binding.txt")),
        Some(&read("sb-json/Logical_DP_Group.txt")),
    )
    .unwrap()
}

fn nb_index() -> NbIndex {
    let mut nb = NbIndex::default();
    for t in [
        NbTable::Acl,
        NbTable::LoadBalancer,
        NbTable::LogicalSwitchPort,
        NbTable::LogicalRouterPort,
        NbTable::LogicalRouterStaticRoute,
        NbTable::LogicalRouterPolicy,
        NbTable::Nat,
    ] {
        nb.add_table(t, &read(&format!("nb-json/{}.txt", t.table_name())))
            .unwrap();
    }
    nb
}

#[test]
fn dump_flows_parse_every_line() {
    let text = read("dump-flows/br-int-before.txt");
    let d = flows::parse(&text);
    let flow_lines = text.lines().filter(|l| l.contains(" actions=")).count();
    assert_eq!(d.flows.len(), flow_lines);
    assert_eq!(d.skipped, 0);
    assert!(
        d.flows
            .iter()
            .all(|f| f.n_packets.is_some() && f.duration_s.is_some())
    );
    let t0: Vec<_> = d.flows.iter().filter(|f| f.table == 0).collect();
    assert!(
        t0.iter()
            .any(|f| f.match_expr == "in_port=2" && f.priority == 100)
    );
    // table=8 filtered dump: only table 8 rules
    let d8 = flows::parse(&read("dump-flows/br-int-table-8.txt"));
    assert!(!d8.flows.is_empty() && d8.flows.iter().all(|f| f.table == 8));
}

#[test]
fn counter_diff_shows_the_rules_the_pings_hit() {
    let before = flows::parse(&read("dump-flows/br-int-before.txt"));
    let after = flows::parse(&read("dump-flows/br-int-after.txt"));
    let deltas = flows::diff(&before, &after);
    assert!(!deltas.is_empty());
    // pod-a (ofport 2) sent 3 pings to pod-b and 3 to pod-c (plus ARP)
    let a_in = deltas
        .iter()
        .find(|d| d.key.table == 0 && d.key.match_expr == "in_port=2")
        .unwrap();
    assert!(a_in.packets >= 6, "{a_in:?}");
    assert!(a_in.bytes >= 6 * 98);
    // sorted by table, then priority descending
    for w in deltas.windows(2) {
        assert!(
            (w[0].key.table, std::cmp::Reverse(w[0].key.priority))
                <= (w[1].key.table, std::cmp::Reverse(w[1].key.priority))
        );
    }
    // the moved rules map to logical stages through their cookies
    let idx = CookieIndex::new(sb_flows());
    let stages: Vec<String> = deltas
        .iter()
        .flat_map(|d| idx.lookup(d.cookie))
        .filter_map(|f| f.stage.clone())
        .collect();
    for want in [
        "ls_in_check_port_sec",
        "ls_in_l2_lkup",
        "ls_out_apply_port_sec",
    ] {
        assert!(
            stages.iter().any(|s| s == want),
            "{want} not among {stages:?}"
        );
    }
    // nothing moved between a dump and itself
    assert!(flows::diff(&after, &after).is_empty());
}

#[test]
fn every_logical_table_rule_maps_to_a_logical_flow_of_that_table() {
    let idx = CookieIndex::new(sb_flows());
    let d = flows::parse(&read("dump-flows/br-int-after.txt"));
    let mut checked = 0;
    for f in &d.flows {
        let OpenFlowTable::Logical { pipeline, table } =
            OpenFlowLayout::for_release(Some("23.03.1")).classify(f.table)
        else {
            continue;
        };
        if f.cookie == 0 {
            continue;
        }
        let owners = idx.lookup(f.cookie);
        if owners.is_empty() {
            // ovn-controller also installs per-port flows in logical tables
            // (e.g. port security) whose cookie is a Port_Binding UUID
            continue;
        }
        assert!(
            owners
                .iter()
                .any(|l| l.table == table && l.pipeline == Some(pipeline)),
            "{f:?} -> {owners:?}"
        );
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn cookie_prefix_is_zero_padded() {
    let d = flows::parse(&read("dump-flows/br-int-after.txt"));
    let short = d
        .flows
        .iter()
        .find(|f| f.cookie != 0 && f.cookie < 0x1000_0000)
        .expect("a cookie with a leading zero nibble");
    let p = lflow_prefix(short.cookie);
    assert_eq!(p.len(), 8);
    assert!(p.starts_with('0'));
    let idx = CookieIndex::new(sb_flows());
    let mut sb = CookieIndex::new(Vec::new());
    sb.add_port_bindings(&read("sb-json/Port_Binding.txt"))
        .unwrap();
    let known = !idx.lookup(short.cookie).is_empty()
        || !matches!(sb.owner(short.cookie), CookieOwner::None);
    assert!(known, "{p}");
    let full = idx
        .flows()
        .iter()
        .find(|f| f.cookie() == Some(short.cookie as u32));
    if let Some(f) = full {
        assert!(f.uuid.as_deref().unwrap().starts_with(&p));
    }
}

#[test]
fn lflow_list_text_matches_the_json_rows() {
    let text = read("lflow-list/all.txt");
    let listed = lflow_list::parse(&text);
    let lines = text
        .lines()
        .filter(|l| l.trim_start().starts_with("table="))
        .count();
    assert_eq!(listed.len(), lines);
    assert!(
        listed
            .iter()
            .all(|f| f.uuid.is_none() && f.datapaths.len() == 1 && f.pipeline.is_some())
    );

    let json = sb_flows();
    let with_uuid = lflow_list::parse(&read("lflow-list/uuid-ovn-default.txt"));
    assert!(!with_uuid.is_empty());
    let idx = CookieIndex::new(json.clone());
    for f in &with_uuid {
        assert_eq!(f.datapaths, vec!["ovn-default".to_string()]);
        let rows = idx.lookup_str(f.uuid.as_deref().unwrap());
        assert!(
            rows.iter().any(|r| r.table == f.table
                && r.priority == f.priority
                && r.match_expr == f.match_expr
                && r.actions == f.actions
                && r.datapaths.iter().any(|d| d == "ovn-default")),
            "{f:?}"
        );
    }
    // datapath groups resolve to names
    let names = ["ovn-default", "join", "underlay", "ovn-cluster"];
    assert!(json.iter().all(
        |f| !f.datapaths.is_empty() && f.datapaths.iter().all(|d| names.contains(&d.as_str()))
    ));
}

#[test]
fn every_stage_in_lflow_list_is_catalogued() {
    let listed = lflow_list::parse(&read("lflow-list/all.txt"));
    let mut stages = std::collections::BTreeSet::new();
    for f in &listed {
        let name = f.stage.as_deref().unwrap();
        let info = catalog::stage(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(Some(info.pipeline), f.pipeline, "{name}");
        assert_eq!(catalog::DatapathKind::of_stage(name), Some(info.kind));
        stages.insert(name);
    }
    // 27 switch ingress + 10 switch egress + 22 router ingress + 7 router egress
    assert_eq!(stages.len(), 66);
}

#[test]
fn acl_drop_hop_leads_to_the_networkpolicy_acl() {
    let t = ovn_trace::parse(&read("ovn-trace/acl-drop.txt"));
    let drop = t.outcome().drops.remove(0);
    let idx = CookieIndex::new(sb_flows());
    let flows = idx.lookup_str(drop.uuid.as_deref().unwrap());
    assert_eq!(flows.len(), 1);
    let f = flows[0];
    assert_eq!(f.stage.as_deref(), Some("ls_out_acl"));
    assert_eq!(f.priority, 3000);
    let nb = nb_index();
    let objs = nb.for_flow(f);
    assert_eq!(objs.len(), 1, "{objs:?}");
    assert_eq!(objs[0].table, NbTable::Acl);
    assert_eq!(
        objs[0].external_ids.get("np").map(String::as_str),
        Some("default/deny-from-b")
    );
    assert!(
        objs[0]
            .label
            .starts_with("np/deny-from-b.default/ingress/IPv4/drop:")
    );
}

#[test]
fn stage_hints_resolve_to_nb_rows() {
    let nb = nb_index();
    let flows = sb_flows();
    let mut resolved = 0;
    let mut by_table = std::collections::BTreeMap::new();
    for f in flows.iter().filter(|f| f.stage_hint.is_some()) {
        let objs = nb.for_flow(f);
        if let Some(o) = objs.first() {
            *by_table.entry(o.table).or_insert(0) += 1;
            resolved += 1;
            // the hinted table is one the stage is documented to point at,
            // or the fallback search found it elsewhere
            let expected = ko_ovn::cookie::nb_tables_for_stage(f.stage.as_deref().unwrap());
            assert!(
                expected.is_empty() || expected.contains(&o.table) || objs.len() == 1,
                "{f:?} -> {o:?}"
            );
        }
    }
    assert!(resolved > 100, "{resolved}");
    assert!(by_table.contains_key(&NbTable::Acl));
    assert!(by_table.contains_key(&NbTable::LoadBalancer));
    assert!(by_table.contains_key(&NbTable::LogicalSwitchPort));
    assert!(by_table.contains_key(&NbTable::LogicalRouterPort));
    assert!(by_table.contains_key(&NbTable::LogicalRouterPolicy));
}

#[test]
fn seed_002_dump_flow_lines() {
    let d = flows::parse(&read("seeds/002-dump-flows.txt"));
    assert_eq!(d.flows.len(), 53);
    assert_eq!(d.skipped, 0);
    let f = &d.flows[0];
    assert_eq!(f.cookie, 0x63bf_d884_00f0_0000);
    assert_eq!((f.table, f.priority), (70, 50));
    assert_eq!(f.match_expr, "icmp");
    assert_eq!(f.actions, "ct(table=71,zone=NXM_NX_REG12[0..15],nat)");
    assert_eq!(f.n_packets, Some(232_060_328));
    // a non-OVN cookie maps to no logical flow
    assert_eq!(lflow_prefix(f.cookie), "00f00000");
    assert!(CookieIndex::new(sb_flows()).lookup(f.cookie).is_empty());
}

#[test]
fn every_register_in_lflow_list_is_explained() {
    let listed = lflow_list::parse(&read("lflow-list/all.txt"));
    let mut tokens = 0;
    for f in &listed {
        let kind = catalog::DatapathKind::of_stage(f.stage.as_deref().unwrap()).unwrap();
        let text = format!("{} ; {}", f.match_expr, f.actions);
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "_[].".contains(c))) {
            let word = word.trim_end_matches('.');
            let is_reg = ["reg", "xreg", "xxreg"].iter().any(|p| {
                word.strip_prefix(p)
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            });
            if !is_reg {
                continue;
            }
            tokens += 1;
            assert!(
                catalog::explain_register(kind, word).is_some(),
                "{word} in {:?} {}",
                kind,
                f.stage.as_deref().unwrap()
            );
        }
        // and the annotation helper finds them
        if f.actions.contains("reg0[7] = 1") {
            let notes = catalog::registers_in(kind, &f.actions);
            assert!(
                notes
                    .iter()
                    .any(|n| n.register == "reg0[7]" && n.access == catalog::Access::Write)
            );
        }
    }
    assert!(tokens > 150, "{tokens}");
}

#[test]
fn metadata_of_logical_rules_is_the_datapath_of_their_logical_flow() {
    // tunnel keys of the datapaths, from Datapath_Binding
    let dp: serde_json::Value =
        serde_json::from_str(&read("sb-json/Datapath_Binding.txt")).unwrap();
    let heads: Vec<&str> = dp["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let key_col = heads.iter().position(|h| *h == "tunnel_key").unwrap();
    let ext_col = heads.iter().position(|h| *h == "external_ids").unwrap();
    let mut names = std::collections::HashMap::new();
    for row in dp["data"].as_array().unwrap() {
        let key = row[key_col].as_u64().unwrap();
        let name = row[ext_col][1]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv[0] == "name")
            .map(|kv| kv[1].as_str().unwrap().to_string())
            .unwrap();
        names.insert(key, name);
    }
    let idx = CookieIndex::new(sb_flows());
    let d = flows::parse(&read("dump-flows/br-int-after.txt"));
    let mut checked = 0;
    for f in &d.flows {
        let (Some(key), false) = (f.datapath_key(), f.cookie == 0) else {
            continue;
        };
        let Some(name) = names.get(&key) else {
            continue;
        };
        let owners = idx.lookup(f.cookie);
        if owners.is_empty() {
            continue;
        }
        assert!(
            owners.iter().any(|l| l.datapaths.contains(name)),
            "{f:?} on {name} -> {owners:?}"
        );
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
}
