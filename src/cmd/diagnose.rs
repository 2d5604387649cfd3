//! `diagnose` — owned by the diagnose engineer (issue #5); this file is a
//! placeholder with the agreed signature, to be replaced entirely.

use super::{Ctx, Outcome};
use crate::cli::DiagnoseArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx, _args: &DiagnoseArgs) -> Result<Outcome> {
    Err(Error::NotSupported(
        "diagnose is not implemented yet (issue #5)".into(),
    ))
}
