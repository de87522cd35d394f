//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as boto3 and the AWS CLI
//! call it: synchronous, asynchronous (`Event`: handed to the async queue, which runs and retries it
//! like AWS) and `DryRun` invocations, with AWS's status codes, headers and error shapes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::http::header::HeaderName;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::json;
use smyth_actors::async_queue::{AsyncQueue, Enqueue, GetAsyncEvents, Refused, Spool};
use smyth_actors::invocation::{Invocation, InvokeResult, Outcome, Rejection, MAX_PAYLOAD};
use smyth_actors::messages::{InvokeByName, Shutdown};
use smyth_actors::router::RouterActor;
use smyth_actors::tenancy::check_tenant;
use smyth_config::Config;
use tokio::sync::oneshot;

use smyth_actors::recorder::Source;

use crate::http::ClientPort;
use crate::lambda_api::LambdaApi;
use crate::runtime_api::read_limited;

/// AWS's limit for an asynchronous invocation's payload: 1 MiB (LAMBDA-FACTS, "Async invocation").
const MAX_EVENT_PAYLOAD: usize = 1_048_576;
/// AWS's limit for a synchronous Invoke request: 6 MiB. (A response may be a little larger:
/// `MAX_PAYLOAD`, 6,291,556 bytes.)
const MAX_REQUEST_PAYLOAD: usize = 6_291_456;

#[derive(Clone)]
pub struct InvokeApi {
    router: Addr<RouterActor>,
    events: Addr<AsyncQueue>,
    spool: Spool,
    region: String,
    functions: Arc<HashSet<String>>,
    /// The functions with tenant isolation: their invocations must name a tenant, the others' not.
    isolated: Arc<HashSet<String>>,
    /// The rest of the Lambda API (reading functions, changing concurrency), on the same routes' root.
    lambda: LambdaApi,
    /// Invocations are recorded: keep the HTTP request each came from.
    recording: bool,
}

impl InvokeApi {
    pub fn new(config: &Config, router: Addr<RouterActor>, events: Addr<AsyncQueue>, spool: Spool) -> Self {
        let functions = config.handlers.iter().map(|h| h.name.clone()).collect();
        let isolated =
            config.handlers.iter().filter(|h| h.tenant_id_header.is_some()).map(|h| h.name.clone()).collect();
        let region = config.env.get("AWS_REGION").cloned().unwrap_or_else(|| "eu-central-1".into());
        let lambda = LambdaApi::new(config, region.clone(), router.clone(), events.clone());
        let recording = config.record.enabled;
        Self {
            router,
            events,
            spool,
            region,
            functions: Arc::new(functions),
            isolated: Arc::new(isolated),
            lambda,
            recording,
        }
    }

    fn arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:000000000000:function:{name}:$LATEST", self.region)
    }

    async fn invoke(&self, name: &str, invocation: Invocation) -> InvokeResult {
        let (reply, answer) = oneshot::channel();
        self.router.do_send(InvokeByName { name: name.to_string(), invocation, reply });
        answer.await.unwrap_or(Err(Rejection::Unavailable))
    }

    /// Per function: asynchronous events waiting, retried and dropped (the status's `async_events`).
    pub async fn async_events(&self) -> HashMap<String, smyth_actors::metrics::AsyncEvents> {
        self.events.send(GetAsyncEvents).await.unwrap_or_default()
    }

    /// Stops running asynchronous events; those still waiting are counted in one warning.
    pub async fn stop_events(&self, grace: Duration) {
        let _ = self.events.send(Shutdown { grace }).await;
    }
}

/// The Invoke API and the rest of the Lambda API (`lambda_api`).
pub fn configure(cfg: &mut web::ServiceConfig, api: InvokeApi) {
    crate::lambda_api::configure(cfg, api.lambda.clone());
    cfg.app_data(web::Data::new(api))
        .route("/2015-03-31/functions/{name}/invocations", web::post().to(invoke));
}

/// `my-function`, `123456789012:function:my-function` or a full ARN, with an optional qualifier.
pub(crate) fn parse_name(raw: &str) -> (&str, Option<&str>) {
    let rest = raw.rsplit_once(":function:").map_or(raw, |(_, rest)| rest);
    match rest.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (rest, None),
    }
}

/// The ARN the caller named, as the handler's `context.invoked_function_arn` reports it: a full ARN
/// as given (its region, account and qualifier kept), a partial one (`ACCOUNT:function:NAME`) in
/// this server's region; None for a plain name (the worker's own ARN then).
fn invoked_arn(raw: &str, region: &str) -> Option<String> {
    if raw.starts_with("arn:") {
        Some(raw.to_string())
    } else if raw.contains(":function:") {
        Some(format!("arn:aws:lambda:{region}:{raw}"))
    } else {
        None
    }
}

/// An error in AWS's shape: the type in `x-amzn-ErrorType` (boto3 reads it first) and in the body.
fn aws_error(status: StatusCode, error_type: &str, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).insert_header(("x-amzn-ErrorType", error_type)).json(body)
}

