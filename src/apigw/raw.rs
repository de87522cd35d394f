//! `raw` (Smyth's `generate_lambda_invocation_event_data`): the request body is the event, and the
//! result goes back as JSON.

use actix_web::{web::Bytes, HttpResponse};
use serde::de::IgnoredAny;
use serde_json::Value;

use super::request::RequestSnapshot;
use super::response::{self, JSON};

/// The event: the body as sent when it is JSON, `{}` when it is empty. A body that is not JSON is
/// `Err` with the problem, for a 400 (Smyth's `request.json()` refuses it before invoking, too).
pub fn raw_event(request: &RequestSnapshot) -> Result<Bytes, String> {
    if request.body.trim_ascii().is_empty() {
        return Ok(Bytes::from_static(b"{}"));
    }
    match serde_json::from_slice::<IgnoredAny>(&request.body) {
        Ok(_) => Ok(request.body.clone()),
        Err(error) => Err(format!("the request body is not valid JSON: {error}")),
    }
}

/// The HTTP response for a handler's JSON result: a 200 with the result itself as the JSON body. An
/// object with `statusCode` is a response, as Smyth maps every handler's result to one (`statusCode`,
/// `headers`, `body`, …, by the v2 rules). A result that is not JSON is a 502.
pub fn map_result(result: &[u8]) -> HttpResponse {
    if result.first() == Some(&b'{') {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(result) {
            if map.contains_key("statusCode") {
                return response::proxy_response(map);
            }
        }
    }
    match serde_json::from_slice::<IgnoredAny>(result) {
        Ok(_) => HttpResponse::Ok().content_type(JSON).body(Bytes::copy_from_slice(result)),
        // Not JSON: the v2 rules answer it (a 502).
        Err(_) => response::map_result(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apigw::tests::{answer, snapshot};
    use actix_web::test::TestRequest;
    use serde_json::json;

    #[test]
    fn the_body_is_the_event() {
        for (body, want) in [
            (&b""[..], "{}"),
            (b"  \n", "{}"),
            (br#"{"a": [1, 2]}"#, r#"{"a": [1, 2]}"#),
            (b"[1,2]", "[1,2]"),
            (b"42", "42"),
            (br#""text""#, r#""text""#),
            (b"null", "null"),
            (b"12345678901234567890123", "12345678901234567890123"),
        ] {
            let got = raw_event(&snapshot(TestRequest::post().uri("/x"), body)).unwrap();
            assert_eq!(got, want.as_bytes(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_refused() {
        for body in [&b"{"[..], b"a=1", b"NaN", b"{\"a\":1} trailing", &[0xff, 0xfe]] {
            let problem = raw_event(&snapshot(TestRequest::post().uri("/x"), body)).unwrap_err();
            assert!(problem.starts_with("the request body is not valid JSON: "), "{problem}");
        }
        let got = answer(response::bad_request("the request body is not valid JSON: x"));
        assert_eq!(got.status, 400);
        assert_eq!(got.json(), json!({"message": "the request body is not valid JSON: x"}));
    }

    #[test]
    fn results_are_json_bodies() {
        for result in [r#"{"a":1}"#, "[1,2]", "42", r#""hello""#, "null", "true", r#"{"body":"x"}"#] {
            let got = answer(map_result(result.as_bytes()));
            assert_eq!(got.status, 200, "{result}");
            assert_eq!(got.values("content-type"), [JSON], "{result}");
            assert_eq!(got.body, result.as_bytes());
        }
    }

    #[test]
    fn proxy_shaped_results_are_responses() {
        let got = answer(map_result(br#"{"statusCode":201,"headers":{"X-A":"1"},"body":"made"}"#));
        assert_eq!(got.status, 201);
        assert_eq!(got.values("x-a"), ["1"]);
        assert_eq!(got.body, b"made");
        let got = answer(map_result(b"not json"));
        assert_eq!(got.status, 502);
    }
}
