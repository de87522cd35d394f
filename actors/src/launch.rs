//! How a worker slot's child is started: argv by runtime, and the full environment.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use smyth_config::{Config, HandlerConfig, Runtime};

use crate::forkserver::template::SnapTemplate;
use crate::process::SpawnSpec;
use crate::worker_env::WorkerEnv;

/// The bundled Python runtime: a Lambda Runtime API client, standard library only.
pub const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// What a worker runs: a two-line script that imports the bundled runtime as a module, so that the
/// runtime is compiled once per interpreter into `__pycache__` rather than on every cold start
/// (compiling it costs about as much as the interpreter's own start-up on a busy machine).
pub const ENTRY: &str = r#""""Starts smyth's bundled runtime (smyth_bootstrap.py, compiled once into __pycache__)."""
import sys
sys.path.insert(0, __file__.rpartition("/")[0])  # found even under -P / PYTHONSAFEPATH
# Our own module, in our own dir: cached even when the project says PYTHONDONTWRITEBYTECODE.
dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, False
import smyth_bootstrap
sys.dont_write_bytecode = dont_write
del sys.path[0], dont_write
smyth_bootstrap.run()
"#;

/// The bundled runtime written into a private temp dir for the server's lifetime, so `ps` and
/// tracebacks show a file rather than a page of source. Removed when dropped; the dir
/// (`smyth-bootstrap-<pid>-<random>`) of a killed server is removed by the next one.
pub struct BootstrapFile {
    _dir: tempfile::TempDir,
    /// The runtime module, `smyth_bootstrap.py`.
    pub path: PathBuf,
}

impl BootstrapFile {
    pub fn write() -> io::Result<Self> {
        let dir = crate::scratch::private_dir("bootstrap")?;
        let path = dir.path().join("smyth_bootstrap.py");
        std::fs::write(&path, BOOTSTRAP)?;
        std::fs::write(entry_point(&path), ENTRY)?;
        // SnapStart's template imports the fork server from the runtime's folder.
        std::fs::write(dir.path().join(crate::forkserver::MODULE_FILE), crate::forkserver::SOURCE)?;
        Ok(Self { _dir: dir, path })
    }
}

/// The script a worker runs, beside the runtime module `bootstrap`.
pub fn entry_point(bootstrap: &Path) -> PathBuf {
    bootstrap.with_file_name("smyth_runtime.py")
}

/// The real executable behind `python` (which may be a shim, as pyenv's are: they add ~40 ms to
/// every cold start), asked once of the interpreter itself.
pub fn resolve_interpreter(python: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let output = Command::new(python)
        .args(["-c", "import sys; sys.stdout.write(sys.executable)"])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run the Python interpreter `{python}`: {err}"))?;
    let executable = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match (output.status.success(), executable.is_empty()) {
        (true, false) => Ok(executable),
        _ => Err(format!("the Python interpreter `{python}` did not start ({})", output.status)),
    }
}

/// The spawn spec of a handler's workers, shared by its slots. What differs between slots (the
/// worker's name and log stream: [`name_worker`]) and the Runtime API's address are added when a
/// process starts (`crate::endpoint`: a slot's listener is opened then).
pub fn spawn_spec(
    config: &Config,
    handler: &HandlerConfig,
    inherited: &Arc<BTreeMap<String, String>>,
    bootstrap: &Path,
) -> SpawnSpec {
    let argv = match &handler.runtime {
        Runtime::Python => vec![config.python.clone(), entry_point(bootstrap).to_string_lossy().into_owned()],
        Runtime::Awslambdaric => {
            vec![config.python.clone(), "-m".into(), "awslambdaric".into(), handler.handler_path.clone()]
        }
        Runtime::Command(argv) => argv.clone(),
    };
    let mut env = smyth_config::worker_env(config, handler, inherited);
    for (key, value) in lambda_paths(config, bootstrap) {
        let configured =
            [&config.env_file_vars, &config.env, &handler.env].iter().any(|l| l.contains_key(key));
        if !configured {
            env.insert(key.into(), value);
        }
    }
    if handler.snap_start {
        // AWS does not set these under SnapStart.
        env.remove("AWS_LAMBDA_LOG_GROUP_NAME");
        env.remove("AWS_LAMBDA_LOG_STREAM_NAME");
    }
    apply_logging(&mut env, handler);
    env.insert("SMYTH_STRATEGY".into(), handler.strategy.as_str().into());
    if let Some(port) = handler.debugpy_port.filter(|_| config.debug) {
        env.insert("SMYTH_DEBUGPY_PORT".into(), port.to_string());
    }
    let env = Arc::new(WorkerEnv::over(inherited, env));
    SpawnSpec { argv, env, cwd: config.root.clone(), attached: config.debug }
}

