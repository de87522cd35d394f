//! How a worker slot's child is started: argv by runtime, and the full environment.

use std::collections::BTreeMap;

use smyth_config::{Config, HandlerConfig, Runtime};

use crate::process::SpawnSpec;

/// The bundled Python runtime: a Lambda Runtime API client, standard library only.
pub const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// The spawn spec of one worker slot, whose Runtime API listens on `port`.
pub fn spawn_spec(
    config: &Config,
    handler: &HandlerConfig,
    slot: usize,
    port: u16,
    inherited: &BTreeMap<String, String>,
) -> SpawnSpec {
    let argv = match &handler.runtime {
        Runtime::Python => vec![config.python.clone(), "-c".into(), BOOTSTRAP.into()],
        Runtime::Awslambdaric => {
            vec![config.python.clone(), "-m".into(), "awslambdaric".into(), handler.handler_path.clone()]
        }
        Runtime::Command(argv) => argv.clone(),
    };
    let mut env = smyth_config::worker_env(config, handler, inherited);
    env.insert("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}"));
    env.insert("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream_name(slot));
    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), handler.log_level.clone());
    env.insert("SMYTH_WORKER".into(), format!("{}:{slot}", handler.name));
    env.insert("SMYTH_STRATEGY".into(), handler.strategy.as_str().into());
    SpawnSpec { argv, env, cwd: config.root.clone() }
}

/// The function's ARN, as the runtime and the Invoke API report it.
pub fn function_arn(handler: &HandlerConfig, env: &BTreeMap<String, String>) -> String {
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
    fn bootstrap_is_embedded() {
        assert!(BOOTSTRAP.contains("AWS_LAMBDA_RUNTIME_API"));
    }
}
