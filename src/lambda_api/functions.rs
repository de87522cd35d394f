//! Reading the functions: ListFunctions (paged by `MaxItems` / `Marker`), GetFunction,
//! GetFunctionConfiguration and GetAccountSettings. A function's configuration is what the config
//! says, with its concurrency as changed while the server runs.

use std::ops::Range;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use smyth_config::{Config, HandlerConfig, Runtime};

use super::limits::{unreserved, Share};
use super::{query, timestamp, ApiError, LambdaApi};
use crate::http::ClientPort;

/// AWS's page size when `MaxItems` is not given, and the most the model allows.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 10_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/2015-03-31/functions/", web::get().to(list_functions))
        .route("/2015-03-31/functions", web::get().to(list_functions))
        .route("/2015-03-31/functions/{name}", web::get().to(get_function))
        .route("/2015-03-31/functions/{name}/configuration", web::get().to(get_function_configuration))
        .route("/2016-08-19/account-settings/", web::get().to(get_account_settings))
        .route("/2016-08-19/account-settings", web::get().to(get_account_settings));
}

/// `Runtime`: `python3.X` from the interpreter; a custom runtime command is `provided.al2023`.
fn runtime(config: &Config, handler: &HandlerConfig) -> String {
    match (&handler.runtime, &config.python_version) {
        (Runtime::Command(_), _) => "provided.al2023".into(),
        (_, Some(version)) => format!("python{version}"),
        (_, None) => "python3".into(),
    }
}

/// The CPU this server runs on, in AWS's names.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x86_64",
    }
}

/// `FunctionConfiguration`. `Environment.Variables` holds the handler's own `env` only: never the
/// server's environment nor the global `env` (which may carry the developer's secrets).
fn configuration(api: &LambdaApi, handler: &HandlerConfig) -> Value {
    let inner = &api.0;
    let mut config = json!({
        "FunctionName": handler.name,
        "FunctionArn": api.arn(&handler.name),
        "Runtime": runtime(&inner.config, handler),
        "Role": "arn:aws:iam::000000000000:role/smyth",
        "Handler": handler.handler_path,
        "CodeSize": 0,
        "Description": "",
        "Timeout": handler.timeout.as_secs_f64().ceil().max(1.0) as u64,
        "MemorySize": handler.memory_size,
        "LastModified": timestamp(inner.started),
        "CodeSha256": "",
        "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [architecture()],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", handler.name)},
    });
    if !handler.env.is_empty() {
        config["Environment"] = json!({"Variables": handler.env});
    }
    config
}

/// One page of `total` functions: the range to return and the next page's marker (an index).
fn page(
    total: usize,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Result<(Range<usize>, Option<String>), ApiError> {
    let start = match marker {
        None | Some("") => 0,
        Some(m) => m.parse::<usize>().ok().filter(|&i| i <= total).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!("Marker `{m}` is not one this server gave"))
        })?,
    };
    let size = match max_items {
        None => DEFAULT_PAGE,
        Some(n) => n.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!(
                "MaxItems must be an integer from 1 to {MAX_PAGE}, not `{n}`"
            ))
        })?,
    };
    let end = (start + size).min(total);
    Ok((start..end, (end < total).then(|| end.to_string())))
}

async fn list_functions(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let params = query(&req);
    let handlers = &api.0.config.handlers;
    let (range, next) = page(
        handlers.len(),
        params.get("Marker").map(String::as_str),
        params.get("MaxItems").map(String::as_str),
    )?;
    let functions: Vec<Value> = handlers[range].iter().map(|h| configuration(&api, h)).collect();
    let mut body = json!({"Functions": functions});
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(HttpResponse::Ok().json(body))
}

async fn get_function(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let handler = api.function(&req)?;
    let live = api.live_one(&handler.name).await?;
    let mut body = json!({
        "Configuration": configuration(&api, handler),
        "Code": {"RepositoryType": "Local", "Location": api.0.config.root.to_string_lossy()},
    });
    if let Some(reserved) = live.reserved_concurrency {
        body["Concurrency"] = json!({"ReservedConcurrentExecutions": reserved});
    }
    Ok(HttpResponse::Ok().json(body))
}

async fn get_function_configuration(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let handler = api.function(&req)?;
    Ok(HttpResponse::Ok().json(configuration(&api, handler)))
}

async fn get_account_settings(_: ClientPort, api: web::Data<LambdaApi>) -> Result<HttpResponse, ApiError> {
    let live = api.live().await?;
    let account = api.0.config.account_concurrency;
    let shares = live
        .iter()
        .map(|h| Share { reserved: h.reserved_concurrency, provisioned: h.provisioned_concurrency });
    Ok(HttpResponse::Ok().json(json!({
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800_u64,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": account,
            "UnreservedConcurrentExecutions": unreserved(account, shares),
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": api.0.config.handlers.len()},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_table() {
        let cases = [
            (3, None, None, Ok((0..3, None))),
            (3, None, Some("1"), Ok((0..1, Some("1".to_string())))),
            (3, Some("1"), Some("1"), Ok((1..2, Some("2".to_string())))),
            (3, Some("2"), Some("5"), Ok((2..3, None))),
            (3, Some("3"), None, Ok((3..3, None))),
            (120, None, None, Ok((0..50, Some("50".to_string())))),
        ];
        for (total, marker, max, expected) in cases {
            assert_eq!(page(total, marker, max), expected, "{total} {marker:?} {max:?}");
        }
        for (marker, max) in [(Some("4"), None), (Some("x"), None), (None, Some("0")), (None, Some("10001"))]
        {
            assert!(page(3, marker, max).is_err(), "{marker:?} {max:?}");
        }
    }
}
