//! Reading `env_file`: a bounded read (see `files.rs`), then dotenvy's parse. dotenvy expands `$VAR`
//! and `${VAR}` from earlier lines and the server's environment, so a few lines that each double the
//! last would expand to terabytes; the expansion is bounded before dotenvy sees the text.

use std::collections::BTreeMap;
use std::path::Path;

use crate::files;
use crate::limits::{MAX_ENV_EXPANSION_BYTES, MAX_ENV_FILE_BYTES};

/// The variables of the env file at `path`, or why it cannot be used.
pub fn read(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = files::read_bounded(path, MAX_ENV_FILE_BYTES).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_string(),
        std::io::ErrorKind::IsADirectory => "not a regular file (a directory)".to_string(),
        _ => e.to_string(),
    })?;
    let longest_env = std::env::vars_os().map(|(_, v)| v.len() as u64).max().unwrap_or(0);
    if expansion_bound(&text, longest_env) > MAX_ENV_EXPANSION_BYTES {
        return Err(format!(
            "its `$VAR` substitutions could expand past {MAX_ENV_EXPANSION_BYTES} bytes; \
             substitution of that size is refused"
        ));
    }
    dotenvy::from_read_iter(text.as_bytes()).collect::<Result<BTreeMap<_, _>, _>>().map_err(|e| e.to_string())
}

/// An upper bound on what dotenvy produces from `text`. Each `$` may stand for the longest value
/// defined so far (or `longest_env`, the longest in the environment). A value is counted as the
/// lines from its `NAME=` line to the next such line, which also covers quoted multi-line values.
fn expansion_bound(text: &str, longest_env: u64) -> u64 {
    let (mut longest, mut current, mut total) = (longest_env, 0u64, 0u64);
    for line in text.lines() {
        if starts_assignment(line) {
            current = 0;
        }
        let dollars = line.matches('$').count() as u64;
        let out = (line.len() as u64).saturating_add(dollars.saturating_mul(longest));
        current = current.saturating_add(out);
        total = total.saturating_add(out);
        longest = longest.max(current);
    }
    total
}

/// `NAME=` or `export NAME=` at the start of a line.
fn starts_assignment(line: &str) -> bool {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    line.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim_end();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_bounds() {
        let cases: &[(&str, u64, u64)] = &[
            ("", 0, 0),
            ("A=1\nB=2\n", 0, 6),
            // One `$` may be the longest value so far: "B=$A" is 4 bytes plus A's line (3).
            ("A=1\nB=$A\n", 0, 3 + 7),
            // ...or the longest variable in the environment.
            ("A=$HOME\n", 100, 7 + 100),
            // A multi-line value counts as one: C's `$` may stand for all of B.
            ("B=\"x\ny\"\nC=$B\n", 0, 4 + 2 + (4 + 6)),
        ];
        for (text, env, bound) in cases {
            assert_eq!(expansion_bound(text, *env), *bound, "{text:?}");
        }
    }

    #[test]
    fn doubling_grows_the_bound_exponentially_and_saturates() {
        let mut text = String::from("A0=xxxxxxxx\n");
        for i in 1..200 {
            text.push_str(&format!("A{i}=$A{p}$A{p}\n", p = i - 1));
        }
        assert_eq!(expansion_bound(&text, 0), u64::MAX);
    }

    #[test]
    fn assignments() {
        for (line, yes) in [
            ("A=1", true),
            ("export A_B=1", true),
            ("  A = 1", true),
            ("# A=1", false),
            ("=1", false),
            ("y\"", false),
            ("a b=1", false),
        ] {
            assert_eq!(starts_assignment(line), yes, "{line}");
        }
    }
}
