//! Starlette `url_path` patterns in the path syntax of the AWS services a handler is exported to:
//! API Gateway (`{id}`, greedy `{rest+}`) and ALB listener rules (`*` wildcards). Pure functions.

use smyth_config::ROUTE_PARAM as PARAM;

/// A pattern as API Gateway writes it, with what it matches differently from Starlette.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPath {
    pub path: String,
    /// Each a sentence: what the AWS route matches that the local one does not (or the reverse).
    pub differences: Vec<String>,
}

/// `/orders/{id:int}` → `/orders/{id}`, `/files/{p:path}` → `/files/{p+}`. API Gateway parameters are
/// whole segments and a greedy one comes last: a pattern that breaks either rule has no equivalent.
pub fn api_gateway_path(pattern: &str) -> Result<GatewayPath, String> {
    let mut path = String::new();
    let mut differences = Vec::new();
    let mut rest = 0;
    for caps in PARAM.captures_iter(pattern) {
        let whole = caps.get(0).unwrap();
        let (name, converter) = (&caps[1], caps.get(2).map_or("str", |m| m.as_str()));
        let whole_segment = pattern[..whole.start()].ends_with('/')
            && matches!(pattern[whole.end()..].chars().next(), None | Some('/'));
        if !whole_segment {
            return Err(format!(
                "`{{{name}}}` in `{pattern}` is part of a segment; API Gateway parameters are whole segments"
            ));
        }
        path.push_str(&pattern[rest..whole.start()]);
        rest = whole.end();
        match converter {
            "path" if whole.end() != pattern.len() => {
                return Err(format!("`{{{name}:path}}` in `{pattern}` is not last; API Gateway's greedy `{{{name}+}}` must be"));
            }
            "path" => {
                path.push_str(&format!("{{{name}+}}"));
                differences.push(format!(
                    "`{{{name}+}}` needs at least one character where `{{{name}:path}}` also matches none"
                ));
            }
            "str" => path.push_str(&format!("{{{name}}}")),
            typed => {
                path.push_str(&format!("{{{name}}}"));
                differences
                    .push(format!("`{{{name}:{typed}}}` becomes `{{{name}}}`, which matches any segment"));
            }
        }
    }
    path.push_str(&pattern[rest..]);
    Ok(GatewayPath { path, differences })
}

/// An ALB listener rule's path pattern: every parameter becomes `*` (which also spans slashes).
pub fn alb_path(pattern: &str) -> String {
    PARAM.replace_all(pattern, "*").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starlette_patterns_become_api_gateway_paths() {
        let cases: &[(&str, &str, usize)] = &[
            ("/", "/", 0),
            ("/slow", "/slow", 0),
            ("/orders/{id}", "/orders/{id}", 0),
            ("/orders/{id:str}", "/orders/{id}", 0),
            ("/orders/{id:int}", "/orders/{id}", 1),
            ("/prices/{x:float}/{u:uuid}", "/prices/{x}/{u}", 2),
            ("/orders/{path:path}", "/orders/{path+}", 1),
            ("/{proxy:path}", "/{proxy+}", 1),
            ("/users/{user_id}/orders/{order_id:int}", "/users/{user_id}/orders/{order_id}", 1),
            ("/a/{b}/c/{rest:path}", "/a/{b}/c/{rest+}", 1),
        ];
        for (pattern, path, differences) in cases {
            let got = api_gateway_path(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(&got.path, path, "{pattern}");
            assert_eq!(got.differences.len(), *differences, "{pattern}: {:?}", got.differences);
        }
    }

    #[test]
    fn patterns_api_gateway_cannot_express_are_refused() {
        for pattern in ["/files/{name}.json", "/v{version:int}/items", "/files/{p:path}/meta", "/x-{id}"] {
            assert!(api_gateway_path(pattern).is_err(), "{pattern}");
        }
    }

    #[test]
    fn alb_paths_use_wildcards() {
        let cases = [
            ("/slow", "/slow"),
            ("/orders/{id:int}", "/orders/*"),
            ("/orders/{path:path}", "/orders/*"),
            ("/files/{name}.json", "/files/*.json"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(alb_path(pattern), expected, "{pattern}");
        }
    }
}
