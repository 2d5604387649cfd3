//! `ovn-trace` parser on real outputs captured on this machine's OVN
//! (fixtures/ovn-trace/*.txt, each with the exact command in the .cmd next
//! to it; re-create them with fixtures/capture.sh).

use ko_ovn::catalog;
use ko_ovn::ovn_trace::{self, ActionKind, DropReason, SectionKind, Step};
use ko_ovn::ovsdb_rows::Pipeline;

fn fixture(name: &str) -> String {
    ko_testkit::fixture!(&format!("ovn-trace/{name}.txt"))
}

fn detailed_fixtures() -> Vec<(String, String)> {
    let out: Vec<(String, String)> = ko_testkit::fixtures_in!("ovn-trace", "txt")
        .into_iter()
        .map(|(p, text)| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (name, text)
        })
        .filter(|(name, _)| !name.ends_with("summary") && !name.ends_with("minimal"))
        .collect();
    assert!(out.len() >= 15, "expected the captured detailed traces");
    out
}

fn titles(steps: &[Step]) -> Vec<&str> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Section(sec) => Some(sec.title.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn pod_to_pod_same_switch_is_delivered() {
    let t = ovn_trace::parse(&fixture("pod-to-pod-detailed"));
    let flow = t.flow.as_deref().unwrap();
    assert!(flow.starts_with("icmp,reg14=0x2,"), "{flow}");
    assert!(flow.contains("nw_dst=10.16.0.11"));
    assert_eq!(
        titles(&t.steps),
        vec![
            "ingress(dp=\"ovn-default\", inport=\"pod-a.default\")",
            "ct_lb_mark",
            "egress(dp=\"ovn-default\", inport=\"pod-a.default\", outport=\"pod-b.default\")",
            "ct_lb_mark",
        ]
    );
    let Step::Section(first) = &t.steps[0] else {
        panic!("first step is not a section")
    };
    assert_eq!(
        first.kind,
        SectionKind::Pipeline {
            pipeline: Pipeline::Ingress,
            datapath: "ovn-default".into(),
            inport: Some("pod-a.default".into()),
            outport: None
        }
    );
    let hops = t.hops();
    let h0 = hops[0].hop;
    assert_eq!(
        (h0.table, h0.stage.as_deref()),
        (0, Some("ls_in_check_port_sec"))
    );
    assert!(h0.source.as_deref().unwrap().starts_with("northd.c:"));
    assert_eq!(h0.uuid.as_deref().map(str::len), Some(8));
    assert_eq!(h0.actions.len(), 2, "reg0[15] = check_in_port_sec(); next;");
    // the last hop of the ingress pipeline decides the outport
    let l2 = hops
        .iter()
        .find(|h| h.hop.stage.as_deref() == Some("ls_in_l2_lkup"))
        .unwrap();
    assert_eq!(l2.datapath, Some("ovn-default"));
    assert_eq!(l2.pipeline, Some(Pipeline::Ingress));
    assert!(matches!(
        &l2.hop.actions[0],
        Step::Action(a) if a.kind == ActionKind::Assign { target: "outport".into(), value: "\"pod-b.default\"".into() }
    ));
    let o = t.outcome();
    assert_eq!(o.outputs.len(), 1);
    assert_eq!(o.outputs[0].port, "pod-b.default");
    assert_eq!(o.outputs[0].port_type.as_deref(), Some(""));
    assert!(!o.outputs[0].back_to_sender);
    assert!(o.drops.is_empty() && o.errors.is_empty() && o.notes.is_empty());
}

#[test]
fn network_policy_drop_names_the_acl_stage() {
    let t = ovn_trace::parse(&fixture("acl-drop"));
    let o = t.outcome();
    assert!(o.outputs.is_empty());
    assert_eq!(o.drops.len(), 1);
    let d = &o.drops[0];
    assert_eq!(d.reason, DropReason::AclVerdict);
    assert_eq!(d.stage.as_deref(), Some("ls_out_acl"));
    assert_eq!(
        (d.pipeline, d.table, d.priority),
        (Some(Pipeline::Egress), Some(4), Some(3000))
    );
    assert_eq!(d.datapath.as_deref(), Some("ovn-default"));
    assert!(
        d.match_expr
            .as_deref()
            .unwrap()
            .contains("@deny.from.b.default")
    );
    // the LOG section carries the ACL name
    let log = t
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Section(sec) => match &sec.kind {
                SectionKind::Log { name, verdict, .. } => Some((name.clone(), verdict.clone())),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(
        log.0.as_deref(),
        Some("np/deny-from-b.default/ingress/IPv4/drop")
    );
    assert_eq!(log.1.as_deref(), Some("drop"));
}

#[test]
fn port_security_drop_is_a_drop_action_in_ingress_table_1() {
    let o = ovn_trace::parse(&fixture("port-security-drop")).outcome();
    assert_eq!(o.drops.len(), 1);
    assert_eq!(o.drops[0].reason, DropReason::DropAction);
    assert_eq!(o.drops[0].stage.as_deref(), Some("ls_in_apply_port_sec"));
    assert_eq!(o.drops[0].table, Some(1));
    assert!(o.outputs.is_empty());
}

#[test]
fn unknown_destination_mac_drops_in_l2_unknown() {
    let o = ovn_trace::parse(&fixture("unknown-dst-mac")).outcome();
    assert_eq!(o.drops[0].stage.as_deref(), Some("ls_in_l2_unknown"));
    assert_eq!(
        o.drops[0].match_expr.as_deref(),
        Some("outport == \"none\"")
    );
}

#[test]
fn load_balancer_backend_choice_is_reported() {
    let t = ovn_trace::parse(&fixture("pod-to-lb-vip"));
    let o = t.outcome();
    assert_eq!(o.load_balancing.len(), 1);
    let lb = &o.load_balancing[0];
    assert_eq!(lb.stage.as_deref(), Some("ls_in_lb"));
    assert_eq!(lb.backends, vec!["10.16.0.11:8080", "10.16.0.12:8080"]);
    // the packet was delivered to pod-b, whose address is 10.16.0.11
    assert_eq!(lb.chosen.as_deref(), Some("10.16.0.11:8080"));
    assert_eq!(o.outputs.len(), 1);
    assert_eq!(o.outputs[0].port, "pod-b.default");
    // it crossed the router twice (hairpin through ovn-cluster): patch
    // outputs are intermediate, not final
    let datapaths: Vec<_> = t.hops().iter().filter_map(|h| h.datapath).collect();
    assert!(datapaths.contains(&"ovn-cluster"));

    // with --lb-dst the chosen backend is pod-c and the allow ACL logs it
    let o = ovn_trace::parse(&fixture("pod-to-lb-vip-lb-dst")).outcome();
    assert_eq!(o.outputs[0].port, "pod-c.default");
}

#[test]
fn routed_trace_crosses_three_datapaths() {
    let t = ovn_trace::parse(&fixture("pod-to-join-via-router"));
    let mut dps: Vec<&str> = Vec::new();
    for h in t.hops() {
        if let Some(dp) = h.datapath
            && dps.last() != Some(&dp)
        {
            dps.push(dp);
        }
    }
    assert_eq!(dps, vec!["ovn-default", "ovn-cluster", "join"]);
    let routing = t
        .hops()
        .into_iter()
        .find(|h| h.hop.stage.as_deref() == Some("lr_in_ip_routing"))
        .unwrap();
    assert_eq!(
        routing.hop.match_expr.as_deref(),
        Some("ip4.dst == 100.64.0.0/16")
    );
    let o = t.outcome();
    assert_eq!(o.outputs.len(), 1);
    assert_eq!(o.outputs[0].datapath.as_deref(), Some("join"));
    assert_eq!(o.outputs[0].port, "node-kod-n1");
}

#[test]
fn missing_mac_binding_becomes_an_arp_request_flooded_by_multicast() {
    let t = ovn_trace::parse(&fixture("router-no-mac-binding"));
    let o = t.outcome();
    let ports: Vec<_> = o.outputs.iter().map(|d| d.port.as_str()).collect();
    assert_eq!(ports, vec!["node-kod-n1", "node-kod-n2"]);
    assert!(
        o.outputs
            .iter()
            .all(|d| d.generated_by.as_deref() == Some("arp"))
    );
    let arp_req = t
        .hops()
        .into_iter()
        .find(|h| h.hop.stage.as_deref() == Some("lr_in_arp_request"))
        .unwrap();
    assert!(matches!(
        &arp_req.hop.actions[0],
        Step::Action(a) if a.kind == ActionKind::Generate { name: "arp".into() }
    ));
    let has_multicast = t.steps.iter().any(|s| {
        matches!(s, Step::Section(sec) if sec.kind == SectionKind::Multicast { datapath: "join".into(), group: "_MC_flood_l2".into() })
    });
    assert!(has_multicast);
}

#[test]
fn ttl_expiry_is_an_icmp_error_back_to_the_sender() {
    let o = ovn_trace::parse(&fixture("ttl-expired-via-router")).outcome();
    assert_eq!(o.outputs.len(), 1);
    assert_eq!(o.outputs[0].port, "pod-a.default");
    assert!(o.outputs[0].back_to_sender);
    assert_eq!(o.outputs[0].generated_by.as_deref(), Some("icmp4"));
}

#[test]
fn arp_for_a_known_ip_is_answered_by_the_responder() {
    let t = ovn_trace::parse(&fixture("arp-request"));
    assert!(
        t.hops()
            .iter()
            .any(|h| h.hop.stage.as_deref() == Some("ls_in_arp_rsp"))
    );
    let o = t.outcome();
    assert!(o.outputs[0].back_to_sender);
    let o = ovn_trace::parse(&fixture("arp-reply")).outcome();
    assert_eq!(o.outputs[0].port, "pod-b.default");
}

#[test]
fn notes_are_surfaced() {
    let o = ovn_trace::parse(&fixture("acl-allow")).outcome();
    assert_eq!(o.notes, vec!["dns_lookup action not implemented"]);
    assert_eq!(o.outputs[0].port, "pod-c.default");
    let o = ovn_trace::parse(&fixture("ovs-acl-drop")).outcome();
    assert_eq!(o.notes, vec!["no OpenFlow flows"]);
    assert_eq!(o.drops[0].stage.as_deref(), Some("ls_out_acl"));
}

#[test]
fn ovs_mode_openflow_lines_carry_the_hop_cookie() {
    let t = ovn_trace::parse(&fixture("ovs-pod-to-lb-vip"));
    let mut checked = 0;
    for h in t.hops() {
        let Some(uuid) = h.hop.uuid.as_deref() else {
            continue;
        };
        let want = u64::from_str_radix(uuid, 16).unwrap();
        for a in &h.hop.actions {
            if let Step::Action(a) = a
                && let ActionKind::OpenFlow { cookie, table, .. } = a.kind
            {
                assert_eq!(cookie, want, "{}", a.text);
                let of =
                    ko_ovn::layout::OpenFlowLayout::for_release(Some("23.03.1")).classify(table);
                let want_pipeline = h.pipeline.unwrap();
                assert_eq!(
                    of,
                    ko_ovn::layout::OpenFlowTable::Logical {
                        pipeline: want_pipeline,
                        table: h.hop.table
                    },
                    "{}",
                    a.text
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "only {checked} OpenFlow lines checked");
}

#[test]
fn localnet_output_on_an_underlay_switch() {
    let o = ovn_trace::parse(&fixture("underlay-to-localnet")).outcome();
    assert_eq!(o.outputs[0].port, "localnet.underlay");
    assert_eq!(o.outputs[0].port_type.as_deref(), Some("localnet"));
}

#[test]
fn aborted_run_has_empty_stdout_and_parses_to_nothing() {
    // ovn-trace aborts (exit 134) on an unknown inport; the caller must look
    // at the exit status: the parser just sees no trace
    let t = ovn_trace::parse(&fixture("unknown-inport"));
    assert!(t.steps.is_empty() && t.flow.is_none());
    assert_eq!(t.outcome(), ovn_trace::TraceOutcome::default());
}

#[test]
fn every_hop_stage_is_catalogued_in_its_pipeline() {
    let mut seen = 0;
    for (name, text) in detailed_fixtures() {
        let t = ovn_trace::parse(&text);
        for h in t.hops() {
            let stage = h
                .hop
                .stage
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: hop without stage"));
            let info =
                catalog::stage(stage).unwrap_or_else(|| panic!("{name}: {stage} not catalogued"));
            assert_eq!(Some(info.pipeline), h.pipeline, "{name}: {stage}");
            seen += 1;
        }
        assert!(t.stray.is_empty(), "{name}: stray lines {:?}", t.stray);
    }
    assert!(seen > 300);
}

#[test]
fn summary_and_minimal_forms() {
    let s = ovn_trace::parse_summary(&fixture("pod-to-pod-summary"));
    assert!(s.flow.as_deref().unwrap().starts_with("icmp,"));
    assert_eq!(s.outputs(), vec!["pod-b.default"]);
    assert!(matches!(
        s.nodes[0].section,
        Some(SectionKind::Pipeline {
            pipeline: Pipeline::Ingress,
            ..
        })
    ));
    let m = ovn_trace::parse_summary(&fixture("pod-to-pod-minimal"));
    assert_eq!(m.outputs(), vec!["pod-b.default"]);
    assert_eq!(m.nodes[0].text, "ct_lb_mark");
    let d = ovn_trace::parse_summary(&fixture("acl-drop-minimal"));
    assert!(d.outputs().is_empty());
    let lb = ovn_trace::parse_summary(&fixture("pod-to-lb-vip-summary"));
    assert_eq!(
        lb.outputs().last().map(String::as_str),
        Some("pod-c.default")
    );
}

#[test]
fn ipv6_and_node_traces() {
    let t = ovn_trace::parse(&fixture("ipv6-pod-to-pod-delivered"));
    assert!(t.flow.as_deref().unwrap().starts_with("icmp6,"));
    assert_eq!(t.outcome().outputs[0].port, "pod-b.default");
    // the same pod towards pod-c is dropped by the NetworkPolicy ACL, which matches `ip`
    let o = ovn_trace::parse(&fixture("ipv6-pod-to-pod")).outcome();
    assert_eq!(o.drops[0].reason, DropReason::AclVerdict);

    // a node (join LSP) reaching a pod goes join -> ovn-cluster -> ovn-default
    let t = ovn_trace::parse(&fixture("node-to-pod-via-join"));
    assert_eq!(t.first_inport(), Some("node-kod-n1"));
    let mut dps: Vec<&str> = Vec::new();
    for h in t.hops() {
        if let Some(dp) = h.datapath
            && dps.last() != Some(&dp)
        {
            dps.push(dp);
        }
    }
    assert_eq!(dps, vec!["join", "ovn-cluster", "ovn-default"]);
    assert_eq!(t.outcome().outputs[0].port, "pod-b.default");
}

#[test]
fn seed_003_trace_without_indentation_still_yields_hops_and_outcome() {
    let text = ko_testkit::fixture!("seeds/003-ovn-trace.txt");
    let t = ovn_trace::parse(&text);
    assert!(t.flow.as_deref().unwrap().starts_with("udp,reg14=0x1e"));
    let hops = t.hops();
    assert_eq!(hops.len(), 13);
    // older OVN stage names (ls_in_port_sec_l2, ls_in_after_lb...) are catalogued too
    for h in &hops {
        let stage = h.hop.stage.as_deref().unwrap();
        assert!(catalog::stage(stage).is_some(), "{stage}");
    }
    assert_eq!(hops[0].datapath, Some("ovn-default"));
    assert_eq!(hops.last().unwrap().pipeline, Some(Pipeline::Egress));
    let o = t.outcome();
    assert_eq!(o.outputs[0].port, "coredns-6d8c4cb4d-6c4rb.kube-system");
    assert_eq!(o.notes, vec!["chk_lb_hairpin_reply action not implemented"]);
}
