//! The state-leak detector's and replay's comparison of two results, as pure functions: results are
//! normalised (request ids, pids, worker names, timestamps: values that differ between any two runs
//! by design), diffed as JSON (RFC 6902, `json-patch`), and a difference that two fresh runs of the
//! same event also show is noise, not a leak.

use std::sync::LazyLock;

use json_patch::{Patch, PatchOperation};
use regex_lite::Regex;
use serde_json::{json, Value};

use crate::invocation::{InvokeResult, Outcome};

/// What stands for a value that is one run's own (its request id, pid, worker, log stream).
pub const CONTEXT: &str = "<context>";
/// What stands for a date-time inside a string.
pub const TIMESTAMP: &str = "<timestamp>";

/// ISO 8601 / RFC 3339 date-times, and the `10/Mar/2026:12:00:00 +0000` of API Gateway events.
static TIMESTAMPS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?|\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
    )
    .expect("a valid pattern")
});

/// An invocation's result as JSON: the handler's value, or `{"errorType","errorMessage"}` for an
/// error (the stack trace is left out: its frames are the same code, not state).
pub fn result_json(result: &InvokeResult) -> Value {
    match result {
        Ok(Outcome::Success { body, .. }) => serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into())),
        Ok(Outcome::HandlerError { body, .. }) => {
            let error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            json!({"errorType": error["errorType"], "errorMessage": error["errorMessage"]})
        }
        Ok(Outcome::Failed { error, message, .. }) => {
            json!({"errorType": error.error_type(), "errorMessage": message})
        }
        Err(rejection) => json!({"errorType": "Rejected", "errorMessage": rejection.to_string()}),
    }
}

/// `value` with every run's own value (`context`: request ids, pids, worker names …) replaced by
/// [`CONTEXT`], wherever it appears in a string or as a whole number, and date-times by [`TIMESTAMP`].
pub fn normalize(value: &Value, context: &[String]) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            for known in context.iter().filter(|c| !c.is_empty()) {
                if s.contains(known.as_str()) {
                    s = s.replace(known.as_str(), CONTEXT);
                }
            }
            Value::String(TIMESTAMPS.replace_all(&s, TIMESTAMP).into_owned())
        }
        Value::Number(n) if context.contains(&n.to_string()) => Value::String(CONTEXT.into()),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, context)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), normalize(v, context))).collect())
        }
        other => other.clone(),
    }
}

/// The difference from `from` to `to`, as a JSON patch.
pub fn diff(from: &Value, to: &Value) -> Patch {
    json_patch::diff(from, to)
}

/// How a warm result compares with a fresh environment's.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// The same once normalised.
    Same,
    /// They differ: run the fresh side once more to tell a leak from noise.
    AskAgain,
    /// They differ only where two fresh runs differ too (time, randomness).
    Noise,
    /// The warm result differs from a fresh one where fresh runs agree: state leaked. The patch turns
    /// the fresh result into the warm one.
    Leak(Patch),
}

/// Compares a warm result with a fresh run's (and, once they differ, a second fresh run's), all
/// normalised with `context` first.
pub fn compare(warm: &Value, fresh: &Value, fresh_again: Option<&Value>, context: &[String]) -> Comparison {
    let (warm, fresh) = (normalize(warm, context), normalize(fresh, context));
    let leaked = diff(&fresh, &warm);
    if leaked.0.is_empty() {
        return Comparison::Same;
    }
    let Some(again) = fresh_again else { return Comparison::AskAgain };
    let noise = diff(&fresh, &normalize(again, context));
    let noisy: Vec<String> = noise.0.iter().map(|op| op_path(op).to_string()).collect();
    let kept: Vec<PatchOperation> =
        leaked.0.into_iter().filter(|op| !noisy.iter().any(|n| related(op_path(op), n))).collect();
    if kept.is_empty() {
        Comparison::Noise
    } else {
        Comparison::Leak(Patch(kept))
    }
}

fn op_path(op: &PatchOperation) -> &str {
    match op {
        PatchOperation::Add(o) => o.path.as_str(),
        PatchOperation::Remove(o) => o.path.as_str(),
        PatchOperation::Replace(o) => o.path.as_str(),
        PatchOperation::Move(o) => o.path.as_str(),
        PatchOperation::Copy(o) => o.path.as_str(),
        PatchOperation::Test(o) => o.path.as_str(),
    }
}

