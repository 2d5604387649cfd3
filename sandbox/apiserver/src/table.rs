//! `meta.k8s.io/v1 Table` rendering, which is what `kubectl get` asks for: the server
//! decides the columns (pods: NAME READY STATUS RESTARTS AGE, wide adds IP NODE ...).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::{PrinterColumn, ResourceInfo};

/// What each row carries besides its cells (`includeObject=` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Kubernetes' short human age: 45s, 3m20s, 12m, 5h3m, 2d4h, 400d, 3y12d.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        return match s % 60 {
            0 => format!("{minutes}m"),
            r => format!("{minutes}m{r}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            r => format!("{hours}h{r}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            r => format!("{days}d{r}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            r => format!("{years}y{r}d"),
        };
    }
    format!("{years}y")
}

fn age(obj: &Value, now: DateTime<Utc>) -> String {
    obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration((now - t.with_timezone(&Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn col(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn name_col() -> Value {
    col(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    )
}

/// The columns a workload with a pod template ends with (Deployment, DaemonSet).
fn template_cols(selector_description: &str) -> [Value; 4] {
    [
        age_col(),
        col(
            "Containers",
            "string",
            "",
            1,
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            "",
            1,
            "Images referenced by each container in the template.",
        ),
        col("Selector", "string", "", 1, selector_description),
    ]
}

fn age_col() -> Value {
    col(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn pod_columns() -> Vec<Value> {
    vec![
        name_col(),
        col(
            "Ready",
            "string",
            "",
            0,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            "",
            0,
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            "string",
            "",
            0,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        age_col(),
        col(
            "IP",
            "string",
            "",
            1,
            "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        ),
        col(
            "Node",
            "string",
            "",
            1,
            "NodeName is a request to schedule this pod onto a specific node.",
        ),
        col(
            "Nominated Node",
            "string",
            "",
            1,
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
        ),
        col(
            "Readiness Gates",
            "string",
            "",
            1,
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ]
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(statuses.len());
    let ready = statuses
        .iter()
        .filter(|c| c["ready"].as_bool() == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let mut reason = pod["status"]["reason"]
        .as_str()
        .or(pod["status"]["phase"].as_str())
        .unwrap_or("Unknown")
        .to_string();
    for c in &statuses {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            reason = r.to_string();
        }
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    let gates = pod["spec"]["readinessGates"]
        .as_array()
        .map(|g| g.len())
        .unwrap_or(0);
    vec![
        json!(s(&pod["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(pod, now)),
        json!(or_none(s(&pod["status"]["podIP"]))),
        json!(or_none(s(&pod["spec"]["nodeName"]))),
        json!(or_none(s(&pod["status"]["nominatedNodeName"]))),
        json!(if gates == 0 {
            "<none>".to_string()
        } else {
            format!("0/{gates}")
        }),
    ]
}

fn node_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Status", "string", "", 0, "The status of the node"),
        col("Roles", "string", "", 0, "The roles of the node"),
        age_col(),
        col(
            "Version",
            "string",
            "",
            0,
            "Kubelet Version reported by the node.",
        ),
        col(
            "Internal-IP",
            "string",
            "",
            1,
            "List of internal IPs of the node.",
        ),
        col(
            "External-IP",
            "string",
            "",
            1,
            "List of external IPs of the node.",
        ),
        col(
            "OS-Image",
            "string",
            "",
            1,
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        col(
            "Kernel-Version",
            "string",
            "",
            1,
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        col(
            "Container-Runtime",
            "string",
            "",
            1,
            "Container runtime version reported by the node.",
        ),
    ]
}

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let conditions = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut status = match conditions.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let addr = |t: &str| -> String {
        node["status"]["addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["type"] == t)
                    .map(|x| s(&x["address"]))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let info = &node["status"]["nodeInfo"];
    vec![
        json!(s(&node["metadata"]["name"])),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(node, now)),
        json!(s(&info["kubeletVersion"])),
        json!(or_none(addr("InternalIP"))),
        json!(or_none(addr("ExternalIP"))),
        json!(or_none(s(&info["osImage"]))),
        json!(or_none(s(&info["kernelVersion"]))),
        json!(or_none(s(&info["containerRuntimeVersion"]))),
    ]
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn images_and_names(obj: &Value) -> (String, String) {
    let cs = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        cs.iter()
            .map(|c| s(&c["name"]))
            .collect::<Vec<_>>()
            .join(","),
        cs.iter()
            .map(|c| s(&c["image"]))
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn selector_string(sel: &Value) -> String {
    sel["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn map_string(m: &Value) -> String {
    m.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn deployment_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let st = &obj["status"];
    let (names, images) = images_and_names(obj);
    (
        vec![
            name_col(),
            col(
                "Ready",
                "string",
                "",
                0,
                "Number of the pod with ready state",
            ),
            col(
                "Up-to-date",
                "string",
                "",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "string",
                "",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
        ]
        .into_iter()
        .chain(template_cols("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."))
        .collect(),
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(format!(
                "{}/{}",
                int(&st["readyReplicas"]),
                obj["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            json!(int(&st["updatedReplicas"])),
            json!(int(&st["availableReplicas"])),
            json!(age(obj, now)),
            json!(names),
            json!(images),
            json!(or_none(selector_string(&obj["spec"]["selector"]))),
        ],
    )
}

fn daemonset_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let st = &obj["status"];
    let (names, images) = images_and_names(obj);
    (
        vec![
            name_col(),
            col(
                "Desired",
                "integer",
                "",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            col(
                "Current",
                "integer",
                "",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            col(
                "Ready",
                "integer",
                "",
                0,
                "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            col(
                "Up-to-date",
                "integer",
                "",
                0,
                "The total number of nodes that are running updated daemon pod",
            ),
            col(
                "Available",
                "integer",
                "",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            col(
                "Node Selector",
                "string",
                "",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
        ]
        .into_iter()
        .chain(template_cols("A label query over pods that are managed by the daemon set."))
        .collect(),
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(int(&st["desiredNumberScheduled"])),
            json!(int(&st["currentNumberScheduled"])),
            json!(int(&st["numberReady"])),
            json!(int(&st["updatedNumberScheduled"])),
            json!(int(&st["numberAvailable"])),
            json!(or_none(map_string(
                &obj["spec"]["template"]["spec"]["nodeSelector"]
            ))),
            json!(age(obj, now)),
            json!(names),
            json!(images),
            json!(or_none(selector_string(&obj["spec"]["selector"]))),
        ],
    )
}

/// `kubectl get rs`: kubernetes' printReplicaSet (Desired/Current/Ready, then the
/// template columns `-o wide` shows).
fn replicaset_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let st = &obj["status"];
    let (names, images) = images_and_names(obj);
    (
        vec![
            name_col(),
            col(
                "Desired",
                "integer",
                "",
                0,
                "The number of pods the ReplicaSet wants (spec.replicas, 1 when unset).",
            ),
            col(
                "Current",
                "integer",
                "",
                0,
                "The number of non-terminating pods last observed (status.replicas).",
            ),
            col(
                "Ready",
                "integer",
                "",
                0,
                "The number of non-terminating pods with a Ready condition (status.readyReplicas).",
            ),
        ]
        .into_iter()
        .chain(template_cols(
            "A label query over the pods the ReplicaSet should own.",
        ))
        .collect(),
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(obj["spec"]["replicas"].as_i64().unwrap_or(1)),
            json!(int(&st["replicas"])),
            json!(int(&st["readyReplicas"])),
            json!(age(obj, now)),
            json!(names),
            json!(images),
            json!(or_none(selector_string(&obj["spec"]["selector"]))),
        ],
    )
}

/// kubernetes' formatEndpoints: `ip:port` for every ready address and port (the
/// bare IP for a subset without ports), the first three and `+ N more...`;
/// `<none>` without subsets (and an empty cell when no address is ready).
fn format_endpoints(obj: &Value) -> String {
    let Some(subsets) = obj["subsets"].as_array().filter(|a| !a.is_empty()) else {
        return "<none>".into();
    };
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addrs: Vec<String> = ss["addresses"]
            .as_array()
            .map(|a| a.iter().map(|x| s(&x["ip"])).collect())
            .unwrap_or_default();
        let ports: Vec<i64> = ss["ports"]
            .as_array()
            .map(|a| a.iter().map(|p| int(&p["port"])).collect())
            .unwrap_or_default();
        if ports.is_empty() {
            count += addrs.len();
            list.extend(addrs.iter().take(MAX.saturating_sub(list.len())).cloned());
            continue;
        }
        for port in ports {
            count += addrs.len();
            for ip in &addrs {
                if list.len() == MAX {
                    break;
                }
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let joined = list.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// `kubectl get endpoints`: kubernetes' printEndpoints.
fn endpoints_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    (
        vec![
            name_col(),
            col(
                "Endpoints",
                "string",
                "",
                0,
                "The ready addresses and ports of the subsets (the first three).",
            ),
            age_col(),
        ],
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(format_endpoints(obj)),
            json!(age(obj, now)),
        ],
    )
}

fn service_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let spec = &obj["spec"];
    let ports = spec["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) => format!("{}:{np}/{proto}", s(&p["port"])),
                        None => format!("{}/{proto}", s(&p["port"])),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let external = spec["externalIPs"]
        .as_array()
        .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    (
        vec![
            name_col(),
            col(
                "Type",
                "string",
                "",
                0,
                "type determines how the Service is exposed.",
            ),
            col(
                "Cluster-IP",
                "string",
                "",
                0,
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            col(
                "External-IP",
                "string",
                "",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            col(
                "Port(s)",
                "string",
                "",
                0,
                "The list of ports that are exposed by this service.",
            ),
            age_col(),
            col(
                "Selector",
                "string",
                "",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(spec["type"].as_str().unwrap_or("ClusterIP")),
            json!(or_none(s(&spec["clusterIP"]))),
            json!(or_none(external)),
            json!(or_none(ports)),
            json!(age(obj, now)),
            json!(or_none(map_string(&spec["selector"]))),
        ],
    )
}

fn endpointslice_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let ports = obj["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| s(&p["port"]))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let addrs: Vec<String> = obj["endpoints"]
        .as_array()
        .map(|eps| {
            eps.iter()
                .flat_map(|e| {
                    e["addresses"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| s(&a))
                })
                .collect()
        })
        .unwrap_or_default();
    let endpoints = if addrs.is_empty() {
        "<unset>".to_string()
    } else if addrs.len() > 3 {
        format!("{} + {} more...", addrs[..3].join(","), addrs.len() - 3)
    } else {
        addrs.join(",")
    };
    (
        vec![
            name_col(),
            col(
                "AddressType",
                "string",
                "",
                0,
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            col(
                "Ports",
                "string",
                "",
                0,
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            col(
                "Endpoints",
                "string",
                "",
                0,
                "endpoints is a list of unique endpoints in this slice.",
            ),
            age_col(),
        ],
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(s(&obj["addressType"])),
            json!(if ports.is_empty() {
                "<unset>".to_string()
            } else {
                ports
            }),
            json!(endpoints),
            json!(age(obj, now)),
        ],
    )
}

fn namespace_table(obj: &Value, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    (
        vec![
            name_col(),
            col("Status", "string", "", 0, "The status of the namespace"),
            age_col(),
        ],
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(obj["status"]["phase"].as_str().unwrap_or("Active")),
            json!(age(obj, now)),
        ],
    )
}

/// Evaluates the JSONPath subset CRD printer columns use: `.a.b`, `.a[0].b`,
/// `.a[?(@.type=="Ready")].status`. Returns None when a step is missing.
pub fn eval_json_path(obj: &Value, path: &str) -> Option<Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut cur = obj.clone();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            cur = cur.get(field)?.clone();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|e| s(&e[field.trim()]) == want)?
                    .clone();
            } else {
                let i: usize = inner.trim().parse().ok()?;
                cur = cur.as_array()?.get(i)?.clone();
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn custom_table(
    columns: &[PrinterColumn],
    obj: &Value,
    now: DateTime<Utc>,
) -> (Vec<Value>, Vec<Value>) {
    if columns.is_empty() {
        return (
            vec![name_col(), age_col()],
            vec![json!(s(&obj["metadata"]["name"])), json!(age(obj, now))],
        );
    }
    let mut defs = vec![name_col()];
    let mut cells = vec![json!(s(&obj["metadata"]["name"]))];
    for c in columns {
        defs.push(col(
            &c.name,
            &c.type_,
            &c.format,
            c.priority,
            &c.description,
        ));
        let v = eval_json_path(obj, &c.json_path);
        let cell = match (c.type_.as_str(), v) {
            (_, None) | (_, Some(Value::Null)) => Value::Null,
            ("date", Some(Value::String(t))) => DateTime::parse_from_rfc3339(&t)
                .map(|t| json!(human_duration((now - t.with_timezone(&Utc)).num_seconds())))
                .unwrap_or(json!(t)),
            (_, Some(Value::Array(a))) => {
                json!(a.iter().map(s).collect::<Vec<_>>().join(","))
            }
            (_, Some(Value::Object(o))) => json!(Value::Object(o).to_string()),
            (_, Some(v)) => v,
        };
        cells.push(cell);
    }
    (defs, cells)
}

fn columns_and_cells(
    info: &ResourceInfo,
    obj: &Value,
    now: DateTime<Utc>,
) -> (Vec<Value>, Vec<Value>) {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => (pod_columns(), pod_cells(obj, now)),
        ("", "nodes") => (node_columns(), node_cells(obj, now)),
        ("", "namespaces") => namespace_table(obj, now),
        ("", "services") => service_table(obj, now),
        ("", "endpoints") => endpoints_table(obj, now),
        ("apps", "replicasets") => replicaset_table(obj, now),
        ("apps", "deployments") => deployment_table(obj, now),
        ("apps", "daemonsets") => daemonset_table(obj, now),
        ("discovery.k8s.io", "endpointslices") => endpointslice_table(obj, now),
        _ => custom_table(&info.printer_columns, obj, now),
    }
}

/// Columns when there are no rows (still needed so kubectl prints "No resources found").
fn empty_columns(info: &ResourceInfo) -> Vec<Value> {
    columns_and_cells(info, &json!({"metadata": {}}), Utc::now()).0
}

fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"].clone(),
        }),
    }
}

pub fn to_table(
    info: &ResourceInfo,
    objects: &[Value],
    resource_version: u64,
    include: IncludeObject,
) -> Value {
    let now = Utc::now();
    let mut columns = None;
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let (defs, cells) = columns_and_cells(info, o, now);
            columns.get_or_insert(defs);
            let mut row = json!({"cells": cells});
            let obj = row_object(o, include);
            if !obj.is_null() {
                row["object"] = obj;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns.unwrap_or_else(|| empty_columns(info)),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(50 * 3600), "2d2h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn endpoints_read_like_kubectl() {
        assert_eq!(format_endpoints(&json!({"metadata": {}})), "<none>");
        // only not-ready addresses: the real printer leaves the cell empty
        let not_ready = json!({"subsets": [{"notReadyAddresses": [{"ip": "10.16.0.9"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(format_endpoints(&not_ready), "");
        let two_ports = json!({"subsets": [{"addresses": [{"ip": "10.16.0.5"}, {"ip": "10.16.0.6"}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]});
        assert_eq!(
            format_endpoints(&two_ports),
            "10.16.0.5:53,10.16.0.6:53,10.16.0.5:53 + 1 more..."
        );
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00:10:16::5"}], "ports": [{"port": 8080}]}]});
        assert_eq!(format_endpoints(&v6), "[fd00:10:16::5]:8080");
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.16.0.7"}]}]});
        assert_eq!(format_endpoints(&headless), "10.16.0.7");
    }

    #[test]
    fn json_path_subset() {
        let o = json!({"spec": {"cidrBlock": "10.16.0.0/16", "list": [{"a": 1}]},
            "status": {"conditions": [{"type": "Validated", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            eval_json_path(&o, ".spec.cidrBlock"),
            Some(json!("10.16.0.0/16"))
        );
        assert_eq!(eval_json_path(&o, ".spec.list[0].a"), Some(json!(1)));
        assert_eq!(
            eval_json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(eval_json_path(&o, ".spec.nothere"), None);
    }

    #[test]
    fn pod_row_counts_ready_containers_and_restarts() {
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"nodeName": "node1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.16.0.5",
                "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 2}]}});
        let cells = pod_cells(&pod, Utc::now());
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3");
        assert_eq!(cells[5], "10.16.0.5");
        assert_eq!(cells[6], "node1");
    }
}
