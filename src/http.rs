//! The client-facing HTTP surface: handler routes (`url_path`) and smyth's own endpoints.

use std::time::Instant;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use smyth_actors::invocation::Invocation;
use smyth_actors::messages::{GetStatus, RouteMatch, RouteRequest};
use smyth_actors::router::RouterActor;

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
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"message": "shutting down"}))
        }
    }
}

/// Any request on a handler's `url_path`: build the event, invoke, map the result back.
async fn dispatch(req: HttpRequest, payload: web::Payload, edge: web::Data<Edge>) -> HttpResponse {
    let received = Instant::now();
    let Some(body) = read_limited(&req, payload).await else {
        return shim::too_large();
    };
    let path = shim::decoded_path(&req);
    let event = shim::EventParts::new(&req, &body);
    let build = Box::new(move |route: &RouteMatch| Invocation {
        payload: event.finish(route),
        client_context: None,
        received,
    });
    match edge.router.send(RouteRequest { path, build }).await {
        Ok(None) => shim::not_found(),
        Ok(Some(Ok(outcome))) => shim::outcome_response(outcome),
        Ok(Some(Err(rejection))) => shim::rejection_response(&rejection),
        Err(_) => shim::rejection_response(&smyth_actors::invocation::Rejection::Unavailable),
    }
}

/// Minimal stand-ins until the full API Gateway mapping lands.
mod shim {
    use actix_web::{HttpRequest, HttpResponse};
    use bytes::Bytes;
    use smyth_actors::invocation::{Outcome, Rejection};
    use smyth_actors::messages::RouteMatch;

    pub struct EventParts {
        method: String,
        path: String,
        body: String,
    }

    impl EventParts {
        pub fn new(req: &HttpRequest, body: &[u8]) -> Self {
            Self {
                method: req.method().to_string(),
                path: req.path().to_string(),
                body: String::from_utf8_lossy(body).into_owned(),
            }
        }

        pub fn finish(self, route: &RouteMatch) -> Bytes {
            let params: serde_json::Map<String, serde_json::Value> = route
                .path_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            let event = serde_json::json!({
                "version": "2.0", "rawPath": self.path, "body": self.body, "pathParameters": params,
                "requestContext": {"http": {"method": self.method, "path": self.path}},
            });
            Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
        }
    }

    pub fn decoded_path(req: &HttpRequest) -> String {
        req.path().to_string()
    }

    pub fn too_large() -> HttpResponse {
        HttpResponse::PayloadTooLarge()
            .json(serde_json::json!({"message": "Request Entity Too Large"}))
    }

    pub fn not_found() -> HttpResponse {
        HttpResponse::NotFound().json(serde_json::json!({"message": "Not Found"}))
    }

    pub fn outcome_response(outcome: Outcome) -> HttpResponse {
        match outcome {
            Outcome::Success { body, .. } => HttpResponse::Ok().content_type("application/json").body(body),
            Outcome::HandlerError { body, .. } => HttpResponse::BadGateway().body(body),
            Outcome::Failed { error, message, .. } => HttpResponse::BadGateway()
                .json(serde_json::json!({"message": "Internal Server Error", "errorType": error.error_type(), "errorMessage": message})),
        }
    }

    pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
        HttpResponse::TooManyRequests().json(serde_json::json!({"message": rejection.to_string()}))
    }
}
