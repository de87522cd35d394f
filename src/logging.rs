//! The server log: `tracing` to stderr, filtered by the configured level (or `RUST_LOG`), as text or
//! one JSON object per line (`log_format` / `--log-format`). Presentation lives here only: worker
//! lines carry their handler, worker, pid and request id as fields, and the text format shows them as
//! `orders:0 | line`, the worker's name coloured only when stderr is a terminal and `NO_COLOR` is unset.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::IsTerminal;

use nu_ansi_term::{Color, Style};
use smyth_actors::logs::{REPORT_TARGET, WORKER_TARGET};
use smyth_config::LogFormat;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{Compact, Format, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Maps Python-style level names (Smyth's `log_level`) to a tracing filter.
fn filter_for(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but "" (no-color.org).
fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// `RUST_LOG` when it parses as `level` or `target=level,…` (tracing's `Targets` syntax: no span or
/// field filters, which keeps the regex engine out of the binary); else the configured level, with
/// actix's own start-up chatter down to warnings. An empty `RUST_LOG` counts as unset (as a filter it
/// would silence everything, errors included).
fn filter(level: &str, rust_log: Option<&str>) -> Targets {
    let rust_log = rust_log.filter(|value| !value.trim().is_empty());
    rust_log.and_then(|value| value.parse().ok()).unwrap_or_else(|| {
        format!("{},actix_server=warn,actix_web=warn", filter_for(level)).parse().expect("a valid filter")
    })
}

pub fn init(level: &str, format: LogFormat) {
    let filter = filter(level, std::env::var("RUST_LOG").ok().as_deref());
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_current_span(false).with_span_list(false))
            .try_init(),
        LogFormat::Text => {
            let colour = use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            let compact = tracing_subscriber::fmt::format().with_target(false).with_ansi(colour).compact();
            registry.with(layer.with_ansi(colour).event_format(Text { colour, compact })).try_init()
        }
    };
}

/// The text format: worker and `REPORT` lines as `orders:0 | line`; everything else as tracing's
/// compact format.
struct Text {
    colour: bool,
    compact: Format<Compact>,
}

/// The fields of a worker line that the text format shows.
#[derive(Default)]
struct WorkerFields {
    worker: String,
    message: String,
}

impl Visit for WorkerFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "worker" => self.worker = value.to_string(),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "worker" => self.worker = format!("{value:?}"),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }
}

/// One colour per worker, steady across runs.
fn worker_style(worker: &str) -> Style {
    const PALETTE: [Color; 6] =
        [Color::Cyan, Color::Yellow, Color::Purple, Color::Green, Color::Blue, Color::LightCyan];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    worker.hash(&mut hasher);
    PALETTE[(hasher.finish() % PALETTE.len() as u64) as usize].normal()
}

fn level_style(level: Level) -> Style {
    match level {
        Level::ERROR => Color::Red.normal(),
        Level::WARN => Color::Yellow.normal(),
        Level::INFO => Color::Green.normal(),
        Level::DEBUG => Color::Blue.normal(),
        Level::TRACE => Color::Purple.normal(),
    }
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let target = event.metadata().target();
        if target != WORKER_TARGET && target != REPORT_TARGET {
            return self.compact.format_event(ctx, writer, event);
        }
        let mut fields = WorkerFields::default();
        event.record(&mut fields);
        let plain = Style::new();
        let (dim, level, worker) = match self.colour {
            true => (plain.dimmed(), level_style(*event.metadata().level()), worker_style(&fields.worker)),
            false => (plain, plain, plain),
        };
        write!(writer, "{}", dim.prefix())?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "{}", dim.suffix())?;
        // What a worker printed is shown as text: a stray escape code cannot restyle the terminal.
        let message = fields.message.replace('\x1b', "\\x1b");
        writeln!(
            writer,
            " {} {} | {message}",
            level.paint(format!("{:>5}", event.metadata().level().as_str())),
            worker.paint(fields.worker),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases: &[(bool, Option<&str>, bool)] = &[
            (true, None, true),
            (true, Some("1"), false),
            (true, Some(""), true),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, expected) in cases {
            assert_eq!(use_colour(*terminal, no_color.map(OsStr::new)), *expected, "{terminal} {no_color:?}");
        }
    }

    #[test]
    fn rust_log_overrides_the_level_unless_it_does_not_parse() {
        // (configured level, RUST_LOG, target, level, enabled)
        let cases: &[(&str, Option<&str>, &str, Level, bool)] = &[
            ("INFO", None, "smyth", Level::INFO, true),
            ("INFO", None, "smyth", Level::DEBUG, false),
            ("INFO", None, "actix_server::builder", Level::INFO, false),
            ("INFO", None, "actix_server::builder", Level::WARN, true),
            ("warning", None, "smyth", Level::INFO, false),
            ("DEBUG", None, "smyth_actors::worker", Level::DEBUG, true),
            ("INFO", Some("debug"), "smyth", Level::DEBUG, true),
            ("INFO", Some("warn,smyth_actors=trace"), "smyth_actors::worker", Level::TRACE, true),
            ("INFO", Some("warn,smyth_actors=trace"), "smyth", Level::INFO, false),
            ("INFO", Some("smyth=loud"), "smyth", Level::INFO, true),
            ("INFO", Some("smyth=loud"), "smyth", Level::DEBUG, false),
            ("INFO", Some(""), "smyth", Level::INFO, true),
            ("INFO", Some(" "), "smyth", Level::ERROR, true),
        ];
        for (level, rust_log, target, at, enabled) in cases {
            let got = filter(level, *rust_log).would_enable(target, at);
            assert_eq!(got, *enabled, "{level} {rust_log:?} {target} {at}");
        }
    }

    #[test]
    fn each_worker_keeps_its_colour() {
        assert_eq!(worker_style("orders:0"), worker_style("orders:0"));
    }
}
