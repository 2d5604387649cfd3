//! Which cells of the connectivity matrix get probed. A full mesh grows with the
//! square of the node count; past a few nodes the default is a sampled matrix where
//! every source probes a fixed number of peer pods and peer nodes, chosen round a ring
//! so that every node and every subnet is probed by someone, plus every target that is
//! not one per node (control-plane nodes and their pods, Services, policy-selected
//! pods, gateways, the external address, IPPorts). `--full-mesh` probes everything.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{MatrixStrategy, Source, Target, TargetKind};

/// Peer pods and peer nodes each source probes in a sampled matrix.
pub const DEFAULT_PEERS: usize = 8;

/// What the sampler knows about targets beyond the matrix model.
pub struct Facts<'a> {
    /// Logical switch of a pod target's address.
    pub subnet_of: &'a dyn Fn(&Target) -> Option<String>,
    /// Nodes that run the control plane (their node and pod targets are always probed).
    pub control_plane: &'a BTreeSet<String>,
}

/// Full mesh when asked or when sampling would probe everything anyway: few
/// probing nodes AND few nodes to probe. A cluster where only a few nodes can
/// probe (the rest have no pinger) but many are probed is sampled too, so
/// each far node is probed once rather than by every source.
pub fn strategy(full_mesh: bool, sources: &[Source], targets: &[Target]) -> MatrixStrategy {
    let ring = sources.iter().filter(|s| !s.policy_probe).count();
    let probed_nodes: BTreeSet<&str> = targets.iter().filter_map(|t| t.node.as_deref()).collect();
    let small = ring <= DEFAULT_PEERS + 1 && probed_nodes.len() <= DEFAULT_PEERS + 1;
    if full_mesh || small {
        MatrixStrategy::FullMesh
    } else {
        MatrixStrategy::Sampled {
            peers: DEFAULT_PEERS,
        }
    }
}

/// A cell worth probing at all: not a pod to itself, and policy probe rows only
/// towards policy-selected targets.
pub fn eligible(s: &Source, t: &Target) -> bool {
    let same_pod = t.kind == TargetKind::Pod && t.address == s.ip;
    let off_topic = s.policy_probe && t.policies.is_empty();
    !same_pod && !off_topic
}

/// The (source, target) index pairs to probe, in source order.
pub fn cells(
    sources: &[Source],
    targets: &[Target],
    strategy: MatrixStrategy,
    facts: &Facts,
) -> Vec<(usize, usize)> {
    let mut set: BTreeSet<(usize, usize)> = BTreeSet::new();
    let MatrixStrategy::Sampled { peers } = strategy else {
        for (i, s) in sources.iter().enumerate() {
            for (j, t) in targets.iter().enumerate() {
                if eligible(s, t) {
                    set.insert((i, j));
                }
            }
        }
        return set.into_iter().collect();
    };
    let groups = ring_groups(targets, facts);
    let ring: Vec<usize> = ring_sources(sources);
    let in_group: BTreeSet<usize> = groups.iter().flatten().copied().collect();
    for (i, s) in sources.iter().enumerate() {
        for (j, t) in targets.iter().enumerate() {
            let always = s.policy_probe || !in_group.contains(&j);
            if always && eligible(s, t) {
                set.insert((i, j));
            }
        }
    }
    for group in &groups {
        sample_group(sources, targets, &ring, group, peers, facts, &mut set);
    }
    set.into_iter().collect()
}

/// Sources that take part in the ring (one per node), ordered by node.
fn ring_sources(sources: &[Source]) -> Vec<usize> {
    let mut ring: Vec<usize> = (0..sources.len())
        .filter(|&i| !sources[i].policy_probe)
        .collect();
    ring.sort_by(|&a, &b| sources[a].node.cmp(&sources[b].node));
    ring
}

