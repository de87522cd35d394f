//! Reads the recording database (read-only, so it works beside a running server or without one):
//! the recent invocations with filters, and everything recorded of one. Both answer JSON values, which
//! `smyth invocations` prints as a table and `/_smyth/invocations` serves as they are.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Map, Value};

/// Which invocations to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub handler: Option<String>,
    /// Only those whose status is not `ok`.
    pub failed: bool,
    pub limit: usize,
}

/// The columns of a listed invocation.
const SUMMARY: &str =
    "id, seq, started_at_ms, handler, worker, worker_name, pid, cold, tenant, source, init_ms, \
                       run_ms, status, error_type, error_message, chaos";

fn open(path: &Path) -> Result<Connection, String> {
    if !path.exists() {
        return Err(format!(
            "no recording at {} (nothing was invoked yet, or `record = false`)",
            path.display()
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|err| format!("{}: {err}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(2)).map_err(|err| err.to_string())?;
    Ok(conn)
}

/// The newest invocations first.
pub fn list(path: &Path, filter: &Filter) -> Result<Vec<Value>, String> {
    let conn = open(path)?;
    let sql = format!(
        "SELECT {SUMMARY} FROM invocations WHERE (?1 IS NULL OR handler = ?1) AND (?2 = 0 OR status != 'ok') \
         ORDER BY seq DESC LIMIT ?3"
    );
    let mut statement = conn.prepare(&sql).map_err(|err| err.to_string())?;
    let limit = filter.limit.min(i64::MAX as usize) as i64;
    let rows = statement
        .query_map(rusqlite::params![filter.handler, filter.failed, limit], |row| Ok(to_json(row)))
        .map_err(|err| err.to_string())?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|err| err.to_string())
}

/// Everything recorded of invocation `id`; None if there is no such record.
pub fn show(path: &Path, id: &str) -> Result<Option<Value>, String> {
    let conn = open(path)?;
    let mut statement = conn
        .prepare("SELECT * FROM invocations WHERE id = ?1 ORDER BY seq DESC LIMIT 1")
        .map_err(|err| err.to_string())?;
    let mut rows = statement.query([id]).map_err(|err| err.to_string())?;
    match rows.next().map_err(|err| err.to_string())? {
        Some(row) => Ok(Some(to_json(row))),
        None => Ok(None),
    }
}

/// A row as a JSON object: text and blobs as strings, `cold` as a boolean, and the JSON columns
/// (`http_request`, `chaos`, `error_stack`) as JSON.
fn to_json(row: &rusqlite::Row) -> Value {
    let mut object = Map::new();
    for (i, name) in row.as_ref().column_names().iter().enumerate() {
        let value = match row.get_ref(i) {
            Ok(ValueRef::Null) | Err(_) => Value::Null,
            Ok(ValueRef::Integer(n)) if *name == "cold" => Value::Bool(n != 0),
            Ok(ValueRef::Integer(n)) => json!(n),
            Ok(ValueRef::Real(x)) => json!(x),
            Ok(ValueRef::Text(t) | ValueRef::Blob(t)) => {
                let text = String::from_utf8_lossy(t).into_owned();
                match *name {
                    "http_request" | "chaos" | "error_stack" => {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    }
                    _ => Value::String(text),
                }
            }
        };
        object.insert(name.to_string(), value);
    }
    Value::Object(object)
}
