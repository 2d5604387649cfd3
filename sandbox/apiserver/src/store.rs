//! The object store: every object keyed by (group, plural, namespace, name), one global
//! resourceVersion counter, and a watch event stream (broadcast + a short replay history
//! so a watch that starts from a list's resourceVersion misses nothing).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::status::ApiError;

/// How many past events a new watch can replay.
const HISTORY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: String,
    pub plural: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(group: &str, plural: &str, namespace: &str, name: &str) -> Self {
        Self {
            group: group.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: EventType,
    pub key: Arc<Key>,
    pub object: Arc<Value>,
}

struct Inner {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<WatchEvent>,
}

pub struct Store {
    inner: RwLock<Inner>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A v4-shaped UUID from the kernel's generator, so no extra crate is needed.
fn new_uid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let n = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
            format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
        })
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
            }),
            events,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an object half-written (all
        // mutations build the new value first), so a poisoned lock is still usable.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.read().objects.get(key).cloned()
    }

    /// Objects of one resource, optionally in one namespace, in name order.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.read();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.is_none_or(|ns| ns.is_empty() || k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Visits objects of one resource in key order, starting strictly after `after`
    /// (namespace, name), until `visit` returns false. Returns the resourceVersion the
    /// visit saw. Pagination walks this instead of cloning the whole resource per page.
    pub fn visit_after(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        mut visit: impl FnMut(&Value) -> bool,
    ) -> u64 {
        let inner = self.read();
        let start = match after {
            Some((ns, name)) => std::ops::Bound::Excluded(Key::new(group, plural, ns, name)),
            None => std::ops::Bound::Included(Key::new(group, plural, "", "")),
        };
        for (k, v) in inner.objects.range((start, std::ops::Bound::Unbounded)) {
            if k.group != group || k.plural != plural {
                break;
            }
            if namespace.is_some_and(|ns| !ns.is_empty() && k.namespace != ns) {
                continue;
            }
            if !visit(v) {
                break;
            }
        }
        inner.rv
    }

    fn record(inner: &mut Inner, events: &broadcast::Sender<WatchEvent>, ev: WatchEvent) {
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        // No receivers is normal (nobody watching).
        let _ = events.send(ev);
    }

    /// Creates an object, filling uid, creationTimestamp, resourceVersion, generation.
    pub fn create(&self, key: Key, mut obj: Value) -> Result<Value, ApiError> {
        let mut inner = self.write();
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&key.plural, &key.group, &key.name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(key.name));
        if key.namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        if !meta.get("uid").is_some_and(Value::is_string) {
            meta.insert("uid".into(), json!(new_uid()));
        }
        if !meta.get("creationTimestamp").is_some_and(Value::is_string) {
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        }
        if !meta.contains_key("generation") && obj.get("spec").is_some() {
            metadata_mut(&mut obj).insert("generation".into(), json!(1));
        }
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key.clone(), obj.clone());
        let ev = WatchEvent {
            rv,
            kind: EventType::Added,
            key: Arc::new(key),
            object: Arc::new(obj.clone()),
        };
        Self::record(&mut inner, &self.events, ev);
        Ok(obj)
    }

    /// Applies `change` to the stored object. The change sees a copy; if it returns Ok,
    /// the copy replaces the original (identity fields restored, resourceVersion bumped,
    /// generation bumped when spec changed). Unchanged results emit no event.
    pub fn update<F>(&self, key: &Key, change: F) -> Result<Value, ApiError>
    where
        F: FnOnce(&mut Value) -> Result<(), ApiError>,
    {
        let mut inner = self.write();
        let old = inner
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.plural, &key.group, &key.name))?;
        let mut new = old.clone();
        change(&mut new)?;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the updated object is not a JSON object",
            ));
        }
        // Identity is not patchable.
        for field in ["apiVersion", "kind"] {
            match old.get(field) {
                Some(v) => new[field] = v.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            match old["metadata"].get(field) {
                Some(v) => {
                    metadata_mut(&mut new).insert(field.into(), v.clone());
                }
                None => {
                    metadata_mut(&mut new).remove(field);
                }
            }
        }
        let old_rv = old["metadata"]["resourceVersion"].clone();
        metadata_mut(&mut new).insert("resourceVersion".into(), old_rv);
        if let Some(g) = old["metadata"].get("generation") {
            metadata_mut(&mut new).insert("generation".into(), g.clone());
        }
        if new == old {
            return Ok(old);
        }
        if new.get("spec") != old.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata_mut(&mut new).insert("generation".into(), json!(g));
        }
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key.clone(), new.clone());
        let ev = WatchEvent {
            rv,
            kind: EventType::Modified,
            key: Arc::new(key.clone()),
            object: Arc::new(new.clone()),
        };
        Self::record(&mut inner, &self.events, ev);
        Ok(new)
    }

    pub fn delete(&self, key: &Key) -> Result<Value, ApiError> {
        let mut inner = self.write();
        let mut obj = inner
            .objects
            .remove(key)
            .ok_or_else(|| ApiError::not_found(&key.plural, &key.group, &key.name))?;
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let ev = WatchEvent {
            rv,
            kind: EventType::Deleted,
            key: Arc::new(key.clone()),
            object: Arc::new(obj.clone()),
        };
        Self::record(&mut inner, &self.events, ev);
        Ok(obj)
    }

    /// Starts a watch: past events after `since_rv` (if given) plus a live receiver,
    /// taken atomically so no event falls between them.
    pub fn subscribe(
        &self,
        since_rv: Option<u64>,
    ) -> (Vec<WatchEvent>, broadcast::Receiver<WatchEvent>) {
        let inner = self.read();
        let past = match since_rv {
            Some(rv) => inner
                .history
                .iter()
                .filter(|e| e.rv > rv)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (past, self.events.subscribe())
    }

    /// Every key of a namespace's objects, workloads (group `apps`) first.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .read()
            .objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.group != "apps");
        keys
    }

    /// Every key currently stored (for background tasks that scan objects).
    pub fn keys(&self, group: &str, plural: &str) -> Vec<Key> {
        self.read()
            .objects
            .keys()
            .filter(|k| k.group == group && k.plural == plural)
            .cloned()
            .collect()
    }
}

