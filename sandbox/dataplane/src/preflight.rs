//! Checks before `up` touches anything: root, tools, a free API port. Each failure is
//! one sentence that says what to do.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Result, bail};

pub const APT: &str = "apt-get install -y ovn-central ovn-host openvswitch-switch iproute2 iputils-ping iputils-arping ndisc6 tcpdump ethtool";

/// OVN/OVS tools, needed on the host only when the sandbox runs the host's packages.
const OVN_TOOLS: &[&str] = &[
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-appctl",
    "ovn-northd",
    "ovn-controller",
    "ovn-nbctl",
    "ovn-sbctl",
    "ovn-appctl",
];

/// What the sandbox itself and its host-filesystem pods (workloads) run.
const TOOLS: &[&str] = &[
    "ip", "nsenter", "unshare", "setsid", "mount", "umount", "sysctl", "kill", "ping", "arping",
    "ndisc6", "tcpdump", "ethtool",
];

const FILES: &[&str] = &[
    "/usr/share/openvswitch/vswitch.ovsschema",
    "/usr/share/ovn/ovn-nb.ovsschema",
    "/usr/share/ovn/ovn-sb.ovsschema",
];

pub fn is_root() -> bool {
    // /proc/self is owned by the process's effective uid: no libc call needed.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

pub fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(std::path::PathBuf::from))
        .any(|d| d.join(tool).is_file())
}

/// Tools and files missing on the host; `host_ovn`: the OVN/OVS pods run the host's
/// packages (else they run from an image, which has its own).
pub fn missing_tools(host_ovn: bool) -> Vec<String> {
    let ovn: &[&str] = if host_ovn { OVN_TOOLS } else { &[] };
    let mut v: Vec<String> = TOOLS
        .iter()
        .chain(ovn)
        .filter(|t| !on_path(t))
        .map(|t| t.to_string())
        .collect();
    if host_ovn {
        v.extend(
            FILES
                .iter()
                .filter(|f| !Path::new(f).exists())
                .map(|f| f.to_string()),
        );
    }
    v
}

pub fn check(api_port: u16, host_ovn: bool) -> Result<()> {
    if !is_root() {
        bail!("the sandbox needs root (it creates network and mount namespaces): run it with sudo");
    }
    let missing = missing_tools(host_ovn);
    if !missing.is_empty() {
        bail!(
            "missing {}: install the packages with `{APT}`",
            missing.join(", ")
        );
    }
    if api_port != 0 && std::net::TcpListener::bind(("127.0.0.1", api_port)).is_err() {
        bail!(
            "port 127.0.0.1:{api_port} is already in use: pick another with --api-port or leave it out to use a free one"
        );
    }
    Ok(())
}
