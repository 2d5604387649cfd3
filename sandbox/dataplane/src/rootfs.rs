//! A pod's filesystem, mounted inside the pod holder's own mount namespace (so every
//! mount here disappears with the pod's last process; nothing is left on the host).
//!
//! - Host pods see the host's filesystem with the pod's directories bound over
//!   container paths (`/var/run/ovn` ...).
//! - Image pods get, as a container runtime gives them: an overlay of the cached OVN
//!   image (read-only lower layer, shared) and a per-pod writable layer as their
//!   root, fresh /proc and /sys, the host's /dev, the host's /run/netns (slave, so
//!   netns made later still appear), and the pod's directories bound on top; then
//!   `pivot_root` makes it the namespace's root, so `nsenter -t <holder> -m` (exec,
//!   the daemons, the sandbox's own ovs-vsctl/ovn-nbctl) runs the image's binaries.
//!
//! All mount code of pods lives here: `node::binds` says what is bound where.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::argv;
use crate::exec::{in_pod, in_pod_mnt, run};

/// A bind of a pod directory (root mount ns path) onto a container path.
#[derive(Clone, Debug)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: String,
}

/// Where the old root is parked during `pivot_root` (removed right after).
const OLD_ROOT: &str = "/.ko-old-root";

/// Mount the pod's filesystem in the mount namespace of holder `pid`.
/// `image`: the image root for image pods, None for host pods. `layer_dir`: a
/// directory of the pod's own for the overlay's writable layer.
pub fn mount_pod(
    pid: u32,
    pod_key: &str,
    image: Option<&Path>,
    layer_dir: &Path,
    binds: &[Bind],
) -> Result<()> {
    for b in binds {
        std::fs::create_dir_all(&b.src)
            .with_context(|| format!("creating pod directory {}", b.src.display()))?;
    }
    let Some(image) = image else {
        for b in binds {
            run(&in_pod_mnt(
                pid,
                &argv!["mount", "--bind", b.src.display(), b.dst],
            ))
            .with_context(|| format!("binding {} in pod {pod_key}", b.dst))?;
        }
        return Ok(());
    };
    mount_image_root(pid, image, layer_dir, binds).with_context(|| {
        format!(
            "mounting the image {} as pod {pod_key}'s root",
            image.display()
        )
    })
}

fn mount_image_root(pid: u32, image: &Path, layer_dir: &Path, binds: &[Bind]) -> Result<()> {
    let upper = layer_dir.join("upper");
    let work = layer_dir.join("work");
    let root = layer_dir.join("merged");
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let r = |p: &str| root.join(p.trim_start_matches('/')).display().to_string();
    let m = |a: Vec<String>| run(&in_pod_mnt(pid, &a));
    m(argv![
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        format!(
            "lowerdir={},upperdir={},workdir={}",
            image.display(),
            upper.display(),
            work.display()
        ),
        root.display()
    ])?;
    m(argv!["mount", "-t", "proc", "proc", r("/proc")])?;
    // sysfs shows the network devices of the namespace that mounts it: the pod's.
    run(&in_pod(
        pid,
        &argv!["mount", "-t", "sysfs", "sysfs", r("/sys")],
    ))?;
    m(argv!["mount", "--rbind", "/dev", r("/dev")])?;
    let mut dirs = vec![r("/run/netns"), r(OLD_ROOT)];
    let targets: Vec<String> = binds
        .iter()
        .map(|b| resolve_in(image, &b.dst).map(|p| r(&p.display().to_string())))
        .collect::<Result<_>>()?;
    dirs.extend(targets.iter().cloned());
    let mut mkdir = argv!["mkdir", "-p"];
    mkdir.extend(dirs);
    m(mkdir)?;
    m(argv!["mount", "--rbind", "/run/netns", r("/run/netns")])?;
    for (b, t) in binds.iter().zip(&targets) {
        m(argv!["mount", "--bind", b.src.display(), t])?;
    }
    m(argv!["pivot_root", root.display(), r(OLD_ROOT)])?;
    // From here on the namespace's root is the image: these run the image's tools.
    m(argv!["umount", "-l", OLD_ROOT])?;
    m(argv!["rmdir", OLD_ROOT])?;
    Ok(())
}

/// A container path with the image's symlinks resolved inside the image
/// (`/var/run/ovn` → `/run/ovn` on Debian), so a bind never follows a symlink out
/// to the host's directory of the same name.
pub fn resolve_in(image: &Path, path: &str) -> Result<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                out.pop();
                continue;
            }
            _ => {}
        }
        let next = out.join(&c);
        let on_disk = image.join(next.strip_prefix("/").unwrap_or(&next));
        match std::fs::read_link(&on_disk) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    bail!("too many symlinks resolving {path} in {}", image.display());
                }
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                let mut more = components(&target.display().to_string());
                more.reverse();
                todo.extend(more);
            }
            Err(_) => out = next,
        }
    }
    Ok(out)
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_resolve_through_the_images_own_symlinks() {
        let img = std::env::temp_dir().join(format!("ko-rootfs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&img);
        std::fs::create_dir_all(img.join("run")).unwrap();
        std::fs::create_dir_all(img.join("var")).unwrap();
        std::fs::create_dir_all(img.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/run", img.join("var/run")).unwrap();
        std::os::unix::fs::symlink("usr/lib", img.join("lib")).unwrap();
        std::os::unix::fs::symlink("../run", img.join("var/rel")).unwrap();
        let res = |p: &str| resolve_in(&img, p).unwrap();
        assert_eq!(res("/var/run/ovn"), PathBuf::from("/run/ovn"));
        assert_eq!(
            res("/var/rel/openvswitch"),
            PathBuf::from("/run/openvswitch")
        );
        assert_eq!(res("/lib/x"), PathBuf::from("/usr/lib/x"));
        assert_eq!(res("/etc/ovn"), PathBuf::from("/etc/ovn"));
        std::os::unix::fs::symlink("/loop", img.join("loop")).unwrap();
        assert!(resolve_in(&img, "/loop/x").is_err());
        std::fs::remove_dir_all(&img).unwrap();
    }
}
