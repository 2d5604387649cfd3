//! `tcpdump <ns/pod> [args]`: capture in the pod's network namespace, as
//! upstream does (hostNetwork pods: in the ovs-ovn pod; others: `nsenter
//! --net=<pod_netns>` in kube-ovn-cni, interface `eth0`, or the OVS port for
//! internal-port pods). `-w FILE` writes the pcap locally from tcpdump's stdout.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use super::{Ctx, Outcome};
use crate::cli::TcpdumpArgs;
use crate::cluster::{Cluster, PodNetwork, PodRef, container, validate_name};
use crate::error::{Error, Result};

/// `ns/pod` or `pod` (namespace `default`, as upstream).
pub fn parse_pod_ref(s: &str) -> Result<(String, String)> {
    let (ns, name) = match s.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("default", s),
    };
    validate_name("namespace", ns).map_err(|e| Error::Usage(e.to_string()))?;
    validate_name("pod name", name).map_err(|e| Error::Usage(e.to_string()))?;
    Ok((ns.to_string(), name.to_string()))
}

/// The tcpdump argv after `-nn -i <if>`, with a local `-w FILE` replaced by
/// `-w -` (and `-U` so each packet is flushed as it is captured).
pub fn split_write_file(args: &[String]) -> Result<(Vec<String>, Option<PathBuf>)> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            // After `--` everything is the filter expression.
            out.extend(args[i..].iter().cloned());
            break;
        }
        let target = if a == "-w" {
            i += 1;
            Some(
                args.get(i)
                    .cloned()
                    .ok_or_else(|| Error::Usage("tcpdump -w needs a file name".into()))?,
            )
        } else {
            a.strip_prefix("-w")
                .filter(|f| !f.is_empty())
                .map(String::from)
        };
        match target {
            Some(f) if f == "-" => out.extend(["-w".to_string(), "-".to_string()]),
            Some(f) => {
                if file.is_some() {
                    return Err(Error::Usage("tcpdump -w given twice".into()));
                }
                file = Some(PathBuf::from(f));
                out.extend(["-U".to_string(), "-w".to_string(), "-".to_string()]);
            }
            None => out.push(a.clone()),
        }
        i += 1;
    }
    Ok((out, file))
}

/// Writes straight to a std file so that whatever arrived before Ctrl-C is on disk.
struct SyncFile(std::fs::File);

