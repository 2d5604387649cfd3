use std::collections::BTreeSet;

use super::*;
use crate::controller::model::{AddressSet, PortGroup, with_vendor};

const NB: &str = include_str!("fixtures/nb-tables-23.03.json");
/// The fixture holds the first six tables of a pass's read (the ones compared here).
const FIXTURE_TABLES: &[&str] = {
    let (six, _) = crate::controller::nb_read::TABLES.split_at(6);
    six
};

#[test]
fn a_real_nb_dump_is_read() {
    let cur = parse(&NbRead::from_text(NB, FIXTURE_TABLES).unwrap()).unwrap();
    assert!(!cur.tiers, "OVN 23.03 has no ACL tier column");
    let np = &cur.pgs["protect.db.default"];
    assert_eq!(np.external_ids["np"], "default/protect-db");
    assert_eq!(np.ports, BTreeSet::from(["db.default".to_string()]));
    assert_eq!(np.acls.len(), 2);
    assert!(
        np.acls
            .iter()
            .any(|(_, a)| a.priority == 2000 && a.action == "drop")
    );
    assert!(owned_pg("protect.db.default", &np.external_ids));
    // the node group is the controller's (its pods, its ACLs while policies exist)
    assert!(owned_pg(
        "node.kube.ovn.worker",
        &cur.pgs["node.kube.ovn.worker"].external_ids
    ));
    for other in ["ovn.default.kube.ovn.worker", "ovn.sg.kubeovn_deny_all"] {
        assert!(!owned_pg(other, &cur.pgs[other].external_ids), "{other}");
    }
    assert!(
        cur.lbs["cluster-tcp-loadbalancer"]
            .1
            .contains_key("10.96.100.10:80")
    );
    assert!(cur.lsps["db.default"].addresses[0].ends_with(" 10.16.0.13"));
    assert!(cur.switch_acls["ovn-default"].is_empty());
}

/// The node groups as they are: what `node_acl` wants of an unchanged cluster.
fn node_groups(cur: &Current, want: &mut Desired) {
    for (name, pg) in cur.pgs.iter().filter(|(n, _)| n.starts_with("node.")) {
        want.port_groups.insert(
            name.clone(),
            PortGroup {
                external_ids: pg.external_ids.clone(),
                ports: pg.ports.clone(),
                acls: pg.acls.iter().map(|(_, a)| a.clone()).collect(),
            },
        );
    }
}

#[test]
fn the_same_rows_make_an_empty_transaction_and_changes_only_touch_owned_rows() {
    let cur = parse(&NbRead::from_text(NB, FIXTURE_TABLES).unwrap()).unwrap();
    let mut want = Desired::default();
    node_groups(&cur, &mut want);
    let np = &cur.pgs["protect.db.default"];
    want.port_groups.insert(
        "protect.db.default".into(),
        PortGroup {
            external_ids: np.external_ids.clone(),
            ports: np.ports.clone(),
            acls: np.acls.iter().map(|(_, a)| a.clone()).collect(),
        },
    );
    for (name, set) in &cur.sets {
        want.address_sets.insert(
            name.clone(),
            AddressSet {
                external_ids: set.external_ids.clone(),
                addresses: set.addresses.clone(),
            },
        );
    }
    for (name, (_, vips)) in &cur.lbs {
        want.lb_vips.insert(name.clone(), vips.clone());
    }
    assert!(
        diff(&cur, &want).argv().is_empty(),
        "{:?}",
        diff(&cur, &want).argv()
    );

    // the policy gone: its port group and address sets go, nothing else
    let mut gone = Desired::default();
    gone.lb_vips = want.lb_vips.clone();
    node_groups(&cur, &mut gone);
    let argv = diff(&cur, &gone).argv();
    assert!(
        argv.windows(2)
            .any(|w| w == ["pg-del", "protect.db.default"]),
        "{argv:?}"
    );
    assert_eq!(
        argv.iter().filter(|a| *a == "destroy").count(),
        2,
        "{argv:?}"
    );
    assert!(!argv.iter().any(|a| a.contains("node.kube")), "{argv:?}");

    // a new ACL on a new group, and a VIP removed
    let mut more = Desired::default();
    let acl = Acl::new(
        "x.default",
        "to-lport",
        2000,
        "outport == @x.default && ip",
        "drop",
    );
    more.port_groups.insert(
        "x.default".into(),
        PortGroup {
            external_ids: with_vendor(&[("np", "default/x")]),
            ports: BTreeSet::from(["db.default".to_string(), "no-such.lsp".to_string()]),
            acls: BTreeSet::from([acl]),
        },
    );
    let argv = diff(&cur, &more).argv();
    assert!(
        argv.windows(3)
            .any(|w| w == ["pg-add", "x.default", "db.default"]),
        "{argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a == "no-such.lsp"),
        "only existing LSPs join: {argv:?}"
    );
    assert!(argv.iter().any(|a| a == "vips={}"), "{argv:?}");
}
