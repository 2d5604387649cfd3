//! `kubectl ko perf [image]`: network performance between test pods (pod,
//! host and service networks, multicast) and, only when asked, OVN leader
//! recovery time. Everything it creates is announced first and removed on
//! success, on error and on Ctrl-C.

mod leader;
pub mod model;
mod multicast;
pub mod objects;
pub mod parse;
mod servers;
mod unicast;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::cli::{PerfArgs, PerfTest};
use crate::cluster::{Cluster, PodNetwork, PodRef, container};
use crate::cmd::{Ctx, Outcome};
use crate::error::{EXIT_PROBLEM, Error, Result};
use model::{McastNetwork, Network, PerfReport};
use multicast::Membership;
use objects::PodPlan;
use servers::Server;
use unicast::Knobs;

const SERVER: &str = "test-server";
const HOST_SERVER: &str = "test-host-server";
const CLIENT: &str = "test-client";
const HOST_CLIENT: &str = "test-host-client";
/// OVN load balancer for the service test (qperf uses random data ports, so
/// the VIP forwards every port to the server, as upstream does).
const LB: &str = "test-server";

/// Everything this run created, for cleanup.
#[derive(Default)]
struct Created {
    pods: Vec<String>,
    service: bool,
    lb: Option<PodRef>,
    memberships: Vec<Membership>,
    servers: Vec<Server>,
}

fn node_name(n: &Node) -> String {
    n.metadata.name.clone().unwrap_or_default()
}

/// The node's `kubernetes.io/hostname` label (what upstream's nodeSelector uses).
fn hostname(n: &Node) -> String {
    n.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/hostname").cloned())
        .unwrap_or_else(|| node_name(n))
}

struct Plan {
    pods: Vec<PodPlan>,
    server_node: String,
    client_node: String,
    service: bool,
}

fn wants(args: &PerfArgs, t: PerfTest) -> bool {
    args.only.contains(&t)
}

