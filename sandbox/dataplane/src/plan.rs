//! The sandbox topology as data: nodes, subnets, pods, services and their addresses.
//! Pure and deterministic (same name + options = same plan), so `status`, `fault`
//! and `down` can reload it from `sandbox.json` and tests can rely on stable names.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

pub const CLUSTER_ROUTER: &str = "ovn-cluster";
pub const DEFAULT_SUBNET: &str = "ovn-default";
pub const JOIN_SUBNET: &str = "join";
pub const VPC_NAME: &str = "vpc1";
pub const VPC_NAMESPACE: &str = "vpc1";
pub const VPC_SUBNET: &str = "vpc1-subnet";
pub const UNDERLAY_SUBNET: &str = "underlay";
pub const PROVIDER: &str = "provider";
pub const VLAN: &str = "vlan0";
pub const KUBE_SYSTEM: &str = "kube-system";
/// Node underlay (the "docker network" of a kind cluster), only inside `<name>-ul`.
pub const NODE_NET4: [u8; 3] = [172, 18, 0];
pub const NODE_NET6: &str = "fc00:f853:ccd:e793::";
pub const EXTERNAL_HOST_INDEX: u8 = 200;
pub const NP_NAME: &str = "protect-db";
/// NB and SB are always 3-member RAFT clusters, whatever the node count.
pub const CENTRAL_MEMBERS: usize = 3;
/// Port offset between two ovn-central members on the same node.
pub const CENTRAL_PORT_STEP: u16 = 10;
/// `--nodes` range `up` accepts.
pub const MIN_NODES: usize = 1;
pub const MAX_NODES: usize = 32;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Plan {
    pub name: String,
    /// RFC 3339 time of `up` (creationTimestamp of every object).
    #[serde(default)]
    pub created: String,
    pub dual_stack: bool,
    pub nodes: Vec<Node>,
    pub subnets: Vec<Subnet>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub policy: PolicyScenario,
    pub external: ExternalHost,
    pub netns_ul: String,
    pub netns_gw: String,
    /// The OVN version `up` was asked for (`--ovn`); plans from before versions
    /// existed ran the host's 23.03.
    #[serde(default = "host_ovn")]
    pub ovn: String,
    /// The image root the OVN/OVS pods run from; None = the host's packages.
    #[serde(default)]
    pub image: Option<String>,
    /// kube-proxy runs (its DaemonSet, a pod and :10256 health per node); false =
    /// `up --without-kube-proxy`, a cluster shaped like Kube-OVN's
    /// `kind-init-without-kube-proxy` (kind `kubeProxyMode: none`).
    #[serde(default = "yes")]
    pub kube_proxy: bool,
}

