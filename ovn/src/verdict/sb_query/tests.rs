//! The narrow SB read against replies captured from real ovsdb-servers
//! (`ovn/tests/fixtures/narrow-reads/capture.sh <version>` on a sandbox).

use super::*;
use crate::verdict::nb::NbSnapshot;

macro_rules! fixture {
    ($v:literal, $name:literal) => {
        include_str!(concat!(
            "../../../tests/fixtures/narrow-reads/",
            $v,
            "/",
            $name
        ))
    };
}

struct Capture {
    datapaths: &'static str,
    flows: &'static str,
    query_cmd: &'static str,
    query: &'static str,
}

macro_rules! capture {
    ($v:literal) => {
        Capture {
            datapaths: fixture!($v, "datapaths.txt"),
            flows: fixture!($v, "flows.txt"),
            query_cmd: fixture!($v, "query.cmd"),
            query: fixture!($v, "query.txt"),
        }
    };
}

fn captures() -> Vec<(&'static str, Capture)> {
    vec![
        ("23.03", capture!("23.03")),
        ("25.03", capture!("25.03")),
        ("26.03", capture!("26.03")),
    ]
}

/// flows.txt: "prefix pipeline table priority datapath" per line.
fn flow_refs(text: &str) -> Vec<FlowRef> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            FlowRef {
                prefix: f[0].to_string(),
                place: Some(FlowPlace {
                    pipeline: Pipeline::parse(f[1]).unwrap(),
                    table: f[2].parse().unwrap(),
                    priority: f[3].parse().unwrap(),
                    datapath: DatapathRef::Name(f[4].to_string()),
                }),
            }
        })
        .collect()
}

fn ports() -> Vec<String> {
    vec!["client-1.default".into(), "web-2.default".into()]
}

#[test]
fn the_query_is_the_captured_command_and_finds_every_flow_and_binding() {
    for (v, c) in captures() {
        let dps = parse_datapaths(c.datapaths).unwrap();
        assert!(
            dps.iter()
                .any(|d| d.name == "ovn-default" && d.tunnel_key.is_some()),
            "{v}: datapaths {dps:?}"
        );
        let flows = flow_refs(c.flows);
        let ports = ports();
        let q = SbQuery {
            flows: &flows,
            ports: &ports,
            datapaths: &dps,
            globals: true,
        };
        let argv = q.argv();
        assert_eq!(&argv[..3], ["ovsdb-client", "query", SB_SOCKET]);
        let (_, captured) = c.query_cmd.trim().split_once(" '").unwrap();
        assert_eq!(
            argv[3],
            captured.trim_end_matches('\''),
            "{v}: query differs from query.cmd"
        );

        let sb = q.parse(c.query).unwrap();
        for f in &flows {
            let place = f.place.as_ref().unwrap();
            let found = sb
                .lflow(&f.prefix)
                .unwrap_or_else(|| panic!("{v}: flow {} not found", f.prefix));
            assert_eq!(found.table, place.table, "{v}");
            assert_eq!(found.priority, place.priority, "{v}");
            assert_eq!(found.pipeline, Some(place.pipeline), "{v}");
            assert!(found.stage.is_some(), "{v}: external_ids read");
        }
        // only the wanted flows are kept, not every row of their places
        assert_eq!(sb.lflows.len(), flows.len(), "{v}");
        assert_eq!(sb.chassis.len(), 3, "{v}");
        assert!(sb.chassis.iter().all(|c| !c.encap_ips.is_empty()), "{v}");
        assert!(sb.nb_cfg.is_some(), "{v}");
        assert_eq!(sb.chassis_nb_cfg.len(), 3, "{v}");
        for p in &ports {
            let bound = sb.bindings.get(p).cloned().flatten();
            let bound = bound.unwrap_or_else(|| panic!("{v}: {p} not bound"));
            assert!(
                sb.chassis.iter().any(|c| c.name == bound),
                "{v}: {p} bound to {bound}, a chassis name"
            );
        }
    }
}

