//! The HTTP faces of a Lambda function: an HTTP request → the event for the handler's `event_format`,
//! the handler's result → an HTTP response by that format's rules, and every error a `url_path`
//! route answers.
//!
//! - `request`: the request as the edge captures it (`Send`, for the router's thread);
//! - `event` + `response`: API Gateway HTTP API, payload 2.0 (`apigw-v2`), and the shared errors;
//! - `v1`: API Gateway REST API proxy integration, payload 1.0 (`apigw-v1`);
//! - `http_v1`: API Gateway HTTP API, payload 1.0 (`apigw-http-v1`);
//! - `alb`: Application Load Balancer target (`alb`);
//! - `raw`: the body is the event (`raw`);
//! - `function_url`: a Lambda function URL, the 2.0 payload as a function URL sends it (`function-url`).

pub mod alb;
pub mod event;
pub mod function_url;
pub mod http_v1;
pub mod raw;
pub mod request;
pub mod response;
pub mod v1;

use actix_web::{web::Bytes, HttpResponse};
use smyth_actors::invocation::Outcome;
use smyth_actors::messages::RouteMatch;
use smyth_config::EventFormat;

use request::RequestSnapshot;

/// The event for the matched route's format, as the runtime will receive it. `Err` is a request the
/// format cannot carry (a `raw` body that is not JSON): the problem, for a 400.
pub fn event_payload(request: &RequestSnapshot, route: &RouteMatch) -> Result<Bytes, String> {
    let event = match route.event_format {
        EventFormat::ApiGwV2 => {
            let info = event::RouteInfo { url_path: &route.url_path, path_params: &route.path_params };
            return Ok(event::v2_event(request, &info).to_bytes().into());
        }
        EventFormat::ApiGwV1 => v1::v1_event(request, route),
        EventFormat::ApiGwHttpV1 => http_v1::http_v1_event(request, route),
        EventFormat::Alb => alb::alb_event(request, route),
        EventFormat::Raw => return raw::raw_event(request),
        EventFormat::FunctionUrl => function_url::function_url_event(request, route),
    };
    Ok(serde_json::to_vec(&event).unwrap_or_default().into())
}

/// The HTTP response for how an invocation ended: a result by the format's rules, errors alike for
/// every format.
pub fn outcome_response(format: EventFormat, outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Success { body, .. } => match format {
            // A function URL infers its response by the HTTP API 2.0 rules.
            EventFormat::ApiGwV2 | EventFormat::FunctionUrl => response::map_result(&body),
            EventFormat::ApiGwV1 | EventFormat::ApiGwHttpV1 => v1::map_result(&body),
            EventFormat::Alb => alb::map_result(&body),
            EventFormat::Raw => raw::map_result(&body),
        },
        failed => response::outcome_response(failed),
    }
}

