//! Where an asynchronous invocation's record goes when it ends (`on_success` / `on_failure`, AWS's
//! async destinations): another handler of the project, or a JSON-lines file. One pure parser serves
//! the config keys and the Lambda API's `DestinationConfig` alike, so both accept the same strings.

use std::path::{Component, Path, PathBuf};

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `handler:NAME` (or the handler's function ARN): invoked asynchronously with the record as event.
    Handler(String),
    /// `file:PATH`: one record per line appended to this file (absolute: the project root joined).
    File(PathBuf),
}

impl Destination {
    /// The string form the config key takes, with the file path relative to `root` again.
    pub fn describe(&self, root: &Path) -> String {
        match self {
            Destination::Handler(name) => format!("handler:{name}"),
            Destination::File(path) => {
                format!("file:{}", path.strip_prefix(root).unwrap_or(path).display())
            }
        }
    }
}

/// Parses `"handler:NAME"`, `"file:PATH"` (relative to `root`, inside the project) or a project
/// handler's function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`, optionally `:$LATEST`).
/// `is_handler` says which names are the project's handlers. The error says what was wrong.
pub fn parse_destination(
    text: &str,
    root: &Path,
    is_handler: impl Fn(&str) -> bool,
) -> Result<Destination, String> {
    let handler = |name: &str| {
        if is_handler(name) {
            Ok(Destination::Handler(name.to_string()))
        } else {
            Err(format!("`{text}` names no handler of this project (`{name}` is not a handler)"))
        }
    };
    if let Some(name) = text.strip_prefix("handler:") {
        return handler(name);
    }
    if let Some(rest) = text.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        return match parts.as_slice() {
            [_, "lambda", _, _, "function", name] | [_, "lambda", _, _, "function", name, "$LATEST"] => {
                handler(name)
            }
            _ => Err(format!(
                "`{text}` is not a Lambda function ARN of this project \
                 (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            )),
        };
    }
    if let Some(path) = text.strip_prefix("file:") {
        let relative = Path::new(path);
        let inside = relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if path.is_empty() || !inside || path.ends_with('/') {
            return Err(format!(
                "`{text}`: the file must be a relative path inside the project (e.g. \"file:failed.jsonl\")"
            ));
        }
        return Ok(Destination::File(root.join(relative)));
    }
    Err(format!("`{text}` is not a destination: use \"handler:NAME\" or \"file:PATH\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_strings() {
        let root = Path::new("/project");
        let handlers = |name: &str| ["orders", "audit"].contains(&name);
        let ok = |d: Destination| Ok::<_, String>(d);
        let cases: Vec<(&str, Result<Destination, String>)> = vec![
            ("handler:audit", ok(Destination::Handler("audit".into()))),
            (
                "arn:aws:lambda:eu-central-1:000000000000:function:audit",
                ok(Destination::Handler("audit".into())),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:audit:$LATEST",
                ok(Destination::Handler("audit".into())),
            ),
            ("file:failed.jsonl", ok(Destination::File("/project/failed.jsonl".into()))),
            ("file:out/ok.jsonl", ok(Destination::File("/project/out/ok.jsonl".into()))),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_destination(text, root, handlers), expected, "{text}");
        }
        let errors = [
            ("handler:nope", "names no handler"),
            ("handler:", "names no handler"),
            ("arn:aws:lambda:eu-central-1:000000000000:function:nope", "names no handler"),
            ("arn:aws:sqs:eu-central-1:000000000000:queue", "not a Lambda function ARN"),
            ("arn:aws:lambda:eu-central-1:000000000000:function:audit:prod", "not a Lambda function ARN"),
            ("file:", "relative path inside"),
            ("file:/etc/passwd", "relative path inside"),
            ("file:../outside.jsonl", "relative path inside"),
            ("file:logs/", "relative path inside"),
            ("audit", "not a destination"),
        ];
        for (text, why) in errors {
            let err = parse_destination(text, root, handlers).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn describe_gives_back_the_key_form() {
        let root = Path::new("/project");
        assert_eq!(Destination::File("/project/a/b.jsonl".into()).describe(root), "file:a/b.jsonl");
        assert_eq!(Destination::Handler("audit".into()).describe(root), "handler:audit");
    }
}
