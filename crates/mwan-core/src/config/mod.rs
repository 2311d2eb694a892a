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
pub(crate) mod uci;
mod values;

pub use diagnostic::{aggregate, count_by_kind, warning_summary, Diagnostic, Kind, Severity};
pub use model::*;
pub use render::render;
pub use summary::summary;
pub use values::parse_f64;

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
/// Largest config accepted (mwan3 configs of hundreds of interfaces are
/// well below it).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

pub fn load(path: &Path) -> Result<Loaded, Rejected> {
    let source = path.display().to_string();
    match read_regular(path) {
        Ok(bytes) => {
            // Real configs carry Latin-1 or broken UTF-8 in comments now and
            // then; only comments and values can hold such bytes, and a lossy
            // decode keeps every line number right.
            let text = String::from_utf8_lossy(&bytes);
            parse(&source, &text)
        }
        Err(message) => Err(Rejected {
            problems: vec![Diagnostic::new(
                Kind::Invalid,
                &source,
                0,
                None,
                None,
                message,
            )],
            warnings: Vec::new(),
        }),
    }
}

/// The file's bytes if it is a regular file of at most [`MAX_CONFIG_BYTES`].
/// A FIFO or device put in the config's place is refused before it is
/// opened (opening a FIFO blocks until a writer comes: it would stall
/// mwand's loop); the opened file is checked again.
fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read the file: {e}");
    let not_regular = || "not a regular file: a config must be a plain file".to_string();
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "the file is larger than {MAX_CONFIG_BYTES} bytes: not a config"
        ));
    }
    Ok(bytes)
}

/// Parses and validates config text. `source_name` is used in messages and
/// kept in [`Config::source`].
pub fn parse(source_name: &str, text: &str) -> Result<Loaded, Rejected> {
    let mut diagnostics = Vec::new();
    let document = uci::read(source_name, text, &mut diagnostics);
    let config = schema::build(source_name, &document, &mut diagnostics);
    // Stable sort: file order, and within a line the order checks ran in.
    crate::sort::sort_by_key(&mut diagnostics, |d| d.line);
    let (problems, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    let warnings = aggregate(warnings);
    if problems.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(Rejected { problems, warnings })
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    /// globals' `http` and `http_token_file` are the init script's (it
    /// passes them as --http and --http-token-file): known, and a bad
    /// address is named with its line here rather than at boot.
    #[test]
    fn the_dashboards_globals_are_known_and_a_bad_address_is_named() {
        let ok = "config globals 'globals'\n\toption http '127.0.0.1:8080'\n\toption http_token_file '/etc/mwan/token'\n";
        let loaded = parse("/etc/config/mwan", ok).unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .all(|w| w.kind != Kind::UnknownOption),
            "{:?}",
            loaded.warnings
        );
        let bad = "config globals 'globals'\n\toption http '8080'\n";
        let text = parse("/etc/config/mwan", bad).unwrap_err().to_string();
        assert!(
            text.contains("/etc/config/mwan:2:")
                && text.contains("option 'http'")
                && text.contains("'8080' is not an address and port"),
            "{text}"
        );
    }

    #[test]
    fn a_device_or_fifo_is_refused_without_reading_it() {
        let r = load(Path::new("/dev/null")).unwrap_err();
        let text = r.to_string();
        assert!(
            text.contains("/dev/null") && text.contains("not a regular file"),
            "{text}"
        );
    }

    #[test]
    fn a_config_larger_than_the_cap_is_refused() {
        let path = std::env::temp_dir().join(format!("mwan-big-{}", std::process::id()));
        std::fs::write(&path, "# padding\n".repeat(MAX_CONFIG_BYTES / 10 + 1)).unwrap();
        let r = load(&path);
        std::fs::remove_file(&path).unwrap();
        let text = r.unwrap_err().to_string();
        assert!(text.contains("larger than"), "{text}");
    }
}
