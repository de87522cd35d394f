//! `POST {prefix}/replay/{id}[?mode=fresh|warm][&handler=H]`: replays a recorded invocation on the
//! running server's shadow environment and answers with the report (`replay::Report`) as JSON.

use actix::Addr;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use smyth_actors::router::RouterActor;

use super::{plan, run, source::Source, Mode};
use crate::http::ClientPort;
use crate::recorder::endpoints::Database;

#[derive(Clone)]
pub struct ReplayApi {
    pub router: Addr<RouterActor>,
    /// The invocation record.
    pub database: Database,
}

#[derive(Deserialize)]
struct Query {
    mode: Option<String>,
    handler: Option<String>,
}

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str, api: ReplayApi) {
    let prefix = prefix.trim_end_matches('/');
    cfg.app_data(web::Data::new(api)).route(&format!("{prefix}/replay/{{id}}"), web::post().to(replay));
}

fn problem(status: actix_web::http::StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "message": message }))
}

async fn replay(
    _: ClientPort,
    id: web::Path<String>,
    query: web::Query<Query>,
    api: web::Data<ReplayApi>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let mode = match query.mode.as_deref().map_or(Ok(Mode::Fresh), Mode::parse) {
        Ok(mode) => mode,
        Err(why) => return problem(StatusCode::BAD_REQUEST, why),
    };
    let (handler, id) = (query.handler.clone(), id.into_inner());
    let planned = api
        .database
        .read(move |database| {
            let source = Source::open(database).map_err(|why| (StatusCode::NOT_FOUND, why))?;
            plan(&source, &id, mode, handler.as_deref()).map_err(|why| (StatusCode::NOT_FOUND, why))
        })
        .await;
    let plan = match planned {
        Ok(Ok(plan)) => plan,
        Ok(Err((status, why))) => return problem(status, why),
        Err(err) => return problem(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    match run(&api.router, &plan).await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(why) => problem(StatusCode::NOT_FOUND, why),
    }
}
