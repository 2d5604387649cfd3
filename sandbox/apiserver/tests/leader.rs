//! Leader labels and EndpointSlices follow real OVN daemons: an ovn-central pod whose
//! holder runs a one-member NB RAFT cluster, a one-member SB RAFT cluster and ovn-northd.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;
use serde_json::Value;

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";

/// Processes started for the test, killed when it ends (also on failure).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// argv inside the holder's namespaces.
fn inside(pid: u32, argv: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    common::die_with_test(&mut c);
    c.arg("-t")
        .arg(pid.to_string())
        .args(["-m", "-n", "--"])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn run_inside(pid: u32, argv: &[&str]) {
    let st = inside(pid, argv).status().unwrap();
    assert!(st.success(), "{argv:?} failed: {st}");
}

/// A holder with its own /var/run/ovn (bound to `rundir`) and loopback up.
fn central_holder(rundir: &Path) -> Child {
    common::die_with_test(&mut Command::new("unshare"))
        .args(["--mount", "--net", "--", "sh", "-c"])
        // The directory is passed as $1, never pasted into the script.
        // A fresh machine has no /var/run/ovn until an OVN daemon ran there: make the
        // (empty) mount point first.
        .arg("mkdir -p /var/run/ovn && mount --bind \"$1\" /var/run/ovn && ip link set lo up && exec sleep infinity")
        .arg("sh")
        .arg(rundir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ovsdb(pid: u32, db: &str, name: &str) -> Child {
    let pidfile = format!("--pidfile=/var/run/ovn/{name}.pid");
    let ctl = format!("--unixctl=/var/run/ovn/{name}.ctl");
    let remote = format!("--remote=punix:/var/run/ovn/{name}.sock");
    inside(
        pid,
        &["ovsdb-server", "--no-chdir", &pidfile, &ctl, &remote, db],
    )
    .spawn()
    .unwrap()
}

#[test]
fn leader_labels_and_endpoints_follow_raft() {
    let sb = Sandbox::start();
    let rundir = tempfile::tempdir().unwrap();
    let mut procs = Procs(vec![central_holder(rundir.path())]);
    let pid = procs.0[0].id();
    wait_until("the holder's mount", || {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            // /var/run is a symlink to /run, so the mount point reads /run/ovn.
            .is_ok_and(|m| m.contains(" /run/ovn ") || m.contains(" /var/run/ovn "))
    });
    run_inside(
        pid,
        &[
            "ovsdb-tool",
            "create-cluster",
            "/var/run/ovn/nb.db",
            NB_SCHEMA,
            "tcp:127.0.0.1:6643",
        ],
    );
    run_inside(
        pid,
        &[
            "ovsdb-tool",
            "create-cluster",
            "/var/run/ovn/sb.db",
            SB_SCHEMA,
            "tcp:127.0.0.1:6644",
        ],
    );
    procs.0.push(ovsdb(pid, "/var/run/ovn/nb.db", "ovnnb_db"));
    procs.0.push(ovsdb(pid, "/var/run/ovn/sb.db", "ovnsb_db"));
    procs.0.push(
        inside(
            pid,
            &[
                "ovn-northd",
                "--no-chdir",
                "--pidfile=/var/run/ovn/ovn-northd.pid",
                "--ovnnb-db=unix:/var/run/ovn/ovnnb_db.sock",
                "--ovnsb-db=unix:/var/run/ovn/ovnsb_db.sock",
            ],
        )
        .spawn()
        .unwrap(),
    );

    // Give the emulator the central pod's holder (it re-reads runtime.json every tick).
    let mut rt: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.runtime_path()).unwrap()).unwrap();
    rt["pods"]["kube-system/ovn-central-6d8f-node1"] =
        serde_json::json!({"pid": pid, "containers": ["ovn-central"]});
    std::fs::write(sb.runtime_path(), rt.to_string()).unwrap();

    let labels = |sb: &Sandbox| {
        sb.kubectl_ok(&[
            "get", "pod", "-n", "kube-system", "ovn-central-6d8f-node1", "-o",
            "jsonpath={.metadata.labels.ovn-nb-leader},{.metadata.labels.ovn-sb-leader},{.metadata.labels.ovn-northd-leader}",
        ])
    };
    wait_until("all three leader labels", || {
        labels(&sb) == "true,true,true"
    });
    let leaders = sb.kubectl_ok(&[
        "get",
        "pod",
        "-n",
        "kube-system",
        "-l",
        "ovn-nb-leader=true",
        "-o",
        "name",
    ]);
    assert_eq!(leaders.trim(), "pod/ovn-central-6d8f-node1");
    wait_until("the ovn-nb EndpointSlice to point at the leader", || {
        sb.kubectl_ok(&[
            "get",
            "endpointslice",
            "-n",
            "kube-system",
            "ovn-nb-abcde",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]},{.endpoints[0].targetRef.name}",
        ]) == "172.18.0.2,ovn-central-6d8f-node1"
    });

    // Stop the NB server: the pod can no longer be NB leader, and the slice empties.
    let mut nb = procs.0.remove(1);
    nb.kill().unwrap();
    nb.wait().unwrap();
    wait_until("ovn-nb-leader=false", || {
        labels(&sb).starts_with("false,true,")
    });
    wait_until("the ovn-nb EndpointSlice to empty", || {
        sb.kubectl_ok(&[
            "get",
            "endpointslice",
            "-n",
            "kube-system",
            "ovn-nb-abcde",
            "-o",
            "jsonpath={.endpoints}",
        ])
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .is_empty()
    });
}
