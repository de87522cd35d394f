//! `AsyncQueue`: where accepted asynchronous (`Event`) invocations wait until they run. AWS never
//! loses an accepted event to a throttle: it keeps it and tries again when capacity frees (for up to
//! `maximum_event_age`), and only a function error uses up one of `maximum_retry_attempts`. One
//! queue serves every function, bounded by `async_queue_size`; each function's events run in
//! arrival order, at most its pool's size at once, so the sync queue stays free for sync callers.

mod ending;
mod record;
mod spool;
mod verdict;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;
use smyth_config::{Config, Destination};
use tokio::sync::oneshot;

use crate::invocation::{Invocation, InvokeResult, Outcome, Rejection};
use crate::messages::{InvokeByName, Shutdown};
use crate::router::RouterActor;
pub use ending::SetEventInvokeConfig;
pub use record::{invocation_record, Condition, Ending, Response};
pub use spool::{Payload, Spool, SPOOL_THRESHOLD};
pub use verdict::{throttle_backoff, verdict, Attempt, Policy, Verdict};

/// How often waiting events are checked for age, and throttled functions whose backoff is over tried
/// again even if no supervisor said capacity freed.
const SWEEP: Duration = Duration::from_secs(1);

/// Accept an event, or refuse it at once when the queue is full.
#[derive(Message)]
#[rtype(result = "Result<String, Refused>")]
pub struct Enqueue {
    pub function: String,
    pub payload: Payload,
    pub client_context: Option<String>,
    /// The ARN the caller named, for `context.invoked_function_arn`.
    pub function_arn: Option<String>,
    /// The tenant id, for a function with tenant isolation.
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the asynchronous event queue is full")]
    Full,
    #[error("smyth is shutting down")]
    ShuttingDown,
}

/// A handler's supervisor freed a slot: throttled events may run now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CapacityFreed {
    pub handler: String,
}

/// Tells a supervisor whom to notify with [`CapacityFreed`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchCapacity(pub Recipient<CapacityFreed>);

/// How many events wait per function (to run, or to be retried; not those running), for the status.
#[derive(Message)]
#[rtype(result = "HashMap<String, usize>")]
pub struct GetQueued;

struct Event {
    seq: u64,
    request_id: String,
    function: String,
    payload: Payload,
    client_context: Option<String>,
    function_arn: Option<String>,
    tenant: Option<String>,
    accepted: Instant,
    /// Function errors so far.
    failures: u32,
    /// Attempts that reached the function, and what the last one answered (for the destination).
    invocations: u32,
    last_response: Option<Response>,
}

struct Function {
    policy: Policy,
    /// The most of its events in flight at once: its pool's size.
    slots: usize,
    /// Waiting events, oldest first.
    ready: VecDeque<Event>,
    in_flight: usize,
    /// The last attempt was throttled: wait until capacity frees.
    blocked: Option<Blocked>,
    /// Throttled attempts in a row.
    throttles: u32,
    on_success: Option<Destination>,
    on_failure: Option<Destination>,
    /// For the status's `async_events`: retries after a function error, events dropped for good.
    retried: u64,
    dropped: u64,
}

struct Blocked {
    reason: Rejection,
    /// Try again then even if no slot frees.
    retry_at: Instant,
}

impl Function {
    /// Puts an event back in arrival order (a retried or throttled event is older than most).
    fn requeue(&mut self, event: Event) {
        let at = self.ready.partition_point(|e| e.seq < event.seq);
        self.ready.insert(at, event);
    }
}

/// Where an event is while it is not in its function's `ready` queue.
enum Parked {
    InFlight(Event),
    Retrying(Event),
}

pub struct AsyncQueue {
    router: Addr<RouterActor>,
    functions: HashMap<String, Function>,
    /// `async_queue_size`: accepted events not yet finished, at most.
    capacity: usize,
    held: usize,
    next_seq: u64,
    parked: HashMap<u64, Parked>,
    shutting_down: bool,
    /// For destination records' `functionArn`, and `file:` destinations set at run time.
    region: String,
    root: std::path::PathBuf,
}

