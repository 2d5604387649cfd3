//! Progress on stderr, only when stderr is a terminal: a spinner for one
//! wait, [`Progress`] for a command's stages and counted work.

use std::io;

/// A spinner on stderr, only when stderr is a terminal; `None` otherwise.
pub fn spinner(msg: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(pb)
}

/// Progress on stderr, only when stderr is a terminal: a spinner for stages,
/// a bar for counted work (nodes, probes).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let bar = io::stderr().is_terminal().then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        });
        Progress { bar }
    }

    /// Never shows anything (when another progress display owns stderr).
    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    pub fn stage(&self, msg: &str) {
        if let Some(pb) = &self.bar {
            pb.set_style(indicatif::ProgressStyle::default_spinner());
            pb.set_message(msg.to_string());
        }
    }

    pub fn start(&self, msg: &str, len: u64) {
        if let Some(pb) = &self.bar {
            if let Ok(st) =
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
            {
                pb.set_style(st.progress_chars("=> "));
            }
            pb.set_length(len);
            pb.set_position(0);
            pb.set_message(msg.to_string());
        }
    }

    pub fn inc(&self) {
        if let Some(pb) = &self.bar {
            pb.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}
