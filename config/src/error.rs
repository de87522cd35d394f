//! Config errors. A bad file yields one `Invalid` that carries every problem found, each with its line.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file.
    pub line: usize,
    /// The key, dotted below the table it sits in (`handlers.orders.concurrency`); empty for a
    /// syntax error.
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no smyth config found: searched {start} and its parents for a pyproject.toml with a \
         [tool.smyth] table or a smyth.toml (or pass --config FILE)"
    )]
    NotFound { start: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Problems { file, problems })]
    Invalid { file: PathBuf, problems: Vec<Problem> },
}

impl ConfigError {
    /// The problems of an `Invalid` file (empty for the other cases).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

struct Problems<'a> {
    file: &'a PathBuf,
    problems: &'a [Problem],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{} problem{} in {}:", n, if n == 1 { "" } else { "s" }, self.file.display())?;
        for p in self.problems {
            write!(f, "\n{}:{}: ", self.file.display(), p.line)?;
            if !p.key.is_empty() {
                write!(f, "key `{}`: ", p.key)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}
