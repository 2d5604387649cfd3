//! Rendering of command results: text for people (colour only when allowed),
//! JSON/YAML for scripts; progress on stderr.
//!
//! A command returns something that implements [`Render`]; `main` calls
//! [`emit`] with the `-o` format. Commands never print their results themselves.

pub mod progress;

use std::io::{self, Write};

use owo_colors::OwoColorize;

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    Yaml,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Text styling; a no-op when colour is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Decide colour like most CLIs: `always`/`never` win, `auto` = stdout is
    /// a terminal and `NO_COLOR` is unset or empty.
    pub fn resolve(choice: ColorChoice) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                use std::io::IsTerminal;
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && io::stdout().is_terminal()
            }
        };
        Style { color }
    }

    pub fn ok(&self, s: &str) -> String {
        if self.color {
            s.green().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn bad(&self, s: &str) -> String {
        if self.color {
            s.red().bold().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn warn(&self, s: &str) -> String {
        if self.color {
            s.yellow().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        if self.color {
            s.bold().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn dim(&self, s: &str) -> String {
        if self.color {
            s.dimmed().to_string()
        } else {
            s.to_string()
        }
    }
}

/// A command result that can print itself as text or as structured data.
pub trait Render {
    /// Human-readable form.
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()>;
    /// Structured form for `-o json|yaml` (usually `serde_json::to_value(self)`).
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error>;
}

/// Print `result` in `format` to `out`.
pub fn emit(
    result: &dyn Render,
    format: OutputFormat,
    style: &Style,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => result.render_text(out, style)?,
        OutputFormat::Json => {
            let v = result.to_value().map_err(io::Error::other)?;
            serde_json::to_writer_pretty(&mut *out, &v).map_err(io::Error::other)?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => {
            let v = result.to_value().map_err(io::Error::other)?;
            let s = serde_yaml::to_string(&v).map_err(io::Error::other)?;
            out.write_all(s.as_bytes())?;
        }
    }
    out.flush()
}

/// A plain text result (for commands whose output is a message).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub message: String,
}

impl Render for Message {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> io::Result<()> {
        writeln!(out, "{}", self.message)
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_renders_in_all_formats() {
        let m = Message {
            message: "hello".into(),
        };
        let style = Style::default();
        for (fmt, want) in [
            (OutputFormat::Text, "hello\n"),
            (OutputFormat::Json, "{\n  \"message\": \"hello\"\n}\n"),
            (OutputFormat::Yaml, "message: hello\n"),
        ] {
            let mut buf = Vec::new();
            emit(&m, fmt, &style, &mut buf).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }

    #[test]
    fn styles_are_plain_without_colour() {
        let s = Style { color: false };
        assert_eq!(s.bad("x"), "x");
        let c = Style { color: true };
        assert_ne!(c.bad("x"), "x");
    }
}
