//! `ko-sandbox`: a Kube-OVN cluster on one machine (real OVN/OVS in namespaces +
//! the `ko-apiserver` emulator). See sandbox/README.md and sandbox/CONTRACT.md.

#![allow(clippy::useless_vec)] // argv![] builds a Vec on purpose (it is extended)

mod api;
mod api_subnet;
mod background;
mod controller;
mod ctx;
mod down;
mod exec;
mod fault;
mod holder;
mod host_dirs;
mod image;
mod kube_proxy;
mod kubelet;
mod kubernetes_svc;
mod nb;
mod node;
mod objects;
mod pinger;
mod plan;
mod pods;
mod preflight;
mod rootfs;
mod state;
mod status;
mod underlay;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::state::Paths;

#[derive(Parser)]
#[command(
    name = "ko-sandbox",
    about = "A Kube-OVN cluster on one machine: real OVN/OVS in namespaces + a Kubernetes API emulator"
)]
struct Cli {
    /// Sandbox name (several can run side by side).
    #[arg(long, env = "KO_SANDBOX_NAME", default_value = "ko", global = true)]
    name: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring the sandbox up (or reuse it), with the kubelet that runs pods created
    /// through the API and the controller that turns NetworkPolicies, Services,
    /// SecurityGroups and Subnet ACLs into NB rows; prints KUBECONFIG=<path> last.
    Up {
        /// Number of nodes, 1 to 32. The three ovn-central RAFT members go one per node
        /// on the first three; with fewer nodes they go round-robin, the second member
        /// on a node on ports 6651-6654, the third on 6661-6664.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// IPv4 + IPv6 everywhere.
        #[arg(long)]
        dual_stack: bool,
        /// Port of the API emulator on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 0)]
        api_port: u16,
        /// OVN version: 23.03 (OVS 3.1, Debian 12), 25.03 (OVS 3.5, Debian 13, what
        /// Kube-OVN 1.15+ ships) or 26.03 (OVS 4.0, Debian unstable). The host's
        /// packages when they are that version, else a cached Debian image (built
        /// on first use). KO_SANDBOX_OVN also appends `-<major>` to sandbox names.
        #[arg(long, env = "KO_SANDBOX_OVN", default_value = image::DEFAULT_OVN)]
        ovn: String,
        /// No kube-proxy (like Kube-OVN's `make kind-init-without-kube-proxy`): no
        /// kube-proxy DaemonSet or pods, nothing on the nodes' :10256. Services stay
        /// OVN load balancers (Kube-OVN's LB); NodePorts get a port and no VIP, as
        /// Kube-OVN never makes NodePort VIPs. Run the bash kubectl-ko's diagnose
        /// with WITHOUT_KUBE_PROXY=true here.
        #[arg(long)]
        without_kube_proxy: bool,
    },
    /// Build the OVN image of a version if it is missing or broken (what `up` does on
    /// first use), and print its path and versions.
    Image {
        /// OVN version (see `up --ovn`).
        #[arg(long, env = "KO_SANDBOX_OVN", default_value = image::DEFAULT_OVN)]
        ovn: String,
        /// For a release no Debian suite ships (24.03): the DESTDIR of `make
        /// install` of OVS and OVN built from source, laid over the suite's image.
        #[arg(long)]
        from_dir: Option<std::path::PathBuf>,
    },
    /// Show nodes, pods, RAFT leaders, the kubelet and its pods, active faults and the
    /// documented traffic pairs.
    Status {
        /// Output format.
        #[arg(short = 'o', long = "output", value_parser = ["text", "json"], default_value = "text")]
        output: String,
    },
    /// Inject a fault, or `heal` them all.
    #[command(
        after_help = "Faults: stop-controller <node>, stop-nb <central-pod|1-3>, stop-sb <central-pod|1-3>, unbind-port <ns/pod>, delete-chassis <node>, drift-annotation <ns/pod>, heal"
    )]
    Fault {
        /// stop-controller | stop-nb | stop-sb | unbind-port | delete-chassis | drift-annotation | heal
        kind: String,
        /// Node (name or 1..N), central pod (name or 1..3) or ns/pod, depending on the kind.
        target: Option<String>,
    },
    /// Run the sandbox kubelet in the foreground (`up` starts it in the background):
    /// pods created through the API get a node, an address and a data plane.
    #[command(hide = true)]
    Kubelet {
        /// The sandbox state directory (a guard, and how `down` recognises the process).
        #[arg(long)]
        state_dir: std::path::PathBuf,
    },
    /// Run the sandbox controller in the foreground (`up` starts it in the background):
    /// NetworkPolicies, Services, SecurityGroups and Subnet ACLs reach the NB.
    #[command(hide = true)]
    Controller {
        /// The sandbox state directory (a guard, and how `down` recognises the process).
        #[arg(long)]
        state_dir: std::path::PathBuf,
    },
    /// Print the sandbox's name as used everywhere (after KO_SANDBOX_PREFIX and the
    /// KO_SANDBOX_OVN suffix): its state directory and netns derive from it.
    #[command(hide = true)]
    Name,
    /// Serve kube-proxy's :10256/healthz in every node netns and forward the
    /// control-plane node's :6443 to the emulator (`up` starts it in the background).
    #[command(hide = true)]
    NodeEndpoints {
        /// The sandbox state directory (how `down` recognises the process).
        #[arg(long)]
        state_dir: std::path::PathBuf,
    },
    /// Remove every process, netns, link, mount and file of the sandbox.
    Down {
        /// Remove every sandbox, whatever its name.
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ko-sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a report to stdout; a reader that went away (`status | head`) is not an
/// error, so nothing is printed about it.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    // Developers sharing one machine give each worker a prefix so that the same test
    // names (`trace`, `core`...) make different sandboxes (netns names derive from it).
    if let Some(prefix) = std::env::var("KO_SANDBOX_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        && !cli.name.starts_with(&prefix)
    {
        cli.name = format!("{prefix}{}", cli.name);
    }
    // A test suite run per OVN version (KO_SANDBOX_OVN) must not reuse the sandboxes
    // of another version's run: the version goes into every name (`trace-25`).
    if let Some(ovn) = std::env::var("KO_SANDBOX_OVN")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let suffix = format!("-{}", image::release(&ovn)?.name_tag());
        if !cli.name.ends_with(&suffix) {
            cli.name = format!("{}{suffix}", cli.name);
        }
    }
    let paths = Paths::new(&cli.name);
    let r = dispatch(cli, &paths);
    // A refused `up`/`fault` must not leave its lock file behind when nothing exists.
    if r.is_err() && !paths.dir().exists() && state::validate_name(&paths.name).is_ok() {
        let _ = std::fs::remove_file(paths.lock_file());
        let _ = std::fs::remove_dir(&paths.root);
    }
    r
}

