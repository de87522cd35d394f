//! The server's own temp dirs (the bundled runtime's file, spooled event payloads). Each is named
//! `smyth-<kind>-<pid>-<random>`, so that a later server can tell a dir whose server was killed
//! (SIGKILL runs no destructor) from one still in use, and remove it at start-up.

use std::path::Path;

use tempfile::TempDir;

/// Every dir this module makes starts with this.
const PREFIX: &str = "smyth-";

/// A fresh private dir (mode 0700) in the temp dir, removed when dropped; the dirs of servers that are
/// gone are removed first.
pub fn private_dir(kind: &str) -> std::io::Result<TempDir> {
    let temp = std::env::temp_dir();
    remove_stale(&temp);
    tempfile::Builder::new().prefix(&format!("{PREFIX}{kind}-{}-", std::process::id())).tempdir_in(temp)
}

/// The pid in a dir name `smyth-<kind>-<pid>-<random>`, when the name has that shape.
pub fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(PREFIX)?.splitn(3, '-');
    let kind = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    let is_kind = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase());
    is_kind.then(|| pid.parse().ok()).flatten()
}

/// Removes the dirs in `temp` whose server process no longer exists.
pub fn remove_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(owner_pid) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_are_read_from_names() {
        let cases = [
            ("smyth-events-123-abc", Some(123)),
            ("smyth-bootstrap-45-x1Y2z3", Some(45)),
            ("smyth-events-123", None),
            ("smyth-events-not-a-pid", None),
            ("smyth-033xo4", None),
            ("smyth--12-abc", None),
            ("other-events-12-abc", None),
            ("smyth-Events-12-abc", None),
        ];
        for (name, expected) in cases {
            assert_eq!(owner_pid(name), expected, "{name}");
        }
    }

    #[test]
    fn dirs_of_servers_that_are_gone_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        let stale = temp.path().join("smyth-bootstrap-99999999-abc");
        let live = temp.path().join(format!("smyth-events-{}-abc", std::process::id()));
        let other = temp.path().join("smyth-events-not-a-pid");
        for dir in [&stale, &live, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("payload"), b"{}").unwrap();
        }
        remove_stale(temp.path());
        assert!(!stale.exists() && live.exists() && other.exists());
    }
}
