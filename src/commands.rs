//! `smyth invoke` (one invocation without HTTP) and `smyth status` (the running server's workers).

use std::io::{self, Read};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use smyth_actors::invocation::{Invocation, Outcome};
use smyth_actors::messages::InvokeByName;
use smyth_actors::tenancy::check_tenant;
use smyth_config::Config;
use tokio::sync::oneshot;

use crate::server;

/// Reads the event: a file, `-` for standard input, or `{}` when none is given.
pub fn read_event(source: Option<&str>) -> Result<Vec<u8>, String> {
    let bytes = match source {
        None => b"{}".to_vec(),
        Some("-") => {
            let mut buf = Vec::new();
            io::stdin()
                .read_to_end(&mut buf)
                .map_err(|err| format!("cannot read the event from stdin: {err}"))?;
            buf
        }
        Some(path) => {
            std::fs::read(path).map_err(|err| format!("cannot read the event file {path}: {err}"))?
        }
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|err| format!("the event is not JSON: {err}"))?;
    Ok(bytes)
}

/// Runs `name` once with `event` in a fresh worker; prints the result (or the error) as JSON.
pub async fn invoke(
    mut config: Config,
    name: &str,
    event: Vec<u8>,
    tenant_id: Option<String>,
) -> io::Result<ExitCode> {
    let Some(handler) = config.handler(name).cloned() else {
        let names: Vec<_> = config.handlers.iter().map(|h| h.name.as_str()).collect();
        eprintln!("error: no handler `{name}`; the config has: {}", names.join(", "));
        return Ok(ExitCode::from(2));
    };
    let tenant = match check_tenant(tenant_id.as_deref(), handler.tenant_id_header.is_some()) {
        Ok(tenant) => tenant,
        Err(problem) => {
            eprintln!("error: --tenant-id: {problem}");
            return Ok(ExitCode::from(2));
        }
    };
    // One worker is enough for one invocation.
    config.handlers = vec![smyth_config::HandlerConfig {
        concurrency: 1,
        reserved_concurrency: None,
        provisioned_concurrency: 0,
        ..handler
    }];
    config.reload = false;
    let running = server::start(config, None, smyth_actors::containment::contain()).await?;
    let (reply, answer) = oneshot::channel();
    let invocation = Invocation {
        payload: event.into(),
        client_context: None,
        function_arn: None,
        received: Instant::now(),
        log: None,
        tenant,
        origin: smyth_actors::recorder::Origin::new(smyth_actors::recorder::Source::Cli),
    };
    running.router().do_send(InvokeByName { name: name.to_string(), invocation, reply });
    let result = answer.await;
    running.stop(Duration::ZERO).await;
    let (body, ok) = match result {
        Ok(Ok(Outcome::Success { body, .. })) => (String::from_utf8_lossy(&body).into_owned(), true),
        Ok(Ok(Outcome::HandlerError { body, .. })) => (String::from_utf8_lossy(&body).into_owned(), false),
        Ok(Ok(Outcome::Failed { error, message, .. })) => {
            (serde_json::json!({"errorMessage": message, "errorType": error.error_type()}).to_string(), false)
        }
        Ok(Err(rejection)) => (serde_json::json!({"errorMessage": rejection.to_string()}).to_string(), false),
        Err(_) => (serde_json::json!({"errorMessage": "the worker went away"}).to_string(), false),
    };
    println!("{body}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Prints the running server's handlers and workers as a table.
pub fn status(config: &Config, host: Option<&str>, port: Option<u16>) -> ExitCode {
    let host = host.unwrap_or(&config.host);
    let port = port.unwrap_or(config.port);
    if port == 0 {
        eprintln!("error: the config says `port = 0` (a free port): give the server's port with --port");
        return ExitCode::from(2);
    }
    let url = format!("http://{host}:{port}{}/status", config.smyth_path_prefix);
    let status: serde_json::Value = match ureq::get(&url).call().and_then(|mut r| r.body_mut().read_json()) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: no smyth answering at {url}: {err}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", status_table(&status));
    ExitCode::SUCCESS
}

fn status_table(status: &serde_json::Value) -> String {
    let mut rows = vec![[
        "HANDLER",
        "WORKER",
        "STATE",
        "PID",
        "INVOCATIONS",
        "COLD STARTS",
        "RESTARTS",
        "TENANT",
        "LAST ERROR",
    ]
    .map(String::from)];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (name, handler) in status["handlers"].as_object().into_iter().flatten() {
        for worker in handler["workers"].as_array().into_iter().flatten() {
            rows.push([
                name.clone(),
                text(&worker["id"]),
                text(&worker["state"]),
                text(&worker["pid"]),
                text(&worker["invocations"]),
                text(&worker["cold_starts"]),
                text(&worker["restarts"]),
                text(&worker["tenant"]),
                text(&worker["last_error"]["type"]),
            ]);
        }
    }
    let widths: Vec<usize> = (0..9).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let table: String = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect();
    // Then one metrics line per handler.
    let lines = status["handlers"].as_object().into_iter().flatten().map(|(name, handler)| {
        let m = &handler["metrics"];
        let ms = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |v| format!("{v:.1} ms"));
        format!(
            "{name}: invocations {} · errors {} · throttles {} · p50 {} · p99 {}\n",
            text(&m["invocations"]),
            text(&m["errors"]),
            text(&m["throttles"]),
            ms(&m["duration_ms"]["p50"]),
            ms(&m["duration_ms"]["p99"]),
        )
    });
    format!("{table}\n{}", lines.collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_table_has_a_row_per_worker() {
        let status = serde_json::json!({"handlers": {"orders": {"workers": [
            {"id": "orders:0", "state": "warm", "pid": 42, "invocations": 3, "cold_starts": 1, "restarts": 0,
             "tenant": "blue", "last_error": {"type": "ValueError", "message": "boom", "at": 1}},
            {"id": "orders:1", "state": "cold", "pid": null, "invocations": 0, "cold_starts": 0, "restarts": 0,
             "last_error": null}
        ], "metrics": {"invocations": 3, "errors": 1, "throttles": 0, "duration_ms": {"p50": 1.25, "p99": null}}}}});
        let table = status_table(&status);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[1].ends_with("blue    ValueError"), "{table}");
        assert_eq!(
            lines[4], "orders: invocations 3 · errors 1 · throttles 0 · p50 1.2 ms · p99 -",
            "{table}"
        );
        assert!(lines[0].starts_with("HANDLER  WORKER    STATE"), "{table}");
        assert!(lines[1].contains("orders:0  warm   42"), "{table}");
        assert!(lines[2].contains("orders:1  cold   -"), "{table}");
    }

    #[test]
    fn events_must_be_json() {
        assert_eq!(read_event(None).unwrap(), b"{}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, "not json").unwrap();
        assert!(read_event(path.to_str()).unwrap_err().contains("not JSON"));
        assert!(read_event(Some("/nonexistent/event.json")).unwrap_err().contains("cannot read"));
    }
}
