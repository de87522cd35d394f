//! The client-facing HTTP surface: handler routes (`url_path`) and smyth's own endpoints.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Extensions;
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};

use actix::Addr;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use smyth_actors::invocation::{Invocation, Rejection};
use smyth_actors::messages::{RouteMatch, RouteRequest};
use smyth_actors::recorder::Source;
use smyth_actors::router::RouterActor;
use smyth_actors::tenancy::check_tenant;
use tokio::sync::oneshot;

use smyth_config::EventFormat;

use crate::apigw;
use crate::apigw::request::RequestSnapshot;
use crate::apigw::response::{self, GatewayError};
use crate::runtime_api::read_limited;

/// The client connection's socket, recorded at connect time so a waiting request can notice that its
/// client went away (actix-web does not cancel a handler when that happens), and a number that names
/// the connection for as long as the server runs (a descriptor is reused once closed; this is not).
#[derive(Clone, Copy)]
pub struct ClientSocket(RawFd, u64);

/// Connections accepted so far: the next connection's number.
static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ClientSocket {
    /// For each listener's `on_connect_ext`. Also turns Nagle off: the bootstrap pipelines its result
    /// with the next `/next`, and a small answer held back for an ACK would cost a delayed-ACK timeout.
    pub fn record(stream: &actix_web::rt::net::TcpStream, data: &mut Extensions) {
        let _ = stream.set_nodelay(true);
        let id = CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        data.insert(ClientSocket(stream.as_raw_fd(), id));
    }

    /// Whether the peer of `req`'s connection has closed it. The connection, and so its socket, lives
    /// as long as the request's handler. A peek that reads 0 bytes is the peer's close; no data yet
    /// (EAGAIN) or pipelined data is not.
    pub fn peer_closed(req: &HttpRequest) -> bool {
        let Some(ClientSocket(fd, _)) = req.conn_data::<ClientSocket>().copied() else { return false };
        let mut byte = [0u8; 1];
        match recv(fd, &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => true,
            Err(err) => err != Errno::EAGAIN,
            Ok(_) => false,
        }
    }

    /// The socket and number of `req`'s connection.
    pub fn of(req: &HttpRequest) -> Option<(RawFd, u64)> {
        req.conn_data::<ClientSocket>().map(|s| (s.0, s.1))
    }

    /// Resolves once the peer has closed the connection; checks every 50 ms, so answers that come
    /// quickly never pay for it.
    async fn hung_up(req: &HttpRequest) {
        if req.conn_data::<ClientSocket>().is_none() {
            return std::future::pending().await;
        }
        loop {
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            if Self::peer_closed(req) {
                return;
            }
        }
    }
}

/// Extracted by every client route: refuses a request that arrived on a worker's Runtime API port,
/// since one server listens on both kinds of port.
pub struct ClientPort;

impl FromRequest for ClientPort {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(match on_runtime_port(req) {
            true => Err(actix_web::error::ErrorNotFound("this port serves the Lambda Runtime API only")),
            false => Ok(ClientPort),
        })
    }
}

/// Whether `req` arrived on a worker's Runtime API port rather than the client port.
pub fn on_runtime_port(req: &HttpRequest) -> bool {
    req.conn_data::<crate::runtime_api::RuntimeWorker>().is_some()
}

/// What every client route needs.
#[derive(Clone)]
pub struct Edge {
    pub router: Addr<RouterActor>,
    /// Invocations are recorded: keep the HTTP request each came from.
    pub recording: bool,
}

/// smyth's own endpoints under `prefix`, and every other path to the handlers.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    crate::endpoints::configure(cfg, prefix);
    cfg.default_service(web::to(dispatch));
}

/// Any request on a handler's `url_path`: snapshot the request, let the router's match pick the event
/// format, invoke, map the result back by that format's rules.
async fn dispatch(
    _: ClientPort,
    req: HttpRequest,
    payload: web::Payload,
    edge: web::Data<Edge>,
) -> Result<HttpResponse, GatewayError> {
    let received = Instant::now();
    let body = read_limited(&req, payload).await.ok_or(GatewayError::PayloadTooLarge)?;
    let path = percent_decode_str(req.path()).decode_utf8_lossy().into_owned();
    // Shared with the record, which writes it out on the recorder's thread.
    let request = Arc::new(RequestSnapshot::capture(&req, body));
    let origin = crate::recorder::origin(Source::Http, edge.recording, || request.clone());
    // The matched format (or why the request cannot be an event of it), from the router's thread.
    let (matched_tx, matched) = oneshot::channel::<Result<EventFormat, String>>();
    let build = Box::new(move |route: &RouteMatch| {
        let tenant = route_tenant(&request, route);
        let event = tenant.as_ref().map_err(Clone::clone).and_then(|_| apigw::event_payload(&request, route));
        let _ = matched_tx.send(event.as_ref().map(|_| route.event_format).map_err(Clone::clone));
        Some(Invocation {
            payload: event.ok()?,
            client_context: None,
            function_arn: None,
            received,
            log: None,
            tenant: tenant.ok()?,
            origin,
        })
    });
    let (reply, answer) = oneshot::channel();
    edge.router.do_send(RouteRequest { path, build, reply });
    let exchange = async {
        let format = match matched.await {
            Ok(Ok(format)) => format,
            Ok(Err(problem)) => return Ok(response::bad_request(&problem)),
            // Never built: no route matched (or the router went away); the answer says which.
            Err(_) => EventFormat::ApiGwV2,
        };
        let outcome = answer.await.unwrap_or(Err(Rejection::Unavailable))?;
        Ok(apigw::outcome_response(format, outcome))
    };
    tokio::select! {
        response = exchange => response,
        // Dropping `answer` tells the supervisor: a request still queued is then not run.
        _ = ClientSocket::hung_up(&req) => Ok(HttpResponse::RequestTimeout().finish()),
    }
}

/// The tenant of a request on a route with tenant isolation: its `tenant_id_header` (AWS's checks);
/// None on other routes, where that header is just a header.
fn route_tenant(request: &RequestSnapshot, route: &RouteMatch) -> Result<Option<String>, String> {
    let Some(header) = &route.tenant_id_header else { return Ok(None) };
    check_tenant(request.header(header), true)
        .map_err(|problem| format!("InvalidParameterValueException: {problem} (header `{header}`)"))
}
