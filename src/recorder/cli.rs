//! `smyth invocations`: the recent recorded invocations as a table (or JSON), and `show ID`:
//! everything recorded of one, its log included. Reads the database directly, so it works with or
//! without a server running.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use smyth_actors::recorder::query::{self, Filter};

/// Prints the invocations `filter` selects, newest first.
pub fn list(path: &Path, filter: &Filter, json: bool) -> ExitCode {
    let rows = match query::list(path, filter) {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        print!("{}", table(&rows));
    }
    ExitCode::SUCCESS
}

/// Prints everything recorded of `id`.
pub fn show(path: &Path, id: &str, json: bool) -> ExitCode {
    match query::show(path, id) {
        Ok(Some(row)) if json => {
            println!("{}", serde_json::to_string_pretty(&row).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(Some(row)) => {
            print!("{}", details(&row));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: no invocation `{id}` in {}", path.display());
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `2026-11-30 11:47:01.123` (UTC) from epoch milliseconds.
fn time(ms: &Value) -> String {
    let Some(ms) = ms.as_i64() else { return "-".into() };
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "-".into())
}

fn start(row: &Value) -> &'static str {
    match row["cold"].as_bool() {
        _ if row["worker"].is_null() => "-",
        Some(true) => "cold",
        _ => "warm",
    }
}

fn table(rows: &[Value]) -> String {
    let mut lines =
        vec![["ID", "TIME (UTC)", "HANDLER", "WORKER", "START", "DURATION", "STATUS"].map(String::from)];
    for row in rows {
        let duration = row["run_ms"].as_f64().map_or("-".into(), |ms| format!("{ms:.2} ms"));
        let status = match row["error_type"].as_str() {
            Some(kind) => format!("{} ({kind})", text(&row["status"])),
            None => text(&row["status"]),
        };
        lines.push([
            text(&row["id"]),
            time(&row["started_at_ms"]),
            text(&row["handler"]),
            text(&row["worker_name"]),
            start(row).to_string(),
            duration,
            status,
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0)).collect();
    lines
        .iter()
        .map(|line| {
            let cells: Vec<String> =
                line.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

fn details(row: &Value) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<14}{value}\n"));
    field("id", text(&row["id"]));
    field("handler", text(&row["handler"]));
    field("worker", format!("{} (pid {})", text(&row["worker_name"]), text(&row["pid"])));
    field("start", start(row).to_string());
    field("tenant", text(&row["tenant"]));
    field("source", text(&row["source"]));
    field("time (UTC)", time(&row["started_at_ms"]));
    field("init", row["init_ms"].as_f64().map_or("-".into(), |ms| format!("{ms:.2} ms")));
    field("duration", row["run_ms"].as_f64().map_or("-".into(), |ms| format!("{ms:.2} ms")));
    field("status", text(&row["status"]));
    if !row["error_type"].is_null() {
        field("error type", text(&row["error_type"]));
        field("error message", text(&row["error_message"]));
    }
    if !row["chaos"].is_null() {
        field("chaos", row["chaos"].to_string());
    }
    let mut section = |name: &str, value: &Value| {
        if !value.is_null() {
            let body = match value {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            out.push_str(&format!("\n--- {name}\n{}\n", body.trim_end()));
        }
    };
    section("event", &row["event"]);
    section("result", &row["result"]);
    section("stack", &row["error_stack"]);
    section("http request", &row["http_request"]);
    section("log", &row["log"]);
    out
}
