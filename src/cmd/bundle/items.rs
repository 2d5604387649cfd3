//! The items of a bundle and how each is collected into the staging directory.
//! Every collector returns what it wrote and what failed; none stops the others.

use std::path::Path;

use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::manifest::{Failure, FileEntry};
use crate::cli::LogComponent;
use crate::cluster::Db;
use crate::cluster::{Cluster, Leader, PodRef, container};
use crate::cmd::db;
use crate::render::progress::Progress;

/// Items collected at once: enough to hide exec latency without flooding the API server.
const PARALLEL: usize = 8;

pub type Item = std::result::Result<FileEntry, Failure>;

/// Write `data` as `rel` under `stage`.
async fn save(stage: &Path, rel: &str, source: &str, data: &[u8]) -> Item {
    let path = stage.join(rel);
    let written = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&path, data).await
    };
    match written.await {
        Ok(()) => Ok(FileEntry {
            path: rel.into(),
            source: source.into(),
            bytes: data.len() as u64,
        }),
        Err(e) => Err(failure(
            rel,
            source,
            format!("write {}: {e}", path.display()),
        )),
    }
}

fn failure(item: &str, source: &str, error: impl std::fmt::Display) -> Failure {
    Failure {
        item: item.into(),
        source: source.into(),
        error: error.to_string(),
    }
}

/// Save a serializable result as pretty JSON, or record why it could not be had.
async fn save_json<T: serde::Serialize, E: std::fmt::Display>(
    stage: &Path,
    rel: &str,
    source: &str,
    value: std::result::Result<T, E>,
) -> Item {
    let value = value.map_err(|e| failure(rel, source, e))?;
    let data = serde_json::to_vec_pretty(&value).map_err(|e| failure(rel, source, e))?;
    save(stage, rel, source, &data).await
}

/// Run `argvs` in `pod` one after the other and save their output as `rel`;
/// a command that fails (or exits non-zero) fails the item.
async fn exec_into(
    cluster: &Cluster,
    stage: &Path,
    pod: &PodRef,
    container: &str,
    argvs: &[&[&str]],
    rel: &str,
) -> Item {
    let cmds: Vec<String> = argvs.iter().map(|a| a.join(" ")).collect();
    let source = format!("{} in {pod} ({container})", cmds.join("; "));
    let mut data = Vec::new();
    for (argv, cmd) in argvs.iter().zip(&cmds) {
        let out = cluster
            .exec_capture_timeout(pod, container, argv, cluster.timeout() * 4)
            .await
            .map_err(|e| failure(rel, &source, e))?;
        if !out.success() {
            let why = format!(
                "{cmd} exited {}: {}",
                out.exit_code,
                out.stderr_str().trim()
            );
            return Err(failure(rel, &source, why));
        }
        if argvs.len() > 1 {
            data.extend_from_slice(format!("### {cmd}\n").as_bytes());
        }
        data.extend_from_slice(&out.stdout);
    }
    save(stage, rel, &source, &data).await
}

/// Like [`exec_into`], in the leader of `which`.
async fn exec_in_leader(
    cluster: &Cluster,
    stage: &Path,
    which: Leader,
    argvs: &[&[&str]],
    rel: &str,
) -> Vec<Item> {
    let pod = match cluster.leader(which).await {
        Ok(p) => p,
        Err(e) => return vec![Err(failure(rel, &argvs[0].join(" "), e))],
    };
    let c = pod.container_or_default(which.container()).to_string();
    vec![exec_into(cluster, stage, &pod, &c, argvs, rel).await]
}

/// Per node, in its ovs-ovn pod: the bridges, br-int's flows, the versions.
async fn node_item(cluster: &Cluster, stage: &Path, node: &str, what: NodeItem) -> Vec<Item> {
    let (file, argvs): (&str, &[&[&str]]) = match what {
        NodeItem::Show => ("ovs-vsctl-show.txt", &[&["ovs-vsctl", "show"]]),
        NodeItem::Flows => (
            "dump-flows-br-int.txt",
            &[&["ovs-ofctl", "dump-flows", "br-int"]],
        ),
        NodeItem::Versions => (
            "versions.txt",
            &[
                &["ovn-controller", "--version"],
                &["ovs-vswitchd", "--version"],
            ],
        ),
    };
    let rel = format!("nodes/{node}/{file}");
    let pod = match cluster.ovs_pod_on(node).await {
        Ok(p) => p,
        Err(e) => return vec![Err(failure(&rel, &argvs[0].join(" "), e))],
    };
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    vec![exec_into(cluster, stage, &pod, &c, argvs, &rel).await]
}

