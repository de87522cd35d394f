//! The Lambda Runtime API (`/2018-06-01/runtime/...`) that worker processes long-poll. One endpoint
//! per worker slot (`src/runtime_listener.rs`): the connection a request arrived on names the worker.

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use smyth_actors::endpoint::RuntimeTarget;
use smyth_actors::invocation::MAX_PAYLOAD;
use smyth_actors::managed::EnvironmentActor;
use smyth_actors::messages::{
    NextInvocation, Peer, PostInitError, PostResult, ResponseTooLarge, RuntimeApiError, Undelivered,
};
use smyth_actors::worker::{RestoreNext, WorkerActor};
use tokio::sync::oneshot;

use crate::http::ClientSocket;

/// Who answers the endpoint a connection was accepted on: a worker, or a managed-instances
/// environment (connection data, set by `src/runtime_listener.rs`).
#[derive(Clone)]
pub struct RuntimeWorker(pub RuntimeTarget);

/// The caller's pid on a Unix socket connection, from SO_PEERCRED (connection data).
#[derive(Clone, Copy)]
pub struct UnixCaller(pub Option<u32>);

/// Who answers a Runtime API call: a worker, or a managed-instances environment (`managed.rs`).
enum Target<'a> {
    Worker(&'a Addr<WorkerActor>),
    Environment(&'a Addr<EnvironmentActor>),
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/2018-06-01/runtime")
            .route("/invocation/next", web::get().to(next))
            .route("/init/error", web::post().to(init_error))
            .route("/restore/next", web::get().to(restore_next))
            .route("/restore/error", web::post().to(restore_error))
            // `/invocation/{id}/response` and `/error`, matched by hand: a route with a segment is
            // a regex match per request, a tenth of the server's CPU on a no-op invocation.
            .default_service(web::to(by_request_id)),
    );
}

/// Which result a path `/invocation/{id}/response` or `/invocation/{id}/error` posts, and its id.
fn result_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/2018-06-01/runtime/invocation/")?;
    let (id, kind) = rest.split_once('/')?;
    let is_error = match kind {
        "response" => false,
        "error" => true,
        _ => return None,
    };
    (!id.is_empty()).then_some((id, is_error))
}

async fn by_request_id(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    match result_path(req.path()) {
        Some((_, is_error)) if req.method() == actix_web::http::Method::POST => {
            post_result(req, payload, is_error).await
        }
        Some(_) => HttpResponse::MethodNotAllowed().finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

/// The worker (or environment) whose endpoint the request arrived on.
fn worker(req: &HttpRequest) -> Option<Target<'_>> {
    req.conn_data::<RuntimeWorker>().map(|target| match &target.0 {
        RuntimeTarget::Worker(addr) => Target::Worker(addr),
        RuntimeTarget::Environment(addr) => Target::Environment(addr),
    })
}

mod managed;

/// The connection a call came on, for the worker's check that its caller is its own process.
fn peer(req: &HttpRequest) -> Peer {
    if let Some(UnixCaller(pid)) = req.conn_data::<UnixCaller>() {
        return Peer::Unix { pid: *pid };
    }
    Peer::Tcp {
        connection: ClientSocket::of(req).map_or(u64::MAX, |(_, id)| id),
        port: req.peer_addr().map_or(0, |a| a.port()),
        local_port: req.app_config().local_addr().port(),
    }
}

fn unknown_worker() -> HttpResponse {
    api_error(StatusCode::NOT_FOUND, "UnknownWorker", "no worker on this endpoint")
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "errorMessage": message, "errorType": error_type }))
}

fn accepted() -> HttpResponse {
    HttpResponse::Accepted().content_type("application/json").body(r#"{"status":"OK"}"#)
}

fn answer(result: Result<Result<(), RuntimeApiError>, actix::MailboxError>) -> HttpResponse {
    match result {
        Ok(Ok(())) => accepted(),
        Ok(Err(err @ RuntimeApiError::InvalidRequestId)) => {
            api_error(StatusCode::BAD_REQUEST, err.error_type(), &err.to_string())
        }
        Ok(Err(err)) => api_error(StatusCode::FORBIDDEN, err.error_type(), &err.to_string()),
        Err(_) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "worker is gone"),
    }
}

