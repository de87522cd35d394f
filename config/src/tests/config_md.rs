//! `docs/CONFIG.md` is generated from the README's Configuration section, whose key tables the
//! `readme` tests tie to the model. These tests fail when CONFIG.md drifts from either; run
//! `SMYTH_UPDATE_DOCS=1 cargo test -p smyth-config config_md` to write it again.

use std::path::PathBuf;

use crate::raw::{RawGlobal, RawHandler};

const README: &str = include_str!("../../../README.md");

fn config_md_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md")
}

/// CONFIG.md's text: a header, then the README's `## Configuration` section one heading level up.
fn render(readme: &str) -> String {
    let section = readme.split("\n## Configuration\n").nth(1).expect("README has a ## Configuration section");
    let section = section.split("\n## ").next().unwrap().trim();
    let body: Vec<String> = section
        .lines()
        .map(|line| match line.strip_prefix("### ") {
            Some(heading) => format!("## {heading}"),
            None => line.to_string(),
        })
        .collect();
    format!(
        "# smyth configuration reference\n\n<!-- Generated from README.md's Configuration section by \
         config/src/tests/config_md.rs: edit the README, then run\n     SMYTH_UPDATE_DOCS=1 cargo test -p \
         smyth-config config_md -->\n\n{}\n",
        body.join("\n")
    )
}

/// The first-column keys of the table under `## {heading}`.
fn table_keys(doc: &str, heading: &str) -> Vec<String> {
    let section = doc
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("CONFIG.md has ## {heading}"));
    let mut keys: Vec<String> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.split('|').nth(1).unwrap().trim().trim_matches('`').to_string())
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    keys.sort();
    keys
}

#[test]
fn config_md_is_generated_from_the_readme() {
    let expected = render(README);
    if std::env::var_os("SMYTH_UPDATE_DOCS").is_some() {
        std::fs::write(config_md_path(), &expected).expect("write docs/CONFIG.md");
    }
    let actual = std::fs::read_to_string(config_md_path()).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/CONFIG.md is out of date with README.md: run `SMYTH_UPDATE_DOCS=1 cargo test -p smyth-config config_md`"
    );
}

#[test]
fn config_md_lists_every_key_of_the_model() {
    let doc = std::fs::read_to_string(config_md_path()).expect("docs/CONFIG.md exists");
    assert_eq!(table_keys(&doc, "Global keys"), sorted(RawGlobal::KEYS));
    assert_eq!(table_keys(&doc, "Handler keys"), sorted(RawHandler::KEYS));
}
