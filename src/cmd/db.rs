//! `nb|sb status|kick|backup|dbstatus|restore`: RAFT database operations run
//! in the ovn-central pods (container `ovn-central`).

mod backup;
mod restore;
mod status;

use super::{Ctx, Outcome};
use crate::cli::DbAction;
use crate::cluster::Db;
use crate::cluster::ovn_db::central_container;
use crate::error::Result;

pub use backup::{BackupReport, backup_from, remove_leftovers};
pub use status::{DbStatusReport, Member, StorageReport, status_report, storage_report};

pub async fn run(ctx: &Ctx, db: Db, action: &DbAction) -> Result<Outcome> {
    match action {
        DbAction::Status { raw, output } => {
            if *raw {
                status::raw(ctx, db).await
            } else {
                status::status(ctx, db, ctx.output(output.output)).await
            }
        }
        DbAction::Dbstatus { output } => status::dbstatus(ctx, ctx.output(output.output)).await,
        DbAction::Kick { sid, yes } => status::kick(ctx, db, sid, *yes).await,
        DbAction::Backup { dir } => backup::backup(ctx, db, dir).await,
        DbAction::Restore { yes } => restore::restore(ctx, db, *yes).await,
    }
}
