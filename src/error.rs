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

/// Arguments longer than this are not echoed whole in an error message.
pub const MAX_ECHOED_ARG: usize = 256;
/// How much of such an argument is kept.
const ECHO_KEEP: usize = 64;

/// `msg` with every argument longer than [`MAX_ECHOED_ARG`] (and, as a net,
/// any other word that long) cut to its start plus a note of its length:
/// an error on a 120 KB argument must still fit on a screen.
pub fn clip_long_arguments(msg: &str, args: &[String]) -> String {
    let mut out = msg.to_string();
    let mut long: Vec<&String> = args.iter().filter(|a| a.len() > MAX_ECHOED_ARG).collect();
    // longest first, so an argument that contains another is cut whole
    long.sort_by_key(|a| std::cmp::Reverse(a.len()));
    for a in long {
        if out.contains(a.as_str()) {
            out = out.replace(a.as_str(), &clipped(a));
        }
    }
    if out.split_whitespace().all(|w| w.len() <= MAX_ECHOED_ARG) {
        return out;
    }
    out.split_inclusive(char::is_whitespace)
        .map(|w| {
            let word = w.trim_end();
            if word.len() > MAX_ECHOED_ARG {
                format!("{}{}", clipped(word), &w[word.len()..])
            } else {
                w.to_string()
            }
        })
        .collect()
}

fn clipped(s: &str) -> String {
    let mut end = ECHO_KEEP.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: {} bytes in all]", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arguments_are_cut_in_messages() {
        let huge = "a".repeat(120_000);
        let msg = format!("invalid node name {huge:?}: bad\n  try: x");
        let out = clip_long_arguments(&msg, std::slice::from_ref(&huge));
        assert!(out.len() < 300, "{out}");
        assert!(out.contains("120000 bytes in all"), "{out}");
        assert!(out.ends_with("\n  try: x"));
        // a long word that is not an argument as given (e.g. a part of one) too
        let part = "é".repeat(1000);
        let out = clip_long_arguments(&format!("x {part} y"), &[]);
        assert!(
            out.starts_with("x é") && out.ends_with(" y") && out.len() < 300,
            "{out}"
        );
        // short messages are untouched
        assert_eq!(
            clip_long_arguments("node n1 not found", &[]),
            "node n1 not found"
        );
    }
}
