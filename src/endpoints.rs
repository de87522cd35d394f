//! smyth's own endpoints under the prefix (default `/_smyth`): status JSON, Prometheus metrics and the
//! live dashboard.

use actix_web::{web, HttpResponse};
use smyth_actors::messages::GetStatus;
use smyth_actors::status::HandlerStatus;

use crate::http::{ClientPort, Edge};
use crate::invoke_api::InvokeApi;
use crate::metrics;

const DASHBOARD: &str = include_str!("dashboard.html");

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    let prefix = prefix.trim_end_matches('/');
    let page = DASHBOARD.replace("__STATUS_URL__", &format!("{prefix}/status"));
    cfg.route(&format!("{prefix}/status"), web::get().to(status))
        .route(&format!("{prefix}/api/status"), web::get().to(status))
        .route(&format!("{prefix}/metrics"), web::get().to(prometheus))
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

async fn status(_: ClientPort, edge: web::Data<Edge>, invoke: Option<web::Data<InvokeApi>>) -> HttpResponse {
    let Some(handlers) = handlers(&edge).await else { return shutting_down() };
    let async_queued = match invoke {
        Some(invoke) => invoke.async_queued().await,
        None => Default::default(),
    };
    let handlers: serde_json::Map<String, serde_json::Value> = handlers
        .into_iter()
        .map(|h| {
            let mut value = serde_json::to_value(&h).unwrap_or_default();
            value["async_queued"] = async_queued.get(&h.name).copied().unwrap_or(0).into();
            (h.name.clone(), value)
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "handlers": handlers }))
}

async fn prometheus(_: ClientPort, edge: web::Data<Edge>) -> HttpResponse {
    let Some(handlers) = handlers(&edge).await else { return shutting_down() };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::render(&handlers))
}
