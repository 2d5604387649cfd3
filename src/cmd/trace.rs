//! `trace` / `ovn-trace` — owned by the trace engineer (issue #4); this file is
//! a placeholder with the agreed signature, to be replaced entirely.

use super::{Ctx, Outcome};
use crate::cli::TraceArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx, _args: &TraceArgs, _ovn_only: bool) -> Result<Outcome> {
    Err(Error::NotSupported(
        "trace is not implemented yet (issue #4)".into(),
    ))
}
