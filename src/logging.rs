//! The server log: `tracing` to stderr, filtered by the configured level (or `RUST_LOG`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Maps Python-style level names (Smyth's `log_level`) to a tracing filter.
fn filter_for(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    }
}

pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{},actix_server=warn,actix_web=warn", filter_for(level)))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .try_init();
}
