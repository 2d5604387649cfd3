//! The sandbox's background processes (`kubelet`, `controller`, `node-endpoints`):
//! each is `ko-sandbox --name <sandbox> <role> --state-dir <dir>`, started by `up`,
//! recorded so `down` kills it, and known by `<role>.pid` in the state directory.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::state::{Created, Paths, Recorder};

fn pid_file(paths: &Paths, role: &str) -> PathBuf {
    paths.dir().join(format!("{role}.pid"))
}

/// The pid of this sandbox's running `role`, if there is one: the pid file names a
/// live process whose command line is that role for this state directory (pids get
/// reused).
pub fn running_pid(paths: &Paths, role: &str) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pid_file(paths, role))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains(role) && cmdline.contains(&paths.dir().display().to_string())).then_some(pid)
}

/// Writes `<role>.pid`: the process says it is up.
pub fn write_pid(paths: &Paths, role: &str) -> Result<()> {
    let path = pid_file(paths, role);
    fs::write(&path, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing the {role} pid file {}", path.display()))
}

/// Claims the sandbox for one background process `role`: checks `--state-dir`,
/// takes `<role>.lock` (held while the returned file lives) and writes `<role>.pid`,
/// so `up` never starts a second one and `down` finds it.
pub fn claim(paths: &Paths, state_dir: &Path, role: &str) -> Result<File> {
    if state_dir != paths.dir() {
        bail!(
            "--state-dir {} is not the state directory of sandbox `{}` ({}); the {role} is started by `up`",
            state_dir.display(),
            paths.name,
            paths.dir().display()
        );
    }
    let lock_path = paths.dir().join(format!("{role}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another {role} already runs for sandbox `{}` (pid in {})",
            paths.name,
            pid_file(paths, role).display()
        );
    }
    write_pid(paths, role)?;
    Ok(lock)
}

/// How `start` knows a freshly spawned process is ready.
pub struct Ready<'a> {
    /// What is waited for, as the timeout error says it.
    pub waiting_for: &'a str,
    pub within: Duration,
    /// Beyond the pid file naming the new process (always required).
    pub also: &'a dyn Fn() -> bool,
}

/// Starts `role` in the background unless one runs already, and waits until it is
/// ready: a process that cannot start fails `up` rather than leaving its work undone
/// without a word. Returns its pid.
pub fn start(paths: &Paths, rec: &Recorder, role: &str, ready: Ready) -> Result<u32> {
    if let Some(pid) = running_pid(paths, role) {
        return Ok(pid);
    }
    let exe = std::env::current_exe().context("finding the ko-sandbox executable")?;
    let shown = exe.display().to_string();
    // The very binary running `up`, even when a rebuild replaced (deleted) the file
    // meanwhile: the path would then name another build, or nothing at all.
    let program = Path::new("/proc/self/exe");
    // the state dir on its command line lets `down` and `running_pid` recognise it
    let argv = crate::argv![
        shown.trim_end_matches(" (deleted)"),
        "--name",
        paths.name,
        role,
        "--state-dir",
        paths.dir().display()
    ];
    let log = paths.logs().join(format!("{role}.log"));
    let pid = crate::exec::spawn_detached(program, &argv, &log)
        .with_context(|| format!("starting the sandbox {role} ({shown})"))?;
    rec.record(&Created::Pid {
        pid,
        what: role.into(),
    })?;
    crate::exec::poll(ready.waiting_for, ready.within, || {
        (running_pid(paths, role) == Some(pid) && (ready.also)()).then_some(())
    })
    .with_context(|| {
        format!(
            "the sandbox {role} (pid {pid}) did not come up; last lines of {}:\n{}",
            log.display(),
            crate::exec::log_tail(&log, 5)
        )
    })?;
    Ok(pid)
}
