//! API Gateway HTTP API with payload format 1.0 (`event_format = "apigw-http-v1"`): the REST API's
//! event shape with `version: "1.0"`, the HTTP API's `$default` stage, lower-case header names (an
//! HTTP API normalises them) and the HTTP API's body rule: base64 for a content type that is not text
//! (`multipart/form-data`, images …). The result maps back by the same rules as the REST API's.

use serde_json::{Map, Value};

use super::event::{is_text, text_or_base64};
use super::request::RequestSnapshot;
use super::v1::v1_event;
use smyth_actors::messages::RouteMatch;

pub fn http_v1_event(request: &RequestSnapshot, route: &RouteMatch) -> Value {
    let mut event = v1_event(request, route);
    for key in ["headers", "multiValueHeaders"] {
        if let Some(Value::Object(map)) = event.get_mut(key) {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect::<Map<_, _>>();
        }
    }
    let (body, is_base64) = text_or_base64(&request.body, is_text(request.content_type()));
    event["body"] = body.map_or(Value::Null, Value::String);
    event["isBase64Encoded"] = is_base64.into();
    event["requestContext"]["stage"] = "$default".into();
    event["requestContext"]["resourceId"] = Value::Null;
    let mut shaped = Map::new();
    shaped.insert("version".into(), "1.0".into());
    if let Value::Object(rest) = event {
        shaped.extend(rest);
    }
    Value::Object(shaped)
}
