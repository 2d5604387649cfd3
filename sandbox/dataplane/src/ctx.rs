//! What every step of `up`, `fault` and `down` shares: paths, plan, recorder, pod pids.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde_json::json;

use crate::plan::{Plan, Pod, Role};
use crate::state::{self, Created, Paths, Recorder};

pub struct Ctx {
    pub paths: Paths,
    pub plan: Plan,
    pub rec: Recorder,
    pub pids: Mutex<BTreeMap<String, u32>>,
}

impl Ctx {
    /// Where an ovn-central pod's `/var/log/ovn` lives: the node's directory, so the
    /// ovs-ovn pod of that node sees ovsdb-server-nb/sb.log and ovn-northd.log next to
    /// ovn-controller.log as on a real node. Only the first ovn-central pod of a node
    /// can share it: with fewer than three nodes a node carries several members whose
    /// log files have the same names (a real cluster never does), so the others keep
    /// their own.
    pub fn central_log_dir(&self, pod: &Pod) -> PathBuf {
        let first_on_node = self
            .plan
            .pods
            .iter()
            .find(|p| p.role == Role::OvnCentral && p.node == pod.node)
            .is_some_and(|p| p.key() == pod.key());
        match self.ovs_pod(pod.node) {
            Ok(ovs) if first_on_node => self.pod_dir(ovs, "log-ovn"),
            _ => self.pod_dir(pod, "log-ovn"),
        }
    }

    pub fn new(paths: Paths, plan: Plan) -> Self {
        let rec = Recorder::new(&paths);
        Ctx {
            paths,
            plan,
            rec,
            pids: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reload a running sandbox (status, fault): pids from runtime.json.
    pub fn load(paths: Paths) -> Result<Self> {
        let plan = state::load_plan(&paths)?;
        let ctx = Ctx::new(paths, plan);
        let rt = std::fs::read_to_string(ctx.paths.api().join("runtime.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&rt)
            && let Some(pods) = v.get("pods").and_then(|p| p.as_object())
        {
            let mut m = ctx.lock_pids()?;
            for (k, p) in pods {
                if let Some(pid) = p.get("pid").and_then(|x| x.as_u64()) {
                    m.insert(k.clone(), pid as u32);
                }
            }
        }
        Ok(ctx)
    }

    fn lock_pids(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, u32>>> {
        self.pids
            .lock()
            .map_err(|_| anyhow::anyhow!("pid table lock poisoned"))
    }

    pub fn set_pid(&self, pod: &Pod, pid: u32) -> Result<()> {
        self.rec.record(&Created::Pid {
            pid,
            what: format!("holder {}", pod.key()),
        })?;
        self.lock_pids()?.insert(pod.key(), pid);
        Ok(())
    }

    pub fn pid(&self, pod: &Pod) -> Result<u32> {
        self.lock_pids()?.get(&pod.key()).copied().with_context(|| {
            format!(
                "pod {} has no holder process recorded; is the sandbox up?",
                pod.key()
            )
        })
    }

    pub fn pod_dir(&self, pod: &Pod, sub: &str) -> PathBuf {
        self.paths.pod_dir(&pod.dir_name()).join(sub)
    }

    /// The image root `pod` runs from, or None for the host's filesystem.
    pub fn image_of(&self, pod: &Pod) -> Option<&std::path::Path> {
        self.plan
            .image
            .as_deref()
            .filter(|_| pod.runs_image())
            .map(std::path::Path::new)
    }

    /// The ovs-ovn pod of a node (where OVS and ovn-controller run).
    pub fn ovs_pod(&self, node: usize) -> Result<&Pod> {
        self.plan
            .pod_on(Role::OvsOvn, node)
            .with_context(|| format!("no ovs-ovn pod planned on node #{node}"))
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.paths.logs().join(name)
    }

    /// Log file the emulator serves for `kubectl logs` of this pod.
    pub fn container_log(&self, pod: &Pod) -> PathBuf {
        match pod.role {
            Role::OvnCentral => self.central_log_dir(pod).join("ovsdb-server-nb.log"),
            Role::OvsOvn => {
                let ovs = self.ovs_pod(pod.node).map(|p| self.pod_dir(p, "log-ovs"));
                ovs.unwrap_or_default().join("ovs-vswitchd.log")
            }
            Role::Cni => self.pod_dir(pod, "log-kube-ovn").join("kube-ovn-cni.log"),
            Role::Controller => self
                .pod_dir(pod, "log-kube-ovn")
                .join("kube-ovn-controller.log"),
            Role::Workload => self.log_file(&format!("{}.log", pod.dir_name())),
        }
    }

    /// `<state>/api/runtime.json` for the emulator (CONTRACT.md). Entries of pods
    /// outside the plan (the kubelet's) are kept.
    pub fn write_runtime(&self) -> Result<()> {
        let pids = self.lock_pids()?.clone();
        let path = self.paths.api().join("runtime.json");
        let mut pods: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("pods").and_then(|p| p.as_object()).cloned())
            .unwrap_or_default();
        pods.retain(|k, _| self.plan.pod(k).is_none());
        for p in &self.plan.pods {
            let Some(pid) = pids.get(&p.key()) else {
                continue;
            };
            pods.insert(
                p.key(),
                json!({
                    "pid": pid,
                    "containers": [p.container],
                    "logs": { p.container.clone(): self.container_log(p).display().to_string() },
                }),
            );
        }
        state::write_json(&path, &json!({ "pods": pods }))
    }
}
