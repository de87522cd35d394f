//! The Runtime API's calls, whatever carries them: which call a method and path name ([`route`]), what
//! each does with the worker, and the [`Reply`] it gives. actix-web serves them on the TCP endpoints
//! (`super::configure`); the bundled runtime's Unix socket speaks HTTP/1.1 by hand (`super::wire`).

use actix_web::http::StatusCode;
use bytes::Bytes;
use smyth_actors::invocation::MAX_PAYLOAD;
use smyth_actors::messages::{
    NextEvent, NextInvocation, Peer, PostInitError, PostResult, ResponseTooLarge, RuntimeApiError,
    Undelivered,
};
use smyth_actors::worker::RestoreNext;
use tokio::sync::oneshot;

use super::Target;

/// Every path of the Runtime API starts so.
pub const PREFIX: &str = "/2018-06-01/runtime";

/// A Runtime API call, from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// `GET /invocation/next`
    Next,
    /// `POST /invocation/{id}/response` (or `/error`)
    Result { request_id: &'a str, is_error: bool },
    /// `POST /init/error`
    InitError,
    /// `GET /restore/next` (SnapStart)
    RestoreNext,
    /// `POST /restore/error` (SnapStart)
    RestoreError,
}

/// The call `method` and `path` name; 404 for a path the API does not have, 405 for the wrong method.
pub fn route<'a>(method: &str, path: &'a str) -> Result<Call<'a>, StatusCode> {
    let rest = path.strip_prefix(PREFIX).ok_or(StatusCode::NOT_FOUND)?;
    let (call, post) = match rest {
        "/invocation/next" => (Call::Next, false),
        "/init/error" => (Call::InitError, true),
        "/restore/next" => (Call::RestoreNext, false),
        "/restore/error" => (Call::RestoreError, true),
        _ => (result_call(rest).ok_or(StatusCode::NOT_FOUND)?, true),
    };
    match (method, post) {
        ("POST", true) | ("GET", false) => Ok(call),
        _ => Err(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// `/invocation/{id}/response` or `/invocation/{id}/error`.
fn result_call(rest: &str) -> Option<Call<'_>> {
    let (request_id, kind) = rest.strip_prefix("/invocation/")?.split_once('/')?;
    let is_error = match kind {
        "response" => false,
        "error" => true,
        _ => return None,
    };
    (!request_id.is_empty()).then_some(Call::Result { request_id, is_error })
}

/// What a call answers: an event for `/next`, else a JSON body.
pub enum Reply {
    Event(NextEvent),
    Json(StatusCode, Bytes),
}

impl Reply {
    pub fn accepted() -> Self {
        Reply::Json(StatusCode::ACCEPTED, Bytes::from_static(br#"{"status":"OK"}"#))
    }

    /// An error as the Runtime API gives it: `errorMessage` and `errorType`.
    pub fn error(status: StatusCode, error_type: &str, message: &str) -> Self {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        Reply::Json(status, Bytes::from(body.to_string()))
    }

    pub fn unknown_worker() -> Self {
        Self::error(StatusCode::NOT_FOUND, "UnknownWorker", "no worker on this endpoint")
    }

    pub fn too_large() -> Self {
        let message = format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).");
        Self::error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", &message)
    }

    /// A path the API does not have, or the wrong method for it.
    pub fn unrouted(status: StatusCode) -> Self {
        Reply::Json(status, Bytes::new())
    }
}

fn answer(result: Result<Result<(), RuntimeApiError>, actix::MailboxError>) -> Reply {
    match result {
        Ok(Ok(())) => Reply::accepted(),
        Ok(Err(err @ RuntimeApiError::InvalidRequestId)) => {
            Reply::error(StatusCode::BAD_REQUEST, err.error_type(), &err.to_string())
        }
        Ok(Err(err)) => Reply::error(StatusCode::FORBIDDEN, err.error_type(), &err.to_string()),
        Err(_) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "worker is gone"),
    }
}

/// `/next`: waits for the worker's next invocation. `hung_up` tells whether the runtime closed its
/// connection while it waited: the event then goes back to the worker rather than into a closed socket.
pub async fn next(worker: Target<'_>, peer: Peer, hung_up: impl FnOnce() -> bool) -> Reply {
    let (reply, event) = oneshot::channel();
    match worker.send(NextInvocation { peer, reply }).await {
        Ok(Ok(())) => {}
        other => return answer(other),
    }
    let Ok(event) = event.await else {
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "worker stopped");
    };
    if hung_up() {
        worker.do_send(Undelivered { request_id: event.request_id });
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "runtime disconnected");
    }
    Reply::Event(event)
}