/// A worker's own keys, set as its process starts: its name (`SMYTH_WORKER`, `orders:0`) and the
/// log stream of its environment ([`log_stream`]).
pub fn name_worker(env: &mut WorkerEnv, name: &str, log_stream: Option<&str>) {
    env.insert("SMYTH_WORKER".into(), name.into());
    if let Some(stream) = log_stream {
        env.insert("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream.into());
    }
}

/// The log stream of slot `slot`'s environment, a new one per slot as on AWS; none under SnapStart,
/// where AWS does not set it.
pub fn log_stream(handler: &HandlerConfig, slot: usize) -> Option<String> {
    (!handler.snap_start).then(|| log_stream_name(slot))
}

/// SnapStart's template for a handler whose environments are forks of it (the bundled runtime);
/// other runtimes restore through `/runtime/restore/next` in a process of their own. Not under
/// `--debug`: the debugger needs the worker on the terminal.
pub fn snap_template(handler: &Arc<HandlerConfig>, spec: &SpawnSpec) -> Option<Arc<SnapTemplate>> {
    if handler.snap_start && handler.runtime == Runtime::Awslambdaric {
        crate::forkserver::template::tell_version_of(&handler.name, spec);
    }
    (handler.snap_start && handler.runtime == Runtime::Python && !spec.attached)
        .then(|| Arc::new(SnapTemplate::new(handler.clone(), spec)))
}

/// A worker's environment as the server gives it, before any handler's own `env`: the zygote's
/// start-up variables come from it (`crate::forkserver::zygote`).
pub fn server_env(
    config: &Config,
    inherited: &Arc<BTreeMap<String, String>>,
    bootstrap: &Path,
) -> BTreeMap<String, String> {
    let Some(first) = config.handlers.first() else { return BTreeMap::new() };
    let bare = HandlerConfig { env: BTreeMap::new(), ..first.clone() };
    spawn_spec(config, &bare, inherited, bootstrap).env.to_map()
}

/// Whether a handler's ordinary cold starts fork from the zygote (`crate::forkserver::zygote`): the
/// bundled runtime's, unless SnapStart's template forks them already or `zygote = false`.
/// awslambdaric and `command` runtimes always spawn.
pub fn forks_from_zygote(config: &Config, handler: &HandlerConfig, snap_template: bool) -> bool {
    config.zygote && handler.runtime == Runtime::Python && !snap_template
}

/// What AWS sets in every function's environment, over the server's own variables (a developer's
/// `TZ` must not leak into the worker) but under the config's `env_file` and `env`.
fn lambda_paths(config: &Config, bootstrap: &Path) -> [(&'static str, String); 3] {
    let runtime_dir = bootstrap.parent().unwrap_or(bootstrap);
    [
        ("LAMBDA_TASK_ROOT", config.root.to_string_lossy().into_owned()),
        ("LAMBDA_RUNTIME_DIR", runtime_dir.to_string_lossy().into_owned()),
        ("TZ", ":UTC".into()),
    ]
}

/// AWS's advanced logging controls: `log_format` → `AWS_LAMBDA_LOG_FORMAT`, and the runtime's level,
/// `application_log_level` over `log_level`, → `AWS_LAMBDA_LOG_LEVEL`.
fn apply_logging(env: &mut BTreeMap<String, String>, handler: &HandlerConfig) {
    let logging = &handler.logging;
    if let Some(format) = logging.format {
        env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.as_aws().into());
    }
    let level = logging.application_log_level.as_ref().unwrap_or(&handler.log_level);
    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.clone());
}

/// The function's ARN, as the runtime and the Invoke API report it.
pub fn function_arn(handler: &HandlerConfig, env: &WorkerEnv) -> String {
    let region = env.get("AWS_REGION").map(String::as_str).unwrap_or("eu-central-1");
    format!("arn:aws:lambda:{region}:000000000000:function:{}", handler.name)
}

/// AWS's shape: `2026/11/24/[$LATEST]<32 hex>`.
fn log_stream_name(slot: usize) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{:04}/{:02}/{:02}/[$LATEST]{}{slot:x}",
        today.year(),
        u8::from(today.month()),
        today.day(),
        &id[..31]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stream_has_aws_shape() {
        let name = log_stream_name(3);
        assert_eq!(name.len(), "2026/11/24/[$LATEST]".len() + 32, "{name}");
        assert!(name.contains("/[$LATEST]") && name.ends_with('3'), "{name}");
    }

    #[test]
    fn logging_keys_become_awss_variables() {
        let text = "[tool.smyth.handlers.h]\nhandler_path = \"app.h\"\nurl_path = \"/h\"\n\
                    log_format = \"JSON\"\napplication_log_level = \"ERROR\"\n\
                    [tool.smyth.handlers.t]\nhandler_path = \"app.t\"\nurl_path = \"/t\"\n";
        let config =
            smyth_config::parse_str(text, Path::new("/nonexistent/pyproject.toml"), &BTreeMap::new())
                .unwrap();
        let mut env = BTreeMap::new();
        apply_logging(&mut env, &config.handlers[0]);
        assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        assert_eq!(env["AWS_LAMBDA_LOG_LEVEL"], "ERROR");
        let mut env = BTreeMap::new();
        apply_logging(&mut env, &config.handlers[1]);
        assert!(!env.contains_key("AWS_LAMBDA_LOG_FORMAT"), "unset: the runtime's default");
        assert_eq!(env["AWS_LAMBDA_LOG_LEVEL"], "INFO");
    }

    #[test]
    fn bootstrap_file_holds_the_runtime_and_goes_away() {
        let file = BootstrapFile::write().unwrap();
        assert!(std::fs::read_to_string(&file.path).unwrap().contains("AWS_LAMBDA_RUNTIME_API"));
        assert!(std::fs::read_to_string(entry_point(&file.path)).unwrap().contains("import smyth_bootstrap"));
        let path = file.path.clone();
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn interpreters_resolve_to_their_executable() {
        let env = BTreeMap::from([("PATH".to_string(), std::env::var("PATH").unwrap_or_default())]);
        let resolved = resolve_interpreter("python3", &env).unwrap();
        assert!(Path::new(&resolved).is_absolute(), "{resolved}");
        let err = resolve_interpreter("no-such-python-here", &env).unwrap_err();
        assert!(err.contains("no-such-python-here"), "{err}");
    }
}