#[derive(Clone, Copy)]
enum NodeItem {
    Show,
    Flows,
    Versions,
}

/// `nb|sb status` (structured and as cluster/status prints it) and the backup.
async fn database(cluster: &Cluster, stage: &Path, d: Db) -> Vec<Item> {
    let s = d.short();
    let status = db::status_report(cluster, d).await;
    let source = format!("kubectl ko {s} status -o json");
    let mut items = vec![save_json(stage, &format!("ovn/{s}-status.json"), &source, status).await];
    let argv = d.cluster_status_argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let rel = format!("ovn/{s}-cluster-status.txt");
    items.extend(exec_in_leader(cluster, stage, d.leader(), &[&argv], &rel).await);
    items.push(backup(cluster, stage, d).await);
    items
}

/// The existing `nb|sb backup`, into `ovn/`.
async fn backup(cluster: &Cluster, stage: &Path, d: Db) -> Item {
    let item = format!("ovn/{}.<time>.backup", d.stem());
    let source = format!("kubectl ko {} backup", d.short());
    let pod = cluster
        .leader(d.leader())
        .await
        .map_err(|e| failure(&item, &source, e))?;
    let dir = stage.join("ovn");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| failure(&item, &source, format!("create {}: {e}", dir.display())))?;
    let r = db::backup_from(cluster, d, &pod, &dir)
        .await
        .map_err(|e| failure(&item, &source, e))?;
    let name = r.path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(FileEntry {
        path: format!("ovn/{}", name.unwrap_or_default()),
        source: format!(
            "{source}: ovsdb-tool cluster-to-standalone in {}, sha256 {}",
            r.pod, r.sha256
        ),
        bytes: r.bytes,
    })
}

/// ovn-controller, ovs-vswitchd, OVN central and Kube-OVN logs, with `kubectl ko log`'s code.
async fn logs(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    use LogComponent::{KubeOvn, Ovn, Ovs};
    let source = "kubectl ko log kube-ovn|ovn|ovs";
    let report = match crate::cmd::misc::collect_logs(
        cluster,
        &[KubeOvn, Ovn, Ovs],
        &stage.join("logs"),
        false,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return vec![Err(failure("logs/", source, e))],
    };
    let files = report.files.into_iter().map(|f| {
        let rel = f.path.strip_prefix(stage).unwrap_or(&f.path);
        Ok(FileEntry {
            path: rel.to_string_lossy().into_owned(),
            source: f.source,
            bytes: f.bytes,
        })
    });
    let errors = report
        .errors
        .into_iter()
        .map(|e| Err(failure("logs/", source, e)));
    files.chain(errors).collect()
}

/// A list of Kubernetes objects as JSON, without managedFields (noise in a report).
async fn list_json<K>(
    cluster: &Cluster,
    api: Api<K>,
    what: &str,
    keep: fn(&K) -> bool,
) -> crate::cluster::Result<serde_json::Value>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let list = cluster
        .call(format!("listing {what}"), api.list(&ListParams::default()))
        .await?;
    let mut items = Vec::new();
    for mut o in list.items.into_iter().filter(keep) {
        o.meta_mut().managed_fields = None;
        items.push(o);
    }
    Ok(serde_json::json!({ "kind": "List", "apiVersion": "v1", "items": items }))
}

fn any<K>(_: &K) -> bool {
    true
}

/// A pod Kube-OVN has annotated (it owns its network).
fn kube_ovn_pod(p: &Pod) -> bool {
    let ann = p.metadata.annotations.iter().flatten();
    ann.into_iter()
        .any(|(k, _)| k.starts_with("ovn.kubernetes.io/"))
}

/// Nodes, Kube-OVN's pods, Kube-OVN-annotated pods, Services, Endpoints,
/// NetworkPolicies. Never Secrets (or ConfigMaps, which may hold credentials).
async fn kubernetes(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    let c = cluster.client().clone();
    let ns = cluster.namespace();
    let (nodes, system, annotated, svcs, eps, nps) = tokio::join!(
        list_json(cluster, Api::<Node>::all(c.clone()), "nodes", any),
        list_json(cluster, Api::<Pod>::namespaced(c.clone(), ns), "pods", any),
        list_json(cluster, Api::<Pod>::all(c.clone()), "pods", kube_ovn_pod),
        list_json(cluster, Api::<Service>::all(c.clone()), "services", any),
        list_json(cluster, Api::<Endpoints>::all(c.clone()), "endpoints", any),
        list_json(
            cluster,
            Api::<NetworkPolicy>::all(c),
            "networkpolicies",
            any
        ),
    );
    let sys = format!("k8s/pods-{ns}.json");
    let sys_src = format!("kubectl get pods -n {ns} -o json");
    vec![
        save_json(stage, "k8s/nodes.json", "kubectl get nodes -o json", nodes).await,
        save_json(stage, &sys, &sys_src, system).await,
        save_json(
            stage,
            "k8s/pods-kube-ovn-annotated.json",
            "kubectl get pods -A -o json (with ovn.kubernetes.io/ annotations)",
            annotated,
        )
        .await,
        save_json(
            stage,
            "k8s/services.json",
            "kubectl get services -A -o json",
            svcs,
        )
        .await,
        save_json(
            stage,
            "k8s/endpoints.json",
            "kubectl get endpoints -A -o json",
            eps,
        )
        .await,
        save_json(
            stage,
            "k8s/networkpolicies.json",
            "kubectl get networkpolicies -A -o json",
            nps,
        )
        .await,
    ]
}

