//! Everything that talks to Kubernetes (kube-rs). Nothing here parses OVN text.
//!
//! # API for the other commands
//!
//! ```text
//! let cluster = Cluster::connect(&ConnectOptions { .. }).await?;   // one client, reused
//! cluster.namespace()                  // Kube-OVN namespace (KUBE_OVN_NS)
//! cluster.nb_leader().await?           // PodRef of the ready NB RAFT leader (retries ~10 s)
//! cluster.sb_leader() / northd_leader() / ic_nb_leader() / ic_sb_leader()
//! cluster.central_pods().await?        // all app=ovn-central pods (any state), sorted by name
//! cluster.ovs_pod_on(node) / cni_pod_on(node)   // app=ovs / app=kube-ovn-cni pod on a node
//! cluster.get_pod(ns, name) / get_node(name) / list_nodes() / list_pods(ns, selector)
//! cluster.list_paged(&api, &lp, what) / list_mapped(..)   every LIST pages 500 at a time
//! cluster.get_subnet(name) / list_subnets() / get_vpc(name) / list_vpcs()   (model.rs types)
//! cluster.exec_capture(&pod, container::OVN_CENTRAL, &argv).await?  -> exec::Output
//! cluster.exec_stream(&pod, container, &argv, stdout_sink, stderr_sink, timeout).await? -> exit code
//! ```
//! Every API call has the per-call timeout from `--timeout`; every error is an
//! [`Error`] that says what was tried and what to do (exit codes: [`Error::exit_code`]).
//! Independent lookups are meant to be awaited concurrently (`tokio::try_join!`).

mod client;
pub mod error;
pub mod exec;
pub mod locate;
pub mod model;
pub mod ovn_db;
mod paging;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};

pub use client::ConnectOptions;
pub use error::{Error, Result};
pub use exec::Output;
pub use locate::{Leader, PodRef, unusable_reason};
pub use model::{NodeNetwork, PodNetwork, Subnet, Vpc};
pub use ovn_db::Db;
pub use paging::PAGE_SIZE;

/// Container names used by Kube-OVN's manifests (facts §3).
pub mod container {
    pub const OVN_CENTRAL: &str = "ovn-central";
    pub const OPENVSWITCH: &str = "openvswitch";
    pub const CNI_SERVER: &str = "cni-server";
    pub const OVN_IC_SERVER: &str = "ovn-ic-server";
}

