//! `log <kube-ovn|ovn|ovs|linux|all>`: collect log files and host state from
//! every node into `<dir>/<node>/{kube-ovn,ovn,openvswitch,linux}/`, the
//! layout of upstream's `kubectl ko log`. Nodes and files are fetched concurrently.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::cli::{LogArgs, LogComponent};
use crate::cluster::{Cluster, PodRef, container};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{Render, Style};

/// Parallel execs at once; enough to hide latency without flooding the API server.
const PARALLEL: usize = 8;

/// Host state saved under `linux/`: file name and the commands whose output it holds.
const LINUX: &[(&str, &[&[&str]])] = &[
    ("dmesg", &[&["dmesg", "-T"]]),
    (
        "iptables-legacy",
        &[
            &["iptables-legacy", "-V"],
            &["iptables-legacy", "-S"],
            &["iptables-legacy", "-S", "-t", "nat"],
            &["ip6tables-legacy", "-S"],
            &["ip6tables-legacy", "-S", "-t", "nat"],
        ],
    ),
    (
        "iptables-nft",
        &[
            &["iptables-nft", "-V"],
            &["iptables-nft", "-S"],
            &["iptables-nft", "-S", "-t", "nat"],
            &["ip6tables-nft", "-S"],
            &["ip6tables-nft", "-S", "-t", "nat"],
        ],
    ),
    (
        "route",
        &[
            &["ip", "-4", "route", "show"],
            &["ip", "-6", "route", "show"],
        ],
    ),
    ("link", &[&["ip", "-d", "-s", "link", "show"]]),
    ("neigh", &[&["ip", "-4", "neigh"], &["ip", "-6", "neigh"]]),
    ("memory", &[&["free", "-m"]]),
    ("top", &[&["top", "-b", "-n", "1"]]),
    ("sysctl", &[&["sysctl", "-a"]]),
    ("netstat", &[&["netstat", "-tunlp"]]),
    ("addr", &[&["ip", "addr", "show"]]),
    ("ipset", &[&["ipset", "list"]]),
    ("tcp", &[&["cat", "/proc/net/sockstat"]]),
    (
        "xfrm",
        &[&["ip", "xfrm", "policy"], &["ip", "xfrm", "state"]],
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct CollectedFile {
    pub node: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Where it came from: the remote file or the commands, and the pod.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub dir: PathBuf,
    pub files: Vec<CollectedFile>,
    /// What could not be collected (the rest still was).
    pub errors: Vec<String>,
}

impl Render for LogReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        let bytes: u64 = self.files.iter().map(|f| f.bytes).sum();
        let mut nodes: Vec<&str> = self.files.iter().map(|f| f.node.as_str()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        writeln!(
            out,
            "Collected {} files ({bytes} bytes) from {} node(s) into {}",
            self.files.len(),
            nodes.len(),
            self.dir.display()
        )?;
        for e in &self.errors {
            writeln!(out, "  {} {e}", s.warn("could not collect:"))?;
        }
        Ok(())
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// One thing to fetch: a remote file, or the output of some commands.
enum Job {
    File {
        pod: PodRef,
        container: String,
        remote: String,
        local: PathBuf,
    },
    Commands {
        pod: PodRef,
        container: String,
        cmds: Vec<Vec<String>>,
        local: PathBuf,
    },
}

/// `rel` made safe to join under a local directory (no `..`, no absolute part).
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// List the files under `remote_dir` in a pod (recursively).
async fn list_files(
    cluster: &Cluster,
    pod: &PodRef,
    c: &str,
    remote_dir: &str,
) -> Result<Vec<String>> {
    let out = cluster
        .exec_capture(pod, c, &["find", remote_dir, "-type", "f"])
        .await?;
    if !out.success() {
        return Err(Error::Remote {
            what: format!("listing {remote_dir} in {pod}"),
            detail: out.stderr_str().trim().to_string(),
            hint: "the directory may not exist in this pod".into(),
        });
    }
    Ok(out
        .stdout_str()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

async fn run_job(cluster: &Cluster, job: Job) -> std::result::Result<CollectedFile, String> {
    let (pod, local) = match &job {
        Job::File { pod, local, .. } | Job::Commands { pod, local, .. } => {
            (pod.clone(), local.clone())
        }
    };
    let node = pod.node.clone().unwrap_or_default();
    let source = match &job {
        Job::File { remote, .. } => format!("cat {remote} in {pod}"),
        Job::Commands { cmds, .. } => {
            let cmds: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
            format!("{} in {pod}", cmds.join("; "))
        }
    };
    if let Some(parent) = local.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    let mut file = tokio::fs::File::create(&local)
        .await
        .map_err(|e| format!("create {}: {e}", local.display()))?;
    let mut sink_err = Vec::new();
    match job {
        Job::File {
            pod,
            container,
            remote,
            ..
        } => {
            let code = cluster
                .exec_stream(
                    &pod,
                    &container,
                    &["cat", remote.as_str()],
                    &mut file,
                    &mut sink_err,
                    Some(cluster.timeout() * 4),
                )
                .await
                .map_err(|e| {
                    format!(
                        "{remote} from {pod}: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                })?;
            if code != 0 {
                return Err(format!(
                    "{remote} from {pod}: cat exited {code}: {}",
                    String::from_utf8_lossy(&sink_err).trim()
                ));
            }
        }
        Job::Commands {
            pod,
            container,
            cmds,
            ..
        } => {
            for argv in cmds {
                let header = format!("****************** {} ******************\n", argv.join(" "));
                tokio::io::AsyncWriteExt::write_all(&mut file, header.as_bytes())
                    .await
                    .map_err(|e| format!("write {}: {e}", local.display()))?;
                let mut err = Vec::new();
                // A missing tool (no ipset, no legacy iptables) is normal: its
                // error text goes into the file, as upstream keeps going.
                match cluster
                    .exec_stream(
                        &pod,
                        &container,
                        &argv,
                        &mut file,
                        &mut err,
                        Some(cluster.timeout()),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) => err.extend_from_slice(e.to_string().as_bytes()),
                }
                tokio::io::AsyncWriteExt::write_all(&mut file, &err)
                    .await
                    .map_err(|e| format!("write {}: {e}", local.display()))?;
            }
        }
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| format!("write {}: {e}", local.display()))?;
    let bytes = tokio::fs::metadata(&local)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(CollectedFile {
        node,
        path: local,
        bytes,
        source,
    })
}

pub async fn log(ctx: &Ctx, args: &LogArgs) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let report = collect(cluster, &[args.component], &args.dir, true).await?;
    let exit = if report.files.is_empty() { 1 } else { 0 };
    Ok(Outcome::report(report, ctx.output(None), exit))
}

/// The pods that can be exec'd into (with a node); the others, as errors.
fn usable(pods: &[k8s_openapi::api::core::v1::Pod], errors: &mut Vec<String>) -> Vec<PodRef> {
    let mut out = Vec::new();
    for p in pods {
        let r = PodRef::from_pod(p);
        match crate::cluster::locate::unusable_reason(p) {
            Some(why) => errors.push(format!("skipped pod {r}: {why}")),
            None if r.node.is_some() => out.push(r),
            None => {}
        }
    }
    out
}

/// Collect the `components`' logs into `dir` (also used by `bundle`, which
/// has its own progress bar: `spinner` false).
pub async fn collect(
    cluster: &Cluster,
    components: &[LogComponent],
    dir: &Path,
    spinner: bool,
) -> Result<LogReport> {
    let ns = cluster.namespace().to_string();
    let want = |c: LogComponent| components.contains(&c) || components.contains(&LogComponent::All);
    let (cni, ovs, central) = tokio::try_join!(
        cluster.list_pods(Some(&ns), Some("app=kube-ovn-cni")),
        cluster.list_pods(Some(&ns), Some("app=ovs")),
        cluster.list_pods(Some(&ns), Some("app=ovn-central"))
    )?;
    if cni.is_empty() && ovs.is_empty() {
        return Err(Error::Cluster(crate::cluster::Error::NotFound {
            what: format!("kube-ovn-cni or ovs-ovn pods in namespace {ns}"),
            detail: String::new(),
            hint: "pass --kube-ovn-namespace (or KUBE_OVN_NS) if Kube-OVN runs elsewhere".into(),
        }));
    }
    let mut errors = Vec::new();
    let (cni, ovs, central) = (
        usable(&cni, &mut errors),
        usable(&ovs, &mut errors),
        usable(&central, &mut errors),
    );
    let node_dir = |p: &PodRef| dir.join(p.node.as_deref().unwrap_or("unknown"));

    // Directory copies: list each directory (concurrently), then fetch the files.
    let mut listings = Vec::new();
    for p in &cni {
        if want(LogComponent::KubeOvn) {
            listings.push((
                p.clone(),
                container::CNI_SERVER,
                "/var/log/kube-ovn",
                "kube-ovn",
            ));
        }
    }
    for p in &ovs {
        if want(LogComponent::Ovn) {
            listings.push((p.clone(), container::OPENVSWITCH, "/var/log/ovn", "ovn"));
        }
        if want(LogComponent::Ovs) {
            listings.push((
                p.clone(),
                container::OPENVSWITCH,
                "/var/log/openvswitch",
                "openvswitch",
            ));
        }
    }
    // ovn-central logs (NB/SB servers, northd) share /var/log/ovn with ovs-ovn
    // on real nodes (one hostPath); in other setups they are only in ovn-central.
    for p in &central {
        if want(LogComponent::Ovn) {
            listings.push((p.clone(), container::OVN_CENTRAL, "/var/log/ovn", "ovn"));
        }
    }
    let mut jobs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let listed: Vec<_> = stream::iter(listings.into_iter().map(
        |(p, c, remote_dir, sub)| async move {
            let c = p.container_or_default(c).to_string();
            let r = list_files(cluster, &p, &c, remote_dir).await;
            (p, c, remote_dir, sub, r)
        },
    ))
    .buffer_unordered(PARALLEL)
    .collect()
    .await;
    for (p, c, remote_dir, sub, r) in listed {
        match r {
            Err(e) => errors.push(e.to_string().lines().next().unwrap_or_default().to_string()),
            Ok(files) => {
                for f in files {
                    let rel = f
                        .strip_prefix(remote_dir)
                        .unwrap_or(&f)
                        .trim_start_matches('/');
                    let Some(rel) = safe_relative(rel) else {
                        errors.push(format!("skipped {f} in {p}: unsafe path"));
                        continue;
                    };
                    let local = node_dir(&p).join(sub).join(rel);
                    // The same host file seen from two pods is fetched once.
                    if seen.insert(local.clone()) {
                        jobs.push(Job::File {
                            pod: p.clone(),
                            container: c.clone(),
                            remote: f.clone(),
                            local,
                        });
                    }
                }
            }
        }
    }
    if want(LogComponent::Linux) {
        for p in &cni {
            for (name, cmds) in LINUX {
                jobs.push(Job::Commands {
                    pod: p.clone(),
                    container: p.container_or_default(container::CNI_SERVER).to_string(),
                    cmds: cmds
                        .iter()
                        .map(|c| c.iter().map(|s| s.to_string()).collect())
                        .collect(),
                    local: node_dir(p).join("linux").join(format!("{name}.log")),
                });
            }
        }
    }
    let progress = spinner
        .then(|| crate::render::progress::spinner(&format!("collecting {} items", jobs.len())))
        .flatten();
    let results: Vec<_> = stream::iter(jobs.into_iter().map(|j| run_job(cluster, j)))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let mut files = Vec::new();
    for r in results {
        match r {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(LogReport { dir, files, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_cannot_escape() {
        assert_eq!(
            safe_relative("ovn-controller.log"),
            Some(PathBuf::from("ovn-controller.log"))
        );
        assert_eq!(safe_relative("./a/b.log"), Some(PathBuf::from("a/b.log")));
        assert_eq!(safe_relative("../etc/passwd"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("a/../../b"), None);
        assert_eq!(safe_relative(""), None);
    }
}
