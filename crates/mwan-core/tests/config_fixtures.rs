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
