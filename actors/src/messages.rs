//! The messages between the HTTP edge, the router, the supervisors and the workers.

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::invocation::{Invocation, InvokeResult};
use crate::process::Exit;
use crate::status::{HandlerStatus, WorkerStatus};

/// Where an invocation's result goes. The edge holds the receiver: when its client goes away the
/// sender is closed, so a request still waiting in a queue is dropped instead of run.
pub type Reply = oneshot::Sender<InvokeResult>;

// ---- edge → router ----

/// The result of matching a request path: the handler and its path parameters.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub handler: String,
    pub url_path: String,
    pub event_format: smyth_config::EventFormat,
    pub path_params: Vec<(String, String)>,
    /// With tenant isolation: the request header that carries the tenant id.
    pub tenant_id_header: Option<String>,
}

/// Makes the invocation from the route's match (the edge builds the event), or refuses the request.
pub type BuildInvocation = Box<dyn FnOnce(&RouteMatch) -> Option<Invocation> + Send>;

/// Route a URL path; `build` makes the invocation from the match (the edge builds the event), or
/// refuses the request (None: it is dropped, and `build` has told the edge why).
/// No matching route is `Rejection::NotFound`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteRequest {
    pub path: String,
    pub build: BuildInvocation,
    pub reply: Reply,
}

/// Invoke a handler by name (the Lambda Invoke API).
#[derive(Message)]
#[rtype(result = "()")]
pub struct InvokeByName {
    pub name: String,
    pub invocation: Invocation,
    pub reply: Reply,
}

#[derive(Message)]
#[rtype(result = "Vec<HandlerStatus>")]
pub struct GetStatus;

/// Stop every worker: in-flight invocations get `grace` to finish, then processes are killed.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub grace: std::time::Duration,
}

// ---- Lambda API → router → supervisor: live concurrency changes ----
// They last until the server stops; the config file is never written.

/// Set (Some) or remove (None) a handler's reserved concurrency. `Err(NotFound)` for an unknown name.
#[derive(Message)]
#[rtype(result = "Result<(), crate::invocation::Rejection>")]
pub struct SetReservedConcurrency {
    pub name: String,
    pub reserved: Option<usize>,
}

/// Set a handler's provisioned concurrency (0 removes it). `Err(NotFound)` for an unknown name.
#[derive(Message)]
#[rtype(result = "Result<(), crate::invocation::Rejection>")]
pub struct SetProvisionedConcurrency {
    pub name: String,
    pub provisioned: usize,
}

// ---- watcher → router → supervisor ----

/// Project files changed: recycle every worker so the next invocation runs the new code.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reload;

// ---- router → supervisor ----

#[derive(Message)]
#[rtype(result = "()")]
pub struct Invoke {
    pub invocation: Invocation,
    pub reply: Reply,
}

// ---- supervisor → worker ----

/// Run one invocation; the worker answers on `reply` and tells its supervisor when it is done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Run {
    pub invocation: Invocation,
    pub reply: Reply,
}

/// Start the process ahead of any request (provisioned concurrency).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Warmup;

/// Replace the process (reload): stop it now if it is idle or starting, or right after the invocation in
/// flight. An invocation assigned meanwhile runs on a fresh process.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recycle;

/// The slot became provisioned (kept warm, never idles out) or on demand again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetProvisioned(pub bool);

// ---- worker → supervisor ----

/// The worker's state or counters changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerChanged {
    pub slot: usize,
    pub status: WorkerStatus,
    /// The invocation assigned to this slot has ended: the slot may take the next one.
    pub finished: bool,
    /// The process died during init with this error (for restart backoff).
    pub init_error: Option<(crate::invocation::FailureKind, String)>,
    /// An invocation ended (for the handler's metrics).
    pub ended: Option<crate::metrics::Ended>,
    /// The process finished its init in this long (for the handler's init durations).
    pub init_done: Option<std::time::Duration>,
}

// ---- Runtime API → worker ----

/// The event handed to the runtime by `/next`.
#[derive(Debug)]
pub struct NextEvent {
    pub request_id: String,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Aws-Tenant-Id`, with tenant isolation.
    pub tenant: Option<String>,
    pub payload: Bytes,
}

/// Who made a Runtime API call. Only the worker's own process tree may use its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A loopback TCP connection: its number (unique while the server runs) and the two ports, from
    /// which the worker finds the process at the other end.
    Tcp {
        connection: u64,
        /// The caller's port.
        port: u16,
        /// The worker's Runtime API port the call arrived on.
        local_port: u16,
    },
    /// The bundled runtime's Unix socket: the pid the kernel gave for the caller (SO_PEERCRED).
    Unix { pid: Option<u32> },
}

/// `GET /next`: answered on `reply` when an invocation arrives.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeApiError>")]
pub struct NextInvocation {
    pub peer: Peer,
    pub reply: oneshot::Sender<NextEvent>,
}

/// `POST /invocation/{id}/response` or `/error`.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeApiError>")]
pub struct PostResult {
    pub peer: Peer,
    pub request_id: String,
    pub body: Bytes,
    pub is_error: bool,
}

/// `GET /next` found its connection closed when the event arrived: the runtime never got it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Undelivered {
    pub request_id: String,
}

/// `POST /init/error`.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeApiError>")]
pub struct PostInitError {
    pub peer: Peer,
    pub error_type: String,
    pub body: Bytes,
}

/// A response larger than the Runtime API accepts: the invocation fails.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeApiError>")]
pub struct ResponseTooLarge {
    pub peer: Peer,
    pub request_id: String,
}

/// A line the worker's child printed (from its log pump thread).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OutputLine(pub String);

/// The worker's child exited (from its waiter thread).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    pub pid: u32,
    pub exit: Exit,
}

/// Runtime API errors, as the RIE reports them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("Invalid request ID")]
    InvalidRequestId,
    #[error("{0}")]
    InvalidStateTransition(String),
    /// The caller is not the worker's own process (or one of its descendants).
    #[error("{0}")]
    Forbidden(String),
}

impl RuntimeApiError {
    pub fn error_type(&self) -> &'static str {
        match self {
            RuntimeApiError::InvalidRequestId => "InvalidRequestID",
            RuntimeApiError::InvalidStateTransition(_) => "InvalidStateTransition",
            RuntimeApiError::Forbidden(_) => "AccessDeniedException",
        }
    }
}
