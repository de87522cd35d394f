//! The database file: created with its folder (and that folder's `.gitignore` of `*` when smyth
//! made it), in WAL mode, with the `invocations` table and one index beside its primary key (`seq`,
//! for insert order and the cap): every index costs each write, and scanning at most `record_keep`
//! rows for one handler's is quick. The columns named in the contract with the replay and
//! state-leak features are fixed; the rest may grow.

use std::path::Path;

use rusqlite::Connection;

pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    handler TEXT NOT NULL,
    worker INTEGER,
    pid INTEGER,
    cold INTEGER NOT NULL DEFAULT 0,
    tenant TEXT NULL,
    source TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    init_ms REAL NULL,
    run_ms REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    event BLOB,
    result BLOB NULL,
    error_type TEXT NULL,
    error_message TEXT NULL,
    error_stack TEXT NULL,
    log TEXT NOT NULL DEFAULT '',
    http_request TEXT NULL,
    chaos TEXT NULL,
    worker_name TEXT NULL,
    event_size INTEGER NOT NULL DEFAULT 0,
    result_size INTEGER NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS invocations_seq ON invocations(seq);
";

/// Opens the database for writing, creating the file, its folder and the table as needed.
pub fn open(path: &Path) -> Result<Connection, String> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        std::fs::create_dir_all(folder)
            .map_err(|err| format!("cannot create {}: {err}", folder.display()))?;
        // A folder smyth made holds only what smyth writes: keep it out of git.
        let _ = std::fs::write(folder.join(".gitignore"), "*\n");
    }
    let conn = Connection::open(path).map_err(|err| err.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(2)).map_err(|err| err.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|err| err.to_string())?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|err| err.to_string())?;
    conn.execute_batch(CREATE).map_err(|err| err.to_string())?;
    Ok(conn)
}