/// A short id that is always the same for `text` (resource ids, target group ids): `len` lower-case
/// hex digits of its FNV-1a hash (at most 16).
pub fn short_id(text: &str, len: usize) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut id = format!("{hash:016x}");
    id.truncate(len);
    id
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;
    use serde_json::{json, Value};
    use smyth_actors::invocation::FailureKind;

    /// The fixed clock and request id of the format tests: 24/Nov/2026:09:06:41.123 UTC.
    pub const NOW_MS: u64 = 1_795_511_201_123;
    pub const REQUEST_ID: &str = "01234567-89ab-cdef-0123-456789abcdef";

    /// A GET as curl sends it, from 10.1.2.3 to localhost:8080.
    pub fn curl_get(uri: &str) -> TestRequest {
        TestRequest::get()
            .uri(uri)
            .insert_header(("Host", "localhost:8080"))
            .insert_header(("User-Agent", "curl/8.5.0"))
            .peer_addr("10.1.2.3:50000".parse().unwrap())
    }

    pub fn snapshot(req: TestRequest, body: &[u8]) -> RequestSnapshot {
        RequestSnapshot::capture_at(&req.to_http_request(), Bytes::copy_from_slice(body), NOW_MS, REQUEST_ID)
    }

    /// A match of handler `items` on `url_path`.
    pub fn route(url_path: &str, params: &[(&str, &str)]) -> RouteMatch {
        route_as(EventFormat::ApiGwV2, url_path, params)
    }

    fn route_as(event_format: EventFormat, url_path: &str, params: &[(&str, &str)]) -> RouteMatch {
        RouteMatch {
            handler: "items".into(),
            url_path: url_path.into(),
            event_format,
            path_params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            tenant_id_header: None,
        }
    }

    pub struct Got {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Got {
        pub fn values(&self, name: &str) -> Vec<&str> {
            self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
        }
        pub fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    pub fn answer(response: HttpResponse) -> Got {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let body = response.into_body().try_into_bytes().unwrap().to_vec();
        Got { status, headers, body }
    }

    #[test]
    fn each_format_builds_its_own_event() {
        let req =
            || TestRequest::post().uri("/items/7?a=1").insert_header(("Content-Type", "application/json"));
        let params = [("id", "7")];
        for (format, check) in [
            (EventFormat::ApiGwV2, "version"),
            (EventFormat::ApiGwV1, "multiValueHeaders"),
            (EventFormat::Alb, "requestContext"),
        ] {
            let payload =
                event_payload(&snapshot(req(), b"{}"), &route_as(format, "/items/{id}", &params)).unwrap();
            let event: Value = serde_json::from_slice(&payload).unwrap();
            assert!(event.get(check).is_some(), "{format:?}: {event}");
        }
        let v1: Value = serde_json::from_slice(
            &event_payload(&snapshot(req(), b""), &route_as(EventFormat::ApiGwV1, "/items/{id}", &params))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v1["resource"], "/items/{id}");
        let alb: Value = serde_json::from_slice(
            &event_payload(&snapshot(req(), b""), &route_as(EventFormat::Alb, "/items/{id}", &params))
                .unwrap(),
        )
        .unwrap();
        assert!(alb["requestContext"]["elb"]["targetGroupArn"].is_string());
        let raw = route_as(EventFormat::Raw, "/items/{id}", &params);
        assert_eq!(event_payload(&snapshot(req(), br#"{"a":1}"#), &raw).unwrap(), r#"{"a":1}"#.as_bytes());
        assert!(event_payload(&snapshot(req(), b"{"), &raw).is_err());
    }

    #[test]
    fn results_follow_the_format_and_errors_do_not() {
        let success = || Outcome::Success { request_id: "r".into(), body: r#"{"a":1}"#.into() };
        for (format, status) in [
            (EventFormat::ApiGwV2, 200),
            (EventFormat::ApiGwV1, 502),
            (EventFormat::Alb, 502),
            (EventFormat::Raw, 200),
        ] {
            assert_eq!(answer(outcome_response(format, success())).status, status, "{format:?}");
            let failed = Outcome::Failed {
                request_id: "r".into(),
                error: FailureKind::Exited,
                message: String::new(),
            };
            let got = answer(outcome_response(format, failed));
            assert_eq!(got.status, 502, "{format:?}");
            assert_eq!(
                got.json(),
                json!({"message": "Internal Server Error", "errorType": "Runtime.ExitError"})
            );
            let raised =
                Outcome::HandlerError { request_id: "r".into(), body: r#"{"errorType":"E"}"#.into() };
            assert_eq!(crate::apigw::tests::answer(outcome_response(format, raised)).status, 502);
        }
    }

    #[test]
    fn short_ids_are_stable_hex() {
        assert_eq!(short_id("/items", 6), short_id("/items", 6));
        assert_ne!(short_id("/items", 16), short_id("/orders", 16));
        assert_eq!(short_id("", 16), "cbf29ce484222325");
        assert_eq!(short_id("x", 6).len(), 6);
    }
}
