//! Read what the NB holds of the controller's rows and turn the difference to the
//! desired rows into one ovn-nbctl transaction. Only rows the controller owns are
//! touched: NetworkPolicy/SecurityGroup/(Baseline)AdminNetworkPolicy port groups and
//! address sets (tagged `np=` / `sg=` / `anp=` / `banp=`), subnet ACLs (`subnet=`), VIPs of the Kube-OVN load balancers, the
//! membership of `ovn.sg.kubeovn_deny_all` and the SecurityGroup settings of pod LSPs.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use ko_ovn::ovsdb_json::{self, Row};
use ko_ovn::ovsdb_rows::{PolicyKind, port_group_owner};

use super::model::{Acl, Desired, ext_args};
use super::nb_read::NbRead;
use super::sg::{DENY_ALL, port_group_name as sg_pg};
use super::world::Lsp;
use crate::nb::{Txn, q};

#[derive(Debug, Default)]
pub struct CurPg {
    pub external_ids: BTreeMap<String, String>,
    pub ports: BTreeSet<String>,
    pub acls: Vec<(String, Acl)>,
}

#[derive(Debug, Default)]
pub struct CurSet {
    pub uuid: String,
    pub external_ids: BTreeMap<String, String>,
    pub addresses: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Current {
    pub tiers: bool,
    pub pgs: BTreeMap<String, CurPg>,
    pub sets: BTreeMap<String, CurSet>,
    pub switch_acls: BTreeMap<String, Vec<(String, Acl)>>,
    pub lbs: BTreeMap<String, (String, BTreeMap<String, String>)>,
    pub lsps: BTreeMap<String, Lsp>,
}

fn s(r: &Row, c: &str) -> String {
    ovsdb_json::cell_str(r, c).unwrap_or_default()
}
fn set(r: &Row, c: &str) -> Vec<String> {
    r.get(c).map(ovsdb_json::set).unwrap_or_default()
}
fn map(r: &Row, c: &str) -> BTreeMap<String, String> {
    r.get(c).map(ovsdb_json::map).unwrap_or_default()
}

fn acl_of(r: &Row) -> Acl {
    Acl {
        direction: s(r, "direction"),
        priority: s(r, "priority").parse().unwrap_or(0),
        matches: s(r, "match"),
        action: s(r, "action"),
        name: set(r, "name").into_iter().next(),
        options: map(r, "options"),
        external_ids: map(r, "external_ids"),
        tier: s(r, "tier").parse().unwrap_or(0),
        log_severity: (r.get("log").and_then(|v| v.as_bool()) == Some(true))
            .then(|| set(r, "severity").into_iter().next().unwrap_or_default()),
    }
}

/// Parse the output of `read_args()`.
pub fn parse(nb: &NbRead) -> Result<Current> {
    let (pgs, acls, sets) = (
        nb.rows("Port_Group"),
        nb.rows("ACL"),
        nb.rows("Address_Set"),
    );
    let (lbs, switches, lsps) = (
        nb.rows("Load_Balancer"),
        nb.rows("Logical_Switch"),
        nb.rows("Logical_Switch_Port"),
    );
    let mut cur = Current {
        tiers: acls.iter().any(|r| r.contains_key("tier")),
        ..Current::default()
    };
    let acl_by_uuid: BTreeMap<String, Acl> =
        acls.iter().map(|r| (s(r, "_uuid"), acl_of(r))).collect();
    let acls_of = |r: &Row| -> Vec<(String, Acl)> {
        set(r, "acls")
            .into_iter()
            .filter_map(|u| acl_by_uuid.get(&u).map(|a| (u.clone(), a.clone())))
            .collect()
    };
    let mut lsp_name = BTreeMap::new();
    for r in lsps {
        let name = s(r, "name");
        lsp_name.insert(s(r, "_uuid"), name.clone());
        cur.lsps.insert(
            name,
            Lsp {
                uuid: s(r, "_uuid"),
                addresses: set(r, "addresses"),
                port_security: set(r, "port_security"),
                external_ids: map(r, "external_ids"),
            },
        );
    }
    for r in pgs {
        let ports = set(r, "ports")
            .iter()
            .filter_map(|u| lsp_name.get(u).cloned())
            .collect();
        cur.pgs.insert(
            s(r, "name"),
            CurPg {
                external_ids: map(r, "external_ids"),
                ports,
                acls: acls_of(r),
            },
        );
    }
    for r in sets {
        cur.sets.insert(
            s(r, "name"),
            CurSet {
                uuid: s(r, "_uuid"),
                external_ids: map(r, "external_ids"),
                addresses: set(r, "addresses").into_iter().collect(),
            },
        );
    }
    for r in lbs {
        cur.lbs
            .insert(s(r, "name"), (s(r, "_uuid"), map(r, "vips")));
    }
    for r in switches {
        let ls = s(r, "name");
        let owned: Vec<(String, Acl)> = acls_of(r)
            .into_iter()
            // spec.acls (`subnet=`) and the private setting: both name the switch as parent
            .filter(|(_, a)| a.external_ids.get("parent") == Some(&ls))
            .collect();
        cur.switch_acls.insert(ls, owned);
    }
    Ok(cur)
}

/// Port groups the controller owns: NetworkPolicy ones and SecurityGroup ones
/// but deny-all (which group is which is ko-ovn's rule, shared with the plugin).
fn owned_pg(name: &str, ext: &BTreeMap<String, String>) -> bool {
    match port_group_owner(name, ext) {
        Some((
            PolicyKind::NetworkPolicy
            | PolicyKind::AdminNetworkPolicy
            | PolicyKind::BaselineAdminNetworkPolicy,
            _,
        )) => true,
        Some((PolicyKind::SecurityGroup, sg)) => sg != DENY_ALL,
        // `node.<node>`, not a distributed gateway's `<subnet>.<node>`
        Some((PolicyKind::NodeAcl, _)) => !ext.contains_key("subnet"),
        _ => false,
    }
}

fn owned_set(ext: &BTreeMap<String, String>) -> bool {
    ["np", "sg", "anp", "banp"]
        .iter()
        .any(|k| ext.contains_key(*k))
}

fn owned_lb(name: &str) -> bool {
    (name.starts_with("cluster-") && name.ends_with("loadbalancer"))
        || (name.starts_with("vpc-") && name.ends_with("-load"))
}

fn ovsdb_set(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| q(i.as_ref())).collect();
    format!("[{}]", v.join(","))
}

