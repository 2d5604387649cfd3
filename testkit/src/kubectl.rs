//! The real kubectl against a kubeconfig, hermetic, and small queries built on it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::command::{hermetic, ok, text};

/// `kubectl --kubeconfig <kc>`, hermetic.
pub fn kubectl(kc: &Path) -> Command {
    let mut c = hermetic("kubectl");
    c.arg("--kubeconfig").arg(kc);
    c
}

/// `kubectl <args>` that must succeed; returns stdout.
pub fn kubectl_ok(kc: &Path, args: &[&str]) -> String {
    let mut c = kubectl(kc);
    c.args(args);
    ok(c)
}

/// `kubectl apply -f -` with `manifest` on stdin; must succeed.
pub fn apply(kc: &Path, manifest: &str) {
    let mut c = kubectl(kc);
    c.args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("running kubectl apply");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(manifest.as_bytes())
        .expect("writing the manifest to kubectl apply");
    let out = child.wait_with_output().expect("waiting for kubectl apply");
    assert!(
        out.status.success(),
        "kubectl apply failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `kubectl <args> -o jsonpath=<path>` output; the command must succeed.
pub fn jsonpath(kc: &Path, args: &[&str], path: &str) -> String {
    let mut c = kubectl(kc);
    c.args(args).arg("-o").arg(format!("jsonpath={path}"));
    ok(c)
}

pub fn nodes(kc: &Path) -> Vec<String> {
    jsonpath(kc, &["get", "nodes"], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Name of the pod carrying `<label>=true` in kube-system (e.g. ovn-nb-leader),
/// waiting while an election settles.
pub fn leader_pod(kc: &Path, label: &str) -> String {
    for _ in 0..30 {
        let name = jsonpath(
            kc,
            &[
                "-n",
                "kube-system",
                "get",
                "pods",
                "-l",
                &format!("app=ovn-central,{label}=true"),
            ],
            // `[*]`, not `[0]`: no labelled pod yet (an election settling) is an
            // empty answer to wait on, where `[0]` makes kubectl fail
            "{.items[*].metadata.name}",
        );
        let mut names = name.split_whitespace();
        if let (Some(one), None) = (names.next(), names.next()) {
            return one.to_string();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("not exactly one pod with {label}=true after 30 s");
}

/// The sandbox API emulator's request log (one `METHOD URI -> status` line per request),
/// next to its kubeconfig; None against a real cluster.
pub fn api_request_log(kc: &Path) -> Option<String> {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        return None;
    }
    std::fs::read_to_string(kc.parent()?.join("apiserver.log")).ok()
}

/// kubectl bound to one kubeconfig, for tests that make many calls.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: PathBuf) -> Self {
        Kubectl { kubeconfig }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = kubectl(&self.kubeconfig);
        c.args(args);
        c.output().expect("running kubectl")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        kubectl_ok(&self.kubeconfig, args)
    }

    /// `kubectl apply -f -` with `manifest` on stdin; must succeed.
    pub fn apply(&self, manifest: &str) {
        apply(&self.kubeconfig, manifest)
    }

    pub fn json(&self, args: &[&str]) -> Value {
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
            text(&out.stdout),
            text(&out.stderr),
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

    /// Pods of `ns` matching a selector.
    pub fn pods(&self, ns: &str, selector: &str) -> Vec<Value> {
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
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
