//! `nb|sb status|kick|backup|dbstatus|restore`.

use super::{Ctx, Outcome};
use crate::cli::DbAction;
use crate::error::{Error, Result};

/// Which RAFT database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Db {
    Nb,
    Sb,
}

pub async fn run(_ctx: &Ctx, _db: Db, _action: &DbAction) -> Result<Outcome> {
    Err(Error::NotSupported(
        "nb/sb operations are being implemented".into(),
    ))
}
