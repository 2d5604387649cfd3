//! The same Kube-OVN-shaped topology captured on OVN 23.03, 24.03, 25.03 and
//! 26.03 (fixtures/versions/<version>/, made by fixtures/versions/capture.sh;
//! each .cmd holds the command of its .txt; 24.03.9 from binaries built from
//! OVN's source, see capture.sh), plus the stage lists of 23.03 … 26.03 read
//! from OVN's source (fixtures/versions/northd-stages/).

use std::collections::BTreeSet;

use ko_ovn::catalog;
use ko_ovn::cookie::CookieIndex;
use ko_ovn::layout::{Observation, OpenFlowLayout, OpenFlowTable};
use ko_ovn::ovn_trace;
use ko_ovn::ovsdb_rows::Pipeline;
use ko_ovn::{flows, lflow_list, ofproto, ovsdb_rows, versions};

const VERSIONS: [&str; 4] = ["23.03.1", "24.03.9", "25.03.0", "26.03.1"];

fn read(ver: &str, name: &str) -> String {
    ko_testkit::fixture!(&format!("versions/{ver}/{name}"))
}

fn controller_version(ver: &str) -> String {
    versions::parse_version(&read(ver, "version-ovn-controller.txt")).unwrap()
}

#[test]
fn every_stage_in_each_releases_lflow_list_is_explained() {
    for ver in VERSIONS {
        let listed = lflow_list::parse(&read(ver, "lflow-list.txt"));
        assert!(listed.len() > 300, "{ver}: {} flows", listed.len());
        let mut stages = BTreeSet::new();
        for f in &listed {
            let name = f.stage.as_deref().unwrap();
            let info = catalog::stage(name).unwrap_or_else(|| panic!("{ver}: {name} missing"));
            assert!(!info.summary.is_empty());
            assert_eq!(Some(info.pipeline), f.pipeline, "{ver}: {name}");
            stages.insert(name.to_string());
        }
        // the stages each release's source defines and this topology shows
        let defined = source_stages(&ver[..5]);
        assert!(stages.iter().all(|s| defined.iter().any(|(d, _)| d == s)));
        assert!(stages.len() * 10 >= defined.len() * 9, "{ver}: {stages:?}");
    }
}

/// `name table` pairs from fixtures/versions/northd-stages/<release>.txt.
fn source_stages(release: &str) -> Vec<(String, u32)> {
    read("northd-stages", &format!("{release}.txt"))
        .lines()
        .map(|l| {
            let (n, t) = l.split_once(' ').unwrap();
            (n.to_string(), t.parse().unwrap())
        })
        .collect()
}

#[test]
fn every_stage_each_release_defines_is_explained() {
    for release in ["23.03", "24.03", "25.03", "26.03"] {
        let stages = source_stages(release);
        assert!(stages.len() > 60, "{release}");
        for (name, _) in &stages {
            let info = catalog::stage(name).unwrap_or_else(|| panic!("{release}: {name}"));
            assert_eq!(catalog::DatapathKind::of_stage(name), Some(info.kind));
        }
    }
    // 24.03 added lr_in_network_id, 25.03 the ACL sampling stages
    assert!(
        source_stages("24.03")
            .iter()
            .any(|(n, _)| n == "lr_in_network_id")
    );
    assert!(
        !source_stages("23.03")
            .iter()
            .any(|(n, _)| n == "lr_in_network_id")
    );
    assert!(
        source_stages("25.03")
            .iter()
            .any(|(n, _)| n == "ls_in_acl_sample")
    );
}

#[test]
fn lflow_list_table_numbers_match_the_source() {
    for ver in VERSIONS {
        let defined = source_stages(&ver[..5]);
        for f in lflow_list::parse(&read(ver, "lflow-list.txt")) {
            let name = f.stage.as_deref().unwrap();
            assert!(
                defined.iter().any(|(n, t)| n == name && *t == f.table),
                "{ver}: {name} at table {}",
                f.table
            );
        }
    }
}

fn sb_index(ver: &str) -> CookieIndex {
    CookieIndex::new(
        ovsdb_rows::parse_logical_flows(&read(ver, "sb-logical-flow.txt"), None, None).unwrap(),
    )
}

fn observations(idx: &CookieIndex, rules: &[(u32, u64)]) -> Vec<Observation> {
    rules
        .iter()
        .filter_map(|&(table, cookie)| {
            let owners = idx.lookup(cookie);
            let [f] = owners.as_slice() else { return None };
            Some(Observation {
                openflow_table: table,
                pipeline: f.pipeline?,
                logical_table: f.table,
            })
        })
        .collect()
}

