//! The plugin's client stack (kube-rs 5 with `ws`) against the emulator: typed
//! list/get with selectors, exec over v5 WebSocket, logs, patch, scale, delete, watch.

mod common;

use std::time::Duration;

use common::Sandbox;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn client(sb: &Sandbox) -> Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig()).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

struct Exec {
    stdout: String,
    stderr: String,
    status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
}

async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    ap: &AttachParams,
    argv: &[&str],
    input: Option<&[u8]>,
) -> Exec {
    let mut p = pods.exec(pod, argv.iter().copied(), ap).await.unwrap();
    if let Some(data) = input {
        let mut stdin = p.stdin().unwrap();
        stdin.write_all(data).await.unwrap();
        // Shutting the writer down (dropping it is not enough: the pipe is shared) makes
        // kube-rs send the v5 close-stdin signal.
        stdin.shutdown().await.unwrap();
    }
    let mut out = p.stdout().unwrap();
    let mut err = p.stderr().unwrap();
    let status = p.take_status().unwrap();
    let (mut o, mut e) = (String::new(), String::new());
    let (r1, r2) = tokio::join!(out.read_to_string(&mut o), err.read_to_string(&mut e));
    r1.unwrap();
    r2.unwrap();
    let status = status.await.expect("a status on channel 3");
    p.join().await.unwrap();
    Exec {
        stdout: o,
        stderr: e,
        status,
    }
}

#[tokio::test]
async fn typed_list_get_and_selectors() {
    let sb = Sandbox::start();
    let c = client(&sb).await;
    let nodes: Api<Node> = Api::all(c.clone());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let pods: Api<Pod> = Api::all(c.clone());
    let on_node1 = pods
        .list(&ListParams::default().fields("spec.nodeName=node1"))
        .await
        .unwrap();
    let mut names: Vec<String> = on_node1
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["ovn-central-6d8f-node1", "web-1"]);
    let central = Api::<Pod>::namespaced(c.clone(), "kube-system")
        .list(&ListParams::default().labels("app=ovn-central"))
        .await
        .unwrap();
    assert_eq!(central.items.len(), 1);
    let err = Api::<Pod>::namespaced(c, "default")
        .get("nope")
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, r#"pods "nope" not found"#);
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_over_v5_with_status() {
    let sb = Sandbox::start();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let ap = AttachParams::default().stderr(true);

    let ok = exec(
        &pods,
        "web-2",
        &ap,
        &["sh", "-c", "echo out; echo err >&2"],
        None,
    )
    .await;
    assert_eq!(ok.stdout, "out\n");
    assert_eq!(ok.stderr, "err\n");
    assert_eq!(ok.status.status.as_deref(), Some("Success"));

    let bad = exec(&pods, "web-2", &ap, &["sh", "-c", "exit 3"], None).await;
    assert_eq!(bad.status.status.as_deref(), Some("Failure"));
    assert_eq!(bad.status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = bad.status.details.unwrap().causes.unwrap();
    assert_eq!(causes[0].reason.as_deref(), Some("ExitCode"));
    assert_eq!(causes[0].message.as_deref(), Some("3"));

    let with_stdin = AttachParams::default()
        .stdin(true)
        .stderr(true)
        .container("app");
    let piped = exec(
        &pods,
        "web-1",
        &with_stdin,
        &["sh", "-c", "wc -c; echo end"],
        Some(&[b'x'; 5000]),
    )
    .await;
    assert_eq!(piped.stdout, "5000\nend\n");
}

#[tokio::test]
async fn exec_without_container_on_multi_container_pod_is_400() {
    let sb = Sandbox::start();
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let err = pods
        .exec("web-1", ["true"], &AttachParams::default())
        .await
        .err()
        .expect("the upgrade must be refused");
    let text = format!("{err:?}");
    assert!(
        text.contains(
            "a container name must be specified for pod web-1, choose one of: [app sidecar]"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn logs_patch_scale_delete() {
    let sb = Sandbox::start();
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let lp = LogParams {
        container: Some("app".into()),
        tail_lines: Some(2),
        ..LogParams::default()
    };
    assert_eq!(
        pods.logs("web-1", &lp).await.unwrap(),
        "serving on :8080\nready\n"
    );

    let p = pods
        .patch(
            "web-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"k": "v"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["k"], "v");
    let p = pods
        .patch(
            "web-2",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"annotations": {"s": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.annotations.unwrap()["s"], "1");
    let ops: json_patch::Patch = serde_json::from_value(
        json!([{"op": "replace", "path": "/metadata/labels/k", "value": "w"}]),
    )
    .unwrap();
    let p = pods
        .patch("web-2", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["k"], "w");

    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "kube-system");
    let scale = deploys
        .patch_scale(
            "ovn-central",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(0));
    assert_eq!(
        deploys
            .get_scale("ovn-central")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
    let d = deploys.get("ovn-central").await.unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );

    pods.delete("web-2", &DeleteParams::default())
        .await
        .unwrap();
    assert!(pods.get_opt("web-2").await.unwrap().is_none());
}

#[tokio::test]
async fn watch_from_list_resource_version() {
    let sb = Sandbox::start();
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    // A change between list and watch must still be seen (replayed from history).
    pods.patch(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"step": "1"}}})),
    )
    .await
    .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Modified(p) => assert_eq!(p.metadata.labels.unwrap()["step"], "1"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    pods.delete("web-2", &DeleteParams::default())
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(next, WatchEvent::Deleted(p) if p.metadata.name.as_deref() == Some("web-2")));
}
