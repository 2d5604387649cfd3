//! `tcpdump <ns/pod> [args]`.

use super::{Ctx, Outcome};
use crate::cli::TcpdumpArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx, _args: &TcpdumpArgs) -> Result<Outcome> {
    Err(Error::NotSupported("tcpdump is being implemented".into()))
}
