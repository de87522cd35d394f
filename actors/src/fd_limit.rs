//! The open-file limit (RLIMIT_NOFILE): raised to its hard limit at start-up, and checked against what
//! the workers started at start-up need, so a limit that bites says which limit, which handlers and
//! which keys instead of a bare "Too many open files".

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use smyth_config::Config;

/// Descriptors one running worker holds in the server: its Runtime API listeners (TCP, and a Unix
/// socket for the bundled runtime), their connections, the output pipes and the pidfd.
pub const PER_RUNNING_WORKER: u64 = 7;

/// Descriptors the server needs before any worker runs (client listener, epoll, logs, watcher,
/// client connections): kept free of the budget.
pub const RESERVED: u64 = 128;

/// A limit that stops the server from starting: `smyth run` prints it as an `error:` line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenFileLimit(pub String);

/// (soft, hard) open-file limits of this process.
pub fn open_file_limit() -> (u64, u64) {
    getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0))
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let (soft, hard) = open_file_limit();
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// Whether the workers started at start-up (`provisioned_concurrency`) fit under `limit`
/// descriptors; if not, the `error:` text naming the limit, the handlers and the keys. Slots that
/// start on demand cost nothing until they run, and a spawn that then hits the limit says so itself.
pub fn check_start_up(config: &Config, limit: u64) -> Result<(), String> {
    let provisioned: Vec<(&str, u64)> = config
        .handlers
        .iter()
        .filter(|h| h.provisioned_concurrency > 0)
        .map(|h| (h.name.as_str(), h.provisioned_concurrency as u64))
        .collect();
    let workers: u64 = provisioned.iter().map(|(_, n)| n).sum();
    let needed = workers * PER_RUNNING_WORKER + RESERVED;
    if workers == 0 || needed <= limit {
        return Ok(()); // with none provisioned, a spawn that hits the limit says so itself
    }
    let names: Vec<String> = provisioned.iter().map(|(name, n)| format!("`{name}` ({n})")).collect();
    Err(format!(
        "the open-file limit (RLIMIT_NOFILE = {limit}) is too low for {workers} provisioned workers, which \
         need about {needed} descriptors: lower `provisioned_concurrency` of {} or raise the hard limit \
         (`ulimit -Hn`)",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    fn config(provisioned: &[u32]) -> Config {
        let mut text = String::new();
        for (i, p) in provisioned.iter().enumerate() {
            text += &format!(
                "[tool.smyth.handlers.h{i}]\nhandler_path = \"app.h\"\nurl_path = \"/h{i}\"\n\
                 concurrency = 1000\nprovisioned_concurrency = {p}\n"
            );
        }
        smyth_config::parse_str(&text, Path::new("/nonexistent/pyproject.toml"), &BTreeMap::new()).unwrap()
    }

    #[test]
    fn only_provisioned_workers_count_at_start_up() {
        let cases: [(&[u32], u64, bool); 5] = [
            (&[0, 0], 1024, true), // 2,000 on-demand slots: nothing bound yet
            (&[10, 10], 1024, true),
            (&[100, 100], 1024, false),
            (&[100, 100], 65536, true),
            (&[0], 64, true),
        ];
        for (provisioned, limit, fits) in cases {
            assert_eq!(check_start_up(&config(provisioned), limit).is_ok(), fits, "{provisioned:?} {limit}");
        }
    }

    #[test]
    fn the_error_names_the_limit_the_handlers_and_the_key() {
        let err = check_start_up(&config(&[100, 0, 100]), 1024).unwrap_err();
        for part in ["RLIMIT_NOFILE = 1024", "`h0` (100)", "`h2` (100)", "`provisioned_concurrency`"] {
            assert!(err.contains(part), "{part}: {err}");
        }
        assert!(!err.contains("`h1`"), "{err}");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = open_file_limit();
        let limit = raise_open_file_limit();
        assert!(limit >= soft && limit <= hard, "{soft} {hard} → {limit}");
        assert_eq!(open_file_limit().0, limit);
    }
}
