//! Rows of `ovn-nbctl/ovn-sbctl/ovs-vsctl --format=json list <table>` output.
//!
//! ovsdb's JSON encoding: a table is `{"headings":[...],"data":[[...],...]}`;
//! atoms are plain JSON, `["uuid","…"]`, a set is `["set",[…]]` (a set of one
//! element is printed as the bare element), a map is `["map",[[k,v],…]]`.
//! Several `--`-chained commands print one table per line.

use std::collections::BTreeMap;

use serde_json::Value;

/// One row, keyed by column heading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub BTreeMap<String, Value>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not read ovsdb JSON table output: {0}")]
pub struct BadTable(pub String);

/// Parses every table printed in `text` (one JSON object per line).
pub fn parse_tables(text: &str) -> Result<Vec<Vec<Row>>, BadTable> {
    let mut tables = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for value in stream {
        let value = value.map_err(|e| BadTable(e.to_string()))?;
        tables.push(table_rows(&value)?);
    }
    Ok(tables)
}

fn table_rows(value: &Value) -> Result<Vec<Row>, BadTable> {
    let headings: Vec<&str> = value
        .get("headings")
        .and_then(Value::as_array)
        .ok_or_else(|| BadTable("no \"headings\" array".into()))?
        .iter()
        .map(|h| h.as_str().unwrap_or_default())
        .collect();
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| BadTable("no \"data\" array".into()))?;
    Ok(data
        .iter()
        .filter_map(Value::as_array)
        .map(|cells| {
            Row(headings
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.clone()))
                .collect())
        })
        .collect())
}

impl Row {
    /// A string or UUID column (empty when absent or an empty set).
    pub fn str(&self, col: &str) -> String {
        self.0.get(col).map(atom_string).unwrap_or_default()
    }

    pub fn int(&self, col: &str) -> Option<i64> {
        self.0.get(col).and_then(Value::as_i64)
    }

    /// A set column as strings (a bare atom is a set of one).
    pub fn set(&self, col: &str) -> Vec<String> {
        match self.0.get(col) {
            Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("set") => a
                .get(1)
                .and_then(Value::as_array)
                .map(|items| items.iter().map(atom_string).collect())
                .unwrap_or_default(),
            Some(v) => {
                let s = atom_string(v);
                if s.is_empty() { Vec::new() } else { vec![s] }
            }
            None => Vec::new(),
        }
    }

    /// A map column.
    pub fn map(&self, col: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(Value::Array(a)) = self.0.get(col)
            && a.first().and_then(Value::as_str) == Some("map")
            && let Some(pairs) = a.get(1).and_then(Value::as_array)
        {
            for pair in pairs.iter().filter_map(Value::as_array) {
                if let (Some(k), Some(v)) = (pair.first(), pair.get(1)) {
                    out.insert(atom_string(k), atom_string(v));
                }
            }
        }
        out
    }
}

/// A scalar atom as text: strings as-is, `["uuid", u]` as `u`, numbers and
/// booleans printed; an empty set as "".
fn atom_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => match (a.first().and_then(Value::as_str), a.get(1)) {
            (Some("uuid" | "named-uuid"), Some(Value::String(u))) => u.clone(),
            (Some("set"), Some(Value::Array(items))) if items.len() == 1 => atom_string(&items[0]),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chained_tables_and_all_atom_kinds() {
        let text = r#"{"data":[["node-n1","0a:58:64:40:00:02 100.64.0.2",["map",[]],""],["pod-b.default",["set",["a","b"]],["map",[["pod","default/pod-b"]]],""]],"headings":["name","addresses","external_ids","type"]}
{"data":[[["uuid","afe4c6d1-37c7-4ba7-bbb4-92e8548a90ec"],2000,["set",[]]]],"headings":["_uuid","priority","meter"]}
"#;
        let tables = parse_tables(text).unwrap();
        assert_eq!(tables.len(), 2);
        let lsp = &tables[0];
        assert_eq!(
            lsp[0].set("addresses"),
            vec!["0a:58:64:40:00:02 100.64.0.2"]
        );
        assert_eq!(lsp[1].set("addresses"), vec!["a", "b"]);
        assert_eq!(lsp[1].map("external_ids")["pod"], "default/pod-b");
        assert!(lsp[0].map("external_ids").is_empty());
        let acl = &tables[1][0];
        assert_eq!(acl.str("_uuid"), "afe4c6d1-37c7-4ba7-bbb4-92e8548a90ec");
        assert_eq!(acl.int("priority"), Some(2000));
        assert!(acl.set("meter").is_empty());
        assert_eq!(acl.str("meter"), "");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_tables("ovn-nbctl: no row").is_err());
        assert!(parse_tables("{\"data\":1}").is_err());
        assert_eq!(parse_tables("").unwrap().len(), 0);
    }
}
