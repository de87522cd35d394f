//! The Lambda API beyond Invoke, as boto3 and the AWS CLI call it: read the functions
//! (`functions`), change reserved and provisioned concurrency while the server runs (`concurrency`)
//! and the asynchronous invocation settings (`event_invoke`). Changes last until the server stops;
//! the config file is never written. Shapes follow botocore's `lambda` service model.

mod concurrency;
mod error;
mod event_invoke;
mod functions;
mod limits;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::Addr;
use actix_web::{web, HttpRequest};
use smyth_actors::async_queue::AsyncQueue;
use smyth_actors::messages::GetStatus;
use smyth_actors::router::RouterActor;
use smyth_actors::status::HandlerStatus;
use smyth_config::{Config, HandlerConfig};
use time::OffsetDateTime;

pub use error::ApiError;
use event_invoke::EventInvokeConfig;

/// What every Lambda API route needs; cloned into each App, one state behind it.
#[derive(Clone)]
pub struct LambdaApi(Arc<Inner>);

struct Inner {
    router: Addr<RouterActor>,
    events: Addr<AsyncQueue>,
    config: Config,
    region: String,
    /// When the server started: the functions' `LastModified`.
    started: OffsetDateTime,
    /// Per function: its asynchronous invocation settings as the API last set them.
    event_configs: Mutex<HashMap<String, EventInvokeConfig>>,
    /// Per function: when its provisioned concurrency was last set through the API.
    provisioned_modified: Mutex<HashMap<String, OffsetDateTime>>,
}

impl LambdaApi {
    pub fn new(config: &Config, region: String, router: Addr<RouterActor>, events: Addr<AsyncQueue>) -> Self {
        Self(Arc::new(Inner {
            router,
            events,
            config: config.clone(),
            region,
            started: OffsetDateTime::now_utc(),
            event_configs: Mutex::default(),
            provisioned_modified: Mutex::default(),
        }))
    }

    /// The unqualified function ARN, as the worker's context sees it.
    fn arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:000000000000:function:{name}", self.0.region)
    }

    /// The function a request's `{name}` (a name, partial or full ARN) and `Qualifier` name; only
    /// `$LATEST` exists.
    fn function(&self, req: &HttpRequest) -> Result<&HandlerConfig, ApiError> {
        let raw = req.match_info().get("name").unwrap_or_default();
        let (name, arn_qualifier) = crate::invoke_api::parse_name(raw);
        let qualifier = query(req).remove("Qualifier").or(arn_qualifier.map(str::to_string));
        let handler = self.0.config.handlers.iter().find(|h| h.name == name);
        match (handler, qualifier) {
            (None, _) => Err(ApiError::ResourceNotFound(self.arn(name))),
            (Some(_), Some(q)) if q != "$LATEST" => {
                Err(ApiError::ResourceNotFound(format!("{}:{q}", self.arn(name))))
            }
            (Some(handler), _) => Ok(handler),
        }
    }

    /// Every handler's live state (its concurrency as changed so far, its workers).
    async fn live(&self) -> Result<Vec<HandlerStatus>, ApiError> {
        self.0.router.send(GetStatus).await.map_err(|_| ApiError::Service)
    }

    async fn live_one(&self, name: &str) -> Result<HandlerStatus, ApiError> {
        let all = self.live().await?;
        all.into_iter().find(|h| h.name == name).ok_or(ApiError::Service)
    }
}

/// The query string's parameters.
fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// A request body in the call's shape; AWS answers a malformed one 400.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::InvalidParameterValue(format!("invalid request body: {err}")))
}

/// AWS's `LastModified` strings: `2024-05-03T19:43:28.463+0000`.
fn timestamp(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    at.format(&format).unwrap_or_default()
}

pub fn configure(cfg: &mut web::ServiceConfig, api: LambdaApi) {
    cfg.app_data(web::Data::new(api));
    functions::configure(cfg);
    concurrency::configure(cfg);
    event_invoke::configure(cfg);
}