fn throttled(reason: &str) -> HttpResponse {
    let body = json!({"Reason": reason, "Type": "User", "message": "Rate Exceeded."});
    aws_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", body)
}

fn rejection(api: &InvokeApi, rejection: &Rejection) -> HttpResponse {
    match rejection {
        Rejection::NotFound(name) => not_found(api, name),
        Rejection::ReservedConcurrency => throttled("ReservedFunctionConcurrentInvocationLimitExceeded"),
        Rejection::AccountConcurrency => throttled("ConcurrentInvocationLimitExceeded"),
        Rejection::QueueFull => throttled("FunctionInvocationRateLimitExceeded"),
        Rejection::Unavailable => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceException",
            json!({"Type": "Service", "Message": "smyth is shutting down"}),
        ),
    }
}

fn not_found(api: &InvokeApi, name: &str) -> HttpResponse {
    let body = json!({"Type": "User", "Message": format!("Function not found: {}", api.arn(name))});
    aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", body)
}

fn bad_request(error_type: &str, message: String) -> HttpResponse {
    aws_error(StatusCode::BAD_REQUEST, error_type, json!({"Type": "User", "message": message}))
}

fn too_large(kind: &str, size: usize, limit: usize) -> HttpResponse {
    let message = too_large_message(kind, size, limit);
    aws_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", json!({"message": message}))
}

/// AWS's words for an oversized Invoke request; `size` is None when the body was not read to its end.
fn too_large_message(kind: &str, size: usize, limit: usize) -> String {
    if kind == "Event" {
        format!("{size} byte payload is too large for the Event invocation type (limit {limit} bytes)")
    } else {
        format!("Request must be smaller than {limit} bytes for the InvokeFunction operation")
    }
}

const SNAPSTART_TIMEOUT: &str = smyth_actors::worker::snapstart::TIMEOUT_ERROR;

/// A synchronous invocation's answer: 200 with the result, or 200 with `X-Amz-Function-Error`.
fn outcome_response(outcome: Outcome) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.content_type("application/json").insert_header(("X-Amz-Executed-Version", "$LATEST"));
    match outcome {
        Outcome::Success { request_id, body } => {
            response.insert_header(("x-amzn-RequestId", request_id)).body(body)
        }
        Outcome::HandlerError { request_id, body } => response
            .insert_header(("x-amzn-RequestId", request_id))
            .insert_header(("X-Amz-Function-Error", "Unhandled"))
            .body(body),
        // AWS answers a restore that ran out of time with an error of the Invoke API itself.
        Outcome::Failed { error, message, .. } if error.error_type() == SNAPSTART_TIMEOUT => aws_error(
            StatusCode::REQUEST_TIMEOUT,
            SNAPSTART_TIMEOUT,
            json!({"Type": "User", "message": message}),
        ),
        Outcome::Failed { request_id, error, message } => response
            .insert_header(("x-amzn-RequestId", request_id))
            .insert_header(("X-Amz-Function-Error", "Unhandled"))
            .json(json!({"errorMessage": message, "errorType": error.error_type(), "stackTrace": []})),
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn invoke(
    _: ClientPort,
    req: HttpRequest,
    payload: web::Payload,
    api: web::Data<InvokeApi>,
) -> HttpResponse {
    let raw_name = req.match_info().get("name").unwrap_or_default().to_string();
    let (name, arn_qualifier) = parse_name(&raw_name);
    let qualifier = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("Qualifier").cloned())
        .or(arn_qualifier.map(str::to_string));
    if !api.functions.contains(name) {
        return not_found(&api, name);
    }
    if qualifier.as_deref().is_some_and(|q| q != "$LATEST") {
        return not_found(&api, &format!("{name}:{}", qualifier.unwrap_or_default()));
    }
    let function_arn = invoked_arn(&raw_name, &api.region);
    let kind = header(&req, "X-Amz-Invocation-Type").unwrap_or("RequestResponse").to_string();
    let limit = if kind == "Event" { MAX_EVENT_PAYLOAD } else { MAX_REQUEST_PAYLOAD };
    let declared: Option<usize> = header(&req, "content-length").and_then(|len| len.parse().ok());
    if let Some(size) = declared.filter(|size| *size > limit) {
        return too_large(&kind, size, limit);
    }
    let Some(body) = read_limited(&req, payload).await else {
        return too_large(&kind, declared.unwrap_or(MAX_PAYLOAD + 1), limit);
    };
    if body.len() > limit {
        return too_large(&kind, body.len(), limit);
    }
    let body = if body.is_empty() { web::Bytes::from_static(b"{}") } else { body };
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return bad_request(
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {err}"),
        );
    }
    let client_context = match header(&req, "X-Amz-Client-Context").map(decode_client_context) {
        Some(Err(message)) => return bad_request("InvalidRequestContentException", message),
        Some(Ok(context)) => Some(context),
        None => None,
    };
    let tenant = match check_tenant(header(&req, "X-Amz-Tenant-Id"), api.isolated.contains(name)) {
        Ok(tenant) => tenant,
        Err(problem) => return bad_request("InvalidParameterValueException", problem.to_string()),
    };
    let meta = Meta { client_context, function_arn, tenant };
    match kind.as_str() {
        "RequestResponse" => {
            let tail = header(&req, "X-Amz-Log-Type") == Some("Tail");
            let origin = crate::recorder::origin(Source::Invoke, api.recording, || {
                Arc::new(crate::recorder::InvokeRequest::of(&req, &body))
            });
            request_response(&api, name, body, meta, tail, origin).await
        }
        "Event" => enqueue(&api, name, body, meta).await,
        "DryRun" => HttpResponse::NoContent().finish(),
        other => bad_request(
            "InvalidParameterValueException",
            format!("Invalid invocation type `{other}`: use RequestResponse, Event or DryRun"),
        ),
    }
}