async fn next(req: HttpRequest) -> HttpResponse {
    let Some(worker) = worker(&req) else { return unknown_worker() };
    let (reply, event) = oneshot::channel();
    match worker.send(NextInvocation { peer: peer(&req), reply }).await {
        Ok(Ok(())) => {}
        other => return answer(other),
    }
    let Ok(event) = event.await else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "worker stopped");
    };
    // actix keeps this handler alive when its runtime dies while parked here: hand the event back
    // rather than write it to a closed connection.
    if ClientSocket::peer_closed(&req) {
        worker.do_send(Undelivered { request_id: event.request_id });
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", "runtime disconnected");
    }
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/json")
        .insert_header(("Lambda-Runtime-Aws-Request-Id", event.request_id))
        .insert_header(("Lambda-Runtime-Deadline-Ms", event.deadline_ms.to_string()))
        .insert_header(("Lambda-Runtime-Invoked-Function-Arn", event.function_arn))
        .insert_header(("Lambda-Runtime-Trace-Id", event.trace_id));
    if let Some(context) = event.client_context {
        resp.insert_header(("Lambda-Runtime-Client-Context", context));
    }
    if let Some(tenant) = event.tenant {
        resp.insert_header(("Lambda-Runtime-Aws-Tenant-Id", tenant));
    }
    resp.body(event.payload)
}

/// Reads the body up to `MAX_PAYLOAD`; None when it is larger.
pub async fn read_limited(req: &HttpRequest, mut payload: web::Payload) -> Option<web::Bytes> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_PAYLOAD) {
        return None;
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > MAX_PAYLOAD {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body.freeze())
}

fn too_large() -> HttpResponse {
    let message = format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).");
    api_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", &message)
}

async fn post_result(req: HttpRequest, payload: web::Payload, is_error: bool) -> HttpResponse {
    let Some(worker) = worker(&req) else { return unknown_worker() };
    let request_id = result_path(req.path()).map_or("", |(id, _)| id).to_string();
    let peer = peer(&req);
    let Some(body) = read_limited(&req, payload).await else {
        return match worker.send(ResponseTooLarge { peer, request_id }).await {
            Ok(Err(err @ RuntimeApiError::Forbidden(_))) => answer(Ok(Err(err))),
            _ => too_large(),
        };
    };
    answer(worker.send(PostResult { peer, request_id, body, is_error }).await)
}

async fn init_error(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    report_init_error(req, payload, "Runtime.Unknown").await
}

/// SnapStart: an after-restore hook failed (the runtime exits 65 next).
async fn restore_error(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    report_init_error(req, payload, "Runtime.AfterRestoreError").await
}

/// SnapStart: init and the before-snapshot hooks are done; 200 once the environment is restored
/// (at once: the process is already the environment that an invocation waits for).
async fn restore_next(req: HttpRequest) -> HttpResponse {
    let Some(worker) = worker(&req) else { return unknown_worker() };
    let Target::Worker(worker) = worker else {
        // Managed instances have no SnapStart (a config error), so no environment restores.
        return api_error(StatusCode::FORBIDDEN, "InvalidStateTransition", "not a SnapStart environment");
    };
    match worker.send(RestoreNext { peer: peer(&req) }).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("application/json").body("{}"),
        other => answer(other),
    }
}

async fn report_init_error(req: HttpRequest, payload: web::Payload, default_type: &str) -> HttpResponse {
    let Some(worker) = worker(&req) else { return unknown_worker() };
    let error_type = req
        .headers()
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default_type)
        .to_string();
    let Some(body) = read_limited(&req, payload).await else {
        return too_large();
    };
    answer(worker.send(PostInitError { peer: peer(&req), error_type, body }).await)
}

#[cfg(test)]
mod tests {
    use super::result_path;

    #[test]
    fn result_paths_name_the_request_and_the_kind() {
        let cases = [
            ("/2018-06-01/runtime/invocation/abc-1/response", Some(("abc-1", false))),
            ("/2018-06-01/runtime/invocation/abc-1/error", Some(("abc-1", true))),
            ("/2018-06-01/runtime/invocation//response", None),
            ("/2018-06-01/runtime/invocation/abc/other", None),
            ("/2018-06-01/runtime/invocation/abc/response/more", None),
            ("/2018-06-01/runtime/invocation/abc", None),
            ("/2018-06-01/runtime/init/error", None),
        ];
        for (path, expected) in cases {
            assert_eq!(result_path(path), expected, "{path}");
        }
    }
}
