//! Every real mwan3 config in ../shared/fixtures/mwan3-real loads, apart
//! from the real errors documented in docs/configuration.md ("Real configs").

use mwan_core::config::{load, parse, render, Loaded};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mwan3-real")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "uci"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 37,
        "expected the 37 fixtures, found {}",
        files.len()
    );
    files
}

fn load_fixture(path: &Path) -> Loaded {
    match load(path) {
        Ok(loaded) => loaded,
        Err(rejected) => panic!("{} rejected:\n{rejected}", path.display()),
    }
}

#[test]
fn every_real_config_loads() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match load(&path) {
            Ok(loaded) => {
                println!("{name}: {} warning(s)", loaded.warnings.len());
                for w in &loaded.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(rejected) => failures.push(format!("{name}:\n{rejected}")),
        }
    }
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
}

#[test]
fn rendering_a_real_config_and_parsing_it_back_gives_the_same_config() {
    for path in fixtures() {
        let loaded = load_fixture(&path);
        let text = render(&loaded.config);
        let source = loaded.config.source.clone();
        let again = parse(&source, &text)
            .unwrap_or_else(|r| panic!("{}: rendered text rejected:\n{r}\n{text}", path.display()));
        assert_eq!(
            again.config,
            loaded.config,
            "{}: round trip changed the config",
            path.display()
        );
    }
}

#[test]
#[ignore = "prints summaries for eyeballing: cargo test --test config_fixtures print -- --ignored --nocapture"]
fn print_summaries() {
    for path in fixtures() {
        if let Ok(loaded) = load(&path) {
            println!("{}", mwan_core::config::summary(&loaded.config));
        }
    }
}

/// The warnings docs/configuration.md ("Real configs") names for each file
/// are really produced: (file number, words one of its warnings contains).
#[test]
fn the_documented_warnings_of_real_configs_are_given() {
    let expected: &[(&str, &str)] = &[
        ("04", "netmask 0.0.0.1 is not a prefix"),
        ("08", "netmask 0.0.0.1 is not a prefix"),
        ("16", "netmask 0.0.0.1 is not a prefix"),
        ("05", "name longer than 15 characters"),
        ("20", "name longer than 15 characters"),
        ("06", "interface 'wan' is not defined"),
        ("24", "interface 'wan2' is not defined"),
        ("32", "interface 'wan1' is not defined"),
        ("35", "interface 'wan' is not defined"),
        ("08", "only 2 track_ip are configured"),
        ("26", "only 1 track_ip is configured"),
        ("11", "'0.0.0.0' is this host"),
        ("23", "'0.0.0.0' is this host"),
        ("11", "has no ipv6 member"),
        ("33", "has no ipv6 member"),
        ("18", "unknown section type 'condition'"),
        ("19", "not a UCI line"),
        ("32", "option 'local_source': ignored"),
        ("18", "option 'rtmon_interval': ignored"),
    ];
    let files = fixtures();
    for (number, words) in expected {
        let path = files
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{number}-")))
            })
            .unwrap_or_else(|| panic!("no fixture {number}-*.uci"));
        let warnings: Vec<String> = load_fixture(path)
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            warnings.iter().any(|w| w.contains(words)),
            "{}: no warning with '{words}'; got:\n{}",
            path.display(),
            warnings.join("\n")
        );
    }
}
