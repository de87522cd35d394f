//! `/_smyth/invocations` (the recent ones, with `handler`, `failed` and `limit` as query parameters)
//! and `/_smyth/invocations/{id}` (everything recorded of one), as JSON, read from the database on
//! actix's blocking pool.

use std::path::PathBuf;

use actix_web::{web, HttpResponse};
use smyth_actors::recorder::query::{self, Filter};

use crate::http::ClientPort;

/// Invocations listed when the query does not say.
const DEFAULT_LIMIT: usize = 50;

#[derive(serde::Deserialize)]
struct ListQuery {
    handler: Option<String>,
    #[serde(default)]
    failed: Option<String>,
    limit: Option<usize>,
}

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.route(&format!("{prefix}/invocations"), web::get().to(list))
        .route(&format!("{prefix}/invocations/{{id}}"), web::get().to(show));
}

/// The recording database's path (`record_path`), as app data.
pub struct Database(pub PathBuf);

fn no_recording(err: String) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"message": err}))
}

async fn list(_: ClientPort, database: web::Data<Database>, params: web::Query<ListQuery>) -> HttpResponse {
    let failed = params.failed.as_deref().is_some_and(|f| !matches!(f, "0" | "false" | "no"));
    let filter =
        Filter { handler: params.handler.clone(), failed, limit: params.limit.unwrap_or(DEFAULT_LIMIT) };
    let path = database.0.clone();
    match web::block(move || query::list(&path, &filter)).await {
        Ok(Ok(rows)) => HttpResponse::Ok().json(serde_json::json!({"invocations": rows})),
        // No database yet: nothing was recorded.
        Ok(Err(_)) if !database.0.exists() => HttpResponse::Ok().json(serde_json::json!({"invocations": []})),
        Ok(Err(err)) => no_recording(err),
        Err(err) => HttpResponse::InternalServerError().json(serde_json::json!({"message": err.to_string()})),
    }
}

async fn show(_: ClientPort, database: web::Data<Database>, id: web::Path<String>) -> HttpResponse {
    let path = database.0.clone();
    let id = id.into_inner();
    let wanted = id.clone();
    match web::block(move || query::show(&path, &wanted)).await {
        Ok(Ok(Some(row))) => HttpResponse::Ok().json(row),
        Ok(Ok(None)) => no_recording(format!("no invocation `{id}`")),
        Ok(Err(err)) => no_recording(err),
        Err(err) => HttpResponse::InternalServerError().json(serde_json::json!({"message": err.to_string()})),
    }
}
