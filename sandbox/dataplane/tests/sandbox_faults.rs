//! Faults and `fault heal`, on their own sandbox (`kt-fault`) so they never disturb
//! the tests that share `kt-main`. One test: the faults are applied in sequence.

use ko_testkit::{Kubectl, eventually, ovn_ctl, sandbox_cmd, sandbox_up, status_json};

const NAME: &str = "kt-fault";

fn fault(args: &[&str]) -> String {
    let mut a = vec!["fault", "--name", NAME];
    a.extend_from_slice(args);
    let out = sandbox_cmd(&a);
    assert!(
        out.status.success(),
        "fault {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn controller_running(node: &str) -> bool {
    let st = status_json(NAME);
    st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == node && n["ovn_controller"] == true)
}

fn binding_chassis(k: &Kubectl, lsp: &str) -> String {
    ovn_ctl(
        k,
        "sb",
        &[
            "--bare",
            "--columns=chassis",
            "find",
            "port_binding",
            &format!("logical_port={lsp}"),
        ],
    )
    .trim()
    .to_string()
}

fn chassis_names(k: &Kubectl) -> String {
    ovn_ctl(k, "sb", &["--bare", "--columns=name", "list", "chassis"])
}

#[test]
fn faults_break_what_they_say_and_heal_restores_everything() {
    let k = Kubectl::new(sandbox_up(NAME, &[]));
    assert!(!binding_chassis(&k, "web-1.default").is_empty());

    // stop-controller
    fault(&["stop-controller", "kube-ovn-worker"]);
    assert!(!controller_running("kube-ovn-worker"));
    let ovs = k
        .pods("kube-system", "app=ovs")
        .into_iter()
        .find(|p| p["spec"]["nodeName"] == "kube-ovn-worker")
        .unwrap();
    let ovs_name = ovs["metadata"]["name"].as_str().unwrap();
    let (code, _, _) = k.exec(
        "kube-system",
        ovs_name,
        None,
        &["ovn-appctl", "-t", "ovn-controller", "version"],
    );
    assert_ne!(
        code, 0,
        "ovn-controller still answers after stop-controller"
    );

    // stop-nb on the first central pod: its member is down, the others keep a leader
    fault(&["stop-nb", "1"]);
    let st = status_json(NAME);
    assert_eq!(st["central"][0]["nb"], "down", "{}", st["central"]);
    assert!(eventually(20, || status_json(NAME)["nb_leader"].is_string()));
    fault(&["stop-sb", "2"]);
    assert_eq!(status_json(NAME)["central"][1]["sb"], "down");
    assert!(eventually(20, || status_json(NAME)["sb_leader"].is_string()));

    // unbind-port: the Port_Binding loses its chassis
    fault(&["unbind-port", "default/web-1"]);
    assert!(eventually(15, || binding_chassis(&k, "web-1.default").is_empty()));

    // delete-chassis
    fault(&["delete-chassis", "kube-ovn-worker2"]);
    assert!(!chassis_names(&k).contains("kube-ovn-worker2"));

    // drift-annotation: the pod's ip_address no longer matches its LSP / podIP
    fault(&["drift-annotation", "default/web-2"]);
    let pod = k.json(&["get", "pod", "web-2"]);
    assert_ne!(
        pod["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"],
        pod["status"]["podIP"]
    );

    let st = status_json(NAME);
    assert_eq!(
        st["faults"].as_array().unwrap().len(),
        6,
        "{}",
        st["faults"]
    );
    assert_eq!(st["healthy"], false);
    assert!(
        st["problems"]
            .to_string()
            .contains("ovn-controller on kube-ovn-worker is not running"),
        "{}",
        st["problems"]
    );
    let again = sandbox_cmd(&[
        "fault",
        "--name",
        NAME,
        "stop-controller",
        "kube-ovn-worker",
    ]);
    assert!(
        !again.status.success(),
        "the same fault twice must be refused"
    );
    let bad = sandbox_cmd(&["fault", "--name", NAME, "melt-cpu", "x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown fault"));

    // heal restores every piece
    let out = fault(&["heal"]);
    assert!(out.contains("healed 6"), "{out}");
    let st = status_json(NAME);
    assert_eq!(st["faults"].as_array().unwrap().len(), 0);
    assert_eq!(st["healthy"], true, "{}", st["problems"]);
    assert!(
        st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["ovn_controller"] == true)
    );
    for c in st["central"].as_array().unwrap() {
        assert_ne!(c["nb"], "down");
        assert_ne!(c["sb"], "down");
    }
    assert!(eventually(15, || !binding_chassis(&k, "web-1.default").is_empty()));
    let names = chassis_names(&k);
    assert_eq!(names.split_whitespace().count(), 3, "{names}");
    let tags = ovn_ctl(&k, "sb", &["--columns=external_ids", "list", "chassis"]);
    assert_eq!(tags.matches("vendor=kube-ovn").count(), 3, "{tags}");
    let pod = k.json(&["get", "pod", "web-2"]);
    assert_eq!(
        pod["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"],
        pod["status"]["podIP"]
    );
    let web1 = &k.pod_ips("default", "web-1")[0];
    assert!(
        k.ping("default", "client-3", web1, "3"),
        "data path not restored after heal"
    );
    assert!(eventually(20, || k
        .pods("kube-system", "ovn-nb-leader=true")
        .len()
        == 1));
}
