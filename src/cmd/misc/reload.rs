//! `reload`: restart every Kube-OVN component by deleting its pods, in upstream's
//! order, waiting for replacements.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use futures::future::{join_all, try_join_all};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde::Serialize;

use crate::cli::ReloadArgs;
use crate::cluster::{Cluster, locate::unusable_reason};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{Render, Style};

/// Components in the order upstream restarts them (`app` label values).
const COMPONENTS: &[&str] = &[
    "ovn-central",
    "ovs",
    "kube-ovn-controller",
    "kube-ovn-cni",
    "kube-ovn-pinger",
    "kube-ovn-monitor",
];

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub components: Vec<ReloadedComponent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadedComponent {
    pub app: String,
    pub deleted: Vec<String>,
    pub replacements: Vec<String>,
}

impl Render for ReloadReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        for c in &self.components {
            writeln!(
                out,
                "{}: deleted {} pod(s), {} replacement(s) ready",
                c.app,
                c.deleted.len(),
                c.replacements.len()
            )?;
        }
        writeln!(out, "{}", s.ok("all Kube-OVN components restarted"))
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

async fn restart(cluster: &Cluster, app: &str) -> Result<ReloadedComponent> {
    let ns = cluster.namespace().to_string();
    let selector = format!("app={app}");
    let old = cluster.list_pods(Some(&ns), Some(&selector)).await?;
    let old_uids: BTreeSet<String> = old.iter().map(uid).collect();
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), &ns);
    let deleted: Vec<String> = old
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    // A component's pods go at once, as `kubectl delete pods -l` would.
    let dp = DeleteParams::default();
    try_join_all(
        deleted
            .iter()
            .map(|name| cluster.call(format!("deleting pod {ns}/{name}"), api.delete(name, &dp))),
    )
    .await?;
    // Wait for as many new Running+Ready pods as there were before.
    let limit = cluster.timeout() * 10;
    let deadline = Instant::now() + limit;
    loop {
        let now = cluster.list_pods(Some(&ns), Some(&selector)).await?;
        let fresh: Vec<&Pod> = now
            .iter()
            .filter(|p| !old_uids.contains(&uid(p)) && unusable_reason(p).is_none())
            .collect();
        let stale = now.iter().filter(|p| old_uids.contains(&uid(p))).count();
        if fresh.len() >= old.len() && stale == 0 {
            return Ok(ReloadedComponent {
                app: app.into(),
                deleted,
                replacements: fresh
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect(),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::Remote {
                what: format!("restarting app={app} in {ns}"),
                detail: format!(
                    "{} pod(s) deleted, only {} replacement(s) Running and Ready after {}s",
                    old.len(),
                    fresh.len(),
                    limit.as_secs()
                ),
                hint: format!(
                    "`kubectl -n {ns} get pods -l app={app}`; the rest of the reload was not done"
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn reload(ctx: &Ctx, args: &ReloadArgs) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let ns = cluster.namespace();
    let selectors: Vec<String> = COMPONENTS.iter().map(|app| format!("app={app}")).collect();
    let counts = join_all(
        selectors
            .iter()
            .map(|sel| cluster.list_pods(Some(ns), Some(sel))),
    )
    .await;
    let mut plan = format!(
        "This restarts every Kube-OVN component in namespace {ns} by deleting its pods, one component at a time, waiting for the replacements to be Ready:\n"
    );
    for (app, pods) in COMPONENTS.iter().zip(counts) {
        let pods = pods?;
        plan.push_str(&format!("  app={app}: {} pod(s)\n", pods.len()));
    }
    plan.push_str(
        "Pod networking keeps working, but OVN databases and controllers are briefly unavailable.",
    );
    if !args.yes {
        return Err(Error::NotConfirmed(format!(
            "{plan}\nRe-run with --yes to do it."
        )));
    }
    eprintln!("{plan}");
    let mut components = Vec::new();
    for app in COMPONENTS {
        eprintln!("restarting app={app} ...");
        components.push(restart(cluster, app).await?);
    }
    Ok(Outcome::report(
        ReloadReport { components },
        ctx.output(None),
        0,
    ))
}
