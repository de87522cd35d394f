//! Who may use the client port, decided without I/O: the `Host` check against DNS rebinding, the
//! `Origin` check against cross-site POSTs from any web page, and the size of a request's head. The
//! middleware in `edge.rs` only applies these verdicts.

use std::fmt;
use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::http::Uri;

/// API Gateway's limit on the request line plus headers.
pub const MAX_HEAD: usize = 10_240;

/// The hosts the client port answers to: the bind address, the loopback names and `allowed_hosts`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// `allowed_hosts` holds `"*"`: every host is accepted.
    any: bool,
    /// Lower-case host names (IPv6 without brackets), without ports.
    names: Vec<String>,
}

/// Which kind of client route a path is: the Origin check applies to smyth's own routes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The Lambda Invoke API.
    Invoke,
    /// smyth's own endpoints under `smyth_path_prefix`.
    Prefix,
    /// A handler's `url_path` (or no route at all): the handler owns CORS, as on API Gateway.
    Handler,
}

/// Why a request is refused (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Host(String),
    Origin(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Host(host) => write!(
                f,
                "Host `{host}` is not allowed (DNS rebinding protection): to serve it, add its name to \
                 allowed_hosts in [tool.smyth]"
            ),
            Refusal::Origin(origin) => write!(
                f,
                "requests from the web page at `{origin}` are not allowed: to let it call smyth, add its \
                 host to allowed_hosts in [tool.smyth]"
            ),
        }
    }
}

impl HostPolicy {
    /// `bind` is the `host` key; `allowed` the `allowed_hosts` key.
    pub fn new(bind: &str, allowed: &[String]) -> HostPolicy {
        let fixed = [bind, "localhost", "127.0.0.1", "::1"].into_iter().map(str::to_string);
        HostPolicy {
            any: allowed.iter().any(|name| name == "*"),
            names: fixed.chain(allowed.iter().cloned()).map(|name| normalise(&name)).collect(),
        }
    }

    /// Whether `authority` (`name`, `name:port`, `[v6]:port`) names this server. The port does not
    /// matter: a rebinding page has a foreign *name* whatever port it uses.
    pub fn accepts(&self, authority: &str) -> bool {
        self.any || hostname(authority).is_some_and(|name| self.names.contains(&normalise(name)))
    }

