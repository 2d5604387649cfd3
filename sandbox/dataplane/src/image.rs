//! OVN versions the sandbox runs, and the root filesystem ("image") each one runs from.
//!
//! A version the host's packages provide runs on the host's binaries. Any other is a
//! Debian root filesystem built once with debootstrap, cached under
//! `/var/cache/kubectl-ko-sandbox/images/<version>` and shared by every sandbox, the
//! way a node caches a container image: it is built into a temporary directory,
//! checked, marked ready (the marker is written last) and renamed into place, under
//! a lock so concurrent `up`s build it once. An image without its marker, or whose
//! tools do not run or report another version, is rebuilt.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::argv;
use crate::exec;

/// One OVN version the sandbox can run, and the Debian suite that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// `--ovn` value: the OVN major.minor.
    pub ovn: &'static str,
    /// The OVS major.minor Debian pairs with it.
    pub ovs: &'static str,
    pub suite: &'static str,
    /// No Debian suite ships this release: its binaries are built from this OVN
    /// tag and laid over the suite's image (`image --ovn V --from-dir DESTDIR`).
    pub from_source: Option<&'static str>,
}

/// Oldest first. 23.03 is what Debian 12 ships (and what the sandbox ran before
/// versions existed); 24.03 is Kube-OVN 1.13/1.14's, which no Debian suite
/// ships (built from source, see `ovn/tests/fixtures/versions/build-24.03.sh`);
/// 25.03 is what Kube-OVN 1.15/1.16/master build on.
pub const RELEASES: &[Release] = &[
    Release {
        ovn: "23.03",
        ovs: "3.1",
        suite: "bookworm",
        from_source: None,
    },
    Release {
        ovn: "24.03",
        ovs: "3.3",
        suite: "trixie",
        from_source: Some("v24.03.9"),
    },
    Release {
        ovn: "25.03",
        ovs: "3.5",
        suite: "trixie",
        from_source: None,
    },
    Release {
        ovn: "26.03",
        ovs: "4.0",
        suite: "sid",
        from_source: None,
    },
];

/// What `up` runs without `--ovn` / KO_SANDBOX_OVN: the version current Kube-OVN ships.
pub const DEFAULT_OVN: &str = "25.03";

/// Packages of an image: the OVN/OVS daemons and the tools Kube-OVN's own image has
/// that the plugin execs in these pods (ip, ss, ps, sysctl, ping, tcpdump; curl for
/// diagnose's probes from the pinger; Habets' arping and ndisc6 for trace's gateway
/// lookup from kube-ovn-cni; ipset, iptables, netstat for `log linux`).
const PACKAGES: &str = "ovn-central,ovn-host,openvswitch-switch,iproute2,procps,iputils-ping,\
tcpdump,ethtool,curl,arping,ndisc6,ipset,iptables,net-tools";

const MARKER: &str = ".ko-sandbox-image.json";
/// Images take ~400 MB; debootstrap needs the packages on top while it builds.
const MIN_FREE_BYTES: u64 = 1 << 30;

pub fn release(ovn: &str) -> Result<&'static Release> {
    RELEASES.iter().find(|r| r.ovn == ovn).with_context(|| {
        let known: Vec<&str> = RELEASES.iter().map(|r| r.ovn).collect();
        format!(
            "unknown OVN version `{ovn}`: the sandbox runs {}",
            known.join(", ")
        )
    })
}

impl Release {
    /// The tag KO_SANDBOX_OVN appends to sandbox names (`trace-25`).
    pub fn name_tag(&self) -> &'static str {
        self.ovn.split('.').next().unwrap_or(self.ovn)
    }
}

/// What the marker of a ready image records.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ImageInfo {
    pub ovn_version: String,
    pub ovs_version: String,
    pub suite: String,
    /// Unix time the build finished.
    pub built: u64,
    pub build_secs: f64,
    /// The `--include` list it was built with: another list (this file changed) makes
    /// the image outdated, and it is rebuilt like a broken one.
    #[serde(default)]
    pub packages: String,
}

pub fn cache_root() -> PathBuf {
    std::env::var_os("KO_SANDBOX_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kubectl-ko-sandbox/images"))
}

