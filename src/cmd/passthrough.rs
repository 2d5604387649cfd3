//! `nbctl|sbctl|icnbctl|icsbctl [args]` and `vsctl|ofctl|dpctl|appctl <node> [args]`:
//! run the tool in the right pod with the arguments exactly as given, stream
//! its output, and return its exit code. `dpctl` on a node whose br-int uses the
//! userspace datapath (`datapath_type=netdev`, where `ovs-dpctl` finds no kernel
//! datapath) runs the same command through ovs-vswitchd: `ovs-appctl dpctl/<command>`.
//! `nbctl`/`sbctl` on a pod labelled leader whose server has lost the leadership
//! (the label lags an election) run again, once, on the RAFT leader.

use super::{Ctx, Outcome};
use crate::cluster::{Db, Leader, PodRef, container, ovn_db};
use crate::error::Result;

/// Which OVN database tool, and where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbTool {
    Nbctl,
    Sbctl,
    IcNbctl,
    IcSbctl,
}

impl DbTool {
    pub fn binary(self) -> &'static str {
        match self {
            DbTool::Nbctl => "ovn-nbctl",
            DbTool::Sbctl => "ovn-sbctl",
            DbTool::IcNbctl => "ovn-ic-nbctl",
            DbTool::IcSbctl => "ovn-ic-sbctl",
        }
    }

    /// The RAFT database the tool talks to, when it is one of ovn-central's.
    pub fn raft_db(self) -> Option<Db> {
        match self {
            DbTool::Nbctl => Some(Db::Nb),
            DbTool::Sbctl => Some(Db::Sb),
            DbTool::IcNbctl | DbTool::IcSbctl => None,
        }
    }

    pub fn leader(self) -> Leader {
        match self {
            DbTool::Nbctl => Leader::Nb,
            DbTool::Sbctl => Leader::Sb,
            DbTool::IcNbctl => Leader::IcNb,
            DbTool::IcSbctl => Leader::IcSb,
        }
    }
}

/// Which OVS tool on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvsTool {
    Vsctl,
    Ofctl,
    Dpctl,
    Appctl,
}

impl OvsTool {
    pub fn binary(self) -> &'static str {
        match self {
            OvsTool::Vsctl => "ovs-vsctl",
            OvsTool::Ofctl => "ovs-ofctl",
            OvsTool::Dpctl => "ovs-dpctl",
            OvsTool::Appctl => "ovs-appctl",
        }
    }
}

/// argv for the remote tool: the binary, then the user's words untouched.
pub fn argv(binary: &str, args: &[String]) -> Vec<String> {
    std::iter::once(binary.to_string())
        .chain(args.iter().cloned())
        .collect()
}

pub async fn run_db(ctx: &Ctx, tool: DbTool, args: &[String]) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let leader = tool.leader();
    let pod = cluster.leader(leader).await?;
    let container = pod.container_or_default(leader.container()).to_string();
    let argv = argv(tool.binary(), args);
    let Some(db) = tool.raft_db() else {
        return stream(ctx, &pod, &container, &argv).await;
    };
    // stdout streams; stderr waits for the exit, so that a run refused by a
    // server that is no longer the leader is not shown before it is redone
    let mut out = Counting::new(tokio::io::stdout());
    let mut err: Vec<u8> = Vec::new();
    tracing::info!(pod = %pod, container, ?argv, "exec");
    let code = cluster
        .exec_stream(&pod, &container, &argv, &mut out, &mut err, None)
        .await?;
    if code != 0
        && out.written == 0
        && ovn_db::refused_by_a_follower(&String::from_utf8_lossy(&err))
    {
        match cluster.raft_leader(db).await? {
            Some(real) if real.name != pod.name => {
                eprintln!(
                    "kubectl-ko: {pod} is labelled {label}=true but its {title} server is not the RAFT leader (the label lags an election); running on {real}, the leader by cluster/status",
                    label = leader.label(),
                    title = db.title(),
                );
                let container = real.container_or_default(leader.container()).to_string();
                return stream(ctx, &real, &container, &argv).await;
            }
            Some(_) => {}
            None => {
                write_stderr(&err).await;
                eprintln!(
                    "kubectl-ko: no ovn-central member reports itself {} RAFT leader right now (an election in progress?); try again in a few seconds, `kubectl ko {} status` shows each member's view",
                    db.title(),
                    db.short(),
                );
                return Ok(Outcome::Exit(code));
            }
        }
    }
    write_stderr(&err).await;
    Ok(Outcome::Exit(code))
}

