//! The small remote reads several trace steps share: a node's OVS
//! interfaces and daemon versions, the SB rows for the logical flows the
//! traces named, and the raw output of each remote command for `--raw`.

use ko_ovn::ovsdb_rows::DatapathBinding;
use ko_ovn::verdict::nb::SbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsInterface};
use ko_ovn::verdict::sb_query::{self, FlowRef, SbQuery};
use ko_ovn::versions::{self, NodeVersions};
use serde::Serialize;

use crate::cluster::{self, Cluster, PodRef, container};

/// One remote command and what it printed (stdout then stderr).
#[derive(Debug, Clone, Serialize)]
pub struct RawRun {
    pub pod: String,
    pub argv: Vec<String>,
    pub output: String,
}

pub(super) async fn interfaces(
    cluster: &Cluster,
    pod: &PodRef,
) -> cluster::Result<Vec<OvsInterface>> {
    let argv = vovs::interfaces_argv();
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let text = cluster.exec_ok(pod, &c, &argv).await?;
    vovs::parse_interfaces(&text).map_err(|e| cluster::Error::Api {
        what: format!("reading `{}` from {pod}", argv.join(" ")),
        detail: e.to_string(),
        hint: format!(
            "run `kubectl ko vsctl {} list interface`",
            pod.node.as_deref().unwrap_or("<node>")
        ),
    })
}

/// The version a daemon's `--version` prints, or `None` when it cannot be
/// run there (the trace does not depend on it).
pub(super) async fn tool_version(
    cluster: &Cluster,
    pod: &PodRef,
    container: &str,
    tool: &str,
) -> Option<String> {
    let out = cluster
        .exec_capture(pod, container, &versions::version_argv(tool))
        .await
        .ok()?;
    versions::parse_version(&out.stdout_str())
}

/// ovn-controller's and ovs-vswitchd's versions on a node's ovs-ovn pod.
pub(super) async fn node_versions(cluster: &Cluster, pod: &PodRef, node: &str) -> NodeVersions {
    let c = pod.container_or_default(container::OPENVSWITCH).to_string();
    let (ovn_controller, ovs_vswitchd) = tokio::join!(
        tool_version(cluster, pod, &c, "ovn-controller"),
        tool_version(cluster, pod, &c, "ovs-vswitchd"),
    );
    NodeVersions {
        node: node.to_string(),
        ovn_controller,
        ovs_vswitchd,
    }
}

/// Every datapath's UUID, tunnel key and name: what places the flows a trace
/// names for a narrow SB read. Empty when it cannot be read (every flow then
/// comes from the full read).
pub(super) async fn datapaths(cluster: &Cluster, sb_leader: &PodRef) -> Vec<DatapathBinding> {
    let argv = sb_query::datapaths_argv();
    match cluster
        .exec_capture(sb_leader, container::OVN_CENTRAL, &argv)
        .await
    {
        Ok(out) if out.success() => {
            sb_query::parse_datapaths(&out.stdout_str()).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Where SB rows are read: the leader's pod, and the datapaths that place
/// the flows a trace names.
#[derive(Clone, Copy)]
pub(super) struct SbAt<'a> {
    pub leader: &'a PodRef,
    pub datapaths: &'a [DatapathBinding],
}

/// The SB rows a trace needs: the bindings of `ports`, the logical flows of
/// `flows` and (with `globals`) the chassis and sync counters, asked of
/// ovsdb-server with conditions so a large SB costs no more than a small one;
/// flows it could not place are then read by prefix (the whole table), and
/// when the narrow read itself fails (no ovsdb-client, refused) everything is.
pub(super) async fn fetch_sb(
    cluster: &Cluster,
    at: SbAt<'_>,
    flows: &[FlowRef],
    ports: &[String],
    globals: bool,
    warnings: &mut Vec<String>,
) -> Option<SbSnapshot> {
    let sb_leader = at.leader;
    let query = SbQuery {
        flows,
        ports,
        datapaths: at.datapaths,
        globals,
    };
    let narrow = match cluster
        .exec_capture(sb_leader, container::OVN_CENTRAL, &query.argv())
        .await
    {
        Ok(out) if out.success() => query.parse(&out.stdout_str()).ok(),
        _ => None,
    };
    let prefixes = |fs: &[FlowRef]| fs.iter().map(|f| f.prefix.clone()).collect::<Vec<_>>();
    let Some(mut sb) = narrow else {
        return read_by_prefix(
            cluster,
            sb_leader,
            SbSnapshot::argv,
            &prefixes(flows),
            warnings,
        )
        .await;
    };
    let missing = sb_query::missing_flows(Some(&sb), flows);
    if !missing.is_empty()
        && let Some(extra) = read_by_prefix(
            cluster,
            sb_leader,
            SbSnapshot::lflows_argv,
            &prefixes(&missing),
            warnings,
        )
        .await
    {
        sb_query::merge(&mut sb, extra);
    }
    Some(sb)
}

/// Adds to `sb` what it lacks of `flows` and `ports` (a later hop's flows,
/// the ports ovn-trace delivered to); nothing when the first read failed
/// (it said so).
pub(super) async fn complete_sb(
    cluster: &Cluster,
    at: SbAt<'_>,
    sb: &mut Option<SbSnapshot>,
    flows: &[FlowRef],
    ports: &[String],
    warnings: &mut Vec<String>,
) {
    let Some(have) = sb.as_mut() else {
        return;
    };
    let missing = sb_query::missing_flows(Some(have), flows);
    let ports: Vec<String> = ports
        .iter()
        .filter(|p| !have.bindings.contains_key(*p))
        .cloned()
        .collect();
    if missing.is_empty() && ports.is_empty() {
        return;
    }
    if let Some(extra) = fetch_sb(cluster, at, &missing, &ports, false, warnings).await {
        sb_query::merge(have, extra);
    }
}

/// The full read (`ovn-sbctl`, which loads whole tables): `argv_of` the
/// prefixes, asked again without a flow that vanished meanwhile.
async fn read_by_prefix(
    cluster: &Cluster,
    sb_leader: &PodRef,
    argv_of: fn(&[String]) -> Vec<String>,
    prefixes: &[String],
    warnings: &mut Vec<String>,
) -> Option<SbSnapshot> {
    let mut prefixes = prefixes.to_vec();
    // A flow can vanish between the trace and this read (northd recomputes);
    // ovsdb then names the missing row and the rest is asked again.
    for _ in 0..4 {
        let argv = argv_of(&prefixes);
        if argv.len() <= 2 {
            // nothing to list
            return Some(SbSnapshot::default());
        }
        let out = match cluster
            .exec_capture(sb_leader, container::OVN_CENTRAL, &argv)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                warnings.push(format!("could not read SB logical flows and chassis: {e}"));
                return None;
            }
        };
        if out.success() {
            return match SbSnapshot::parse(&out.stdout_str()) {
                Ok(s) => Some(s),
                Err(e) => {
                    warnings.push(format!("could not read SB rows: {e}"));
                    None
                }
            };
        }
        let err = out.stderr_str();
        let missing = err
            .split("no row \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        match missing {
            Some(m) if prefixes.contains(&m) => prefixes.retain(|p| p != &m),
            _ => {
                warnings.push(format!(
                    "could not read SB logical flows and chassis ({}); stages are shown without their NB objects",
                    err.trim()
                ));
                return None;
            }
        }
    }
    warnings.push(
        "could not read SB logical flows: too many of them disappeared while tracing; retry".into(),
    );
    None
}