/// A result or an invocation error; `body` is None when it was larger than the API accepts.
pub async fn post_result(
    worker: Target<'_>,
    peer: Peer,
    request_id: &str,
    is_error: bool,
    body: Option<Bytes>,
) -> Reply {
    let request_id = request_id.to_string();
    let Some(body) = body else {
        return match worker.send(ResponseTooLarge { peer, request_id }).await {
            Ok(Err(err @ RuntimeApiError::Forbidden(_))) => answer(Ok(Err(err))),
            _ => Reply::too_large(),
        };
    };
    answer(worker.send(PostResult { peer, request_id, body, is_error }).await)
}

/// `/init/error` or `/restore/error`: `error_type` from `Lambda-Runtime-Function-Error-Type`, else
/// the call's own default.
pub async fn init_error(
    worker: Target<'_>,
    peer: Peer,
    call: Call<'_>,
    error_type: Option<&str>,
    body: Option<Bytes>,
) -> Reply {
    let default_type = match call {
        Call::RestoreError => "Runtime.AfterRestoreError",
        _ => "Runtime.Unknown",
    };
    let error_type = error_type.unwrap_or(default_type).to_string();
    let Some(body) = body else { return Reply::too_large() };
    answer(worker.send(PostInitError { peer, error_type, body }).await)
}

/// SnapStart: init and the before-snapshot hooks are done; 200 once the environment is restored
/// (at once: the process is already the environment that an invocation waits for).
pub async fn restore_next(worker: Target<'_>, peer: Peer) -> Reply {
    let Target::Worker(worker) = worker else {
        // Managed instances have no SnapStart (a config error), so no environment restores.
        return Reply::error(StatusCode::FORBIDDEN, "InvalidStateTransition", "not a SnapStart environment");
    };
    match worker.send(RestoreNext { peer }).await {
        Ok(Ok(())) => Reply::Json(StatusCode::OK, Bytes::from_static(b"{}")),
        other => answer(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_paths_name_their_call() {
        let not_found = Err(StatusCode::NOT_FOUND);
        let wrong_method = Err(StatusCode::METHOD_NOT_ALLOWED);
        let result = |request_id, is_error| Ok(Call::Result { request_id, is_error });
        let cases = [
            ("GET", "/2018-06-01/runtime/invocation/next", Ok(Call::Next)),
            ("POST", "/2018-06-01/runtime/invocation/next", wrong_method),
            ("POST", "/2018-06-01/runtime/invocation/abc-1/response", result("abc-1", false)),
            ("POST", "/2018-06-01/runtime/invocation/abc-1/error", result("abc-1", true)),
            ("GET", "/2018-06-01/runtime/invocation/abc-1/response", wrong_method),
            ("POST", "/2018-06-01/runtime/invocation//response", not_found),
            ("POST", "/2018-06-01/runtime/invocation/abc/other", not_found),
            ("POST", "/2018-06-01/runtime/invocation/abc/response/more", not_found),
            ("POST", "/2018-06-01/runtime/invocation/abc", not_found),
            ("POST", "/2018-06-01/runtime/init/error", Ok(Call::InitError)),
            ("GET", "/2018-06-01/runtime/init/error", wrong_method),
            ("GET", "/2018-06-01/runtime/restore/next", Ok(Call::RestoreNext)),
            ("POST", "/2018-06-01/runtime/restore/error", Ok(Call::RestoreError)),
            ("PUT", "/2018-06-01/runtime/restore/error", wrong_method),
            ("GET", "/2018-06-01/runtime", not_found),
            ("GET", "/2015-03-31/functions/f/invocations", not_found),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }
}