    /// The verdict on one request. `hosts` are its `Host` values (and the authority of an absolute
    /// request target); none at all is an HTTP/1.0 client, never a browser, so it passes.
    pub fn check<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a str>,
        origin: Option<&str>,
        route: Route,
    ) -> Result<(), Refusal> {
        if let Some(host) = hosts.into_iter().find(|host| !self.accepts(host)) {
            return Err(Refusal::Host(host.to_string()));
        }
        match origin {
            Some(origin) if route != Route::Handler && !self.any => {
                let uri = origin.parse::<Uri>().ok().filter(|uri| uri.scheme().is_some());
                let authority = uri.and_then(|uri| uri.authority().cloned());
                match authority {
                    Some(authority) if self.accepts(authority.as_str()) => Ok(()),
                    _ => Err(Refusal::Origin(origin.to_string())),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The kind of route `path` is, given smyth's own prefix.
pub fn route_of(path: &str, prefix: &str) -> Route {
    let prefix = prefix.trim_end_matches('/');
    if path.starts_with("/2015-03-31/functions/") {
        Route::Invoke
    } else if path == prefix || path.starts_with(&format!("{prefix}/")) {
        Route::Prefix
    } else {
        Route::Handler
    }
}

/// The host part of an authority: `[::1]:80` → `::1`, `name:80` → `name`, `::1` (a bare IPv6
/// address, as the `host` key may hold) stays whole. None for an empty name or a bad bracket.
fn hostname(authority: &str) -> Option<&str> {
    let name = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside
    } else if authority.parse::<IpAddr>().is_ok() {
        authority
    } else {
        authority.rsplit_once(':').map_or(authority, |(name, _)| name)
    };
    (!name.is_empty()).then_some(name)
}

/// Names compare case-insensitively, and `localhost.` is `localhost`.
fn normalise(name: &str) -> String {
    name.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// The size of a request's head as sent: request line, header lines and the blank line, each ending
/// in CRLF (`Name: value`; a client that omits the space is counted one byte more, never less).
pub fn head_size(method: &str, target_len: usize, version: &str, headers: &HeaderMap) -> usize {
    let request_line = method.len() + 1 + target_len + 1 + version.len() + 2;
    let fields: usize = headers.iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum();
    request_line + fields + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn policy(bind: &str, allowed: &[&str]) -> HostPolicy {
        HostPolicy::new(bind, &allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn hosts() {
        let loopback = policy("127.0.0.1", &[]);
        let named = policy("127.0.0.1", &["dev.internal", "Box.Local"]);
        let wild = policy("0.0.0.0", &["*"]);
        let v6 = policy("::1", &[]);
        let lan = policy("192.168.1.5", &[]);
        let cases: &[(&HostPolicy, &str, bool)] = &[
            (&loopback, "localhost", true),
            (&loopback, "localhost:8080", true),
            (&loopback, "LOCALHOST:8080", true),
            (&loopback, "localhost.:8080", true),
            (&loopback, "127.0.0.1", true),
            (&loopback, "127.0.0.1:1", true),
            (&loopback, "[::1]", true),
            (&loopback, "[::1]:8080", true),
            (&loopback, "::1", true),
            (&loopback, "evil.example", false),
            (&loopback, "evil.example:8080", false),
            (&loopback, "localhost.evil.example", false),
            (&loopback, "127.0.0.1.evil.example", false),
            (&loopback, "127.0.0.2", false),
            (&loopback, "[::1]x", false),
            (&loopback, "[::1", false),
            (&loopback, "", false),
            (&loopback, ":8080", false),
            (&loopback, "dev.internal", false),
            (&named, "dev.internal", true),
            (&named, "dev.internal:9000", true),
            (&named, "box.local", true),
            (&named, "sub.dev.internal", false),
            (&wild, "evil.example", true),
            (&wild, "", true),
            (&v6, "[::1]:8080", true),
            (&lan, "192.168.1.5:8080", true),
            (&lan, "192.168.1.6:8080", false),
        ];
        for (policy, host, expected) in cases {
            assert_eq!(policy.accepts(host), *expected, "{host} with {policy:?}");
        }
    }

    #[test]
    fn verdicts() {
        use Route::*;
        let p = policy("127.0.0.1", &["dev.internal"]);
        let host = |h: &str| Err(Refusal::Host(h.to_string()));
        let origin = |o: &str| Err(Refusal::Origin(o.to_string()));
        type Case<'a> = (&'a [&'a str], Option<&'a str>, Route, Result<(), Refusal>);
        let cases: &[Case] = &[
            (&["127.0.0.1:8080"], None, Invoke, Ok(())),
            (&[], None, Invoke, Ok(())),
            (&["evil.example"], None, Invoke, host("evil.example")),
            (&["evil.example"], None, Prefix, host("evil.example")),
            (&["evil.example"], None, Handler, host("evil.example")),
            (&["127.0.0.1", "evil.example"], None, Handler, host("evil.example")),
            (&["127.0.0.1"], Some("http://evil.example"), Invoke, origin("http://evil.example")),
            (&["127.0.0.1"], Some("http://evil.example"), Prefix, origin("http://evil.example")),
            (&["127.0.0.1"], Some("http://evil.example"), Handler, Ok(())),
            (&["evil.example"], Some("http://evil.example"), Handler, host("evil.example")),
            (&["127.0.0.1"], Some("null"), Invoke, origin("null")),
            (&["127.0.0.1"], Some("null"), Handler, Ok(())),
            (&["127.0.0.1"], Some("localhost:3000"), Invoke, origin("localhost:3000")),
            (&["127.0.0.1"], Some("http://localhost:3000"), Invoke, Ok(())),
            (&["127.0.0.1"], Some("https://[::1]:8080"), Prefix, Ok(())),
            (&["127.0.0.1"], Some("http://dev.internal"), Invoke, Ok(())),
            (
                &["127.0.0.1"],
                Some("http://localhost.evil.example"),
                Invoke,
                origin("http://localhost.evil.example"),
            ),
            (&[], Some("http://evil.example"), Invoke, origin("http://evil.example")),
        ];
        for (hosts, origin_header, route, expected) in cases {
            let got = p.check(hosts.iter().copied(), *origin_header, *route);
            assert_eq!(&got, expected, "{hosts:?} {origin_header:?} {route:?}");
        }
        let any = policy("127.0.0.1", &["*"]);
        assert_eq!(any.check(["evil.example"], Some("http://evil.example"), Invoke), Ok(()));
    }

    #[test]
    fn refusals_name_the_key_to_change() {
        for refusal in [Refusal::Host("a".into()), Refusal::Origin("http://a".into())] {
            assert!(refusal.to_string().contains("allowed_hosts"), "{refusal}");
        }
    }

    #[test]
    fn routes() {
        let cases = [
            ("/2015-03-31/functions/f/invocations", "/_smyth", Route::Invoke),
            ("/_smyth/status", "/_smyth", Route::Prefix),
            ("/_smyth/", "/_smyth", Route::Prefix),
            ("/_smyth", "/_smyth/", Route::Prefix),
            ("/_smythe", "/_smyth", Route::Handler),
            ("/orders/1", "/_smyth", Route::Handler),
            ("/", "/_smyth", Route::Handler),
        ];
        for (path, prefix, expected) in cases {
            assert_eq!(route_of(path, prefix), expected, "{path} under {prefix}");
        }
    }

    #[test]
    fn head_sizes_count_every_byte_of_a_canonical_head() {
        let mut headers = HeaderMap::new();
        let raw = "GET /a?b=1 HTTP/1.1\r\nhost: x\r\nx-pad: 12345\r\nx-pad: 6\r\n\r\n";
        headers.append(HeaderName::from_static("host"), HeaderValue::from_static("x"));
        headers.append(HeaderName::from_static("x-pad"), HeaderValue::from_static("12345"));
        headers.append(HeaderName::from_static("x-pad"), HeaderValue::from_static("6"));
        assert_eq!(head_size("GET", "/a?b=1".len(), "HTTP/1.1", &headers), raw.len());
        assert_eq!(head_size("GET", 1, "HTTP/1.0", &HeaderMap::new()), "GET / HTTP/1.0\r\n\r\n".len());
    }
}
