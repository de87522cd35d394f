//! `smyth export sam`: the config as an AWS SAM template, to deploy the same functions where they
//! scale. The template is built by the pure [`sam::template`]; this module only writes it and says,
//! at the top of the file and on stderr, what it could not express.

mod capacity;
mod fronts;
mod local_only;
pub mod route;
pub mod sam;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use smyth_config::Config;

/// Where the template goes: a file, or standard output for `-`.
pub fn sam(config: &Config, output: Option<&Path>, include_env_file: bool) -> ExitCode {
    let to_stdout = output == Some(Path::new("-"));
    let path = match output {
        Some(path) => path.to_path_buf(),
        None => config.root.join("template.yaml"),
    };
    let template_dir = if to_stdout { config.root.clone() } else { absolute_parent(&path) };
    let export = sam::template(config, &sam::Options { include_env_file, template_dir });
    let body = match serde_norway::to_string(&export.template) {
        Ok(body) => body,
        Err(err) => {
            eprintln!("error: cannot write the template: {err}");
            return ExitCode::FAILURE;
        }
    };
    let text = format!("{}{body}", header(config, &export.unexpressed));
    if !export.unexpressed.is_empty() {
        eprintln!("smyth export: not expressed in the template:");
        for line in &export.unexpressed {
            eprintln!("  - {line}");
        }
    }
    let written =
        if to_stdout { std::io::stdout().write_all(text.as_bytes()) } else { std::fs::write(&path, text) };
    match written {
        Ok(()) if to_stdout => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "error: cannot write {}: {err}",
                if to_stdout { "to stdout".into() } else { path.display().to_string() }
            );
            ExitCode::FAILURE
        }
    }
}

/// The comment atop the template: where it came from, and every setting it leaves out.
pub fn header(config: &Config, unexpressed: &[String]) -> String {
    let mut out = format!(
        "# Exported by `smyth export sam` from {}. Deploy with `sam build && sam deploy --guided`.\n",
        config.source.display()
    );
    if unexpressed.is_empty() {
        out.push_str("# Every setting is expressed below.\n");
    } else {
        out.push_str("# Not expressed in this template (they shape only the local server):\n");
        for line in unexpressed {
            out.push_str(&format!("#   - {line}\n"));
        }
    }
    out
}

fn absolute_parent(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute.parent().map(Path::to_path_buf).unwrap_or(absolute)
}
