//! SnapStart's template (`snap_start = true` with the bundled runtime): one fork server per handler
//! whose init imports the handler and runs the before-snapshot hooks (the bundled runtime's snapshot
//! part). Every environment of the handler is a fork of it. It starts with the first environment
//! asked for, is started again after it failed (the supervisor's init backoff paces that), and is
//! replaced on reload.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use smyth_config::HandlerConfig;

use super::{Exited, Failure, ForkServer, Forked, Live, Request};
use crate::process::{Exit, SpawnSpec};

/// What AWS's runtimes set for a SnapStart init and restore.
pub const INIT_TYPE: &str = "snap-start";

pub struct SnapTemplate {
    handler: Arc<HandlerConfig>,
    name: String,
    spec: SpawnSpec,
    current: Mutex<Option<Live>>,
}

/// The INFO that AWS needs Python 3.12 is said once per server.
static VERSION_TOLD: AtomicBool = AtomicBool::new(false);

impl SnapTemplate {
    /// The template of `handler`, started as a worker would be (`worker_spec`), without a Runtime API.
    pub fn new(handler: Arc<HandlerConfig>, worker_spec: &SpawnSpec) -> Self {
        let name = format!("{}:template", handler.name);
        let mut spec = worker_spec.clone();
        let env = Arc::make_mut(&mut spec.env);
        env.remove("AWS_LAMBDA_RUNTIME_API");
        env.insert("SMYTH_WORKER".into(), name.clone());
        env.insert("AWS_LAMBDA_INITIALIZATION_TYPE".into(), INIT_TYPE.into());
        Self { handler, name, spec, current: Mutex::new(None) }
    }

    /// A restored environment with `env`, its output on `output`; the template is started first if
    /// none is running.
    pub fn fork(&self, env: BTreeMap<String, String>, output: OwnedFd, forked: Forked, exited: Exited) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_none_or(|live| live.server.ended()) {
            match self.start() {
                Ok(live) => *current = Some(live),
                Err(err) => {
                    *current = None;
                    drop(current);
                    let message = format!("could not start the SnapStart template: {err}");
                    tracing::error!(handler = %self.handler.name, worker = %self.name, %err, "{message}");
                    forked(Err(Failure { error_type: "Runtime.ExitError".into(), message }));
                    return;
                }
            }
        }
        let live = current.as_ref().expect("started above");
        live.server.fork(Request { env, output, forked, exited });
    }

    /// Ends the template (a reload: the code changed); the next environment starts a new one.
    /// Environments still waiting for the old one's init wait for the new one's instead: a reload
    /// drops no request.
    pub fn recycle(&self) {
        let old = self.current.lock().unwrap_or_else(PoisonError::into_inner).take();
        let waiting = old.as_ref().map(|live| live.server.take_waiting()).unwrap_or_default();
        drop(old);
        for request in waiting {
            self.fork(request.env, request.output, request.forked, request.exited);
        }
    }

    fn start(&self) -> std::io::Result<Live> {
        let log = crate::logs::WorkerLog::new(&self.handler.name, &self.name);
        let on_line = {
            let log = log.clone();
            move |line: &str| log.line(line)
        };
        let started = Instant::now();
        let (handler, worker) = (self.handler.clone(), self.name.clone());
        let on_ready = move |info: serde_json::Value| {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if handler.logging.system_log_level.as_deref() != Some("WARN") {
                tracing::info!(
                    target: crate::logs::REPORT_TARGET,
                    handler = %handler.name,
                    worker = %worker,
                    "INIT_REPORT Init Duration: {ms:.2} ms\tPhase: init\tStatus: success"
                );
            }
            tell_version_once(&handler.name, &info, &VERSION_TOLD);
        };
        let retired = Arc::new(AtomicBool::new(false));
        let on_end = {
            let (handler, worker, retired) = (self.handler.name.clone(), self.name.clone(), retired.clone());
            move |exit: Exit, failure: &Failure| {
                if !retired.load(Ordering::Acquire) {
                    tracing::warn!(
                        handler = %handler,
                        worker = %worker,
                        error_type = %failure.error_type,
                        "the SnapStart template of {handler} exited: {exit}"
                    );
                }
            }
        };
        let limit = self.handler.init_timeout;
        let server = ForkServer::start(&self.spec, &self.name, limit, on_line, on_ready, on_end)?;
        log.started(server.pid);
        Ok(Live { server, retired })
    }
}

/// `runtime = "awslambdaric"` has no template to say its Python version: asked of the interpreter
/// once, on a thread of its own, for the same INFO.
pub fn tell_version_of(handler: &str, spec: &SpawnSpec) {
    let (handler, spec) = (handler.to_string(), spec.clone());
    let Some(python) = spec.argv.first().cloned() else { return };
    let ask = move || {
        let output = std::process::Command::new(python)
            .args(["-c", "import sys, json; print(json.dumps(list(sys.version_info[:2])))"])
            .env_clear()
            .envs(spec.env.iter())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(version) = output.map(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout)) {
            let info = serde_json::json!({ "python": version.unwrap_or_default() });
            tell_version_once(&handler, &info, &VERSION_TOLD);
        }
    };
    let _ = std::thread::Builder::new().name("python version".into()).spawn(ask);
}

/// AWS runs SnapStart for Python 3.12 and later; an older local interpreter still works.
fn tell_version_once(handler: &str, info: &serde_json::Value, told: &AtomicBool) {
    let version: Vec<u64> =
        info["python"].as_array().map(|v| v.iter().filter_map(|n| n.as_u64()).collect()).unwrap_or_default();
    if version.len() == 2 && (version[0], version[1]) < (3, 12) && !told.swap(true, Ordering::AcqRel) {
        tracing::info!(
            handler,
            python = %format!("{}.{}", version[0], version[1]),
            "SnapStart is emulated with this Python; AWS needs Python 3.12 or later for it"
        );
    }
}
