//! `ko-sandbox kubelet`: the scheduler + kubelet + kube-ovn-controller + kube-ovn-cni
//! of pods created through the API after `up`. One background process per sandbox
//! (started by `up`, killed by `down`) that watches pods on the emulator and, for a pod
//! no holder backs yet, picks its node, allocates its address, wires its data plane,
//! adds it to runtime.json and PATCHes it Running; a deleted pod is unwired again.
//! Pods planned by `up` are never touched. The container command is not run: the
//! sandbox has no images, exec runs the host's binaries in the pod's namespaces.

mod place;
pub(crate) mod watch;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api;
use crate::api_subnet;
use crate::background;
use crate::ctx::Ctx;
use crate::objects;
use crate::plan::{self, Pod, Role};
use crate::state::{self, Paths, Recorder};

use place::NotPlaced;

/// A pod this kubelet runs (persisted, so a restarted kubelet adopts its pods).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Managed {
    pub uid: String,
    pub pod: Pod,
    pub containers: Vec<String>,
    pub pid: u32,
}

fn state_file(paths: &Paths) -> std::path::PathBuf {
    paths.dir().join("kubelet.json")
}

fn released_file(paths: &Paths) -> std::path::PathBuf {
    paths.dir().join("kubelet-released.json")
}

/// Pods the kubelet runs now, by `ns/name` (for `status`).
pub fn managed(paths: &Paths) -> BTreeMap<String, Managed> {
    std::fs::read_to_string(state_file(paths))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The running kubelet's pid, if there is one.
pub fn running_pid(paths: &Paths) -> Option<u32> {
    background::running_pid(paths, "kubelet")
}

/// Start the kubelet in the background unless one already runs (`up`, and `up` reusing
/// a sandbox whose kubelet died). Running = it holds its lock and wrote its pid file.
pub fn start(paths: &Paths, rec: &Recorder) -> Result<u32> {
    background::start(
        paths,
        rec,
        "kubelet",
        background::Ready {
            waiting_for: "the sandbox kubelet to start",
            within: Duration::from_secs(10),
            also: &|| true,
        },
    )
}

/// The kubelet's main loop; returns when the sandbox is gone.
pub fn run(paths: &Paths, state_dir: &Path) -> Result<()> {
    let _lock = background::claim(paths, state_dir, "kubelet")?;
    let ctx = Ctx::load(paths.clone())?;
    let port = api::port(paths)?;
    let (tx, rx) = mpsc::channel::<()>();
    // a subnet turning Ready releases the pods waiting for it
    let subnet_tx = tx.clone();
    std::thread::spawn(move || {
        loop {
            let r = watch::resource(port, "/apis/kubeovn.io/v1/subnets", 300, |_| {
                let _ = subnet_tx.send(());
            });
            if r.is_err() {
                std::thread::sleep(Duration::from_secs(5));
            }
            if subnet_tx.send(()).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        // an emulator that is gone must not turn the log into a stream of errors
        let mut pause = Duration::from_secs(1);
        loop {
            let r = watch::pods(port, 300, |_| {
                let _ = tx.send(());
            });
            match r {
                Ok(()) => pause = Duration::from_secs(1),
                Err(e) => {
                    eprintln!(
                        "kubelet: pod watch ended: {e:#}; watching again in {}s",
                        pause.as_secs()
                    );
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
            // A new watch starts with every pod as ADDED: one reconcile covers the gap.
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    let planned_subnets = ctx.plan.subnets.iter().map(|s| s.name.clone()).collect();
    let mut k = Kubelet {
        ctx,
        port,
        planned_subnets,
        pending_subnets: BTreeMap::new(),
        managed: managed(paths),
        refused: HashMap::new(),
        released: std::fs::read_to_string(released_file(paths))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    };
    eprintln!(
        "kubelet of sandbox `{}` running (pid {}), {} pod(s) adopted",
        paths.name,
        std::process::id(),
        k.managed.len()
    );
    loop {
        if !paths.dir().exists() {
            eprintln!("kubelet: the sandbox state directory is gone; exiting");
            return Ok(());
        }
        // Events only wake us up; a periodic pass catches anything a watch gap missed.
        let _ = rx.recv_timeout(Duration::from_secs(5));
        while rx.try_recv().is_ok() {}
        if let Err(e) = k.reconcile() {
            eprintln!("kubelet: {e:#}");
        }
    }
}

/// Objects of a synthetic large cluster (bench/synthetic.py) stand for pods on nodes
/// this kubelet does not run; they are left as written.
fn is_synthetic(obj: &Value) -> bool {
    obj["metadata"]["labels"]["kubectl-ko.io/synthetic"] == "true"
}

/// A pod that could not start: how often wiring failed and when to try again (never
/// for a verdict that cannot change, like an unknown node).
struct Refusal {
    attempts: u32,
    retry_at: Option<Instant>,
}

impl Refusal {
    /// Whether a pod should be (re)tried: never refused, or its retry is due.
    fn due(r: Option<&Refusal>, now: Instant) -> bool {
        r.is_none_or(|r| r.retry_at.is_some_and(|t| now >= t))
    }
}

/// Wiring failures (an ovn-controller restarting, a slow NB) are retried like a
/// kubelet retries a sandbox, a few times.
const WIRE_ATTEMPTS: u32 = 3;
const WIRE_RETRY_AFTER: Duration = Duration::from_secs(10);

struct Kubelet {
    /// The plan, its subnets joined by those created through the API once Ready.
    ctx: Ctx,
    port: u16,
    planned_subnets: BTreeSet<String>,
    /// API subnets not realised (yet): name -> (namespaces, why).
    pending_subnets: BTreeMap<String, (Vec<String>, String)>,
    managed: BTreeMap<String, Managed>,
    /// Pods not running, by uid: not looked at again unless a retry is due.
    refused: HashMap<String, Refusal>,
    /// Addresses of deleted pods, oldest first: handed out again only when nothing
    /// else is free, like Kube-OVN's IPAM, so a peer's stale neighbour entry for an
    /// address never points at a new pod's MAC.
    released: Vec<String>,
}

/// How many released addresses are held back (far fewer than any subnet's size).
const RELEASED_MAX: usize = 1024;

/// A pod to start: where it goes and what it is.
struct Start {
    obj: Value,
    pod: Pod,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Kubelet {
    fn get(&self, path: &str) -> Result<Value> {
        let (code, body) = api::request(self.port, "GET", path, None)?;
        if code != 200 {
            bail!(
                "GET {path} on the emulator answered {code}: {}",
                body.trim()
            );
        }
        serde_json::from_str(&body).with_context(|| format!("parsing the answer to GET {path}"))
    }

    /// Join the Ready API subnets to the plan this kubelet places pods with, note the
    /// others as pending, and drop the deleted ones no managed pod still uses.
    fn refresh_subnets(&mut self) -> Result<BTreeMap<String, Value>> {
        let list = self.get("/apis/kubeovn.io/v1/subnets")?;
        let vlans = self.get("/apis/kubeovn.io/v1/vlans")?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let objs: BTreeMap<String, Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    o.clone(),
                )
            })
            .collect();
        self.pending_subnets.clear();
        for (name, obj) in objs
            .iter()
            .filter(|(n, _)| !self.planned_subnets.contains(*n))
        {
            let realised = api_subnet::from_cr(&self.ctx.plan, obj, &vlans).and_then(|s| {
                match api_subnet::is_ready(obj) {
                    true => Ok(s),
                    false => Err("the controller has not realised it yet".to_string()),
                }
            });
            let plan = &mut self.ctx.plan;
            match realised {
                Ok(s) => match plan.subnets.iter_mut().find(|p| p.name == *name) {
                    Some(p) => *p = s,
                    None => plan.subnets.push(s),
                },
                Err(why) => {
                    let namespaces = obj["spec"]["namespaces"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect();
                    self.pending_subnets.insert(name.clone(), (namespaces, why));
                }
            }
        }
        let in_use: BTreeSet<String> = self
            .managed
            .values()
            .filter_map(|m| m.pod.subnet.clone())
            .collect();
        let (planned, pending) = (&self.planned_subnets, &self.pending_subnets);
        self.ctx.plan.subnets.retain(|s| {
            planned.contains(&s.name)
                || in_use.contains(&s.name)
                || (objs.contains_key(&s.name) && !pending.contains_key(&s.name))
        });
        Ok(objs)
    }

    fn reconcile(&mut self) -> Result<()> {
        let subnet_list = self.refresh_subnets()?;
        let pods = self.get("/api/v1/pods")?;
        let items: Vec<Value> = pods["items"].as_array().cloned().unwrap_or_default();
        let planned: BTreeSet<String> = self.ctx.plan.pods.iter().map(|p| p.key()).collect();
        let key_of = |p: &Value| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or("")
            )
        };
        let uid_of = |p: &Value| p["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let live: HashMap<String, String> = items.iter().map(|p| (key_of(p), uid_of(p))).collect();

        // Deleted (or deleted and recreated under the same name): unwire the old one.
        let gone: Vec<Managed> = self
            .managed
            .iter()
            .filter(|(k, m)| live.get(*k) != Some(&m.uid))
            .map(|(_, m)| m.clone())
            .collect();
        if !gone.is_empty() {
            self.stop(&gone);
        }
        let live_uids: BTreeSet<&String> = live.values().collect();
        self.refused.retain(|uid, _| live_uids.contains(uid));

        let new: Vec<&Value> = items
            .iter()
            .filter(|p| !planned.contains(&key_of(p)))
            .filter(|p| !self.managed.contains_key(&key_of(p)))
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| !is_synthetic(p))
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .filter(|p| Refusal::due(self.refused.get(&uid_of(p)), Instant::now()))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let nodes = self.get("/api/v1/nodes")?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut load = vec![0usize; self.ctx.plan.nodes.len()];
        for m in self.managed.values() {
            if let Some(l) = load.get_mut(m.pod.node) {
                *l += 1;
            }
        }
        let mut taken: BTreeSet<String> = self.managed.values().flat_map(|m| m.pod.ips()).collect();
        let mut starts = Vec::new();
        for obj in new {
            match self.place(obj, &nodes, &load, &items, &taken, &subnet_list) {
                Ok(s) => {
                    if let Some(l) = load.get_mut(s.pod.node) {
                        *l += 1;
                    }
                    if !s.pod.host_network {
                        taken.extend(s.pod.ips());
                    }
                    starts.push(s);
                }
                Err(np) => self.refuse(obj, &np, false),
            }
        }
        self.start_all(starts)
    }

    /// Decide node, subnet and addresses of a new pod.
    fn place(
        &self,
        obj: &Value,
        nodes: &[Value],
        load: &[usize],
        items: &[Value],
        taken: &BTreeSet<String>,
        subnet_objs: &BTreeMap<String, Value>,
    ) -> Result<Start, NotPlaced> {
        let plan = &self.ctx.plan;
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("");
        place::valid_names(name, ns)?;
        let node = place::schedule(plan, obj, nodes, load)?;
        let containers: Vec<String> = obj["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        let images: Vec<String> = obj["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["image"].as_str().unwrap_or("").to_string())
            .collect();
        let Some(first) = containers.first().cloned() else {
            return Err(place::sandbox_failed("the pod has no containers".into()));
        };
        // Start from a planned workload pod so fields added to Pod later get their
        // workload defaults, then set everything that describes this pod.
        let Some(template) = plan.pods.iter().find(|p| p.role == Role::Workload) else {
            return Err(place::sandbox_failed(
                "the sandbox plan has no workload pod to start from".into(),
            ));
        };
        let n = &plan.nodes[node];
        let mut pod = template.clone();
        pod.name = name.to_string();
        pod.namespace = ns.to_string();
        pod.node = node;
        pod.container = first;
        pod.image = images.first().cloned().unwrap_or_default();
        pod.labels = obj["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        pod.owner = None;
        pod.uid = uid.to_string();
        pod.host_network = obj["spec"]["hostNetwork"].as_bool().unwrap_or(false);
        if pod.host_network {
            pod.subnet = None;
            pod.ip4 = n.ip4.clone();
            pod.ip6 = n.ip6.clone();
            pod.mac = String::new();
            pod.netns = n.netns.clone();
            pod.veth = None;
        } else {
            let s = place::subnet(plan, &self.pending_subnets, obj)?;
            // the pod's own annotations are its request, not another pod's address
            let others: Vec<Value> = items
                .iter()
                .filter(|p| p["metadata"]["uid"].as_str() != Some(uid))
                .cloned()
                .collect();
            let mut used = place::used_ips(plan, s, subnet_objs.get(&s.name), &others);
            used.extend(taken.iter().cloned());
            let annotation = |k: &str| obj["metadata"]["annotations"][k].as_str();
            let (ip4, ip6) = match annotation("ovn.kubernetes.io/ip_address") {
                Some(asked) => place::requested(s, asked, &used)?,
                None => {
                    let mut avoid = used.clone();
                    avoid.extend(self.released.iter().cloned());
                    match place::allocate(s, &avoid) {
                        Ok(a) => a,
                        Err(_) => place::allocate(s, &used)?,
                    }
                }
            };
            let mac = match annotation("ovn.kubernetes.io/mac_address") {
                Some(asked) => place::requested_mac(asked)?,
                None => place::mac(&plan.name, ns, name, uid),
            };
            let seed = format!("{}/apipod/{ns}/{name}/{uid}", plan.name);
            pod.subnet = Some(s.name.clone());
            pod.ip4 = ip4;
            pod.ip6 = ip6;
            pod.mac = mac;
            pod.netns = format!("{}-{name}.{ns}", plan.name);
            pod.veth = Some(plan::veth_for(&seed));
        }
        Ok(Start {
            obj: obj.clone(),
            pod,
            containers,
            images,
        })
    }

    /// Wire the pods concurrently (a burst of pods must not queue behind each other),
    /// then publish them: runtime.json first, so exec works once the pod says Running.
    fn start_all(&mut self, starts: Vec<Start>) -> Result<()> {
        let ctx = &self.ctx;
        let results: Vec<Result<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = starts
                .iter()
                .map(|st| s.spawn(move || wire::wire(ctx, &st.pod)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a pod wiring thread panicked")))
                })
                .collect()
        });
        let mut ok = Vec::new();
        for (st, r) in starts.into_iter().zip(results) {
            match r {
                Ok(pid) => {
                    self.managed.insert(
                        st.pod.key(),
                        Managed {
                            uid: st.pod.uid.clone(),
                            pod: st.pod.clone(),
                            containers: st.containers.clone(),
                            pid,
                        },
                    );
                    ok.push(st);
                }
                Err(e) => {
                    eprintln!("kubelet: starting pod {} failed: {e:#}", st.pod.key());
                    let pid = self.ctx.pid(&st.pod).ok();
                    if let Err(c) = wire::unwire(&self.ctx, &st.pod, pid) {
                        eprintln!("kubelet: {c:#}");
                    }
                    let np =
                        place::sandbox_failed(format!("the sandbox could not wire the pod: {e:#}"));
                    self.refuse(&st.obj, &np, true);
                }
            }
        }
        self.save()?;
        self.count_subnets(ok.iter().filter_map(|st| st.pod.subnet.clone()));
        if ok.iter().any(|st| !st.pod.host_network) {
            // every chassis, not only the pod's own, has the new ports before the pods
            // say Ready: a cross-node ping right after `kubectl wait` must work
            if let Err(e) =
                crate::nb::nbctl_timeout(&self.ctx, &crate::argv!["--wait=hv", "sync"], 20)
            {
                eprintln!("kubelet: ovn-nbctl --wait=hv sync: {e:#}");
            }
        }
        for st in &ok {
            self.publish(st);
        }
        Ok(())
    }

    fn stop(&mut self, gone: &[Managed]) {
        // Withdraw the runtime.json entries before killing the holders, so the
        // emulator never sees a dead holder under a name that may already belong
        // to a recreated pod (it would mark the new pod Failed).
        for m in gone {
            self.managed.remove(&m.pod.key());
        }
        if let Err(e) = self.save() {
            eprintln!("kubelet: {e:#}");
        }
        let ctx = &self.ctx;
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let hs: Vec<_> = gone
                .iter()
                .map(|m| s.spawn(move || wire::unwire(ctx, &m.pod, Some(m.pid))))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a pod cleanup thread panicked")))
                })
                .collect()
        });
        for (m, r) in gone.iter().zip(results) {
            if let Err(e) = r {
                eprintln!("kubelet: {e:#}");
            }
            if !m.pod.host_network {
                let ips = m.pod.ips();
                self.released.retain(|ip| !ips.contains(ip));
                self.released.extend(ips);
                let path = format!("/apis/kubeovn.io/v1/ips/{}", m.pod.lsp());
                let _ = api::request(self.port, "DELETE", &path, None);
            }
            eprintln!("kubelet: pod {} removed", m.pod.key());
        }
        if let Err(e) = self.save() {
            eprintln!("kubelet: {e:#}");
        }
        self.count_subnets(gone.iter().filter_map(|m| m.pod.subnet.clone()));
    }

    /// Bring the address counters of these subnets' status up to date, as
    /// kube-ovn-controller does (`kubectl get subnets` shows them).
    fn count_subnets(&self, names: impl Iterator<Item = String>) {
        let names: BTreeSet<String> = names.collect();
        for name in names {
            let Some(s) = self.ctx.plan.subnet(&name) else {
                continue;
            };
            let extra = self
                .managed
                .values()
                .filter(|m| m.pod.subnet.as_deref() == Some(name.as_str()))
                .count();
            let patch = json!({"status": objects::subnet_usage(&self.ctx.plan, s, extra)});
            let body = serde_json::to_vec(&patch).unwrap_or_default();
            let path = format!("/apis/kubeovn.io/v1/subnets/{name}/status");
            let r = api::request(
                self.port,
                "PATCH",
                &path,
                Some(("application/merge-patch+json", &body)),
            );
            match r {
                Ok((code, _)) if (200..300).contains(&code) => {}
                Ok((code, text)) => {
                    eprintln!("kubelet: PATCH {path} answered {code}: {}", text.trim())
                }
                Err(e) => eprintln!("kubelet: {e:#}"),
            }
        }
    }

    /// kubelet.json and the runtime.json entries of the managed pods.
    fn save(&mut self) -> Result<()> {
        state::write_json(&state_file(&self.ctx.paths), &self.managed)?;
        let excess = self.released.len().saturating_sub(RELEASED_MAX);
        self.released.drain(..excess);
        state::write_json(&released_file(&self.ctx.paths), &self.released)?;
        let rt_path = self.ctx.paths.api().join("runtime.json");
        let mut rt: Value = std::fs::read_to_string(&rt_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({"pods": {}}));
        if !rt["pods"].is_object() {
            rt["pods"] = json!({});
        }
        let planned: BTreeSet<String> = self.ctx.plan.pods.iter().map(|p| p.key()).collect();
        if let Some(map) = rt["pods"].as_object_mut() {
            map.retain(|k, _| planned.contains(k) || self.managed.contains_key(k));
            for (k, m) in &self.managed {
                let log = self.ctx.container_log(&m.pod).display().to_string();
                let logs: serde_json::Map<String, Value> = m
                    .containers
                    .iter()
                    .map(|c| (c.clone(), json!(log)))
                    .collect();
                map.insert(
                    k.clone(),
                    json!({"pid": m.pid, "containers": m.containers, "logs": logs, "uid": m.uid}),
                );
            }
        }
        state::write_json(&rt_path, &rt)
    }

    /// Annotations, IP CR, node, addresses and Running status of a started pod.
    fn publish(&self, st: &Start) {
        let plan = &self.ctx.plan;
        let p = &st.pod;
        let n = &plan.nodes[p.node];
        if !p.host_network
            && let Some(s) = &p.subnet
        {
            let mut cr = objects::ip_cr(
                plan,
                &p.lsp(),
                s,
                &p.name,
                &p.namespace,
                &n.name,
                &p.ips(),
                &p.mac,
                "",
            );
            if let Some(m) = cr["metadata"].as_object_mut() {
                // the emulator stamps these like a real server
                for f in ["uid", "creationTimestamp", "resourceVersion"] {
                    m.remove(f);
                }
            }
            let body = serde_json::to_vec(&cr).unwrap_or_default();
            let r = api::request(
                self.port,
                "POST",
                "/apis/kubeovn.io/v1/ips",
                Some(("application/json", &body)),
            );
            if let Ok((code, text)) = r
                && !(200..300).contains(&code)
                && code != 409
            {
                eprintln!(
                    "kubelet: creating IP {} answered {code}: {}",
                    p.lsp(),
                    text.trim()
                );
            }
        }
        let now = now();
        let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
        let statuses: Vec<Value> = st
            .containers
            .iter()
            .zip(st.images.iter())
            .map(|(c, image)| {
                json!({
                    "name": c, "ready": true, "started": true, "restartCount": 0,
                    "image": image,
                    "imageID": format!("{image}@sha256:{:064x}", plan::fnv(image)),
                    "containerID": format!("containerd://{:016x}{:016x}", plan::fnv(&p.uid), plan::fnv(c)),
                    "state": {"running": {"startedAt": now}},
                })
            })
            .collect();
        let ips: Vec<Value> = p.ips().iter().map(|ip| json!({"ip": ip})).collect();
        let host_ips: Vec<Value> = n.ips().iter().map(|ip| json!({"ip": ip})).collect();
        let patch = json!({
            "metadata": {"annotations": objects::pod_annotations(plan, p)},
            "spec": {"nodeName": n.name},
            "status": {
                "phase": "Running",
                "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
                "hostIP": n.ip4, "hostIPs": host_ips,
                "podIP": p.ip4, "podIPs": ips,
                "startTime": now, "qosClass": "BestEffort",
                "containerStatuses": statuses,
            },
        });
        let msg = format!("Successfully assigned {} to {}", p.key(), n.name);
        self.event(&st.obj, "Normal", "Scheduled", &msg, None);
        for c in &st.containers {
            let msg = format!(
                "Started container {c} (the sandbox runs no image: exec runs the host's binaries)"
            );
            self.event(&st.obj, "Normal", "Started", &msg, Some(&n.name));
        }
        match api::patch_pod(&self.ctx.paths, &p.namespace, &p.name, &patch) {
            Ok(()) => eprintln!(
                "kubelet: pod {} running on {} ({})",
                p.key(),
                n.name,
                p.ips().join(",")
            ),
            Err(e) => eprintln!("kubelet: {e:#}"),
        }
    }

    /// An Event about the pod, as the scheduler (no host) or the kubelet of `host`
    /// reports it, so `kubectl describe pod` and `kubectl get events` tell the story.
    fn event(&self, pod: &Value, kind: &str, reason: &str, message: &str, host: Option<&str>) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let now = now();
        let source = match host {
            Some(h) => json!({"component": "kubelet", "host": h}),
            None => json!({"component": "default-scheduler"}),
        };
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
                               "uid": pod["metadata"]["uid"]},
            "type": kind, "reason": reason, "message": message, "source": source,
            "reportingComponent": source["component"], "reportingInstance": host.unwrap_or(""),
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        let body = serde_json::to_vec(&ev).unwrap_or_default();
        let path = format!("/api/v1/namespaces/{ns}/events");
        match api::request(self.port, "POST", &path, Some(("application/json", &body))) {
            Ok((code, _)) if (200..300).contains(&code) => {}
            Ok((code, text)) => eprintln!("kubelet: POST {path} answered {code}: {}", text.trim()),
            Err(e) => eprintln!("kubelet: {e:#}"),
        }
    }

    /// Leave the pod Pending with the reason; `retry`: try again later, a few times.
    fn refuse(&mut self, obj: &Value, np: &NotPlaced, retry: bool) {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let r = self.refused.entry(uid).or_insert(Refusal {
            attempts: 0,
            retry_at: None,
        });
        if np.waiting {
            // on its way: tried on every pass, the pod told once
            r.retry_at = Some(Instant::now());
            let first = r.attempts == 0;
            r.attempts = 1;
            if first {
                self.tell_not_started(obj, np);
            }
            return;
        }
        r.attempts += 1;
        r.retry_at =
            (retry && r.attempts < WIRE_ATTEMPTS).then(|| Instant::now() + WIRE_RETRY_AFTER);
        let mut np = np.clone();
        if retry {
            np.message = match r.retry_at {
                Some(_) => format!(
                    "{} (attempt {} of {WIRE_ATTEMPTS}; retrying in {}s)",
                    np.message,
                    r.attempts,
                    WIRE_RETRY_AFTER.as_secs()
                ),
                None => format!(
                    "{} (attempt {} of {WIRE_ATTEMPTS}; giving up: delete and recreate the pod)",
                    np.message, r.attempts
                ),
            };
        }
        self.tell_not_started(obj, &np);
    }

    /// The pod's Pending condition and Warning event for why it did not start.
    fn tell_not_started(&self, obj: &Value, np: &NotPlaced) {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        eprintln!("kubelet: pod {ns}/{name} not started: {}", np.message);
        let condition = if np.reason == "Unschedulable" {
            json!({"type": "PodScheduled", "status": "False", "reason": np.reason,
                   "message": np.message, "lastProbeTime": null, "lastTransitionTime": now()})
        } else {
            json!({"type": "PodReadyToStartContainers", "status": "False", "reason": np.reason,
                   "message": np.message, "lastProbeTime": null, "lastTransitionTime": now()})
        };
        if np.reason == "Unschedulable" {
            self.event(obj, "Warning", "FailedScheduling", &np.message, None);
        } else {
            let node = obj["spec"]["nodeName"].as_str();
            self.event(obj, "Warning", np.reason, &np.message, node);
        }
        let patch = json!({"status": {"phase": "Pending", "conditions": [condition]}});
        if let Err(e) = api::patch_pod(&self.ctx.paths, ns, name, &patch) {
            eprintln!("kubelet: {e:#}");
        }
    }
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    plan::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_pods_are_retried_only_when_due() {
        let now = Instant::now();
        assert!(Refusal::due(None, now));
        let never = Refusal {
            attempts: 1,
            retry_at: None,
        };
        assert!(!Refusal::due(Some(&never), now));
        let later = Refusal {
            attempts: 1,
            retry_at: Some(now + WIRE_RETRY_AFTER),
        };
        assert!(!Refusal::due(Some(&later), now));
        assert!(Refusal::due(Some(&later), now + WIRE_RETRY_AFTER));
    }
}
