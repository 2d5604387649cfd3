//! Shared by the sandbox integration tests; other crates can copy this pattern:
//! `let kc = sandbox_up("my-name", &[])` runs `e2e/sandbox up --name my-name` (which
//! reuses a running sandbox of that name) and returns the path from its last stdout
//! line `KUBECONFIG=<path>`; then drive the real `kubectl --kubeconfig <path>`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `e2e/sandbox <args>`. When the test binary's own ko-sandbox has a ko-apiserver
/// next to it (a workspace build), the wrapper is pointed at them instead of running
/// a nested `cargo build` while the test runner may hold cargo's lock.
pub fn sandbox_cmd(args: &[&str]) -> Output {
    sandbox_command(args).output().expect("running e2e/sandbox")
}

pub fn sandbox_command(args: &[&str]) -> Command {
    let mut c = Command::new(repo_root().join("e2e/sandbox"));
    c.args(args);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ko-sandbox"));
    if let Some(dir) = bin.parent()
        && dir.join("ko-apiserver").exists()
        && std::env::var_os("KO_SANDBOX_BIN").is_none()
    {
        c.env("KO_SANDBOX_BIN", dir);
    }
    c
}

/// The name ko-sandbox really uses for `name` (KO_SANDBOX_PREFIX, KO_SANDBOX_OVN):
/// what its state directory `/run/kubectl-ko-sandbox/<it>` and netns `<it>-*` are named.
pub fn effective_name(name: &str) -> String {
    let out = sandbox_cmd(&["name", "--name", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Bring sandbox `name` up (or reuse it) and return its kubeconfig path.
pub fn sandbox_up(name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["up", "--name", name];
    args.extend_from_slice(extra);
    let out = sandbox_cmd(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "e2e/sandbox up --name {name} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let path = last
        .strip_prefix("KUBECONFIG=")
        .unwrap_or_else(|| panic!("last stdout line is not KUBECONFIG=...: {last:?}"));
    let p = PathBuf::from(path);
    assert!(p.is_absolute() && p.exists(), "kubeconfig {p:?} missing");
    p
}

pub fn status_json(name: &str) -> serde_json::Value {
    let out = sandbox_cmd(&["status", "--name", name, "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status -o json is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: PathBuf) -> Self {
        Kubectl { kubeconfig }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("running kubectl")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl -o json output")
    }

    /// Exec in a pod; returns (exit code, stdout, stderr).
    pub fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
        cmd: &[&str],
    ) -> (i32, String, String) {
        let mut a = vec!["-n", ns, "exec", pod];
        if let Some(c) = container {
            a.extend_from_slice(&["-c", c]);
        }
        a.push("--");
        a.extend_from_slice(cmd);
        let out = self.run(&a);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Name of the single pod matching a label selector in kube-system.
    pub fn one_pod(&self, selector: &str) -> String {
        let v = self.json(&["-n", "kube-system", "get", "pods", "-l", selector]);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            items.len(),
            1,
            "expected exactly one pod with {selector}, got {}",
            items.len()
        );
        items[0]["metadata"]["name"].as_str().unwrap().to_string()
    }

    /// Pods of kube-system matching a selector, optionally on a node.
    pub fn pods(&self, ns: &str, selector: &str) -> Vec<serde_json::Value> {
        let v = self.json(&["-n", ns, "get", "pods", "-l", selector]);
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// `ping` from a pod; true if any reply came back.
    pub fn ping(&self, ns: &str, pod: &str, ip: &str, count: &str) -> bool {
        let (code, _, _) = self.exec(ns, pod, None, &["ping", "-c", count, "-W", "1", ip]);
        code == 0
    }

    pub fn pod_ips(&self, ns: &str, pod: &str) -> Vec<String> {
        let v = self.json(&["-n", ns, "get", "pod", pod]);
        v["status"]["podIPs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["ip"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Run ovn-nbctl / ovn-sbctl in the leader central pod through kubectl exec.
pub fn ovn_ctl(k: &Kubectl, db: &str, args: &[&str]) -> String {
    let leader = k.one_pod(&format!("ovn-{db}-leader=true"));
    let tool = format!("ovn-{db}ctl");
    let mut cmd = vec![tool.as_str()];
    cmd.extend_from_slice(args);
    let (code, out, err) = k.exec("kube-system", &leader, Some("ovn-central"), &cmd);
    assert_eq!(code, 0, "{cmd:?} failed: {err}");
    out
}

/// Poll `f` (up to ~`secs` seconds) until it returns true.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
