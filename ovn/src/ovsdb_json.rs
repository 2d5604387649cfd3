//! Reading `ovn-nbctl/ovn-sbctl --format=json list <Table>` output: a
//! `{"headings": [...], "data": [[cell, ...], ...]}` object whose cells use
//! the OVSDB JSON encoding (`["uuid", "..."]`, `["set", [...]]`,
//! `["map", [[k, v], ...]]`, or a bare atom; a one-element set is printed as
//! the bare element).

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
}

pub fn rows(json: &str) -> Result<Vec<Row>, TableError> {
    let v: Value = serde_json::from_str(json)?;
    let headings: Vec<String> = v
        .get("headings")
        .and_then(Value::as_array)
        .ok_or(TableError::Shape)?
        .iter()
        .map(|h| h.as_str().unwrap_or_default().to_string())
        .collect();
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or(TableError::Shape)?;
    Ok(data
        .iter()
        .filter_map(Value::as_array)
        .map(|cells| {
            headings
                .iter()
                .cloned()
                .zip(cells.iter().cloned())
                .collect()
        })
        .collect())
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
