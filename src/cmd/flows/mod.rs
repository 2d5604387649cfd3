//! `kubectl ko flows`: which OpenFlow rules a pod's real packets hit, which
//! drops are growing and whose they are (seed 000's manual workflow:
//! find the pod's ofport and datapath, `dump-flows br-int` under `watch`,
//! `grep -v n_packets=0`, guess the ACL).
//!
//! Round trips: resolve (see [`resolve`]), then per interval one streaming
//! `dump-flows` per node, concurrently; the logical flows of cookies that
//! move for the first time are read from the SB leader in one exec.

mod expect;
mod poll;
pub mod report;
mod resolve;
mod view;

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use ko_ovn::flow_owner::{self, Meaning};
use ko_ovn::flowwatch::{RoundDiff, Tracker};
use ko_ovn::ovsdb_rows::{self, LogicalFlow};

use super::trace::service;
use super::{Ctx, Outcome};
use crate::cli::FlowsArgs;
use crate::cluster::{Cluster, container};
use crate::error::{EXIT_PROBLEM, Error, Result};
use crate::render::OutputFormat;
pub use poll::{DUMP_ARGV, feed_chunks};
use report::{Cost, FlowsReport, Interval, RowContext, Totals};
use resolve::Setup;
pub use resolve::Watched;
use view::{LiveView, live_frame};

/// Default length of a one-shot run when stdout is not a terminal.
const DEFAULT_FOR: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Ctx, args: &FlowsArgs) -> Result<Outcome> {
    let format = ctx.output(args.output.output);
    if args.interval < Duration::from_millis(100) {
        return Err(Error::Usage(
            "--interval must be at least 100ms (each interval is one dump-flows per node)".into(),
        ));
    }
    expect::check(&args.expect)?;
    let target = resolve::pod_ref(&args.pod, args.namespace.as_deref())?;
    let live = args.for_.is_none()
        && format == OutputFormat::Text
        && (args.watch || std::io::stdout().is_terminal());
    let until = match (args.for_, live || args.watch) {
        (Some(d), _) => Some(d),
        (None, true) => None,
        (None, false) => Some(DEFAULT_FOR),
    };
    let cluster = ctx.cluster().await?;
    let setup = tokio::select! {
        s = resolve::setup(cluster, target, &args.peer, args.namespace.as_deref()) => s?,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted),
    };
    let expectations = expect::select(cluster, &setup, &args.expect).await?;
    let mut w = Watch::new(cluster, setup, args, live, ctx);
    w.expectations = expectations;
    let report = w.run(until).await?;
    let exit = if until.is_some() && report.drop_grew() {
        EXIT_PROBLEM
    } else {
        0
    };
    Ok(Outcome::report(report, format, exit))
}

/// The polling state of one run.
struct Watch<'a> {
    cluster: &'a Cluster,
    setup: Setup,
    args: &'a FlowsArgs,
    live: Option<LiveView>,
    trackers: Vec<Tracker>,
    meanings: HashMap<u64, Meaning>,
    totals: Totals,
    intervals: Vec<Interval>,
    cost: Cost,
    expectations: expect::Expectations,
    /// (node, generic ACL drop rule) → the eval rules that decided it in
    /// some interval; bounded by the number of distinct rules.
    acl_ties: HashMap<(String, u64), BTreeSet<u64>>,
    timeout: Duration,
}

impl<'a> Watch<'a> {
    fn new(cluster: &'a Cluster, setup: Setup, args: &'a FlowsArgs, live: bool, ctx: &Ctx) -> Self {
        let trackers = setup
            .nodes
            .iter()
            .map(|n| Tracker::new(n.scope.clone()))
            .collect();
        Watch {
            cluster,
            live: live.then(|| LiveView::new(ctx.style)),
            trackers,
            setup,
            args,
            meanings: HashMap::new(),
            totals: Totals::default(),
            intervals: Vec::new(),
            cost: Cost::default(),
            expectations: expect::Expectations::default(),
            acl_ties: HashMap::new(),
            timeout: ctx.global.timeout,
        }
    }

