//! The fork server's messages (see `forkserver.py`), one JSON object per SOCK_SEQPACKET message:
//! parsing and building them is pure, and tested here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Failure;
use crate::process::Exit;

/// The largest message either side sends (an init error's traceback is the longest).
pub const MAX_MESSAGE: usize = 1 << 20;

/// What the server says.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// Its init is done; what it says of itself (`{"python": [3, 12]}`).
    Ready(Value),
    /// Its init failed (it exits next).
    InitError(Failure),
    Forked {
        id: u64,
        pid: u32,
    },
    ForkFailed {
        id: u64,
        error: String,
    },
    Exited {
        pid: u32,
        exit: Exit,
    },
}

impl Message {
    pub fn parse(bytes: &[u8]) -> Option<Message> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        if let Some(info) = value.get("ready") {
            return Some(Message::Ready(info.clone()));
        }
        if let Some(error) = value.get("init_error") {
            let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
            let body = text("body").unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b.get("errorMessage").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(body);
            return Some(Message::InitError(Failure { error_type: text("type")?, message }));
        }
        if let Some(id) = number("forked") {
            if let Some(pid) = number("pid") {
                return Some(Message::Forked { id, pid: u32::try_from(pid).ok()? });
            }
            let error = value.get("error").and_then(Value::as_str).unwrap_or("unknown").to_string();
            return Some(Message::ForkFailed { id, error });
        }
        let pid = u32::try_from(number("exited")?).ok()?;
        let exit = match (number("code"), number("signal")) {
            (Some(code), _) => Exit::Code(code as i32),
            (None, Some(signal)) => Exit::Signal(signal as i32),
            (None, None) => return None,
        };
        Some(Message::Exited { pid, exit })
    }
}

/// `{"fork": ID, "env": {...}}`.
pub fn fork_request(id: u64, env: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "fork": id, "env": env })).expect("strings serialise")
}

/// `{"release": PID}`: smyth knows the child, which may go on.
pub fn release(pid: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "release": pid })).expect("a number serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_the_server_sends_parses() {
        let failure = |t: &str, m: &str| Failure { error_type: t.into(), message: m.into() };
        let body = r#"{\"errorMessage\": \"boom\", \"errorType\": \"RuntimeError\"}"#;
        let cases: Vec<(String, Option<Message>)> = vec![
            (
                r#"{"ready": {"python": [3, 12]}}"#.into(),
                Some(Message::Ready(serde_json::json!({"python": [3, 12]}))),
            ),
            (
                format!(r#"{{"init_error": {{"type": "Runtime.BeforeSnapshotError", "body": "{body}"}}}}"#),
                Some(Message::InitError(failure("Runtime.BeforeSnapshotError", "boom"))),
            ),
            (
                r#"{"init_error": {"type": "Runtime.ImportModuleError", "body": "not json"}}"#.into(),
                Some(Message::InitError(failure("Runtime.ImportModuleError", "not json"))),
            ),
            (r#"{"forked": 7, "pid": 4242}"#.into(), Some(Message::Forked { id: 7, pid: 4242 })),
            (
                r#"{"forked": 7, "error": "EAGAIN"}"#.into(),
                Some(Message::ForkFailed { id: 7, error: "EAGAIN".into() }),
            ),
            (
                r#"{"exited": 4242, "code": 65}"#.into(),
                Some(Message::Exited { pid: 4242, exit: Exit::Code(65) }),
            ),
            (
                r#"{"exited": 4242, "signal": 9}"#.into(),
                Some(Message::Exited { pid: 4242, exit: Exit::Signal(9) }),
            ),
            (r#"{"exited": 4242}"#.into(), None),
            (r#"{"something": 1}"#.into(), None),
            ("not json".into(), None),
        ];
        for (text, expected) in cases {
            assert_eq!(Message::parse(text.as_bytes()), expected, "{text}");
        }
    }

    #[test]
    fn a_fork_request_carries_its_id_and_environment() {
        let env = BTreeMap::from([("AWS_LAMBDA_RUNTIME_API".to_string(), "127.0.0.1:9001".to_string())]);
        let value: Value = serde_json::from_slice(&fork_request(3, &env)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"fork": 3, "env": {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}})
        );
        let value: Value = serde_json::from_slice(&release(4242)).unwrap();
        assert_eq!(value, serde_json::json!({"release": 4242}));
    }
}
