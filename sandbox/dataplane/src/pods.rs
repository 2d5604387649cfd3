//! Pod-network pods: own netns, a veth whose host end (`<12 hex>_h`) is plugged into
//! br-int with the external_ids kube-ovn-cni sets.

use anyhow::{Context, Result};

use crate::argv;
use crate::ctx::Ctx;
use crate::exec::{in_pod, ip_batch, run};
use crate::node::start_holder;
use crate::plan::{Node, Pod};

pub const POD_MTU: u16 = 1400;

/// external_ids of a pod's OVS interface, as kube-ovn-cni writes them.
pub fn iface_external_ids(pod: &Pod) -> Vec<String> {
    vec![
        format!("external_ids:iface-id={}", pod.lsp()),
        "external_ids:vendor=kube-ovn".into(),
        format!("external_ids:pod_name={}", pod.name),
        format!("external_ids:pod_namespace={}", pod.namespace),
        format!("external_ids:pod_netns=/var/run/netns/{}", pod.netns),
        format!("external_ids:ip={}", pod.ips().join(",")),
    ]
}

pub fn setup(ctx: &Ctx, node: &Node) -> Result<()> {
    let pods: Vec<&Pod> = ctx
        .plan
        .pods
        .iter()
        .filter(|p| p.node == node.index - 1 && !p.host_network)
        .collect();
    wire(ctx, node, &pods)
}

/// Wire pod-network pods of one node: veth, holder, addresses, OVS port (also used by
/// the kubelet for pods created through the API).
pub fn wire(ctx: &Ctx, node: &Node, pods: &[&Pod]) -> Result<()> {
    if pods.is_empty() {
        return Ok(());
    }
    let mut node_lines = Vec::new();
    for p in pods {
        let veth = p
            .veth
            .as_deref()
            .context("pod-network pod without a veth name")?;
        node_lines.push(format!(
            "link add {veth} mtu {POD_MTU} type veth peer name eth0 netns {}",
            p.netns
        ));
        node_lines.push(format!("link set {veth} up"));
    }
    ip_batch(Some(&node.netns), &node_lines)?;

    for p in pods {
        start_holder(ctx, p)?;
        let log = ctx.container_log(p);
        std::fs::write(&log, format!("{} started on {}\n", p.container, node.name))
            .with_context(|| format!("writing {}", log.display()))?;
        let subnet_name = p
            .subnet
            .as_deref()
            .context("pod-network pod without a subnet")?;
        let subnet = ctx
            .plan
            .subnet(subnet_name)
            .with_context(|| format!("subnet {subnet_name} missing from the plan"))?;
        let mut lines = vec![
            "link set lo up".to_string(),
            format!("link set eth0 address {} mtu {POD_MTU}", p.mac),
            format!("addr add {}/{} dev eth0", p.ip4, subnet.prefix4()),
            "link set eth0 up".into(),
            format!("route add default via {} dev eth0", subnet.gw4),
        ];
        if let (Some(ip6), Some(gw6)) = (&p.ip6, &subnet.gw6) {
            lines.push(format!(
                "addr add {ip6}/{} dev eth0 nodad",
                subnet.prefix6()
            ));
            lines.push(format!("route add default via {gw6} dev eth0"));
        }
        ip_batch(Some(&p.netns), &lines)?;
        // veth hands TCP/UDP to the userspace datapath with partial checksums that
        // OVS never completes, so the receiving pod would drop them: checksum in
        // the sender's kernel instead.
        run(&argv![
            "ip", "netns", "exec", &p.netns, "ethtool", "-K", "eth0", "tx", "off"
        ])?;
    }

    let ovs = ctx.ovs_pod(node.index - 1)?;
    let pid = ctx.pid(ovs)?;
    let mut args = argv!["ovs-vsctl", "--timeout=30"];
    for p in pods {
        let veth = p
            .veth
            .as_deref()
            .context("pod-network pod without a veth name")?;
        args.extend(argv![
            "--",
            "add-port",
            "br-int",
            veth,
            "--",
            "set",
            "interface",
            veth
        ]);
        args.extend(iface_external_ids(p));
    }
    run(&in_pod(pid, &args))?;
    Ok(())
}