    /// Polls until `until` has passed (one-shot) or Ctrl-C (live / --watch).
    async fn run(mut self, until: Option<Duration>) -> Result<FlowsReport> {
        let interval = self.args.interval;
        // the first round is the baseline: its diffs are empty
        let mut last = self.poll_round().await?.0;
        let first = last;
        let mut next = tokio::time::Instant::now() + interval;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let rounds =
            until.map(|d| ((d.as_secs_f64() / interval.as_secs_f64()).ceil() as u64).max(1));
        let mut done = 0u64;
        loop {
            if rounds.is_some_and(|n| done >= n) {
                break;
            }
            done += 1;
            let round = tokio::select! {
                _ = &mut ctrl_c => break,
                r = async {
                    tokio::time::sleep_until(next).await;
                    self.poll_round().await
                } => r?,
            };
            next += interval;
            let (now, diffs) = round;
            let elapsed = now.duration_since(last).as_secs_f64();
            let at = now.duration_since(first).as_secs_f64();
            self.close_interval(diffs, elapsed, at).await;
            last = now;
            if let Some(v) = &mut self.live
                && let Some(i) = self.intervals.last()
            {
                let frame = live_frame(v, &self.setup.target, i, self.args);
                v.show(&frame);
            }
        }
        let duration = last.duration_since(first).as_secs_f64();
        if let Some(v) = &mut self.live {
            v.end();
        }
        Ok(self.report(duration, until.is_some()))
    }

    /// One dump per node, concurrently; the earliest start time stands for the round.
    async fn poll_round(&mut self) -> Result<(Instant, Vec<RoundDiff>)> {
        let cluster = self.cluster;
        let timeout = self.timeout;
        let nodes = &self.setup.nodes;
        let polled = futures::future::try_join_all(nodes.iter().zip(self.trackers.iter_mut()).map(
            |(n, t)| async move {
                let p = poll::dump(cluster, n, t, timeout).await?;
                Ok::<_, Error>((p, t))
            },
        ))
        .await?;
        let mut at = Instant::now();
        let mut diffs = Vec::new();
        self.cost.kept_rules = 0;
        for (p, t) in polled {
            at = at.min(p.at);
            self.cost.dumps += 1;
            self.cost.lines += p.round.lines as u64;
            self.cost.bytes += p.round.bytes as u64;
            self.cost.max_dump_ms = self.cost.max_dump_ms.max(p.took.as_millis() as u64);
            self.cost.kept_rules += p.round.samples.len();
            diffs.push(t.finish_round(p.round));
        }
        Ok((at, diffs))
    }

    async fn close_interval(&mut self, diffs: Vec<RoundDiff>, elapsed: f64, at: f64) {
        self.resolve_cookies(&diffs).await;
        let watched: Vec<String> = std::iter::once(&self.setup.target)
            .chain(&self.setup.peers)
            .map(|w| w.logical_port.clone())
            .collect();
        let mut rows = Vec::new();
        let mut resets = 0;
        for ((diff, tracker), node) in diffs.iter().zip(&self.trackers).zip(&self.setup.nodes) {
            resets += diff.resets;
            let cx = RowContext {
                node: &node.node,
                sb: &self.setup.sb,
                meanings: &self.meanings,
                pg_sizes: &self.setup.pg_sizes,
                watched_ports: &watched,
            };
            for m in &diff.moved {
                if let Some(f) = tracker.flow(m.id) {
                    self.expectations.count(f.cookie, m.packets);
                    rows.push(report::flow_row(m, f, elapsed, &cx));
                }
            }
        }
        self.expectations.count_rules(
            self.trackers
                .iter()
                .flat_map(|t| t.flows().map(|(_, f)| f.cookie)),
        );
        report::sort_rows(&mut rows);
        let drops: Vec<_> = rows
            .iter()
            .filter(|r| r.drop)
            .map(|r| {
                let deciders = report::acl_deciders(r, &rows);
                // remembered for the run summary: ties are made per interval
                let ties = self.acl_ties.entry((r.node.clone(), r.id)).or_default();
                for d in &deciders {
                    ties.insert(d.id);
                }
                report::drop_row(r, &rows, &deciders)
            })
            .collect();
        // the generic ACL drop rule's row shows the ACL it was tied to
        for d in drops.iter().filter(|d| d.inferred.is_some()) {
            if let Some(r) = rows.iter_mut().find(|r| {
                r.drop && r.node == d.node && r.cookie == d.cookie && r.match_expr == d.match_expr
            }) {
                r.owner = d.owner.clone();
            }
        }
        for r in &rows {
            self.totals.add(r);
        }
        let rows = self.filtered(rows);
        let interval = Interval {
            at_s: at,
            elapsed_s: elapsed,
            flows: rows,
            drops,
            resets,
        };
        // a live run keeps only the last interval: memory stays flat
        if self.live.is_some() || self.args.watch {
            self.intervals.clear();
        }
        self.intervals.push(interval);
    }

    fn filtered(&self, rows: Vec<report::FlowRow>) -> Vec<report::FlowRow> {
        rows.into_iter()
            .filter(|r| !self.args.drops || r.drop)
            .filter(|r| match &self.args.stage {
                Some(s) => r.stage.as_deref().is_some_and(|st| st.contains(s.as_str())),
                None => true,
            })
            .collect()
    }