/// The object's metadata map, created if absent.
pub fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_update_delete_emit_events_with_increasing_versions() {
        let s = Store::new();
        let k = Key::new("", "pods", "default", "p");
        let (_, mut rx) = s.subscribe(None);
        let created = s
            .create(
                k.clone(),
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"x": 1}}),
            )
            .unwrap();
        assert_eq!(created["metadata"]["generation"], 1);
        let rv1: u64 = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let updated = s
            .update(&k, |o| {
                o["metadata"]["labels"] = json!({"a": "b"});
                o["metadata"]["name"] = json!("renamed");
                Ok(())
            })
            .unwrap();
        assert_eq!(updated["metadata"]["name"], "p");
        assert_eq!(updated["metadata"]["generation"], 1);
        let rv2: u64 = updated["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv1);
        let spec_changed = s.update(&k, |o| {
            o["spec"]["x"] = json!(2);
            Ok(())
        });
        assert_eq!(spec_changed.unwrap()["metadata"]["generation"], 2);
        s.delete(&k).unwrap();
        assert!(s.get(&k).is_none());
        let kinds: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventType::Added,
                EventType::Modified,
                EventType::Modified,
                EventType::Deleted
            ]
        );
        let (past, _) = s.subscribe(Some(rv1));
        assert_eq!(past.len(), 3);
        assert_eq!(s.delete(&k).unwrap_err().code, 404);
    }

    #[test]
    fn noop_update_keeps_version() {
        let s = Store::new();
        let k = Key::new("", "nodes", "", "n");
        let a = s.create(k.clone(), json!({"metadata": {}})).unwrap();
        let b = s.update(&k, |_| Ok(())).unwrap();
        assert_eq!(a, b);
    }
}
