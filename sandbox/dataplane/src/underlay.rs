//! The namespace-only "physical" network: netns `<name>-ul` holds the node underlay
//! bridge (`br-nodes`, 172.18.0.0/24, geneve runs over it; the external host hangs off
//! it) and the provider bridge (`br-provider` for the underlay subnet, with the gateway
//! host `<name>-gw` answering ARP/ND for 172.17.0.1). Nothing touches the root netns.

use anyhow::Result;

use crate::argv;
use crate::exec::{ip_batch, run};
use crate::plan::{DEFAULT_SUBNET, JOIN_SUBNET, Plan, UNDERLAY_SUBNET};

pub fn setup(plan: &Plan) -> Result<()> {
    let ul = &plan.netns_ul;
    let mut lines = vec![
        "link set lo up".to_string(),
        "link add br-nodes type bridge".into(),
        "link set br-nodes up".into(),
        "link add br-provider type bridge".into(),
        "link set br-provider up".into(),
    ];
    for n in &plan.nodes {
        let i = n.index;
        lines.push(format!(
            "link add n{i} type veth peer name eth0 netns {}",
            n.netns
        ));
        lines.push(format!("link set n{i} master br-nodes up"));
        lines.push(format!(
            "link add p{i} type veth peer name prov0 netns {}",
            n.netns
        ));
        lines.push(format!("link set p{i} master br-provider up"));
    }
    lines.push(format!(
        "link add gw type veth peer name eth0 netns {}",
        plan.netns_gw
    ));
    lines.push("link set gw master br-provider up".into());
    lines.push(format!(
        "link add ext type veth peer name eth0 netns {}",
        plan.external.netns
    ));
    lines.push("link set ext master br-nodes up".into());
    ip_batch(Some(ul), &lines)?;

    let (gw4, gw6, prefix4, prefix6) = match plan.subnet(UNDERLAY_SUBNET) {
        Some(s) => (
            s.gw4.clone(),
            s.gw6.clone(),
            s.prefix4().to_string(),
            s.prefix6().to_string(),
        ),
        None => anyhow::bail!("the plan has no underlay subnet"),
    };
    let mut gw = vec![
        "link set lo up".to_string(),
        format!("addr add {gw4}/{prefix4} dev eth0"),
        "link set eth0 up".into(),
    ];
    if let Some(g6) = gw6 {
        gw.push(format!("addr add {g6}/{prefix6} dev eth0 nodad"));
    }
    ip_batch(Some(&plan.netns_gw), &gw)?;

    // The external host: reachable from pods through a node (distributed gateway);
    // replies come back through the first node, which routes the pod CIDR to ovn0.
    let first = plan.nodes.first().map(|n| (n.ip4.clone(), n.ip6.clone()));
    let mut ext = vec![
        "link set lo up".to_string(),
        format!("addr add {}/24 dev eth0", plan.external.ip4),
        "link set eth0 up".into(),
    ];
    if let Some((ip4, ip6)) = first {
        for s in [DEFAULT_SUBNET, JOIN_SUBNET] {
            if let Some(sub) = plan.subnet(s) {
                ext.push(format!("route add {} via {ip4}", sub.cidr4));
                if let (Some(c6), Some(n6)) = (&sub.cidr6, &ip6) {
                    ext.push(format!("route add {c6} via {n6}"));
                }
            }
        }
        if let Some(e6) = &plan.external.ip6 {
            ext.insert(2, format!("addr add {e6}/64 dev eth0 nodad"));
        }
    }
    ip_batch(Some(&plan.external.netns), &ext)?;

    // These hosts' kernels send onto a veth that ends in an OVS port of the userspace
    // datapath (AF_PACKET): TCP/UDP leave with partial checksums that nothing
    // completes on the way, so OVN's conntrack in the pod's zone calls the reply
    // invalid and drops it (a TCP connect to the external host hung in SYN_SENT).
    // Checksum in the sender's kernel, as the pods do.
    for netns in [&plan.external.netns, &plan.netns_gw] {
        run(&argv![
            "ip", "netns", "exec", netns, "ethtool", "-K", "eth0", "tx", "off"
        ])?;
    }
    Ok(())
}