fn host_ovn() -> String {
    "23.03".into()
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Node {
    pub name: String,
    pub index: usize,
    pub netns: String,
    pub ip4: String,
    pub ip6: Option<String>,
    pub join_ip4: String,
    pub join_ip6: Option<String>,
    pub join_mac: String,
    pub central: bool,
    pub uid: String,
}

impl Node {
    pub fn ips(&self) -> Vec<String> {
        join_opt(&self.ip4, &self.ip6)
    }
    pub fn join_ips(&self) -> Vec<String> {
        join_opt(&self.join_ip4, &self.join_ip6)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Subnet {
    pub name: String,
    pub cidr4: String,
    pub gw4: String,
    pub cidr6: Option<String>,
    pub gw6: Option<String>,
    pub vpc: String,
    /// Logical router with an LRP `<router>-<subnet>`; None for the underlay subnet.
    pub router: Option<String>,
    pub lrp_mac: String,
    /// (vlan name, vlan id, provider network) for underlay subnets.
    pub vlan: Option<(String, u16, String)>,
    pub namespaces: Vec<String>,
    pub default: bool,
    /// Centralized gateway: the node its pods leave the cluster through
    /// (`spec.gatewayNode`'s active one); None = distributed.
    #[serde(default)]
    pub gateway_node: Option<String>,
}

impl Subnet {
    pub fn cidr_block(&self) -> String {
        join_opt(&self.cidr4, &self.cidr6).join(",")
    }
    pub fn gateway(&self) -> String {
        join_opt(&self.gw4, &self.gw6).join(",")
    }
    pub fn prefix4(&self) -> &str {
        self.cidr4.split('/').nth(1).unwrap_or("24")
    }
    pub fn prefix6(&self) -> &str {
        self.cidr6
            .as_deref()
            .and_then(|c| c.split('/').nth(1))
            .unwrap_or("112")
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    OvnCentral,
    OvsOvn,
    Cni,
    Controller,
    Workload,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    /// Index into `Plan::nodes`.
    pub node: usize,
    pub role: Role,
    pub container: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub host_network: bool,
    /// Subnet for pod-network pods.
    pub subnet: Option<String>,
    pub ip4: String,
    pub ip6: Option<String>,
    pub mac: String,
    /// The netns the pod lives in: its own (`<name>-<pod>.<ns>`) or its node's.
    pub netns: String,
    /// Host-side veth name in the node netns (pod-network pods only).
    pub veth: Option<String>,
    pub owner: Option<Owner>,
    pub uid: String,
    /// Added to every OVN port (6641-6644) of an ovn-central member that shares its
    /// node with another member: with fewer than three nodes the three RAFT members
    /// are placed round-robin, and two of them then live in one node netns.
    #[serde(default)]
    pub port_offset: u16,
}

impl Pod {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// LSP name as kube-ovn-controller builds it.
    pub fn lsp(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
    pub fn ips(&self) -> Vec<String> {
        join_opt(&self.ip4, &self.ip6)
    }
    /// Whether the pod runs from the OVN image (when the sandbox has one): the pods
    /// whose real images carry OVN/OVS and that get exec'd for those tools.
    /// kube-ovn-controller and workloads keep the host's filesystem.
    pub fn runs_image(&self) -> bool {
        match self.role {
            Role::OvnCentral | Role::OvsOvn | Role::Cni => true,
            Role::Workload => self.container == "pinger",
            Role::Controller => false,
        }
    }
    /// The pod's own directory name under `<state>/pods/`.
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ServicePort {
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub target_port: u16,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub cluster_ip4: String,
    pub cluster_ip6: Option<String>,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
    /// Backend pod keys (`ns/pod`) known at plan time; empty for the leader services,
    /// whose endpoints the emulator maintains.
    pub backends: Vec<String>,
    pub uid: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PolicyScenario {
    pub policy: String,
    pub target: String,
    pub target_ip: String,
    pub allowed_from: String,
    pub allowed_from_ip: String,
    pub denied_from: String,
    pub denied_from_ip: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ExternalHost {
    pub netns: String,
    pub ip4: String,
    pub ip6: Option<String>,
}

fn join_opt(a: &str, b: &Option<String>) -> Vec<String> {
    let mut v = vec![a.to_string()];
    if let Some(b) = b {
        v.push(b.clone());
    }
    v
}

/// RFC 3339 UTC timestamp of a Unix time (no date library needed for this one use).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // civil-from-days (proleptic Gregorian), days since 1970-01-01
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// FNV-1a: a stable hash for deterministic names, MACs and UIDs.
pub fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser: similar inputs must not give similar MACs/suffixes
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Locally administered unicast MAC, like `util.GenerateMac` but reproducible.
pub fn mac_for(seed: &str) -> String {
    let h = fnv(seed).to_be_bytes();
    let first = (h[0] & 0xfc) | 0x02;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        first, h[1], h[2], h[3], h[4], h[5]
    )
}

pub fn uid_for(seed: &str) -> String {
    let a = fnv(seed);
    let b = fnv(&format!("{seed}#uid"));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Kubernetes-style random suffix (consonants and digits), reproducible.
pub fn suffix(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = fnv(seed);
    let mut out = String::with_capacity(len);
    for i in 0..len {
        if i % 12 == 11 {
            h = fnv(&format!("{seed}{i}"));
        }
        out.push(ALPHABET[(h % ALPHABET.len() as u64) as usize] as char);
        h /= ALPHABET.len() as u64;
    }
    out
}

/// Host-side veth name like Kube-OVN's `<containerID[0:12]>_h` (15 chars).
pub fn veth_for(seed: &str) -> String {
    format!("{:012x}_h", fnv(seed) & 0xffff_ffff_ffff)
}

pub fn node_name(index: usize) -> String {
    match index {
        1 => "kube-ovn-control-plane".to_string(),
        2 => "kube-ovn-worker".to_string(),
        n => format!("kube-ovn-worker{}", n - 1),
    }
}

struct Alloc {
    base4: u32,
    base6: u128,
    next: u32,
}

impl Alloc {
    fn new(base4: Ipv4Addr, base6: Ipv6Addr) -> Self {
        // .1 is the gateway
        Alloc {
            base4: u32::from(base4),
            base6: u128::from(base6),
            next: 2,
        }
    }
    fn take(&mut self, dual: bool) -> (String, Option<String>) {
        let k = self.next;
        self.next += 1;
        let v4 = Ipv4Addr::from(self.base4 + k).to_string();
        let v6 = dual.then(|| Ipv6Addr::from(self.base6 + u128::from(k)).to_string());
        (v4, v6)
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn infra_labels(app: &str) -> BTreeMap<String, String> {
    labels(&[("app", app), ("component", "network"), ("type", "infra")])
}

pub const KUBE_OVN_IMAGE: &str = "docker.io/kubeovn/kube-ovn:v1.17.0";
/// What kind 1.32 runs as kube-proxy.
pub const KUBE_PROXY_IMAGE: &str = "registry.k8s.io/kube-proxy:v1.32.0";
const APP_IMAGE: &str = "docker.io/library/busybox:1.36";

/// The plan for sandbox `name`, phase by phase.
pub fn build(name: &str, n_nodes: usize, dual: bool) -> Plan {
    let subnets = subnets(name, dual);
    let nodes = nodes(name, n_nodes, dual);
    let mut pods = Pods::new(name, dual, &nodes);
    pods.host_network_pods();
    pods.network_pods();
    let pods = pods.finish();
    let policy = policy_scenario(&pods);
    let services = services(name, dual, &pods);
    let node_net6: Ipv6Addr = NODE_NET6.parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    Plan {
        external: ExternalHost {
            netns: format!("{name}-ext"),
            ip4: Ipv4Addr::new(
                NODE_NET4[0],
                NODE_NET4[1],
                NODE_NET4[2],
                EXTERNAL_HOST_INDEX,
            )
            .to_string(),
            ip6: dual.then(|| {
                Ipv6Addr::from(u128::from(node_net6) + u128::from(EXTERNAL_HOST_INDEX)).to_string()
            }),
        },
        netns_ul: format!("{name}-ul"),
        netns_gw: format!("{name}-gw"),
        ovn: host_ovn(),
        image: None,
        kube_proxy: true,
        name: name.into(),
        created: "2026-01-01T00:00:00Z".into(),
        dual_stack: dual,
        nodes,
        subnets,
        pods,
        services,
        policy,
    }
}

/// The four subnets: ovn-default, join, the custom VPC's and the underlay.
fn subnets(name: &str, dual: bool) -> Vec<Subnet> {
    let six = |s: &str| dual.then(|| s.to_string());
    vec![
        Subnet {
            name: DEFAULT_SUBNET.into(),
            cidr4: "10.16.0.0/16".into(),
            gw4: "10.16.0.1".into(),
            cidr6: six("fd00:10:16::/112"),
            gw6: six("fd00:10:16::1"),
            vpc: CLUSTER_ROUTER.into(),
            router: Some(CLUSTER_ROUTER.into()),
            lrp_mac: mac_for(&format!("{name}/lrp/ovn-default")),
            vlan: None,
            namespaces: vec![],
            default: true,
            gateway_node: None,
        },
        Subnet {
            name: JOIN_SUBNET.into(),
            cidr4: "100.64.0.0/16".into(),
            gw4: "100.64.0.1".into(),
            cidr6: six("fd00:100:64::/112"),
            gw6: six("fd00:100:64::1"),
            vpc: CLUSTER_ROUTER.into(),
            router: Some(CLUSTER_ROUTER.into()),
            lrp_mac: mac_for(&format!("{name}/lrp/join")),
            vlan: None,
            namespaces: vec![],
            default: false,
            gateway_node: None,
        },
        Subnet {
            name: VPC_SUBNET.into(),
            cidr4: "192.168.100.0/24".into(),
            gw4: "192.168.100.1".into(),
            cidr6: six("fd00:192:168:100::/112"),
            gw6: six("fd00:192:168:100::1"),
            vpc: VPC_NAME.into(),
            router: Some(VPC_NAME.into()),
            lrp_mac: mac_for(&format!("{name}/lrp/vpc1")),
            vlan: None,
            namespaces: vec![VPC_NAMESPACE.into()],
            default: false,
            gateway_node: None,
        },
        Subnet {
            name: UNDERLAY_SUBNET.into(),
            cidr4: "172.17.0.0/24".into(),
            gw4: "172.17.0.1".into(),
            cidr6: six("fd00:172:17::/112"),
            gw6: six("fd00:172:17::1"),
            vpc: CLUSTER_ROUTER.into(),
            router: None,
            lrp_mac: String::new(),
            vlan: Some((VLAN.into(), 0, PROVIDER.into())),
            namespaces: vec![],
            default: false,
            gateway_node: None,
        },
    ]
}

/// The nodes, each with its underlay and join addresses; the first
/// `CENTRAL_MEMBERS` run ovn-central.
fn nodes(name: &str, n_nodes: usize, dual: bool) -> Vec<Node> {
    let mut alloc_join = Alloc::new(
        Ipv4Addr::new(100, 64, 0, 0),
        "fd00:100:64::".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
    );
    let node_net6: Ipv6Addr = NODE_NET6.parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
    (1..=n_nodes)
        .map(|i| {
            let nname = node_name(i);
            let (j4, j6) = alloc_join.take(dual);
            let host = (i + 1) as u8;
            Node {
                ip4: Ipv4Addr::new(NODE_NET4[0], NODE_NET4[1], NODE_NET4[2], host).to_string(),
                ip6: dual
                    .then(|| Ipv6Addr::from(u128::from(node_net6) + u128::from(host)).to_string()),
                join_ip4: j4,
                join_ip6: j6,
                join_mac: mac_for(&format!("{name}/node/{nname}")),
                // the three RAFT members go round-robin over the nodes
                central: i <= CENTRAL_MEMBERS,
                uid: uid_for(&format!("{name}/node/{nname}")),
                netns: format!("{name}-node{i}"),
                index: i,
                name: nname,
            }
        })
        .collect()
}

/// What the pod phases of [`build`] share: the sandbox name (every uid,
/// MAC and veth derives from it), the nodes, the pod subnets' address pools
/// and the pods so far, in the order `up` starts them.
struct Pods<'a> {
    name: &'a str,
    dual: bool,
    nodes: &'a [Node],
    alloc_default: Alloc,
    alloc_vpc: Alloc,
    alloc_ul: Alloc,
    pods: Vec<Pod>,
}

impl<'a> Pods<'a> {
    fn new(name: &'a str, dual: bool, nodes: &'a [Node]) -> Self {
        Pods {
            name,
            dual,
            nodes,
            alloc_default: Alloc::new(
                Ipv4Addr::new(10, 16, 0, 0),
                "fd00:10:16::".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            ),
            alloc_vpc: Alloc::new(
                Ipv4Addr::new(192, 168, 100, 0),
                "fd00:192:168:100::"
                    .parse()
                    .unwrap_or(Ipv6Addr::UNSPECIFIED),
            ),
            alloc_ul: Alloc::new(
                Ipv4Addr::new(172, 17, 0, 0),
                "fd00:172:17::".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            ),
            pods: Vec::new(),
        }
    }

    /// A hostNetwork pod: the node's netns and addresses.
    #[allow(clippy::too_many_arguments)] // a pod's fields, each different
    fn host_pod(
        &mut self,
        pname: String,
        ns: &str,
        node: usize,
        role: Role,
        container: &str,
        labels: BTreeMap<String, String>,
        owner: Option<Owner>,
    ) {
        let (name, n) = (self.name, &self.nodes[node]);
        self.pods.push(Pod {
            uid: uid_for(&format!("{name}/pod/{ns}/{pname}")),
            mac: String::new(),
            name: pname,
            namespace: ns.into(),
            node,
            role,
            container: container.into(),
            image: if container == "kube-proxy" {
                KUBE_PROXY_IMAGE.into()
            } else if role == Role::Workload {
                APP_IMAGE.into()
            } else {
                KUBE_OVN_IMAGE.into()
            },
            labels,
            host_network: true,
            subnet: None,
            ip4: n.ip4.clone(),
            ip6: n.ip6.clone(),
            netns: n.netns.clone(),
            veth: None,
            owner,
            port_offset: 0,
        });
    }

    /// A pod on the overlay (or underlay) network: its own netns and the
    /// next address of its subnet's pool.
    #[allow(clippy::too_many_arguments)] // a pod's fields, each different
    fn net_pod(
        &mut self,
        pname: String,
        ns: &str,
        node: usize,
        container: &str,
        subnet: &str,
        labels: BTreeMap<String, String>,
        owner: Option<Owner>,
    ) {
        let name = self.name;
        let alloc = match subnet {
            VPC_SUBNET => &mut self.alloc_vpc,
            UNDERLAY_SUBNET => &mut self.alloc_ul,
            _ => &mut self.alloc_default,
        };
        let (ip4, ip6) = alloc.take(self.dual);
        let seed = format!("{name}/pod/{ns}/{pname}");
        self.pods.push(Pod {
            uid: uid_for(&seed),
            mac: mac_for(&seed),
            veth: Some(veth_for(&seed)),
            netns: format!("{name}-{pname}.{ns}"),
            name: pname,
            namespace: ns.into(),
            node,
            role: Role::Workload,
            container: container.into(),
            image: if container == "pinger" {
                KUBE_OVN_IMAGE.into()
            } else {
                APP_IMAGE.into()
            },
            labels,
            host_network: false,
            subnet: Some(subnet.into()),
            ip4,
            ip6,
            owner,
            port_offset: 0,
        });
    }

    /// Kube-OVN's and Kubernetes' hostNetwork pods: ovn-central members,
    /// ovs-ovn and kube-ovn-cni per node, kube-ovn-controller, a hostNetwork
    /// workload and kube-proxy per node.
    fn host_network_pods(&mut self) {
        let (name, nodes) = (self.name, self.nodes);
        let central_rs = format!(
            "ovn-central-{}",
            suffix(&format!("{name}/rs/ovn-central"), 10)
        );
        for m in 0..CENTRAL_MEMBERS {
            let i = m % nodes.len();
            let mut l = infra_labels("ovn-central");
            l.insert(
                "pod-template-hash".into(),
                central_rs.trim_start_matches("ovn-central-").into(),
            );
            l.insert("ovn-nb-leader".into(), "false".into());
            l.insert("ovn-sb-leader".into(), "false".into());
            l.insert("ovn-northd-leader".into(), "false".into());
            let pname = format!("{central_rs}-{}", suffix(&format!("{name}/central/{m}"), 5));
            self.host_pod(
                pname,
                KUBE_SYSTEM,
                i,
                Role::OvnCentral,
                "ovn-central",
                l,
                Some(Owner {
                    kind: "ReplicaSet".into(),
                    name: central_rs.clone(),
                }),
            );
        }
        for (i, _) in nodes.iter().enumerate() {
            let mut l = infra_labels("ovs");
            l.insert("controller-revision-hash".into(), "7c9f6b8d4".into());
            self.host_pod(
                format!("ovs-ovn-{}", suffix(&format!("{name}/ovs/{i}"), 5)),
                KUBE_SYSTEM,
                i,
                Role::OvsOvn,
                "openvswitch",
                l,
                Some(Owner {
                    kind: "DaemonSet".into(),
                    name: "ovs-ovn".into(),
                }),
            );
            let mut l = infra_labels("kube-ovn-cni");
            l.insert("controller-revision-hash".into(), "5d7b9c6f8".into());
            self.host_pod(
                format!("kube-ovn-cni-{}", suffix(&format!("{name}/cni/{i}"), 5)),
                KUBE_SYSTEM,
                i,
                Role::Cni,
                "cni-server",
                l,
                Some(Owner {
                    kind: "DaemonSet".into(),
                    name: "kube-ovn-cni".into(),
                }),
            );
        }
        let ctrl_rs = format!(
            "kube-ovn-controller-{}",
            suffix(&format!("{name}/rs/ctrl"), 10)
        );
        let mut l = infra_labels("kube-ovn-controller");
        l.insert(
            "pod-template-hash".into(),
            ctrl_rs.trim_start_matches("kube-ovn-controller-").into(),
        );
        self.host_pod(
            format!("{ctrl_rs}-{}", suffix(&format!("{name}/ctrl"), 5)),
            KUBE_SYSTEM,
            0,
            Role::Controller,
            "kube-ovn-controller",
            l,
            Some(Owner {
                kind: "ReplicaSet".into(),
                name: ctrl_rs.clone(),
            }),
        );
        // a hostNetwork workload (trace/tcpdump of host-network pods, #2761)
        self.host_pod(
            "host-net".into(),
            "default",
            1.min(nodes.len() - 1),
            Role::Workload,
            "app",
            labels(&[("app", "host-net")]),
            None,
        );
        // kube-proxy on every node, as kubeadm/kind deploy it (its health endpoint
        // :10256/healthz is served by kube_proxy.rs)
        for (i, _) in nodes.iter().enumerate() {
            self.host_pod(
                format!(
                    "kube-proxy-{}",
                    suffix(&format!("{name}/kube-proxy/{i}"), 5)
                ),
                KUBE_SYSTEM,
                i,
                Role::Workload,
                "kube-proxy",
                labels(&[
                    ("k8s-app", "kube-proxy"),
                    ("controller-revision-hash", "5f8d6c7b9"),
                    ("pod-template-generation", "1"),
                ]),
                Some(Owner {
                    kind: "DaemonSet".into(),
                    name: "kube-proxy".into(),
                }),
            );
        }
    }

    /// The pods with their own address: a pinger per node, coredns, and the
    /// workloads (web/client pairs, the policy-protected db, underlay and
    /// custom-VPC pods).
    fn network_pods(&mut self) {
        let (name, nodes) = (self.name, self.nodes);
        for (i, _) in nodes.iter().enumerate() {
            let mut l = infra_labels("kube-ovn-pinger");
            l.insert("controller-revision-hash".into(), "6b8f7d9c5".into());
            self.net_pod(
                format!(
                    "kube-ovn-pinger-{}",
                    suffix(&format!("{name}/pinger/{i}"), 5)
                ),
                KUBE_SYSTEM,
                i,
                "pinger",
                DEFAULT_SUBNET,
                l,
                Some(Owner {
                    kind: "DaemonSet".into(),
                    name: "kube-ovn-pinger".into(),
                }),
            );
        }
        let dns_rs = format!("coredns-{}", suffix(&format!("{name}/rs/coredns"), 10));
        for i in 0..2.min(nodes.len()) {
            let l = labels(&[
                ("k8s-app", "kube-dns"),
                ("pod-template-hash", dns_rs.trim_start_matches("coredns-")),
            ]);
            self.net_pod(
                format!("{dns_rs}-{}", suffix(&format!("{name}/coredns/{i}"), 5)),
                KUBE_SYSTEM,
                i,
                "coredns",
                DEFAULT_SUBNET,
                l,
                Some(Owner {
                    kind: "ReplicaSet".into(),
                    name: dns_rs.clone(),
                }),
            );
        }
        // web-k/client-k on node k; a single node also gets web-2/client-2, so the
        // Service has two backends and the NetworkPolicy pair exists
        for k in 1..=nodes.len().max(2) {
            let i = (k - 1) % nodes.len();
            let mut wl = labels(&[("app", "web")]);
            if k <= 2 {
                wl.insert("backend".into(), "web-svc".into());
            }
            self.net_pod(
                format!("web-{k}"),
                "default",
                i,
                "app",
                DEFAULT_SUBNET,
                wl,
                None,
            );
            let mut cl = labels(&[("app", "client")]);
            if k == 2 {
                cl.insert("access".into(), "db".into());
            }
            self.net_pod(
                format!("client-{k}"),
                "default",
                i,
                "app",
                DEFAULT_SUBNET,
                cl,
                None,
            );
        }
        self.net_pod(
            "db".into(),
            "default",
            0,
            "app",
            DEFAULT_SUBNET,
            labels(&[("app", "db")]),
            None,
        );
        for i in 0..2.min(nodes.len()) {
            self.net_pod(
                format!("underlay-{}", i + 1),
                "default",
                i,
                "app",
                UNDERLAY_SUBNET,
                labels(&[("app", "underlay")]),
                None,
            );
            self.net_pod(
                format!("vpc1-pod-{}", i + 1),
                VPC_NAMESPACE,
                i,
                "app",
                VPC_SUBNET,
                labels(&[("app", "vpc1")]),
                None,
            );
        }
    }

    /// The pods; ovn-central members beyond the node count share a node, so
    /// they get their own ports.
    fn finish(mut self) -> Vec<Pod> {
        let nodes = self.nodes.len();
        for (m, p) in self
            .pods
            .iter_mut()
            .filter(|p| p.role == Role::OvnCentral)
            .enumerate()
        {
            p.port_offset = CENTRAL_PORT_STEP * (m / nodes) as u16;
        }
        self.pods
    }
}

/// The NetworkPolicy pair the sandbox's tests rely on: client-2 may reach
/// db, client-1 may not.
fn policy_scenario(pods: &[Pod]) -> PolicyScenario {
    let find_ip = |key: &str| {
        pods.iter()
            .find(|p| p.key() == key)
            .map(|p| p.ip4.clone())
            .unwrap_or_default()
    };
    PolicyScenario {
        policy: format!("default/{NP_NAME}"),
        target: "default/db".into(),
        target_ip: find_ip("default/db"),
        allowed_from: "default/client-2".into(),
        allowed_from_ip: find_ip("default/client-2"),
        denied_from: "default/client-1".into(),
        denied_from_ip: find_ip("default/client-1"),
    }
}

/// kube-dns, web and the ovn-nb/ovn-sb/ovn-northd Services.
fn services(name: &str, dual: bool, pods: &[Pod]) -> Vec<Service> {
    let backends_of = |sel: &BTreeMap<String, String>, ns: &str| -> Vec<String> {
        pods.iter()
            .filter(|p| p.namespace == ns && !p.host_network)
            .filter(|p| sel.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .map(|p| p.key())
            .collect()
    };
    let svc = |sname: &str,
               ns: &str,
               ip4: &str,
               ip6: &str,
               sel: BTreeMap<String, String>,
               ports: Vec<ServicePort>,
               with_backends: bool| Service {
        uid: uid_for(&format!("{name}/svc/{ns}/{sname}")),
        name: sname.into(),
        namespace: ns.into(),
        cluster_ip4: ip4.into(),
        cluster_ip6: dual.then(|| ip6.to_string()),
        backends: if with_backends {
            backends_of(&sel, ns)
        } else {
            vec![]
        },
        selector: sel,
        ports,
    };
    let port = |n: &str, proto: &str, p: u16| ServicePort {
        name: n.into(),
        protocol: proto.into(),
        port: p,
        target_port: p,
    };
    vec![
        svc(
            "kube-dns",
            KUBE_SYSTEM,
            "10.96.0.10",
            "fd00:10:96::a",
            labels(&[("k8s-app", "kube-dns")]),
            vec![port("dns", "UDP", 53), port("dns-tcp", "TCP", 53)],
            true,
        ),
        svc(
            "web",
            "default",
            "10.96.100.10",
            "fd00:10:96::64:a",
            labels(&[("app", "web"), ("backend", "web-svc")]),
            vec![ServicePort {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
                target_port: 8080,
            }],
            true,
        ),
        svc(
            "ovn-nb",
            KUBE_SYSTEM,
            "10.96.10.41",
            "fd00:10:96::a:29",
            labels(&[("app", "ovn-central"), ("ovn-nb-leader", "true")]),
            vec![port("ovn-nb", "TCP", 6641)],
            false,
        ),
        svc(
            "ovn-sb",
            KUBE_SYSTEM,
            "10.96.10.42",
            "fd00:10:96::a:2a",
            labels(&[("app", "ovn-central"), ("ovn-sb-leader", "true")]),
            vec![port("ovn-sb", "TCP", 6642)],
            false,
        ),
        svc(
            "ovn-northd",
            KUBE_SYSTEM,
            "10.96.10.43",
            "fd00:10:96::a:2b",
            labels(&[("app", "ovn-central"), ("ovn-northd-leader", "true")]),
            vec![port("ovn-northd", "TCP", 6643)],
            false,
        ),
    ]
}

impl Plan {
    /// No kube-proxy: its pods go (and with them its DaemonSet, which `objects`
    /// derives from the pods); they are hostNetwork, so no address moves.
    pub fn drop_kube_proxy(&mut self) {
        self.kube_proxy = false;
        self.pods
            .retain(|p| !(p.role == Role::Workload && p.container == "kube-proxy"));
    }
    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.name == name)
    }
    pub fn pod(&self, key: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.key() == key)
    }
    pub fn pods_of(&self, role: Role) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(move |p| p.role == role)
    }
    pub fn pod_on(&self, role: Role, node: usize) -> Option<&Pod> {
        self.pods.iter().find(|p| p.role == role && p.node == node)
    }
    pub fn central_pods(&self) -> Vec<&Pod> {
        self.pods_of(Role::OvnCentral).collect()
    }
    /// `tcp:<ip>:<port>,...` over every ovn-central member; `port` is the base
    /// port (6641 NB, 6642 SB), each member adds its own offset.
    pub fn remotes(&self, port: u16) -> String {
        self.central_pods()
            .iter()
            .map(|p| format!("tcp:{}:{}", p.ip4, port + p.port_offset))
            .collect::<Vec<_>>()
            .join(",")
    }
    /// Every netns this sandbox creates.
    pub fn all_netns(&self) -> Vec<String> {
        let mut v = vec![
            self.netns_ul.clone(),
            self.netns_gw.clone(),
            self.external.netns.clone(),
        ];
        v.extend(self.nodes.iter().map(|n| n.netns.clone()));
        v.extend(
            self.pods
                .iter()
                .filter(|p| !p.host_network)
                .map(|p| p.netns.clone()),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_deterministic_and_names_fit_linux_limits() {
        let a = build("ko", 3, true);
        let b = build("ko", 3, true);
        assert_eq!(
            serde_json::to_string(&a).ok(),
            serde_json::to_string(&b).ok()
        );
        for p in &a.pods {
            if let Some(v) = &p.veth {
                assert!(v.len() <= 15, "veth {v} too long");
            }
        }
        let mut ips: Vec<_> = a
            .pods
            .iter()
            .filter(|p| !p.host_network)
            .map(|p| p.ip4.clone())
            .collect();
        let n = ips.len();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n, "pod IPs must be unique");
    }

    #[test]
    fn plan_has_the_documented_shape() {
        let p = build("ko", 4, false);
        assert_eq!(p.central_pods().len(), 3);
        assert_eq!(p.pods_of(Role::OvsOvn).count(), 4);
        assert_eq!(p.nodes[0].ip4, "172.18.0.2");
        assert_eq!(p.nodes[0].join_ip4, "100.64.0.2");
        assert!(p.nodes[0].ip6.is_none());
        let web = p
            .services
            .iter()
            .find(|s| s.name == "web")
            .map(|s| s.backends.clone());
        assert_eq!(
            web,
            Some(vec![
                "default/web-1".to_string(),
                "default/web-2".to_string()
            ])
        );
        assert_eq!(p.policy.denied_from, "default/client-1");
        assert!(p.policy.target_ip.starts_with("10.16.0."));
    }

    #[test]
    fn two_nodes_keep_three_raft_members_on_distinct_ports() {
        let p = build("ko", 2, false);
        let central = p.central_pods();
        assert_eq!(central.len(), 3);
        let placed: Vec<(usize, u16)> = central.iter().map(|c| (c.node, c.port_offset)).collect();
        assert_eq!(placed, [(0, 0), (1, 0), (0, CENTRAL_PORT_STEP)]);
        assert!(p.nodes.iter().all(|n| n.central));
        assert_eq!(
            p.remotes(6641),
            "tcp:172.18.0.2:6641,tcp:172.18.0.3:6641,tcp:172.18.0.2:6651"
        );
        // the NetworkPolicy pair still spans two nodes
        let node_of = |k: &str| p.pod(k).map(|x| x.node);
        assert_eq!(node_of("default/client-1"), Some(0));
        assert_eq!(node_of("default/client-2"), Some(1));
        // one node: all three members there, on three port sets; the NetworkPolicy
        // pair and the Service's two backends still exist
        let one = build("ko", 1, false);
        let offsets: Vec<u16> = one.central_pods().iter().map(|c| c.port_offset).collect();
        assert_eq!(offsets, [0, CENTRAL_PORT_STEP, 2 * CENTRAL_PORT_STEP]);
        assert!(one.pod("default/client-2").is_some());
        assert!(!one.policy.allowed_from_ip.is_empty());
        let web = one.services.iter().find(|s| s.name == "web");
        assert_eq!(web.map(|s| s.backends.len()), Some(2));
        // three nodes: one member each, standard ports, same names as before
        let three = build("ko", 3, false);
        assert!(three.central_pods().iter().all(|c| c.port_offset == 0));
        assert_eq!(
            three.remotes(6642),
            "tcp:172.18.0.2:6642,tcp:172.18.0.3:6642,tcp:172.18.0.4:6642"
        );
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn macs_are_locally_administered_unicast() {
        let m = mac_for("x");
        let first = u8::from_str_radix(&m[0..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02);
    }
}
