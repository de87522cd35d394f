//! How an asynchronous event leaves the queue: its invocation record goes to the function's
//! destination (`on_success` / `on_failure`: another handler, invoked asynchronously, or a JSON-lines
//! file), and an event that fails for good with no destination is logged with its payload, so
//! nothing vanishes unseen. Also the run-time change of a function's async settings.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use actix::prelude::*;
use smyth_config::{parse_destination, Destination};

use super::record::{invocation_record, timestamp_now, Condition, Ending};
use super::{AsyncQueue, Event, Payload, Verdict};

/// Replaces a function's async settings while the server runs (PutFunctionEventInvokeConfig): they
/// apply to events already waiting as well. Destinations are `None` (no destination) or the same
/// strings as the config keys (`handler:NAME`, `file:PATH`, or a project handler's function ARN).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SetEventInvokeConfig {
    pub function: String,
    pub maximum_retry_attempts: u32,
    pub maximum_event_age: Duration,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
}

impl AsyncQueue {
    /// The event leaves the queue; its record goes to its destination (the spooled payload, if any,
    /// is deleted once that is done).
    pub(super) fn finish(&mut self, event: Event, how: Verdict, detail: &str, ctx: &mut Context<Self>) {
        self.held -= 1;
        let Some(condition) = Condition::of(how) else { return };
        let Some(function) = self.functions.get_mut(&event.function) else { return };
        if condition != Condition::Success {
            function.dropped += 1;
        }
        let function = &*function;
        let (name, request_id) = (&event.function, &event.request_id);
        let attempts = event.invocations;
        match condition {
            Condition::EventAgeExceeded => {
                let age = event.accepted.elapsed();
                let limit = function.policy.maximum_event_age;
                tracing::warn!(function = %name, request_id = %request_id, age_s = age.as_secs(), maximum_event_age_s = limit.as_secs(), "asynchronous event dropped: it reached maximum_event_age before it could run");
            }
            Condition::RetriesExhausted => {
                tracing::warn!(function = %name, request_id = %request_id, attempts, "asynchronous invocation failed for good: {detail}");
            }
            Condition::Success => {}
        }
        let destination = match condition {
            Condition::Success => function.on_success.clone(),
            _ => function.on_failure.clone(),
        };
        if destination.is_none() && condition == Condition::Success {
            return;
        }
        let function_arn = format!("arn:aws:lambda:{}:000000000000:function:{name}:$LATEST", self.region);
        let source = event.payload.source();
        let (name, request_id) = (event.function.clone(), event.request_id.clone());
        let deliver = async move {
            let payload = source.load().await.unwrap_or_default();
            let record = invocation_record(&Ending {
                request_id: &event.request_id,
                function_arn: &function_arn,
                condition,
                invoke_count: event.invocations,
                request_payload: &payload,
                response: event.last_response.as_ref(),
                timestamp: timestamp_now(),
            });
            // The spooled file goes with the event, now that its payload is read.
            drop(event);
            (record.to_string(), payload, destination)
        };
        ctx.spawn(deliver.into_actor(self).map(move |(record, payload, destination), act, ctx| {
            match destination {
                None => tracing::warn!(
                    function = %name,
                    request_id = %request_id,
                    condition = condition.as_str(),
                    "asynchronous event lost (no on_failure destination); its payload: {}",
                    String::from_utf8_lossy(&payload)
                ),
                Some(destination) => act.deliver(destination, record, ctx),
            }
        }));
    }

    fn deliver(&mut self, destination: Destination, record: String, ctx: &mut Context<Self>) {
        match destination {
            Destination::Handler(name) => {
                let payload = Payload::Memory(record.clone().into());
                if let Err(refused) = self.accept(&name, payload, None, None, None, ctx) {
                    tracing::warn!(destination = %name, "cannot send an asynchronous invocation record ({refused}); the record: {record}");
                }
            }
            Destination::File(path) => {
                actix_rt::task::spawn_blocking(move || {
                    if let Err(err) = append_line(&path, &record) {
                        tracing::warn!(destination = %path.display(), "cannot append an asynchronous invocation record ({err}); the record: {record}");
                    }
                });
            }
        }
    }
}

/// Appends `record` and a newline in one `write` on an `O_APPEND` descriptor, so records from
/// concurrent appends never interleave.
fn append_line(path: &Path, record: &str) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(record.len() + 1);
    line.extend_from_slice(record.as_bytes());
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let written = file.write(&line)?;
    if written != line.len() {
        return Err(std::io::Error::other(format!("short write: {written} of {} bytes", line.len())));
    }
    Ok(())
}

impl Handler<SetEventInvokeConfig> for AsyncQueue {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: SetEventInvokeConfig, _: &mut Context<Self>) -> Self::Result {
        let names: Vec<String> = self.functions.keys().cloned().collect();
        let parse = |text: &Option<String>| {
            text.as_deref()
                .map(|text| parse_destination(text, &self.root, |name| names.iter().any(|n| n == name)))
                .transpose()
        };
        let on_success = parse(&msg.on_success)?;
        let on_failure = parse(&msg.on_failure)?;
        let Some(function) = self.functions.get_mut(&msg.function) else {
            return Err(format!("function not found: {}", msg.function));
        };
        function.policy.maximum_retry_attempts = msg.maximum_retry_attempts;
        function.policy.maximum_event_age = msg.maximum_event_age;
        function.on_success = on_success;
        function.on_failure = on_failure;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_appends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::thread::scope(|scope| {
            for t in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for n in 0..50 {
                        let record = format!("{{\"t\":{t},\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(5000));
                        append_line(path, &record).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 400);
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("each line is one whole record");
        }
    }
}
