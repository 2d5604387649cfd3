//! Request bodies in `application/vnd.kubernetes.protobuf`, as typed clients send them
//! (`kubectl create service|deployment|namespace|configmap`): the envelope is the magic
//! `k8s\0` followed by a `runtime.Unknown` whose `raw` is the object's own message.
//! The messages are decoded with `k8s-pb` (kube-rs's prost bindings) and converted to
//! the JSON the rest of the emulator stores. The conversion covers the fields those
//! clients set; any other field that is set is refused by name (never silently dropped):
//! each converter takes the fields it understands out of the message and the remainder
//! must be empty.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

const MAGIC: &[u8] = b"k8s\0";

pub fn is_protobuf(content_type: &str) -> bool {
    content_type.contains("application/vnd.kubernetes.protobuf")
}

fn unsupported(msg: String) -> ApiError {
    ApiError::new(415, "UnsupportedMediaType", msg)
}

fn bad(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "decoding the protobuf {what} failed: {e}; send the object as application/json"
    ))
}

/// Whether protobuf wire bytes hold only zero values: Go's non-pointer fields are
/// always encoded, so a field the client never set arrives as 0, "" or an empty
/// message. A length-delimited value counts as zero when empty or when it parses as a
/// message of zero values itself.
fn all_zero(mut b: &[u8]) -> bool {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    while !b.is_empty() {
        let Some(key) = varint(&mut b) else {
            return false;
        };
        let zero = match key & 7 {
            0 => varint(&mut b) == Some(0),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if b.len() < n {
                    return false;
                }
                let (v, rest) = b.split_at(n);
                b = rest;
                v.iter().all(|x| *x == 0)
            }
            2 => match varint(&mut b).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n <= b.len() => {
                    let (v, rest) = b.split_at(n);
                    b = rest;
                    all_zero(v)
                }
                _ => false,
            },
            _ => false,
        };
        if !zero {
            return false;
        }
    }
    true
}

/// The remainder of a message after conversion must be empty (zero values only).
fn check_rest<T: Message + std::fmt::Debug>(path: &str, rest: &T) -> Result<(), ApiError> {
    if all_zero(&rest.encode_to_vec()) {
        return Ok(());
    }
    Err(unsupported(format!(
        "the sandbox API emulator cannot convert these protobuf fields of {path} to JSON: {rest:?}; send the object as JSON instead (`kubectl create -f <file>` or `kubectl apply -f <file>`)"
    )))
}

/// Decodes a protobuf request body into the JSON object for `kind`.
pub fn decode(kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    let raw = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("envelope", "the body does not start with the magic k8s\\0"))?;
    let unknown = Unknown::decode(raw).map_err(|e| bad("runtime.Unknown envelope", e))?;
    let tm = unknown.type_meta.clone().unwrap_or_default();
    let (api_version, body_kind) = (
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
    );
    if !body_kind.is_empty() && body_kind != kind {
        return Err(ApiError::bad_request(format!(
            "the protobuf body holds a {body_kind}, but the request is for {kind}"
        )));
    }
    let bytes = unknown.raw.as_deref().unwrap_or_default();
    let mut obj = match kind {
        "Service" => service(core::Service::decode(bytes).map_err(|e| bad(kind, e))?)?,
        "Deployment" => deployment(apps::Deployment::decode(bytes).map_err(|e| bad(kind, e))?)?,
        "Namespace" => namespace(core::Namespace::decode(bytes).map_err(|e| bad(kind, e))?)?,
        "ConfigMap" => config_map(core::ConfigMap::decode(bytes).map_err(|e| bad(kind, e))?)?,
        "Pod" => pod(core::Pod::decode(bytes).map_err(|e| bad(kind, e))?)?,
        _ => {
            return Err(unsupported(format!(
                "the sandbox API emulator decodes protobuf bodies only for Service, Deployment, Namespace, ConfigMap and Pod, not {kind}; send it as JSON (`kubectl create -f <file>`)"
            )));
        }
    };
    obj["kind"] = json!(kind);
    if !api_version.is_empty() {
        obj["apiVersion"] = json!(api_version);
    }
    Ok(obj)
}

