//! Where an invocation came from, carried on the [`crate::invocation::Invocation`] for its record:
//! the source (route, Invoke API, async, CLI, or another developer's shadow and replay runs), the
//! HTTP request it was made from, and the chaos faults injected into it.

use std::sync::Arc;

/// The `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// A handler's `url_path` route.
    Http,
    /// The Lambda Invoke API, `RequestResponse`.
    #[default]
    Invoke,
    /// The Invoke API's `Event` (the async queue).
    Async,
    /// `smyth invoke`.
    Cli,
    /// A throwaway environment's run (the state-leak detector).
    Shadow,
    /// `smyth replay`.
    Replay,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Invoke => "invoke",
            Source::Async => "async",
            Source::Cli => "cli",
            Source::Shadow => "shadow",
            Source::Replay => "replay",
        }
    }
}

/// The HTTP request an invocation came from, kept as it is on the request path and written as JSON
/// (`method`, `path`, `query`, `headers`, `body`, `isBase64Encoded`, bodies cut) by the recorder's
/// thread: building that JSON on the request path cost a no-op invocation more than its row.
pub trait HttpRequestRecord: Send + Sync + std::fmt::Debug {
    fn to_json(&self) -> String;
}

/// What the record needs to know of an invocation beside its event.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source: Source,
    /// The HTTP request it came from.
    pub http_request: Option<Arc<dyn HttpRequestRecord>>,
    /// The faults chaos mode injected (set by the supervisor).
    pub chaos: Option<Box<crate::chaos::Injected>>,
    /// The request id the caller was already given (an async event's 202 `x-amzn-RequestId`): the
    /// handler's `context.aws_request_id` and the record's id, as on AWS.
    pub request_id: Option<String>,
}

impl Origin {
    pub fn new(source: Source) -> Self {
        Origin { source, ..Origin::default() }
    }
}
