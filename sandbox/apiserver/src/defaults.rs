//! The defaults the real API server fills into workloads and pods (the `SetDefaults_*`
//! functions of `k8s.io/kubernetes/pkg/apis/{apps,core}/v1`), so objects created
//! through the emulator read back as on a cluster and `kubectl rollout status` accepts
//! them (it refuses a DaemonSet without `updateStrategy.type: RollingUpdate`).

use serde_json::{Value, json};

/// Sets `obj[key]` when it is absent or null.
fn default(obj: &mut Value, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

fn object(obj: &mut Value, key: &str) -> bool {
    default(obj, key, json!({}));
    obj[key].is_object()
}

/// Fills the defaults of a new or replaced object of `kind` (apiVersion group `group`).
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("apps", "Deployment") => deployment(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("apps", "ReplicaSet") if object(obj, "spec") => {
            default(&mut obj["spec"], "replicas", json!(1));
            pod_template(&mut obj["spec"]);
        }
        ("", "Pod") if object(obj, "spec") => pod_spec(&mut obj["spec"]),
        ("", "Namespace") => namespace_name_label(obj),
        _ => {}
    }
}

/// The label every namespace carries since Kubernetes 1.22 (selectors of
/// NetworkPolicies and AdminNetworkPolicies name namespaces with it); the API
/// server sets it to the name whatever the client sent.
fn namespace_name_label(obj: &mut Value) {
    let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) else {
        return;
    };
    if object(&mut obj["metadata"], "labels") {
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
}

fn deployment(obj: &mut Value) {
    if !object(obj, "spec") {
        return;
    }
    let spec = &mut obj["spec"];
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    if object(spec, "strategy") {
        let s = &mut spec["strategy"];
        default(s, "type", json!("RollingUpdate"));
        if s["type"] == "RollingUpdate" && object(s, "rollingUpdate") {
            default(&mut s["rollingUpdate"], "maxUnavailable", json!("25%"));
            default(&mut s["rollingUpdate"], "maxSurge", json!("25%"));
        }
    }
    pod_template(spec);
}

fn daemon_set(obj: &mut Value) {
    if !object(obj, "spec") {
        return;
    }
    let spec = &mut obj["spec"];
    default(spec, "revisionHistoryLimit", json!(10));
    if object(spec, "updateStrategy") {
        let s = &mut spec["updateStrategy"];
        default(s, "type", json!("RollingUpdate"));
        if s["type"] == "RollingUpdate" && object(s, "rollingUpdate") {
            default(&mut s["rollingUpdate"], "maxUnavailable", json!(1));
            default(&mut s["rollingUpdate"], "maxSurge", json!(0));
        }
    }
    pod_template(spec);
}

fn pod_template(spec: &mut Value) {
    if object(spec, "template") && object(&mut spec["template"], "spec") {
        pod_spec(&mut spec["template"]["spec"]);
    }
}

fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            cs.iter_mut().for_each(container);
        }
    }
}

/// `:latest` or no tag pulls always, anything else if not present.
fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let tagged = last.contains(':') || image.contains('@');
    if !tagged || last.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn container(c: &mut Value) {
    let policy = pull_policy(c["image"].as_str().unwrap_or(""));
    default(c, "imagePullPolicy", json!(policy));
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    if let Some(ports) = c["ports"].as_array_mut() {
        for p in ports {
            default(p, "protocol", json!("TCP"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_labelled_with_its_name() {
        let mut ns = json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "x", "a": "b"}}});
        apply("", "Namespace", &mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["metadata"]["labels"]["a"], "b");
        let mut bare = json!({"metadata": {"name": "b"}});
        apply("", "Namespace", &mut bare);
        assert_eq!(
            bare["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "b"
        );
    }

    #[test]
    fn a_daemon_set_gets_the_rolling_update_strategy() {
        let mut ds = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
        apply("apps", "DaemonSet", &mut ds);
        assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(ds["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn a_deployment_keeps_what_it_sets_and_gets_the_rest() {
        let mut d = json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        apply("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
    }
}
