//! A Lambda function URL (`event_format = "function-url"`): the API Gateway 2.0 payload as a function
//! URL sends it. The event is [`v2_event`]'s with what a function URL has in place of an API's parts:
//! routeKey and stage `$default`, the url-id as `apiId` and `domainPrefix`,
//! `<url-id>.lambda-url.<region>.on.aws` as `domainName`, `anonymous` as the account of an
//! `AuthType: NONE` URL, no authorizer, and never `pathParameters` or `stageVariables`. A function
//! URL infers its response by the HTTP API 2.0 rules, so the result maps back with
//! [`super::response::map_result`].

use serde_json::Value;

use super::event::{v2_event, RouteInfo};
use super::request::RequestSnapshot;
use super::short_id;
use smyth_actors::messages::RouteMatch;

/// The region in `domainName` (the workers' default `AWS_REGION`).
const REGION: &str = "eu-central-1";

/// A function URL's id: 32 lower-case letters and digits, one per handler, always the same.
pub fn url_id(handler: &str) -> String {
    format!("{}{}", short_id(handler, 16), short_id(&format!("{handler}#url"), 16))
}

pub fn function_url_event(request: &RequestSnapshot, route: &RouteMatch) -> Value {
    // No path parameters: a function URL has no routes, only `$default`.
    let mut event = v2_event(request, &RouteInfo { url_path: &route.url_path, path_params: &[] }).to_value();
    let id = url_id(&route.handler);
    event["routeKey"] = "$default".into();
    let context = &mut event["requestContext"];
    context["routeKey"] = "$default".into();
    context["stage"] = "$default".into();
    context["accountId"] = "anonymous".into();
    context["apiId"] = id.clone().into();
    context["domainName"] = format!("{id}.lambda-url.{REGION}.on.aws").into();
    context["domainPrefix"] = id.into();
    context["authentication"] = Value::Null;
    context["authorizer"] = Value::Null;
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apigw::tests::{curl_get, snapshot};
    use smyth_config::EventFormat;

    fn route() -> RouteMatch {
        RouteMatch {
            handler: "items".into(),
            url_path: "/items/{id}".into(),
            event_format: EventFormat::FunctionUrl,
            path_params: vec![("id".into(), "7".into())],
            tenant_id_header: None,
        }
    }

    #[test]
    fn the_event_is_a_function_urls() {
        let event = function_url_event(&snapshot(curl_get("/items/7?a=1"), b""), &route());
        let id = url_id("items");
        assert_eq!(id.len(), 32);
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["rawPath"], "/items/7");
        assert_eq!(event["queryStringParameters"]["a"], "1");
        assert!(event.get("pathParameters").is_none(), "{event}");
        assert!(event.get("stageVariables").is_none(), "{event}");
        let context = &event["requestContext"];
        assert_eq!(context["routeKey"], "$default");
        assert_eq!(context["stage"], "$default");
        assert_eq!(context["apiId"], id.as_str());
        assert_eq!(context["domainPrefix"], id.as_str());
        assert_eq!(context["domainName"], format!("{id}.lambda-url.eu-central-1.on.aws"));
        assert_eq!(context["http"]["method"], "GET");
        assert!(context["authorizer"].is_null());
    }

    #[test]
    fn url_ids_are_per_handler() {
        assert_eq!(url_id("items"), url_id("items"));
        assert_ne!(url_id("items"), url_id("orders"));
        assert!(url_id("items").chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