impl AsyncWrite for SyncFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        Poll::Ready(self.get_mut().0.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        use std::io::Write;
        Poll::Ready(self.get_mut().0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Where and how to run tcpdump for a pod.
pub struct CapturePlan {
    pub pod: PodRef,
    pub container: String,
    /// argv before the user's arguments.
    pub prefix: Vec<String>,
}

/// Find the pod's netns and interface (also useful to other commands).
pub async fn plan(cluster: &Cluster, ns: &str, name: &str) -> Result<CapturePlan> {
    let pod = cluster.get_pod(ns, name).await?;
    if let Some(why) = crate::cluster::locate::unusable_reason(&pod) {
        return Err(Error::Cluster(crate::cluster::Error::NotRunning {
            pod: format!("{ns}/{name}"),
            namespace: ns.into(),
            name: name.into(),
            detail: why,
        }));
    }
    let spec = pod.spec.as_ref();
    let Some(node) = spec.and_then(|s| s.node_name.clone()) else {
        return Err(Error::Cluster(crate::cluster::Error::NotRunning {
            pod: format!("{ns}/{name}"),
            namespace: ns.into(),
            name: name.into(),
            detail: "it is not scheduled on any node".into(),
        }));
    };
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let tcpdump_nn = || vec!["tcpdump".to_string(), "-nn".to_string()];
    if host_network {
        let ovs = cluster.ovs_pod_on(&node).await?;
        let c = ovs.container_or_default(container::OPENVSWITCH).to_string();
        return Ok(CapturePlan {
            pod: ovs,
            container: c,
            prefix: tcpdump_nn(),
        });
    }
    let (ovs, cni) = tokio::try_join!(cluster.ovs_pod_on(&node), cluster.cni_pod_on(&node))?;
    let oc = ovs.container_or_default(container::OPENVSWITCH).to_string();
    let iface_id = format!("{name}.{ns}");
    let nic = cluster
        .exec_ok(
            &ovs,
            &oc,
            &[
                "ovs-vsctl",
                "--data=bare",
                "--no-heading",
                "--columns=name",
                "find",
                "interface",
                &format!("external-ids:iface-id={iface_id}"),
            ],
        )
        .await?;
    let nic = nic
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from);
    let Some(nic) = nic else {
        return Err(Error::Cluster(crate::cluster::Error::NotFound {
            what: format!("an OVS interface with external-ids:iface-id={iface_id} on node {node}"),
            detail: String::new(),
            hint: format!(
                "`kubectl ko vsctl {node} find interface external-ids:iface-id={iface_id}`; the pod's network may not be set up yet"
            ),
        }));
    };
    let netns = cluster
        .exec_ok(
            &ovs,
            &oc,
            &[
                "ovs-vsctl",
                "--data=bare",
                "--no-heading",
                "get",
                "interface",
                &nic,
                "external-ids:pod_netns",
            ],
        )
        .await?;
    let netns = netns.trim().trim_matches('"').to_string();
    if netns.is_empty() {
        return Err(Error::Remote {
            what: format!("reading external-ids:pod_netns of interface {nic} on node {node}"),
            detail: "it is empty".into(),
            hint: "the pod's network may not be set up by kube-ovn-cni yet".into(),
        });
    }
    let nic_type = PodNetwork::of_pod(&pod, crate::cluster::model::OVN_PROVIDER).pod_nic_type;
    let ifname = if nic_type.as_deref() == Some("internal-port") {
        nic
    } else {
        "eth0".to_string()
    };
    let cc = cni.container_or_default(container::CNI_SERVER).to_string();
    let mut prefix = vec!["nsenter".to_string(), format!("--net={netns}")];
    prefix.extend(tcpdump_nn());
    prefix.extend(["-i".to_string(), ifname]);
    Ok(CapturePlan {
        pod: cni,
        container: cc,
        prefix,
    })
}

pub async fn run(ctx: &Ctx, args: &TcpdumpArgs) -> Result<Outcome> {
    let (ns, name) = parse_pod_ref(&args.pod)?;
    let (user_args, file) = split_write_file(&args.args)?;
    let cluster = ctx.cluster().await?;
    let plan = plan(cluster, &ns, &name).await?;
    let mut argv = plan.prefix.clone();
    argv.extend(user_args);
    tracing::info!(pod = %plan.pod, ?argv, "tcpdump");
    let mut err = tokio::io::stderr();
    let code = match file {
        None => {
            let mut out = tokio::io::stdout();
            cluster
                .exec_stream(&plan.pod, &plan.container, &argv, &mut out, &mut err, None)
                .await?
        }
        Some(path) => {
            let f = std::fs::File::create(&path)
                .map_err(|e| Error::io(format!("create {}", path.display()), &e))?;
            let mut sink = SyncFile(f);
            let code = cluster
                .exec_stream(&plan.pod, &plan.container, &argv, &mut sink, &mut err, None)
                .await?;
            sink.0
                .sync_all()
                .map_err(|e| Error::io(format!("write {}", path.display()), &e))?;
            code
        }
    };
    Ok(Outcome::Exit(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pod_refs() {
        assert_eq!(
            parse_pod_ref("kube-system/p1").unwrap(),
            ("kube-system".into(), "p1".into())
        );
        assert_eq!(
            parse_pod_ref("p1").unwrap(),
            ("default".into(), "p1".into())
        );
        assert!(parse_pod_ref("a/b/c").is_err());
        assert!(parse_pod_ref("ns/").is_err());
        assert!(parse_pod_ref("ns/$(reboot)").is_err());
    }

    #[test]
    fn write_file_is_taken_local() {
        let (a, f) = split_write_file(&s(&["-c", "3", "-w", "out.pcap", "icmp"])).unwrap();
        assert_eq!(a, s(&["-c", "3", "-U", "-w", "-", "icmp"]));
        assert_eq!(f, Some(PathBuf::from("out.pcap")));
        let (a, f) = split_write_file(&s(&["-wx.pcap"])).unwrap();
        assert_eq!(a, s(&["-U", "-w", "-"]));
        assert_eq!(f, Some(PathBuf::from("x.pcap")));
        let (a, f) = split_write_file(&s(&["-w", "-", "icmp"])).unwrap();
        assert_eq!(a, s(&["-w", "-", "icmp"]));
        assert_eq!(f, None);
        let (a, f) = split_write_file(&s(&["icmp", "--", "-w", "x"])).unwrap();
        assert_eq!(a, s(&["icmp", "--", "-w", "x"]));
        assert_eq!(f, None);
        assert!(split_write_file(&s(&["-w"])).is_err());
    }
}
