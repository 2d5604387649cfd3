//! Kubernetes label selectors (`matchLabels` + `matchExpressions`, and the plain map
//! a Service uses) evaluated against an object's labels.

use serde_json::Value;

/// Whether `labels` (an object's `metadata.labels`) satisfy a LabelSelector. An
/// empty selector selects everything, as in Kubernetes.
pub fn matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = selector["matchLabels"].as_object()
        && !ml.iter().all(|(k, v)| get(k) == v.as_str())
    {
        return false;
    }
    let exprs = selector["matchExpressions"].as_array();
    exprs.into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e["operator"].as_str().unwrap_or("") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            // an operator we do not know selects nothing rather than everything
            _ => false,
        }
    })
}

/// A Service's `spec.selector` (a plain map); an empty one selects nothing here,
/// because a Service without a selector has no managed endpoints.
pub fn map_matches(selector: &Value, labels: &Value) -> bool {
    match selector.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .all(|(k, v)| labels.get(k).and_then(Value::as_str) == v.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let l = json!({"app": "db", "tier": "x"});
        assert!(matches(&json!({}), &l));
        assert!(matches(&json!({"matchLabels": {"app": "db"}}), &l));
        assert!(!matches(&json!({"matchLabels": {"app": "web"}}), &l));
        let e = |op: &str, vals: Value| json!({"matchExpressions": [{"key": "app", "operator": op, "values": vals}]});
        assert!(matches(&e("In", json!(["db", "web"])), &l));
        assert!(!matches(&e("NotIn", json!(["db"])), &l));
        assert!(matches(&e("Exists", json!(null)), &l));
        assert!(!matches(&e("DoesNotExist", json!(null)), &l));
        assert!(!map_matches(&json!({}), &l));
        assert!(map_matches(&json!({"app": "db"}), &l));
    }
}
