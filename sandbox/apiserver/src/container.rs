//! Picking the container a `pods/exec` or `pods/log` request addresses, with the real
//! API server's validation messages.

use serde_json::Value;

use crate::status::ApiError;

/// Container names from the pod spec (falling back to the runtime's list when the
/// object has no spec.containers).
pub fn container_names(pod: &Value, runtime_containers: &[String]) -> Vec<String> {
    let from_spec: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if from_spec.is_empty() {
        runtime_containers.to_vec()
    } else {
        from_spec
    }
}

pub fn choose(
    pod_name: &str,
    names: &[String],
    requested: Option<&str>,
) -> Result<String, ApiError> {
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None => match names {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "pod {pod_name} has no containers"
            ))),
            many => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                many.join(" ")
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_match_the_real_server() {
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            choose("p", &names, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(
            choose("p", &names, Some("c")).unwrap_err().message,
            "container c is not valid for pod p"
        );
        assert_eq!(choose("p", &names, Some("b")).unwrap(), "b");
        assert_eq!(choose("p", &names[..1], None).unwrap(), "a");
    }

    #[test]
    fn names_come_from_spec_first() {
        let pod = json!({"spec": {"containers": [{"name": "x"}]}});
        assert_eq!(container_names(&pod, &["y".into()]), vec!["x"]);
        assert_eq!(container_names(&json!({}), &["y".into()]), vec!["y"]);
    }
}
