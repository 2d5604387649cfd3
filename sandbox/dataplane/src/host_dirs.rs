//! A node's host directories: the `hostPath` volumes Kube-OVN's manifests mount
//! (`/run/openvswitch`, `/run/ovn`, `/etc/origin/openvswitch`, `/var/log/openvswitch`,
//! `/var/log/ovn`, `/var/log/kube-ovn`). Every pod of a node that mounts one sees the
//! same directory, as on a real node: what ovn-controller writes to
//! `/var/log/ovn/ovn-controller.log` is what `tail` in the pinger pod reads and what
//! `kubectl ko log ovn` copies out of the ovs-ovn pod.
//!
//! The node's directories are the ones the ovs-ovn pod was given (it is started first
//! on every node); `/var/log/kube-ovn` is the kube-ovn-cni pod's. All mount decisions
//! about sharing node directories live here.

use anyhow::{Context, Result};

use crate::ctx::Ctx;
use crate::plan::{Pod, Role};
use crate::rootfs::Bind;

/// Container path → the node's directory for it (an ovs-ovn pod sub-directory).
const OVS_OVN_HOST_PATHS: [(&str, &str); 5] = [
    ("run-ovs", "/var/run/openvswitch"),
    ("etc-ovs", "/etc/openvswitch"),
    ("log-ovs", "/var/log/openvswitch"),
    ("run-ovn", "/var/run/ovn"),
    ("log-ovn", "/var/log/ovn"),
];

/// The binds of a kube-ovn-pinger pod (install.sh's pinger DaemonSet: host-run-ovs,
/// host-run-ovn, host-config-openvswitch, host-log-ovs, host-log-ovn, kube-ovn-log).
pub fn pinger_binds(ctx: &Ctx, pod: &Pod) -> Result<Vec<Bind>> {
    let ovs = ctx.ovs_pod(pod.node)?;
    let mut binds: Vec<Bind> = OVS_OVN_HOST_PATHS
        .iter()
        .map(|(sub, dst)| Bind {
            src: ctx.pod_dir(ovs, sub),
            dst: dst.to_string(),
        })
        .collect();
    let cni = ctx
        .plan
        .pod_on(Role::Cni, pod.node)
        .with_context(|| format!("no kube-ovn-cni pod planned on the node of {}", pod.key()))?;
    binds.push(Bind {
        src: ctx.pod_dir(cni, "log-kube-ovn"),
        dst: "/var/log/kube-ovn".into(),
    });
    Ok(binds)
}
