//! A worker's environment, built from the config alone (pure: the env file was read at load time).

use std::collections::BTreeMap;

use crate::model::{Config, HandlerConfig};

/// Python minor version assumed for `AWS_EXECUTION_ENV` when the interpreter's is unknown.
const FALLBACK_PYTHON: &str = "3.11";

/// The handler's worker environment, lowest to highest precedence: Lambda defaults < `inherited`
/// (the server's os.environ) < env file < global `env` < handler `env`.
///
/// `PYTHONPATH` is then the project root, the `python_path` entries, and whatever `PYTHONPATH` the
/// layers above produced. `_HANDLER` is always the handler's path: the bootstrap reads it.
/// The per-worker keys (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_INITIALIZATION_TYPE`,
/// `AWS_LAMBDA_LOG_STREAM_NAME`) are added by the worker.
pub fn worker_env(
    config: &Config,
    handler: &HandlerConfig,
    inherited: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = defaults(config, handler);
    for layer in [inherited, &config.env_file_vars, &config.env, &handler.env] {
        env.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    let mut path: Vec<String> = std::iter::once(&config.root)
        .chain(&config.python_path)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(existing) = env.get("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(existing.clone());
    }
    env.insert("PYTHONPATH".into(), path.join(":"));
    env.insert("_HANDLER".into(), handler.handler_path.clone());
    env
}

/// Smyth's table of Lambda defaults.
fn defaults(config: &Config, handler: &HandlerConfig) -> BTreeMap<String, String> {
    let python = config.python_version.as_deref().unwrap_or(FALLBACK_PYTHON);
    let name = &handler.name;
    [
        ("_HANDLER", handler.handler_path.clone()),
        ("AWS_ACCESS_KEY_ID", "000000000000".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_SESSION_TOKEN", "test".into()),
        ("AWS_DEFAULT_REGION", "eu-central-1".into()),
        ("AWS_REGION", "eu-central-1".into()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_python{python}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", handler.memory_size.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into()),
        ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
