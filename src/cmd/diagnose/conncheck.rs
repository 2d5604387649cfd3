//! Upstream's environment for diagnose, with the bash script's defaults and
//! meaning: `TCP_CONN_CHECK_PORT` (8100) and `UDP_CONN_CHECK_PORT` (8101) are
//! the ports of Kube-OVN's connectivity-check listeners (kube-ovn-cni on every
//! node with `--enable-verbose-conn-check`), `WITHOUT_KUBE_PROXY` (anything
//! but `false`) skips the kube-proxy check. Each is also a flag.

use k8s_openapi::api::core::v1::Pod;

/// Upstream's defaults (bash `kubectl-ko`, kube-ovn-cni and kube-ovn-pinger).
pub const DEFAULT_TCP_PORT: u16 = 8100;
pub const DEFAULT_UDP_PORT: u16 = 8101;

/// What the user asked for (flags / environment), before looking at the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub tcp_port: Option<u16>,
    pub udp_port: Option<u16>,
    pub without_kube_proxy: bool,
}

/// The conn-check ports every node is probed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub tcp: u16,
    pub udp: u16,
}

/// Which ports to probe on the nodes, if any: a port given by the user (flag
/// or environment) asks for the probes; otherwise they run where kube-ovn-cni
/// listens (`--enable-verbose-conn-check`), on the ports its own arguments
/// name, else upstream's defaults. A given port wins over kube-ovn-cni's.
pub fn ports(opts: &Options, pods: &[Pod]) -> Option<Ports> {
    let cni_args: Vec<&str> = pods
        .iter()
        .filter(|p| app_of(p) == Some("kube-ovn-cni"))
        .filter_map(|p| p.spec.as_ref())
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.command.iter().flatten().chain(c.args.iter().flatten()))
        .map(String::as_str)
        .collect();
    let verbose = cni_args
        .iter()
        .any(|a| *a == "--enable-verbose-conn-check" || *a == "--enable-verbose-conn-check=true");
    if opts.tcp_port.is_none() && opts.udp_port.is_none() && !verbose {
        return None;
    }
    let from_cni = |flag: &str| {
        cni_args
            .iter()
            .find_map(|a| a.strip_prefix(flag)?.strip_prefix('=')?.parse().ok())
    };
    Some(Ports {
        tcp: opts
            .tcp_port
            .or_else(|| from_cni("--tcp-conn-check-port"))
            .unwrap_or(DEFAULT_TCP_PORT),
        udp: opts
            .udp_port
            .or_else(|| from_cni("--udp-conn-check-port"))
            .unwrap_or(DEFAULT_UDP_PORT),
    })
}

/// A pod's `app` label (how Kube-OVN names its components' pods).
pub fn app_of(p: &Pod) -> Option<&str> {
    p.metadata.labels.as_ref()?.get("app").map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn cni(args: &[&str]) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels = Some([("app".to_string(), "kube-ovn-cni".to_string())].into());
        p.spec = Some(PodSpec {
            containers: vec![Container {
                args: Some(args.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    #[test]
    fn ports_come_from_the_user_then_kube_ovn_cni_then_defaults() {
        let none = Options::default();
        assert_eq!(ports(&none, &[cni(&["--enable-ovs-dpdk=false"])]), None);
        assert_eq!(
            ports(&none, &[cni(&["--enable-verbose-conn-check=true"])]),
            Some(Ports {
                tcp: 8100,
                udp: 8101
            })
        );
        let cni_ports = cni(&[
            "--enable-verbose-conn-check=true",
            "--tcp-conn-check-port=9100",
            "--udp-conn-check-port=9101",
        ]);
        assert_eq!(
            ports(&none, std::slice::from_ref(&cni_ports)),
            Some(Ports {
                tcp: 9100,
                udp: 9101
            })
        );
        let given = Options {
            tcp_port: Some(18100),
            ..Default::default()
        };
        assert_eq!(
            ports(&given, &[cni_ports]),
            Some(Ports {
                tcp: 18100,
                udp: 9101
            })
        );
        assert_eq!(
            ports(&given, &[]),
            Some(Ports {
                tcp: 18100,
                udp: 8101
            })
        );
    }
}