async fn write_stderr(bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mut err = tokio::io::stderr();
    // a closed stderr has nobody left to tell
    let _ = err.write_all(bytes).await;
    let _ = err.flush().await;
}

/// A writer that counts what went through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
        Counting { inner, written: 0 }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counting<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            this.written += *n as u64;
        }
        polled
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

pub async fn run_ovs(ctx: &Ctx, tool: OvsTool, node: &str, args: &[String]) -> Result<Outcome> {
    crate::cluster::validate_name("node name", node)?;
    let cluster = ctx.cluster().await?;
    let pod = cluster.ovs_pod_on(node).await?;
    let container = pod.container_or_default(container::OPENVSWITCH).to_string();
    let mut remote = argv(tool.binary(), args);
    if tool == OvsTool::Dpctl {
        let datapath = cluster
            .exec_capture(&pod, &container, &DATAPATH_TYPE_ARGV)
            .await
            .ok()
            .filter(|o| o.success())
            .map(|o| o.stdout_str().trim().trim_matches('"').to_string());
        if datapath.as_deref() == Some("netdev")
            && let Some(a) = appctl_dpctl_argv(args)
        {
            tracing::info!(node, "userspace datapath: dpctl through ovs-appctl");
            remote = a;
        }
    }
    stream(ctx, &pod, &container, &remote).await
}

const DATAPATH_TYPE_ARGV: [&str; 7] = [
    "ovs-vsctl",
    "--timeout=5",
    "--if-exists",
    "get",
    "Bridge",
    "br-int",
    "datapath_type",
];

/// `ovs-dpctl [options] <command> [args]` as `ovs-appctl dpctl/<command> [options]
/// [args]` (the unixctl form takes the same options after the command). None when
/// there is no command word (then ovs-dpctl itself answers, e.g. `--help`).
pub fn appctl_dpctl_argv(args: &[String]) -> Option<Vec<String>> {
    let at = args.iter().position(|a| !a.starts_with('-'))?;
    let mut v = vec!["ovs-appctl".to_string(), format!("dpctl/{}", args[at])];
    v.extend(args[..at].iter().cloned());
    v.extend(args[at + 1..].iter().cloned());
    Some(v)
}

/// Stream a remote command to our stdout/stderr; its exit code is ours.
pub async fn stream(ctx: &Ctx, pod: &PodRef, container: &str, argv: &[String]) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    tracing::info!(pod = %pod, container, ?argv, "exec");
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let code = cluster
        .exec_stream(pod, container, argv, &mut out, &mut err, None)
        .await?;
    Ok(Outcome::Exit(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_binary_then_args_verbatim() {
        let args: Vec<String> = ["--format=csv", "a b", "\"q\"", "--", ";", "k=v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = argv("ovn-nbctl", &args);
        assert_eq!(v[0], "ovn-nbctl");
        assert_eq!(&v[1..], &args[..]);
    }

    #[test]
    fn dpctl_on_the_userspace_datapath_goes_through_appctl() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            appctl_dpctl_argv(&s(&["show"])),
            Some(s(&["ovs-appctl", "dpctl/show"]))
        );
        assert_eq!(
            appctl_dpctl_argv(&s(&["-s", "dump-flows", "netdev@ovs-netdev"])),
            Some(s(&[
                "ovs-appctl",
                "dpctl/dump-flows",
                "-s",
                "netdev@ovs-netdev"
            ]))
        );
        assert_eq!(appctl_dpctl_argv(&s(&["--help"])), None);
        assert_eq!(appctl_dpctl_argv(&[]), None);
    }
}
