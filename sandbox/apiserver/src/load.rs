//! Loading `<state>/api/objects/*.json` (single objects or `kind: List`) into the store.

use std::path::Path;

use serde_json::{Value, json};

use crate::resources::Registry;
use crate::store::{Key, Store};

/// Namespaces every cluster has; created when the object files don't define them.
const DEFAULT_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

fn read_objects(dir: &Path) -> Result<Vec<Value>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {} failed: {e}", dir.display())),
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("reading object file {} failed: {e}", p.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "object file {} is not valid JSON: {e}; fix or remove it",
                p.display()
            )
        })?;
        match v["items"].as_array() {
            Some(items) if v["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                out.extend(items.iter().cloned())
            }
            _ => out.push(v),
        }
    }
    Ok(out)
}

/// Loads all objects; CRDs first so their custom resources are recognised. Returns the
/// registry and warnings for objects that could not be placed.
pub fn load(dir: &Path, store: &Store) -> Result<(Registry, Vec<String>), String> {
    let objects = read_objects(dir)?;
    let is_crd = |o: &Value| o["kind"] == "CustomResourceDefinition";
    let crds: Vec<Value> = objects.iter().filter(|o| is_crd(o)).cloned().collect();
    let (registry, mut warnings) = Registry::new(&crds);
    let ordered = objects
        .iter()
        .filter(|o| is_crd(o))
        .chain(objects.iter().filter(|o| !is_crd(o)));
    for obj in ordered {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let Some(info) = registry.for_kind(api_version, kind) else {
            warnings.push(format!(
                "skipping {kind} {name:?} ({api_version}): no such resource is served"
            ));
            continue;
        };
        if name.is_empty() {
            warnings.push(format!("skipping a {kind} without metadata.name"));
            continue;
        }
        let ns = if info.namespaced {
            obj["metadata"]["namespace"].as_str().unwrap_or("default")
        } else {
            ""
        };
        let key = Key::new(&info.group, &info.plural, ns, name);
        if let Err(e) = store.create(key, obj.clone()) {
            warnings.push(format!("skipping {kind} {ns}/{name}: {}", e.message));
        }
    }
    for ns in DEFAULT_NAMESPACES {
        let key = Key::new("", "namespaces", "", ns);
        if store.get(&key).is_none() {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let _ = store.create(key, obj);
        }
    }
    Ok((registry, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_lists_crds_and_custom_resources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b-subnets.json"),
            r#"{"kind":"List","apiVersion":"v1","items":[
              {"apiVersion":"kubeovn.io/v1","kind":"Subnet","metadata":{"name":"ovn-default"},"spec":{"cidrBlock":"10.16.0.0/16"}}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a-crd.json"),
            r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"subnets.kubeovn.io"},
              "spec":{"group":"kubeovn.io","scope":"Cluster","names":{"plural":"subnets","kind":"Subnet"},"versions":[{"name":"v1","served":true,"storage":true}]}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c-bad.json"),
            r#"{"apiVersion":"x/v1","kind":"Nope","metadata":{"name":"n"}}"#,
        )
        .unwrap();
        let store = Store::new();
        let (reg, warnings) = load(dir.path(), &store).unwrap();
        assert!(reg.find("kubeovn.io", "v1", "subnets").is_some());
        assert!(
            store
                .get(&Key::new("kubeovn.io", "subnets", "", "ovn-default"))
                .is_some()
        );
        assert!(
            store
                .get(&Key::new("", "namespaces", "", "kube-system"))
                .is_some()
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn invalid_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.json"), "{").unwrap();
        let err = load(dir.path(), &Store::new()).unwrap_err();
        assert!(err.contains("x.json"));
    }
}
