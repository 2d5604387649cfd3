//! Pod and host multicast with iperf 2 (as upstream): the server joins
//! 224.0.0.100, the client sends to it, the server's report is the result.

use std::time::Duration;

use super::model::{McastNetwork, MulticastRow, MulticastTest};
use super::parse;
use super::servers::Server;
use super::unicast::Knobs;
use crate::cluster::{Cluster, PodRef, container};
use crate::error::Result;

pub const GROUP: &str = "224.0.0.100";
/// The Ethernet address of 224.0.0.100.
const GROUP_MAC: &str = "01:00:5e:00:00:64";
/// iperf 2's default port; each run takes the next one.
const FIRST_PORT: u16 = 5001;

/// A multicast MAC membership perf added (removed at cleanup).
#[derive(Debug, Clone)]
pub struct Membership {
    /// The privileged ovs-ovn pod of the node that ran `ip maddr add`.
    pub ovs_pod: PodRef,
    /// Arguments after `ip` that select the device (`netns exec X ip` prefix included).
    pub prefix: Vec<String>,
    pub dev: String,
}

impl Membership {
    fn argv(&self, op: &str) -> Vec<String> {
        let mut a = self.prefix.clone();
        a.extend(["maddr", op, GROUP_MAC, "dev", &self.dev].map(String::from));
        a
    }

    pub async fn remove(&self, cluster: &Cluster) -> Option<String> {
        let argv = self.argv("del");
        match cluster
            .exec_capture(&self.ovs_pod, container::OPENVSWITCH, &argv)
            .await
        {
            Ok(o) if o.success() => None,
            Ok(o) => Some(format!(
                "multicast membership {GROUP_MAC} on {} ({}): {}",
                self.dev,
                self.ovs_pod,
                o.stderr_str().trim()
            )),
            Err(e) => Some(format!("multicast membership on {}: {e}", self.dev)),
        }
    }
}

/// `pod_netns=/var/run/netns/cni-…` from `ovs-vsctl --bare` external_ids.
fn pod_netns(bare: &str) -> Option<String> {
    bare.split([' ', ',', '\n'])
        .find_map(|w| w.trim().strip_prefix("pod_netns="))
        .map(|v| v.trim_matches('"'))
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(String::from)
}

/// Device that carries `ip` in `ip -o addr show` output.
fn device_with(ip_o_addr: &str, ip: &str) -> Option<String> {
    ip_o_addr.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let addr = w.get(3)?.split('/').next()?;
        (addr == ip).then(|| w[1].split('@').next().unwrap_or(w[1]).to_string())
    })
}

