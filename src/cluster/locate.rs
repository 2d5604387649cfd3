//! Finding the pods Kube-OVN commands run in: RAFT/northd leaders, the
//! per-node ovs-ovn and kube-ovn-cni pods, the IC database pods.

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use super::error::{Error, Result};
use super::{Cluster, container};

/// A pod we will exec into: enough to address it and to explain errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    /// Node the pod is scheduled on, if any.
    pub node: Option<String>,
    /// Pod IP (for hostNetwork pods: the node IP).
    pub ip: Option<String>,
    /// Container names in spec order (the first is kubectl's default).
    pub containers: Vec<String>,
}

impl PodRef {
    pub fn from_pod(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        PodRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
            containers: spec
                .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// The container to use when the caller has a preferred name: that one if
    /// the pod has it, otherwise the pod's default (first) container.
    pub fn container_or_default<'a>(&'a self, preferred: &'a str) -> &'a str {
        if self.containers.iter().any(|c| c == preferred) {
            preferred
        } else {
            self.containers
                .first()
                .map(String::as_str)
                .unwrap_or(preferred)
        }
    }
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Which leader label to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leader {
    Nb,
    Sb,
    Northd,
    IcNb,
    IcSb,
}

impl Leader {
    pub fn label(self) -> &'static str {
        match self {
            Leader::Nb => "ovn-nb-leader",
            Leader::Sb => "ovn-sb-leader",
            Leader::Northd => "ovn-northd-leader",
            Leader::IcNb => "ovn-ic-nb-leader",
            Leader::IcSb => "ovn-ic-sb-leader",
        }
    }

    /// The `app` label of the pods that carry this leader label.
    pub fn app(self) -> &'static str {
        match self {
            Leader::Nb | Leader::Sb | Leader::Northd => "ovn-central",
            Leader::IcNb | Leader::IcSb => "ovn-ic-server",
        }
    }

    /// The container the database tools run in.
    pub fn container(self) -> &'static str {
        match self {
            Leader::Nb | Leader::Sb | Leader::Northd => container::OVN_CENTRAL,
            Leader::IcNb | Leader::IcSb => container::OVN_IC_SERVER,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Leader::Nb => "OVN NB",
            Leader::Sb => "OVN SB",
            Leader::Northd => "ovn-northd",
            Leader::IcNb => "OVN IC NB",
            Leader::IcSb => "OVN IC SB",
        }
    }
}

