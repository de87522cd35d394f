//! The README's reference tables list exactly the keys the model accepts.

use crate::raw::{RawGlobal, RawHandler};

const README: &str = include_str!("../../../README.md");

/// The first-column keys of the table under `### {heading}` in the Configuration section.
fn table_keys(heading: &str) -> Vec<String> {
    let config = README.split("\n## Configuration\n").nth(1).expect("README has a ## Configuration section");
    let section = config
        .split(&format!("\n### {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has ### {heading}"));
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| l.split('|').nth(1).unwrap().trim().trim_matches('`').to_string())
        .collect()
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

#[test]
fn readme_lists_every_global_key() {
    let mut documented = table_keys("Global keys");
    documented.sort();
    assert_eq!(documented, sorted(RawGlobal::KEYS));
}

#[test]
fn readme_lists_every_handler_key() {
    let mut documented = table_keys("Handler keys");
    documented.sort();
    assert_eq!(documented, sorted(RawHandler::KEYS));
}
