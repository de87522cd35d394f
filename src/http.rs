//! The client-facing HTTP surface: handler routes (`url_path`) and smyth's own endpoints.

use std::time::Instant;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use smyth_actors::invocation::{Invocation, Rejection};
use smyth_actors::messages::{GetStatus, RouteMatch, RouteRequest};
use smyth_actors::router::RouterActor;
use tokio::sync::oneshot;

use crate::apigw::event;
use crate::apigw::response::{self, GatewayError};
use crate::runtime_api::read_limited;

/// What every client route needs.
#[derive(Clone)]
pub struct Edge {
    pub router: Addr<RouterActor>,
}

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    let prefix = prefix.trim_end_matches('/');
    cfg.route(&format!("{prefix}/status"), web::get().to(status))
        .route(&format!("{prefix}/api/status"), web::get().to(status))
        .default_service(web::to(dispatch));
}

async fn status(edge: web::Data<Edge>) -> HttpResponse {
    match edge.router.send(GetStatus).await {
        Ok(handlers) => {
            let handlers: serde_json::Map<String, serde_json::Value> = handlers
                .into_iter()
                .map(|h| (h.name.clone(), serde_json::to_value(&h).unwrap_or_default()))
                .collect();
            HttpResponse::Ok().json(serde_json::json!({ "handlers": handlers }))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(serde_json::json!({"message": "shutting down"})),
    }
}

/// Any request on a handler's `url_path`: build the event, invoke, map the result back.
async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    edge: web::Data<Edge>,
) -> Result<HttpResponse, GatewayError> {
    let received = Instant::now();
    let body = read_limited(&req, payload).await.ok_or(GatewayError::PayloadTooLarge)?;
    let path = percent_decode_str(req.path()).decode_utf8_lossy().into_owned();
    let mut event = event::request_event(&req, &body);
    let build = Box::new(move |route: &RouteMatch| {
        let info = event::RouteInfo { url_path: &route.url_path, path_params: &route.path_params };
        event::apply_route(&mut event, &info);
        Invocation {
            payload: serde_json::to_vec(&event).unwrap_or_default().into(),
            client_context: None,
            received,
        }
    });
    let (reply, answer) = oneshot::channel();
    edge.router.do_send(RouteRequest { path, build, reply });
    // Dropped with this future when the client disconnects: a queued request is then not run.
    let outcome = answer.await.unwrap_or(Err(Rejection::Unavailable))?;
    Ok(response::outcome_response(outcome))
}