/// Connection to one cluster, built once per invocation and shared by all lookups.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    namespace: String,
    timeout: Duration,
    /// Tries and pause for leader lookups (upstream: 10 tries, 1 s apart).
    leader_tries: u32,
    leader_pause: Duration,
    /// API server URL, named when it cannot be reached.
    server: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Build the client from kubeconfig/context. Does not contact the API server.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self> {
        let (client, server) = client::build_client(opts).await?;
        let mut c = Self::from_client(client, &opts.namespace, opts.timeout);
        c.server = Some(server);
        Ok(c)
    }

    /// Wrap an existing client (tests, or callers with their own config).
    pub fn from_client(client: Client, namespace: &str, timeout: Duration) -> Self {
        Cluster {
            client,
            namespace: namespace.to_string(),
            timeout,
            leader_tries: 10,
            leader_pause: Duration::from_secs(1),
            server: None,
        }
    }

    /// Change how long leader lookups keep retrying while an election settles.
    pub fn with_leader_retries(mut self, tries: u32, pause: Duration) -> Self {
        self.leader_tries = tries.max(1);
        self.leader_pause = pause;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The namespace Kube-OVN runs in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Run one API call under the per-call timeout, classifying its error.
    pub async fn call<T, F>(&self, what: impl Into<String>, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        let what = what.into();
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::from_kube(what, e).with_server(self.server.as_deref())),
            Err(_) => Err(Error::Timeout {
                what,
                after: self.timeout,
            }),
        }
    }

    /// Get one pod; a 404 becomes a NotFound naming the pod and namespace.
    pub async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        validate_name("pod name", name)?;
        validate_name("namespace", namespace)?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match self
            .call(format!("getting pod {namespace}/{name}"), api.get_opt(name))
            .await?
        {
            Some(p) => Ok(p),
            None => Err(Error::NotFound {
                what: format!("pod {name} in namespace {namespace}"),
                detail: String::new(),
                hint: format!(
                    "`kubectl get pods -n {namespace}`; give the pod as <namespace>/<name>"
                ),
            }),
        }
    }

    /// Get one node; a 404 becomes a NotFound that lists the known nodes.
    pub async fn get_node(&self, name: &str) -> Result<Node> {
        validate_name("node name", name)?;
        let api: Api<Node> = Api::all(self.client.clone());
        match self
            .call(format!("getting node {name}"), api.get_opt(name))
            .await?
        {
            Some(n) => Ok(n),
            None => {
                let known = self
                    .list_nodes()
                    .await
                    .map(|ns| {
                        ns.iter()
                            .filter_map(|n| n.metadata.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                Err(Error::NotFound {
                    what: format!("node {name}"),
                    detail: if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (nodes: {known})")
                    },
                    hint: "`kubectl get nodes` and use one of those names".into(),
                })
            }
        }
    }

    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let api: Api<Node> = Api::all(self.client.clone());
        self.list_paged(&api, &ListParams::default(), "listing nodes")
            .await
    }

    /// The pods whose (primary) address is `ip`, from the API server's index
    /// (`status.podIP` field selector): one pod, not the cluster's 30,000.
    pub async fn pods_with_ip(&self, ip: std::net::IpAddr) -> Result<Vec<Pod>> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("status.podIP={ip}"));
        self.list_paged(&api, &lp, &format!("listing the pods with address {ip}"))
            .await
    }

    /// List pods in `namespace` (None = all namespaces) matching an optional label selector.
    pub async fn list_pods(
        &self,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Pod>> {
        let api: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut lp = ListParams::default();
        if let Some(sel) = label_selector {
            lp = lp.labels(sel);
        }
        let what = format!(
            "listing pods{}{}",
            namespace
                .map(|n| format!(" in {n}"))
                .unwrap_or_else(|| " in all namespaces".into()),
            label_selector
                .map(|s| format!(" with labels {s}"))
                .unwrap_or_default()
        );
        self.list_paged(&api, &lp, &what).await
    }

    /// Every Service of the cluster (to name the one behind a ClusterIP).
    pub async fn list_services(&self) -> Result<Vec<Service>> {
        let api: Api<Service> = Api::all(self.client.clone());
        self.list_paged(
            &api,
            &ListParams::default(),
            "listing services in all namespaces",
        )
        .await
    }

    /// Get a Kube-OVN Subnet (cluster-scoped CRD).
    pub async fn get_subnet(&self, name: &str) -> Result<Subnet> {
        self.get_crd(&model::subnet_resource(), "subnet", name)
            .await
    }

    pub async fn list_subnets(&self) -> Result<Vec<Subnet>> {
        self.list_crd(&model::subnet_resource(), "subnets").await
    }

    /// Get a Kube-OVN Vpc (cluster-scoped CRD).
    pub async fn get_vpc(&self, name: &str) -> Result<Vpc> {
        self.get_crd(&model::vpc_resource(), "vpc", name).await
    }

    pub async fn list_vpcs(&self) -> Result<Vec<Vpc>> {
        self.list_crd(&model::vpc_resource(), "vpcs").await
    }

    async fn get_crd<T: serde::de::DeserializeOwned>(
        &self,
        ar: &kube::api::ApiResource,
        kind: &str,
        name: &str,
    ) -> Result<T> {
        validate_name(kind, name)?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let obj = self
            .call(format!("getting {kind} {name}"), api.get_opt(name))
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("{kind} {name}"),
                detail: String::new(),
                hint: format!("`kubectl get {}`", ar.plural),
            })?;
        decode(kind, obj)
    }

    async fn list_crd<T: serde::de::DeserializeOwned>(
        &self,
        ar: &kube::api::ApiResource,
        plural: &str,
    ) -> Result<Vec<T>> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let what = format!("listing {plural}");
        let list = self.list_paged(&api, &ListParams::default(), &what).await?;
        list.into_iter().map(|o| decode(plural, o)).collect()
    }
}

fn decode<T: serde::de::DeserializeOwned>(kind: &str, obj: DynamicObject) -> Result<T> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let value = serde_json::to_value(obj).map_err(|e| Error::Api {
        what: format!("reading {kind} {name}"),
        detail: e.to_string(),
        hint: "report this object's YAML as a bug".into(),
    })?;
    serde_json::from_value(value).map_err(|e| Error::Api {
        what: format!("decoding {kind} {name}"),
        detail: e.to_string(),
        hint: format!("check `kubectl get {kind} {name} -o yaml` against the Kube-OVN CRD"),
    })
}

/// Reject names that cannot be Kubernetes object names before they reach a URL
/// or a command line (RFC 1123 subdomain: lowercase alnum, '-', '.').
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: what.into(),
            value: name.into(),
            detail: "Kubernetes names are lowercase letters, digits, '-' and '.', starting and ending with a letter or digit".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("node", "kube-ovn-worker").is_ok());
        assert!(validate_name("node", "node1.example.com").is_ok());
        assert!(validate_name("node", "").is_err());
        assert!(validate_name("node", "Node1").is_err());
        assert!(validate_name("node", "a;rm -rf").is_err());
        assert!(validate_name("node", "-x").is_err());
        assert!(validate_name("node", "../x").is_err());
    }
}
