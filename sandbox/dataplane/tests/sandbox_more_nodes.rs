//! More than three nodes: the extra ones carry no ovn-central but join the data plane.

use ko_testkit::{Kubectl, sandbox_cmd, sandbox_up};

#[test]
fn a_fourth_node_joins_the_overlay() {
    let name = "kt-four";
    let k = Kubectl::new(sandbox_up(name, &["--nodes", "4"]));
    let nodes = k.json(&["get", "nodes"]);
    assert_eq!(nodes["items"].as_array().unwrap().len(), 4);
    assert_eq!(k.pods("kube-system", "app=ovn-central").len(), 3);
    assert_eq!(k.pods("kube-system", "app=ovs").len(), 4);
    let c4 = k.json(&["get", "pod", "client-4"]);
    assert_eq!(c4["spec"]["nodeName"], "kube-ovn-worker3");
    let web1 = &k.pod_ips("default", "web-1")[0];
    let ok = k.ping("default", "client-4", web1, "3");
    let _ = sandbox_cmd(&["down", "--name", name]);
    assert!(ok, "client-4 on the fourth node cannot reach web-1");
}
