//! Passthrough commands, exec and tcpdump against the sandbox `core` (root), or
//! the cluster in KO_E2E_KUBECONFIG.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{jsonpath, ko, kubeconfig, kubectl, leader_pod, nodes, run, text};

const SANDBOX: &str = "core";

fn kubectl_exec(kc: &Path, pod: &str, container: &str, argv: &[&str]) -> std::process::Output {
    run({
        let mut c = kubectl(kc);
        c.args(["-n", "kube-system", "exec", pod, "-c", container, "--"])
            .args(argv);
        c
    })
}

#[test]
fn nbctl_csv_is_byte_identical_to_kubectl_exec() {
    let kc = kubeconfig(SANDBOX);
    let ours = run({
        let mut c = ko(&kc);
        c.args(["nbctl", "--format=csv", "list", "Logical_Switch"]);
        c
    });
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    let leader = leader_pod(&kc, "ovn-nb-leader");
    let theirs = kubectl_exec(
        &kc,
        &leader,
        "ovn-central",
        &["ovn-nbctl", "--format=csv", "list", "Logical_Switch"],
    );
    assert!(theirs.status.success());
    assert!(!ours.stdout.is_empty());
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn sbctl_show_lists_chassis() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args(["sbctl", "show"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Chassis"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn arguments_with_spaces_quotes_and_separators_arrive_intact() {
    let kc = kubeconfig(SANDBOX);
    let leader = leader_pod(&kc, "ovn-nb-leader");
    // ovn-nbctl echoes the record name it could not find, so the exact bytes show.
    let weird = "no such \"switch\" it's; a=b -- $(x) `y` *";
    for args in [
        vec!["get", "Logical_Switch", weird, "name"],
        vec!["--", "--if-exists", "get", "Logical_Switch", weird, "name"],
        vec![
            "--columns=name",
            "--format=csv",
            "find",
            "Logical_Switch",
            "name=ovn-default",
        ],
        vec!["-v", "--no-leader-only", "ls-list"],
    ] {
        let ours = run({
            let mut c = ko(&kc);
            c.arg("nbctl").args(&args);
            c
        });
        let mut argv = vec!["ovn-nbctl"];
        argv.extend(&args);
        let theirs = kubectl_exec(&kc, &leader, "ovn-central", &argv);
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "{args:?}: {}",
            text(&ours.stderr)
        );
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
        // kubectl adds its own "command terminated" line on failure; ours is the tool's stderr.
        let their_err = text(&theirs.stderr).replace("command terminated with exit code 1\n", "");
        if args[0] == "get" {
            assert!(text(&ours.stderr).contains(weird), "{}", text(&ours.stderr));
        }
        if !args.contains(&"-v") {
            assert_eq!(text(&ours.stderr), their_err, "{args:?}");
        }
    }
}

#[test]
fn remote_exit_code_becomes_ours() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args(["nbctl", "no-such-command"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown command"),
        "{}",
        text(&out.stderr)
    );
    let node = &nodes(&kc)[0];
    let out = run({
        let mut c = ko(&kc);
        c.args(["appctl", node, "no/such-command"]);
        c
    });
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn ovs_tools_on_every_node() {
    let kc = kubeconfig(SANDBOX);
    let nodes = nodes(&kc);
    assert!(nodes.len() >= 2);
    for n in &nodes {
        let out = run({
            let mut c = ko(&kc);
            c.args(["vsctl", n, "show"]);
            c
        });
        assert!(out.status.success(), "{n}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Bridge br-int"), "{n}");
        let out = run({
            let mut c = ko(&kc);
            c.args([
                "vsctl",
                n,
                "--",
                "--columns=name",
                "list",
                "bridge",
                "br-int",
            ]);
            c
        });
        assert!(out.status.success(), "{n}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("br-int"));
        for (tool, args) in [
            ("ofctl", vec!["show", "br-int"]),
            ("appctl", vec!["list-commands"]),
        ] {
            let out = run({
                let mut c = ko(&kc);
                c.arg(tool).arg(n).args(&args);
                c
            });
            assert!(out.status.success(), "{tool} {n}: {}", text(&out.stderr));
            assert!(!out.stdout.is_empty(), "{tool} {n}");
        }
        // The sandbox uses the userspace datapath, where `ovs-dpctl show` fails (no
        // kernel module): dpctl runs the same command through ovs-vswitchd there.
        let ours = run({
            let mut c = ko(&kc);
            c.args(["dpctl", n, "show"]);
            c
        });
        let ovs = jsonpath(
            &kc,
            &[
                "-n",
                "kube-system",
                "get",
                "pods",
                "-l",
                "app=ovs",
                "--field-selector",
                &format!("spec.nodeName={n}"),
            ],
            "{.items[0].metadata.name}",
        );
        let theirs = kubectl_exec(&kc, &ovs, "openvswitch", &["ovs-appctl", "dpctl/show"]);
        assert!(ours.status.success(), "dpctl {n}: {}", text(&ours.stderr));
        assert!(theirs.status.success(), "ovs-appctl dpctl/show on {n}");
        // the lookup counters move between the two calls; the datapath and its ports do not
        let shape = |b: &[u8]| -> Vec<String> {
            text(b)
                .lines()
                .filter(|l| {
                    !l.contains("lookups:") && !l.contains("masks:") && !l.contains("flows:")
                })
                .map(String::from)
                .collect()
        };
        assert_eq!(shape(&ours.stdout), shape(&theirs.stdout), "dpctl {n}");
        assert!(
            text(&ours.stdout).contains("netdev@ovs-netdev"),
            "dpctl {n}"
        );
    }
}

#[test]
fn unknown_node_and_pod_and_namespace_are_clear_errors() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        c.args(["vsctl", "no-such-node", "show"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("node no-such-node was not found"), "{err}");

    let out = run({
        let mut c = ko(&kc);
        c.args(["tcpdump", "default/no-such-pod", "-c", "1"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("pod no-such-pod in namespace default"),
        "{err}"
    );

    // Kube-OVN looked for in the wrong namespace.
    let out = run({
        let mut c = ko(&kc);
        c.args(["--kube-ovn-namespace", "kube-ovn", "nbctl", "show"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("namespace kube-ovn") && err.contains("KUBE_OVN_NS"),
        "{err}"
    );
}

/// The IP of a pod in `default` (the ping target).
fn pod_ip(kc: &Path, name: &str) -> String {
    jsonpath(
        kc,
        &["-n", "default", "get", "pod", name],
        "{.status.podIP}",
    )
}

fn start_ping(kc: &Path, from: &str, to_ip: &str) -> std::process::Child {
    let mut c = kubectl(kc);
    c.args([
        "-n", "default", "exec", from, "--", "ping", "-c", "40", "-i", "0.2", to_ip,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c.spawn().expect("kubectl exec ping")
}

#[test]
fn tcpdump_sees_a_running_ping() {
    let kc = kubeconfig(SANDBOX);
    let dst = pod_ip(&kc, "web-1");
    let mut ping = start_ping(&kc, "client-1", &dst);
    std::thread::sleep(Duration::from_millis(500));
    let out = run({
        let mut c = ko(&kc);
        c.args(["tcpdump", "default/client-1", "-c", "3", "icmp"]);
        c
    });
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("ICMP echo") && l.contains(&dst)),
        "{lines:?}"
    );
}

#[test]
fn tcpdump_w_writes_a_pcap_tcpdump_can_read() {
    let kc = kubeconfig(SANDBOX);
    let dst = pod_ip(&kc, "web-2");
    let mut ping = start_ping(&kc, "client-2", &dst);
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("cap.pcap");
    let out = run({
        let mut c = ko(&kc);
        c.args(["tcpdump", "client-2", "-c", "4", "-w"])
            .arg(&pcap)
            .arg("icmp");
        c
    });
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let read = Command::new("tcpdump")
        .arg("-nn")
        .arg("-r")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", text(&read.stderr));
    let lines = text(&read.stdout);
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(lines.lines().all(|l| l.contains("ICMP echo")), "{lines}");
}

#[test]
fn tcpdump_on_a_host_network_pod_runs_in_the_node_namespace() {
    let kc = kubeconfig(SANDBOX);
    let out = run({
        let mut c = ko(&kc);
        // The RAFT traffic between ovn-central members never stops.
        c.args(["tcpdump", "default/host-net", "-c", "2", "tcp"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[test]
fn a_100_mb_exec_output_streams_without_deadlock() {
    // Through the library, with stdout and stderr interleaved: the reader must
    // drain both at once or the remote side blocks.
    let kc = kubeconfig(SANDBOX);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let opts = kubectl_ko::cluster::ConnectOptions {
            kubeconfig: Some(kc.clone()),
            context: None,
            namespace: "kube-system".into(),
            timeout: Duration::from_secs(30),
        };
        let cluster = kubectl_ko::cluster::Cluster::connect(&opts).await.unwrap();
        let pod = cluster.nb_leader().await.unwrap();
        let script = "i=0; while [ $i -lt 100 ]; do head -c 1048576 /dev/zero; echo err-$i >&2; i=$((i+1)); done; exit 7";
        let mut out = Counter::default();
        let mut err = Vec::new();
        let code = cluster
            .exec_stream(&pod, "ovn-central", &["sh", "-c", script], &mut out, &mut err, Some(Duration::from_secs(300)))
            .await
            .unwrap();
        assert_eq!(code, 7);
        assert_eq!(out.0, 100 * 1048576);
        assert_eq!(text(&err).lines().count(), 100);
    });
}

#[derive(Default)]
struct Counter(u64);

impl tokio::io::AsyncWrite for Counter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0 += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[test]
fn ctrl_c_ends_the_remote_command() {
    let kc = kubeconfig(SANDBOX);
    let node = jsonpath(
        &kc,
        &["-n", "default", "get", "pod", "client-3"],
        "{.spec.nodeName}",
    );
    let cni = jsonpath(
        &kc,
        &[
            "-n",
            "kube-system",
            "get",
            "pods",
            "-l",
            "app=kube-ovn-cni",
            "--field-selector",
            &format!("spec.nodeName={node}"),
        ],
        "{.items[0].metadata.name}",
    );
    // A filter no packet matches, so tcpdump runs until it is stopped.
    let marker = "port 54329";
    let remote_running = || {
        let out = run({
            let mut c = kubectl(&kc);
            c.args([
                "-n",
                "kube-system",
                "exec",
                &cni,
                "-c",
                "cni-server",
                "--",
                "pgrep",
                "-f",
            ])
            .arg(format!("^tcpdump -nn -i eth0 {marker}"));
            c
        });
        out.status.success()
    };
    let mut child = ko(&kc)
        .args(["tcpdump", "default/client-3", marker])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = false;
    for _ in 0..40 {
        if remote_running() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(seen, "remote tcpdump never started");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let mut gone = false;
    for _ in 0..40 {
        if !remote_running() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(gone, "remote tcpdump still running after Ctrl-C");
}