fn ovsdb_map(m: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}={}", q(k), q(v)))
        .collect();
    format!("{{{}}}", v.join(","))
}

/// The commands that turn `cur` into `want` (empty when nothing differs).
pub fn diff(cur: &Current, want: &Desired) -> Txn {
    let mut t = Txn::default();
    let mut ids = 0usize;
    let mut add_acl = |t: &mut Txn, table: &str, parent: &str, a: &Acl| {
        ids += 1;
        let id = format!("@acl{ids}");
        let mut c = vec![format!("--id={id}")];
        c.extend(a.create_args(cur.tiers));
        t.add(c);
        t.add(vec![
            "add".into(),
            table.into(),
            parent.into(),
            "acls".into(),
            id,
        ]);
    };
    // address sets first: new ACLs may name them
    for (name, want_set) in &want.address_sets {
        match cur.sets.get(name) {
            None => {
                let mut c = vec![
                    "create".into(),
                    "address_set".into(),
                    format!("name={}", q(name)),
                ];
                c.extend(ext_args("external_ids", &want_set.external_ids));
                c.push(format!("addresses={}", ovsdb_set(&want_set.addresses)));
                t.add(c);
            }
            Some(CurSet {
                uuid,
                external_ids: ext,
                addresses: addrs,
            }) => {
                if addrs != &want_set.addresses {
                    t.add(vec![
                        "set".into(),
                        "address_set".into(),
                        uuid.clone(),
                        format!("addresses={}", ovsdb_set(&want_set.addresses)),
                    ]);
                }
                if ext != &want_set.external_ids {
                    t.add(vec![
                        "set".into(),
                        "address_set".into(),
                        uuid.clone(),
                        format!("external_ids={}", ovsdb_map(&want_set.external_ids)),
                    ]);
                }
            }
        }
    }
    for (name, want_pg) in &want.port_groups {
        let ports: Vec<&String> = want_pg
            .ports
            .iter()
            .filter(|p| cur.lsps.contains_key(*p))
            .collect();
        let Some(pg) = cur.pgs.get(name) else {
            let mut c = vec!["pg-add".to_string(), name.clone()];
            c.extend(ports.iter().map(|p| p.to_string()));
            t.add(c);
            let mut c = vec!["set".into(), "port_group".into(), name.clone()];
            c.extend(ext_args("external_ids", &want_pg.external_ids));
            t.add(c);
            for a in &want_pg.acls {
                add_acl(&mut t, "port_group", name, a);
            }
            continue;
        };
        set_ports(&mut t, name, &pg.ports, &ports);
        if pg.external_ids != want_pg.external_ids {
            t.add(vec![
                "set".into(),
                "port_group".into(),
                name.clone(),
                format!("external_ids={}", ovsdb_map(&want_pg.external_ids)),
            ]);
        }
        acl_diff(
            &mut t,
            "port_group",
            name,
            &pg.acls,
            &want_pg.acls,
            &mut add_acl,
        );
    }
    for (name, pg) in &cur.pgs {
        if owned_pg(name, &pg.external_ids) && !want.port_groups.contains_key(name) {
            t.add(vec!["pg-del".into(), name.clone()]);
        }
    }
    for (name, set) in &cur.sets {
        if owned_set(&set.external_ids) && !want.address_sets.contains_key(name) {
            t.add(vec![
                "destroy".into(),
                "address_set".into(),
                set.uuid.clone(),
            ]);
        }
    }
    let empty = BTreeSet::new();
    for (ls, have) in &cur.switch_acls {
        let w = want.switch_acls.get(ls).unwrap_or(&empty);
        acl_diff(&mut t, "logical_switch", ls, have, w, &mut add_acl);
    }
    lb_and_port_diff(&mut t, cur, want);
    t
}

