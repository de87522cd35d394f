//! Reserved and provisioned concurrency, read and changed while the server runs:
//! Get/Put/DeleteFunctionConcurrency and Put/Get/DeleteProvisionedConcurrencyConfig. A change is
//! validated here (AWS's rules, `limits`), then applied by the handler's supervisor at once.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use smyth_actors::invocation::Rejection;
use smyth_actors::messages::{SetProvisionedConcurrency, SetReservedConcurrency};
use smyth_actors::state::StateKind;
use smyth_actors::status::HandlerStatus;
use time::OffsetDateTime;

use super::limits::{check_provisioned, check_reserved, Share, Standing};
use super::{body, query, timestamp, ApiError, LambdaApi};
use crate::http::ClientPort;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/2019-09-30/functions/{name}/concurrency", web::get().to(get_reserved))
        .route("/2017-10-31/functions/{name}/concurrency", web::put().to(put_reserved))
        .route("/2017-10-31/functions/{name}/concurrency", web::delete().to(delete_reserved))
        .route("/2019-09-30/functions/{name}/provisioned-concurrency", web::put().to(put_provisioned))
        .route("/2019-09-30/functions/{name}/provisioned-concurrency", web::get().to(get_provisioned))
        .route("/2019-09-30/functions/{name}/provisioned-concurrency", web::delete().to(delete_provisioned));
}

/// The function's standing among all functions' live state, for the checks.
async fn standing<'a>(api: &LambdaApi, name: &'a str) -> Result<(Standing<'a>, HandlerStatus), ApiError> {
    let live = api.live().await?;
    let share = |h: &HandlerStatus| Share {
        reserved: h.reserved_concurrency,
        provisioned: h.provisioned_concurrency,
    };
    let others_held = live.iter().filter(|h| h.name != name).map(|h| share(h).held()).sum();
    let own = live.into_iter().find(|h| h.name == name).ok_or(ApiError::Service)?;
    let standing = Standing {
        name,
        own: share(&own),
        // Every slot the pool was started with, whatever its live size.
        capacity: own.workers.len(),
        others_held,
        account: api.0.config.account_concurrency,
    };
    Ok((standing, own))
}

/// A count the request must carry, `min` or more (the service model's minimum).
fn count(given: Option<i64>, member: &str, min: i64) -> Result<usize, ApiError> {
    given
        .filter(|n| *n >= min)
        .map(|n| n as usize)
        .ok_or_else(|| ApiError::InvalidParameterValue(format!("{member} must be a number {min} or more")))
}

fn applied(
    result: Result<Result<(), Rejection>, actix::MailboxError>,
    api: &LambdaApi,
    name: &str,
) -> Result<(), ApiError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Rejection::NotFound(_))) => Err(ApiError::ResourceNotFound(api.arn(name))),
        _ => Err(ApiError::Service),
    }
}

async fn get_reserved(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = &api.function(&req)?.name;
    let live = api.live_one(name).await?;
    let body = match live.reserved_concurrency {
        Some(reserved) => json!({"ReservedConcurrentExecutions": reserved}),
        None => json!({}),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutReserved {
    reserved_concurrent_executions: Option<i64>,
}

async fn put_reserved(
    _: ClientPort,
    req: HttpRequest,
    bytes: web::Bytes,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = api.function(&req)?.name.clone();
    let request: PutReserved = body(&bytes)?;
    let requested = count(request.reserved_concurrent_executions, "ReservedConcurrentExecutions", 0)?;
    check_reserved(requested, &standing(&api, &name).await?.0)?;
    let result =
        api.0.router.send(SetReservedConcurrency { name: name.clone(), reserved: Some(requested) }).await;
    applied(result, &api, &name)?;
    Ok(HttpResponse::Ok().json(json!({"ReservedConcurrentExecutions": requested})))
}

async fn delete_reserved(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = api.function(&req)?.name.clone();
    let result = api.0.router.send(SetReservedConcurrency { name: name.clone(), reserved: None }).await;
    applied(result, &api, &name)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Provisioned concurrency exists only on a qualifier; `$LATEST` stands for the function here.
fn require_qualifier(req: &HttpRequest) -> Result<(), ApiError> {
    match query(req).get("Qualifier") {
        Some(_) => Ok(()),
        None => Err(ApiError::InvalidParameterValue("Qualifier is required: use $LATEST".into())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutProvisioned {
    provisioned_concurrent_executions: Option<i64>,
}

/// The provisioned config's shape: `READY` once every provisioned worker is warm.
fn provisioned_config(live: &HandlerStatus, modified: OffsetDateTime) -> serde_json::Value {
    let requested = live.provisioned_concurrency;
    let warm = live
        .workers
        .iter()
        .take(requested)
        .filter(|w| matches!(w.state, StateKind::Warm | StateKind::Busy))
        .count();
    json!({
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": warm,
        "AllocatedProvisionedConcurrentExecutions": warm,
        "Status": if warm >= requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": timestamp(modified),
    })
}

fn modified(api: &LambdaApi, name: &str) -> OffsetDateTime {
    let changed = api.0.provisioned_modified.lock().expect("not poisoned").get(name).copied();
    changed.unwrap_or(api.0.started)
}

async fn put_provisioned(
    _: ClientPort,
    req: HttpRequest,
    bytes: web::Bytes,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = api.function(&req)?.name.clone();
    require_qualifier(&req)?;
    let request: PutProvisioned = body(&bytes)?;
    let requested = count(request.provisioned_concurrent_executions, "ProvisionedConcurrentExecutions", 1)?;
    check_provisioned(requested, &standing(&api, &name).await?.0)?;
    let result =
        api.0.router.send(SetProvisionedConcurrency { name: name.clone(), provisioned: requested }).await;
    applied(result, &api, &name)?;
    api.0.provisioned_modified.lock().expect("not poisoned").insert(name.clone(), OffsetDateTime::now_utc());
    let live = api.live_one(&name).await?;
    Ok(HttpResponse::Accepted().json(provisioned_config(&live, modified(&api, &name))))
}

async fn get_provisioned(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = api.function(&req)?.name.clone();
    require_qualifier(&req)?;
    let live = api.live_one(&name).await?;
    if live.provisioned_concurrency == 0 {
        return Err(ApiError::ProvisionedConcurrencyConfigNotFound);
    }
    Ok(HttpResponse::Ok().json(provisioned_config(&live, modified(&api, &name))))
}

async fn delete_provisioned(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let name = api.function(&req)?.name.clone();
    require_qualifier(&req)?;
    let result = api.0.router.send(SetProvisionedConcurrency { name: name.clone(), provisioned: 0 }).await;
    applied(result, &api, &name)?;
    api.0.provisioned_modified.lock().expect("not poisoned").remove(&name);
    Ok(HttpResponse::NoContent().finish())
}
