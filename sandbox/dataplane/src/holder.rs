//! Pod holders: one long-lived process per pod that owns the pod's mount namespace
//! (container paths bound to the pod's directories) inside a network namespace.
//! Exec into a pod = `nsenter -t <holder pid> -m -n`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::argv;
use crate::exec;

/// A bind of a pod directory (root mount ns path) onto a container path.
#[derive(Clone, Debug)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: String,
}

/// Start a holder in `netns` with the given binds; returns its pid once its mounts are
/// in place. `propagation slave` keeps netns created later visible under
/// /var/run/netns inside the pod (tcpdump/trace `nsenter --net=<pod_netns>` needs it).
pub fn spawn(netns: &str, pod_key: &str, binds: &[Bind], stderr_log: &Path) -> Result<u32> {
    let exe = std::env::current_exe().context("finding the ko-sandbox executable")?;
    let mut args: Vec<String> = argv![
        format!("--net=/run/netns/{netns}"),
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "--",
        exe.display(),
        "__holder",
        pod_key
    ];
    for b in binds {
        std::fs::create_dir_all(&b.src)
            .with_context(|| format!("creating pod directory {}", b.src.display()))?;
        args.push(format!("{}={}", b.src.display(), b.dst));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_log)
        .with_context(|| format!("opening {}", stderr_log.display()))?;
    // setsid: the holder must outlive `up` and not get the terminal's SIGHUP.
    let mut child = Command::new("setsid")
        .arg("nsenter")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the holder of pod {pod_key}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("holder stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .with_context(|| format!("reading readiness of pod {pod_key}"))?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "the holder of pod {pod_key} failed to set up its mounts; see {}",
            stderr_log.display()
        );
    }
    Ok(pid)
}

/// Entry point of `ko-sandbox __holder <ns/pod> SRC=DST...`: bind the container paths,
/// report readiness, then sleep until killed.
pub fn main(args: &[String]) -> Result<()> {
    for spec in args.iter().skip(1) {
        let (src, dst) = spec
            .split_once('=')
            .with_context(|| format!("bad bind spec {spec}"))?;
        std::fs::create_dir_all(dst).with_context(|| format!("creating mount point {dst}"))?;
        exec::run(&argv!["mount", "--bind", src, dst])?;
    }
    println!("ready");
    loop {
        std::thread::park();
    }
}
