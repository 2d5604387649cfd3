//! One read of every NB table a controller pass compares against, shared by its
//! steps (VPC routers, subnet switches, then the owned rows of `nbsync`); the pass
//! reads again only after a step wrote, so a pass with nothing to do costs one
//! `ovn-nbctl` call instead of one per step.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ko_ovn::ovsdb_json::{self, Row};

use crate::ctx::Ctx;

/// The tables, every column, in the order of the chained `list`.
pub const TABLES: &[&str] = &[
    "Port_Group",
    "ACL",
    "Address_Set",
    "Load_Balancer",
    "Logical_Switch",
    "Logical_Switch_Port",
    "Logical_Router",
    "Logical_Router_Static_Route",
    "Logical_Router_Policy",
    "Logical_Router_Port",
];

/// The rows of one read, by table.
#[derive(Debug, Default)]
pub struct NbRead {
    tables: BTreeMap<String, Vec<Row>>,
}

impl NbRead {
    pub fn fetch(ctx: &Ctx) -> Result<NbRead> {
        let text = crate::nb::nbctl_timeout(ctx, &list_args(TABLES), 20)
            .context("reading the NB's tables")?;
        NbRead::from_text(&text, TABLES)
    }

    /// The output of `ovn-nbctl --format=json list <t1> -- list <t2> ...` for
    /// `tables`, in that order.
    pub fn from_text(text: &str, tables: &[&str]) -> Result<NbRead> {
        let lists = ovsdb_json::tables(text).context("reading the NB's tables")?;
        if lists.len() != tables.len() {
            anyhow::bail!(
                "reading the NB's tables: ovn-nbctl printed {} tables, expected {}",
                lists.len(),
                tables.len()
            );
        }
        Ok(NbRead {
            tables: tables.iter().map(|t| t.to_string()).zip(lists).collect(),
        })
    }

    /// A table's rows (none when it was not read).
    pub fn rows(&self, table: &str) -> &[Row] {
        self.tables
            .get(table)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// One chained `ovn-nbctl --format=json list <table> -- ...`.
pub fn list_args(tables: &[&str]) -> Vec<String> {
    let mut a = vec!["--format=json".to_string()];
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            a.push("--".into());
        }
        a.extend(["list".to_string(), t.to_string()]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_in_read_order_and_a_short_answer_is_an_error() {
        assert_eq!(
            list_args(&["ACL", "NAT"]),
            ["--format=json", "list", "ACL", "--", "list", "NAT"]
        );
        let text = r#"{"data":[[["uuid","a1"],"drop"]],"headings":["_uuid","action"]}
{"data":[],"headings":["_uuid"]}"#;
        let nb = NbRead::from_text(text, &["ACL", "NAT"]).unwrap();
        assert_eq!(nb.rows("ACL").len(), 1);
        assert!(nb.rows("NAT").is_empty() && nb.rows("Port_Group").is_empty());
        assert!(NbRead::from_text(text, &["ACL"]).is_err());
    }
}
