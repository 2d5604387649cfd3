//! `restore`: not implemented yet (see the report); explains itself honestly.

use super::Db;
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};

pub async fn restore(_ctx: &Ctx, db: Db, _yes: bool) -> Result<Outcome> {
    Err(Error::NotSupported(format!(
        "`{} restore` is not implemented yet in this version of kubectl-ko; take a backup with `kubectl ko {} backup`",
        db.short(),
        db.short()
    )))
}
