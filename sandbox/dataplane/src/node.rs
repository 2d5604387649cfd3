//! One node: its ovs-ovn pod (ovsdb-server, ovs-vswitchd on the userspace datapath,
//! ovn-controller), its kube-ovn-cni pod and the ovn-central pods placed on it (NB and
//! SB RAFT members + ovn-northd; one per node from three nodes up).

use anyhow::{Context, Result};

use crate::argv;
use crate::ctx::Ctx;
use crate::exec::{self, in_netns, in_pod, ip_batch, run, run_daemon};
use crate::holder;
use crate::plan::{Node, Pod, Role};
use crate::rootfs::Bind;

pub const NB_PORT: u16 = 6641;
pub const SB_PORT: u16 = 6642;
pub const NB_RAFT_PORT: u16 = 6643;
pub const SB_RAFT_PORT: u16 = 6644;

/// Container path → pod sub-directory, per role (kube-ovn-facts §4).
pub fn binds(ctx: &Ctx, pod: &Pod) -> Result<Vec<Bind>> {
    let b = |p: &Pod, sub: &str, dst: &str| Bind {
        src: ctx.pod_dir(p, sub),
        dst: dst.to_string(),
    };
    Ok(match pod.role {
        Role::OvnCentral => vec![
            b(pod, "run-ovn", "/var/run/ovn"),
            b(pod, "etc-ovn", "/etc/ovn"),
            Bind {
                src: ctx.central_log_dir(pod),
                dst: "/var/log/ovn".into(),
            },
        ],
        Role::OvsOvn | Role::Cni => {
            // kube-ovn-cni mounts the same host paths as ovs-ovn, so both see one OVS.
            let ovs = ctx.ovs_pod(pod.node)?;
            let mut v = vec![
                b(ovs, "run-ovs", "/var/run/openvswitch"),
                b(ovs, "etc-ovs", "/etc/openvswitch"),
                b(ovs, "log-ovs", "/var/log/openvswitch"),
                b(ovs, "run-ovn", "/var/run/ovn"),
                b(ovs, "log-ovn", "/var/log/ovn"),
            ];
            if pod.role == Role::Cni {
                v.push(b(pod, "log-kube-ovn", "/var/log/kube-ovn"));
                v.push(b(pod, "etc-cni", "/etc/cni/net.d"));
            }
            v
        }
        Role::Controller => vec![b(pod, "log-kube-ovn", "/var/log/kube-ovn")],
        // the pinger binary diagnose runs in `--mode=job` (a stand-in, see pinger.rs)
        // and the node's host directories (host_dirs.rs)
        Role::Workload if pod.container == "pinger" => {
            let mut v = vec![crate::pinger::install(ctx)?];
            v.extend(crate::host_dirs::pinger_binds(ctx, pod)?);
            v
        }
        Role::Workload => vec![],
    })
}