fn set_ports(t: &mut Txn, pg: &str, have: &BTreeSet<String>, want: &[&String]) {
    let want_set: BTreeSet<&String> = want.iter().copied().collect();
    if have.iter().collect::<BTreeSet<_>>() == want_set {
        return;
    }
    if want.is_empty() {
        t.add(vec![
            "clear".into(),
            "port_group".into(),
            pg.into(),
            "ports".into(),
        ]);
    } else {
        let mut c = vec!["pg-set-ports".to_string(), pg.to_string()];
        c.extend(want.iter().map(|p| p.to_string()));
        t.add(c);
    }
}

fn acl_diff(
    t: &mut Txn,
    table: &str,
    parent: &str,
    have: &[(String, Acl)],
    want: &BTreeSet<Acl>,
    add_acl: &mut impl FnMut(&mut Txn, &str, &str, &Acl),
) {
    let mut kept = BTreeSet::new();
    for (uuid, a) in have {
        // duplicates (a restart half-way through) go too: one row per ACL
        if want.contains(a) && kept.insert(a.clone()) {
            continue;
        }
        t.add(vec![
            "remove".into(),
            table.into(),
            parent.into(),
            "acls".into(),
            uuid.clone(),
        ]);
    }
    for a in want.iter().filter(|a| !kept.contains(*a)) {
        add_acl(t, table, parent, a);
    }
}

/// Load balancer VIPs, deny-all membership and pod LSP settings.
fn lb_and_port_diff(t: &mut Txn, cur: &Current, want: &Desired) {
    let none = BTreeMap::new();
    for (name, (uuid, vips)) in cur.lbs.iter().filter(|(n, _)| owned_lb(n)) {
        let w = want.lb_vips.get(name).unwrap_or(&none);
        if vips != w {
            t.add(vec![
                "set".into(),
                "load_balancer".into(),
                uuid.clone(),
                format!("vips={}", ovsdb_map(w)),
            ]);
        }
    }
    let deny = sg_pg(DENY_ALL);
    if let Some(pg) = cur.pgs.get(&deny) {
        let ports: Vec<&String> = want
            .deny_all_ports
            .iter()
            .filter(|p| cur.lsps.contains_key(*p))
            .collect();
        set_ports(t, &deny, &pg.ports, &ports);
    }
    for (name, s) in &want.ports {
        let Some(lsp) = cur.lsps.get(name) else {
            continue;
        };
        if lsp.external_ids != s.external_ids {
            t.add(vec![
                "set".into(),
                "logical_switch_port".into(),
                lsp.uuid.clone(),
                format!("external_ids={}", ovsdb_map(&s.external_ids)),
            ]);
        }
        if lsp.port_security != s.port_security {
            t.add(vec![
                "set".into(),
                "logical_switch_port".into(),
                lsp.uuid.clone(),
                format!("port_security={}", ovsdb_set(&s.port_security)),
            ]);
        }
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests;