/// A JSON object from (key, value) pairs, leaving out absent values.
fn fields(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

/// A pointer field of the Go type: present means set, even to its zero value.
fn opt<T: Into<Value>>(v: Option<T>) -> Option<Value> {
    v.map(Into::into)
}

/// A non-pointer field of the Go type (`omitempty`): its zero value means unset.
fn nz<T: Into<Value> + Default + PartialEq>(v: Option<T>) -> Option<Value> {
    v.filter(|x| *x != T::default()).map(Into::into)
}

fn strings(v: Vec<String>) -> Option<Value> {
    (!v.is_empty()).then(|| json!(v))
}

fn map(m: BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| json!(m))
}

fn int_or_string(v: Option<IntOrString>) -> Option<Value> {
    let v = v?;
    if v.int_val.unwrap_or_default() == 0 && v.str_val.as_deref().unwrap_or_default().is_empty() {
        return None;
    }
    // type 1 = string, otherwise int (intstr.Type)
    Some(if v.r#type == Some(1) {
        json!(v.str_val.unwrap_or_default())
    } else {
        json!(v.int_val.unwrap_or_default())
    })
}

fn object_meta(m: Option<meta::ObjectMeta>) -> Result<Value, ApiError> {
    let mut m = m.unwrap_or_default();
    let owners = std::mem::take(&mut m.owner_references)
        .into_iter()
        .map(|o| {
            fields(vec![
                ("apiVersion", nz(o.api_version)),
                ("kind", nz(o.kind)),
                ("name", nz(o.name)),
                ("uid", nz(o.uid)),
                ("controller", opt(o.controller)),
                ("blockOwnerDeletion", opt(o.block_owner_deletion)),
            ])
        })
        .collect::<Vec<_>>();
    let out = fields(vec![
        ("name", nz(m.name.take())),
        ("generateName", nz(m.generate_name.take())),
        ("namespace", nz(m.namespace.take())),
        ("labels", map(std::mem::take(&mut m.labels))),
        ("annotations", map(std::mem::take(&mut m.annotations))),
        ("finalizers", strings(std::mem::take(&mut m.finalizers))),
        (
            "ownerReferences",
            (!owners.is_empty()).then(|| json!(owners)),
        ),
        ("resourceVersion", nz(m.resource_version.take())),
    ]);
    // Identity and bookkeeping the server assigns itself (or that clients echo back).
    m.uid = None;
    m.creation_timestamp = None;
    m.generation = None;
    m.self_link = None;
    m.managed_fields.clear();
    check_rest("metadata", &m)?;
    Ok(out)
}

fn label_selector(s: Option<meta::LabelSelector>) -> Option<Value> {
    let s = s?;
    let exprs: Vec<Value> = s
        .match_expressions
        .into_iter()
        .map(|e| {
            fields(vec![
                ("key", nz(e.key)),
                ("operator", nz(e.operator)),
                ("values", strings(e.values)),
            ])
        })
        .collect();
    Some(fields(vec![
        ("matchLabels", map(s.match_labels)),
        (
            "matchExpressions",
            (!exprs.is_empty()).then(|| json!(exprs)),
        ),
    ]))
}