/// What the request says beside its payload, for the runtime's `/next` headers.
struct Meta {
    client_context: Option<String>,
    function_arn: Option<String>,
    tenant: Option<String>,
}

async fn request_response(
    api: &InvokeApi,
    name: &str,
    payload: web::Bytes,
    meta: Meta,
    tail: bool,
    origin: smyth_actors::recorder::Origin,
) -> HttpResponse {
    let (log, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let Meta { client_context, function_arn, tenant } = meta;
    let received = Instant::now();
    let log = tail.then_some(log);
    let invocation = Invocation { payload, client_context, function_arn, received, log, tenant, origin };
    match api.invoke(name, invocation).await {
        Ok(outcome) => {
            let mut response = outcome_response(outcome);
            if let Ok(text) = logs.try_recv() {
                let value = log_result(&text).parse().expect("base64 is a valid header value");
                response.headers_mut().insert(HeaderName::from_static("x-amz-log-result"), value);
            }
            response
        }
        Err(err) => rejection(api, &err),
    }
}

/// `Event`: 202 once the async queue holds the event (a large payload spooled to a file first), 429
/// at once when the queue is full: never a 202 for an event that will not run.
async fn enqueue(api: &InvokeApi, name: &str, body: web::Bytes, meta: Meta) -> HttpResponse {
    let Meta { client_context, function_arn, tenant } = meta;
    let spool = api.spool.clone();
    let Ok(payload) = web::block(move || spool.store(body)).await else {
        return rejection(api, &Rejection::Unavailable);
    };
    let function = name.to_string();
    let accepted = api.events.send(Enqueue { function, payload, client_context, function_arn, tenant }).await;
    match accepted {
        Ok(Ok(request_id)) => {
            HttpResponse::Accepted().insert_header(("x-amzn-RequestId", request_id)).finish()
        }
        Ok(Err(Refused::Full)) => throttled("FunctionInvocationRateLimitExceeded"),
        Ok(Err(Refused::ShuttingDown)) | Err(_) => rejection(api, &Rejection::Unavailable),
    }
}

/// `X-Amz-Log-Result`: base64 of the log's last 4 KB, as AWS returns it.
fn log_result(text: &str) -> String {
    const TAIL: usize = 4096;
    let mut start = text.len().saturating_sub(TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&text[start..])
}

/// `X-Amz-Client-Context` is base64 JSON; the runtime receives the JSON.
fn decode_client_context(encoded: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|err| format!("X-Amz-Client-Context is not valid base64: {err}"))?;
    String::from_utf8(bytes).map_err(|_| "X-Amz-Client-Context is not UTF-8 JSON".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_arns() {
        let cases = [
            ("orders", ("orders", None)),
            ("arn:aws:lambda:eu-central-1:000000000000:function:orders", ("orders", None)),
            ("arn:aws:lambda:eu-central-1:000000000000:function:orders:$LATEST", ("orders", Some("$LATEST"))),
            ("000000000000:function:orders", ("orders", None)),
            ("orders:prod", ("orders", Some("prod"))),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_name(raw), expected, "{raw}");
        }
    }

    #[test]
    fn invoked_arns_keep_what_the_caller_named() {
        let full = "arn:aws:lambda:us-west-2:123456789012:function:orders";
        assert_eq!(invoked_arn(full, "eu-central-1").as_deref(), Some(full));
        assert_eq!(
            invoked_arn("123456789012:function:orders", "eu-central-1").as_deref(),
            Some("arn:aws:lambda:eu-central-1:123456789012:function:orders")
        );
        assert_eq!(invoked_arn("orders", "eu-central-1"), None);
    }

    #[test]
    fn oversized_requests_in_aws_words() {
        assert_eq!(
            too_large_message("RequestResponse", 6_291_457, MAX_REQUEST_PAYLOAD),
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        );
        assert_eq!(
            too_large_message("Event", 1_048_577, MAX_EVENT_PAYLOAD),
            "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
        );
    }

    #[test]
    fn client_context_is_base64_json() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert_eq!(decode_client_context(&encoded).unwrap(), r#"{"custom":{"a":1}}"#);
        assert!(decode_client_context("%%%").unwrap_err().contains("base64"));
    }
}
