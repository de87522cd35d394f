//! smyth's own endpoints under the prefix (default `/_smyth`): status JSON, Prometheus metrics and the
//! live dashboard.

use actix_web::{web, HttpResponse};
use indexmap::IndexMap;
use smyth_actors::messages::GetStatus;
use smyth_actors::status::{self, HandlerStatus};

use crate::http::{ClientPort, Edge};
use crate::invoke_api::InvokeApi;
use crate::metrics;

const DASHBOARD: &str = include_str!("dashboard.html");

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    let prefix = prefix.trim_end_matches('/');
    let page = DASHBOARD
        .replace("__STATUS_URL__", &format!("{prefix}/status"))
        .replace("__INVOCATIONS_URL__", &format!("{prefix}/invocations"));
    cfg.route(&format!("{prefix}/status"), web::get().to(status))
        .route(&format!("{prefix}/api/status"), web::get().to(status))
        .route(&format!("{prefix}/metrics"), web::get().to(prometheus))
        .configure(|cfg| crate::recorder::endpoints::configure(cfg, prefix))
        .route(
            &format!("{prefix}/"),
            web::get().to(move |_: ClientPort| {
                let page = page.clone();
                async move { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page) }
            }),
        );
}

async fn handlers(edge: &Edge) -> Option<Vec<HandlerStatus>> {
    edge.router.send(GetStatus).await.ok()
}

fn shutting_down() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({"message": "shutting down"}))
}

/// Every handler's status, in config order, with its asynchronous events filled in.
async fn snapshot(edge: &Edge, invoke: Option<web::Data<InvokeApi>>) -> Option<Vec<HandlerStatus>> {
    let mut handlers = handlers(edge).await?;
    let async_events = match invoke {
        Some(invoke) => invoke.async_events().await,
        None => Default::default(),
    };
    for handler in &mut handlers {
        handler.metrics.async_events = async_events.get(&handler.name).copied().unwrap_or_default();
    }
    Some(handlers)
}

async fn status(_: ClientPort, edge: web::Data<Edge>, invoke: Option<web::Data<InvokeApi>>) -> HttpResponse {
    let Some(handlers) = snapshot(&edge, invoke).await else { return shutting_down() };
    let limit = handlers.first().map_or(0, |h| h.account_limit);
    let account = status::account(&handlers, limit);
    // An ordered map: the JSON lists handlers in config order, as the dashboard shows them.
    let handlers: IndexMap<String, serde_json::Value> = handlers
        .into_iter()
        .map(|h| {
            let mut value = serde_json::to_value(&h).unwrap_or_default();
            value["async_queued"] = h.metrics.async_events.queued.into();
            (h.name, value)
        })
        .collect();
    HttpResponse::Ok().json(StatusBody { handlers, account })
}

/// The status document; a struct rather than a `json!` value, whose map would sort the handlers.
#[derive(serde::Serialize)]
struct StatusBody {
    handlers: IndexMap<String, serde_json::Value>,
    account: status::AccountStatus,
}

async fn prometheus(
    _: ClientPort,
    edge: web::Data<Edge>,
    invoke: Option<web::Data<InvokeApi>>,
) -> HttpResponse {
    let Some(handlers) = snapshot(&edge, invoke).await else { return shutting_down() };
    HttpResponse::Ok().content_type(metrics::CONTENT_TYPE).body(metrics::render(handlers))
}