    /// Meanings of cookies moving for the first time; their logical flows
    /// are read from the SB in one exec.
    async fn resolve_cookies(&mut self, diffs: &[RoundDiff]) {
        let mut new: Vec<u64> = Vec::new();
        for (d, t) in diffs.iter().zip(&self.trackers) {
            for m in &d.moved {
                if let Some(f) = t.flow(m.id)
                    && !self.meanings.contains_key(&f.cookie)
                    && !new.contains(&f.cookie)
                {
                    new.push(f.cookie);
                }
            }
        }
        let unknown: Vec<String> = new
            .iter()
            .filter(|c| {
                **c != 0
                    && matches!(
                        self.setup.sb.index.owner(**c),
                        ko_ovn::cookie::CookieOwner::None
                    )
            })
            .map(|c| ko_ovn::cookie::lflow_prefix(*c))
            .collect();
        if !unknown.is_empty() {
            match fetch_lflows(self.cluster, &self.setup, unknown).await {
                Ok(flows) => self.setup.sb.index.add_flows(flows),
                Err(e) => self.setup.warnings.push(e),
            }
        }
        for c in new {
            let mut m = flow_owner::meaning(c, &self.setup.sb.index, &self.setup.nb);
            if let Some(o) = m.owner.as_mut() {
                o.service = service_of(o, &self.setup.services);
            }
            self.meanings.insert(c, m);
        }
    }

    fn report(self, duration: f64, one_shot: bool) -> FlowsReport {
        let flows = self.filtered(self.totals.rows(duration));
        let all = self.totals.rows(duration);
        let drops = all
            .iter()
            .filter(|r| r.drop)
            .map(|r| {
                let ties = self.acl_ties.get(&(r.node.clone(), r.id));
                let mut deciders: Vec<&report::FlowRow> = all
                    .iter()
                    .filter(|d| d.node == r.node && ties.is_some_and(|t| t.contains(&d.id)))
                    .collect();
                deciders.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.id.cmp(&b.id)));
                report::drop_row(r, &all, &deciders)
            })
            .collect();
        FlowsReport {
            target: self.setup.target.clone(),
            peers: self.setup.peers.clone(),
            routers: self.setup.routers.iter().map(|(n, _)| n.clone()).collect(),
            nodes: self.setup.nodes.iter().map(|n| n.node.clone()).collect(),
            interval_s: self.args.interval.as_secs_f64(),
            duration_s: duration,
            mode: if one_shot { "one-shot" } else { "live" }.into(),
            intervals: self.intervals,
            flows,
            drops,
            expect: self.expectations.results(),
            cost: self.cost,
            warnings: self.setup.warnings,
        }
    }
}

/// The Service (`ns/name:port`) behind a load balancer rule's VIP, found
/// by ClusterIP and port as `trace` finds it.
fn service_of(o: &flow_owner::Owner, services: &[Service]) -> Option<String> {
    let vip = o.vip.as_ref().filter(|_| o.kind == "LoadBalancer")?;
    let port = vip.port?;
    let proto = vip.protocol.as_deref().unwrap_or("tcp");
    service::of_destination(services, vip.ip, Some(port), proto, true)
        .filter(|s| s.serves_packet)
        .map(|s| format!("{}:{port}", s.name))
}

/// `ovn-sbctl --format=json list Logical_Flow <prefix>...`; a prefix that
/// matches no row (a flow removed since) or several is dropped and the rest
/// asked again.
async fn fetch_lflows(
    cluster: &Cluster,
    setup: &Setup,
    mut prefixes: Vec<String>,
) -> std::result::Result<Vec<LogicalFlow>, String> {
    for _ in 0..8 {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let mut argv: Vec<String> = ["ovn-sbctl", "--format=json", "list", "Logical_Flow"]
            .map(String::from)
            .to_vec();
        argv.extend(prefixes.iter().cloned());
        let out = cluster
            .exec_capture(&setup.sb_leader, container::OVN_CENTRAL, &argv)
            .await
            .map_err(|e| format!("could not read logical flows: {e}"))?;
        if out.success() {
            return ovsdb_rows::parse_logical_flows(
                &out.stdout_str(),
                Some(&setup.sb.datapath_json),
                Some(&setup.sb.dp_group_json),
            )
            .map_err(|e| format!("could not read logical flows: {e}"));
        }
        let err = out.stderr_str();
        let bad = err
            .split("row \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        match bad {
            Some(b) if prefixes.contains(&b) => prefixes.retain(|p| *p != b),
            _ => {
                return Err(format!(
                    "could not read logical flows ({}); rules are shown without stage and owner",
                    err.trim()
                ));
            }
        }
    }
    Err("too many logical flows disappeared while reading them; retry".into())
}
