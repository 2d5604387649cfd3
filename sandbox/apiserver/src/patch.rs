//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (handled as a merge
//! patch, which is exact for labels, annotations and replicas), and JSON patch (RFC 6902).

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    StrategicMerge,
    Json,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
            "application/json-patch+json" => Ok(PatchType::Json),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
                ),
            )),
        }
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`) have no
/// meaning in a plain merge; drop them so they don't end up stored in the object.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

pub fn apply(target: &mut Value, kind: PatchType, body: &[u8]) -> Result<(), ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the patch body is not valid JSON: {e}")))?;
    match kind {
        PatchType::Merge => merge_patch(target, &patch),
        PatchType::StrategicMerge => {
            let mut patch = patch;
            strip_directives(&mut patch);
            merge_patch(target, &patch);
        }
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                ApiError::bad_request(format!("the JSON patch is not a list of operations: {e}"))
            })?;
            json_patch::patch(target, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_sets_and_deletes() {
        let mut o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        merge_patch(
            &mut o,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3}}),
        );
        assert_eq!(
            o,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn json_patch_and_errors() {
        let mut o = json!({"metadata": {"labels": {"a": "1"}}});
        apply(
            &mut o,
            PatchType::Json,
            br#"[{"op":"replace","path":"/metadata/labels/a","value":"2"}]"#,
        )
        .unwrap();
        assert_eq!(o["metadata"]["labels"]["a"], "2");
        let err = apply(
            &mut o,
            PatchType::Json,
            br#"[{"op":"remove","path":"/nope"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(apply(&mut o, PatchType::Merge, b"{").unwrap_err().code, 400);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }

    #[test]
    fn strategic_directives_are_dropped() {
        let mut o = json!({"metadata": {}});
        apply(
            &mut o,
            PatchType::StrategicMerge,
            br#"{"$retainKeys":["x"],"metadata":{"labels":{"x":"y"}}}"#,
        )
        .unwrap();
        assert_eq!(o, json!({"metadata": {"labels": {"x": "y"}}}));
    }
}
