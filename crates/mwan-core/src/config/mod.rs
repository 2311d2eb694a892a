//! UCI configuration: mwan3's schema, our extensions, and validation that
//! reports every problem at once as `FILE:LINE: section 'NAME' (TYPE):
//! option 'OPT': what is wrong, what was expected`.
//!
//! Pipeline: [`uci`] turns text into sections and options with line numbers
//! (libuci's syntax, see docs/configuration.md "Parser"); [`schema`] checks
//! them against mwan3's schema and builds the resolved [`Config`];
//! [`summary`] prints it for `mwanctl check`; [`render`] writes a config back
//! as canonical UCI text.

mod diagnostic;
pub mod model;
mod render;
mod schema;
mod summary;
mod uci;
mod values;

pub use diagnostic::{aggregate, count_by_kind, warning_summary, Diagnostic, Kind, Severity};
pub use model::*;
pub use render::render;
pub use summary::summary;

use std::fmt;
use std::path::{Path, PathBuf};

/// A config that passed validation, with the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// A config with at least one error. `problems` holds every error in file
/// order; `warnings` the warnings found alongside them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub problems: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        write!(f, "{} problem(s)", self.problems.len())
    }
}

impl std::error::Error for Rejected {}

/// Where mwand and mwanctl look by default: our own package
/// `/etc/config/mwan` when it exists, else mwan3's `/etc/config/mwan3`,
/// read unchanged.
pub fn default_path() -> PathBuf {
    let own = Path::new("/etc/config/mwan");
    if own.exists() {
        own.to_path_buf()
    } else {
        PathBuf::from("/etc/config/mwan3")
    }
}

/// Reads and validates a config file. The file name in messages is the path
/// as given.
pub fn load(path: &Path) -> Result<Loaded, Rejected> {
    let source = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            // Real configs carry Latin-1 or broken UTF-8 in comments now and
            // then; only comments and values can hold such bytes, and a lossy
            // decode keeps every line number right.
            let text = String::from_utf8_lossy(&bytes);
            parse(&source, &text)
        }
        Err(err) => Err(Rejected {
            problems: vec![Diagnostic::new(
                Kind::Invalid,
                &source,
                0,
                None,
                None,
                format!("cannot read the file: {err}"),
            )],
            warnings: Vec::new(),
        }),
    }
}

/// Parses and validates config text. `source_name` is used in messages and
/// kept in [`Config::source`].
pub fn parse(source_name: &str, text: &str) -> Result<Loaded, Rejected> {
    let mut diagnostics = Vec::new();
    let document = uci::read(source_name, text, &mut diagnostics);
    let config = schema::build(source_name, &document, &mut diagnostics);
    // Stable sort: file order, and within a line the order checks ran in.
    diagnostics.sort_by_key(|d| d.line);
    let (problems, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    let warnings = aggregate(warnings);
    if problems.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(Rejected { problems, warnings })
    }
}
