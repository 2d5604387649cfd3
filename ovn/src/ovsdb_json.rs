//! Reading `ovn-nbctl/ovn-sbctl --format=json list <Table>` output: a
//! `{"headings": [...], "data": [[cell, ...], ...]}` object whose cells use
//! the OVSDB JSON encoding (`["uuid", "..."]`, `["set", [...]]`,
//! `["map", [[k, v], ...]]`, or a bare atom; a one-element set is printed as
//! the bare element). Several `--`-chained list commands print one table per
//! line: [`tables`] reads them all.

use std::collections::BTreeMap;

use serde_json::Value;

/// One row: column name -> cell.
pub type Row = BTreeMap<String, Value>;

/// Why a table dump could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("not JSON: {0}; pass the output of `--format=json list <Table>`")]
    Json(#[from] serde_json::Error),
    #[error(
        "JSON has no \"headings\"/\"data\" arrays; pass the output of `--format=json list <Table>`"
    )]
    Shape,
    #[error("{0}")]
    Tables(String),
}

pub fn rows(json: &str) -> Result<Vec<Row>, TableError> {
    Ok(each_row(json)?.collect())
}

/// The rows of one table, built one at a time from the parsed document: a
/// caller that turns each into something smaller (see `ovsdb_rows::parse_rows`)
/// never holds every row as a map beside the document (a 30,000-port table
/// would be held twice).
pub fn each_row(json: &str) -> Result<impl Iterator<Item = Row>, TableError> {
    let v: Value = serde_json::from_str(json)?;
    table_rows(v)
}

/// Every table printed in `text` (one JSON object per `--`-chained command).
pub fn tables(text: &str) -> Result<Vec<Vec<Row>>, TableError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| Ok(table_rows(v?)?.collect()))
        .collect()
}

/// The document's cells are moved into the rows, not copied.
fn table_rows(v: Value) -> Result<impl Iterator<Item = Row>, TableError> {
    let Value::Object(mut doc) = v else {
        return Err(TableError::Shape);
    };
    let Some(Value::Array(headings)) = doc.remove("headings") else {
        return Err(TableError::Shape);
    };
    let headings: Vec<String> = headings
        .iter()
        .map(|h| h.as_str().unwrap_or_default().to_string())
        .collect();
    let Some(Value::Array(data)) = doc.remove("data") else {
        return Err(TableError::Shape);
    };
    Ok(data.into_iter().filter_map(move |row| match row {
        Value::Array(cells) => Some(headings.iter().cloned().zip(cells).collect()),
        _ => None,
    }))
}

/// `ovsdb-client query <socket> [<db>, ops...]` (a transaction the server
/// refuses if it would write anything): ovsdb-server runs the operations
/// itself, so a `select` with `where` conditions returns only the matching
/// rows (`ovn-nbctl`/`ovn-sbctl list` load the whole table first).
pub fn query_argv(db: &str, socket: &str, ops: Vec<Value>) -> Vec<String> {
    let mut txn = vec![Value::String(db.to_string())];
    txn.extend(ops);
    vec![
        "ovsdb-client".into(),
        "query".into(),
        socket.into(),
        Value::Array(txn).to_string(),
    ]
}

/// A `select` operation (RFC 7047 5.2.2).
pub fn select(table: &str, conditions: Vec<Value>, columns: &[&str]) -> Value {
    serde_json::json!({"op": "select", "table": table, "where": conditions, "columns": columns})
}

/// The rows of each operation of an `ovsdb-client query` (or `transact`) reply, in order;
/// an operation's error fails the whole read.
pub fn transact_results(text: &str) -> Result<Vec<Vec<Row>>, TableError> {
    let Value::Array(results) = serde_json::from_str(text.trim())? else {
        return Err(TableError::Shape);
    };
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let Value::Object(mut r) = r else {
            return Err(TableError::Shape);
        };
        if let Some(err) = r.get("error") {
            let details = r.get("details").and_then(Value::as_str).unwrap_or("");
            return Err(TableError::Tables(format!(
                "ovsdb-server refused a select: {} {details}",
                err.as_str().unwrap_or("error")
            )));
        }
        let rows = match r.remove("rows") {
            // the cells are moved into the rows, not copied
            Some(Value::Array(rows)) => rows
                .into_iter()
                .filter_map(|row| match row {
                    Value::Object(o) => Some(o.into_iter().collect()),
                    _ => None,
                })
                .collect(),
            // a reply without rows (a transaction's trailing "comment") has none
            _ => Vec::new(),
        };
        out.push(rows);
    }
    Ok(out)
}

