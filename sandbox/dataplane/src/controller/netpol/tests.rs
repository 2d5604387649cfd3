use serde_json::json;

use super::*;

fn pod(name: &str, labels: Value, ip: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "labels": labels,
            "annotations": {"ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/ip_address": ip,
                "ovn.kubernetes.io/logical_switch": "ovn-default"}},
        "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
    })
}

fn world(dual: bool) -> World {
    let mut w = World::default();
    let (ip_db, ip_c) = if dual {
        ("10.16.0.13,fd00:10:16::d", "10.16.0.10,fd00:10:16::a")
    } else {
        ("10.16.0.13", "10.16.0.10")
    };
    w.pods = vec![
        pod("db", json!({"app": "db"}), ip_db),
        pod("client-2", json!({"access": "db"}), ip_c),
    ];
    w.namespaces = vec![json!({"metadata": {"name": "default", "labels": {}}})];
    let proto = if dual { "Dual" } else { "IPv4" };
    w.subnets.insert(
        "ovn-default".into(),
        json!({"metadata": {"name": "ovn-default"}, "spec": {"protocol": proto}}),
    );
    w
}

fn protect_db() -> Value {
    json!({"metadata": {"name": "protect-db", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "db"}}}]}]}})
}

#[test]
fn protect_db_is_shaped_like_kube_ovn_makes_it() {
    let w = world(false);
    let mut d = Desired::default();
    build(&protect_db(), &w, false, &mut d);
    let pg = &d.port_groups["protect.db.default"];
    assert_eq!(pg.external_ids["np"], "default/protect-db");
    assert_eq!(pg.external_ids["vendor"], "kube-ovn");
    assert_eq!(pg.ports.iter().collect::<Vec<_>>(), ["db.default"]);
    let acls: Vec<(u32, &str, &str, Option<&str>)> = pg
        .acls
        .iter()
        .map(|a| {
            (
                a.priority,
                a.action.as_str(),
                a.matches.as_str(),
                a.name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        acls,
        [
            (
                2000,
                "drop",
                "outport == @protect.db.default && ip",
                Some("default/protect-db")
            ),
            (
                2001,
                "allow-related",
                "outport == @protect.db.default && ip && ip4.src == $protect.db.default.ingress.allow.IPv4.0 && ip4.src != $protect.db.default.ingress.except.IPv4.0",
                Some("np/protect-db.default/ingress/IPv4/0")
            ),
        ]
    );
    assert!(
        pg.acls
            .iter()
            .all(|a| a.external_ids["parent"] == "protect.db.default")
    );
    let allow = &d.address_sets["protect.db.default.ingress.allow.IPv4.0"];
    assert_eq!(allow.addresses.iter().collect::<Vec<_>>(), ["10.16.0.10"]);
    assert_eq!(allow.external_ids["np"], "default/protect-db/ingress");
    assert!(
        d.address_sets["protect.db.default.ingress.except.IPv4.0"]
            .addresses
            .is_empty()
    );
}

#[test]
fn dual_stack_adds_the_ipv6_family_and_the_icmp6_gateway_acls() {
    let w = world(true);
    let mut d = Desired::default();
    build(&protect_db(), &w, true, &mut d);
    let pg = &d.port_groups["protect.db.default"];
    assert!(pg.acls.iter().all(|a| a.tier == 2));
    assert!(
        pg.acls
            .iter()
            .any(|a| a.matches == "icmp6" && a.action == "allow-stateless")
    );
    let v6 = &d.address_sets["protect.db.default.ingress.allow.IPv6.0"];
    assert_eq!(v6.addresses.iter().collect::<Vec<_>>(), ["fd00:10:16::a"]);
}

#[test]
fn egress_ip_blocks_ports_and_named_ports() {
    let w = world(false);
    let np = json!({"metadata": {"name": "1-eg", "namespace": "default"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.200/32", "10.0.0.0/8"]}}],
                        "ports": [{"protocol": "TCP", "port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 53, "endPort": 60}, {"port": "nope"}]}]}});
    let mut d = Desired::default();
    build(&np, &w, false, &mut d);
    let pg = &d.port_groups["np1.eg.default"];
    assert_eq!(pg.ports.len(), 2);
    let m: Vec<&str> = pg
        .acls
        .iter()
        .filter(|a| a.priority == 2001)
        .map(|a| a.matches.as_str())
        .collect();
    let base = "inport == @np1.eg.default && ip && (ip4.dst == 172.18.0.0/16 && ip4.dst != {172.18.0.200/32})";
    assert_eq!(
        m.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            format!("{base} && tcp.dst == 80").as_str(),
            format!("{base} && tcp.dst == 8080").as_str(),
            format!("{base} && 53 <= udp.dst <= 60").as_str(),
        ])
    );
    assert!(
        pg.acls
            .iter()
            .all(|a| a.options.get("apply-after-lb").map(String::as_str) == Some("true"))
    );
    assert!(
        pg.acls
            .iter()
            .filter(|a| a.priority == 2001)
            .all(|a| a.name.as_deref() == Some("np/np1-eg.default/egress/IPv4/0/ipBlock"))
    );
    // the selector address sets exist (empty) as Kube-OVN creates them
    assert!(
        d.address_sets["np1.eg.default.egress.allow.IPv4.0"]
            .addresses
            .is_empty()
    );
}

#[test]
fn a_policy_selecting_no_pods_has_a_port_group_and_no_acls() {
    let w = world(false);
    let np = json!({"metadata": {"name": "none", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "nothing"}}, "ingress": []}});
    let mut d = Desired::default();
    build(&np, &w, false, &mut d);
    assert!(d.port_groups["none.default"].acls.is_empty());
}

#[test]
fn cidr_containment() {
    assert!(cidr_contains("10.0.0.0/8", "10.1.0.0/16"));
    assert!(!cidr_contains("10.0.0.0/8", "11.1.0.0/16"));
    assert!(!cidr_contains("10.1.0.0/16", "10.0.0.0/8"));
    assert!(cidr_contains("0.0.0.0/0", "1.2.3.4"));
    assert!(cidr_contains("fd00::/8", "fd00:1::/64"));
    assert!(!cidr_contains("fd00::/8", "10.0.0.0/8"));
}
