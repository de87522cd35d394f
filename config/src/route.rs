//! Starlette-style `url_path` patterns compiled into matchers.
//!
//! `{name}` / `{name:str}` match one segment (`[^/]+`), `{name:int}` digits, `{name:float}` digits with
//! an optional fraction, `{name:uuid}` a lower-case UUID, `{name:path}` anything, slashes included.
//! The whole path must match, as in Starlette.

use std::sync::LazyLock;

use regex_lite::Regex;

/// Starlette's converters and the text each one matches.
const CONVERTERS: &[(&str, &str)] = &[
    ("str", "[^/]+"),
    ("int", "[0-9]+"),
    ("float", r"[0-9]+(?:\.[0-9]+)?"),
    ("uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ("path", ".*"),
];

/// Starlette's parameter syntax: `{name}` or `{name:converter}` (`smyth export` reads patterns with it too).
pub static PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?\}").unwrap());

/// A compiled `url_path` such as `/orders/{id:int}/{rest:path}`.
#[derive(Debug, Clone)]
pub struct RoutePattern {
    source: String,
    regex: Regex,
    params: Vec<String>,
    /// The pattern with parameter names erased (`/orders/{int}`): two routes with the same shape
    /// match exactly the same paths.
    shape: String,
}

impl RoutePattern {
    /// Compiles a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if !pattern.starts_with('/') {
            return Err(format!("`{pattern}` must start with `/`"));
        }
        let mut regex = String::from("^");
        let mut shape = String::new();
        let mut params: Vec<String> = Vec::new();
        let mut rest = 0;
        for caps in PARAM.captures_iter(pattern) {
            let whole = caps.get(0).unwrap();
            let literal = &pattern[rest..whole.start()];
            check_literal(literal, pattern)?;
            regex.push_str(&regex_lite::escape(literal));
            shape.push_str(literal);
            rest = whole.end();

            let name = &caps[1];
            let converter = caps.get(2).map_or("str", |m| m.as_str());
            let Some((_, class)) = CONVERTERS.iter().find(|(c, _)| *c == converter) else {
                let known: Vec<_> = CONVERTERS.iter().map(|(c, _)| *c).collect();
                return Err(format!(
                    "unknown converter `{converter}` in `{{{name}:{converter}}}`; expected one of {}",
                    known.join(", ")
                ));
            };
            if params.iter().any(|p| p == name) {
                return Err(format!("parameter `{name}` appears twice in `{pattern}`"));
            }
            regex.push_str(&format!("({class})"));
            shape.push_str(&format!("{{{converter}}}"));
            params.push(name.to_string());
        }
        let literal = &pattern[rest..];
        check_literal(literal, pattern)?;
        regex.push_str(&regex_lite::escape(literal));
        // API Gateway routes `/hello/` to `/hello` (the event's path keeps the slash).
        if !pattern.ends_with('/') {
            regex.push_str("/?");
        }
        regex.push('$');
        shape.push_str(literal);
        let regex = Regex::new(&regex).map_err(|e| e.to_string())?;
        Ok(Self { source: pattern.to_string(), regex, params, shape })
    }

    /// The path parameters (name, raw matched text) in pattern order, or None when `path` does not match.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        if self.params.is_empty() {
            // Most routes are plain paths: a string compare, not a regex run, on every request.
            let bare = path.strip_suffix('/').filter(|_| !self.source.ends_with('/')).unwrap_or(path);
            return (bare == self.source).then(Vec::new);
        }
        let caps = self.regex.captures(path)?;
        Some(
            self.params.iter().enumerate().map(|(i, name)| (name.clone(), caps[i + 1].to_string())).collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Parameter names in pattern order.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    pub(crate) fn shape(&self) -> &str {
        &self.shape
    }
}

/// A brace left over outside a well-formed `{name:converter}` is a typo, not a literal.
fn check_literal(literal: &str, pattern: &str) -> Result<(), String> {
    if literal.contains(['{', '}']) {
        return Err(format!(
            "malformed parameter in `{pattern}`: expected `{{name}}` or `{{name:converter}}`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        RoutePattern::parse(pattern).unwrap().matches(path)
    }

    fn params(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// (pattern, path, expected params or None for no match)
    type Case<'a> = (&'a str, &'a str, Option<&'a [(&'a str, &'a str)]>);

    #[test]
    fn pattern_table() {
        let uuid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
        let cases: &[Case] = &[
            // literal
            ("/health", "/health", Some(&[])),
            // a trailing slash matches, as API Gateway routes it
            ("/health", "/health/", Some(&[])),
            ("/health", "/health//", None),
            ("/health/", "/health/", Some(&[])),
            ("/health/", "/health", None),
            ("/orders/{id}", "/orders/42/", Some(&[("id", "42")])),
            ("/", "/", Some(&[])),
            ("/health", "/healthz", None),
            ("/a.b", "/axb", None),
            // str (default and explicit)
            ("/orders/{id}", "/orders/42", Some(&[("id", "42")])),
            ("/orders/{id}", "/orders/abc-1", Some(&[("id", "abc-1")])),
            ("/orders/{id}", "/orders/", None),
            ("/orders/{id}", "/orders/a/b", None),
            ("/orders/{id:str}", "/orders/x y", Some(&[("id", "x y")])),
            // int
            ("/products/{id:int}", "/products/7", Some(&[("id", "7")])),
            ("/products/{id:int}", "/products/abc", None),
            ("/products/{id:int}", "/products/-1", None),
            ("/products/{id:int}", "/products/1.5", None),
            // float
            ("/p/{x:float}", "/p/1.5", Some(&[("x", "1.5")])),
            ("/p/{x:float}", "/p/3", Some(&[("x", "3")])),
            ("/p/{x:float}", "/p/.5", None),
            ("/p/{x:float}", "/p/1.", None),
            ("/p/{x:float}", "/p/1e3", None),
            // uuid (lower case only, as Starlette)
            ("/u/{u:uuid}", &format!("/u/{uuid}"), Some(&[("u", uuid)])),
            ("/u/{u:uuid}", &format!("/u/{}", uuid.to_uppercase()), None),
            ("/u/{u:uuid}", "/u/3fa85f64", None),
            // path
            ("/orders/{path:path}", "/orders/a/b/c", Some(&[("path", "a/b/c")])),
            ("/orders/{path:path}", "/orders/", Some(&[("path", "")])),
            ("/orders/{path:path}", "/order", None),
            ("/{path:path}", "/anything/at/all", Some(&[("path", "anything/at/all")])),
            // several, in pattern order
            ("/users/{user}/orders/{id:int}", "/users/ann/orders/3", Some(&[("user", "ann"), ("id", "3")])),
            ("/users/{user}/orders/{id:int}", "/users/ann/orders/x", None),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(m(pattern, path), expected.and_then(params), "pattern {pattern} path {path}");
        }
    }

    #[test]
    fn bad_patterns() {
        for (pattern, needle) in [
            ("orders", "must start with `/`"),
            ("/p/{id:integer}", "unknown converter `integer`"),
            ("/p/{id}/{id}", "appears twice"),
            ("/p/{id", "malformed"),
            ("/p/{1d}", "malformed"),
            ("/p/id}", "malformed"),
        ] {
            let err = RoutePattern::parse(pattern).unwrap_err();
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn shape_ignores_names() {
        let a = RoutePattern::parse("/a/{x}/{y:int}").unwrap();
        let b = RoutePattern::parse("/a/{z:str}/{w:int}").unwrap();
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.as_str(), "/a/{x}/{y:int}");
        assert_eq!(a.params(), ["x", "y"]);
    }
}
