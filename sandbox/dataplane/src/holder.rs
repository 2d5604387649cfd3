//! Pod holders: one long-lived process per pod that owns the pod's mount namespace
//! (its root filesystem, container paths bound to the pod's directories: rootfs.rs)
//! inside a network namespace.
//! Exec into a pod = `nsenter -t <holder pid> -m -n`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::argv;
use crate::exec;
use crate::rootfs::Bind;

/// Where a pod's root filesystem comes from (see rootfs.rs).
pub struct PodFs<'a> {
    /// The OVN image the pod runs from; None = the host's filesystem.
    pub image: Option<&'a Path>,
    /// The pod's own directory for the image's writable layer.
    pub layer_dir: &'a Path,
}

/// Start a holder in `netns` with its filesystem (`fs`, `binds`); returns its pid once
/// its mounts are in place. The holder is `sleep infinity` in its own mount namespace; `propagation
/// slave` keeps netns created later visible under /var/run/netns inside the pod
/// (tcpdump/trace `nsenter --net=<pod_netns>` needs it). It does not run our own
/// binary, so a rebuild of ko-sandbox while a sandbox starts cannot break it.
pub fn spawn(
    netns: &str,
    pod_key: &str,
    fs: &PodFs,
    binds: &[Bind],
    stderr_log: &Path,
) -> Result<u32> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_log)
        .with_context(|| format!("opening {}", stderr_log.display()))?;
    // setsid: the holder must outlive `up` and not get the terminal's SIGHUP.
    let mut child = Command::new("setsid")
        .args(argv![
            "nsenter",
            format!("--net=/run/netns/{netns}"),
            "unshare",
            "--mount",
            "--propagation",
            "slave",
            "--",
            "sleep",
            "infinity"
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the holder of pod {pod_key}"))?;
    let pid = child.id();
    // Only once the exec chain reached `sleep` has unshare made the new mount
    // namespace; binding earlier would mount into the host's namespace.
    let ready = exec::poll(
        &format!("the holder of pod {pod_key} to start"),
        Duration::from_secs(10),
        || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false);
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "sleep").then_some(true)
        },
    )?;
    if !ready {
        bail!(
            "the holder of pod {pod_key} exited at start; see {}",
            stderr_log.display()
        );
    }
    let own = std::fs::read_link("/proc/self/ns/mnt").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    if own.is_none() || own == theirs {
        let _ = child.kill();
        bail!("the holder of pod {pod_key} did not get its own mount namespace");
    }
    if let Err(e) = crate::rootfs::mount_pod(pid, pod_key, fs.image, fs.layer_dir, binds) {
        let _ = child.kill();
        return Err(e);
    }
    Ok(pid)
}
