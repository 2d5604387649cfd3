//! The small remote reads several trace steps share: a node's OVS
//! interfaces and daemon versions, the SB rows for the logical flows the
//! traces named, and the raw output of each remote command for `--raw`.

use ko_ovn::verdict::nb::SbSnapshot;
use ko_ovn::verdict::ovs::{self as vovs, OvsInterface};
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

pub(super) async fn fetch_sb(
    cluster: &Cluster,
    sb_leader: &PodRef,
    prefixes: &[String],
    warnings: &mut Vec<String>,
) -> Option<SbSnapshot> {
    let mut prefixes = prefixes.to_vec();
    // A flow can vanish between the trace and this read (northd recomputes);
    // ovsdb then names the missing row and the rest is asked again.
    for _ in 0..4 {
        let argv = SbSnapshot::argv(&prefixes);
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
