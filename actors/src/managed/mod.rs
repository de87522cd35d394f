//! Lambda Managed Instances (`managed_instances = true`, `max_concurrency = N`): one execution
//! environment serves up to N invocations at once. Its runtime learns N from
//! `AWS_LAMBDA_MAX_CONCURRENCY` and starts N processes that each long-poll `/next` on the
//! environment's one Runtime API endpoint (awslambdaric 4.x does this; so does the bundled runtime), all
//! sharing the environment's scratch folder (`TMPDIR`). The supervisor keeps `concurrency × N` slots
//! and sends slot k of environment e to `EnvironmentActor` e (`SlotAddr`), so admission, the 429 when
//! every slot is busy, and the status work as for workers.

pub mod actor;
pub mod environment;
pub mod holder;
pub mod machine;
mod recording;
mod runtime_api;
pub mod slot_addr;
pub mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext};
use smyth_config::{Config, HandlerConfig};

pub use actor::{EnvironmentActor, EnvironmentChanged};
pub use slot_addr::SlotAddr;

use crate::endpoint::RuntimeEndpoints;
use crate::supervisor::{AccountLimit, HandlerSupervisor};

/// AWS's oldest Python for managed instances; older interpreters work here, with one INFO.
const AWS_MINIMUM_PYTHON: (u32, u32) = (3, 13);

/// Starts a managed-instances handler's supervisor and its environments, one per `concurrency`; each
/// opens its Runtime API through `endpoints` when its process first starts.
pub fn start(
    config: &Config,
    handler: Arc<HandlerConfig>,
    account: Arc<AccountLimit>,
    endpoints: &Rc<dyn RuntimeEndpoints>,
    inherited: &Arc<BTreeMap<String, String>>,
    bootstrap: &Path,
    recorder: &crate::recorder::Recorder,
) -> (Addr<HandlerSupervisor>, Vec<Addr<EnvironmentActor>>) {
    let max_concurrency = handler.managed_instances.map_or(1, |m| m.max_concurrency);
    note_python_version(config, &handler);
    let mut environments = Vec::new();
    let supervisor = HandlerSupervisor::start_with(handler.clone(), account, |ctx| {
        let mut slots = Vec::new();
        for index in 0..handler.concurrency {
            let mut spec = crate::launch::spawn_spec(config, &handler, inherited, bootstrap);
            let env = Arc::make_mut(&mut spec.env);
            let stream = crate::launch::log_stream(&handler, index);
            crate::launch::name_worker(env, &format!("{}:{index}", handler.name), stream.as_deref());
            environment_variables(env, max_concurrency);
            let arn = crate::launch::function_arn(&handler, &spec.env);
            let address = ctx.address();
            let actor = EnvironmentActor::new(
                index,
                handler.clone(),
                spec,
                arn,
                address.clone().recipient(),
                address.recipient(),
                endpoints.clone(),
            )
            .recording(recorder.clone());
            let statuses: Vec<_> = (0..max_concurrency).map(|slot| actor.slot_status(slot)).collect();
            let addr = actor.start();
            environments.push(addr.clone());
            slots.extend(
                statuses
                    .into_iter()
                    .enumerate()
                    .map(|(slot, status)| (SlotAddr::Environment { addr: addr.clone(), slot }, status)),
            );
        }
        slots
    });
    (supervisor, environments)
}

/// What a managed-instances runtime reads: its concurrency, and AWS's fixed JSON log format.
fn environment_variables(env: &mut crate::worker_env::WorkerEnv, max_concurrency: usize) {
    env.insert("AWS_LAMBDA_MAX_CONCURRENCY".into(), max_concurrency.to_string());
    env.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
}

fn note_python_version(config: &Config, handler: &HandlerConfig) {
    let version = config.python_version.as_deref().and_then(|v| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    if version.is_some_and(|v| v < AWS_MINIMUM_PYTHON) {
        tracing::info!(
            handler = %handler.name,
            "managed instances run here on Python {}; AWS needs Python 3.13 or later for them",
            config.python_version.as_deref().unwrap_or("?")
        );
    }
}
