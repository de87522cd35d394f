//! `smyth-actors`: the concurrency model. A router picks the handler, one supervisor per handler owns
//! its worker actors, and each worker actor wraps one child process speaking the Lambda Runtime API.

pub mod async_queue;
pub mod backoff;
pub mod config_diff;
pub mod containment;
pub mod endpoint;
pub mod fd_limit;
pub mod invocation;
pub mod launch;
pub mod lines;
pub mod logs;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod process;
pub mod router;
pub mod sampler;
pub mod scratch;
pub mod state;
pub mod status;
pub mod strategy;
pub mod supervisor;
pub mod watcher;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use smyth_config::Config;

use router::{Route, RouterActor};
use supervisor::{AccountLimit, HandlerSupervisor};
use worker::WorkerActor;

/// Mailbox size of every actor: requests wait on a full mailbox rather than fail.
pub(crate) const MAILBOX_CAPACITY: usize = 4096;

/// The running actor world.
pub struct Pools {
    pub router: Addr<RouterActor>,
    /// Where accepted asynchronous events wait, and where their payloads are spooled.
    pub async_queue: Addr<async_queue::AsyncQueue>,
    pub spool: async_queue::Spool,
}

/// Starts one supervisor per handler with its workers on the current arbiter. A worker opens its
/// Runtime API through `endpoints` when its first process starts; `inherited` is the server's
/// environment. `bootstrap` is the bundled runtime's file (see [`launch::BootstrapFile`]).
pub fn start(
    config: &Config,
    endpoints: std::rc::Rc<dyn endpoint::RuntimeEndpoints>,
    inherited: &BTreeMap<String, String>,
    bootstrap: &std::path::Path,
) -> Pools {
    let account = AccountLimit::new(config.account_concurrency);
    // One thread measures every worker process; it ends when the last worker is dropped.
    let sampler = sampler::Sampler::start();
    let mut routes = Vec::new();
    let mut supervisors = Vec::new();
    for handler in &config.handlers {
        let handler = Arc::new(handler.clone());
        let (supervisor, _workers) =
            HandlerSupervisor::start(handler.clone(), account.clone(), |slot, sup| {
                let spec = launch::spawn_spec(config, &handler, slot, inherited, bootstrap);
                let arn = launch::function_arn(&handler, &spec.env);
                WorkerActor::new(slot, handler.clone(), spec, arn, sup, sampler.clone(), endpoints.clone())
            });
        supervisors.push(supervisor.clone());
        routes.push(Route::new(&handler, supervisor));
    }
    let router = actix::Actor::start(RouterActor::new(routes));
    let async_queue = actix::Actor::start(async_queue::AsyncQueue::new(config, router.clone()));
    for supervisor in supervisors {
        supervisor.do_send(async_queue::WatchCapacity(async_queue.clone().recipient()));
    }
    Pools { router, async_queue, spool: async_queue::Spool::create() }
}
