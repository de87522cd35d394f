//! The front a handler's `event_format` stands for on AWS: an API Gateway HTTP API or REST API event,
//! an ALB target group and listener rule, or a function URL; a raw handler has none.

use serde_norway::Value;
use smyth_config::EventFormat;

use super::route;
use super::sam::{map, Function, ALB_LISTENER_PARAMETER};

/// The HTTP front the handler's `event_format` stands for.
pub(super) fn events(f: &mut Function) {
    let pattern = f.handler.url_path.clone();
    let (kind, payload_format) = match f.handler.event_format {
        EventFormat::ApiGwV2 => ("HttpApi", None),
        EventFormat::ApiGwHttpV1 => ("HttpApi", Some("1.0")),
        EventFormat::ApiGwV1 => ("Api", None),
        EventFormat::Alb => return alb(f),
        EventFormat::FunctionUrl => return function_url(f),
        EventFormat::Raw => {
            return f.cannot(format!(
                "event_format = \"raw\": url_path `{pattern}` has no AWS front; invoke the function directly"
            ))
        }
    };
    match route::api_gateway_path(&pattern) {
        Ok(converted) => {
            let mut properties = map([("Path", converted.path.into()), ("Method", "ANY".into())]);
            if let (Some(version), Value::Mapping(properties)) = (payload_format, &mut properties) {
                properties.insert("PayloadFormatVersion".into(), version.into());
            }
            let event = map([("Type", kind.into()), ("Properties", properties)]);
            f.set("Events", map([(kind, event)]));
            for difference in converted.differences {
                f.cannot(format!("url_path `{pattern}`: {difference}"));
            }
        }
        Err(why) => f.cannot(format!("no {kind} event: {why}")),
    }
}

/// A function URL without IAM auth, as the local route has none. It takes every path: a narrower
/// `url_path` is reported.
fn function_url(f: &mut Function) {
    f.set("FunctionUrlConfig", map([("AuthType", "NONE".into())]));
    let pattern = &f.handler.url_path;
    if !(pattern.starts_with("/{") && pattern.ends_with(":path}") && !pattern[1..].contains('/')) {
        f.cannot(format!("url_path `{pattern}`: a function URL sends every path to the function"));
    }
}

/// With tenant isolation, the front must pass the tenant id as the Invoke call's `X-Amz-Tenant-Id`;
/// the template does not write that mapping.
pub(super) fn tenant_header(f: &mut Function) {
    let (Some(header), true) = (&f.handler.tenant_id_header, f.handler.event_format != EventFormat::Raw)
    else {
        return;
    };
    f.cannot(format!(
        "tenant_id_header = \"{header}\": map it to the X-Amz-Tenant-Id header in the front (not written)"
    ));
}

/// ALB: a Lambda target group, the permission the load balancer needs, and a listener rule on the
/// listener the template is given as a parameter.
fn alb(f: &mut Function) {
    let id = f.logical_id.clone();
    let arn = map([("Fn::GetAtt", Value::Sequence(vec![id.clone().into(), "Arn".into()]))]);
    let reference = |name: &str| map([("Ref", name.into())]);
    let permission = map([
        ("Type", "AWS::Lambda::Permission".into()),
        (
            "Properties",
            map([
                ("Action", "lambda:InvokeFunction".into()),
                ("FunctionName", arn.clone()),
                ("Principal", "elasticloadbalancing.amazonaws.com".into()),
            ]),
        ),
    ]);
    let target_group = map([
        ("Type", "AWS::ElasticLoadBalancingV2::TargetGroup".into()),
        ("DependsOn", format!("{id}AlbPermission").into()),
        (
            "Properties",
            map([("TargetType", "lambda".into()), ("Targets", Value::Sequence(vec![map([("Id", arn)])]))]),
        ),
    ]);
    let priority = f.config.handlers.iter().position(|h| h.name == f.handler.name).unwrap_or(0) as u64 + 1;
    let condition = map([
        ("Field", "path-pattern".into()),
        (
            "PathPatternConfig",
            map([("Values", Value::Sequence(vec![route::alb_path(&f.handler.url_path).into()]))]),
        ),
    ]);
    let forward =
        map([("Type", "forward".into()), ("TargetGroupArn", reference(&format!("{id}AlbTargetGroup")))]);
    let rule = map([
        ("Type", "AWS::ElasticLoadBalancingV2::ListenerRule".into()),
        (
            "Properties",
            map([
                ("ListenerArn", reference(ALB_LISTENER_PARAMETER)),
                ("Priority", priority.into()),
                ("Conditions", Value::Sequence(vec![condition])),
                ("Actions", Value::Sequence(vec![forward])),
            ]),
        ),
    ]);
    f.extra_resources.push((format!("{id}AlbPermission"), permission));
    f.extra_resources.push((format!("{id}AlbTargetGroup"), target_group));
    f.extra_resources.push((format!("{id}AlbRule"), rule));
    let parameter = map([
        ("Type", "String".into()),
        ("Description", "The ALB listener that ALB-format handlers' rules attach to".into()),
    ]);
    f.parameters.push((ALB_LISTENER_PARAMETER.into(), parameter));
    if f.handler.url_path.contains('{') {
        f.cannot(format!(
            "url_path `{}` becomes the ALB path pattern `{}`: `*` matches any text, slashes included",
            f.handler.url_path,
            route::alb_path(&f.handler.url_path)
        ));
    }
}