impl AsyncQueue {
    pub fn new(config: &Config, router: Addr<RouterActor>) -> Self {
        let functions = config
            .handlers
            .iter()
            .map(|h| {
                let policy = Policy {
                    maximum_retry_attempts: h.maximum_retry_attempts,
                    retry_delay: h.retry_delay,
                    maximum_event_age: h.maximum_event_age,
                };
                let function = Function {
                    policy,
                    slots: h.concurrency.max(1),
                    ready: VecDeque::new(),
                    in_flight: 0,
                    blocked: None,
                    throttles: 0,
                    on_success: h.on_success.clone(),
                    on_failure: h.on_failure.clone(),
                    retried: 0,
                    dropped: 0,
                };
                (h.name.clone(), function)
            })
            .collect();
        Self {
            router,
            functions,
            capacity: config.async_queue_size,
            held: 0,
            next_seq: 0,
            parked: HashMap::new(),
            shutting_down: false,
            region: config.env.get("AWS_REGION").cloned().unwrap_or_else(|| "eu-central-1".into()),
            root: config.root.clone(),
        }
    }

    /// Starts as many of `name`'s waiting events as it has room for.
    fn pump(&mut self, name: &str, ctx: &mut Context<Self>) {
        loop {
            let Some(function) = self.functions.get_mut(name) else { return };
            if self.shutting_down || function.blocked.is_some() || function.in_flight >= function.slots {
                return;
            }
            let Some(event) = function.ready.pop_front() else { return };
            let age = event.accepted.elapsed();
            if verdict(Attempt::Waiting, event.failures, age, &function.policy) == Verdict::TooOld {
                self.finish(event, Verdict::TooOld, "", ctx);
                continue;
            }
            function.in_flight += 1;
            self.attempt(event, ctx);
        }
    }

    /// Sends the event to its function; the result comes back to [`Self::attempted`].
    fn attempt(&mut self, event: Event, ctx: &mut Context<Self>) {
        let (seq, source, client_context) = (event.seq, event.payload.source(), event.client_context.clone());
        let request_id = event.request_id.clone();
        let (function_arn, tenant) = (event.function_arn.clone(), event.tenant.clone());
        let (router, name) = (self.router.clone(), event.function.clone());
        self.parked.insert(seq, Parked::InFlight(event));
        let run = async move {
            let payload = match source.load().await {
                Ok(payload) => payload,
                Err(err) => {
                    return (Attempt::Lost, format!("cannot read its spooled payload: {err}"), None, None)
                }
            };
            let (reply, answer) = oneshot::channel();
            let origin = crate::recorder::Origin {
                request_id: Some(request_id),
                ..crate::recorder::Origin::new(crate::recorder::Source::Async)
            };
            let received = Instant::now();
            let invocation =
                Invocation { payload, client_context, function_arn, received, log: None, tenant, origin };
            router.do_send(InvokeByName { name, invocation, reply });
            classify(answer.await.unwrap_or(Err(Rejection::Unavailable)))
        };
        ctx.spawn(run.into_actor(self).map(move |(attempt, detail, throttle, response), act, ctx| {
            act.attempted(seq, attempt, &detail, throttle, response, ctx)
        }));
    }

