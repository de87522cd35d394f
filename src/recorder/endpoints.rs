//! `/_smyth/invocations` (the recent ones, with `handler`, `failed` and `limit` as query parameters)
//! and `/_smyth/invocations/{id}` (everything recorded of one), as JSON, read from the database on
//! actix's blocking pool once the recorder has committed every invocation answered so far.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{error::BlockingError, web, HttpResponse};
use smyth_actors::recorder::query::{self, Filter};
use smyth_actors::recorder::Recorder;

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

/// How long a read waits for the recorder's writer to commit what it holds.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// The recording database (`record_path`) and the recorder writing it, as app data.
#[derive(Clone)]
pub struct Database {
    pub path: PathBuf,
    pub recorder: Recorder,
}

impl Database {
    /// Runs `read` on actix's blocking pool once every invocation answered so far is committed (the
    /// writer gathers them for up to a second under load).
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Path) -> T + Send + 'static,
    ) -> Result<T, BlockingError> {
        let (path, recorder) = (self.path.clone(), self.recorder.clone());
        web::block(move || {
            recorder.commit(COMMIT_WAIT);
            read(&path)
        })
        .await
    }
}

fn no_recording(err: String) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"message": err}))
}

async fn list(_: ClientPort, database: web::Data<Database>, params: web::Query<ListQuery>) -> HttpResponse {
    let failed = params.failed.as_deref().is_some_and(|f| !matches!(f, "0" | "false" | "no"));
    let filter =
        Filter { handler: params.handler.clone(), failed, limit: params.limit.unwrap_or(DEFAULT_LIMIT) };
    match database.read(move |path| query::list(path, &filter)).await {
        Ok(Ok(rows)) => HttpResponse::Ok().json(serde_json::json!({"invocations": rows})),
        // No database yet: nothing was recorded.
        Ok(Err(_)) if !database.path.exists() => {
            HttpResponse::Ok().json(serde_json::json!({"invocations": []}))
        }
        Ok(Err(err)) => no_recording(err),
        Err(err) => HttpResponse::InternalServerError().json(serde_json::json!({"message": err.to_string()})),
    }
}

async fn show(_: ClientPort, database: web::Data<Database>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    let wanted = id.clone();
    match database.read(move |path| query::show(path, &wanted)).await {
        Ok(Ok(Some(row))) => HttpResponse::Ok().json(row),
        Ok(Ok(None)) => no_recording(format!("no invocation `{id}`")),
        Ok(Err(err)) => no_recording(err),
        Err(err) => HttpResponse::InternalServerError().json(serde_json::json!({"message": err.to_string()})),
    }
}
