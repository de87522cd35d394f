//! What flows through the actors: one invocation in, one outcome out.

use std::time::{Duration, Instant};

/// AWS's payload limit, for request bodies, events and results alike (6 MB).
pub const MAX_PAYLOAD: usize = 6_291_556;

/// One Lambda invocation on its way to a worker.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The event JSON, as bytes, exactly as the runtime will receive it from `/next`.
    pub payload: bytes::Bytes,
    /// The client context JSON (`X-Amz-Client-Context`, decoded), for the runtime's header.
    pub client_context: Option<String>,
    /// The ARN the caller named, when it named one (`context.invoked_function_arn` keeps its region
    /// and account); else the worker's own ARN.
    pub function_arn: Option<String>,
    /// When the client asked (for queue time and the REPORT line).
    pub received: Instant,
    /// Where the invocation's log goes (`START` … `END`, `REPORT`) when the caller asked for it, as the
    /// Invoke API's `X-Amz-Log-Type: Tail` does; sent before the outcome.
    pub log: Option<LogSink>,
    /// The tenant id (`X-Amz-Tenant-Id`, or the route's tenant header) of a function with tenant
    /// isolation: only a worker bound to this tenant runs it.
    pub tenant: Option<String>,
    /// Where it came from, for its record (and the chaos faults injected into it).
    pub origin: crate::recorder::Origin,
}

impl Invocation {
    /// An invocation of `payload` with no context, tenant or log, arriving now (an Invoke API call
    /// in its plainest form: what table tests start from).
    pub fn of(payload: bytes::Bytes) -> Self {
        Invocation {
            payload,
            client_context: None,
            function_arn: None,
            received: Instant::now(),
            log: None,
            tenant: None,
            origin: Default::default(),
        }
    }

    /// Its request id: the one its caller was given, or a new one.
    pub fn request_id(&self) -> String {
        self.origin.request_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }
}

pub type LogSink = tokio::sync::mpsc::UnboundedSender<String>;

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The runtime posted `/response`: the handler's JSON result.
    Success { request_id: String, body: bytes::Bytes },
    /// The runtime posted `/error`: `{"errorMessage","errorType","stackTrace"}`.
    HandlerError { request_id: String, body: bytes::Bytes },
    /// The invocation failed outside the handler's code (timeout, crash, init failure, oversize result).
    Failed { request_id: String, error: FailureKind, message: String },
}

/// Failures decided by smyth, each with its AWS error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// `Sandbox.Timedout`.
    Timeout(Duration),
    /// `Runtime.ExitError`.
    Exited,
    /// `Runtime.OutOfMemory`.
    OutOfMemory,
    /// `Function.ResponseSizeTooLarge`.
    ResponseTooLarge,
    /// Init failed: the `Runtime.*` type reported to `/init/error` (or `Runtime.ExitError` if none).
    Init(String),
}

impl FailureKind {
    pub fn error_type(&self) -> &str {
        match self {
            FailureKind::Timeout(_) => "Sandbox.Timedout",
            FailureKind::Exited => "Runtime.ExitError",
            FailureKind::OutOfMemory => "Runtime.OutOfMemory",
            FailureKind::ResponseTooLarge => "Function.ResponseSizeTooLarge",
            FailureKind::Init(kind) => kind,
        }
    }
}

/// Why an invocation never reached a worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("function not found: {0}")]
    NotFound(String),
    /// Reserved concurrency exhausted (or zero).
    #[error("reserved concurrency exceeded")]
    ReservedConcurrency,
    /// The account-wide limit is hit.
    #[error("account concurrency exceeded")]
    AccountConcurrency,
    /// The handler's waiting queue is full.
    #[error("queue full")]
    QueueFull,
    /// The actor that held the request went away (restart or shutdown).
    #[error("server is shutting down or the handler restarted")]
    Unavailable,
}

pub type InvokeResult = Result<Outcome, Rejection>;