/// Add the group's MAC to the device of `pod` the way upstream does (from the
/// node's privileged ovs-ovn pod). The iperf server's join normally does this
/// too, so a failure is a note, not an error.
async fn add_membership(
    cluster: &Cluster,
    pod: &PodRef,
    host_network: bool,
) -> std::result::Result<Membership, String> {
    let node = pod.node.clone().ok_or("the pod has no node")?;
    let ovs_pod = cluster.ovs_pod_on(&node).await.map_err(|e| e.to_string())?;
    let (prefix, dev) = if host_network {
        let ip = pod.ip.clone().ok_or("the pod has no IP")?;
        let c = pod.container_or_default(&pod.name).to_string();
        let out = cluster
            .exec_ok(pod, &c, &["ip", "-o", "addr", "show"])
            .await
            .map_err(|e| e.to_string())?;
        let dev = device_with(&out, &ip).ok_or(format!("no device carries {ip}"))?;
        (vec!["ip".to_string()], dev)
    } else {
        let iface = format!("external_ids:iface-id={}.{}", pod.name, pod.namespace);
        let out = cluster
            .exec_ok(
                &ovs_pod,
                container::OPENVSWITCH,
                &[
                    "ovs-vsctl",
                    "--bare",
                    "--columns=external_ids",
                    "find",
                    "interface",
                    &iface,
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        let netns = pod_netns(&out).ok_or(format!("no pod_netns in the OVS interface of {pod}"))?;
        (
            ["ip", "netns", "exec", &netns, "ip"]
                .map(String::from)
                .to_vec(),
            "eth0".to_string(),
        )
    };
    let m = Membership {
        ovs_pod,
        prefix,
        dev,
    };
    let out = cluster
        .exec_capture(&m.ovs_pod, container::OPENVSWITCH, &m.argv("add"))
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(m)
    } else {
        Err(out.stderr_str().trim().to_string())
    }
}

/// Run one multicast test; memberships added are pushed to `added` for cleanup.
pub async fn measure(
    cluster: &Cluster,
    network: McastNetwork,
    client: &PodRef,
    server: &PodRef,
    k: &Knobs,
    added: &mut Vec<Membership>,
) -> Result<MulticastTest> {
    let host = network == McastNetwork::Host;
    let mut setup_notes = Vec::new();
    for p in [server, client] {
        match add_membership(cluster, p, host).await {
            Ok(m) => added.push(m),
            Err(e) => setup_notes.push(format!("ip maddr add in {p}: {e}")),
        }
    }
    let container = client.container_or_default(&client.name).to_string();
    let dur = k.duration.to_string();
    let timeout = Duration::from_secs(k.duration + 30);
    let mut rows = Vec::new();
    let mut client_problem = None;
    let mut port = FIRST_PORT;
    for size in &k.sizes {
        eprintln!(
            "perf: {} multicast {} → {GROUP}, message size {}",
            if host { "host" } else { "pod" },
            client.name,
            size.label
        );
        let mut row = MulticastRow {
            size: size.label.clone(),
            size_bytes: size.bytes,
            ..Default::default()
        };
        // Full rate for bandwidth and loss, then iperf's default 1 Mbit/s for jitter.
        for flood in [true, false] {
            // A fresh server (and port) per run: an iperf 2 server that missed a
            // client's closing datagram keeps waiting for it and ignores the next client.
            let p = port.to_string();
            port += 1;
            let srv = Server::start(
                cluster,
                server,
                &["iperf", "-s", "-B", GROUP, "-u", "-i", "1", "-p", &p],
            )
            .await?;
            let mut argv = vec![
                "iperf",
                "-c",
                GROUP,
                "-p",
                &p,
                "-u",
                "-T",
                "32",
                "-t",
                &dur,
                "-i",
                "1",
                "-l",
                &size.label,
            ];
            if flood {
                argv.extend(["-b", "1000G"]);
            }
            match cluster
                .exec_capture_timeout(client, &container, &argv, timeout)
                .await
            {
                // iperf 2 exits 0 even when it could not send ("udp connect
                // failed: Network is unreachable"), so stderr counts too.
                Ok(o) if o.success() && o.stderr_str().trim().is_empty() => {}
                Ok(o) => {
                    let e = format!(
                        "iperf client (exit {}): {}",
                        o.exit_code,
                        o.stderr_str().trim()
                    );
                    client_problem.get_or_insert(e.clone());
                    row.errors.push(e);
                }
                Err(e) => row.errors.push(format!("iperf client: {e}")),
            }
            // The server prints its final report right after the stream ends.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let reports = parse::parse_iperf2_server(&srv.out.text());
            drop(srv);
            match parse::summarize_iperf2(&reports) {
                Some(r) if flood => {
                    row.udp_bandwidth_bps = Some(r.bits_per_second);
                    row.udp_lost_percent = Some(r.lost_percent);
                }
                Some(r) => row.udp_jitter_ms = Some(r.jitter_ms),
                None => row.errors.push(format!(
                    "the server received no multicast datagrams ({} rate run)",
                    if flood { "full" } else { "1 Mbit/s" }
                )),
            }
        }
        rows.push(row);
    }
    let measured = rows
        .iter()
        .any(|r| r.udp_bandwidth_bps.is_some() || r.udp_jitter_ms.is_some());
    let note = (!measured).then(|| {
        let mut n = format!(
            "{} received no datagrams sent by {} to {GROUP}.",
            server.name, client.name
        );
        if let Some(p) = &client_problem {
            n.push_str(&format!(" The client could not send: {p}."));
            if host {
                n.push_str(" A node needs a route for 224.0.0.0/4 (usually its default route) to send multicast.");
            }
        } else if host {
            n.push_str(" The network between the nodes did not deliver it (e.g. a switch with IGMP snooping and no querier, or a firewall).");
        } else {
            n.push_str(" The pods' subnet did not deliver it: check the Subnet's enableMulticastSnoop setting and NetworkPolicies/ACLs that may drop multicast.");
        }
        if !setup_notes.is_empty() {
            n.push_str(&format!(" Setup: {}.", setup_notes.join("; ")));
        }
        n
    });
    Ok(MulticastTest {
        network,
        group: GROUP.into(),
        client: client.name.clone(),
        server: server.name.clone(),
        rows: if measured { rows } else { Vec::new() },
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        ko_testkit::fixture!(&format!("perf/{name}"))
    }

    #[test]
    fn netns_from_external_ids() {
        let bare = fixture("ovs-vsctl-find-pod-iface.txt");
        assert_eq!(pod_netns(&bare).as_deref(), Some("perf-client-1.default"));
        assert_eq!(pod_netns("iface-id=x"), None);
    }

    #[test]
    fn device_by_address() {
        let host = fixture("ip-o-addr-host-net.txt");
        assert_eq!(device_with(&host, "172.18.0.3").as_deref(), Some("br-phy"));
        assert_eq!(device_with(&host, "100.64.0.3").as_deref(), Some("ovn0"));
        assert_eq!(device_with(&host, "10.0.0.1"), None);
        let pod = fixture("ip-o-addr-pod.txt");
        assert_eq!(device_with(&pod, "10.16.0.8").as_deref(), Some("eth0"));
    }
}
