//! The database file: created with its folder (and that folder's `.gitignore` of `*` when smyth
//! made it), in WAL mode, with the `invocations` table. `seq` is the table's own key (insert order,
//! and the cap deletes a range of it) and its only index: request ids are random, so an index on
//! `id` would have each batch rewrite pages all over it, and inserting (and later deleting) its
//! entries cost the writer as much as the rows. Finding one id scans at most `record_keep` rows,
//! milliseconds for the few reads that do (`show`, a replay); the writer finds the rows it wrote
//! lately by their `seq`. An id is recorded once per attempt: an async event's retries keep theirs,
//! as on AWS, and the newest is the one shown. The columns named in the contract with the replay
//! and state-leak features are fixed; the rest may grow.

use std::path::Path;

use rusqlite::Connection;

pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS invocations (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
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
";

/// `PRAGMA user_version` of the layout above. Version 0 keyed the table by `id`, with a second index
/// on `seq`; version 1 had a unique index on `id`. Their rows are copied over, in order.
const VERSION: i64 = 2;
/// Bytes a page holds, for a new database (an existing one keeps its own): rows of a few KB then
/// share pages, and a batch is a few large writes to the log rather than one per 4 KB (writer CPU
/// per row 21 → 15 µs here).
const PAGE_SIZE: i64 = 65_536;
/// The page cache, SQLite's default made explicit: a batch's pages and the table's tail fit. A larger
/// one saved the writer nothing measurable and held on to megabytes after a burst.
const CACHE_KIB: i64 = 2 * 1024;
/// Bytes the write-ahead log grows to before it is folded into the file: a page that each batch
/// rewrites (the table's last ones) is then copied once in many batches rather than every one.
const AUTOCHECKPOINT_BYTES: i64 = 16 * 1024 * 1024;

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
    conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(|err| err.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|err| err.to_string())?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|err| err.to_string())?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB).map_err(|err| err.to_string())?;
    let page_size: i64 =
        conn.pragma_query_value(None, "page_size", |row| row.get(0)).map_err(|err| err.to_string())?;
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_BYTES / page_size.max(512))
        .map_err(|err| err.to_string())?;
    migrate(&conn).map_err(|err| format!("cannot upgrade {}: {err}", path.display()))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == VERSION {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    let old: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'invocations'",
        [],
        |row| row.get(0),
    )?;
    if old {
        tx.execute_batch(
            "DROP INDEX IF EXISTS invocations_seq; ALTER TABLE invocations RENAME TO invocations_v0;",
        )?;
    }
    tx.execute_batch(CREATE)?;
    if old {
        let columns: Vec<String> = tx
            .prepare("SELECT name FROM pragma_table_info('invocations_v0')")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let columns = columns.join(", ");
        tx.execute_batch(&format!(
            "INSERT INTO invocations ({columns}) SELECT {columns} FROM invocations_v0 ORDER BY seq; \
             DROP TABLE invocations_v0;"
        ))?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_the_first_layout_keeps_its_rows_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invocations.db");
        let first = Connection::open(&path).unwrap();
        first
            .execute_batch(
                "CREATE TABLE invocations (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, handler TEXT NOT NULL,
                    source TEXT NOT NULL, started_at_ms INTEGER NOT NULL, status TEXT NOT NULL, event BLOB);
                 CREATE UNIQUE INDEX invocations_seq ON invocations(seq);
                 INSERT INTO invocations VALUES ('b', 2, 'h', 'http', 2, 'ok', x'7b7d');
                 INSERT INTO invocations VALUES ('a', 1, 'h', 'http', 1, 'error', NULL);",
            )
            .unwrap();
        drop(first);
        let conn = open(&path).unwrap();
        let rows: Vec<(i64, String, String)> = conn
            .prepare("SELECT seq, id, status FROM invocations ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, [(1, "a".into(), "error".into()), (2, "b".into(), "ok".into())]);
        drop(conn);
        // Opened again: already upgraded, nothing changes; an id may come again (a retried event).
        let conn = open(&path).unwrap();
        conn.execute("INSERT INTO invocations (id, handler, source, started_at_ms, status) VALUES ('b', 'h', 'async', 3, 'ok')", [])
            .unwrap();
        let count: i64 = conn.query_row("SELECT COUNT(*) FROM invocations", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn a_new_database_has_large_pages_and_an_old_one_keeps_its_own_with_the_same_log_size() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |conn: &Connection| -> (i64, i64) {
            let get = |name| conn.pragma_query_value(None, name, |row| row.get(0)).unwrap();
            (get("page_size"), get("wal_autocheckpoint"))
        };
        let new = open(&dir.path().join("new.db")).unwrap();
        assert_eq!(settings(&new), (PAGE_SIZE, AUTOCHECKPOINT_BYTES / PAGE_SIZE));
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x);")
            .unwrap();
        let old = open(&path).unwrap();
        assert_eq!(settings(&old), (4096, AUTOCHECKPOINT_BYTES / 4096));
    }
}