/// What kube-ovn-cni installs on a node: its CNI config (env-check looks for it).
const CNI_CONFLIST: &str = r#"{
  "name": "kube-ovn",
  "cniVersion": "0.3.1",
  "plugins": [
    {"type": "kube-ovn", "server_socket": "/run/openvswitch/kube-ovn-daemon.sock"},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
"#;

pub fn start_holder(ctx: &Ctx, pod: &Pod) -> Result<u32> {
    let binds = binds(ctx, pod)?;
    if pod.role == Role::Cni {
        let dir = ctx.pod_dir(pod, "etc-cni");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join("01-kube-ovn.conflist");
        std::fs::write(&file, CNI_CONFLIST)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let log = ctx.log_file(&format!("holder-{}.log", pod.dir_name()));
    let layer_dir = ctx.pod_dir(pod, "rootfs");
    let fs = holder::PodFs {
        image: ctx.image_of(pod),
        layer_dir: &layer_dir,
    };
    let pid = holder::spawn(&pod.netns, &pod.key(), &fs, &binds, &log)?;
    ctx.set_pid(pod, pid)?;
    Ok(pid)
}

/// Everything on one node up to a running ovn-controller.
pub fn setup(ctx: &Ctx, node: &Node) -> Result<()> {
    let plan = &ctx.plan;
    let mut lines = argv!["link set lo up", "link set eth0 up", "link set prov0 up"];
    lines.push("link set eth0 mtu 1500".into());
    ip_batch(Some(&node.netns), &lines)?;
    run(&in_netns(
        &node.netns,
        &argv![
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1"
        ],
    ))?;

    let ovs = ctx.ovs_pod(node.index - 1)?;
    let ovs_pid = start_holder(ctx, ovs)?;
    start_ovs(ctx, node, ovs, ovs_pid)?;

    for central in plan
        .pods
        .iter()
        .filter(|p| p.role == Role::OvnCentral && p.node == node.index - 1)
    {
        let pid = start_holder(ctx, central)?;
        start_central_dbs(ctx, node, central, pid)?;
        start_northd(ctx, central, pid)?;
    }
    start_controller(ctx, ovs, ovs_pid)?;

    for p in plan
        .pods
        .iter()
        .filter(|p| p.node == node.index - 1 && p.host_network)
    {
        if matches!(p.role, Role::Cni | Role::Controller | Role::Workload) {
            start_holder(ctx, p)?;
            let log = ctx.container_log(p);
            if let Some(dir) = log.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            let line = format!(
                "{} started in sandbox {} on node {}\n",
                p.container, plan.name, node.name
            );
            std::fs::write(&log, line).with_context(|| format!("writing {}", log.display()))?;
        }
    }
    Ok(())
}

fn start_ovs(ctx: &Ctx, node: &Node, ovs: &Pod, pid: u32) -> Result<()> {
    let log = ctx.log_file(&format!("{}-start.log", node.netns));
    let p = |a: Vec<String>| in_pod(pid, &a);
    std::fs::write(
        ctx.pod_dir(ovs, "etc-ovs").join("system-id.conf"),
        &node.name,
    )
    .context("writing system-id.conf")?;
    run(&p(argv![
        "ovsdb-tool",
        "create",
        "/etc/openvswitch/conf.db",
        "/usr/share/openvswitch/vswitch.ovsschema"
    ]))?;
    run_daemon(
        &p(argv![
            "ovsdb-server",
            "--detach",
            "--no-chdir",
            "--pidfile",
            "--log-file",
            "--remote=punix:/var/run/openvswitch/db.sock",
            "/etc/openvswitch/conf.db"
        ]),
        &log,
    )?;
    let sb = ctx.plan.remotes(SB_PORT);
    run(&p(argv![
        "ovs-vsctl",
        "--no-wait",
        "init",
        "--",
        "set",
        "open_vswitch",
        ".",
        format!("external-ids:system-id={}", node.name),
        format!("external-ids:hostname={}", node.name),
        format!("external-ids:ovn-remote={sb}"),
        "external-ids:ovn-encap-type=geneve",
        format!("external-ids:ovn-encap-ip={}", node.ip4),
        "external-ids:ovn-bridge-datapath-type=netdev",
        format!(
            "external-ids:ovn-bridge-mappings={}:br-provider",
            crate::plan::PROVIDER
        ),
        "external-ids:ovn-remote-probe-interval=10000"
    ]))?;
    run_daemon(
        &p(argv![
            "ovs-vswitchd",
            "--detach",
            "--no-chdir",
            "--disable-system",
            "--pidfile",
            "--log-file"
        ]),
        &log,
    )?;
    let node_lsp = format!("node-{}", node.name);
    run(&p(argv![
        "ovs-vsctl",
        "--timeout=30",
        "add-br",
        "br-phy",
        "--",
        "set",
        "bridge",
        "br-phy",
        "datapath_type=netdev",
        "--",
        "add-port",
        "br-phy",
        "eth0",
        "--",
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=netdev",
        "fail-mode=secure",
        "other-config:disable-in-band=true",
        "--",
        "add-br",
        "br-provider",
        "--",
        "set",
        "bridge",
        "br-provider",
        "datapath_type=netdev",
        "--",
        "add-port",
        "br-provider",
        "prov0",
        "--",
        "add-port",
        "br-int",
        "ovn0",
        "--",
        "set",
        "interface",
        "ovn0",
        "type=internal",
        format!("external_ids:iface-id={node_lsp}"),
        format!("external_ids:ip={}", node.join_ips().join(",")),
        "external_ids:vendor=kube-ovn"
    ]))?;
    // The node IP lives on br-phy: the userspace datapath sends geneve through it.
    let join = ctx
        .plan
        .subnet(crate::plan::JOIN_SUBNET)
        .context("join subnet missing")?;
    let default = ctx
        .plan
        .subnet(crate::plan::DEFAULT_SUBNET)
        .context("ovn-default subnet missing")?;
    let mut lines = vec![
        format!("addr add {}/24 dev br-phy", node.ip4),
        "link set br-phy up".into(),
        format!("link set ovn0 address {} mtu 1400", node.join_mac),
        format!("addr add {}/{} dev ovn0", node.join_ip4, join.prefix4()),
        "link set ovn0 up".into(),
        // kube-ovn-cni's routes carry the node's InternalIP as source (routeDiff)
        format!(
            "route add {} via {} dev ovn0 src {}",
            default.cidr4, join.gw4, node.ip4
        ),
    ];
    if let (Some(ip6), Some(j6), Some(gw6), Some(c6)) =
        (&node.ip6, &node.join_ip6, &join.gw6, &default.cidr6)
    {
        lines.push(format!("addr add {ip6}/64 dev br-phy nodad"));
        lines.push(format!("addr add {j6}/{} dev ovn0 nodad", join.prefix6()));
        lines.push(format!("route add {c6} via {gw6} dev ovn0 src {ip6}"));
    }
    // ovn0 is a tap device that ovs-vswitchd creates; wait for it to appear.
    exec::poll("ovn0 to appear", std::time::Duration::from_secs(10), || {
        run(&argv!["ip", "-n", node.netns, "link", "show", "ovn0"]).ok()
    })?;
    ip_batch(Some(&node.netns), &lines)
}

fn start_central_dbs(ctx: &Ctx, node: &Node, central: &Pod, pid: u32) -> Result<()> {
    let p = |a: Vec<String>| in_pod(pid, &a);
    let first = ctx
        .plan
        .central_pods()
        .first()
        .copied()
        .context("no ovn-central pod in the plan")?;
    let log = ctx.log_file(&format!("{}-central.log", central.dir_name()));
    for (db, schema, dbname, raft) in [
        (
            "ovnnb_db",
            "/usr/share/ovn/ovn-nb.ovsschema",
            "OVN_Northbound",
            NB_RAFT_PORT,
        ),
        (
            "ovnsb_db",
            "/usr/share/ovn/ovn-sb.ovsschema",
            "OVN_Southbound",
            SB_RAFT_PORT,
        ),
    ] {
        let file = format!("/etc/ovn/{db}.db");
        let local = format!("tcp:{}:{}", node.ip4, raft + central.port_offset);
        if central.name == first.name {
            run(&p(argv![
                "ovsdb-tool",
                "create-cluster",
                file,
                schema,
                local
            ]))?;
        } else {
            let remote = format!("tcp:{}:{}", first.ip4, raft + first.port_offset);
            run(&p(argv![
                "ovsdb-tool",
                "join-cluster",
                file,
                dbname,
                local,
                remote
            ]))?;
        }
    }
    for (db, port, logname) in [
        ("ovnnb_db", NB_PORT, "ovsdb-server-nb.log"),
        ("ovnsb_db", SB_PORT, "ovsdb-server-sb.log"),
    ] {
        run_daemon(
            &p(db_server_argv(
                db,
                port + central.port_offset,
                logname,
                &node.ip4,
            )),
            &log,
        )?;
    }
    Ok(())
}

/// The ovsdb-server command line of one central database (also used by `fault heal`).
pub fn db_server_argv(db: &str, port: u16, logname: &str, ip: &str) -> Vec<String> {
    argv![
        "ovsdb-server",
        "--detach",
        "--no-chdir",
        format!("--pidfile=/var/run/ovn/{db}.pid"),
        format!("--log-file=/var/log/ovn/{logname}"),
        format!("--remote=punix:/var/run/ovn/{db}.sock"),
        format!("--remote=ptcp:{port}:{ip}"),
        format!("--unixctl=/var/run/ovn/{db}.ctl"),
        format!("/etc/ovn/{db}.db")
    ]
}

pub fn start_northd(ctx: &Ctx, central: &Pod, pid: u32) -> Result<()> {
    let log = ctx.log_file(&format!("{}-northd.log", central.dir_name()));
    run_daemon(
        &in_pod(
            pid,
            &argv![
                "ovn-northd",
                "--detach",
                "--monitor",
                "--no-chdir",
                "--pidfile",
                "--log-file=/var/log/ovn/ovn-northd.log",
                format!("--ovnnb-db={}", ctx.plan.remotes(NB_PORT)),
                format!("--ovnsb-db={}", ctx.plan.remotes(SB_PORT))
            ],
        ),
        &log,
    )
}

pub fn start_controller(ctx: &Ctx, ovs: &Pod, pid: u32) -> Result<()> {
    let log = ctx.log_file(&format!("{}-controller.log", ovs.dir_name()));
    run_daemon(
        &in_pod(
            pid,
            &argv![
                "ovn-controller",
                "--detach",
                // the monitor restarts it after a crash (and logs the signal)
                "--monitor",
                "--no-chdir",
                "--pidfile",
                "--log-file=/var/log/ovn/ovn-controller.log",
                "unix:/var/run/openvswitch/db.sock"
            ],
        ),
        &log,
    )
}
