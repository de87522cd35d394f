//! TOML text → raw structs, collecting every problem instead of stopping at the first.
//!
//! The document is parsed into toml's spanned tree. Unknown keys are reported (with a did-you-mean)
//! and dropped; then serde reads each table, and every value it rejects is reported and dropped
//! before it tries again, so one wrong type never hides the next one.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::error::Problem;
use crate::raw::{RawGlobal, RawHandler};

/// Where the smyth keys sit in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[tool.smyth]` of a `pyproject.toml`.
    Pyproject,
    /// The top level of a `smyth.toml`.
    TopLevel,
}

pub struct Parsed {
    pub global: RawGlobal,
    pub handlers: Vec<ParsedHandler>,
}

pub struct ParsedHandler {
    pub name: String,
    /// Line of the handler's table header.
    pub line: usize,
    pub raw: RawHandler,
}

/// Byte offsets → 1-based line numbers.
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { starts }
    }

    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

/// Does this `pyproject.toml` text have a `[tool.smyth]` table?
pub fn has_smyth_table(text: &str) -> bool {
    match DeTable::parse(text) {
        Ok(doc) => doc
            .get_ref()
            .get("tool")
            .and_then(|t| t.get_ref().as_table())
            .is_some_and(|t| t.contains_key("smyth")),
        // A broken file that looks like ours is ours: its syntax error is worth showing.
        Err(_) => text.contains("tool.smyth"),
    }
}

/// Parses `text`; `None` when nothing usable could be read (the problems say why).
pub fn parse(text: &str, layout: Layout, problems: &mut Vec<Problem>) -> Option<Parsed> {
    let lines = Lines::new(text);
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map_or(1, |s| lines.line(s.start));
            problems.push(Problem {
                line,
                key: String::new(),
                message: format!("invalid TOML: {}", e.message().trim()),
            });
            return None;
        }
    };
    let (mut table, span) = match layout {
        Layout::TopLevel => (doc.get_ref().clone(), doc.span()),
        Layout::Pyproject => {
            let smyth =
                doc.get_ref().get("tool").and_then(|t| t.get_ref().as_table()).and_then(|t| t.get("smyth"));
            match smyth.map(|s| (s.get_ref().as_table(), s.span())) {
                Some((Some(t), span)) => (t.clone(), span),
                Some((None, span)) => {
                    problems.push(Problem {
                        line: lines.line(span.start),
                        key: "tool.smyth".into(),
                        message: "expected a table".into(),
                    });
                    return None;
                }
                None => {
                    problems.push(Problem {
                        line: 1,
                        key: "tool.smyth".into(),
                        message: "this pyproject.toml has no [tool.smyth] table".into(),
                    });
                    return None;
                }
            }
        }
    };
    let line = lines.line(span.start);

    let handlers_value = table.remove("handlers");
    let global: RawGlobal =
        read_table(table, span, RawGlobal::KEYS, "", &lines, problems).unwrap_or_default();

    let mut handlers = Vec::new();
    match handlers_value {
        None => problems.push(Problem {
            line,
            key: "handlers".into(),
            message: "no handlers configured: add a [tool.smyth.handlers.NAME] table".into(),
        }),
        Some(value) => {
            let span = value.span();
            match value.into_inner() {
                DeValue::Table(t) if t.is_empty() => problems.push(Problem {
                    line: lines.line(span.start),
                    key: "handlers".into(),
                    message: "no handlers configured: add a [tool.smyth.handlers.NAME] table".into(),
                }),
                DeValue::Table(t) => {
                    for (name, value) in t {
                        let name_line = lines.line(name.span().start);
                        let name = name.into_inner().into_owned();
                        let prefix = format!("handlers.{name}.");
                        let span = value.span();
                        let raw = match value.into_inner() {
                            DeValue::Table(t) => {
                                read_table(t, span, RawHandler::KEYS, &prefix, &lines, problems)
                            }
                            other => {
                                type_problem(&prefix, &other, name_line, problems);
                                None
                            }
                        };
                        handlers.push(ParsedHandler { name, line: name_line, raw: raw.unwrap_or_default() });
                    }
                }
                other => {
                    type_problem("handlers.", &other, lines.line(span.start), problems);
                }
            }
        }
    }
    Some(Parsed { global, handlers })
}

