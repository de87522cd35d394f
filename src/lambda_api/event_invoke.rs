//! A function's asynchronous invocation settings: Put/Get/Update/DeleteFunctionEventInvokeConfig
//! (`MaximumRetryAttempts`, `MaximumEventAgeInSeconds`, `DestinationConfig`). Every function has
//! one: the config file's values until the API changes them; Delete goes back to those. Changes
//! reach the async queue at once, for the events still waiting too.

use std::path::Path;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use smyth_actors::async_queue::SetEventInvokeConfig;
use smyth_config::{parse_destination, HandlerConfig};
use time::OffsetDateTime;

use super::{body, ApiError, LambdaApi};
use crate::http::ClientPort;

/// AWS's ranges (the service model's, and `limits::EVENT_AGE_SECS` in the config).
const MAX_RETRIES: u32 = 2;
const EVENT_AGE_SECS: (u64, u64) = (60, 21_600);

/// The settings as the API shows them; destinations as the caller gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInvokeConfig {
    retries: u32,
    max_age_secs: u64,
    on_success: Option<String>,
    on_failure: Option<String>,
    modified: OffsetDateTime,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let path = "/2019-09-25/functions/{name}/event-invoke-config";
    cfg.route(path, web::put().to(put))
        .route(path, web::post().to(update))
        .route(path, web::get().to(get))
        .route(path, web::delete().to(delete));
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Request {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<Destinations>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Destinations {
    on_success: Option<Destination>,
    on_failure: Option<Destination>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Destination {
    destination: Option<String>,
}

/// The config file's settings for `handler`.
fn from_config(handler: &HandlerConfig, root: &Path, started: OffsetDateTime) -> EventInvokeConfig {
    let key = |d: &Option<smyth_config::Destination>| d.as_ref().map(|d| d.describe(root));
    EventInvokeConfig {
        retries: handler.maximum_retry_attempts,
        max_age_secs: handler.maximum_event_age.as_secs(),
        on_success: key(&handler.on_success),
        on_failure: key(&handler.on_failure),
        modified: started,
    }
}

/// A destination in the config keys' form: `handler:NAME` (also from a project function's ARN) or
/// `file:PATH`; None for an empty one (no destination). The config's own parser decides, so the API
/// and the keys accept the same strings.
pub fn destination_key(raw: &str, root: &Path, handlers: &[&str]) -> Result<Option<String>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let parsed = parse_destination(raw, root, |name| handlers.contains(&name)).map_err(|why| {
        ApiError::InvalidParameterValue(format!(
            "The destination {why}; smyth delivers to a project function (its function ARN or \
             handler:NAME) or a JSON-lines file in the project (file:PATH)"
        ))
    })?;
    Ok(Some(parsed.describe(root)))
}

/// `request` over `base`, checked against AWS's ranges and the project's functions.
fn merge(
    base: EventInvokeConfig,
    request: Request,
    root: &Path,
    handlers: &[&str],
) -> Result<EventInvokeConfig, ApiError> {
    let mut config = EventInvokeConfig { modified: OffsetDateTime::now_utc(), ..base };
    if let Some(retries) = request.maximum_retry_attempts {
        config.retries = u32::try_from(retries).ok().filter(|r| *r <= MAX_RETRIES).ok_or_else(|| {
            ApiError::InvalidParameterValue(format!(
                "MaximumRetryAttempts must be 0 to {MAX_RETRIES}, not {retries}"
            ))
        })?;
    }
    if let Some(age) = request.maximum_event_age_in_seconds {
        let (low, high) = EVENT_AGE_SECS;
        config.max_age_secs =
            u64::try_from(age).ok().filter(|a| (low..=high).contains(a)).ok_or_else(|| {
                ApiError::InvalidParameterValue(format!(
                    "MaximumEventAgeInSeconds must be {low} to {high}, not {age}"
                ))
            })?;
    }
    if let Some(destinations) = request.destination_config {
        for (given, slot) in [
            (destinations.on_success, &mut config.on_success),
            (destinations.on_failure, &mut config.on_failure),
        ] {
            if let Some(given) = given {
                let raw = given.destination.unwrap_or_default();
                *slot = destination_key(&raw, root, handlers)?.map(|_| raw);
            }
        }
    }
    Ok(config)
}

impl LambdaApi {
    fn event_config(&self, handler: &HandlerConfig) -> EventInvokeConfig {
        let stored = self.0.event_configs.lock().expect("not poisoned").get(&handler.name).cloned();
        stored.unwrap_or_else(|| from_config(handler, &self.0.config.root, self.0.started))
    }

    fn handler_names(&self) -> Vec<&str> {
        self.0.config.handlers.iter().map(|h| h.name.as_str()).collect()
    }

    /// Stores `config` (None: back to the config file's) and tells the async queue.
    fn set_event_config(
        &self,
        handler: &HandlerConfig,
        config: Option<EventInvokeConfig>,
    ) -> EventInvokeConfig {
        let mut stored = self.0.event_configs.lock().expect("not poisoned");
        let effective = match config {
            Some(config) => {
                stored.insert(handler.name.clone(), config.clone());
                config
            }
            None => {
                stored.remove(&handler.name);
                from_config(handler, &self.0.config.root, self.0.started)
            }
        };
        drop(stored);
        let names = self.handler_names();
        let root = &self.0.config.root;
        let key =
            |d: &Option<String>| d.as_deref().and_then(|d| destination_key(d, root, &names).ok().flatten());
        self.0.events.do_send(SetEventInvokeConfig {
            function: handler.name.clone(),
            maximum_retry_attempts: effective.retries,
            maximum_event_age: Duration::from_secs(effective.max_age_secs),
            on_success: key(&effective.on_success),
            on_failure: key(&effective.on_failure),
        });
        tracing::info!(
            handler = %handler.name,
            retries = effective.retries,
            max_age_secs = effective.max_age_secs,
            on_success = ?effective.on_success,
            on_failure = ?effective.on_failure,
            "asynchronous invocation settings changed through the Lambda API; this lasts until the server \
             stops (the config file is not changed)"
        );
        effective
    }

    fn event_config_body(&self, handler: &HandlerConfig, config: &EventInvokeConfig) -> Value {
        let destination = |d: &Option<String>| d.as_ref().map_or(json!({}), |d| json!({"Destination": d}));
        json!({
            "LastModified": config.modified.unix_timestamp_nanos() as f64 / 1e9,
            "FunctionArn": format!("{}:$LATEST", self.arn(&handler.name)),
            "MaximumRetryAttempts": config.retries,
            "MaximumEventAgeInSeconds": config.max_age_secs,
            "DestinationConfig": {
                "OnSuccess": destination(&config.on_success),
                "OnFailure": destination(&config.on_failure),
            },
        })
    }
}

/// PutFunctionEventInvokeConfig: replaces the settings; what the request leaves out is the config
/// file's value.
async fn put(
    _: ClientPort,
    req: HttpRequest,
    bytes: web::Bytes,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    change(&req, &bytes, &api, true)
}

/// UpdateFunctionEventInvokeConfig: changes only what the request names.
async fn update(
    _: ClientPort,
    req: HttpRequest,
    bytes: web::Bytes,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    change(&req, &bytes, &api, false)
}

/// The request over the config file's settings (`replace`) or over the current ones, stored.
fn change(req: &HttpRequest, bytes: &[u8], api: &LambdaApi, replace: bool) -> Result<HttpResponse, ApiError> {
    let handler = api.function(req)?;
    let root = &api.0.config.root;
    let base = if replace { from_config(handler, root, api.0.started) } else { api.event_config(handler) };
    let config = merge(base, body(bytes)?, root, &api.handler_names())?;
    let config = api.set_event_config(handler, Some(config));
    Ok(HttpResponse::Ok().json(api.event_config_body(handler, &config)))
}

async fn get(_: ClientPort, req: HttpRequest, api: web::Data<LambdaApi>) -> Result<HttpResponse, ApiError> {
    let handler = api.function(&req)?;
    Ok(HttpResponse::Ok().json(api.event_config_body(handler, &api.event_config(handler))))
}

async fn delete(
    _: ClientPort,
    req: HttpRequest,
    api: web::Data<LambdaApi>,
) -> Result<HttpResponse, ApiError> {
    let handler = api.function(&req)?;
    api.set_event_config(handler, None);
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_table() {
        let handlers = ["orders", "audit"];
        let arn = "arn:aws:lambda:eu-central-1:000000000000:function:audit";
        let cases: Vec<(&str, Result<Option<&str>, ()>)> = vec![
            ("", Ok(None)),
            ("handler:audit", Ok(Some("handler:audit"))),
            ("handler:nobody", Err(())),
            ("file:out/failures.jsonl", Ok(Some("file:out/failures.jsonl"))),
            ("file:", Err(())),
            ("file:../outside.jsonl", Err(())),
            ("file:/etc/passwd", Err(())),
            (arn, Ok(Some("handler:audit"))),
            ("arn:aws:lambda:eu-central-1:000000000000:function:audit:$LATEST", Ok(Some("handler:audit"))),
            ("arn:aws:lambda:eu-central-1:000000000000:function:audit:prod", Err(())),
            ("arn:aws:lambda:eu-central-1:000000000000:function:ghost", Err(())),
            ("arn:aws:sqs:eu-central-1:000000000000:queue", Err(())),
            ("audit", Err(())),
        ];
        for (raw, expected) in cases {
            let got = destination_key(raw, Path::new("/project"), &handlers).map_err(|_| ());
            assert_eq!(got, expected.map(|d| d.map(str::to_string)), "{raw}");
        }
    }

    #[test]
    fn merge_checks_ranges_and_keeps_what_is_not_named() {
        let base = EventInvokeConfig {
            retries: 2,
            max_age_secs: 21_600,
            on_success: Some("handler:audit".into()),
            on_failure: None,
            modified: OffsetDateTime::UNIX_EPOCH,
        };
        let handlers = ["audit"];
        let request = |retries, age| Request {
            maximum_retry_attempts: retries,
            maximum_event_age_in_seconds: age,
            destination_config: None,
        };
        let merged = merge(base.clone(), request(Some(0), None), Path::new("/project"), &handlers).unwrap();
        assert_eq!(
            (merged.retries, merged.max_age_secs, merged.on_success.as_deref()),
            (0, 21_600, Some("handler:audit"))
        );
        for (retries, age) in [(Some(3), None), (Some(-1), None), (None, Some(59)), (None, Some(21_601))] {
            assert!(
                merge(base.clone(), request(retries, age), Path::new("/project"), &handlers).is_err(),
                "{retries:?} {age:?}"
            );
        }
        let cleared = Request {
            destination_config: Some(Destinations {
                on_success: Some(Destination { destination: None }),
                on_failure: Some(Destination { destination: Some("file:f.jsonl".into()) }),
            }),
            ..Request::default()
        };
        let merged = merge(base, cleared, Path::new("/project"), &handlers).unwrap();
        assert_eq!((merged.on_success, merged.on_failure.as_deref()), (None, Some("file:f.jsonl")));
    }
}