/// An atom as a string (`["uuid", x]` -> x, strings, numbers, booleans).
pub fn atom(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) if a.len() == 2 && matches!(a[0].as_str(), Some("uuid" | "named-uuid")) => {
            a[1].as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// The elements of a set cell (a bare atom counts as a one-element set).
pub fn set(v: &Value) -> Vec<String> {
    if let Some(a) = v.as_array()
        && a.len() == 2
        && a[0].as_str() == Some("set")
    {
        return a[1]
            .as_array()
            .map(|items| items.iter().filter_map(atom).collect())
            .unwrap_or_default();
    }
    atom(v).into_iter().collect()
}

/// A map cell as ordered pairs.
pub fn map(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(a) = v.as_array()
        && a.len() == 2
        && a[0].as_str() == Some("map")
        && let Some(pairs) = a[1].as_array()
    {
        for p in pairs {
            if let Some(kv) = p.as_array()
                && kv.len() == 2
                && let (Some(k), Some(val)) = (atom(&kv[0]), atom(&kv[1]))
            {
                out.insert(k, val);
            }
        }
    }
    out
}

pub fn cell_str(row: &Row, col: &str) -> Option<String> {
    row.get(col).and_then(atom)
}

/// Column accessors that treat an absent column or an empty set as empty.
pub trait Cells {
    /// A string/UUID/number column as text ("" when absent or an empty set).
    fn str(&self, col: &str) -> String;
    fn int(&self, col: &str) -> Option<i64>;
    /// A set column (a bare atom is a set of one; a bare "" is empty).
    fn set(&self, col: &str) -> Vec<String>;
    fn map(&self, col: &str) -> BTreeMap<String, String>;
}

impl Cells for Row {
    fn str(&self, col: &str) -> String {
        self.get(col).and_then(atom).unwrap_or_default()
    }

    fn int(&self, col: &str) -> Option<i64> {
        self.get(col).and_then(Value::as_i64)
    }

    fn set(&self, col: &str) -> Vec<String> {
        match self.get(col) {
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(v) => set(v),
            None => Vec::new(),
        }
    }

    fn map(&self, col: &str) -> BTreeMap<String, String> {
        self.get(col).map(map).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ovn-nbctl --format=json --columns=name,addresses,external_ids,type list
    /// Logical_Switch_Port -- --columns=_uuid,priority,meter list ACL`, trimmed.
    const CHAINED: &str = r#"{"data":[["node-n1","0a:58:64:40:00:02 100.64.0.2",["map",[]],""],["pod-b.default",["set",["a","b"]],["map",[["pod","default/pod-b"]]],""]],"headings":["name","addresses","external_ids","type"]}
{"data":[[["uuid","afe4c6d1-37c7-4ba7-bbb4-92e8548a90ec"],2000,["set",[]]]],"headings":["_uuid","priority","meter"]}
"#;

    #[test]
    fn reads_chained_tables_and_all_atom_kinds() {
        let tables = tables(CHAINED).unwrap();
        assert_eq!(tables.len(), 2);
        let lsp = &tables[0];
        assert_eq!(
            lsp[0].set("addresses"),
            vec!["0a:58:64:40:00:02 100.64.0.2"]
        );
        assert_eq!(lsp[1].set("addresses"), vec!["a", "b"]);
        assert_eq!(lsp[1].map("external_ids")["pod"], "default/pod-b");
        assert!(lsp[0].map("external_ids").is_empty());
        assert!(lsp[0].set("type").is_empty());
        let acl = &tables[1][0];
        assert_eq!(acl.str("_uuid"), "afe4c6d1-37c7-4ba7-bbb4-92e8548a90ec");
        assert_eq!(acl.int("priority"), Some(2000));
        assert!(acl.set("meter").is_empty());
        assert_eq!(acl.str("meter"), "");
        assert_eq!(acl.str("no-such-column"), "");
    }

    #[test]
    fn one_table_reads_the_same_through_rows() {
        let first = CHAINED.lines().next().unwrap();
        assert_eq!(rows(first).unwrap(), tables(first).unwrap()[0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(tables("ovn-nbctl: no row").is_err());
        assert!(matches!(tables("{\"data\":1}"), Err(TableError::Shape)));
        assert!(tables("").unwrap().is_empty());
        assert!(rows("").is_err());
    }
}