/// `<cache>/<version>`: a symlink to the current build `<version>@<unix time>`. Each
/// build gets its own directory, so a rebuild never pulls the files from under the
/// overlays of sandboxes still running on the previous one (removed once unused).
pub fn image_link(r: &Release) -> PathBuf {
    cache_root().join(r.ovn)
}

/// The current build's directory (what pods mount), or the link itself if it
/// resolves to nothing yet.
fn current(r: &Release) -> PathBuf {
    let link = image_link(r);
    fs::canonicalize(&link).unwrap_or(link)
}

/// The first line of `<tool> --version` ("ovn-nbctl 25.03.0") → "25.03.0".
pub fn version_of(first_line: &str) -> Option<String> {
    first_line
        .split_whitespace()
        .last()
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// (OVN, OVS) versions of the tools under `root` (None = the host's own).
pub fn tool_versions(root: Option<&Path>) -> Result<(String, String)> {
    let ask = |tool: &str| -> Result<String> {
        let a = match root {
            Some(r) => argv!["chroot", r.display(), tool, "--version"],
            None => argv![tool, "--version"],
        };
        let out = exec::run(&a)?;
        out.lines()
            .next()
            .and_then(version_of)
            .with_context(|| format!("`{}` printed no version: {out}", a.join(" ")))
    };
    Ok((ask("ovn-nbctl")?, ask("ovs-vsctl")?))
}

/// Whether the host's packages are this release (then no image is needed).
/// `KO_SANDBOX_HOST_PACKAGES=0` says no, so a Debian 12 host can run 23.03 from
/// its image the way a CI runner without those packages does.
pub fn host_provides(r: &Release) -> bool {
    if std::env::var("KO_SANDBOX_HOST_PACKAGES").is_ok_and(|v| v == "0") {
        return false;
    }
    tool_versions(None).is_ok_and(|(ovn, ovs)| {
        ovn.starts_with(&format!("{}.", r.ovn)) && ovs.starts_with(&format!("{}.", r.ovs))
    })
}

/// Is the image at `dir` complete and runnable, with the release's versions?
/// Ok(info) when it is, Err(why not) otherwise.
pub fn check(r: &Release, dir: &Path) -> Result<ImageInfo> {
    let marker = dir.join(MARKER);
    let text = fs::read_to_string(&marker)
        .with_context(|| format!("no ready marker {}", marker.display()))?;
    let info: ImageInfo = serde_json::from_str(&text)
        .with_context(|| format!("unreadable marker {}", marker.display()))?;
    if info.packages != PACKAGES {
        bail!("it was built with another package list than this ko-sandbox installs");
    }
    for f in [
        "usr/share/openvswitch/vswitch.ovsschema",
        "usr/share/ovn/ovn-nb.ovsschema",
        "usr/share/ovn/ovn-sb.ovsschema",
        "usr/sbin/ovs-vswitchd",
        "usr/bin/ovn-controller",
        "usr/bin/ovn-northd",
        "usr/bin/ping",
        "usr/bin/umount",
    ] {
        if !dir.join(f).exists() {
            bail!("{} is missing", dir.join(f).display());
        }
    }
    let (ovn, ovs) = tool_versions(Some(dir))?;
    if !ovn.starts_with(&format!("{}.", r.ovn)) || !ovs.starts_with(&format!("{}.", r.ovs)) {
        bail!(
            "its tools report OVN {ovn} / OVS {ovs}, not {} / {}",
            r.ovn,
            r.ovs
        );
    }
    Ok(info)
}

/// An exclusive lock on `<cache>/<version>.lock`, released when dropped.
struct BuildLock {
    _file: File,
}

fn lock(r: &Release) -> Result<BuildLock> {
    let root = cache_root();
    fs::create_dir_all(&root)
        .with_context(|| format!("creating the image cache {}", root.display()))?;
    let path = root.join(format!("{}.lock", r.ovn));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(BuildLock { _file: file })
}

/// The root filesystem for release `r`: the cached image, built (or rebuilt) first
/// if it is missing or broken. Progress goes to stderr.
pub fn ensure(r: &Release) -> Result<(PathBuf, ImageInfo)> {
    let dir = current(r);
    // Checked without the lock first: a ready image is read-only from here on.
    if let Ok(info) = check(r, &dir) {
        if !old_builds(r, &dir).is_empty() {
            let _lock = lock(r)?;
            remove_unused(r, &current(r));
        }
        return Ok((dir, info));
    }
    let _lock = lock(r)?;
    // Another `up` may have built it while we waited for the lock.
    let dir = current(r);
    match check(r, &dir) {
        Ok(info) => return Ok((dir, info)),
        Err(why) if dir.exists() => {
            eprintln!(
                "image OVN {} at {} is not usable ({why:#}); rebuilding it",
                r.ovn,
                dir.display()
            );
        }
        Err(_) => eprintln!(
            "image OVN {} is not cached yet; building it at {} (Debian {}: a few minutes, once)",
            r.ovn,
            dir.display(),
            r.suite
        ),
    }
    if let Some(tag) = r.from_source {
        bail!(
            "no Debian suite ships OVN {}: build it from source (OVN {tag}) with ovn/tests/fixtures/versions/build-24.03.sh, which installs the image with `ko-sandbox image --ovn {} --from-dir <DESTDIR>`",
            r.ovn,
            r.ovn
        );
    }
    let info = build(r, None)?;
    Ok((current(r), info))
}

/// The image of a release built from source: the suite's image with `destdir`
/// (`make install DESTDIR=...` of OVS and OVN) laid over it, checked and marked
/// like a Debian one.
pub fn install_from(r: &Release, destdir: &Path) -> Result<(PathBuf, ImageInfo)> {
    if r.from_source.is_none() {
        bail!(
            "OVN {} comes from Debian {}: `image --ovn {}` builds it, --from-dir is for releases built from source",
            r.ovn,
            r.suite,
            r.ovn
        );
    }
    for f in ["usr/bin/ovn-northd", "usr/sbin/ovs-vswitchd"] {
        if !destdir.join(f).exists() {
            bail!(
                "{} has no {f}: give the DESTDIR of `make install` of both OVS and OVN",
                destdir.display()
            );
        }
    }
    let _lock = lock(r)?;
    let info = build(r, Some(destdir))?;
    Ok((current(r), info))
}

/// Builds of `r` other than `keep` (`<version>@*` directories).
fn old_builds(r: &Release, keep: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}@", r.ovn);
    fs::read_dir(cache_root())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .filter(|p| p != keep)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an overlay of some process (a running sandbox's pod) has `dir` below it.
fn in_use(dir: &Path) -> bool {
    let needle = format!("lowerdir={}", dir.display());
    let Ok(rd) = fs::read_dir("/proc") else {
        return true;
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| {
            fs::read_to_string(e.path().join("mountinfo")).is_ok_and(|mi| {
                mi.match_indices(&needle).any(|(i, _)| {
                    matches!(
                        mi.as_bytes().get(i + needle.len()),
                        Some(b',' | b' ' | b'\n' | b':')
                    )
                })
            })
        })
}

/// Remove the old builds of `r` no running pod uses. Caller holds the build lock.
fn remove_unused(r: &Release, keep: &Path) {
    for old in old_builds(r, keep) {
        if in_use(&old) {
            eprintln!(
                "keeping the previous OVN {} image {}: a running sandbox uses it",
                r.ovn,
                old.display()
            );
        } else {
            let _ = fs::remove_dir_all(&old);
        }
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

fn mirror() -> String {
    std::env::var("KO_SANDBOX_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// Point `<cache>/<version>` at `store` atomically (a new symlink renamed over it).
/// An image directory of the layout before builds were versioned becomes an old build.
fn switch_link(r: &Release, store: &Path) -> Result<()> {
    let link = image_link(r);
    if fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir()) {
        let aside = cache_root().join(format!("{}@0-{}", r.ovn, std::process::id()));
        fs::rename(&link, &aside)
            .with_context(|| format!("moving the previous image {} aside", link.display()))?;
    }
    let tmp = cache_root().join(format!(".{}.link-{}", r.ovn, std::process::id()));
    let _ = fs::remove_file(&tmp);
    let target = store
        .file_name()
        .context("image directory without a name")?;
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("creating the symlink {}", tmp.display()))?;
    fs::rename(&tmp, &link).with_context(|| format!("pointing {} at the new image", link.display()))
}

/// Build the image into a temporary directory, check it, mark it, move it to its
/// own `<version>@<time>` directory and point `<version>` at it. Caller holds the
/// build lock.
fn build(r: &Release, overlay: Option<&Path>) -> Result<ImageInfo> {
    let root = cache_root();
    if !crate::preflight::on_path("debootstrap") {
        bail!(
            "building the OVN {} image needs debootstrap, which is not installed: run `sudo e2e/install-deps` (or `apt-get install debootstrap debian-archive-keyring`)",
            r.ovn
        );
    }
    if let Some(free) = free_bytes(&root)
        && free < MIN_FREE_BYTES
    {
        bail!(
            "not enough space to build the OVN {} image: {} has {} MiB free and the build needs about 1 GiB; free some space or point KO_SANDBOX_IMAGE_DIR elsewhere",
            r.ovn,
            root.display(),
            free >> 20
        );
    }
    let tmp = root.join(format!(".{}.building-{}", r.ovn, std::process::id()));
    let log = root.join(format!("{}.build.log", r.ovn));
    let _ = fs::remove_dir_all(&tmp);
    let start = Instant::now();
    let result = debootstrap(r, &tmp, &log)
        .and_then(|()| match overlay {
            Some(dir) => copy_over(dir, &tmp),
            None => Ok(()),
        })
        .and_then(|()| finish(r, &tmp, start));
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let store = root.join(format!("{}@{}", r.ovn, info.built));
    fs::rename(&tmp, &store)
        .with_context(|| format!("renaming {} to {}", tmp.display(), store.display()))?;
    switch_link(r, &store)?;
    remove_unused(r, &store);
    let dir = image_link(r);
    eprintln!(
        "image OVN {} (OVS {}) ready at {} in {:.0}s",
        info.ovn_version,
        info.ovs_version,
        dir.display(),
        info.build_secs
    );
    Ok(info)
}

/// `cp -a <from>/. <to>`: a source build's files over the Debian ones.
fn copy_over(from: &Path, to: &Path) -> Result<()> {
    let src = format!("{}/.", from.display());
    exec::run(&argv!["cp", "-a", src, to.display()])
        .with_context(|| format!("copying {} into the image", from.display()))?;
    Ok(())
}

/// Run debootstrap, its output to `log`, one progress line per phase to stderr.
fn debootstrap(r: &Release, tmp: &Path, log: &Path) -> Result<()> {
    let mut a = argv![
        "debootstrap",
        "--variant=minbase",
        format!("--include={PACKAGES}"),
        r.suite,
        tmp.display(),
        mirror()
    ];
    // Every Debian suite uses debootstrap's `sid` script; naming it lets an older
    // debootstrap (or Ubuntu's) build suites it does not list yet.
    let script = Path::new("/usr/share/debootstrap/scripts/sid");
    if script.exists() {
        a.push(script.display().to_string());
    }
    let mut logf = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // debootstrap reports on both streams: one pipe keeps their order.
    let (out, w) = std::io::pipe().context("creating a pipe for debootstrap")?;
    let w2 = w.try_clone().context("duplicating a pipe")?;
    let mut child = {
        let mut cmd = Command::new(&a[0]);
        cmd.args(&a[1..]).stdin(Stdio::null()).stdout(w).stderr(w2);
        cmd.spawn()
            .with_context(|| format!("starting `{}`", a.join(" ")))?
        // cmd (and its pipe ends) dropped here, so reading ends when debootstrap does
    };
    // One line per phase ("I: Retrieving libc6 ..." → "Retrieving") and every 40th
    // line after that, so a download of 200 packages shows progress in ~10 lines.
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        use std::io::Write;
        let _ = writeln!(logf, "{line}");
        let Some(verb) = line
            .strip_prefix("I: ")
            .and_then(|m| m.split_whitespace().next())
        else {
            continue;
        };
        let n = seen.entry(verb.to_string()).or_default();
        if n.is_multiple_of(40) {
            eprintln!("[image {}] {line}", r.ovn);
        }
        *n += 1;
    }
    let status = child.wait().context("waiting for debootstrap")?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    // debootstrap keeps its own details in <target>/debootstrap/debootstrap.log
    let inner = fs::read_to_string(tmp.join("debootstrap/debootstrap.log")).unwrap_or_default();
    bail!("{}", failure_sentence(r, &format!("{text}\n{inner}"), log))
}

/// One sentence for a failed debootstrap, from what its output says.
pub fn failure_sentence(r: &Release, output: &str, log: &Path) -> String {
    let has = |needles: &[&str]| needles.iter().any(|n| output.contains(n));
    if has(&["No space left on device"]) {
        format!(
            "building the OVN {} image ran out of disk space in {}; free at least 1 GiB there (or set KO_SANDBOX_IMAGE_DIR) and run `up` again",
            r.ovn,
            cache_root().display()
        )
    } else if has(&[
        "Failed getting release file",
        "Temporary failure resolving",
        "Could not resolve",
        "Couldn't download",
        "Network is unreachable",
        "Connection refused",
        "Connection timed out",
        "unable to resolve",
    ]) {
        format!(
            "building the OVN {} image could not download Debian {} from {} (no network?); check the connection or set KO_SANDBOX_DEBIAN_MIRROR, then run `up` again (details in {})",
            r.ovn,
            r.suite,
            mirror(),
            log.display()
        )
    } else {
        let last = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!(
            "building the OVN {} image with debootstrap failed ({}); see {}",
            r.ovn,
            last.trim(),
            log.display()
        )
    }
}

/// After debootstrap: drop the downloaded .debs, check the tools, write the marker.
fn finish(r: &Release, tmp: &Path, start: Instant) -> Result<ImageInfo> {
    let archives = tmp.join("var/cache/apt/archives");
    if let Ok(rd) = fs::read_dir(&archives) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let (ovn_version, ovs_version) = tool_versions(Some(tmp))
        .with_context(|| format!("the tools of the new OVN {} image do not run", r.ovn))?;
    let built = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let info = ImageInfo {
        ovn_version,
        ovs_version,
        suite: r.suite.to_string(),
        built,
        build_secs: start.elapsed().as_secs_f64(),
        packages: PACKAGES.to_string(),
    };
    crate::state::write_json(&tmp.join(MARKER), &info)?;
    // the marker must name the release's versions, or the next `up` rebuilds forever
    check(r, tmp).with_context(|| format!("the new OVN {} image fails its check", r.ovn))?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_version_line() {
        assert_eq!(version_of("ovn-nbctl 25.03.0").as_deref(), Some("25.03.0"));
        assert_eq!(
            version_of("ovs-vsctl (Open vSwitch) 3.5.0").as_deref(),
            Some("3.5.0")
        );
        assert_eq!(version_of("garbage"), None);
    }

    #[test]
    fn releases_are_known_by_their_ovn_version() {
        assert_eq!(release("25.03").unwrap().suite, "trixie");
        assert_eq!(release("26.03").unwrap().ovs, "4.0");
        assert_eq!(release(DEFAULT_OVN).unwrap().ovn, "25.03");
        let e = release("24.09").unwrap_err().to_string();
        assert!(e.contains("23.03, 24.03, 25.03, 26.03"), "{e}");
        assert_eq!(release("23.03").unwrap().name_tag(), "23");
    }

    #[test]
    fn failures_are_one_sentence_naming_the_cause() {
        let r = release("25.03").unwrap();
        let log = Path::new("/x.log");
        let net = failure_sentence(
            r,
            "E: Failed getting release file http://deb.debian.org/debian/dists/trixie/Release",
            log,
        );
        assert!(net.contains("no network?"), "{net}");
        let disk = failure_sentence(r, "tar: ./usr: No space left on device", log);
        assert!(disk.contains("ran out of disk space"), "{disk}");
        let other = failure_sentence(r, "E: something else\n", log);
        assert!(other.contains("E: something else") && other.contains("/x.log"));
        for s in [net, disk, other] {
            assert_eq!(s.lines().count(), 1);
        }
    }
}
