//! `EnvironmentActor`: one Lambda Managed Instances execution environment, used by the supervisor in
//! place of N worker actors. Every decision is `machine::step`; this actor owns the main process, its
//! scratch folder, the timers and the clock, finds which process made each Runtime API call, watches
//! the processes that hold invocations, and reports each slot to the supervisor as a worker would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use nix::sys::signal::Signal;
use smyth_config::HandlerConfig;

use super::machine::{self, Effect, Environment, Event, Facts, Job, Slot};
use super::status::EnvironmentStatus;
use crate::invocation::{LogSink, Outcome};
use crate::messages::*;
use crate::metrics::Ended;
use crate::process::{self, SpawnSpec};
use crate::status::epoch_ms;
use crate::worker::Stop;

/// How often the processes that hold invocations are checked for having died.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// `RunInSlot`: the supervisor's `Run`, for one slot of the environment.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunInSlot {
    pub slot: usize,
    pub run: Run,
}

/// The environment's latest state, for the supervisor's status.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EnvironmentChanged {
    pub index: usize,
    pub status: EnvironmentStatus,
}

pub struct EnvironmentActor {
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) handler: Arc<HandlerConfig>,
    spec: SpawnSpec,
    function_arn: String,
    supervisor: Recipient<WorkerChanged>,
    status_to: Recipient<EnvironmentChanged>,
    pub(super) env: Environment,
    shutting_down: bool,
    /// Where the environment's Runtime API comes from, and the endpoint once its first process started.
    endpoints: std::rc::Rc<dyn crate::endpoint::RuntimeEndpoints>,
    endpoint: Option<crate::endpoint::Endpoint>,
    /// Runtime API connections already traced to a process of the tree: connection → pid.
    pub(super) callers: HashMap<u64, u32>,
    /// The scratch folder (`TMPDIR`) of the current process tree, removed with it.
    pub(super) scratch: Option<tempfile::TempDir>,
    timers: HashMap<String, SpawnHandle>,
    watching: Option<SpawnHandle>,
    pub(super) invocations: u64,
    pub(super) cold_starts: u64,
    pub(super) last_used: Option<SystemTime>,
    log: Arc<crate::logs::WorkerLog>,
    /// Ended invocations and a finished init, for the supervisor's metrics with the next report.
    ended: Vec<Ended>,
    init_done: Option<Duration>,
    /// Its invocations' rows for the recorder.
    recording: super::recording::EnvironmentRecording,
}

impl EnvironmentActor {
    pub fn new(
        index: usize,
        handler: Arc<HandlerConfig>,
        spec: SpawnSpec,
        function_arn: String,
        supervisor: Recipient<WorkerChanged>,
        status_to: Recipient<EnvironmentChanged>,
        endpoints: std::rc::Rc<dyn crate::endpoint::RuntimeEndpoints>,
    ) -> Self {
        let name = format!("{}:{index}", handler.name);
        let max_concurrency = handler.managed_instances.map_or(1, |m| m.max_concurrency);
        Self {
            index,
            log: crate::logs::WorkerLog::new(&handler.name, &name),
            name,
            handler,
            spec,
            function_arn,
            supervisor,
            status_to,
            env: Environment::new(max_concurrency),
            shutting_down: false,
            endpoints,
            endpoint: None,
            callers: HashMap::new(),
            scratch: None,
            timers: HashMap::new(),
            watching: None,
            invocations: 0,
            cold_starts: 0,
            last_used: None,
            ended: Vec::new(),
            init_done: None,
            recording: super::recording::EnvironmentRecording::default(),
        }
    }

    /// Records this environment's invocations with `recorder`.
    pub fn recording(mut self, recorder: crate::recorder::Recorder) -> Self {
        self.recording = super::recording::EnvironmentRecording::new(recorder);
        self
    }

    fn facts(&self) -> Facts {
        Facts {
            now: Instant::now(),
            wall: SystemTime::now(),
            timeout: self.handler.timeout,
            init_timeout: self.handler.init_timeout,
            shutting_down: self.shutting_down,
        }
    }

    /// Feeds `event` through the machine, carries out its effects, and reports the change.
    pub(super) fn apply(
        &mut self,
        ctx: &mut Context<Self>,
        event: Event,
    ) -> Option<Result<(), RuntimeApiError>> {
        let (pid_before, kind_before) = (self.env.phase.pid(), self.kind());
        let facts = self.facts();
        let effects = machine::step(&mut self.env, event, &facts);
        if self.env.phase.pid() != pid_before {
            self.callers.clear();
        }
        let mut api = None;
        let mut reported = vec![false; self.env.slots.len()];
        for effect in effects {
            match effect {
                Effect::Api(answer) => api = Some(answer),
                Effect::SlotChanged { slot, finished } => {
                    reported[slot] = true;
                    self.report(slot, finished);
                }
                other => self.perform(ctx, other),
            }
        }
        // A change of the environment's state shows in every slot's view.
        if self.kind() != kind_before || self.env.phase.pid() != pid_before {
            for slot in (0..reported.len()).filter(|s| !reported[*s]) {
                self.report(slot, false);
            }
        }
        self.status_to.do_send(EnvironmentChanged { index: self.index, status: self.status() });
        self.watch_holders(ctx);
        api
    }

