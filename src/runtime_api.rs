//! The Lambda Runtime API (`/2018-06-01/runtime/...`) that worker processes long-poll. One endpoint
//! per worker slot (`src/runtime_listener.rs`): the connection a request arrived on names the worker.

use actix::Addr;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use smyth_actors::endpoint::RuntimeTarget;
use smyth_actors::invocation::MAX_PAYLOAD;
use smyth_actors::managed::EnvironmentActor;
use smyth_actors::messages::Peer;
use smyth_actors::worker::WorkerActor;

use crate::http::ClientSocket;

mod calls;
mod managed;
pub mod wire;

use calls::{Call, Reply};

/// Who answers the endpoint a connection was accepted on: a worker, or a managed-instances
/// environment (connection data, set by `src/runtime_listener.rs`).
#[derive(Clone)]
pub struct RuntimeWorker(pub RuntimeTarget);

/// Who answers a Runtime API call: a worker, or a managed-instances environment (`managed.rs`).
#[derive(Clone, Copy)]
enum Target<'a> {
    Worker(&'a Addr<WorkerActor>),
    Environment(&'a Addr<EnvironmentActor>),
}

impl<'a> From<&'a RuntimeTarget> for Target<'a> {
    fn from(target: &'a RuntimeTarget) -> Self {
        match target {
            RuntimeTarget::Worker(addr) => Target::Worker(addr),
            RuntimeTarget::Environment(addr) => Target::Environment(addr),
        }
    }
}

/// The Runtime API's routes on an actix-web app: the TCP endpoints, and the client port (where no
/// worker answers them). Matched by hand (`calls::route`): a route with a segment is a regex match
/// per request, a tenth of the server's CPU on a no-op invocation.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope(calls::PREFIX).default_service(web::to(by_route)));
}

async fn by_route(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let call = match calls::route(req.method().as_str(), req.path()) {
        Ok(call) => call,
        Err(status) => return reply_response(Reply::unrouted(status)),
    };
    let Some(RuntimeWorker(target)) = req.conn_data::<RuntimeWorker>() else {
        return reply_response(Reply::unknown_worker());
    };
    let worker = Target::from(target);
    let peer = peer(&req);
    let reply = match call {
        Call::Next => calls::next(worker, peer, || ClientSocket::peer_closed(&req)).await,
        Call::RestoreNext => calls::restore_next(worker, peer).await,
        Call::Result { request_id, is_error } => {
            let body = read_limited(&req, payload).await;
            calls::post_result(worker, peer, request_id, is_error, body).await
        }
        Call::InitError | Call::RestoreError => {
            let error_type =
                req.headers().get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok());
            let body = read_limited(&req, payload).await;
            calls::init_error(worker, peer, call, error_type, body).await
        }
    };
    reply_response(reply)
}

/// The connection a call came on, for the worker's check that its caller is its own process.
fn peer(req: &HttpRequest) -> Peer {
    Peer::Tcp {
        connection: ClientSocket::of(req).map_or(u64::MAX, |(_, id)| id),
        port: req.peer_addr().map_or(0, |a| a.port()),
        local_port: req.app_config().local_addr().port(),
    }
}

fn reply_response(reply: Reply) -> HttpResponse {
    let json = HeaderValue::from_static("application/json");
    match reply {
        Reply::Json(status, body) if body.is_empty() => HttpResponse::build(status).finish(),
        Reply::Json(status, body) => {
            HttpResponse::build(status).insert_header((header::CONTENT_TYPE, json)).body(body)
        }
        Reply::Event(event) => {
            let mut resp = HttpResponse::Ok();
            resp.insert_header((header::CONTENT_TYPE, json))
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
    }
}

/// Reads the body up to `MAX_PAYLOAD`; None when it is larger.
pub async fn read_limited(req: &HttpRequest, mut payload: web::Payload) -> Option<web::Bytes> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
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