#[test]
fn every_dump_flows_table_with_a_logical_cookie_is_that_flows_stage() {
    for (ver, egress) in [
        ("23.03.1", 42),
        ("24.03.9", 42),
        ("25.03.0", 45),
        ("26.03.1", 48),
    ] {
        let idx = sb_index(ver);
        let dump = flows::parse(&read(ver, "dump-flows.txt"));
        assert_eq!(dump.skipped, 0, "{ver}");
        let rules: Vec<(u32, u64)> = dump.flows.iter().map(|f| (f.table, f.cookie)).collect();
        let cv = controller_version(ver);
        let calibrated = OpenFlowLayout::calibrate(Some(&cv), &observations(&idx, &rules));
        assert_eq!(calibrated.ingress_start, Some(8), "{ver}");
        assert_eq!(calibrated.egress_start, Some(egress), "{ver}");
        // the release's source says the same as the flows
        let release = OpenFlowLayout::for_release(Some(&cv));
        assert_eq!(release.egress_start, Some(egress), "{ver}");
        let (mut checked, mut tables) = (0, BTreeSet::new());
        for f in &dump.flows {
            let owners = idx.lookup(f.cookie);
            if owners.is_empty() {
                // ovn-controller's own flows: in a table its release names
                if f.table != 0 || f.cookie != 0 {
                    assert!(
                        matches!(release.classify(f.table), OpenFlowTable::Physical { .. })
                            || matches!(release.classify(f.table), OpenFlowTable::Logical { .. }),
                        "{ver}: table {} unknown: {f:?}",
                        f.table
                    );
                }
                continue;
            }
            let got = calibrated.classify(f.table);
            assert_eq!(got, release.classify(f.table), "{ver}: table {}", f.table);
            let OpenFlowTable::Logical { pipeline, table } = got else {
                panic!("{ver}: table {} holds logical flow {owners:?}", f.table)
            };
            let stage = owners
                .iter()
                .find(|l| l.pipeline == Some(pipeline) && l.table == table)
                .and_then(|l| l.stage.clone())
                .unwrap_or_else(|| panic!("{ver}: table {} vs {owners:?}", f.table));
            assert!(catalog::stage(&stage).is_some(), "{ver}: {stage}");
            checked += 1;
            tables.insert(f.table);
        }
        assert!(checked > 200, "{ver}: {checked}");
        assert!(tables.len() > 30, "{ver}: {tables:?}");
    }
}

#[test]
fn ovn_debug_agrees_with_the_calibrated_layout() {
    // ovn-debug (24.03.9, 25.03+) prints the OpenFlow table of a stage
    for ver in ["24.03.9", "25.03.0", "26.03.1"] {
        let listed = lflow_list::parse(&read(ver, "lflow-list.txt"));
        let idx = sb_index(ver);
        let dump = flows::parse(&read(ver, "dump-flows.txt"));
        let rules: Vec<(u32, u64)> = dump.flows.iter().map(|f| (f.table, f.cookie)).collect();
        let layout =
            OpenFlowLayout::calibrate(Some(&controller_version(ver)), &observations(&idx, &rules));
        for stage in [
            "ls_in_check_port_sec",
            "ls_in_acl_eval",
            "ls_out_acl_eval",
            "ls_out_check_port_sec",
            "lr_in_admission",
            "lr_out_delivery",
        ] {
            let of: u32 = read(ver, &format!("ovn-debug-{stage}.txt"))
                .trim()
                .parse()
                .unwrap();
            let f = listed
                .iter()
                .find(|f| f.stage.as_deref() == Some(stage))
                .unwrap();
            assert_eq!(
                layout.classify(of),
                OpenFlowTable::Logical {
                    pipeline: f.pipeline.unwrap(),
                    table: f.table
                },
                "{ver}: {stage}"
            );
        }
    }
}

#[test]
fn traces_parse_and_agree_on_every_release() {
    for ver in VERSIONS {
        let ok = ovn_trace::parse(&read(ver, "ovn-trace-pod-to-pod.txt")).outcome();
        assert_eq!(ok.outputs.len(), 1, "{ver}: {ok:?}");
        assert_eq!(ok.outputs[0].port, "pod-b.default", "{ver}");
        let denied = ovn_trace::parse(&read(ver, "ovn-trace-np-denied.txt")).outcome();
        assert!(denied.outputs.is_empty(), "{ver}: {denied:?}");
        let drop = &denied.drops[0];
        let stage = drop.stage.as_deref().unwrap();
        assert!(stage.starts_with("ls_out_acl"), "{ver}: {stage}");
        assert_eq!(drop.pipeline, Some(Pipeline::Egress));
        let svc = ovn_trace::parse(&read(ver, "ovn-trace-service.txt")).outcome();
        assert!(!svc.load_balancing.is_empty(), "{ver}");
        let join = ovn_trace::parse(&read(ver, "ovn-trace-to-join.txt"));
        assert!(join.stray.is_empty(), "{ver}: {:?}", join.stray);
    }
}

#[test]
fn ofproto_traces_name_each_logical_hop_by_its_flows_stage() {
    for ver in VERSIONS {
        let idx = sb_index(ver);
        let layout = OpenFlowLayout::for_release(Some(&controller_version(ver)));
        let mut checked = 0;
        for name in ["pod-to-pod", "np-denied", "service", "to-join"] {
            let t = ofproto::parse(&read(ver, &format!("ofproto-{name}.txt")));
            assert!(!t.passes.is_empty(), "{ver} {name}");
            for r in t.rules() {
                let Some(cookie) = r.rule.cookie else {
                    continue;
                };
                let owners = idx.lookup(cookie);
                if owners.is_empty() {
                    continue;
                }
                let OpenFlowTable::Logical { pipeline, table } = layout.classify(r.rule.table)
                else {
                    panic!("{ver} {name}: table {} not logical", r.rule.table)
                };
                assert!(
                    owners
                        .iter()
                        .any(|l| l.pipeline == Some(pipeline) && l.table == table),
                    "{ver} {name}: table {}",
                    r.rule.table
                );
                checked += 1;
            }
        }
        assert!(checked > 40, "{ver}: {checked}");
    }
}