    fn attempted(
        &mut self,
        seq: u64,
        attempt: Attempt,
        detail: &str,
        throttle: Option<Rejection>,
        response: Option<Response>,
        ctx: &mut Context<Self>,
    ) {
        let Some(Parked::InFlight(mut event)) = self.parked.remove(&seq) else { return };
        if response.is_some() {
            event.invocations += 1;
            event.last_response = response;
        }
        let name = event.function.clone();
        let Some(function) = self.functions.get_mut(&name) else { return };
        function.in_flight -= 1;
        let decision = verdict(attempt, event.failures, event.accepted.elapsed(), &function.policy);
        if self.shutting_down && decision != Verdict::Done {
            // Counted as in flight in the shutdown warning.
            self.held -= 1;
            return;
        }
        match decision {
            Verdict::RetryAfter(pause) => {
                function.throttles = 0;
                function.retried += 1;
                event.failures += 1;
                tracing::warn!(function = %name, request_id = %event.request_id, "asynchronous invocation failed ({detail}); retrying in {pause:?}");
                self.parked.insert(seq, Parked::Retrying(event));
                ctx.run_later(pause, move |act, ctx| act.retry_due(seq, ctx));
            }
            Verdict::Requeue => {
                tracing::debug!(function = %name, request_id = %event.request_id, "asynchronous event throttled; waiting for capacity");
                function.throttles += 1;
                let retry_at = Instant::now() + throttle_backoff(function.throttles);
                function.blocked =
                    Some(Blocked { reason: throttle.unwrap_or(Rejection::Unavailable), retry_at });
                function.requeue(event);
            }
            done => {
                function.throttles = 0;
                self.finish(event, done, detail, ctx);
            }
        }
        self.pump(&name, ctx);
    }

    fn retry_due(&mut self, seq: u64, ctx: &mut Context<Self>) {
        let Some(Parked::Retrying(event)) = self.parked.remove(&seq) else { return };
        let name = event.function.clone();
        if let Some(function) = self.functions.get_mut(&name) {
            function.requeue(event);
        }
        self.pump(&name, ctx);
    }

    /// Drops events that waited too long, and tries throttled functions again once their backoff is over.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let mut expired = Vec::new();
        let now = Instant::now();
        for function in self.functions.values_mut() {
            let policy = function.policy;
            let (old, young): (Vec<_>, Vec<_>) = function.ready.drain(..).partition(|e| {
                verdict(Attempt::Waiting, e.failures, e.accepted.elapsed(), &policy) == Verdict::TooOld
            });
            function.ready = young.into();
            expired.extend(old);
            if function.blocked.as_ref().is_some_and(|b| now >= b.retry_at) {
                function.blocked = None;
            }
        }
        for event in expired {
            self.finish(event, Verdict::TooOld, "", ctx);
        }
        self.pump_all(ctx);
    }

    fn pump_all(&mut self, ctx: &mut Context<Self>) {
        let names: Vec<String> = self.functions.keys().cloned().collect();
        for name in names {
            self.pump(&name, ctx);
        }
    }

    /// Takes an event in (from a client, or a destination record for a `handler:` destination).
    fn accept(
        &mut self,
        name: &str,
        payload: Payload,
        client_context: Option<String>,
        function_arn: Option<String>,
        tenant: Option<String>,
        ctx: &mut Context<Self>,
    ) -> Result<String, Refused> {
        if self.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        if self.held >= self.capacity {
            return Err(Refused::Full);
        }
        let Some(function) = self.functions.get_mut(name) else { return Err(Refused::ShuttingDown) };
        self.held += 1;
        self.next_seq += 1;
        let request_id = uuid::Uuid::new_v4().to_string();
        function.ready.push_back(Event {
            seq: self.next_seq,
            request_id: request_id.clone(),
            function: name.to_string(),
            payload,
            client_context,
            function_arn,
            tenant,
            accepted: Instant::now(),
            failures: 0,
            invocations: 0,
            last_response: None,
        });
        self.pump(name, ctx);
        Ok(request_id)
    }

    fn waiting(&self) -> usize {
        let retrying = self.parked.values().filter(|p| matches!(p, Parked::Retrying(_))).count();
        self.functions.values().map(|f| f.ready.len()).sum::<usize>() + retrying
    }
}