    fn report(&mut self, slot: usize, finished: bool) {
        let base = self.index * self.env.slots.len();
        self.supervisor.do_send(WorkerChanged {
            slot: base + slot,
            status: self.slot_status(slot),
            finished,
            init_error: None,
            ended: self.ended.pop(),
            init_done: self.init_done.take(),
        });
    }

    fn perform(&mut self, ctx: &mut Context<Self>, effect: Effect) {
        match effect {
            Effect::Spawn => self.spawn(ctx),
            Effect::Kill { pid, force } => {
                process::kill_group(pid, if force { Signal::SIGKILL } else { Signal::SIGTERM })
            }
            Effect::Deliver { waiter, request_id, deadline, invocation } => {
                self.invocations += 1;
                self.last_used = Some(SystemTime::now());
                let event = NextEvent {
                    trace_id: trace_id(&request_id),
                    request_id: request_id.clone(),
                    deadline_ms: epoch_ms(deadline),
                    function_arn: invocation.function_arn.unwrap_or_else(|| self.function_arn.clone()),
                    client_context: invocation.client_context,
                    payload: invocation.payload,
                    tenant: invocation.tenant,
                };
                if waiter.send(event).is_err() {
                    ctx.address().do_send(Undelivered { request_id });
                }
            }
            Effect::Answer { reply, outcome, duration, log } => self.answer(reply, outcome, duration, log),
            Effect::Refuse { reply } => {
                let _ = reply.send(Err(crate::invocation::Rejection::Unavailable));
            }
            Effect::ArmDeadline { request_id, after } => {
                let event = Event::Deadline { request_id: request_id.clone() };
                let handle = ctx.run_later(after, move |act, ctx| {
                    act.apply(ctx, event);
                });
                if let Some(old) = self.timers.insert(request_id, handle) {
                    ctx.cancel_future(old);
                }
            }
            Effect::ArmInit { pid, after } => {
                ctx.run_later(after, move |act, ctx| {
                    act.apply(ctx, Event::InitTimeout { pid });
                });
            }
            Effect::InitDone { duration } => {
                let ms = duration.as_secs_f64() * 1000.0;
                tracing::debug!(worker = %self.name, "environment initialised in {ms:.2} ms");
                self.init_done = Some(duration);
                self.recording.init_done(duration);
            }
            Effect::SlotChanged { .. } | Effect::Api(_) => {} // taken by `apply`
        }
    }

    /// Logs the REPORT line (when the code ran) and answers the caller.
    fn answer(&mut self, reply: Reply, outcome: Outcome, duration: Option<Duration>, log: Option<LogSink>) {
        let request_id = match &outcome {
            Outcome::Success { request_id, .. }
            | Outcome::HandlerError { request_id, .. }
            | Outcome::Failed { request_id, .. } => request_id.clone(),
        };
        // Its deadline timer may still fire: it then finds no such request and does nothing.
        self.timers.remove(&request_id);
        let by =
            super::recording::Answering { index: self.index, name: &self.name, pid: self.env.phase.pid() };
        self.recording.answered(&request_id, &outcome, duration, by);
        if let Outcome::Failed { error, message, .. } = &outcome {
            tracing::error!(handler = %self.handler.name, worker = %self.name, request_id = %request_id, error_type = error.error_type(), "{message}");
        }
        if let Some(duration) = duration {
            let ms = duration.as_secs_f64() * 1000.0;
            let report = format!(
                "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
                ms.ceil() as u64,
                self.handler.memory_size
            );
            tracing::info!(target: crate::logs::REPORT_TARGET, handler = %self.handler.name, worker = %self.name, request_id = %request_id, "{report}");
            // The platform's lines only: N processes write at once, so their output is not split
            // by invocation here (JSON lines carry their `requestId`).
            if let Some(log) = log {
                let _ = log.send(format!(
                    "START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n{report}\n"
                ));
            }
        }
        self.ended.push(Ended::of(&outcome, duration));
        let _ = reply.send(Ok(outcome));
    }

