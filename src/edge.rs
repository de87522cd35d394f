//! The client port's middleware: applies the guard's verdicts (`Host`, `Origin`, head size) before any
//! route runs, bounds how long a request body may take to arrive, and spools large answers to disk.
//! It wraps the whole app, so the Invoke API and smyth's own routes are covered without each route
//! opting in; requests on a worker's Runtime API port pass through untouched (the peer check guards
//! those).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{header, Version};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use serde_json::json;

use crate::guard::{self, HostPolicy, Refusal, Route};
use crate::spool;

/// A request body must have arrived in full this long after its head: a client trickling bytes gets
/// 408 and its connection closed instead of holding it forever.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// What the middleware needs from the config, in the app's data.
pub struct EdgeRules {
    pub policy: HostPolicy,
    pub prefix: String,
}

/// The middleware (`actix_web::middleware::from_fn(edge::guard)`).
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let rules = req.app_data::<web::Data<EdgeRules>>().cloned();
    let Some(rules) = rules.filter(|_| !crate::http::on_runtime_port(req.request())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if head_size(&req) > guard::MAX_HEAD {
        return Ok(req.into_response(head_too_large()));
    }
    let route = guard::route_of(req.path(), &rules.prefix);
    if let Err(refusal) = check(&rules.policy, &req, route) {
        tracing::warn!(path = req.path(), "refused: {refusal}");
        return Ok(req.into_response(forbidden(&refusal, route)));
    }
    let timed_out = Rc::new(Cell::new(false));
    let payload = req.take_payload();
    if !matches!(payload, Payload::None) {
        let deadline = Deadline {
            payload,
            sleep: Box::pin(actix_rt::time::sleep(BODY_DEADLINE)),
            timed_out: timed_out.clone(),
        };
        let payload: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(deadline);
        req.set_payload(Payload::Stream { payload });
    }
    let res = next.call(req).await?.map_into_boxed_body();
    if timed_out.get() {
        return Ok(res.into_response(body_too_slow()));
    }
    spool_large(res).await
}

fn head_size(req: &ServiceRequest) -> usize {
    let version = if req.version() == Version::HTTP_10 { "HTTP/1.0" } else { "HTTP/1.1" };
    guard::head_size(req.method().as_str(), target_len(req.uri()), version, req.headers())
}

/// The length of the request target as sent (origin, absolute or authority form), without
/// formatting it.
fn target_len(uri: &actix_web::http::Uri) -> usize {
    let path = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => scheme.len() + "://".len() + authority.as_str().len(),
        (None, Some(authority)) => authority.as_str().len(),
        _ => 0,
    };
    origin + path
}

fn check(policy: &HostPolicy, req: &ServiceRequest, route: Route) -> Result<(), Refusal> {
    // An unreadable value is checked as the empty name, which no policy but "*" accepts.
    let hosts = req.headers().get_all(header::HOST).map(|v| v.to_str().unwrap_or(""));
    let target = req.uri().authority().map(|a| a.as_str());
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null"));
    policy.check(hosts.chain(target), origin, route)
}

fn forbidden(refusal: &Refusal, route: Route) -> HttpResponse {
    let mut res = HttpResponse::Forbidden();
    if route == Route::Invoke {
        // boto3 reads the error type from this header first.
        res.insert_header(("x-amzn-ErrorType", "AccessDeniedException"));
    }
    res.json(json!({ "Type": "User", "message": refusal.to_string() }))
}

fn head_too_large() -> HttpResponse {
    let message = format!("the request line and headers exceed {} bytes", guard::MAX_HEAD);
    HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .force_close()
        .json(json!({ "message": message }))
}

fn body_too_slow() -> HttpResponse {
    let message = format!("the request body did not arrive within {} s", BODY_DEADLINE.as_secs());
    HttpResponse::RequestTimeout().force_close().json(json!({ "message": message }))
}

/// Sends an answer over [`spool::SPOOL_AT`] from a temp file rather than from memory.
async fn spool_large(res: ServiceResponse<BoxBody>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !matches!(res.response().body().size(), BodySize::Sized(n) if n as usize > spool::SPOOL_AT) {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    let body = match body.try_into_bytes() {
        Ok(bytes) => spool::spool(bytes).await.unwrap_or_else(BoxBody::new),
        Err(body) => body,
    };
    Ok(ServiceResponse::new(req, res.set_body(body)))
}

/// A request body that fails once [`BODY_DEADLINE`] has passed, noting that it did so the answer can
/// be a 408.
struct Deadline {
    payload: Payload,
    sleep: Pin<Box<actix_rt::time::Sleep>>,
    timed_out: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.timed_out.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.payload).poll_next(cx) {
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out.set(true);
        let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow");
        Poll::Ready(Some(Err(PayloadError::Io(late))))
    }
}
