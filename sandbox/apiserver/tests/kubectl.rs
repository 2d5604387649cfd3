//! The real kubectl (1.32) against the emulator: the fidelity bar.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Sandbox, table};

#[test]
fn get_nodes_and_pods_wide() {
    let sb = Sandbox::start();
    let nodes = table(&sb.kubectl_ok(&["get", "nodes"]));
    assert_eq!(nodes[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(nodes[1][..3], ["node1", "Ready", "control-plane"]);
    assert_eq!(nodes[1][4], "v1.32.0");
    assert_eq!(nodes[2][..3], ["node2", "Ready", "<none>"]);

    let out = sb.kubectl_ok(&["get", "pods", "-A", "-o", "wide"]);
    let header = out.lines().next().unwrap();
    for h in [
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
    ] {
        assert!(header.contains(h), "missing column {h} in {header:?}");
    }
    let rows = table(&out);
    let web1 = rows.iter().find(|r| r[1] == "web-1").unwrap();
    assert_eq!(web1[..4], ["default", "web-1", "2/2", "Running"]);
    assert_eq!(web1[6..8], ["10.16.0.5", "node1"]);
    let cni = rows.iter().find(|r| r[1] == "kube-ovn-cni-x7k2p").unwrap();
    assert_eq!(cni[0], "kube-system");
    assert_eq!(cni[4], "2", "restarts");
    assert_eq!(cni[6..8], ["172.18.0.3", "node2"]);
    assert_eq!(rows.len(), 5, "header + 4 pods: {out}");
}

#[test]
fn custom_resources_with_printer_columns() {
    let sb = Sandbox::start();
    let rows = table(&sb.kubectl_ok(&["get", "subnets"]));
    assert_eq!(
        rows[0][..5],
        ["NAME", "PROVIDER", "VPC", "PROTOCOL", "CIDR"]
    );
    let def = rows.iter().find(|r| r[0] == "ovn-default").unwrap();
    assert_eq!(def[1..5], ["ovn", "ovn-cluster", "IPv4", "10.16.0.0/16"]);
    let yaml = sb.kubectl_ok(&["get", "subnet", "ovn-default", "-o", "yaml"]);
    assert!(yaml.contains("apiVersion: kubeovn.io/v1"));
    assert!(yaml.contains("cidrBlock: 10.16.0.0/16"));
    // Short name from the CRD.
    assert!(sb.kubectl_ok(&["get", "vpc"]).contains("ovn-cluster"));
    let json: serde_json::Value =
        serde_json::from_str(&sb.kubectl_ok(&["get", "subnets", "-o", "json"])).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
}

#[test]
fn selectors_and_not_found() {
    let sb = Sandbox::start();
    let out = sb.kubectl_ok(&[
        "get",
        "pod",
        "-l",
        "app=ovn-central",
        "-n",
        "kube-system",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "pod/ovn-central-6d8f-node1");
    let out = sb.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node1",
        "-o",
        "name",
    ]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["pod/ovn-central-6d8f-node1", "pod/web-1"]);
    let out = sb.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app in (web),app!=x",
        "-o",
        "name",
    ]);
    assert_eq!(out.lines().count(), 2);
    let nf = sb.kubectl(&["get", "pod", "nope"]);
    assert_eq!(nf.status.code(), Some(1));
    let err = String::from_utf8_lossy(&nf.stderr);
    assert!(err.contains(r#"pods "nope" not found"#), "{err}");
    let nf = sb.kubectl(&["get", "subnet", "nope"]);
    assert!(String::from_utf8_lossy(&nf.stderr).contains(r#"subnets.kubeovn.io "nope" not found"#));
}

#[test]
fn exec_streams_and_exit_codes() {
    let sb = Sandbox::start();
    assert_eq!(
        sb.kubectl_ok(&["exec", "web-2", "--", "echo", "hi"]),
        "hi\n"
    );

    let out = sb.kubectl(&[
        "exec",
        "web-2",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err\n"));

    let out = sb.kubectl(&["exec", "web-2", "--", "false"]);
    assert_eq!(out.status.code(), Some(1));

    // The command runs in the pod's own network namespace: only loopback is there.
    let links = sb.kubectl_ok(&["exec", "web-2", "--", "ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"));

    let missing = sb.kubectl(&["exec", "web-2", "--", "no-such-binary-ko"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-binary-ko"));
}

#[test]
fn exec_with_stdin() {
    let sb = Sandbox::start();
    let mut child = sb
        .kubectl_cmd(&["exec", "-i", "web-2", "--", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line a\nline b\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line a\nline b\ndone\n"
    );
}

#[test]
fn exec_container_choice() {
    let sb = Sandbox::start();
    // kubectl itself picks the first container of a multi-container pod and says so.
    let out = sb.kubectl(&["exec", "web-1", "--", "true"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Defaulted container \"app\" out of: app, sidecar")
    );
    assert!(
        sb.kubectl(&["exec", "web-1", "-c", "sidecar", "--", "true"])
            .status
            .success()
    );
    let bad = sb.kubectl(&["exec", "web-1", "-c", "nope", "--", "true"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("container nope is not valid for pod web-1")
    );
}

#[test]
fn exec_100mb_streams_with_bounded_memory() {
    let sb = Sandbox::start();
    let mut child = sb
        .kubectl_cmd(&[
            "exec",
            "web-2",
            "--",
            "head",
            "-c",
            "100000000",
            "/dev/zero",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|b| *b == 0));
        total += n;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(total, 100_000_000);
    // Whole-output buffering would need >= 100 MB; chunked streaming stays far below.
    let peak = sb.server_peak_rss_kib();
    assert!(peak < 64 * 1024, "emulator peak RSS {peak} KiB");
}

#[test]
fn logs_patch_scale_delete() {
    let sb = Sandbox::start();
    assert_eq!(
        sb.kubectl_ok(&["logs", "web-1", "-c", "app"]),
        "starting\nserving on :8080\nready\n"
    );
    assert_eq!(
        sb.kubectl_ok(&["logs", "web-1", "-c", "app", "--tail=1"]),
        "ready\n"
    );
    let nolog = sb.kubectl(&["logs", "web-2"]);
    assert!(!nolog.status.success());

    sb.kubectl_ok(&["label", "pod", "web-2", "tier=front"]);
    sb.kubectl_ok(&[
        "patch",
        "pod",
        "web-2",
        "-p",
        r#"{"metadata":{"annotations":{"a":"strategic"}}}"#,
    ]);
    sb.kubectl_ok(&[
        "patch",
        "pod",
        "web-2",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    sb.kubectl_ok(&[
        "patch",
        "pod",
        "web-2",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ]);
    let labels = sb.kubectl_ok(&["get", "pod", "web-2", "-o", "jsonpath={.metadata.labels.tier},{.metadata.labels.m},{.metadata.labels.j},{.metadata.annotations.a}"]);
    assert_eq!(labels, "front,1,2,strategic");
    assert_eq!(
        sb.kubectl_ok(&["get", "pods", "-l", "tier=front", "-o", "name"])
            .trim(),
        "pod/web-2"
    );

    sb.kubectl_ok(&[
        "scale",
        "deployment",
        "ovn-central",
        "-n",
        "kube-system",
        "--replicas=3",
    ]);
    assert_eq!(
        sb.kubectl_ok(&[
            "get",
            "deploy",
            "ovn-central",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );

    let del = sb.kubectl_ok(&["delete", "pod", "web-2"]);
    assert!(del.contains(r#"pod "web-2" deleted"#));
    let gone = sb.kubectl(&["get", "pod", "web-2"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
}

#[test]
fn endpointslices_services_and_workloads() {
    let sb = Sandbox::start();
    let rows = table(&sb.kubectl_ok(&["get", "endpointslices", "-n", "kube-system"]));
    assert_eq!(
        rows[0],
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    assert_eq!(rows[1][..3], ["ovn-nb-abcde", "IPv4", "6641"]);
    let out = sb.kubectl_ok(&["get", "ds,deploy,svc", "-n", "kube-system"]);
    assert!(out.contains("daemonset.apps/kube-ovn-cni"));
    assert!(out.contains("deployment.apps/ovn-central"));
    assert!(out.contains("service/ovn-nb"));
    assert!(sb.kubectl_ok(&["get", "ns"]).contains("kube-system"));
    assert!(
        sb.kubectl_ok(&["get", "crd"])
            .contains("subnets.kubeovn.io")
    );
    assert!(sb.kubectl_ok(&["api-resources"]).contains("subnets"));
}

#[test]
fn watch_sees_changes() {
    let sb = Sandbox::start();
    let mut watch = sb
        .kubectl_cmd(&["get", "pods", "-w", "-o", "name", "--request-timeout=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(watch.stdout.take().unwrap());
    // The initial list, then the MODIFIED event of the change made after it.
    expect_line(&lines, "pod/web-1");
    expect_line(&lines, "pod/web-2");
    sb.kubectl_ok(&["label", "pod", "web-2", "changed=yes"]);
    expect_line(&lines, "pod/web-2");
    let _ = watch.kill();
    let _ = watch.wait();
    // The server notices the client went away and drops the watch.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sb.server_log().contains("watch on /pods ended") {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch outlived its client"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dead_holder_marks_pod_failed() {
    let mut sb = Sandbox::start();
    sb.kill_holder(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let phase = sb.kubectl_ok(&["get", "pod", "web-2", "-o", "jsonpath={.status.phase}"]);
        if phase == "Failed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pod never became Failed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = table(&sb.kubectl_ok(&["get", "pod", "web-2"]));
    assert_eq!(rows[1][1], "0/1");
    let out = sb.kubectl(&["exec", "web-2", "--", "true"]);
    assert!(!out.status.success());
}

#[test]
fn deleted_daemonset_pod_comes_back() {
    let sb = Sandbox::start();
    let uid = |sb: &Sandbox| {
        sb.kubectl_ok(&[
            "get",
            "pod",
            "-n",
            "kube-system",
            "kube-ovn-cni-x7k2p",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let before = uid(&sb);
    // kubectl waits for the deletion to be observed before returning.
    sb.kubectl_ok(&["delete", "pod", "-n", "kube-system", "kube-ovn-cni-x7k2p"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = sb.kubectl(&[
            "get",
            "pod",
            "-n",
            "kube-system",
            "kube-ovn-cni-x7k2p",
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        if out.status.success() {
            let after = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_ne!(after, before, "the replacement is a new object");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pod never came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A pod nobody owns stays deleted.
    sb.kubectl_ok(&["delete", "pod", "web-2"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!sb.kubectl(&["get", "pod", "web-2"]).status.success());
}

/// Pids whose argv is exactly `argv`.
fn pids_with_argv(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn exec_client_disconnect_kills_the_command() {
    let sb = Sandbox::start();
    // An argv no other test or process uses, so it can be found in /proc.
    let argv = ["sleep", "271.828"];
    let mut kubectl = sb
        .kubectl_cmd(&["exec", "web-2", "--", argv[0], argv[1]])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pids_with_argv(&argv).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kubectl.kill().unwrap();
    kubectl.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pids_with_argv(&argv).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sb.server_log().contains("exec client went away"));
}

#[test]
fn typed_create_sends_protobuf_and_works() {
    let sb = Sandbox::start();
    // kubectl's typed clients send application/vnd.kubernetes.protobuf
    sb.kubectl_ok(&["create", "configmap", "x", "--from-literal=a=b"]);
    assert_eq!(
        sb.kubectl_ok(&["get", "cm", "x", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    sb.kubectl_ok(&["create", "namespace", "pb"]);
    sb.kubectl_ok(&["create", "service", "clusterip", "pb-svc", "--tcp=80:8080"]);
    assert_eq!(
        sb.kubectl_ok(&[
            "get",
            "svc",
            "pb-svc",
            "-o",
            "jsonpath={.spec.selector.app} {.spec.ports[0].targetPort}"
        ]),
        "pb-svc 8080"
    );
    sb.kubectl_ok(&[
        "create",
        "deployment",
        "pb-d",
        "--image=nginx:1.27",
        "--replicas=3",
    ]);
    assert_eq!(
        sb.kubectl_ok(&["get", "deploy", "pb-d", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.strategy.type}"]),
        "3 nginx:1.27 RollingUpdate"
    );
    assert!(
        sb.server_log()
            .contains("POST /apis/apps/v1/namespaces/default/deployments")
    );
    // a kind the converter does not cover is refused by name, not mangled
    let out = sb.kubectl(&["create", "serviceaccount", "sa1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("decodes protobuf bodies only for"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn apply_creates_then_patches_builtin_and_custom_objects() {
    let sb = Sandbox::start();
    let f = sb.dir.path().join("objs.yaml");
    let write = |cidr: &str, value: &str| {
        std::fs::write(
            &f,
            format!(
                "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata:\n  name: s1\nspec:\n  cidrBlock: {cidr}\n  protocol: IPv4\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  k: \"{value}\"\n"
            ),
        )
        .unwrap();
    };
    write("10.99.0.0/24", "1");
    let out = sb.kubectl_ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(
        out.contains("subnet.kubeovn.io/s1 created") && out.contains("configmap/c1 created"),
        "{out}"
    );
    write("10.98.0.0/24", "2");
    let out = sb.kubectl_ok(&["apply", "-f", f.to_str().unwrap()]);
    assert!(
        out.contains("subnet.kubeovn.io/s1 configured") && out.contains("configmap/c1 configured"),
        "{out}"
    );
    assert_eq!(
        sb.kubectl_ok(&["get", "subnet", "s1", "-o", "jsonpath={.spec.cidrBlock}"]),
        "10.98.0.0/24"
    );
    assert_eq!(
        sb.kubectl_ok(&["get", "cm", "c1", "-o", "jsonpath={.data.k}"]),
        "2"
    );
}

#[test]
fn create_ignores_a_clients_identity_and_pod_status() {
    let sb = Sandbox::start();
    let f = sb.dir.path().join("pod.json");
    std::fs::write(
        &f,
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"copied","uid":"11111111-2222-3333-4444-555555555555","creationTimestamp":"2020-01-01T00:00:00Z"},
            "spec":{"containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running","podIP":"10.16.0.99"}}"#,
    )
    .unwrap();
    sb.kubectl_ok(&["create", "-f", f.to_str().unwrap()]);
    let got = sb.kubectl_ok(&[
        "get",
        "pod",
        "copied",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.creationTimestamp} {.status.phase} {.status.podIP}",
    ]);
    let fields: Vec<&str> = got.split(' ').collect();
    assert_ne!(fields[0], "11111111-2222-3333-4444-555555555555", "{got}");
    assert!(!fields[1].starts_with("2020"), "{got}");
    assert_eq!(fields[2], "Pending", "{got}");
    assert_eq!(fields.get(3).copied().unwrap_or(""), "", "{got}");
}

#[test]
fn a_created_service_gets_a_free_cluster_ip() {
    let sb = Sandbox::start();
    let f = sb.dir.path().join("svc.yaml");
    let svc = |name: &str, extra: &str| {
        std::fs::write(
            &f,
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{extra}  selector:\n    app: x\n  ports:\n  - port: 5201\n"
            ),
        )
        .unwrap();
        sb.kubectl(&["apply", "-f", f.to_str().unwrap()])
    };
    assert!(svc("perf-a", "").status.success());
    let ip = sb.kubectl_ok(&["get", "svc", "perf-a", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_ne!(
        ip, "10.96.0.10",
        "the fixture's kube-dns Service holds that one"
    );
    assert_eq!(
        sb.kubectl_ok(&[
            "get",
            "svc",
            "perf-a",
            "-o",
            "jsonpath={.spec.ports[0].protocol}/{.spec.ports[0].targetPort}"
        ]),
        "TCP/5201"
    );
    // A second Service gets another address; asking for a taken one is refused like
    // the real allocator does.
    assert!(svc("perf-b", "").status.success());
    let ip_b = sb.kubectl_ok(&["get", "svc", "perf-b", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_ne!(ip, ip_b);
    let taken = svc("perf-c", &format!("  clusterIP: {ip}\n"));
    assert!(!taken.status.success());
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(err.contains("provided IP is already allocated"), "{err}");
}

#[test]
fn logs_follow_sees_appended_lines() {
    let sb = Sandbox::start();
    let mut follow = sb
        .kubectl_cmd(&["logs", "-f", "web-1", "-c", "app", "--tail=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(follow.stdout.take().unwrap());
    expect_line(&lines, "ready");
    let log = sb.dir.path().join("web-1-app.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"appended later\n").unwrap();
    expect_line(&lines, "appended later");
    let _ = follow.kill();
    let _ = follow.wait();
}

/// Reads a child's stdout line by line on a thread, so a test can wait for a line.
fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn expect_line(rx: &std::sync::mpsc::Receiver<String>, want: &str) {
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("no line {want:?}: {e}"));
    assert_eq!(line, want);
}

#[test]
fn chunked_lists_page_with_limit_and_continue() {
    let sb = Sandbox::start();
    let whole = table(&sb.kubectl_ok(&["get", "pods", "-A", "--chunk-size=0"]));
    let paged = table(&sb.kubectl_ok(&["get", "pods", "-A", "--chunk-size=2"]));
    // Same rows either way (kubectl joins the pages into one table).
    let key = |rows: &Vec<Vec<String>>| {
        let mut v: Vec<String> = rows[1..]
            .iter()
            .map(|r| format!("{}/{}", r[0], r[1]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&whole), key(&paged));
    assert_eq!(paged.len(), 5, "header + 4 pods");
    let log = sb.server_log();
    let pages: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("GET /api/v1/pods?") && l.contains("limit=2"))
        .collect();
    assert!(
        pages.len() >= 2,
        "4 pods at 2 a page need 2 requests: {pages:?}"
    );
    assert!(
        pages.iter().any(|l| l.contains("continue=")),
        "the second page resumes with the continue token: {pages:?}"
    );
    // JSON output goes through the same paging and keeps every item.
    let json: serde_json::Value = serde_json::from_str(&sb.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "--chunk-size=3",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 4);
    // A forged token is refused, not silently restarted.
    let out = sb.kubectl(&["get", "--raw", "/api/v1/pods?limit=1&continue=Zm9v"]);
    assert!(!out.status.success());
}

/// `kubectl get ep` and `kubectl get rs -o wide` print the columns kubernetes'
/// printers (printEndpoints, printReplicaSet) give them.
#[test]
fn endpoints_and_replicasets_print_like_the_real_server() {
    let sb = Sandbox::start();
    let f = sb.dir.path().join("ep-rs.yaml");
    std::fs::write(
        &f,
        r#"apiVersion: v1
kind: Endpoints
metadata: {name: ep-t, namespace: default}
subsets:
- addresses: [{ip: 10.16.0.21}, {ip: 10.16.0.22}, {ip: 10.16.0.23}, {ip: 10.16.0.24}]
  ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ep-empty, namespace: default}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs-t, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: rs-t}}
  template:
    metadata: {labels: {app: rs-t}}
    spec: {containers: [{name: c, image: "busybox:1.36"}]}
"#,
    )
    .unwrap();
    sb.kubectl_ok(&["apply", "-f", f.to_str().unwrap()]);

    let rows = table(&sb.kubectl_ok(&["get", "ep", "ep-t", "ep-empty"]));
    assert_eq!(rows[0], ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(
        rows[1][..2],
        ["ep-t", "10.16.0.21:8080,10.16.0.22:8080,10.16.0.23:8080"]
    );
    assert_eq!(rows[1][2..5], ["+", "1", "more..."], "{:?}", rows[1]);
    assert_eq!(rows[2][..2], ["ep-empty", "<none>"]);

    let rows = table(&sb.kubectl_ok(&["get", "rs", "rs-t", "-o", "wide"]));
    assert_eq!(
        rows[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(rows[1][..4], ["rs-t", "0", "0", "0"]);
    assert_eq!(rows[1][5..], ["c", "busybox:1.36", "app=rs-t"]);
    let plain = table(&sb.kubectl_ok(&["get", "rs", "rs-t"]));
    assert_eq!(plain[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
}

#[test]
fn deleting_a_namespace_deletes_what_it_holds() {
    let sb = Sandbox::start();
    sb.kubectl_ok(&["create", "namespace", "doomed"]);
    sb.kubectl_ok(&[
        "-n",
        "doomed",
        "create",
        "configmap",
        "c",
        "--from-literal=a=b",
    ]);
    sb.kubectl_ok(&[
        "-n",
        "doomed",
        "create",
        "deployment",
        "d",
        "--image=busybox",
    ]);
    sb.kubectl_ok(&[
        "-n",
        "default",
        "create",
        "configmap",
        "keep",
        "--from-literal=a=b",
    ]);
    sb.kubectl_ok(&["delete", "namespace", "doomed"]);
    for kind in ["configmaps", "deployments", "replicasets", "pods"] {
        let left = sb.kubectl_ok(&["-n", "doomed", "get", kind, "-o", "name"]);
        assert_eq!(left.trim(), "", "{kind} left in a deleted namespace");
    }
    assert!(
        sb.kubectl_ok(&["-n", "default", "get", "configmap", "keep", "-o", "name"])
            .contains("keep")
    );
}