    fn spawn(&mut self, ctx: &mut Context<Self>) {
        let mut spec = self.spec.clone();
        let env = Arc::make_mut(&mut spec.env);
        env.insert("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "lambda-managed-instances".into());
        if let Err(message) = self.runtime_env(ctx, env) {
            tracing::error!(worker = %self.name, "{message}");
            ctx.address().do_send(SpawnResult(Event::SpawnFailed { message }));
            return;
        }
        // One scratch folder per process tree, shared by its processes as Lambda's `/tmp` is.
        self.scratch = crate::scratch::private_dir("lmi").ok();
        if let Some(dir) = &self.scratch {
            Arc::make_mut(&mut spec.env).insert("TMPDIR".into(), dir.path().to_string_lossy().into_owned());
        }
        let exits = ctx.address();
        self.log = crate::logs::WorkerLog::new(&self.handler.name, &self.name);
        let log = self.log.clone();
        let event = match process::spawn(
            &spec,
            &self.name,
            move |line| log.line(line),
            move |pid, exit| exits.do_send(ChildExited { pid, exit }),
        ) {
            Ok(spawned) => {
                self.cold_starts += 1;
                self.log.started(spawned.pid);
                Event::Spawned { pid: spawned.pid }
            }
            Err(err) => {
                tracing::error!(worker = %self.name, command = ?self.spec.argv, %err, "could not start the environment");
                Event::SpawnFailed { message: format!("could not start `{}`: {err}", self.spec.argv[0]) }
            }
        };
        ctx.address().do_send(SpawnResult(event));
    }

    /// Puts the Runtime API's address into `env`, opening the environment's endpoint first if it has
    /// none (as a worker slot does, `crate::worker::listen`); it lives as long as the environment.
    fn runtime_env(
        &mut self,
        ctx: &mut Context<Self>,
        env: &mut crate::worker_env::WorkerEnv,
    ) -> Result<(), String> {
        if self.endpoint.is_none() {
            let transport = crate::endpoint::transport_for(&self.handler.runtime);
            let target = crate::endpoint::RuntimeTarget::Environment(ctx.address());
            let endpoint = self.endpoints.open(target, transport).map_err(|err| {
                crate::worker::open_failure(&self.handler.name, &self.name, transport, &err)
            })?;
            self.endpoint = Some(endpoint);
        }
        env.extend(self.endpoint.iter().flat_map(|e| e.env.iter().cloned()));
        Ok(())
    }

    /// Checks the processes holding invocations every `WATCH_EVERY` while there are any: one that died
    /// fails its invocation, and the environment lives on.
    fn watch_holders(&mut self, ctx: &mut Context<Self>) {
        let holding = self.env.slots.iter().any(|s| s.holder().is_some());
        if holding && self.watching.is_none() {
            self.watching = Some(ctx.run_interval(WATCH_EVERY, |act, ctx| {
                let gone: Vec<u32> = act.env.slots.iter().filter_map(Slot::holder).filter(|p| process::doomed(*p)).collect();
                for pid in gone {
                    tracing::warn!(worker = %act.name, pid, "a process of the environment exited; its invocation fails, the environment lives on");
                    act.apply(ctx, Event::ProcessGone { pid });
                }
            }));
        } else if !holding {
            if let Some(handle) = self.watching.take() {
                ctx.cancel_future(handle);
            }
        }
    }
}

impl Actor for EnvironmentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
        self.status_to.do_send(EnvironmentChanged { index: self.index, status: self.status() });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(pid) = self.env.phase.pid() {
            process::kill_group(pid, Signal::SIGKILL);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct SpawnResult(Event);

impl Handler<SpawnResult> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, SpawnResult(event): SpawnResult, ctx: &mut Context<Self>) {
        self.apply(ctx, event);
    }
}

impl Handler<RunInSlot> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, msg: RunInSlot, ctx: &mut Context<Self>) {
        let job = Job {
            request_id: msg.run.invocation.request_id(),
            invocation: msg.run.invocation,
            reply: msg.run.reply,
        };
        self.recording.assigned(&job.request_id, &self.handler.name, &job.invocation);
        self.apply(ctx, Event::Run { slot: msg.slot, job });
    }
}

impl Handler<ChildExited> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        self.scratch = None;
        self.apply(ctx, Event::Exited { pid: msg.pid, exit: msg.exit.to_string() });
    }
}

impl Handler<Recycle> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, _: Recycle, ctx: &mut Context<Self>) {
        self.apply(ctx, Event::Recycle);
    }
}

impl Handler<Stop> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        self.shutting_down = true;
        self.apply(ctx, Event::Shutdown { force: msg.signal == Signal::SIGKILL });
    }
}

impl Handler<Warmup> for EnvironmentActor {
    type Result = ();

    /// Managed instances have no provisioned concurrency: nothing to warm ahead.
    fn handle(&mut self, _: Warmup, _: &mut Context<Self>) {}
}

impl Handler<SetProvisioned> for EnvironmentActor {
    type Result = ();

    fn handle(&mut self, _: SetProvisioned, _: &mut Context<Self>) {}
}

/// An X-Ray style trace header for the invocation (as the worker makes it).
fn trace_id(request_id: &str) -> String {
    let secs = epoch_ms(SystemTime::now()) / 1000;
    let hex: String = request_id.chars().filter(|c| *c != '-').take(24).collect();
    format!("Root=1-{secs:08x}-{hex};Parent={};Sampled=0", &hex[..16])
}
