//! `smyth check`'s import of every handler: its runtime started once in a throwaway worker, with the
//! same interpreter, environment and working directory as under `smyth run`, against a Runtime API of
//! its own that only waits for the end of init: `/next` (ready; never answered, so no event runs) or
//! `/init/error` (the failure, with the bundled runtime's hints in its message). Bounded by the
//! handler's `timeout`; the worker's process group is killed afterwards.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use smyth_actors::launch;
use smyth_config::{Config, HandlerConfig, Runtime};
use tokio::sync::mpsc;

/// How one handler's init went.
#[derive(Debug)]
pub enum InitResult {
    Ready(Duration),
    Failed {
        error_type: String,
        message: String,
        location: Option<String>,
    },
    /// The process ended without reporting; the last lines it printed.
    Exited {
        status: String,
        output: String,
    },
    TimedOut(Duration),
}

type Report = mpsc::UnboundedSender<InitResult>;

/// Imports every handler, one after another, and says how each went.
pub async fn import_all(config: &Config) -> io::Result<Vec<(String, InitResult)>> {
    let inherited: Arc<BTreeMap<String, String>> = Arc::new(std::env::vars().collect());
    let mut config = config.clone();
    if config.handlers.iter().any(|h| !matches!(h.runtime, Runtime::Command(_))) {
        // As `run` does; a Python that does not start fails each import below with its reason.
        if let Ok(python) = launch::resolve_interpreter(&config.python, &inherited) {
            config.python = python;
        }
    }
    let bootstrap = launch::BootstrapFile::write()?;
    let mut results = Vec::new();
    for handler in &config.handlers {
        let result = import_one(&config, handler, &inherited, &bootstrap.path).await?;
        results.push((handler.name.clone(), result));
    }
    Ok(results)
}

async fn import_one(
    config: &Config,
    handler: &HandlerConfig,
    inherited: &Arc<BTreeMap<String, String>>,
    bootstrap: &Path,
) -> io::Result<InitResult> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let root = config.root.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(tx.clone()))
            .app_data(web::Data::new(root.clone()))
            .route("/2018-06-01/runtime/invocation/next", web::get().to(next))
            .route("/2018-06-01/runtime/init/error", web::post().to(init_error))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    actix_rt::spawn(server);

    let spec = launch::spawn_spec(config, handler, inherited, bootstrap);
    let mut env = Arc::unwrap_or_clone(spec.env);
    launch::name_worker(&mut env, &format!("{}:0", handler.name), launch::log_stream(handler, 0).as_deref());
    env.insert("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}"));
    env.insert("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into());
    let started = Instant::now();
    let spawned = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
        .env_clear()
        .envs(env.iter())
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            server_handle.stop(false).await;
            let status = format!("could not start `{}`: {err}", spec.argv[0]);
            return Ok(InitResult::Exited { status, output: String::new() });
        }
    };
    let output = [child.stdout.take().map(tail_of), child.stderr.take().map(tail_of)];

    let result = loop {
        if let Ok(result) = rx.try_recv() {
            break result;
        }
        if let Some(status) = child.try_wait()? {
            // An `/init/error` is answered before the runtime exits: look once more.
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            if let Ok(result) = rx.try_recv() {
                break result;
            }
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let output: Vec<String> = output.into_iter().flatten().filter_map(|t| t.join().ok()).collect();
            break InitResult::Exited { status: status.to_string(), output: output.join("") };
        }
        if started.elapsed() > handler.timeout {
            break InitResult::TimedOut(handler.timeout);
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    let result = match result {
        InitResult::Ready(_) => InitResult::Ready(started.elapsed()),
        other => other,
    };
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    server_handle.stop(false).await;
    Ok(result)
}

/// Reads a pipe to its end on a thread; keeps its last 4 KB.
fn tail_of(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        let keep = all.len().saturating_sub(4096);
        String::from_utf8_lossy(&all[keep..]).into_owned()
    })
}

/// Init is over: the runtime asks for its first event. It never gets one.
async fn next(report: web::Data<Report>) -> HttpResponse {
    let _ = report.send(InitResult::Ready(Duration::ZERO));
    futures_util::future::pending::<HttpResponse>().await
}

async fn init_error(
    req: HttpRequest,
    body: web::Bytes,
    report: web::Data<Report>,
    root: web::Data<std::path::PathBuf>,
) -> HttpResponse {
    let header = req.headers().get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok());
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let error_type = header.or(doc["errorType"].as_str()).unwrap_or("Runtime.Unknown").to_string();
    let message = doc["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(&body).into_owned(), str::to_string);
    let location = smyth_actors::logs::init_error_location(&body, &root);
    let _ = report.send(InitResult::Failed { error_type, message, location });
    HttpResponse::Accepted().json(serde_json::json!({"status": "OK"}))
}

/// The line `smyth check` prints for one handler; `None` when it imported.
pub fn problem(name: &str, handler_path: &str, result: &InitResult) -> Option<String> {
    let what = match result {
        InitResult::Ready(_) => return None,
        InitResult::Failed { error_type, message, location } => {
            let at = location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
            format!("{error_type}: {message}{at}")
        }
        InitResult::Exited { status, output } => {
            let output = output.trim_end();
            let shown = if output.is_empty() { String::new() } else { format!("; its output:\n{output}") };
            format!("Runtime.ExitError: the runtime exited during init ({status}){shown}")
        }
        InitResult::TimedOut(after) => {
            format!(
                "Sandbox.Timedout: init did not finish within the handler's timeout ({:.2} s)",
                after.as_secs_f64()
            )
        }
    };
    Some(format!("error: handler `{name}` ({handler_path}) failed to import: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_line() {
        assert_eq!(problem("a", "app.h", &InitResult::Ready(Duration::from_millis(5))), None);
        let failed = InitResult::Failed {
            error_type: "Runtime.ImportModuleError".into(),
            message: "Unable to import module 'app': No module named 'x'".into(),
            location: Some("app.py:2".into()),
        };
        assert_eq!(
            problem("a", "app.h", &failed).unwrap(),
            "error: handler `a` (app.h) failed to import: Runtime.ImportModuleError: \
             Unable to import module 'app': No module named 'x' (app.py:2)"
        );
        let exited = InitResult::Exited { status: "exit status: 3".into(), output: "boom\n".into() };
        assert!(problem("a", "app.h", &exited).unwrap().ends_with("(exit status: 3); its output:\nboom"));
        let slow = problem("a", "app.h", &InitResult::TimedOut(Duration::from_secs(3))).unwrap();
        assert!(slow.contains("Sandbox.Timedout") && slow.contains("3.00 s"), "{slow}");
    }
}
