//! Rendering of command results: text, JSON, YAML; progress on stderr.
