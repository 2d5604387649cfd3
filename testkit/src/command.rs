//! Commands that see only what the test gives them.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// `KO_*` variables a test run passes on on purpose: they pick which sandbox (prefix,
/// OVN version, prebuilt binaries, state and image directories) or which cluster the
/// run is about, not how the program under test behaves.
const KO_PASSED_ON: &[&str] = &[
    "KO_SANDBOX_PREFIX",
    "KO_SANDBOX_OVN",
    "KO_SANDBOX_BIN",
    "KO_SANDBOX_DIR",
    "KO_SANDBOX_IMAGE_DIR",
    "KO_SANDBOX_DEBIAN_MIRROR",
    "KO_E2E_KUBECONFIG",
    "KO_E2E_EXTERNAL_ADDRESS",
];

/// Variables of the developer's shell that change what kubectl or the plugin do:
/// the cluster (`KUBECONFIG`), colour, the Kube-OVN namespace, and the plugin's
/// env-backed flags (`--tcp-conn-check-port` and friends).
const SCRUBBED: &[&str] = &[
    "KUBECONFIG",
    "NO_COLOR",
    "KUBE_OVN_NS",
    "TCP_CONN_CHECK_PORT",
    "UDP_CONN_CHECK_PORT",
    "WITHOUT_KUBE_PROXY",
];

/// An empty home shared by the test processes of this user: kubectl's discovery cache
/// lands there instead of in the developer's `~/.kube`, and no `~/.kube/config` exists.
pub fn test_home() -> &'static PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let home = std::env::temp_dir().join(format!("kubectl-ko-test-home-{uid}"));
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create the test HOME {}: {e}", home.display()));
        home
    })
}

/// `program` with the developer's environment scrubbed (see [`SCRUBBED`], every `KO_*`
/// but [`KO_PASSED_ON`]) and `HOME` set to [`test_home`]. A test that wants one of
/// them sets it on the returned command.
pub fn hermetic(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    scrub(&mut c);
    c
}

/// What [`hermetic`] does, for a command built elsewhere.
pub fn scrub(c: &mut Command) {
    for k in SCRUBBED {
        c.env_remove(k);
    }
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && k.starts_with("KO_")
            && !KO_PASSED_ON.contains(&k)
        {
            c.env_remove(k);
        }
    }
    c.env("HOME", test_home());
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run and return output; panics when the command could not start.
pub fn run(mut c: Command) -> Output {
    c.output()
        .unwrap_or_else(|e| panic!("could not start {c:?}: {e}"))
}

/// Run `cmd`, which must succeed; returns its stdout. A failure shows the arguments
/// and stderr.
pub fn ok(cmd: Command) -> String {
    let shown = format!(
        "{} {:?}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().collect::<Vec<_>>()
    );
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({:?}):\n{}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run `cmd` (stdin closed), draining stdout and stderr as it goes; kill it and fail
/// the test if it outlives `deadline`, so a hang is a failure that names the command.
pub fn run_within(cmd: &mut Command, deadline: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the child") {
            break s;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Run `cmd` (already carrying `-o json`) and parse its stdout: (exit code, document,
/// stderr). Panics with both streams when stdout is not JSON.
pub fn json_of(cmd: Command) -> (i32, Value, String) {
    let shown = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let out = run(cmd);
    let code = out.status.code().unwrap_or(-1);
    let stdout = text(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{shown} did not print JSON ({e}), exit {code}:\n{stdout}\n{}",
            text(&out.stderr)
        )
    });
    (code, v, text(&out.stderr))
}