fn type_problem(prefix: &str, value: &DeValue<'_>, line: usize, problems: &mut Vec<Problem>) {
    problems.push(Problem {
        line,
        key: prefix.trim_end_matches('.').to_string(),
        message: format!("expected a table, found {}", value.type_str()),
    });
}

/// Reads one table into `T`, reporting (and dropping) unknown keys and values serde rejects.
fn read_table<T: DeserializeOwned>(
    mut table: DeTable<'_>,
    span: Range<usize>,
    known: &[&str],
    prefix: &str,
    lines: &Lines,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let unknown: Vec<(String, usize)> = table
        .iter()
        .filter(|(key, _)| !known.contains(&key.get_ref().as_ref()))
        .map(|(key, _)| (key.get_ref().to_string(), key.span().start))
        .collect();
    for (key, offset) in unknown {
        problems.push(Problem {
            line: lines.line(offset),
            key: format!("{prefix}{key}"),
            message: unknown_key_message(&key, known),
        });
        table.remove(key.as_str());
    }
    // Each round drops one rejected key, so this ends after at most `len` rounds.
    loop {
        let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(t) => return Some(t),
            Err(e) => {
                let message = friendly(e.message());
                let culprit = e.span().and_then(|s| locate(&table, &s).map(|k| (k, s.start)));
                let Some(((key, path), offset)) = culprit else {
                    let line = e.span().map_or(lines.line(span.start), |s| lines.line(s.start));
                    problems.push(Problem { line, key: prefix.trim_end_matches('.').to_string(), message });
                    return None;
                };
                problems.push(Problem { line: lines.line(offset), key: format!("{prefix}{path}"), message });
                table.remove(key.as_str());
            }
        }
    }
}

/// The entry of `table` whose key or value holds `span`, as (top-level key, dotted path to the
/// innermost key): header tables (`[x.env]`) have spans that do not cover their entries, so look inside.
fn locate(table: &DeTable<'_>, span: &Range<usize>) -> Option<(String, String)> {
    let holds = |r: Range<usize>| r.start <= span.start && span.start < r.end.max(r.start + 1);
    table.iter().find_map(|(key, value)| {
        let name = key.get_ref().to_string();
        if let DeValue::Table(inner) = value.get_ref() {
            if let Some((_, path)) = locate(inner, span) {
                return Some((name.clone(), format!("{name}.{path}")));
            }
        }
        (holds(key.span()) || holds(value.span())).then(|| (name.clone(), name))
    })
}

fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let (other, place) = if known == RawGlobal::KEYS {
        (RawHandler::KEYS, "a handler key: put it under [tool.smyth.handlers.NAME]")
    } else {
        (RawGlobal::KEYS, "a global key: put it under [tool.smyth]")
    };
    if let Some(k) = closest(key, known) {
        format!("unknown key; did you mean `{k}`?")
    } else if let Some(k) = closest(key, other) {
        format!("unknown key here; `{k}` is {place}")
    } else {
        format!("unknown key; expected one of {}", known.join(", "))
    }
}

fn closest<'k>(key: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// serde speaks Rust (`invalid type: string "x", expected i64`); say it in TOML terms.
fn friendly(message: &str) -> String {
    let mut m = message.trim().to_string();
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number of seconds"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        m = m.replace(rust, toml);
    }
    match m.strip_prefix("invalid type: ").and_then(|m| m.rsplit_once(", expected ")) {
        Some((found, expected)) => format!("expected {expected}, found {found}"),
        None => m,
    }
}
