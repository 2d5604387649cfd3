//! Running tools: always argv arrays, never a shell; every call has a timeout and an
//! error that names the command, its exit status and its stderr.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Build an argv `Vec<String>` from anything displayable.
#[macro_export]
macro_rules! argv {
    ($($a:expr),* $(,)?) => { vec![$($a.to_string()),*] };
}

pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }
}

/// The command for error messages, shortened: NB transactions run to many kB.
fn show(argv: &[String]) -> String {
    let s = argv.join(" ");
    if s.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{} ...", &s[..cut])
    } else {
        s
    }
}

/// Run argv with optional stdin; returns whatever happened (no error on non-zero exit).
pub fn run_raw(argv: &[String], stdin: Option<&str>, timeout: Duration) -> Result<Output> {
    let (prog, args) = argv.split_first().context("internal error: empty argv")?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "could not start `{}` (is it installed and on PATH?)",
                show(argv)
            )
        })?;
    if let Some(input) = stdin
        && let Some(mut w) = child.stdin.take()
    {
        w.write_all(input.as_bytes())
            .with_context(|| format!("writing stdin of `{}`", show(argv)))?;
    }
    let out = drain(&mut child.stdout.take());
    let err = drain(&mut child.stderr.take());
    let status = wait_timeout(&mut child, timeout);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(code) => Ok(Output {
            status: code,
            stdout,
            stderr,
        }),
        None => bail!(
            "`{}` did not finish within {}s and was killed; stderr: {}",
            show(argv),
            timeout.as_secs(),
            stderr.trim()
        ),
    }
}

fn drain<R: Read + Send + 'static>(r: &mut Option<R>) -> thread::JoinHandle<String> {
    let r = r.take();
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

/// Wait for the child; Some(exit code, None if killed by signal) or None on timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<Option<i32>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st.code()),
            Ok(None) => {}
            Err(_) => return Some(None),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Run argv; error unless it exits 0. Returns stdout.
pub fn run(argv: &[String]) -> Result<String> {
    run_with(argv, None, DEFAULT_TIMEOUT)
}

pub fn run_with(argv: &[String], stdin: Option<&str>, timeout: Duration) -> Result<String> {
    let out = run_raw(argv, stdin, timeout)?;
    if !out.ok() {
        bail!(
            "`{}` failed (exit {}): {}",
            show(argv),
            out.status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by signal".into()),
            out.stderr.trim()
        );
    }
    Ok(out.stdout)
}

/// A log file opened for appending, twice: a child's stdout and stderr.
fn log_files(log: &Path) -> Result<(std::fs::File, std::fs::File)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let f2 = f.try_clone().context("duplicating a log file handle")?;
    Ok((f, f2))
}

/// The last `n` lines of a log, for an error message that says why a helper died.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(n).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Run a command that daemonizes (`--detach`): its stdio goes to a log file so a
/// daemon that keeps a descriptor open cannot make us wait forever.
pub fn run_daemon(argv: &[String], log: &Path) -> Result<()> {
    let (prog, args) = argv.split_first().context("internal error: empty argv")?;
    let (f, f2) = log_files(log)?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .spawn()
        .with_context(|| format!("could not start `{}`", show(argv)))?;
    match wait_timeout(&mut child, DEFAULT_TIMEOUT) {
        Some(Some(0)) => Ok(()),
        Some(code) => bail!(
            "`{}` failed (exit {:?}); see {}",
            show(argv),
            code,
            log.display()
        ),
        None => bail!(
            "`{}` did not detach within 60s; see {}",
            show(argv),
            log.display()
        ),
    }
}

/// Start a long-running helper of the sandbox (emulator, kubelet) in its own session so
/// it outlives the caller and its terminal, stdio appended to `log`; returns its pid.
/// `program` is what runs, `argv[0]` what `ps` shows. stdout must not be the caller's:
/// tests read `up`'s stdout to its end.
pub fn spawn_detached(program: &Path, argv: &[String], log: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let (arg0, args) = argv.split_first().context("internal error: empty argv")?;
    let (f, f2) = log_files(log)?;
    let mut cmd = Command::new(program);
    cmd.arg0(arg0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2);
    // SAFETY: setsid() is async-signal-safe and the only thing run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", show(argv)))?;
    Ok(child.id())
}

/// argv prefix to run inside a pod: its mount and network namespaces.
pub fn in_pod(pid: u32, argv: &[String]) -> Vec<String> {
    let mut v = argv!["nsenter", "-t", pid, "-m", "-n", "--"];
    v.extend_from_slice(argv);
    v
}

/// argv prefix to run in a pod's mount namespace only.
pub fn in_pod_mnt(pid: u32, argv: &[String]) -> Vec<String> {
    let mut v = argv!["nsenter", "-t", pid, "-m", "--"];
    v.extend_from_slice(argv);
    v
}

/// argv prefix to run inside a named netns (root mount namespace).
pub fn in_netns(netns: &str, argv: &[String]) -> Vec<String> {
    let mut v = vec![
        "nsenter".to_string(),
        format!("--net=/run/netns/{netns}"),
        "--".into(),
    ];
    v.extend_from_slice(argv);
    v
}

/// Feed `ip -n <netns> -batch -` one command per line (far fewer processes than one
/// `ip` per step). Lines are built from our own plan, never from user input.
pub fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut argv = argv!["ip"];
    if let Some(ns) = netns {
        argv.extend(argv!["-n", ns]);
    }
    argv.extend(argv!["-batch", "-"]);
    let mut input = lines.join("\n");
    input.push('\n');
    run_with(&argv, Some(&input), DEFAULT_TIMEOUT)
        .with_context(|| format!("ip batch in netns {}:\n{input}", netns.unwrap_or("(root)")))?;
    Ok(())
}

/// Poll `f` until it returns Some or the timeout expires.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