fn dispatch(cli: Cli, paths: &Paths) -> anyhow::Result<ExitCode> {
    let paths = paths.clone();
    match cli.cmd {
        Cmd::Up {
            nodes,
            dual_stack,
            api_port,
            ovn,
            without_kube_proxy,
        } => {
            let kc = up::up(
                &paths,
                &up::UpOpts {
                    nodes,
                    dual_stack,
                    api_port,
                    ovn,
                    without_kube_proxy,
                },
            )?;
            println!("KUBECONFIG={}", kc.display());
        }
        Cmd::Image { ovn, from_dir } => {
            let r = image::release(&ovn)?;
            if !preflight::is_root() {
                anyhow::bail!("building an image needs root (debootstrap): run it with sudo");
            }
            if let Some(dir) = from_dir {
                let (dir, info) = image::install_from(r, &dir)?;
                println!(
                    "{} OVN {} OVS {} (built from source over Debian {})",
                    dir.display(),
                    info.ovn_version,
                    info.ovs_version,
                    info.suite
                );
            } else if image::host_provides(r) {
                println!("OVN {} runs on the host's packages: no image needed", r.ovn);
            } else {
                let (dir, info) = image::ensure(r)?;
                println!(
                    "{} OVN {} OVS {} (Debian {}, built in {:.0}s)",
                    dir.display(),
                    info.ovn_version,
                    info.ovs_version,
                    info.suite,
                    info.build_secs
                );
            }
        }
        Cmd::Status { output } => {
            state::validate_name(&cli.name)?;
            let v = status::collect(&paths)?;
            if output == "json" {
                emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
            } else {
                emit(&status::render_text(&v))?;
            }
            if v["healthy"] != true {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Fault { kind, target } => {
            state::validate_name(&cli.name)?;
            if !preflight::is_root() {
                anyhow::bail!(
                    "faults need root (they enter the sandbox namespaces): run it with sudo"
                );
            }
            let _lock = state::lock(&paths)?;
            println!("{}", fault::apply(&paths, &kind, target.as_deref())?);
        }
        Cmd::Name => emit(&format!("{}\n", cli.name))?,
        Cmd::Kubelet { state_dir } => {
            state::validate_name(&cli.name)?;
            kubelet::run(&paths, &state_dir)?;
        }
        Cmd::Controller { state_dir } => {
            state::validate_name(&cli.name)?;
            controller::run(&paths, &state_dir)?;
        }
        Cmd::NodeEndpoints { state_dir: _ } => {
            state::validate_name(&cli.name)?;
            kube_proxy::run(&paths)?;
        }
        Cmd::Down { all } => {
            if !preflight::is_root() {
                anyhow::bail!(
                    "the sandbox needs root to remove namespaces and processes: run it with sudo"
                );
            }
            let names = if all {
                down::all_names(&paths.root)
            } else {
                vec![cli.name.clone()]
            };
            for n in names {
                state::validate_name(&n)?;
                let p = Paths::new(&n);
                let lock = state::lock(&p)?;
                let removed = down::down(&p)?;
                drop(lock);
                let _ = std::fs::remove_file(p.lock_file());
                if removed.is_empty() {
                    println!("sandbox `{n}`: nothing to remove");
                } else {
                    println!("sandbox `{n}` removed: {}", removed.join(", "));
                }
            }
            let _ = std::fs::remove_dir(&paths.root);
        }
    }
    Ok(ExitCode::SUCCESS)
}
