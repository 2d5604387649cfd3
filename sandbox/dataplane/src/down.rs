//! Teardown: kill every process of the sandbox (recorded pids, and anything living in
//! one of its netns), delete its netns (their links go with them), unmount leftovers,
//! remove its files. Works from whatever a crashed `up` left behind.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::argv;
use crate::exec::{self, run_raw};
use crate::state::{self, Created, Paths, Recorder};

/// Netns that belong to sandbox `paths.name`: recorded ones, plus `<name>-*` that no
/// other sandbox with a longer matching name claims.
pub fn owned_netns(paths: &Paths, recorded: &BTreeSet<String>) -> Vec<String> {
    let others = state::other_sandboxes(paths);
    let prefix = format!("{}-", paths.name);
    let mut v: BTreeSet<String> = recorded.clone();
    if let Ok(rd) = fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let Ok(n) = e.file_name().into_string() else {
                continue;
            };
            if !n.starts_with(&prefix) {
                continue;
            }
            let claimed = others
                .iter()
                .any(|o| o.len() > paths.name.len() && n.starts_with(&format!("{o}-")));
            if !claimed {
                v.insert(n);
            }
        }
    }
    v.into_iter().collect()
}

pub fn ns_inode(path: &str) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.ino())
}

/// Pids whose network namespace is one of `inodes`.
fn pids_in_netns(inodes: &BTreeSet<u64>) -> Vec<u32> {
    pids_in_ns("net", inodes)
}

/// Pids whose namespace of `kind` (`net`, `mnt`, ...) is one of `inodes`.
pub fn pids_in_ns(kind: &str, inodes: &BTreeSet<u64>) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    let me = std::process::id();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Some(ino) = ns_inode(&format!("/proc/{pid}/ns/{kind}"))
            && inodes.contains(&ino)
        {
            out.push(pid);
        }
    }
    out
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

pub fn alive(pid: u32) -> bool {
    // a zombie still has /proc/<pid>; its state letter is Z
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

pub fn kill(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let mut a = argv!["kill", format!("-{signal}")];
    a.extend(pids.iter().map(|p| p.to_string()));
    let _ = run_raw(&a, None, Duration::from_secs(10));
}

/// Tear down sandbox `paths.name`. Returns what was removed (for the message).
pub fn down(paths: &Paths) -> Result<Vec<String>> {
    let created = state::read_created(paths);
    let dir = paths.dir();
    let dir_s = dir.display().to_string();
    let recorded_ns: BTreeSet<String> = created
        .iter()
        .filter_map(|c| match c {
            Created::Netns { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let netns = owned_netns(paths, &recorded_ns);
    let mut report = Vec::new();

    // 1. processes: recorded pids still running our programs, plus netns members
    let inodes: BTreeSet<u64> = netns
        .iter()
        .filter_map(|n| ns_inode(&format!("/run/netns/{n}")))
        .collect();
    let mut pids: BTreeSet<u32> = pids_in_netns(&inodes).into_iter().collect();
    for c in &created {
        if let Created::Pid { pid, .. } = c {
            let cl = cmdline(*pid);
            if cl.contains(&dir_s) {
                pids.insert(*pid);
            }
        }
    }
    let pids: Vec<u32> = pids.into_iter().collect();
    if !pids.is_empty() {
        kill(&pids, "TERM");
        let left = exec::poll("sandbox processes to exit", Duration::from_secs(3), || {
            pids.iter().all(|p| !alive(*p)).then_some(())
        });
        if left.is_err() {
            let rest: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
            kill(&rest, "KILL");
            let _ = exec::poll("sandbox processes to die", Duration::from_secs(3), || {
                rest.iter().all(|p| !alive(*p)).then_some(())
            });
        }
        report.push(format!("{} processes", pids.len()));
    }

    // 2. netns (links inside them go away with them)
    let mut lines = Vec::new();
    for n in &netns {
        if Path::new(&format!("/run/netns/{n}")).exists() {
            lines.push(format!("netns delete {n}"));
        }
    }
    if !lines.is_empty() {
        // -force: keep going past a netns that vanished meanwhile
        let mut input = lines.join("\n");
        input.push('\n');
        let _ = run_raw(
            &argv!["ip", "-force", "-batch", "-"],
            Some(&input),
            exec::DEFAULT_TIMEOUT,
        );
        report.push(format!("{} network namespaces", lines.len()));
    }

    // 3. mounts left in the root mount namespace under our paths
    if let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") {
        let mut targets: Vec<String> = mi
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|t| {
                t.starts_with(&dir_s) || netns.iter().any(|n| t == &format!("/run/netns/{n}"))
            })
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = run_raw(&argv!["umount", "-l", t], None, Duration::from_secs(10));
            let _ = fs::remove_file(&t);
        }
    }

    // 4. host mount-point directories we created, unless another sandbox still uses them
    // (their pods have binds on them); then the record passes to such a sandbox so the
    // last `down` removes them.
    let others = state::other_sandboxes(paths);
    let host_dirs: Vec<&Created> = created
        .iter()
        .filter(|c| matches!(c, Created::HostDir { .. }))
        .collect();
    match others.first() {
        None => {
            for c in host_dirs.iter().rev() {
                if let Created::HostDir { path } = c {
                    let _ = fs::remove_dir(path);
                }
            }
        }
        Some(heir) => {
            let rec = Recorder::new(&Paths {
                root: paths.root.clone(),
                name: heir.clone(),
            });
            for c in host_dirs {
                let _ = rec.record(c);
            }
        }
    }

    // 5. files
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        report.push(format!("state directory {}", dir.display()));
    }
    Ok(report)
}

/// Every sandbox under the state root (`down --all`).
pub fn all_names(root: &Path) -> Vec<String> {
    let mut v = BTreeSet::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let Ok(n) = e.file_name().into_string() else {
                continue;
            };
            let name = match n.strip_suffix(".lock") {
                Some(stem) => stem.to_string(),
                None if e.path().is_dir() => n,
                None => continue,
            };
            // Other tools may leave files here (e.g. their own locks): only names
            // `up` would accept can be sandboxes.
            if state::validate_name(&name).is_ok() {
                v.insert(name);
            }
        }
    }
    v.into_iter().collect()
}
