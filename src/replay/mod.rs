//! `smyth replay`: re-runs a recorded invocation's event against the current code on a shadow
//! environment (`smyth_actors::shadow`): fresh by default, or warm after the invocations that
//! preceded it on the same process; then the new result beside the recorded one, with a JSON diff.

pub mod api;
pub mod command;
pub mod source;

use std::time::Instant;

use actix::Addr;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smyth_actors::invocation::{Invocation, InvokeResult, Outcome};
use smyth_actors::router::RouterActor;
use smyth_actors::shadow::compare::{diff, normalize, result_json};
use smyth_actors::shadow::{RunShadow, ShadowByName};
use tokio::sync::oneshot;

use source::{Recorded, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On a fresh environment: a cold start, as if nothing ran before.
    Fresh,
    /// After replaying, on the same environment, the invocations that preceded it on its process.
    Warm,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "fresh" => Ok(Mode::Fresh),
            "warm" => Ok(Mode::Warm),
            other => Err(format!("mode must be `fresh` or `warm`, not `{other}`")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fresh => "fresh",
            Mode::Warm => "warm",
        }
    }
}

/// What to run: the recorded invocation, on which handler, and what goes first.
#[derive(Debug, Clone)]
pub struct Plan {
    pub record: Recorded,
    pub handler: String,
    pub mode: Mode,
    pub before: Vec<Recorded>,
}

/// Reads what replaying `id` needs from the record; `handler` replays it on another handler.
pub fn plan(source: &Source, id: &str, mode: Mode, handler: Option<&str>) -> Result<Plan, String> {
    let record = source.get(id)?.ok_or_else(|| format!("no recorded invocation `{id}`"))?;
    let before = match mode {
        Mode::Fresh => Vec::new(),
        Mode::Warm => source.preceding(&record)?,
    };
    let handler = handler.unwrap_or(&record.handler).to_string();
    Ok(Plan { record, handler, mode, before })
}

/// A replay's outcome, as `/_smyth/replay/{id}` answers it and the CLI prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub handler: String,
    pub mode: Mode,
    /// The recorded invocations replayed first (warm).
    pub replayed_before: Vec<String>,
    pub recorded: Value,
    pub replayed: Value,
    pub replayed_request_id: String,
    /// The replay succeeded (no error).
    pub passes: bool,
    /// The JSON patch from the recorded result to the replayed one, request ids and timestamps aside.
    pub diff: Value,
}

/// The report of `plan` given the shadow's results (the warm-up's, then the replayed one's last).
pub fn report(plan: &Plan, results: &[InvokeResult]) -> Report {
    let last = results.last().cloned().unwrap_or(Err(smyth_actors::invocation::Rejection::Unavailable));
    let (request_id, passes) = match &last {
        Ok(Outcome::Success { request_id, .. }) => (request_id.clone(), true),
        Ok(Outcome::HandlerError { request_id, .. } | Outcome::Failed { request_id, .. }) => {
            (request_id.clone(), false)
        }
        Err(_) => (String::new(), false),
    };
    let replayed = result_json(&last);
    let recorded = plan.record.result_json();
    let context = [plan.record.id.clone(), request_id.clone()];
    let patch = diff(&normalize(&recorded, &context), &normalize(&replayed, &context));
    Report {
        id: plan.record.id.clone(),
        handler: plan.handler.clone(),
        mode: plan.mode,
        replayed_before: plan.before.iter().map(|r| r.id.clone()).collect(),
        recorded,
        replayed,
        replayed_request_id: request_id,
        passes,
        diff: serde_json::to_value(patch).unwrap_or_default(),
    }
}

/// Runs `plan` on its handler's shadow environment through `router`.
pub async fn run(router: &Addr<RouterActor>, plan: &Plan) -> Result<Report, String> {
    let invocations = plan.before.iter().chain([&plan.record]).map(|r| Invocation {
        payload: r.event.clone().into(),
        client_context: None,
        function_arn: None,
        received: Instant::now(),
        log: None,
        tenant: r.tenant.clone(),
        origin: smyth_actors::recorder::Origin::new(smyth_actors::recorder::Source::Replay),
    });
    let (reply, results) = oneshot::channel();
    let shadow = RunShadow { invocations: invocations.collect(), reply };
    router.do_send(ShadowByName { name: plan.handler.clone(), shadow });
    let results = results.await.map_err(|_| "the server stopped during the replay".to_string())?;
    if results.is_empty() {
        return Err(format!("no handler `{}` in the config", plan.handler));
    }
    Ok(report(plan, &results))
}

/// The report as the CLI prints it: the recorded result beside the replayed one, then the diff.
pub fn print(report: &Report) -> String {
    let mut out =
        format!("replay of {} on {} ({} environment", report.id, report.handler, report.mode.as_str());
    if !report.replayed_before.is_empty() {
        out.push_str(&format!(", after {} earlier invocations", report.replayed_before.len()));
    }
    out.push_str(")\n");
    out.push_str(&format!("recorded  {}\n", report.recorded));
    out.push_str(&format!("replayed  {}  (request {})\n", report.replayed, report.replayed_request_id));
    match report.diff.as_array().filter(|d| !d.is_empty()) {
        Some(_) => out.push_str(&format!("diff      {}\n", report.diff)),
        None => out.push_str("diff      none: the same result\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(id: &str, status: &str, result: Option<&str>) -> Recorded {
        Recorded {
            id: id.into(),
            seq: 3,
            handler: "count".into(),
            pid: Some(7),
            started_at_ms: 0,
            status: status.into(),
            event: b"{}".to_vec(),
            result: result.map(|r| r.as_bytes().to_vec()),
            error_type: (status != "ok").then(|| "ValueError".into()),
            error_message: (status != "ok").then(|| "boom".into()),
            tenant: None,
        }
    }

    #[test]
    fn reports_say_what_changed() {
        let plan = Plan {
            record: recorded("old", "ok", Some(r#"{"count": 3, "id": "old"}"#)),
            handler: "count".into(),
            mode: Mode::Fresh,
            before: vec![],
        };
        let new =
            Ok(Outcome::Success { request_id: "new".into(), body: r#"{"count": 1, "id": "new"}"#.into() });
        let report = report(&plan, &[new]);
        assert!(report.passes);
        assert_eq!(report.diff, json!([{"op": "replace", "path": "/count", "value": 1}]));
        let text = print(&report);
        assert!(text.contains("recorded  {\"count\":3,\"id\":\"old\"}"), "{text}");
        assert!(text.contains("replayed  {\"count\":1,\"id\":\"new\"}  (request new)"), "{text}");

        let failed = Plan { record: recorded("old", "error", None), ..plan };
        let fixed = Ok(Outcome::Success { request_id: "new".into(), body: r#""ok""#.into() });
        let report = super::report(&failed, &[fixed]);
        assert!(report.passes);
        assert_eq!(report.recorded, json!({"errorType": "ValueError", "errorMessage": "boom"}));
        let same = super::report(
            &failed,
            &[Ok(Outcome::HandlerError {
                request_id: "new".into(),
                body: r#"{"errorType":"ValueError","errorMessage":"boom"}"#.into(),
            })],
        );
        assert!(!same.passes);
        assert!(print(&same).contains("diff      none: the same result"));
    }
}
