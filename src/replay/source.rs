//! Where replays read recorded invocations: the `invocations` table of the SQLite record
//! (`.smyth/invocations.db` under the project root). The one module that knows the record's columns,
//! so the recorder's own reader can take its place.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use smyth_config::Config;

/// The record's file (`record_path`, default `.smyth/invocations.db` under the project root).
pub fn database_path(config: &Config) -> PathBuf {
    config.record.path.clone()
}

/// One recorded invocation: what a replay needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The Lambda request id.
    pub id: String,
    pub seq: i64,
    pub handler: String,
    pub pid: Option<i64>,
    pub started_at_ms: i64,
    /// `ok`, `error`, `timeout`, …
    pub status: String,
    pub event: Vec<u8>,
    pub result: Option<Vec<u8>>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    /// The tenant of a function with tenant isolation.
    pub tenant: Option<String>,
}

impl Recorded {
    pub fn failed(&self) -> bool {
        self.status != "ok"
    }

    /// The recorded result as JSON, in the shape `compare::result_json` gives a new one.
    pub fn result_json(&self) -> serde_json::Value {
        if self.failed() {
            return serde_json::json!({"errorType": self.error_type, "errorMessage": self.error_message});
        }
        let body = self.result.as_deref().unwrap_or(b"null");
        serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
    }
}

const COLUMNS: &str =
    "id, seq, handler, pid, started_at_ms, status, event, result, error_type, error_message, tenant";

/// Invocations clients made: not the shadow runs of the state-leak detector, nor earlier replays.
const ORIGINAL: &str = "source NOT IN ('shadow', 'replay')";

fn recorded(row: &Row<'_>) -> rusqlite::Result<Recorded> {
    Ok(Recorded {
        id: row.get(0)?,
        seq: row.get(1)?,
        handler: row.get(2)?,
        pid: row.get(3)?,
        started_at_ms: row.get(4)?,
        status: row.get(5)?,
        event: row.get(6)?,
        result: row.get(7)?,
        error_type: row.get(8)?,
        error_message: row.get(9)?,
        tenant: row.get(10)?,
    })
}

/// The record, opened read-only.
pub struct Source(Connection);

impl Source {
    pub fn open(path: &Path) -> Result<Source, String> {
        if !path.exists() {
            return Err(format!("no invocation record at {} (nothing recorded yet?)", path.display()));
        }
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map(Source)
            .map_err(|err| format!("cannot open the invocation record {}: {err}", path.display()))
    }

    pub fn get(&self, id: &str) -> Result<Option<Recorded>, String> {
        self.0
            .query_row(
                &format!("SELECT {COLUMNS} FROM invocations WHERE id = ?1 ORDER BY seq DESC LIMIT 1"),
                [id],
                recorded,
            )
            .optional()
            .map_err(|err| format!("cannot read the invocation record: {err}"))
    }

    /// The invocations that ran before `record` on the same process (same handler and pid), oldest
    /// first: what a warm replay runs first.
    pub fn preceding(&self, record: &Recorded) -> Result<Vec<Recorded>, String> {
        let Some(pid) = record.pid else { return Ok(Vec::new()) };
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM invocations WHERE handler = ?1 AND pid = ?2 AND seq < ?3 AND {ORIGINAL} ORDER BY seq"
            ),
            rusqlite::params![record.handler, pid, record.seq],
        )
    }

    /// Failed invocations that started at or after `since_ms` (epoch ms), oldest first.
    pub fn failed_since(&self, since_ms: i64) -> Result<Vec<Recorded>, String> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM invocations WHERE status != 'ok' AND started_at_ms >= ?1 AND {ORIGINAL} ORDER BY seq"
            ),
            rusqlite::params![since_ms],
        )
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Recorded>, String> {
        let read = || -> rusqlite::Result<Vec<Recorded>> {
            let mut statement = self.0.prepare(sql)?;
            let rows = statement.query_map(params, recorded)?;
            rows.collect()
        };
        read().map_err(|err| format!("cannot read the invocation record: {err}"))
    }
}