fn service(mut s: core::Service) -> Result<Value, ApiError> {
    let metadata = object_meta(s.metadata.take())?;
    let mut spec = s.spec.take().unwrap_or_default();
    let ports: Vec<Value> = std::mem::take(&mut spec.ports)
        .into_iter()
        .map(|p| {
            fields(vec![
                ("name", nz(p.name)),
                ("protocol", nz(p.protocol)),
                ("appProtocol", nz(p.app_protocol)),
                ("port", nz(p.port)),
                ("targetPort", int_or_string(p.target_port)),
                ("nodePort", nz(p.node_port)),
            ])
        })
        .collect();
    let out = fields(vec![
        ("ports", (!ports.is_empty()).then(|| json!(ports))),
        ("selector", map(std::mem::take(&mut spec.selector))),
        ("clusterIP", nz(spec.cluster_ip.take())),
        ("clusterIPs", strings(std::mem::take(&mut spec.cluster_ips))),
        ("type", nz(spec.r#type.take())),
        (
            "externalIPs",
            strings(std::mem::take(&mut spec.external_ips)),
        ),
        ("sessionAffinity", nz(spec.session_affinity.take())),
        ("loadBalancerIP", nz(spec.load_balancer_ip.take())),
        ("externalName", nz(spec.external_name.take())),
        (
            "externalTrafficPolicy",
            nz(spec.external_traffic_policy.take()),
        ),
        (
            "publishNotReadyAddresses",
            nz(spec.publish_not_ready_addresses.take()),
        ),
        ("ipFamilies", strings(std::mem::take(&mut spec.ip_families))),
        ("ipFamilyPolicy", opt(spec.ip_family_policy.take())),
        (
            "allocateLoadBalancerNodePorts",
            opt(spec.allocate_load_balancer_node_ports.take()),
        ),
        (
            "internalTrafficPolicy",
            opt(spec.internal_traffic_policy.take()),
        ),
    ]);
    check_rest("Service spec", &spec)?;
    // A client's status is ignored on create, as by the real server.
    s.status = None;
    check_rest("Service", &s)?;
    Ok(json!({"metadata": metadata, "spec": out}))
}

fn deployment(mut d: apps::Deployment) -> Result<Value, ApiError> {
    let metadata = object_meta(d.metadata.take())?;
    let mut spec = d.spec.take().unwrap_or_default();
    let strategy = spec.strategy.take().map(|mut s| {
        let rolling = s.rolling_update.take().map(|r| {
            fields(vec![
                ("maxUnavailable", int_or_string(r.max_unavailable)),
                ("maxSurge", int_or_string(r.max_surge)),
            ])
        });
        fields(vec![("type", nz(s.r#type)), ("rollingUpdate", rolling)])
    });
    let out = fields(vec![
        ("replicas", opt(spec.replicas.take())),
        ("selector", label_selector(spec.selector.take())),
        ("template", Some(pod_template(spec.template.take())?)),
        ("strategy", strategy),
        ("minReadySeconds", nz(spec.min_ready_seconds.take())),
        (
            "revisionHistoryLimit",
            opt(spec.revision_history_limit.take()),
        ),
        ("paused", nz(spec.paused.take())),
        (
            "progressDeadlineSeconds",
            opt(spec.progress_deadline_seconds.take()),
        ),
    ]);
    check_rest("Deployment spec", &spec)?;
    d.status = None;
    check_rest("Deployment", &d)?;
    Ok(json!({"metadata": metadata, "spec": out}))
}

fn namespace(mut n: core::Namespace) -> Result<Value, ApiError> {
    let metadata = object_meta(n.metadata.take())?;
    n.status = None;
    let finalizers = n.spec.take().map(|s| s.finalizers).unwrap_or_default();
    check_rest("Namespace", &n)?;
    let mut out = json!({"metadata": metadata});
    if !finalizers.is_empty() {
        out["spec"] = json!({"finalizers": finalizers});
    }
    Ok(out)
}

fn config_map(mut c: core::ConfigMap) -> Result<Value, ApiError> {
    use base64::Engine;
    let metadata = object_meta(c.metadata.take())?;
    let binary: BTreeMap<String, String> = std::mem::take(&mut c.binary_data)
        .into_iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    let out = fields(vec![
        ("metadata", Some(metadata)),
        ("data", map(std::mem::take(&mut c.data))),
        ("binaryData", map(binary)),
        ("immutable", opt(c.immutable.take())),
    ]);
    check_rest("ConfigMap", &c)?;
    Ok(out)
}

fn pod(mut p: core::Pod) -> Result<Value, ApiError> {
    let metadata = object_meta(p.metadata.take())?;
    let spec = pod_spec(p.spec.take().unwrap_or_default())?;
    p.status = None;
    check_rest("Pod", &p)?;
    Ok(json!({"metadata": metadata, "spec": spec}))
}

fn pod_template(t: Option<core::PodTemplateSpec>) -> Result<Value, ApiError> {
    let mut t = t.unwrap_or_default();
    let metadata = object_meta(t.metadata.take())?;
    let spec = pod_spec(t.spec.take().unwrap_or_default())?;
    Ok(json!({"metadata": metadata, "spec": spec}))
}

fn pod_spec(mut s: core::PodSpec) -> Result<Value, ApiError> {
    let containers = std::mem::take(&mut s.containers)
        .into_iter()
        .map(container)
        .collect::<Result<Vec<_>, _>>()?;
    let init = std::mem::take(&mut s.init_containers)
        .into_iter()
        .map(container)
        .collect::<Result<Vec<_>, _>>()?;
    // An empty PodSecurityContext is what typed clients always send.
    if s.security_context.as_ref() == Some(&core::PodSecurityContext::default()) {
        s.security_context = None;
    }
    let out = fields(vec![
        ("containers", Some(json!(containers))),
        ("initContainers", (!init.is_empty()).then(|| json!(init))),
        ("restartPolicy", nz(s.restart_policy.take())),
        (
            "terminationGracePeriodSeconds",
            opt(s.termination_grace_period_seconds.take()),
        ),
        (
            "activeDeadlineSeconds",
            opt(s.active_deadline_seconds.take()),
        ),
        ("dnsPolicy", nz(s.dns_policy.take())),
        ("nodeSelector", map(std::mem::take(&mut s.node_selector))),
        ("serviceAccountName", nz(s.service_account_name.take())),
        ("serviceAccount", nz(s.service_account.take())),
        (
            "automountServiceAccountToken",
            opt(s.automount_service_account_token.take()),
        ),
        ("nodeName", nz(s.node_name.take())),
        ("hostNetwork", nz(s.host_network.take())),
        ("hostname", nz(s.hostname.take())),
        ("subdomain", nz(s.subdomain.take())),
        ("schedulerName", nz(s.scheduler_name.take())),
        ("priorityClassName", nz(s.priority_class_name.take())),
        ("priority", opt(s.priority.take())),
        ("enableServiceLinks", opt(s.enable_service_links.take())),
    ]);
    check_rest("the pod spec", &s)?;
    Ok(out)
}

fn container(mut c: core::Container) -> Result<Value, ApiError> {
    let ports: Vec<Value> = std::mem::take(&mut c.ports)
        .into_iter()
        .map(|p| {
            fields(vec![
                ("name", nz(p.name)),
                ("containerPort", nz(p.container_port)),
                ("protocol", nz(p.protocol)),
                ("hostPort", nz(p.host_port)),
                ("hostIP", nz(p.host_ip)),
            ])
        })
        .collect();
    let mut env = Vec::new();
    for e in std::mem::take(&mut c.env) {
        if e.value_from.is_some() {
            return Err(unsupported(format!(
                "the sandbox API emulator cannot convert env[{}].valueFrom from protobuf; send the object as JSON",
                e.name.unwrap_or_default()
            )));
        }
        env.push(fields(vec![("name", nz(e.name)), ("value", nz(e.value))]));
    }
    let resources = c.resources.take().map(|r| {
        let q = |m: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>| {
            let m: BTreeMap<String, String> = m
                .into_iter()
                .map(|(k, v)| (k, v.string.unwrap_or_default()))
                .collect();
            map(m)
        };
        fields(vec![("limits", q(r.limits)), ("requests", q(r.requests))])
    });
    let out = fields(vec![
        ("name", nz(c.name.take())),
        ("image", nz(c.image.take())),
        ("command", strings(std::mem::take(&mut c.command))),
        ("args", strings(std::mem::take(&mut c.args))),
        ("workingDir", nz(c.working_dir.take())),
        ("ports", (!ports.is_empty()).then(|| json!(ports))),
        ("env", (!env.is_empty()).then(|| json!(env))),
        ("resources", resources),
        (
            "terminationMessagePath",
            nz(c.termination_message_path.take()),
        ),
        (
            "terminationMessagePolicy",
            nz(c.termination_message_policy.take()),
        ),
        ("imagePullPolicy", nz(c.image_pull_policy.take())),
        ("stdin", nz(c.stdin.take())),
        ("stdinOnce", nz(c.stdin_once.take())),
        ("tty", nz(c.tty.take())),
    ]);
    check_rest("a container", &c)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let u = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(u.encode_to_vec());
        out
    }

    #[test]
    fn a_service_decodes_with_ports_and_selector() {
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta {
                name: Some("s1".into()),
                labels: [("app".to_string(), "s1".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: Some("80-8080".into()),
                    protocol: Some("TCP".into()),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: None,
                    }),
                    ..Default::default()
                }],
                selector: [("app".to_string(), "s1".to_string())].into(),
                r#type: Some("ClusterIP".into()),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let v = decode("Service", &envelope("v1", "Service", svc.encode_to_vec())).unwrap();
        assert_eq!(v["kind"], "Service");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["metadata"]["name"], "s1");
        assert_eq!(v["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(v["spec"]["selector"]["app"], "s1");
        assert_eq!(v["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn a_deployment_keeps_its_template_and_unknown_fields_are_refused() {
        let mut d = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("d".into()),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector {
                    match_labels: [("app".to_string(), "d".to_string())].into(),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: [("app".to_string(), "d".to_string())].into(),
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx".into()),
                            resources: Some(Default::default()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                strategy: Some(Default::default()),
                ..Default::default()
            }),
            status: None,
        };
        let v = decode(
            "Deployment",
            &envelope("apps/v1", "Deployment", d.encode_to_vec()),
        )
        .unwrap();
        assert_eq!(v["spec"]["replicas"], 2);
        assert_eq!(v["spec"]["selector"]["matchLabels"]["app"], "d");
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx"
        );

        if let Some(spec) = d
            .spec
            .as_mut()
            .and_then(|s| s.template.as_mut())
            .and_then(|t| t.spec.as_mut())
        {
            spec.volumes.push(core::Volume {
                name: Some("v".into()),
                ..Default::default()
            });
        }
        let e = decode(
            "Deployment",
            &envelope("apps/v1", "Deployment", d.encode_to_vec()),
        )
        .unwrap_err();
        assert_eq!(e.code, 415);
        assert!(e.message.contains("volumes"), "{}", e.message);
    }

    #[test]
    fn bodies_without_the_magic_or_of_another_kind_are_refused() {
        assert_eq!(decode("Service", b"{}").unwrap_err().code, 400);
        let ns = core::Namespace::default();
        let e = decode("Service", &envelope("v1", "Namespace", ns.encode_to_vec())).unwrap_err();
        assert!(e.message.contains("holds a Namespace"), "{}", e.message);
    }

    #[test]
    fn go_zero_values_count_as_unset() {
        // what a Go client sends for a ServiceSpec with only healthCheckNodePort: 0
        let spec = core::ServiceSpec {
            health_check_node_port: Some(0),
            r#type: Some(String::new()),
            ..Default::default()
        };
        assert!(all_zero(&spec.encode_to_vec()));
        let set = core::ServiceSpec {
            health_check_node_port: Some(30001),
            ..Default::default()
        };
        assert!(!all_zero(&set.encode_to_vec()));
        assert!(check_rest("spec", &set).is_err());
    }
}
