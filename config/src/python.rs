//! Which interpreter the workers run, and its `major.minor` when it can be read without running it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::files;
use crate::limits::MAX_PYVENV_CFG_BYTES;

/// An explicit `python`: a relative path with a slash is relative to the project root; a bare name
/// (`python3.12`) is looked up on `PATH` when the worker starts.
pub fn explicit(python: &str, root: &Path) -> String {
    let path = Path::new(python);
    if python.contains('/') && path.is_relative() {
        root.join(path).to_string_lossy().into_owned()
    } else {
        python.to_string()
    }
}

/// `$VIRTUAL_ENV/bin/python`, then `<root>/.venv/bin/python`, then `python3`.
pub fn default(root: &Path, env: &BTreeMap<String, String>) -> String {
    let venv = env.get("VIRTUAL_ENV").filter(|v| !v.is_empty()).map(|v| Path::new(v).join("bin/python"));
    let local = root.join(".venv/bin/python");
    venv.into_iter()
        .chain([local])
        .find(|p| p.is_file())
        .map_or_else(|| "python3".to_string(), |p| p.to_string_lossy().into_owned())
}

/// `"3.12"` from a venv's `pyvenv.cfg` or from the name the interpreter resolves to
/// (`/usr/bin/python3 -> python3.12`); None when neither tells.
pub fn version(python: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let path = locate(python, env)?;
    if let Some(v) = path
        .parent()
        .and_then(Path::parent)
        .and_then(|venv| files::read_bounded(&venv.join("pyvenv.cfg"), MAX_PYVENV_CFG_BYTES).ok())
        .and_then(|cfg| from_pyvenv_cfg(&cfg))
    {
        return Some(v);
    }
    let real = std::fs::canonicalize(&path).ok()?;
    from_file_name(real.file_name()?.to_str()?)
}

fn locate(python: &str, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if python.contains('/') {
        return Some(PathBuf::from(python));
    }
    env.get("PATH")?.split(':').map(|dir| Path::new(dir).join(python)).find(|p| p.is_file())
}

fn from_pyvenv_cfg(cfg: &str) -> Option<String> {
    cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        matches!(key.trim(), "version" | "version_info").then(|| major_minor(value.trim())).flatten()
    })
}

fn from_file_name(name: &str) -> Option<String> {
    major_minor(name.strip_prefix("python")?)
}

/// `3.12.1` / `3.12` → `3.12`.
fn major_minor(v: &str) -> Option<String> {
    let mut parts = v.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (numeric(major) && numeric(minor)).then(|| format!("{major}.{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions() {
        assert_eq!(from_pyvenv_cfg("home = /usr/bin\nversion = 3.12.1\n"), Some("3.12".into()));
        assert_eq!(from_pyvenv_cfg("version_info = 3.11.7.final.0"), Some("3.11".into()));
        assert_eq!(from_file_name("python3.13"), Some("3.13".into()));
        assert_eq!(from_file_name("python3"), None);
    }

    #[test]
    fn default_prefers_virtual_env_then_dot_venv() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        let venv = dir.path().join("venv");
        let no_env = BTreeMap::new();
        assert_eq!(default(&root, &no_env), "python3");

        std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
        std::fs::write(root.join(".venv/bin/python"), "").unwrap();
        let local = root.join(".venv/bin/python").to_string_lossy().into_owned();
        assert_eq!(default(&root, &no_env), local);

        let env = BTreeMap::from([("VIRTUAL_ENV".to_string(), venv.to_string_lossy().into_owned())]);
        // VIRTUAL_ENV set but without an interpreter: fall through to .venv.
        assert_eq!(default(&root, &env), local);
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("bin/python"), "").unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "version = 3.10.4\n").unwrap();
        let active = venv.join("bin/python").to_string_lossy().into_owned();
        assert_eq!(default(&root, &env), active);
        assert_eq!(version(&active, &env), Some("3.10".into()));
    }

    #[test]
    fn explicit_relative_paths_are_root_relative() {
        let root = Path::new("/proj");
        assert_eq!(explicit(".venv/bin/python", root), "/proj/.venv/bin/python");
        assert_eq!(explicit("python3.12", root), "python3.12");
        assert_eq!(explicit("/usr/bin/python3", root), "/usr/bin/python3");
    }
}
