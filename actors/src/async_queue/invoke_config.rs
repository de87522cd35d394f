//! Live changes to a function's asynchronous invocation settings (PutFunctionEventInvokeConfig and
//! friends): new retry and event-age limits apply to every event still waiting or retrying.

use actix::prelude::*;

use super::AsyncQueue;
use crate::messages::SetEventInvokeConfig;

impl Handler<SetEventInvokeConfig> for AsyncQueue {
    type Result = ();

    fn handle(&mut self, msg: SetEventInvokeConfig, _: &mut Context<Self>) {
        let Some(function) = self.functions.get_mut(&msg.handler) else { return };
        function.policy.maximum_retry_attempts = msg.retries;
        function.policy.maximum_event_age = msg.max_age;
        // The destinations (`msg.on_success` / `msg.on_failure`) are delivered by the destinations
        // work, which reads them from this message.
    }
}