/// Why a pod cannot be used for exec, or None when it is Running and all
/// its containers are ready (upstream's `1/1 Running` test).
pub fn unusable_reason(pod: &Pod) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("it is being deleted".into());
    }
    let Some(status) = pod.status.as_ref() else {
        return Some("it has no status yet".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    if phase != "Running" {
        let reason = status
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        return Some(format!("phase is {phase}{reason}, not Running"));
    }
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    let not_ready: Vec<&str> = statuses
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    if !not_ready.is_empty() {
        return Some(format!("container(s) not ready: {}", not_ready.join(", ")));
    }
    if statuses.is_empty() {
        return Some("no container status reported".into());
    }
    None
}

impl Cluster {
    /// The ready pod carrying `<leader>=true`, retrying while an election settles.
    pub async fn leader(&self, which: Leader) -> Result<PodRef> {
        let selector = format!("app={},{}=true", which.app(), which.label());
        let mut last_detail = String::new();
        for attempt in 1..=self.leader_tries {
            let pods = self
                .list_pods(Some(&self.namespace), Some(&selector))
                .await?;
            let mut rejected = Vec::new();
            let mut usable: Vec<&Pod> = Vec::new();
            for p in &pods {
                match unusable_reason(p) {
                    None => usable.push(p),
                    Some(why) => rejected.push(format!(
                        "{} {}",
                        p.metadata.name.as_deref().unwrap_or("?"),
                        why
                    )),
                }
            }
            // Several "leaders" happen briefly after a failover (#1667): take the
            // first by name so repeated calls agree.
            usable.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            if let Some(p) = usable.first() {
                return Ok(PodRef::from_pod(p));
            }
            last_detail = if pods.is_empty() {
                format!("no pod has labels {selector}")
            } else {
                format!("labelled pods are not usable: {}", rejected.join("; "))
            };
            if attempt < self.leader_tries {
                tracing::debug!(attempt, %selector, "no {} leader yet", which.describe());
                tokio::time::sleep(self.leader_pause).await;
            }
        }
        // Say whether Kube-OVN is here at all: the common cause is the namespace.
        let any = self
            .list_pods(Some(&self.namespace), Some(&format!("app={}", which.app())))
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        if any == 0 {
            last_detail = format!(
                "there are no app={} pods in namespace {} at all (is Kube-OVN installed in another namespace?)",
                which.app(),
                self.namespace
            );
        }
        Err(Error::NoLeader {
            component: which.describe().into(),
            namespace: self.namespace.clone(),
            tries: self.leader_tries,
            detail: last_detail,
        })
    }

    pub async fn nb_leader(&self) -> Result<PodRef> {
        self.leader(Leader::Nb).await
    }

    pub async fn sb_leader(&self) -> Result<PodRef> {
        self.leader(Leader::Sb).await
    }

    pub async fn northd_leader(&self) -> Result<PodRef> {
        self.leader(Leader::Northd).await
    }

    pub async fn ic_nb_leader(&self) -> Result<PodRef> {
        self.leader(Leader::IcNb).await
    }

    pub async fn ic_sb_leader(&self) -> Result<PodRef> {
        self.leader(Leader::IcSb).await
    }

    /// All `app=ovn-central` pods (whatever their state), sorted by name.
    pub async fn central_pods(&self) -> Result<Vec<Pod>> {
        let mut pods = self
            .list_pods(Some(&self.namespace), Some("app=ovn-central"))
            .await?;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        if pods.is_empty() {
            return Err(Error::NotFound {
                what: format!("app=ovn-central pods in namespace {}", self.namespace),
                detail: String::new(),
                hint: "pass --kube-ovn-namespace (or KUBE_OVN_NS) if Kube-OVN runs in another namespace".into(),
            });
        }
        Ok(pods)
    }

    /// The usable `app=ovs` (ovs-ovn) pod on `node`.
    pub async fn ovs_pod_on(&self, node: &str) -> Result<PodRef> {
        self.daemon_pod_on("ovs", "ovs-ovn", node).await
    }

    /// The usable `app=kube-ovn-cni` pod on `node`.
    pub async fn cni_pod_on(&self, node: &str) -> Result<PodRef> {
        self.daemon_pod_on("kube-ovn-cni", "kube-ovn-cni", node)
            .await
    }

    async fn daemon_pod_on(&self, app: &str, what: &str, node: &str) -> Result<PodRef> {
        super::validate_name("node name", node)?;
        let selector = format!("app={app}");
        // The pod list and the node check are independent: ask both at once.
        let (pods, node_check) = tokio::join!(
            self.list_pods(Some(&self.namespace), Some(&selector)),
            self.get_node(node)
        );
        let pods = pods?;
        let on_node: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect();
        if on_node.is_empty() {
            // An unknown node is the more useful message.
            node_check?;
            return Err(Error::NotFound {
                what: format!("{what} pod (app={app}) on node {node}"),
                detail: format!(" in namespace {}", self.namespace),
                hint: format!(
                    "`kubectl -n {} get pods -l app={app} -o wide`; pass --kube-ovn-namespace if Kube-OVN runs elsewhere",
                    self.namespace
                ),
            });
        }
        let mut reasons = Vec::new();
        for p in &on_node {
            match unusable_reason(p) {
                None => return Ok(PodRef::from_pod(p)),
                Some(why) => reasons.push((p, why)),
            }
        }
        let (p, why) = &reasons[0];
        let name = p.metadata.name.clone().unwrap_or_default();
        Err(Error::NotRunning {
            pod: format!("{}/{name} ({what} on {node})", self.namespace),
            namespace: self.namespace.clone(),
            name,
            detail: why.clone(),
        })
    }

    /// A pod that must be usable for exec, or NotRunning explaining why not.
    pub async fn usable_pod(&self, namespace: &str, name: &str) -> Result<PodRef> {
        let pod = self.get_pod(namespace, name).await?;
        if let Some(why) = unusable_reason(&pod) {
            return Err(Error::NotRunning {
                pod: format!("{namespace}/{name}"),
                namespace: namespace.into(),
                name: name.into(),
                detail: why,
            });
        }
        Ok(PodRef::from_pod(&pod))
    }
}
