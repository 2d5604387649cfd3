use serde_json::json;

use super::*;

fn pod(name: &str, ip: &str, ready: bool) -> Value {
    json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"),
            "labels": {"app": "web"},
            "annotations": {"ovn.kubernetes.io/logical_switch": "ovn-default"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

fn world(pods: Vec<Value>) -> World {
    let mut w = World::default();
    w.pods = pods;
    w.services = vec![
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.100.10", "clusterIPs": ["10.96.100.10"],
            "ipFamilies": ["IPv4"],
            "ports": [{"name": "", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
    ];
    w
}

#[test]
fn endpoints_slices_and_vips_follow_ready_pods() {
    let w = world(vec![
        pod("web-b", "10.16.0.9", true),
        pod("web-a", "10.16.0.7", true),
        pod("web-c", "10.16.0.11", false),
    ]);
    let mut slices = vec![];
    let writes = endpoint_writes(&w, &mut slices);
    assert_eq!(writes.len(), 2, "{writes:?}");
    let ep = writes[0].body.as_ref().unwrap();
    assert_eq!(writes[0].method, "POST");
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(ep["subsets"][0]["notReadyAddresses"][0]["ip"], "10.16.0.11");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(
        ep["metadata"]["labels"]["endpoints.kubernetes.io/managed-by"],
        "endpoint-controller"
    );
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["metadata"]["generateName"], "web-");
    assert_eq!(slices[0]["endpoints"].as_array().unwrap().len(), 3);
    let mut d = Desired::default();
    let more = lb_vips(&w, &slices, &mut d);
    assert_eq!(
        d.lb_vips["cluster-tcp-loadbalancer"]["10.96.100.10:80"],
        "10.16.0.7:8080,10.16.0.9:8080"
    );
    assert_eq!(
        more[0].body.as_ref().unwrap()["metadata"]["annotations"]["ovn.kubernetes.io/vpc"],
        "ovn-cluster"
    );
}

#[test]
fn no_ready_endpoint_means_no_vip_and_an_empty_endpoints_object() {
    let w = world(vec![pod("web-c", "10.16.0.11", false)]);
    let mut slices = vec![];
    endpoint_writes(&w, &mut slices);
    let mut d = Desired::default();
    lb_vips(&w, &slices, &mut d);
    assert!(d.lb_vips.is_empty());
    let w = world(vec![]);
    let mut slices = vec![];
    let writes = endpoint_writes(&w, &mut slices);
    assert!(writes[0].body.as_ref().unwrap()["subsets"].is_null());
}

#[test]
fn an_up_to_date_slice_is_left_alone_and_orphans_are_deleted() {
    let w = world(vec![pod("web-a", "10.16.0.7", true)]);
    let mut slices = vec![];
    endpoint_writes(&w, &mut slices);
    slices[0]["metadata"]["name"] = json!("web-abcde");
    let mut orphan = slices[0].clone();
    orphan["metadata"]["name"] = json!("gone-xyz");
    orphan["metadata"]["labels"]["kubernetes.io/service-name"] = json!("gone");
    slices.push(orphan);
    let mut w2 = world(vec![pod("web-a", "10.16.0.7", true)]);
    w2.endpoints = vec![json!({"metadata": {"name": "web", "namespace": "default",
        "labels": {"app": "web", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}},
        "subsets": subsets(&w2.services[0], &backends(&w2.services[0], &w2))})];
    let writes = endpoint_writes(&w2, &mut slices);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "DELETE");
    assert!(writes[0].path.ends_with("/gone-xyz"));
    assert_eq!(slices.len(), 1);
}

#[test]
fn session_affinity_and_custom_vpcs_pick_their_load_balancers() {
    assert_eq!(
        lb_name("ovn-cluster", "udp", true),
        "cluster-udp-session-loadbalancer"
    );
    assert_eq!(lb_name("vpc1", "tcp", false), "vpc-vpc1-tcp-load");
    assert_eq!(lb_name("vpc1", "sctp", true), "vpc-vpc1-sctp-sess-load");
}
