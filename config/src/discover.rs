//! Finding the config file and loading it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::files;
use crate::limits::MAX_CONFIG_BYTES;
use crate::model::Config;
use crate::parse::{self, Layout};
use crate::validate;

/// `explicit` (relative to `cwd`), else the first folder from `cwd` upwards holding a
/// `pyproject.toml` with a `[tool.smyth]` table or a `smyth.toml` (the pyproject wins in a tie).
pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
    if let Some(file) = explicit {
        let file = cwd.join(file);
        // Anything that exists is read by `read`, which says why a non-file cannot be a config.
        if std::fs::symlink_metadata(&file).is_err() {
            return Err(ConfigError::Io {
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "config file not found"),
                path: file,
            });
        }
        return Ok(file);
    }
    for dir in cwd.ancestors() {
        let pyproject = dir.join("pyproject.toml");
        if pyproject.is_file() {
            let text = read(&pyproject)?;
            if parse::has_smyth_table(&text) {
                return Ok(pyproject);
            }
        }
        let smyth = dir.join("smyth.toml");
        if smyth.is_file() {
            return Ok(smyth);
        }
    }
    Err(ConfigError::NotFound { start: cwd.to_path_buf() })
}

/// discover + parse + validate + resolve, with the server's own environment.
pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
    load_with_env(explicit, cwd, &std::env::vars().collect())
}

/// `load` with the environment (`VIRTUAL_ENV`, `PATH`) given, for hermetic tests.
pub fn load_with_env(
    explicit: Option<&Path>,
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let file = discover(explicit, cwd)?;
    // An absolute, symlink-free root: workers chdir into it and PYTHONPATH starts with it.
    let file =
        std::fs::canonicalize(&file).map_err(|source| ConfigError::Io { path: file.clone(), source })?;
    let text = read(&file)?;
    parse_str(&text, &file, env)
}

/// Parses config text as if read from `source` (whose folder is the project root). A file named
/// `pyproject.toml`, or any file with a `[tool.smyth]` table, is read from `[tool.smyth]`; any other
/// file (`smyth.toml`) from its top level.
pub fn parse_str(text: &str, source: &Path, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    let is_pyproject = source.file_name().is_some_and(|n| n == "pyproject.toml");
    let layout =
        if is_pyproject || parse::has_smyth_table(text) { Layout::Pyproject } else { Layout::TopLevel };
    let root = source.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut problems = Vec::new();
    let config = parse::parse(text, layout, &mut problems)
        .map(|parsed| validate::resolve(parsed, text, source, &root, env, &mut problems));
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            // Stable order regardless of which pass found a problem.
            problems.sort_by_key(|p| p.line);
            Err(ConfigError::Invalid { file: source.to_path_buf(), problems })
        }
    }
}

/// The config file's text, bounded: a config is never a stream or a giant.
fn read(path: &Path) -> Result<String, ConfigError> {
    files::read_bounded(path, MAX_CONFIG_BYTES)
        .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })
}
