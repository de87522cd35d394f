//! AWS's invocation record: what an async destination receives when an event ends (success, out of
//! retries, or too old), built by one pure function so its shape is tested without a process.
//! Shape: `version`, `timestamp`, `requestContext{requestId, functionArn, condition,
//! approximateInvokeCount}`, `requestPayload`, `responseContext{statusCode, executedVersion,
//! functionError}`, `responsePayload` (AWS docs, "Capturing records of asynchronous invocations").

use serde_json::{json, Value};

use super::verdict::Verdict;

/// Why the event ended, as the record's `requestContext.condition` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    /// The condition of an event's final verdict; None while it lives on.
    pub fn of(verdict: Verdict) -> Option<Condition> {
        match verdict {
            Verdict::Done => Some(Condition::Success),
            Verdict::FailedForGood => Some(Condition::RetriesExhausted),
            Verdict::TooOld => Some(Condition::EventAgeExceeded),
            Verdict::RetryAfter(_) | Verdict::Requeue => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What the last attempt answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The result, or the error document `{"errorMessage","errorType",...}`.
    pub body: Vec<u8>,
    /// The handler raised, timed out or crashed (`responseContext.functionError: "Unhandled"`).
    pub function_error: bool,
}

/// Everything the record says, gathered by the queue.
pub struct Ending<'a> {
    pub request_id: &'a str,
    pub function_arn: &'a str,
    pub condition: Condition,
    /// Attempts that reached the function.
    pub invoke_count: u32,
    pub request_payload: &'a [u8],
    /// None when no attempt ever ran (an event that aged out while throttled).
    pub response: Option<&'a Response>,
    /// RFC 3339 with milliseconds, UTC (`2019-11-14T18:16:05.568Z`).
    pub timestamp: String,
}

/// The record as a JSON value. Payloads that are JSON are embedded as JSON; anything else as a string.
pub fn invocation_record(ending: &Ending<'_>) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": ending.timestamp,
        "requestContext": {
            "requestId": ending.request_id,
            "functionArn": ending.function_arn,
            "condition": ending.condition.as_str(),
            "approximateInvokeCount": ending.invoke_count,
        },
        "requestPayload": embed(ending.request_payload),
    });
    if let Some(response) = ending.response {
        let mut context = json!({"statusCode": 200, "executedVersion": "$LATEST"});
        if response.function_error {
            context["functionError"] = "Unhandled".into();
        }
        record["responseContext"] = context;
        record["responsePayload"] = embed(&response.body);
    }
    record
}

fn embed(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned().into())
}

/// Now as the record's timestamp.
pub fn timestamp_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending<'a>(condition: Condition, response: Option<&'a Response>, count: u32) -> Ending<'a> {
        Ending {
            request_id: "r-1",
            function_arn: "arn:aws:lambda:eu-central-1:000000000000:function:orders:$LATEST",
            condition,
            invoke_count: count,
            request_payload: br#"{"n": 1}"#,
            response,
            timestamp: "2019-11-14T18:16:05.568Z".into(),
        }
    }

    #[test]
    fn records_by_condition() {
        let ok = Response { body: br#"{"ok": true}"#.to_vec(), function_error: false };
        let failed = Response { body: br#"{"errorType":"RuntimeError"}"#.to_vec(), function_error: true };
        let context = |function_error: bool| {
            let mut c = json!({"statusCode": 200, "executedVersion": "$LATEST"});
            if function_error {
                c["functionError"] = "Unhandled".into();
            }
            c
        };
        let cases = [
            (ending(Condition::Success, Some(&ok), 1), Some((context(false), json!({"ok": true})))),
            (
                ending(Condition::RetriesExhausted, Some(&failed), 3),
                Some((context(true), json!({"errorType": "RuntimeError"}))),
            ),
            (ending(Condition::EventAgeExceeded, None, 0), None),
        ];
        for (ending, response) in cases {
            let record = invocation_record(&ending);
            assert_eq!(record["version"], "1.0");
            assert_eq!(record["timestamp"], "2019-11-14T18:16:05.568Z");
            assert_eq!(
                record["requestContext"],
                json!({
                    "requestId": "r-1",
                    "functionArn": ending.function_arn,
                    "condition": ending.condition.as_str(),
                    "approximateInvokeCount": ending.invoke_count,
                })
            );
            assert_eq!(record["requestPayload"], json!({"n": 1}));
            match response {
                Some((context, payload)) => {
                    assert_eq!(record["responseContext"], context);
                    assert_eq!(record["responsePayload"], payload);
                }
                None => assert!(
                    record.get("responseContext").is_none() && record.get("responsePayload").is_none()
                ),
            }
        }
    }

    #[test]
    fn a_payload_that_is_not_json_is_a_string() {
        let raw = Response { body: b"plain".to_vec(), function_error: false };
        let record = invocation_record(&ending(Condition::Success, Some(&raw), 1));
        assert_eq!(record["responsePayload"], "plain");
    }

    #[test]
    fn conditions_of_final_verdicts() {
        assert_eq!(Condition::of(Verdict::Done), Some(Condition::Success));
        assert_eq!(Condition::of(Verdict::FailedForGood), Some(Condition::RetriesExhausted));
        assert_eq!(Condition::of(Verdict::TooOld), Some(Condition::EventAgeExceeded));
        assert_eq!(Condition::of(Verdict::Requeue), None);
        assert!(timestamp_now().ends_with('Z'));
    }
}
