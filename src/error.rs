//! The one error type commands return; `exit_code` maps it to the documented
//! exit codes (see `kubectl ko --help`).

use crate::cluster;

pub const EXIT_PROBLEM: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_SUPPORTED: i32 = 7;
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments that clap could not catch (e.g. a malformed pod reference).
    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    Cluster(#[from] cluster::Error),

    /// A remote tool failed or printed something we could not understand.
    #[error("{what}: {detail}\n  try: {hint}")]
    Remote {
        what: String,
        detail: String,
        hint: String,
    },

    /// A local file could not be written or read.
    #[error("could not {what}: {detail}")]
    Io { what: String, detail: String },

    /// Not implemented (yet) by this version; the message says what to use instead.
    #[error("{0}")]
    NotSupported(String),

    /// The user refused or did not confirm a destructive operation.
    #[error("{0}")]
    NotConfirmed(String),

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NotConfirmed(_) => EXIT_USAGE,
            Error::Cluster(e) => e.exit_code(),
            Error::Remote { .. } => cluster::error::EXIT_REMOTE,
            Error::Io { .. } => cluster::error::EXIT_LOCAL_IO,
            Error::NotSupported(_) => EXIT_NOT_SUPPORTED,
            Error::Interrupted => EXIT_INTERRUPTED,
        }
    }

    pub fn io(what: impl Into<String>, err: &std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            detail: err.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
