//! One module per subcommand; each returns an [`Outcome`] and never prints its
//! result (passthrough commands stream the remote output, which is their result).
//!
//! Signature every command follows:
//! `pub async fn run(ctx: &Ctx, args: &<its cli args>) -> crate::error::Result<Outcome>`
//! (`trace::run` also takes `ovn_only: bool` for `ovn-trace`).

pub mod bundle;
pub mod db;
pub mod diagnose;
pub mod flows;
pub mod misc;
pub mod passthrough;
pub mod perf;
pub mod tcpdump;
pub mod trace;

use tokio::sync::OnceCell;

use crate::cli::GlobalOpts;
use crate::cluster::{Cluster, ConnectOptions};
use crate::error::Result;
use crate::render::{OutputFormat, Render, Style};

/// Everything a command needs: the global options, styling, and the cluster
/// connection (built on first use, then shared).
pub struct Ctx {
    pub global: GlobalOpts,
    pub style: Style,
    cluster: OnceCell<Cluster>,
}

impl Ctx {
    pub fn new(global: GlobalOpts) -> Self {
        let style = Style::resolve(global.color);
        Ctx {
            global,
            style,
            cluster: OnceCell::new(),
        }
    }

    /// A context with a ready cluster (tests, embedding).
    pub fn with_cluster(global: GlobalOpts, cluster: Cluster) -> Self {
        let ctx = Self::new(global);
        let _ = ctx.cluster.set(cluster);
        ctx
    }

    /// The cluster connection, created once.
    pub async fn cluster(&self) -> Result<&Cluster> {
        let opts = ConnectOptions {
            kubeconfig: self.global.kubeconfig.clone(),
            context: self.global.context.clone(),
            namespace: self.global.kube_ovn_namespace.clone(),
            timeout: self.global.timeout,
        };
        Ok(self
            .cluster
            .get_or_try_init(|| Cluster::connect(&opts))
            .await?)
    }

    /// `-o` after the subcommand wins over the global one.
    pub fn output(&self, local: Option<OutputFormat>) -> OutputFormat {
        local.unwrap_or(self.global.output)
    }
}

/// What a command produced.
pub enum Outcome {
    /// Output already streamed; exit with this code (passthrough: the remote code).
    Exit(i32),
    /// A result to render in `format`, then exit with `exit` (0 ok, 1 problem found).
    Report {
        result: Box<dyn Render + Send>,
        format: OutputFormat,
        exit: i32,
    },
}

impl Outcome {
    pub fn report(result: impl Render + Send + 'static, format: OutputFormat, exit: i32) -> Self {
        Outcome::Report {
            result: Box::new(result),
            format,
            exit,
        }
    }
}