/// One-per-node targets, sampled: plain pod targets and node addresses, each ordered
/// by (subnet, node) so neighbours on the ring are spread over the whole cluster.
fn ring_groups(targets: &[Target], facts: &Facts) -> Vec<Vec<usize>> {
    let member = |t: &Target, kind: TargetKind| {
        t.kind == kind
            && t.policies.is_empty()
            && t.node
                .as_ref()
                .is_some_and(|n| !facts.control_plane.contains(n))
    };
    [TargetKind::Pod, TargetKind::Node]
        .into_iter()
        .map(|kind| {
            let mut g: Vec<usize> = (0..targets.len())
                .filter(|&j| member(&targets[j], kind))
                .collect();
            g.sort_by_key(|&j| ((facts.subnet_of)(&targets[j]), targets[j].node.clone()));
            g
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// Gives each ring source `peers` consecutive members of `group` starting after its own
/// position, one member of every subnet it would otherwise miss, and then hands any
/// member nobody probes to a source spread evenly round the ring.
fn sample_group(
    sources: &[Source],
    targets: &[Target],
    ring: &[usize],
    group: &[usize],
    peers: usize,
    facts: &Facts,
    set: &mut BTreeSet<(usize, usize)>,
) {
    if ring.is_empty() {
        return;
    }
    let by_subnet = subnets(targets, group, facts);
    for (r, &i) in ring.iter().enumerate() {
        let start = r * group.len() / ring.len();
        let mut picked = 0;
        let mut seen: BTreeSet<Option<String>> = BTreeSet::new();
        for step in 1..=group.len() {
            if picked == peers {
                break;
            }
            let j = group[(start + step) % group.len()];
            if eligible(&sources[i], &targets[j]) {
                set.insert((i, j));
                seen.insert((facts.subnet_of)(&targets[j]));
                picked += 1;
            }
        }
        for (subnet, members) in &by_subnet {
            if seen.contains(subnet) {
                continue;
            }
            let first = r % members.len();
            if let Some(&j) = (0..members.len())
                .map(|k| &members[(first + k) % members.len()])
                .find(|&&j| eligible(&sources[i], &targets[j]))
            {
                set.insert((i, j));
            }
        }
    }
    cover_the_rest(sources, targets, ring, group, set);
}

fn subnets(
    targets: &[Target],
    group: &[usize],
    facts: &Facts,
) -> BTreeMap<Option<String>, Vec<usize>> {
    let mut m: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for &j in group {
        m.entry((facts.subnet_of)(&targets[j])).or_default().push(j);
    }
    m
}

fn cover_the_rest(
    sources: &[Source],
    targets: &[Target],
    ring: &[usize],
    group: &[usize],
    set: &mut BTreeSet<(usize, usize)>,
) {
    let probed: BTreeSet<usize> = set.iter().map(|&(_, j)| j).collect();
    for (q, &j) in group.iter().enumerate() {
        if probed.contains(&j) {
            continue;
        }
        let first = q * ring.len() / group.len();
        if let Some(&i) = (0..ring.len())
            .map(|k| &ring[(first + k) % ring.len()])
            .find(|&&i| eligible(&sources[i], &targets[j]))
        {
            set.insert((i, j));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: usize) -> Source {
        Source {
            node: format!("node{n:02}"),
            pod: format!("kube-system/pinger-{n}"),
            ip: format!("10.16.0.{n}"),
            policies: vec![],
            policy_probe: false,
        }
    }

    fn target(kind: TargetKind, n: usize) -> Target {
        let (label, address) = match kind {
            TargetKind::Pod => (format!("kube-system/pinger-{n}"), format!("10.16.0.{n}")),
            _ => (format!("node{n:02}"), format!("172.18.0.{n}")),
        };
        Target {
            kind,
            label,
            address,
            node: Some(format!("node{n:02}")),
            policies: vec![],
        }
    }

    /// `nodes` nodes, a pinger each; pods on odd nodes in subnet "b", else "a";
    /// node00 is the control plane; one Service.
    fn cluster(nodes: usize) -> (Vec<Source>, Vec<Target>) {
        let sources: Vec<Source> = (0..nodes).map(source).collect();
        let mut targets: Vec<Target> = (0..nodes).map(|n| target(TargetKind::Pod, n)).collect();
        targets.extend((0..nodes).map(|n| target(TargetKind::Node, n)));
        targets.push(Target {
            kind: TargetKind::Service,
            label: "kube-system/kube-dns".into(),
            address: "10.96.0.10:53".into(),
            node: None,
            policies: vec![],
        });
        (sources, targets)
    }

    fn subnet_of(t: &Target) -> Option<String> {
        let last: usize = t.address.rsplit('.').next()?.parse().ok()?;
        (t.kind == TargetKind::Pod).then(|| if last % 2 == 1 { "b" } else { "a" }.into())
    }

    type Planned = (
        Vec<Source>,
        Vec<Target>,
        MatrixStrategy,
        Vec<(usize, usize)>,
    );

    fn plan(nodes: usize, full: bool) -> Planned {
        let (s, t) = cluster(nodes);
        let cp: BTreeSet<String> = ["node00".to_string()].into();
        let facts = Facts {
            subnet_of: &subnet_of,
            control_plane: &cp,
        };
        let st = strategy(full, &s, &t);
        let c = cells(&s, &t, st, &facts);
        (s, t, st, c)
    }

    #[test]
    fn small_clusters_get_the_full_mesh() {
        let (s, t, st, c) = plan(3, false);
        assert_eq!(st, MatrixStrategy::FullMesh);
        // every source to every target except its own pod
        assert_eq!(c.len(), s.len() * t.len() - s.len());
    }

    #[test]
    fn large_clusters_are_sampled_and_cover_everything() {
        let (s, t, st, c) = plan(200, false);
        assert_eq!(
            st,
            MatrixStrategy::Sampled {
                peers: DEFAULT_PEERS
            }
        );
        let per_source = |i: usize| c.iter().filter(|(a, _)| *a == i).count();
        // peers pods + peers nodes + control-plane pod and node + Service, and at most
        // one extra per subnet the ring missed
        for i in 0..s.len() {
            let n = per_source(i);
            assert!(
                (2 * DEFAULT_PEERS..=2 * DEFAULT_PEERS + 5).contains(&n),
                "{i}: {n}"
            );
        }
        for (j, tgt) in t.iter().enumerate() {
            assert!(c.iter().any(|(_, b)| *b == j), "{} never probed", tgt.label);
        }
        // the Service and the control plane are probed from every node
        let svc = t.len() - 1;
        assert_eq!(c.iter().filter(|(_, b)| *b == svc).count(), s.len());
        assert_eq!(
            c.iter().filter(|(_, b)| *b == 200).count(),
            s.len(),
            "node00's address"
        );
        // every source reaches both subnets
        for i in 0..s.len() {
            let subnets: BTreeSet<Option<String>> = c
                .iter()
                .filter(|(a, b)| *a == i && t[*b].kind == TargetKind::Pod)
                .map(|(_, b)| subnet_of(&t[*b]))
                .collect();
            assert_eq!(subnets.len(), 2, "source {i}: {subnets:?}");
        }
        assert!(c.len() < s.len() * t.len() / 10);
    }

    #[test]
    fn few_probing_nodes_towards_many_nodes_cover_each_once() {
        let (mut s, t, _, _) = plan(200, false);
        // only three nodes run a pinger (the rest, say, have no ovs-ovn yet)
        s.truncate(3);
        let st = strategy(false, &s, &t);
        assert_eq!(
            st,
            MatrixStrategy::Sampled {
                peers: DEFAULT_PEERS
            }
        );
        let facts_cp = BTreeSet::from(["node00".to_string()]);
        let subnet = |t: &Target| subnet_of(t);
        let facts = Facts {
            subnet_of: &subnet,
            control_plane: &facts_cp,
        };
        let c = cells(&s, &t, st, &facts);
        for (j, tgt) in t.iter().enumerate() {
            assert!(c.iter().any(|(_, b)| *b == j), "{} never probed", tgt.label);
        }
        // far fewer than every source to every target
        assert!(c.len() < s.len() * t.len() / 2, "{} cells", c.len());
    }

    #[test]
    fn full_mesh_is_one_flag_away() {
        let (s, t, st, c) = plan(40, true);
        assert_eq!(st, MatrixStrategy::FullMesh);
        assert_eq!(c.len(), s.len() * t.len() - s.len());
    }
}