async fn plan(cluster: &Cluster, args: &PerfArgs) -> Result<Plan> {
    let nodes = cluster.list_nodes().await?;
    let find = |want: &str| -> Result<&Node> {
        nodes.iter().find(|n| node_name(n) == want).ok_or_else(|| {
            Error::Usage(format!(
                "node {want} not found (nodes: {})",
                nodes.iter().map(node_name).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let first = nodes.first().ok_or_else(|| Error::Remote {
        what: "choosing nodes for the perf pods".into(),
        detail: "the cluster has no nodes".into(),
        hint: "`kubectl get nodes`".into(),
    })?;
    // Upstream: server on the first node, client on the second (same node if only one).
    let server = match &args.server_node {
        Some(n) => find(n)?,
        None => first,
    };
    let client = match &args.client_node {
        Some(n) => find(n)?,
        None => nodes
            .iter()
            .find(|n| node_name(n) != node_name(server))
            .unwrap_or(server),
    };
    let pod_net = wants(args, PerfTest::Pod)
        || wants(args, PerfTest::Service)
        || wants(args, PerfTest::Multicast);
    let host_net = wants(args, PerfTest::Host) || wants(args, PerfTest::Multicast);
    let mut pods = Vec::new();
    let mk = |name, node: &Node, host_network, server| PodPlan {
        name,
        node: node_name(node),
        hostname: hostname(node),
        host_network,
        server,
    };
    if pod_net {
        pods.push(mk(SERVER, server, false, true));
        pods.push(mk(CLIENT, client, false, false));
    }
    if host_net {
        pods.push(mk(HOST_SERVER, server, true, true));
        pods.push(mk(HOST_CLIENT, client, true, false));
    }
    Ok(Plan {
        pods,
        server_node: node_name(server),
        client_node: node_name(client),
        service: wants(args, PerfTest::Service),
    })
}

fn announce(ns: &str, plan: &Plan, args: &PerfArgs) -> String {
    let mut s = format!(
        "perf: creating in namespace {ns} (label app=PerfTest, image {}):\n",
        args.image
    );
    for p in &plan.pods {
        s.push_str(&format!(
            "  pod {}{} on node {}\n",
            p.name,
            if p.host_network { " (hostNetwork)" } else { "" },
            p.node
        ));
    }
    if plan.service {
        s.push_str(&format!(
            "  service {} and OVN load balancer {LB} (through the NB leader)\n",
            objects::SERVICE
        ));
    }
    if wants(args, PerfTest::Multicast) {
        s.push_str("  multicast MAC 01:00:5e:00:00:64 on the test pods' devices (ip maddr)\n");
    }
    s.push_str("all removed when the test ends, fails or is interrupted (Ctrl-C)");
    s
}

/// NB rows named `test-server` (a leftover of an earlier run).
async fn lb_exists(cluster: &Cluster, nb: &PodRef) -> Result<bool> {
    let out = cluster
        .exec_ok(
            nb,
            container::OVN_CENTRAL,
            &[
                "ovn-nbctl",
                "--bare",
                "--columns=_uuid",
                "find",
                "load_balancer",
                &format!("name={LB}"),
            ],
        )
        .await?;
    Ok(!out.trim().is_empty())
}

async fn delete_lb(cluster: &Cluster, nb: &PodRef) -> Option<String> {
    match cluster
        .exec_capture(
            nb,
            container::OVN_CENTRAL,
            &["ovn-nbctl", "--if-exists", "lb-del", LB],
        )
        .await
    {
        Ok(o) if o.success() => None,
        Ok(o) => Some(format!("OVN load balancer {LB}: {}", o.stderr_str().trim())),
        Err(e) => Some(format!("OVN load balancer {LB}: {e}")),
    }
}

/// Refuse to start over another run's objects unless `--force`, which removes them.
async fn preflight(cluster: &Cluster, args: &PerfArgs) -> Result<()> {
    let ns = cluster.namespace();
    let (pods, svcs) = objects::existing(cluster).await?;
    let nb = if wants(args, PerfTest::Service) {
        Some(cluster.nb_leader().await?)
    } else {
        None
    };
    let lb = match &nb {
        Some(nb) => lb_exists(cluster, nb).await?,
        None => false,
    };
    if pods.is_empty() && svcs.is_empty() && !lb {
        return Ok(());
    }
    let mut found: Vec<String> = pods.iter().map(|p| format!("pod {p}")).collect();
    found.extend(svcs.iter().map(|s| format!("service {s}")));
    if lb {
        found.push(format!("OVN load balancer {LB}"));
    }
    if !args.force {
        return Err(Error::NotConfirmed(format!(
            "found objects of another perf run in namespace {ns}: {}.\nIs another `kubectl ko perf` running? If not, re-run with --force to delete them first.",
            found.join(", ")
        )));
    }
    eprintln!("perf: --force: deleting {}", found.join(", "));
    let mut left = objects::delete_pods(cluster, &pods).await;
    for s in &svcs {
        left.extend(objects::delete_service(cluster, s).await);
    }
    if let (true, Some(nb)) = (lb, &nb) {
        left.extend(delete_lb(cluster, nb).await);
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::Remote {
            what: "removing the objects of an earlier perf run".into(),
            detail: left.join("; "),
            hint: format!(
                "`kubectl -n {ns} delete pods,services -l app=PerfTest` and `kubectl ko nbctl --if-exists lb-del {LB}`"
            ),
        })
    }
}

fn find<'a>(pods: &'a [Pod], name: &str) -> Option<&'a Pod> {
    pods.iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
}

async fn service_test(
    cluster: &Cluster,
    made: &mut Created,
    svc_ip: Option<String>,
    client: &PodRef,
    client_pod: &Pod,
    server: &PodRef,
    knobs: &Knobs,
) -> Result<model::UnicastTest> {
    let vip = svc_ip.ok_or_else(|| Error::Remote {
        what: format!("reading the ClusterIP of service {}", objects::SERVICE),
        detail: "the API server assigned none".into(),
        hint: format!(
            "`kubectl -n {} get service {} -o yaml`; or run without the service test: --only pod,host,multicast",
            cluster.namespace(),
            objects::SERVICE
        ),
    })?;
    let backend = server.ip.clone().ok_or_else(|| Error::Remote {
        what: format!("reading the IP of {server}"),
        detail: "status.podIP is empty".into(),
        hint: format!(
            "`kubectl -n {} get pod {} -o wide`",
            server.namespace, server.name
        ),
    })?;
    let switch = PodNetwork::of_pod(client_pod, "ovn")
        .logical_switch
        .unwrap_or_else(|| "ovn-default".into());
    let nb = cluster.nb_leader().await?;
    made.lb = Some(nb.clone());
    for argv in [
        vec!["ovn-nbctl", "lb-add", LB, &vip, &backend],
        vec!["ovn-nbctl", "ls-lb-add", &switch, LB],
    ] {
        cluster.exec_ok(&nb, container::OVN_CENTRAL, &argv).await?;
    }
    // The VIP works once the client's ovn-controller installed it: wait for every
    // chassis (best effort: with a chassis down this gives up after 10 s and the
    // measurement says what it saw).
    let wait = ["ovn-nbctl", "--wait=hv", "--timeout=10", "sync"];
    let _ = cluster
        .exec_capture(&nb, container::OVN_CENTRAL, &wait)
        .await;
    Ok(unicast::measure(cluster, Network::Service, client, server, &vip, knobs).await)
}

async fn measure(
    cluster: &Cluster,
    args: &PerfArgs,
    plan: &Plan,
    made: &mut Created,
) -> Result<PerfReport> {
    for p in &plan.pods {
        objects::create_pod(cluster, p, &args.image).await?;
        made.pods.push(p.name.to_string());
    }
    let mut svc_ip = None;
    if plan.service {
        let svc = objects::create_service(cluster).await?;
        made.service = true;
        svc_ip = objects::cluster_ip(&svc);
    }
    let names: Vec<&str> = plan.pods.iter().map(|p| p.name).collect();
    eprintln!("perf: waiting for {} to be Ready", names.join(", "));
    let pods = objects::wait_ready(cluster, &names, args.ready_timeout).await?;
    for p in &pods {
        if p.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .is_none_or(str::is_empty)
        {
            let name = p.metadata.name.clone().unwrap_or_default();
            return Err(Error::Remote {
                what: format!("reading the IP of pod {}/{name}", cluster.namespace()),
                detail: "it is Ready but status.podIP is empty".into(),
                hint: format!(
                    "`kubectl -n {} get pod {name} -o wide`",
                    cluster.namespace()
                ),
            });
        }
    }
    let refs = |name| find(&pods, name).map(objects::pod_ref);
    let knobs = Knobs {
        duration: args.duration,
        parallel: args.parallel,
        sizes: args.sizes.0.clone(),
    };
    let mut report = PerfReport {
        namespace: cluster.namespace().to_string(),
        image: args.image.clone(),
        duration_secs: args.duration,
        server_node: plan.server_node.clone(),
        client_node: plan.client_node.clone(),
        unicast: Vec::new(),
        multicast: Vec::new(),
        leader_recover: Vec::new(),
        left_behind: Vec::new(),
    };
    let unicast_servers =
        |pod: &PodRef| [vec!["qperf"], vec!["iperf3", "-s"]].map(|a| (pod.clone(), a));
    let pod_pair = refs(SERVER).zip(refs(CLIENT));
    let host_pair = refs(HOST_SERVER).zip(refs(HOST_CLIENT));
    let mut started = Vec::new();
    if let Some((s, _)) = &pod_pair
        && (wants(args, PerfTest::Pod) || wants(args, PerfTest::Service))
    {
        started.extend(unicast_servers(s));
    }
    if let Some((s, _)) = &host_pair
        && wants(args, PerfTest::Host)
    {
        started.extend(unicast_servers(s));
    }
    for (pod, argv) in started {
        eprintln!("perf: starting `{}` in {pod}", argv.join(" "));
        made.servers
            .push(Server::start(cluster, &pod, &argv).await?);
    }
    if let Some((s, c)) = &pod_pair
        && wants(args, PerfTest::Pod)
    {
        let ip = s.ip.clone().unwrap_or_default();
        report
            .unicast
            .push(unicast::measure(cluster, Network::Pod, c, s, &ip, &knobs).await);
    }
    if let Some((s, c)) = &host_pair
        && wants(args, PerfTest::Host)
    {
        let ip = s.ip.clone().unwrap_or_default();
        report
            .unicast
            .push(unicast::measure(cluster, Network::Host, c, s, &ip, &knobs).await);
    }
    if let Some((s, c)) = &pod_pair
        && plan.service
    {
        let client_pod = find(&pods, CLIENT).cloned().unwrap_or_default();
        let t = service_test(cluster, made, svc_ip, c, &client_pod, s, &knobs).await?;
        report.unicast.push(t);
    }
    // Dropping a server closes its exec stream, which ends it.
    made.servers.clear();
    if wants(args, PerfTest::Multicast) {
        for (net, pair) in [
            (McastNetwork::Pod, &pod_pair),
            (McastNetwork::Host, &host_pair),
        ] {
            if let Some((s, c)) = pair {
                report.multicast.push(
                    multicast::measure(cluster, net, c, s, &knobs, &mut made.memberships).await?,
                );
            }
        }
    }
    if args.leader_recover {
        report.leader_recover = leader::measure(cluster).await;
    }
    Ok(report)
}

/// Remove everything in `made`; returns what could not be removed.
async fn cleanup(cluster: &Cluster, made: &mut Created) -> Vec<String> {
    made.servers.clear();
    let mut left = Vec::new();
    if let Some(nb) = made.lb.take() {
        // The leader may have moved since the LB was added.
        let nb = cluster.nb_leader().await.unwrap_or(nb);
        left.extend(delete_lb(cluster, &nb).await);
    }
    for m in made.memberships.drain(..) {
        left.extend(m.remove(cluster).await);
    }
    if made.service {
        left.extend(objects::delete_service(cluster, objects::SERVICE).await);
        made.service = false;
    }
    left.extend(objects::delete_pods(cluster, &made.pods).await);
    made.pods.clear();
    left
}

fn explain_leader_recover(ns: &str) -> String {
    format!(
        "--leader-recover deletes the ovn-central pods that lead the OVN NB database, the SB database and ovn-northd in namespace {ns}, one after the other, and times how long until Deployment ovn-central is fully available and a new leader is elected. While it runs, OVN control-plane changes (new pods, policies) are delayed; the data plane keeps forwarding.\nRe-run with --leader-recover --yes to do it."
    )
}

pub async fn run(ctx: &Ctx, args: &PerfArgs) -> Result<Outcome> {
    if args.leader_recover && !args.yes {
        return Err(Error::NotConfirmed(explain_leader_recover(
            &ctx.global.kube_ovn_namespace,
        )));
    }
    let cluster = ctx.cluster().await?;
    let plan = plan(cluster, args).await?;
    preflight(cluster, args).await?;
    eprintln!("{}", announce(cluster.namespace(), &plan, args));
    let mut made = Created::default();
    let result = tokio::select! {
        r = measure(cluster, args, &plan, &mut made) => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    };
    if matches!(result, Err(Error::Interrupted)) {
        eprintln!("interrupted");
    }
    eprintln!("perf: removing the test objects");
    let left = tokio::select! {
        l = cleanup(cluster, &mut made) => l,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "interrupted again: cleanup stopped; remove what is left with `kubectl -n {} delete pods,services -l app=PerfTest` and `kubectl ko nbctl --if-exists lb-del {LB}`",
                cluster.namespace()
            );
            return Err(Error::Interrupted);
        }
    };
    for l in &left {
        eprintln!("warning: could not remove {l}");
    }
    let mut report = result?;
    report.left_behind = left;
    let failed = report.unicast.iter().any(|t| t.has_errors())
        || report.leader_recover.iter().any(|l| l.error.is_some())
        || !report.left_behind.is_empty();
    Ok(Outcome::report(
        report,
        ctx.output(args.output.output),
        if failed { EXIT_PROBLEM } else { 0 },
    ))
}
