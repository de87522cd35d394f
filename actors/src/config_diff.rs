//! Which config keys changed since the server started: a config file edited at run time recycles
//! the workers with the config smyth started with, so the reload WARN names, key by key, what
//! takes effect only after a restart.

use std::path::Path;

use toml::{Table, Value};

/// The `[tool.smyth]` table of a `pyproject.toml`, or the whole of a `smyth.toml`; `None` when the
/// file cannot be read or parsed (validation says why at the next start).
pub fn smyth_table(path: &Path) -> Option<Table> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut table: Table = toml::from_str(&text).ok()?;
    if path.file_name().is_some_and(|name| name == "pyproject.toml") {
        match table.remove("tool")? {
            Value::Table(mut tool) => match tool.remove("smyth")? {
                Value::Table(smyth) => Some(smyth),
                _ => None,
            },
            _ => None,
        }
    } else {
        Some(table)
    }
}

/// Dotted keys whose value differs between `old` and `new`: added, removed or changed, descending
/// into tables present on both sides (`handlers.orders.timeout`, `env.STAGE`).
pub fn changed_keys(old: &Table, new: &Table) -> Vec<String> {
    let mut changed = Vec::new();
    walk("", old, new, &mut changed);
    changed
}

fn walk(prefix: &str, old: &Table, new: &Table, changed: &mut Vec<String>) {
    let mut keys: Vec<&String> = old.keys().chain(new.keys().filter(|k| !old.contains_key(*k))).collect();
    keys.sort();
    for key in keys {
        let path = format!("{prefix}{key}");
        match (old.get(key), new.get(key)) {
            (Some(Value::Table(a)), Some(Value::Table(b))) => walk(&format!("{path}."), a, b, changed),
            (a, b) if a != b => changed.push(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn each_changed_key_is_named() {
        let old = table(
            "port = 8080\npython_path = [\"src\"]\nenv = { A = \"1\" }\n\
             [handlers.orders]\nhandler_path = \"app.h\"\ntimeout = 3\n[handlers.gone]\nhandler_path = \"x.h\"\n",
        );
        let cases: &[(&str, &[&str])] = &[
            (
                "port = 8080\npython_path = [\"src\"]\nenv = { A = \"1\" }\n\
                 [handlers.orders]\nhandler_path = \"app.h\"\ntimeout = 3\n[handlers.gone]\nhandler_path = \"x.h\"\n",
                &[],
            ),
            (
                "port = 9000\npython_path = [\"src\", \"lib\"]\nenv = { A = \"2\", B = \"3\" }\n\
                 [handlers.orders]\nhandler_path = \"app.h\"\ntimeout = 5\n[handlers.new]\nhandler_path = \"n.h\"\n",
                &["env.A", "env.B", "handlers.gone", "handlers.new", "handlers.orders.timeout", "port", "python_path"],
            ),
        ];
        for (new, expected) in cases {
            assert_eq!(changed_keys(&old, &table(new)), *expected, "{new}");
        }
    }

    #[test]
    fn the_smyth_table_of_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let pyproject = dir.path().join("pyproject.toml");
        std::fs::write(&pyproject, "[project]\nname = \"x\"\n[tool.smyth]\nport = 1\n").unwrap();
        assert_eq!(smyth_table(&pyproject), Some(table("port = 1")));
        let smyth = dir.path().join("smyth.toml");
        std::fs::write(&smyth, "port = 2\n").unwrap();
        assert_eq!(smyth_table(&smyth), Some(table("port = 2")));
        std::fs::write(&smyth, "port = \n").unwrap();
        assert_eq!(smyth_table(&smyth), None);
    }
}