#[test]
fn a_flow_without_a_known_place_is_left_to_the_fallback() {
    let c = capture!("25.03");
    let dps = parse_datapaths(c.datapaths).unwrap();
    let flows = vec![
        FlowRef {
            prefix: "abcd1234".into(),
            place: None,
        },
        FlowRef {
            prefix: "abcd1235".into(),
            place: Some(FlowPlace {
                pipeline: Pipeline::Ingress,
                table: 0,
                priority: 50,
                datapath: DatapathRef::Name("no-such-switch".into()),
            }),
        },
    ];
    let q = SbQuery {
        flows: &flows,
        ports: &[],
        datapaths: &dps,
        globals: false,
    };
    // no select for either: nothing to place them by
    assert_eq!(q.argv()[3], "[\"OVN_Southbound\"]");
    let sb = q.parse("[]").unwrap();
    assert_eq!(missing_flows(Some(&sb), &flows).len(), 2);
}

#[test]
fn an_operation_error_fails_the_read() {
    let err =
        transact_results(r#"[{"rows":[]},{"error":"unknown column","details":"no column x"}]"#)
            .unwrap_err();
    assert!(err.to_string().contains("unknown column"), "{err}");
}

#[test]
fn merged_bindings_name_their_chassis() {
    let c = capture!("25.03");
    let dps = parse_datapaths(c.datapaths).unwrap();
    let flows = flow_refs(c.flows);
    let ports = ports();
    let full = SbQuery {
        flows: &flows,
        ports: &ports,
        datapaths: &dps,
        globals: true,
    }
    .parse(c.query)
    .unwrap();
    // a later read without chassis keeps chassis UUIDs; merging names them
    let mut base = full.clone();
    base.bindings.clear();
    let mut later = SbSnapshot::default();
    let ch = &full.chassis[0];
    later
        .bindings
        .insert("web-2.default".into(), Some(ch.uuid.clone()));
    merge(&mut base, later);
    assert_eq!(
        base.bindings.get("web-2.default"),
        Some(&Some(ch.name.clone()))
    );
}

#[test]
fn the_narrow_nb_read_is_the_captured_command_and_holds_the_trace_ports() {
    for (v, nb_cmd, nb_reply) in [
        (
            "23.03",
            fixture!("23.03", "nb-query.cmd"),
            fixture!("23.03", "nb-query.txt"),
        ),
        (
            "25.03",
            fixture!("25.03", "nb-query.cmd"),
            fixture!("25.03", "nb-query.txt"),
        ),
        (
            "26.03",
            fixture!("26.03", "nb-query.cmd"),
            fixture!("26.03", "nb-query.txt"),
        ),
    ] {
        let names = ports();
        let argv = NbSnapshot::narrow_argv(&names);
        let (_, captured) = nb_cmd.trim().split_once(" '").unwrap();
        assert_eq!(
            argv[3],
            captured.trim_end_matches('\''),
            "{v}: query differs from nb-query.cmd"
        );
        let (nb, global) = NbSnapshot::parse_narrow(nb_reply, &names).unwrap();
        assert!(nb.lsps_partial, "{v}");
        assert!(global.is_some_and(|g| g.nb_cfg >= 0), "{v}");
        for p in &names {
            let lsp = nb.lsp(p).unwrap_or_else(|| panic!("{v}: {p} not read"));
            assert!(lsp.mac_and_ips().is_some(), "{v}: {p} has its address");
        }
        // every port of another kind (router, localnet) and no other pod's
        assert!(nb.lsps.iter().any(|l| l.port_type == "router"), "{v}");
        assert!(
            nb.lsps
                .iter()
                .all(|l| !l.port_type.is_empty() || names.contains(&l.name)),
            "{v}: {:?}",
            nb.lsps.iter().map(|l| &l.name).collect::<Vec<_>>()
        );
        // the other tables are whole: the gateway's router port, the Services' VIPs
        assert!(nb.lrp_mac("ovn-cluster-ovn-default").is_some(), "{v}");
        assert!(!nb.load_balancers.is_empty(), "{v}");
        assert!(!nb.routers.is_empty(), "{v}");
    }
}
