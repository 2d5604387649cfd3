//! The API emulator's own harness (the workspace kit, `ko_testkit`, supplies the
//! hermetic commands): a temporary sandbox state dir with the fixture objects, real holder
//! processes in their own mount + network namespaces (so exec really runs nsenter),
//! and a running `ko-apiserver` on a free loopback port. Needs root (unshare/nsenter).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub server: Child,
    holders: Vec<Child>,
    pub holder_pids: Vec<u32>,
}

/// Makes a spawned process die with the test that started it, even when the test
/// process is killed (a test runner timeout) and no Drop runs.
pub fn die_with_test(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/objects")
}

/// A process that does nothing in fresh mount + network namespaces (unshare execs the
/// command itself, so the child's pid is the holder's).
fn holder() -> Child {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--net", "--", "sleep", "infinity"])
        .stdin(Stdio::null());
    die_with_test(&mut cmd)
        .spawn()
        .expect("unshare must be available and the tests must run as root")
}

fn wait_for_netns(pid: u32) {
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net"))
            && ns != own
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("holder {pid} never entered its own network namespace");
}

impl Sandbox {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("api/objects");
        std::fs::create_dir_all(&objects).unwrap();
        for e in std::fs::read_dir(fixture_dir()).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, objects.join(p.file_name().unwrap())).unwrap();
        }
        let holders: Vec<Child> = (0..3).map(|_| holder()).collect();
        let holder_pids: Vec<u32> = holders.iter().map(Child::id).collect();
        for pid in &holder_pids {
            wait_for_netns(*pid);
        }
        let log = dir.path().join("web-1-app.log");
        std::fs::write(&log, "starting\nserving on :8080\nready\n").unwrap();
        let runtime = json!({"pods": {
            "default/web-1": {"pid": holder_pids[0], "containers": ["app", "sidecar"],
                "logs": {"app": log, "sidecar": log}},
            "default/web-2": {"pid": holder_pids[1], "containers": ["app"]},
            "kube-system/kube-ovn-cni-x7k2p": {"pid": holder_pids[2], "containers": ["cni-server"]},
        }});
        std::fs::write(dir.path().join("api/runtime.json"), runtime.to_string()).unwrap();
        let server_log = std::fs::File::create(dir.path().join("api/apiserver.log")).unwrap();
        let server = die_with_test(&mut Command::new(env!("CARGO_BIN_EXE_ko-apiserver")))
            .arg("--state")
            .arg(dir.path())
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stderr(server_log)
            .spawn()
            .unwrap();
        let port_file = dir.path().join("api/port");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse::<u16>().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "ko-apiserver never wrote its port file"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Sandbox {
            dir,
            port,
            server,
            holders,
            holder_pids,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("api/kubeconfig")
    }

    pub fn runtime_path(&self) -> PathBuf {
        self.dir.path().join("api/runtime.json")
    }

    /// The real kubectl against this sandbox only (hermetic, private cache).
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut c = ko_testkit::hermetic("kubectl");
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args);
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("api/apiserver.log")).unwrap_or_default()
    }

    /// Peak resident memory of the emulator in KiB.
    pub fn server_peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn kill_holder(&mut self, i: usize) {
        let _ = self.holders[i].kill();
        let _ = self.holders[i].wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for h in &mut self.holders {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

/// Splits `kubectl get` table output into rows of whitespace-separated cells.
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}
