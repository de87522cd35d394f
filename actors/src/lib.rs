//! `smyth-actors`: the concurrency model. A router picks the handler, one supervisor per handler owns
//! its worker actors, and each worker actor wraps one child process speaking the Lambda Runtime API.

pub mod async_queue;
pub mod backoff;
pub mod chaos;
pub mod config_diff;
pub mod containment;
pub mod endpoint;
pub mod fd_limit;
pub mod forkserver;
pub mod invocation;
pub mod launch;
pub mod lines;
pub mod logs;
pub mod managed;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod process;
pub mod recorder;
pub mod router;
pub mod sampler;
pub mod scratch;
pub mod shadow;
pub mod state;
pub mod status;
pub mod strategy;
pub mod supervisor;
pub mod tenancy;
pub mod watcher;
pub mod worker;
pub mod worker_env;

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
    /// Where every invocation is recorded.
    pub recorder: recorder::Recorder,
}

/// Starts one supervisor per handler with its workers (and each handler's shadow environment,
/// `shadow/`) on the current arbiter. A worker, shadow or managed-instances environment opens its
/// Runtime API through `endpoints` when its first process starts; `inherited` is the server's
/// environment. `bootstrap` is the bundled runtime's file (see [`launch::BootstrapFile`]).
pub fn start(
    config: &Config,
    endpoints: std::rc::Rc<dyn endpoint::RuntimeEndpoints>,
    inherited: &Arc<BTreeMap<String, String>>,
    bootstrap: &std::path::Path,
) -> Pools {
    let account = AccountLimit::new(config.account_concurrency);
    // One thread measures every worker process; it ends when the last worker is dropped.
    let sampler = sampler::Sampler::start();
    let recorder = recorder::Recorder::start(&config.record);
    // Held by the workers: it ends with the last of them.
    let zygotes =
        Arc::new(forkserver::zygote::Zygotes::new(&launch::server_env(config, inherited, bootstrap)));
    let mut routes = Vec::new();
    let mut supervisors = Vec::new();
    for handler in &config.handlers {
        let handler = Arc::new(handler.clone());
        if handler.managed_instances.is_some() {
            // One environment per `concurrency`, and no shadow.
            let (supervisor, _environments) = managed::start(
                config,
                handler.clone(),
                account.clone(),
                &endpoints,
                inherited,
                bootstrap,
                &recorder,
            );
            let chaos = chaos::HandlerChaos::new(&config.chaos, &handler.name).map(|c| c.admission_only());
            supervisor.do_send(supervisor::Equip { recorder: recorder.clone(), chaos });
            supervisors.push(supervisor.clone());
            routes.push(Route::new(&handler, supervisor));
            continue;
        }
        // One environment for all of the handler's workers, its shadow included.
        let spec = launch::spawn_spec(config, &handler, inherited, bootstrap);
        let arn = launch::function_arn(&handler, &spec.env);
        let template = launch::snap_template(&handler, &spec);
        let zygotes =
            launch::forks_from_zygote(config, &handler, template.is_some()).then(|| zygotes.clone());
        // Worker names and log streams differ between environments by design (state-leak check).
        let context = std::sync::Mutex::new(Vec::new());
        let make_worker = |slot: usize, sup| {
            let worker = WorkerActor::new(
                slot,
                handler.clone(),
                spec.clone(),
                arn.clone(),
                sup,
                sampler.clone(),
                endpoints.clone(),
            )
            .with_template(template.clone())
            .with_zygotes(zygotes.clone())
            .recording(recorder.clone());
            let mut context = context.lock().unwrap_or_else(|e| e.into_inner());
            context.extend(worker.log_stream().map(str::to_string));
            context.push(format!("{}:{slot}", handler.name));
            worker
        };
        let (supervisor, _workers) = HandlerSupervisor::start(handler.clone(), account.clone(), make_worker);
        if let Some(template) = &template {
            supervisor.do_send(supervisor::RecycleOnReload(template.clone()));
        }
        let chaos = chaos::HandlerChaos::new(&config.chaos, &handler.name);
        supervisor.do_send(supervisor::Equip { recorder: recorder.clone(), chaos });
        // Every handler has one shadow environment (`shadow/`), outside its pool.
        let leaks = shadow::Leaks::default();
        let slot = handler.concurrency;
        let stream = launch::log_stream(&handler, slot);
        let mut context = context.into_inner().unwrap_or_else(|e| e.into_inner());
        context.extend(stream.clone());
        context.push(format!("{}:shadow", handler.name));
        let shadow_worker = {
            let (handler, sampler, endpoints) = (handler.clone(), sampler.clone(), endpoints.clone());
            let (template, recorder) = (template.clone(), recorder.clone());
            move |sup| {
                WorkerActor::new(slot, handler, spec, arn, sup, sampler, endpoints)
                    .with_template(template)
                    .with_zygotes(zygotes)
                    .recording(recorder)
                    .outside_pool(stream)
            }
        };
        let runner = shadow::ShadowRunner::start(handler.name.clone(), context, leaks.clone(), shadow_worker);
        let check = (config.check_state && handler.check_state).then_some(handler.check_state_every);
        supervisor.do_send(supervisor::AttachShadow(shadow::ShadowHook::new(runner.clone(), leaks, check)));
        routes.push(Route::new(&handler, supervisor.clone()).with_shadow(runner));
        supervisors.push(supervisor);
    }
    let router = actix::Actor::start(RouterActor::new(routes));
    let async_queue = actix::Actor::start(async_queue::AsyncQueue::new(config, router.clone()));
    for supervisor in supervisors {
        supervisor.do_send(async_queue::WatchCapacity(async_queue.clone().recipient()));
    }
    let spool = async_queue::Spool::create();
    Pools { router, async_queue, spool, recorder }
}
