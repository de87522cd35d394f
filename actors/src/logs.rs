//! Worker output in the server log: every line prefixed with its worker's name, one colour per worker.

use std::hash::{Hash, Hasher};
use std::io::IsTerminal;
use std::sync::OnceLock;

const PALETTE: [u8; 6] = [36, 33, 35, 32, 34, 96];

fn colour_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

/// The worker's name as shown in the log, coloured when the log is a terminal.
pub fn prefix(name: &str) -> String {
    if !colour_enabled() {
        return name.to_string();
    }
    let handler = name.split(':').next().unwrap_or(name);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (handler, name).hash(&mut hasher);
    let colour = PALETTE[(hasher.finish() % PALETTE.len() as u64) as usize];
    format!("\x1b[{colour}m{name}\x1b[0m")
}

/// One line a worker printed.
pub fn worker_line(name: &str, line: &str) {
    tracing::info!(target: "smyth::worker", "{} | {}", prefix(name), line);
}
