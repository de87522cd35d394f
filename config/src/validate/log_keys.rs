//! The log keys: the server's `log_format` and a handler's AWS advanced logging controls
//! (`log_format`, `application_log_level`, `system_log_level`), kept apart from the other keys so
//! their rules (AWS's value sets, "levels need JSON") sit together.

use toml::Spanned;

use super::Check;
use crate::model::{FunctionLogging, LogFormat};

/// AWS's `ApplicationLogLevel` values.
pub const APPLICATION_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// AWS's `SystemLogLevel` values.
pub const SYSTEM_LOG_LEVELS: [&str; 3] = ["DEBUG", "INFO", "WARN"];

/// `text` or `json` in any case: the server's log format (for `--log-format` too).
pub fn log_format(value: &str) -> Result<LogFormat, String> {
    match value.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("`{value}` is not one of text, json")),
    }
}

/// One of `allowed`, in any case, as AWS spells it (upper case).
fn level_in(value: &str, allowed: &[&str]) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    if allowed.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!("`{value}` is not one of {}", allowed.join(", ")))
    }
}

impl Check<'_> {
    /// The global `log_format`: how the server writes its own log.
    pub(super) fn server_log_format(&mut self, v: &Option<Spanned<String>>) -> LogFormat {
        let Some(s) = v else { return LogFormat::Text };
        log_format(s.get_ref()).unwrap_or_else(|msg| {
            self.bad(s, "log_format", msg);
            LogFormat::Text
        })
    }

    /// A handler's `log_format` (AWS's `Text` / `JSON`) and its two levels, which AWS only accepts
    /// with JSON: filtering by level needs a level on every line.
    pub(super) fn function_logging(
        &mut self,
        format: &Option<Spanned<String>>,
        application: &Option<Spanned<String>>,
        system: &Option<Spanned<String>>,
    ) -> FunctionLogging {
        let format = format.as_ref().and_then(|s| match s.get_ref().to_ascii_uppercase().as_str() {
            "TEXT" => Some(LogFormat::Text),
            "JSON" => Some(LogFormat::Json),
            _ => {
                self.bad(s, "log_format", format!("`{}` is not one of Text, JSON", s.get_ref()));
                None
            }
        });
        let mut level = |v: &Option<Spanned<String>>, key: &str, allowed: &[&str]| {
            let s = v.as_ref()?;
            match level_in(s.get_ref(), allowed) {
                Ok(level) if format == Some(LogFormat::Json) => Some(level),
                Ok(_) => {
                    self.bad(s, key, "needs log_format = \"JSON\" (AWS filters by level only in JSON)");
                    None
                }
                Err(msg) => {
                    self.bad(s, key, msg);
                    None
                }
            }
        };
        let application_log_level = level(application, "application_log_level", &APPLICATION_LOG_LEVELS);
        let system_log_level = level(system, "system_log_level", &SYSTEM_LOG_LEVELS);
        FunctionLogging { format, application_log_level, system_log_level }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_formats() {
        assert_eq!(log_format("JSON"), Ok(LogFormat::Json));
        assert_eq!(log_format("text"), Ok(LogFormat::Text));
        assert!(log_format("yaml").unwrap_err().contains("not one of text, json"));
    }

    #[test]
    fn levels_are_aws_spellings() {
        assert_eq!(level_in("warn", &APPLICATION_LOG_LEVELS).unwrap(), "WARN");
        assert_eq!(level_in("trace", &APPLICATION_LOG_LEVELS).unwrap(), "TRACE");
        assert!(level_in("WARNING", &APPLICATION_LOG_LEVELS).is_err());
        assert!(level_in("ERROR", &SYSTEM_LOG_LEVELS).unwrap_err().contains("DEBUG, INFO, WARN"));
    }
}