/// Every kubeovn.io custom resource, one file per CRD.
async fn custom_resources(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().clone());
    let source = "kubectl get crd";
    let crds = match list_json(
        cluster,
        api,
        "CustomResourceDefinitions",
        |c: &CustomResourceDefinition| c.spec.group == "kubeovn.io",
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return vec![Err(failure("kubeovn/", source, e))],
    };
    let mut items = Vec::new();
    let crds: Vec<CustomResourceDefinition> =
        serde_json::from_value(crds["items"].clone()).unwrap_or_default();
    for crd in crds {
        let Some(version) = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or(crd.spec.versions.first())
        else {
            continue;
        };
        let plural = &crd.spec.names.plural;
        let gvk = GroupVersionKind::gvk("kubeovn.io", &version.name, &crd.spec.names.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::all_with(cluster.client().clone(), &ar);
        let list = list_json(cluster, api, plural, any).await;
        let source = format!("kubectl get {plural}.kubeovn.io -A -o json");
        items.push(save_json(stage, &format!("kubeovn/{plural}.json"), &source, list).await);
    }
    items
}

/// Our version and the OVN/OVS versions of ovn-central.
async fn versions(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    let ours = format!("kubectl-ko {}\n", env!("CARGO_PKG_VERSION"));
    let mut items = vec![
        save(
            stage,
            "versions/kubectl-ko.txt",
            "kubectl ko version",
            ours.as_bytes(),
        )
        .await,
    ];
    let argvs: &[&[&str]] = &[&["ovn-northd", "--version"], &["ovsdb-server", "--version"]];
    items.extend(
        exec_in_leader(
            cluster,
            stage,
            Leader::Nb,
            argvs,
            "versions/ovn-central.txt",
        )
        .await,
    );
    items
}

async fn diagnose(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    let report = crate::cmd::diagnose::report_all(cluster).await;
    vec![
        save_json(
            stage,
            "diagnose.json",
            "kubectl ko diagnose all -o json",
            report,
        )
        .await,
    ]
}

async fn storage(cluster: &Cluster, stage: &Path) -> Vec<Item> {
    let report = db::storage_report(cluster).await;
    vec![
        save_json(
            stage,
            "ovn/dbstatus.json",
            "kubectl ko nb dbstatus -o json",
            report,
        )
        .await,
    ]
}

/// Collect every item, `PARALLEL` at a time, with a progress bar on a terminal.
pub async fn collect_all(cluster: &Cluster, stage: &Path, nodes: &[String]) -> Vec<Item> {
    let mut tasks: Vec<LocalBoxFuture<'_, Vec<Item>>> = vec![
        diagnose(cluster, stage).boxed_local(),
        database(cluster, stage, Db::Nb).boxed_local(),
        database(cluster, stage, Db::Sb).boxed_local(),
        storage(cluster, stage).boxed_local(),
        exec_in_leader(
            cluster,
            stage,
            Leader::Sb,
            &[&["ovn-sbctl", "lflow-list"]],
            "ovn/lflow-list.txt",
        )
        .boxed_local(),
        logs(cluster, stage).boxed_local(),
        kubernetes(cluster, stage).boxed_local(),
        custom_resources(cluster, stage).boxed_local(),
        versions(cluster, stage).boxed_local(),
    ];
    for node in nodes {
        for what in [NodeItem::Show, NodeItem::Flows, NodeItem::Versions] {
            tasks.push(node_item(cluster, stage, node, what).boxed_local());
        }
    }
    let progress = Progress::new();
    progress.start("collecting the bundle", tasks.len() as u64);
    let done: Vec<Vec<Item>> = stream::iter(tasks)
        .buffer_unordered(PARALLEL)
        .inspect(|_| progress.inc())
        .collect()
        .await;
    progress.finish();
    done.into_iter().flatten().collect()
}
