//! Shared helpers for the kubectl-ko integration tests.
//!
//! Sandbox tests bring up (or reuse) a sandbox with `e2e/sandbox up --name <name>`
//! and need root. If `KO_E2E_KUBECONFIG` is set, that cluster is used instead
//! (how the suite runs against a real kind cluster). Children never inherit
//! KUBECONFIG, NO_COLOR or KUBE_OVN_NS from the developer's shell.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

pub const KO: &str = env!("CARGO_BIN_EXE_kubectl-ko");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `e2e/sandbox`, using the ko-sandbox/ko-apiserver built next to our binary when
/// they exist: otherwise e2e/sandbox runs `cargo build`, which waits for the
/// build-directory lock a running `cargo test` holds.
fn sandbox_cmd() -> Command {
    let mut cmd = Command::new(repo().join("e2e/sandbox"));
    cmd.env_remove("KUBECONFIG");
    if std::env::var_os("KO_SANDBOX_BIN").is_none()
        && let Some(dir) = Path::new(KO).parent()
        && dir.join("ko-sandbox").exists()
        && dir.join("ko-apiserver").exists()
    {
        cmd.env("KO_SANDBOX_BIN", dir);
    }
    cmd
}

/// Kubeconfig of the cluster named `name` (a sandbox), brought up once per process.
/// Concurrent test binaries serialize `up` with a lock file.
pub fn kubeconfig(name: &str) -> PathBuf {
    kubeconfig_with(name, &[])
}

/// Like `kubeconfig`, with extra `up` options (`--nodes 2`).
pub fn kubeconfig_with(name: &str, up_args: &[&str]) -> PathBuf {
    if let Some(k) = std::env::var_os("KO_E2E_KUBECONFIG") {
        return PathBuf::from(k);
    }
    static CONFIGS: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let configs = CONFIGS.get_or_init(Default::default);
    let mut guard = configs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = guard.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let lock = format!("/run/lock/kubectl-ko-test-sandbox-{name}.lock");
    let sb = sandbox_cmd();
    let mut cmd = Command::new("flock");
    // -o: the sandbox's daemons must not inherit the lock fd (they would hold it
    // for the sandbox's lifetime and the next test process's `up` would wait forever)
    cmd.arg("-o")
        .arg(&lock)
        .arg(sb.get_program())
        .args(["up", "--name", name])
        .args(up_args)
        .env_remove("KUBECONFIG");
    for (k, v) in sb.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd
        .output()
        .expect("run e2e/sandbox up (flock must be installed)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "e2e/sandbox up --name {name} failed (tests need root):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("KUBECONFIG="))
        .unwrap_or_else(|| panic!("no KUBECONFIG= line from e2e/sandbox up:\n{stdout}"));
    let p = PathBuf::from(path.trim());
    guard.push((name.to_string(), p.clone()));
    p
}

/// The name the sandbox `name` really runs under, as `ko-sandbox` derives it (its
/// netns are `<that>-node1`, `<that>-ext`...): KO_SANDBOX_PREFIX in front and, in a
/// pass per OVN version, KO_SANDBOX_OVN's major number behind (`rb-23`).
pub fn sandbox_instance(name: &str) -> String {
    let prefix = std::env::var("KO_SANDBOX_PREFIX").unwrap_or_default();
    let mut full = if name.starts_with(&prefix) {
        name.to_string()
    } else {
        format!("{prefix}{name}")
    };
    if let Ok(ovn) = std::env::var("KO_SANDBOX_OVN")
        && let Some(major) = ovn.split('.').next().filter(|m| !m.is_empty())
        && !full.ends_with(&format!("-{major}"))
    {
        full = format!("{full}-{major}");
    }
    full
}

/// Run a sandbox helper command (`fault ...`) for sandbox `name`.
pub fn sandbox(name: &str, args: &[&str]) -> Output {
    let mut cmd = sandbox_cmd();
    cmd.args(args).args(["--name", name]);
    cmd.output().expect("run e2e/sandbox")
}

fn scrub(cmd: &mut Command) {
    cmd.env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("KUBE_OVN_NS");
}

/// `kubectl ko --kubeconfig <kc> <args>`.
pub fn ko(kc: &Path) -> Command {
    let mut c = Command::new(KO);
    scrub(&mut c);
    c.arg("--kubeconfig").arg(kc);
    c
}

/// `kubectl ko` without any cluster configuration.
pub fn ko_bare() -> Command {
    let mut c = Command::new(KO);
    scrub(&mut c);
    c
}

/// The real kubectl against the same cluster.
pub fn kubectl(kc: &Path) -> Command {
    let mut c = Command::new("kubectl");
    scrub(&mut c);
    c.arg("--kubeconfig").arg(kc);
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run and return output; panics with stderr when the command could not start.
pub fn run(mut c: Command) -> Output {
    c.output().expect("spawn")
}

/// `kubectl get ... -o jsonpath=...` output.
pub fn jsonpath(kc: &Path, args: &[&str], path: &str) -> String {
    let out = run({
        let mut c = kubectl(kc);
        c.args(args).arg("-o").arg(format!("jsonpath={path}"));
        c
    });
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
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
            "{.items[0].metadata.name}",
        );
        if !name.trim().is_empty() {
            return name.trim().to_string();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("no pod with {label}=true");
}

/// The sandbox API emulator's request log (one `METHOD URI -> status` line per request),
/// next to its kubeconfig; None against a real cluster.
pub fn api_request_log(kc: &Path) -> Option<String> {
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        return None;
    }
    std::fs::read_to_string(kc.parent()?.join("apiserver.log")).ok()
}
