//! The state-leak detector's effects: a warm invocation's event is run again on a fresh shadow (and
//! once more when the results differ, to tell noise from a leak); a leak is one WARN and a count in
//! the status. The decision is `compare::compare`; this only runs the environments.

use actix::prelude::*;

use super::compare::{compare, result_json, Comparison};
use super::{clone_for_shadow, ShadowRunner, StateLeak};
use crate::invocation::{Invocation, InvokeResult, Outcome};
use crate::status::epoch_ms;

/// Check one warm invocation: `warm` is how it ended on the pool's worker `worker` (whose pid was
/// `pid`). Sent once the client has its answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckState {
    pub invocation: Invocation,
    pub warm: InvokeResult,
    pub worker: String,
    pub pid: Option<u32>,
}

fn request_id(result: &InvokeResult) -> String {
    match result {
        Ok(Outcome::Success { request_id, .. })
        | Ok(Outcome::HandlerError { request_id, .. })
        | Ok(Outcome::Failed { request_id, .. }) => request_id.clone(),
        Err(_) => String::new(),
    }
}

impl Handler<CheckState> for ShadowRunner {
    type Result = AtomicResponse<Self, ()>;

    /// Like any shadow job, one at a time.
    fn handle(&mut self, msg: CheckState, ctx: &mut Context<Self>) -> Self::Result {
        let worker = self.worker(ctx);
        let first = ShadowRunner::run_all(worker.clone(), vec![clone_for_shadow(&msg.invocation)]);
        let again = ShadowRunner::run_all(worker, vec![clone_for_shadow(&msg.invocation)]);
        let (handler, leaks) = (self.handler.clone(), self.leaks.clone());
        let mut context: Vec<String> = self.context.as_ref().clone();
        context.push(msg.worker.clone());
        context.extend(msg.pid.map(|pid| pid.to_string()));
        let job = async move {
            let warm_id = request_id(&msg.warm);
            let fresh = first.await.pop().unwrap_or(Err(crate::invocation::Rejection::Unavailable));
            let fresh_id = request_id(&fresh);
            context.extend([warm_id.clone(), fresh_id.clone()]);
            let (warm, fresh) = (result_json(&msg.warm), result_json(&fresh));
            let mut verdict = compare(&warm, &fresh, None, &context);
            if verdict == Comparison::AskAgain {
                let fresh_again = again.await.pop().unwrap_or(Err(crate::invocation::Rejection::Unavailable));
                context.push(request_id(&fresh_again));
                verdict = compare(&warm, &fresh, Some(&result_json(&fresh_again)), &context);
            }
            let Comparison::Leak(patch) = verdict else {
                tracing::debug!(handler = %handler, request_id = %warm_id, "state check: {verdict:?}");
                leaks.checked(None);
                return;
            };
            let diff = serde_json::to_value(&patch).unwrap_or_default();
            tracing::warn!(
                handler = %handler,
                warm_request_id = %warm_id,
                fresh_request_id = %fresh_id,
                %diff,
                "state leak: the result of {warm_id} on a warm worker differs from the same event's on a \
                 fresh environment ({fresh_id}): it depended on state left by earlier invocations. Diff \
                 (fresh → warm): {diff}"
            );
            let at = epoch_ms(std::time::SystemTime::now());
            leaks.checked(Some(StateLeak { warm_request_id: warm_id, fresh_request_id: fresh_id, diff, at }));
        };
        AtomicResponse::new(Box::pin(actix::fut::wrap_future(job)))
    }
}
