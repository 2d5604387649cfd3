//! `version`, `completion`, `env-check`, `reload`, `log`.

mod env_check;
mod log;
mod reload;

pub use env_check::env_check;
pub use log::{LogReport, collect as collect_logs, log};
pub use reload::reload;

use std::io::Write;

use clap::CommandFactory;

use super::{Ctx, Outcome};
use crate::cli::{Cli, CompletionArgs};
use crate::error::{Error, Result};

#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionInfo {
    pub version: &'static str,
}

impl crate::render::Render for VersionInfo {
    fn render_text(&self, out: &mut dyn Write, _s: &crate::render::Style) -> std::io::Result<()> {
        writeln!(out, "kubectl-ko {}", self.version)
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

pub fn version(ctx: &Ctx) -> Outcome {
    Outcome::report(
        VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
        },
        ctx.output(None),
        0,
    )
}

pub fn completion(args: &CompletionArgs) -> Result<Outcome> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "kubectl-ko", &mut out);
    out.flush()
        .map_err(|e| Error::io("write the completion script", &e))?;
    Ok(Outcome::Exit(0))
}