/// One path is the other or inside it: a change at either touches the same value.
fn related(a: &str, b: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        inner == outer
            || outer.is_empty()
            || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
    };
    inside(a, b) || inside(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::{FailureKind, Rejection};

    fn ctx(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn paths(patch: &Patch) -> Vec<String> {
        patch.0.iter().map(|op| op_path(op).to_string()).collect()
    }

    #[test]
    fn comparisons() {
        let context = ctx(&["req-warm", "req-fresh", "req-again", "4242", "h:0", "h:shadow"]);
        // (case, warm, fresh, fresh again, expected verdict, the leak's paths)
        type Case = (&'static str, Value, Value, Option<Value>, &'static str, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            ("equal", json!({"a": 1}), json!({"a": 1}), None, "same", vec![]),
            ("a counter asks again", json!({"count": 2}), json!({"count": 1}), None, "again", vec![]),
            (
                "a counter leaks",
                json!({"count": 2}),
                json!({"count": 1}),
                Some(json!({"count": 1})),
                "leak",
                vec!["/count"],
            ),
            (
                "time is noise",
                json!(1764500000.5),
                json!(1764500001.25),
                Some(json!(1764500002.0)),
                "noise",
                vec![],
            ),
            (
                "noise in one field, a leak in another",
                json!({"t": 1.5, "n": 3}),
                json!({"t": 2.5, "n": 1}),
                Some(json!({"t": 3.5, "n": 1})),
                "leak",
                vec!["/n"],
            ),
            (
                "request ids differ by design",
                json!({"id": "req-warm"}),
                json!({"id": "req-fresh"}),
                None,
                "same",
                vec![],
            ),
            (
                "an id inside a message",
                json!({"errorMessage": "RequestId: req-warm Error: Task timed out"}),
                json!({"errorMessage": "RequestId: req-fresh Error: Task timed out"}),
                None,
                "same",
                vec![],
            ),
            ("pids as numbers", json!({"pid": 4242}), json!({"pid": "4242"}), None, "same", vec![]),
            ("worker names", json!({"worker": "h:0"}), json!({"worker": "h:shadow"}), None, "same", vec![]),
            (
                "timestamps in strings",
                json!({"at": "2026-11-30T11:00:00.123Z", "log": "10/Mar/2026:12:00:00 +0000"}),
                json!({"at": "2026-11-30T11:00:05Z", "log": "10/Mar/2026:12:00:09 +0000"}),
                None,
                "same",
                vec![],
            ),
            (
                "a cache filled by earlier events",
                json!({"seen": ["a", "b"]}),
                json!({"seen": ["b"]}),
                Some(json!({"seen": ["b"]})),
                "leak",
                vec!["/seen/0", "/seen/1"],
            ),
            (
                "a whole value that is noise hides changes inside it",
                json!({"r": {"x": 1}}),
                json!({"r": {"x": 2}}),
                Some(json!({"r": 5})),
                "noise",
                vec![],
            ),
        ];
        for (case, warm, fresh, again, expected, leak_paths) in cases {
            let got = compare(&warm, &fresh, again.as_ref(), &context);
            match (expected, &got) {
                ("same", Comparison::Same)
                | ("again", Comparison::AskAgain)
                | ("noise", Comparison::Noise) => {}
                ("leak", Comparison::Leak(patch)) => assert_eq!(paths(patch), leak_paths, "{case}"),
                _ => panic!("{case}: expected {expected}, got {got:?}"),
            }
        }
    }

    #[test]
    fn results_become_json() {
        let ok = Ok(Outcome::Success { request_id: "r".into(), body: r#"{"a":1}"#.into() });
        assert_eq!(result_json(&ok), json!({"a": 1}));
        let text = Ok(Outcome::Success { request_id: "r".into(), body: "plain".into() });
        assert_eq!(result_json(&text), json!("plain"));
        let raised = Ok(Outcome::HandlerError {
            request_id: "r".into(),
            body: r#"{"errorType":"ValueError","errorMessage":"no","stackTrace":["  File x"]}"#.into(),
        });
        assert_eq!(result_json(&raised), json!({"errorType": "ValueError", "errorMessage": "no"}));
        let died = Ok(Outcome::Failed {
            request_id: "r".into(),
            error: FailureKind::Exited,
            message: "gone".into(),
        });
        assert_eq!(result_json(&died), json!({"errorType": "Runtime.ExitError", "errorMessage": "gone"}));
        let refused = Err(Rejection::Unavailable);
        assert_eq!(result_json(&refused)["errorType"], "Rejected");
    }
}
