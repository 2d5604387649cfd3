//! The sandbox as tests use it: `e2e/sandbox <verb> --name <name>`, brought up under
//! one lock per sandbox, shared by the test binaries of every crate.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::command::text;

/// The workspace root (this crate lives in `<root>/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit has a parent directory")
        .to_path_buf()
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>-<hash>`).
fn build_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// `e2e/sandbox <args>`. When ko-sandbox and ko-apiserver were built next to the test
/// binary (a workspace build), the wrapper runs those instead of a nested `cargo build`
/// that would wait for the build-directory lock a running `cargo test` holds. The
/// developer's `KUBECONFIG` never reaches it.
pub fn sandbox_command(args: &[&str]) -> Command {
    let mut c = Command::new(repo_root().join("e2e/sandbox"));
    c.args(args).env_remove("KUBECONFIG");
    if std::env::var_os("KO_SANDBOX_BIN").is_none()
        && let Some(dir) = build_dir()
        && dir.join("ko-sandbox").exists()
        && dir.join("ko-apiserver").exists()
    {
        c.env("KO_SANDBOX_BIN", dir);
    }
    c
}

/// Run `e2e/sandbox <args>`.
pub fn sandbox_cmd(args: &[&str]) -> Output {
    sandbox_command(args).output().expect("running e2e/sandbox")
}

/// Run `e2e/sandbox <args> --name <name>` (`fault ...`, `status -o json`, `down`).
pub fn sandbox(name: &str, args: &[&str]) -> Output {
    let mut c = sandbox_command(args);
    c.args(["--name", name]);
    c.output().expect("running e2e/sandbox")
}

/// The name ko-sandbox really uses for `name` (KO_SANDBOX_PREFIX, KO_SANDBOX_OVN):
/// what its state directory `/run/kubectl-ko-sandbox/<it>` and netns `<it>-*` are named.
pub fn effective_name(name: &str) -> String {
    let out = sandbox_cmd(&["name", "--name", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// `e2e/sandbox status --name <name> -o json`.
pub fn status_json(name: &str) -> Value {
    let out = sandbox(name, &["status", "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status -o json is not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Holds `/run/lock/kubectl-ko-test-sandbox-<effective name>.lock` while `f` runs.
/// Every test process that checks, replaces or brings up a sandbox does so under it,
/// so two test binaries never race an `up` of the same sandbox (nextest runs each test
/// in its own process). The descriptor is close-on-exec: the sandbox's daemons must
/// not inherit it, or they would hold the lock for the sandbox's lifetime.
pub fn with_sandbox_lock<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let path = PathBuf::from(format!(
        "/run/lock/kubectl-ko-test-sandbox-{}.lock",
        effective_name(name)
    ));
    let file: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the sandbox lock {}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function owns; released when `file` drops.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let out = f();
    drop(file);
    out
}

/// The kubeconfig path from the last `KUBECONFIG=<path>` line of `up`/`status` output.
pub fn kubeconfig_line(stdout: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("KUBECONFIG="))
        .map(PathBuf::from)
        .next_back()
}

/// Bring sandbox `name` up with `extra` options (or reuse it), under the sandbox lock;
/// returns its kubeconfig. The sandbox's own tests use this directly: it never
/// substitutes `KO_E2E_KUBECONFIG`.
pub fn sandbox_up(name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["up", "--name", name];
    args.extend_from_slice(extra);
    let out = with_sandbox_lock(name, || sandbox_cmd(&args));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "e2e/sandbox up --name {name} failed (tests need root):\nstdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let p = kubeconfig_line(&stdout)
        .unwrap_or_else(|| panic!("no KUBECONFIG= line from e2e/sandbox up:\n{stdout}"));
    assert!(p.is_absolute() && p.exists(), "kubeconfig {p:?} missing");
    p
}

/// Kubeconfig of the cluster named `name` (a sandbox), brought up once per process;
/// `KO_E2E_KUBECONFIG`, when set, names the cluster to use instead (a real one).
pub fn kubeconfig(name: &str) -> PathBuf {
    kubeconfig_with(name, &[])
}

/// Like [`kubeconfig`], with extra `up` options (`--nodes 2`).
pub fn kubeconfig_with(name: &str, up_args: &[&str]) -> PathBuf {
    if let Some(k) = std::env::var_os("KO_E2E_KUBECONFIG") {
        return PathBuf::from(k);
    }
    static CONFIGS: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let configs = CONFIGS.get_or_init(Default::default);
    let mut guard = configs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = guard.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let p = sandbox_up(name, up_args);
    guard.push((name.to_string(), p.clone()));
    p
}