/// An attempt's result as the verdict sees it, a line for the log, the throttle's reason, and what
/// the function answered when it ran.
fn classify(result: InvokeResult) -> (Attempt, String, Option<Rejection>, Option<Response>) {
    match result {
        Ok(Outcome::Success { body, .. }) => {
            let response = Response { body: body.to_vec(), function_error: false };
            (Attempt::Succeeded, String::new(), None, Some(response))
        }
        Ok(Outcome::HandlerError { body, .. }) => {
            let response = Response { body: body.to_vec(), function_error: true };
            (Attempt::FunctionError, String::from_utf8_lossy(&body).into_owned(), None, Some(response))
        }
        Ok(Outcome::Failed { error, message, .. }) => {
            let body = serde_json::json!({"errorMessage": message, "errorType": error.error_type()});
            let response = Response { body: body.to_string().into_bytes(), function_error: true };
            (Attempt::FunctionError, format!("{}: {message}", error.error_type()), None, Some(response))
        }
        Err(Rejection::NotFound(name)) => (Attempt::Lost, format!("function not found: {name}"), None, None),
        // Unavailable: the supervisor is shutting down or restarted; the event waits like a throttled one.
        Err(throttle) => (Attempt::Throttled, throttle.to_string(), Some(throttle), None),
    }
}

impl Actor for AsyncQueue {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(crate::MAILBOX_CAPACITY);
        ctx.run_interval(SWEEP, |act, ctx| act.sweep(ctx));
    }
}

impl Handler<Enqueue> for AsyncQueue {
    type Result = Result<String, Refused>;

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) -> Self::Result {
        self.accept(&msg.function, msg.payload, msg.client_context, msg.function_arn, msg.tenant, ctx)
    }
}

impl Handler<CapacityFreed> for AsyncQueue {
    type Result = ();

    /// The handler's own throttles end; so do account-limit throttles anywhere (any slot frees it).
    fn handle(&mut self, msg: CapacityFreed, ctx: &mut Context<Self>) {
        let mut freed = Vec::new();
        for (name, function) in &mut self.functions {
            let Some(blocked) = &function.blocked else { continue };
            if *name == msg.handler || blocked.reason == Rejection::AccountConcurrency {
                function.blocked = None;
                freed.push(name.clone());
            }
        }
        for name in freed {
            self.pump(&name, ctx);
        }
    }
}

impl Handler<GetQueued> for AsyncQueue {
    type Result = MessageResult<GetQueued>;

    fn handle(&mut self, _: GetQueued, _: &mut Context<Self>) -> Self::Result {
        let mut counts: HashMap<String, usize> =
            self.functions.iter().map(|(name, f)| (name.clone(), f.ready.len())).collect();
        for parked in self.parked.values() {
            if let Parked::Retrying(event) = parked {
                *counts.entry(event.function.clone()).or_default() += 1;
            }
        }
        MessageResult(counts)
    }
}

/// Per function: events waiting now, retried and dropped so far (the status's `async_events`).
#[derive(Message)]
#[rtype(result = "HashMap<String, crate::metrics::AsyncEvents>")]
pub struct GetAsyncEvents;

impl Handler<GetAsyncEvents> for AsyncQueue {
    type Result = MessageResult<GetAsyncEvents>;

    fn handle(&mut self, _: GetAsyncEvents, ctx: &mut Context<Self>) -> Self::Result {
        let MessageResult(queued) = <Self as Handler<GetQueued>>::handle(self, GetQueued, ctx);
        let events = self.functions.iter().map(|(name, f)| {
            let queued = queued.get(name).copied().unwrap_or(0) as u64;
            (name.clone(), crate::metrics::AsyncEvents { queued, retried: f.retried, dropped: f.dropped })
        });
        MessageResult(events.collect())
    }
}

impl Handler<Shutdown> for AsyncQueue {
    type Result = ();

    /// Stops dispatching; what still waits is counted in one warning and dropped (spool files too).
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        let waiting = self.waiting();
        let in_flight = self.parked.values().filter(|p| matches!(p, Parked::InFlight(_))).count();
        if waiting > 0 {
            tracing::warn!(waiting, in_flight, "asynchronous events still waiting at shutdown are dropped");
        }
        for function in self.functions.values_mut() {
            function.ready.clear();
        }
        self.parked.retain(|_, parked| matches!(parked, Parked::InFlight(_)));
        self.held = self.parked.len();
    }
}
