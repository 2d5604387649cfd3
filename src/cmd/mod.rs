//! One module per subcommand; each returns a renderable result and never prints.
