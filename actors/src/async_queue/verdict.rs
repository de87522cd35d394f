//! What becomes of an asynchronous event after an attempt, or while it waits: AWS's rules for async
//! invocation as one pure decision, so the queue actor only carries it out and the table below tests it.
//! Only a function error (the handler raised, timed out, crashed or ran out of memory) uses up a retry;
//! a throttle never does, and no event lives past `maximum_event_age`.

use std::time::Duration;

/// How one attempt ended, or that the event has not been attempted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Succeeded,
    /// `Outcome::HandlerError` or `Outcome::Failed`: counts against `maximum_retry_attempts`.
    FunctionError,
    /// No capacity: the sync queue is full, reserved concurrency is busy or the account limit is hit.
    Throttled,
    /// The event waits in the queue (checked before each attempt and on every sweep).
    Waiting,
    /// The event can never run (its function is gone, or its spooled payload cannot be read).
    Lost,
}

/// The function's async settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub maximum_retry_attempts: u32,
    pub retry_delay: Duration,
    pub maximum_event_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Try again after this pause (AWS: `retry_delay`, then twice that).
    RetryAfter(Duration),
    /// Back in the queue until capacity frees.
    Requeue,
    /// Older than `maximum_event_age` (or would be by its next retry): dropped with a warning.
    TooOld,
    /// Out of retries (or unrunnable): dropped with a warning.
    FailedForGood,
}

/// Decides the event's fate. `failures`: function errors before this attempt; `age`: since it was
/// accepted.
pub fn verdict(attempt: Attempt, failures: u32, age: Duration, policy: &Policy) -> Verdict {
    match attempt {
        Attempt::Succeeded => Verdict::Done,
        Attempt::Lost => Verdict::FailedForGood,
        Attempt::Throttled | Attempt::Waiting if age > policy.maximum_event_age => Verdict::TooOld,
        Attempt::Throttled | Attempt::Waiting => Verdict::Requeue,
        Attempt::FunctionError => {
            let failures = failures + 1;
            if failures > policy.maximum_retry_attempts {
                return Verdict::FailedForGood;
            }
            let pause = policy.retry_delay * failures;
            if age + pause > policy.maximum_event_age {
                Verdict::TooOld
            } else {
                Verdict::RetryAfter(pause)
            }
        }
    }
}

/// When no slot frees (say `reserved_concurrency = 0`), a function's throttled events are tried again
/// after this pause, `throttles` being the throttled attempts in a row: AWS's backoff for throttled
/// async events, 1 s doubling up to 5 minutes. A freed slot ends the wait at once.
pub fn throttle_backoff(throttles: u32) -> Duration {
    crate::backoff::doubling(Duration::from_secs(1), throttles, Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_backoff_doubles_from_one_second_to_five_minutes() {
        let cases = [(0, 1), (1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)];
        for (throttles, seconds) in cases {
            assert_eq!(throttle_backoff(throttles), secs(seconds), "after {throttles} throttles");
        }
    }
    use Attempt::*;
    use Verdict::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn verdict_table() {
        let aws =
            Policy { maximum_retry_attempts: 2, retry_delay: secs(60), maximum_event_age: secs(21_600) };
        let no_retries = Policy { maximum_retry_attempts: 0, ..aws };
        let young = Policy { maximum_event_age: secs(60), retry_delay: secs(1), ..aws };
        let cases: Vec<(Attempt, u32, Duration, Policy, Verdict)> = vec![
            (Succeeded, 0, secs(0), aws, Done),
            (Succeeded, 2, secs(21_599), aws, Done),
            // function errors: retry after delay, then twice delay, then give up
            (FunctionError, 0, secs(0), aws, RetryAfter(secs(60))),
            (FunctionError, 1, secs(60), aws, RetryAfter(secs(120))),
            (FunctionError, 2, secs(180), aws, FailedForGood),
            (FunctionError, 0, secs(0), no_retries, FailedForGood),
            // a retry that would land past the event's maximum age is not made
            (FunctionError, 0, secs(60), young, TooOld),
            (FunctionError, 0, secs(59), young, RetryAfter(secs(1))),
            (FunctionError, 0, secs(58), young, RetryAfter(secs(1))),
            (FunctionError, 1, secs(57), young, RetryAfter(secs(2))),
            (FunctionError, 1, secs(59), young, TooOld),
            // a throttle never uses up a retry, however many came before
            (Throttled, 0, secs(0), aws, Requeue),
            (Throttled, 2, secs(3_600), aws, Requeue),
            (Throttled, 0, secs(0), no_retries, Requeue),
            (Throttled, 0, secs(61), young, TooOld),
            (Throttled, 0, secs(60), young, Requeue),
            // waiting: kept until older than maximum_event_age
            (Waiting, 0, secs(0), aws, Requeue),
            (Waiting, 1, secs(21_600), aws, Requeue),
            (Waiting, 1, secs(21_601), aws, TooOld),
            (Waiting, 0, secs(61), young, TooOld),
            // unrunnable
            (Lost, 0, secs(0), aws, FailedForGood),
        ];
        for (attempt, failures, age, policy, expected) in cases {
            assert_eq!(
                verdict(attempt, failures, age, &policy),
                expected,
                "{attempt:?} {failures} {age:?} {policy:?}"
            );
        }
    }
}
