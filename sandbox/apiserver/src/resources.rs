//! Resource metadata: which kinds the emulator serves, under which group/version/plural,
//! and how discovery describes them. Built-in kinds are listed here; custom resources
//! come from the CustomResourceDefinition objects found in the store.

use serde_json::Value;

/// A subresource as discovery announces it (`pods/exec`, `deployments/scale`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    pub name: String,
    pub kind: String,
    /// Group/version of the subresource's kind when it differs (Scale is autoscaling/v1).
    pub group_version: Option<(String, String)>,
    pub verbs: Vec<String>,
}

/// One additionalPrinterColumn of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
    /// Only for custom resources; built-ins have their own table code.
    pub printer_columns: Vec<PrinterColumn>,
    pub is_custom: bool,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn sub(name: &str, kind: &str, verbs: &[&str]) -> Subresource {
    Subresource {
        name: name.to_string(),
        kind: kind.to_string(),
        group_version: None,
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    }
}

fn status_sub(kind: &str) -> Subresource {
    sub("status", kind, &["get", "patch", "update"])
}

fn scale_sub() -> Subresource {
    Subresource {
        group_version: Some(("autoscaling".into(), "v1".into())),
        ..sub("scale", "Scale", &["get", "patch", "update"])
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    categories: &[&str],
    subresources: Vec<Subresource>,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        subresources,
        printer_columns: Vec::new(),
        is_custom: false,
    }
}

/// The built-in kinds a Kube-OVN troubleshooting session touches.
// Long but flat: one table row per kind, nothing to name in between.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    let all = &["all"][..];
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            &[],
            vec![status_sub("Namespace")],
        ),
        builtin(
            "",
            "v1",
            "nodes",
            "Node",
            false,
            &["no"],
            &[],
            vec![status_sub("Node")],
        ),
        builtin(
            "",
            "v1",
            "pods",
            "Pod",
            true,
            &["po"],
            all,
            vec![
                status_sub("Pod"),
                sub("exec", "PodExecOptions", &["create", "get"]),
                sub("log", "Pod", &["get"]),
            ],
        ),
        builtin(
            "",
            "v1",
            "services",
            "Service",
            true,
            &["svc"],
            all,
            vec![status_sub("Service")],
        ),
        builtin(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            &[],
            vec![],
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            &[],
            vec![],
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            &[],
            vec![],
        ),
        builtin("", "v1", "events", "Event", true, &["ev"], &[], vec![]),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            all,
            vec![status_sub("Deployment"), scale_sub()],
        ),
        builtin(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            all,
            vec![status_sub("DaemonSet")],
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            all,
            vec![status_sub("StatefulSet"), scale_sub()],
        ),
        builtin(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            all,
            vec![status_sub("ReplicaSet"), scale_sub()],
        ),
        builtin(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
            &[],
            vec![],
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            &[],
            vec![status_sub("CustomResourceDefinition")],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            &[],
            vec![],
        ),
    ]
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Resources served for one CustomResourceDefinition object (one per served version).
/// Returns an error text when the CRD lacks the fields a real API server requires.
pub fn resources_from_crd(crd: &Value) -> Result<Vec<ResourceInfo>, String> {
    let name = crd["metadata"]["name"].as_str().unwrap_or("<unnamed>");
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .ok_or_else(|| format!("CRD {name} has no spec.group"))?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or_else(|| format!("CRD {name} has no spec.names.plural"))?;
    let kind = names["kind"]
        .as_str()
        .ok_or_else(|| format!("CRD {name} has no spec.names.kind"))?;
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() == Some("Namespaced");
    let versions = spec["versions"]
        .as_array()
        .ok_or_else(|| format!("CRD {name} has no spec.versions"))?;
    let mut out = Vec::new();
    for v in versions {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let Some(version) = v["name"].as_str() else {
            continue;
        };
        let mut subresources = Vec::new();
        if v["subresources"].get("status").is_some() {
            subresources.push(status_sub(kind));
        }
        if v["subresources"].get("scale").is_some() {
            subresources.push(scale_sub());
        }
        let printer_columns = v["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        Some(PrinterColumn {
                            name: c["name"].as_str()?.to_string(),
                            type_: c["type"].as_str().unwrap_or("string").to_string(),
                            format: c["format"].as_str().unwrap_or("").to_string(),
                            description: c["description"].as_str().unwrap_or("").to_string(),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: c["jsonPath"].as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            kind: kind.to_string(),
            namespaced,
            short_names: str_list(&names["shortNames"]),
            categories: str_list(&names["categories"]),
            subresources,
            printer_columns,
            is_custom: true,
        });
    }
    Ok(out)
}

/// All resources served right now: built-ins plus those of the given CRDs.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    resources: Vec<ResourceInfo>,
}

impl Registry {
    pub fn new(crds: &[Value]) -> (Self, Vec<String>) {
        let mut resources = builtin_resources();
        let mut warnings = Vec::new();
        for crd in crds {
            match resources_from_crd(crd) {
                Ok(rs) => {
                    for r in rs {
                        if !resources.iter().any(|e| {
                            e.group == r.group && e.version == r.version && e.plural == r.plural
                        }) {
                            resources.push(r);
                        }
                    }
                }
                Err(e) => warnings.push(e),
            }
        }
        (Self { resources }, warnings)
    }

    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Resource for an object's apiVersion + kind (objects loaded from files carry these).
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .or_else(|| {
                self.resources
                    .iter()
                    .find(|r| r.group == group && r.kind == kind)
            })
    }

    /// Groups in discovery order (legacy core group excluded), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            if r.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceInfo> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_becomes_cluster_scoped_resource_with_columns() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "subnets.kubeovn.io"},
            "spec": {"group": "kubeovn.io", "scope": "Cluster",
                "names": {"plural": "subnets", "singular": "subnet", "kind": "Subnet", "shortNames": ["subnet"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "CIDR", "type": "string", "jsonPath": ".spec.cidrBlock"}]}]}
        });
        let (reg, warnings) = Registry::new(&[crd]);
        assert!(warnings.is_empty());
        let r = reg.find("kubeovn.io", "v1", "subnets").unwrap();
        assert!(!r.namespaced);
        assert_eq!(r.kind, "Subnet");
        assert_eq!(r.printer_columns[0].json_path, ".spec.cidrBlock");
        assert!(r.has_subresource("status"));
        assert_eq!(
            reg.for_kind("kubeovn.io/v1", "Subnet").unwrap().plural,
            "subnets"
        );
    }

    #[test]
    fn crd_without_group_is_reported() {
        let (_, warnings) = Registry::new(&[json!({"metadata": {"name": "x"}, "spec": {}})]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("spec.group"));
    }
}
