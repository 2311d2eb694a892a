//! `mwanctl check`: validate a config without a daemon. Every problem and
//! every warning at once, then a summary grouping the warnings by kind;
//! `--json` gives each warning's kind and count as well as its text.

use mwan_core::config::{self, count_by_kind, warning_summary, Diagnostic};
use mwan_ubus::blobmsg::{Table, Value};
use std::path::{Path, PathBuf};

/// Checks the config at `path` (default: mwand's) and prints the outcome.
/// Returns whether the config is valid.
pub fn run(path: Option<PathBuf>, json: bool) -> bool {
    let path = path.unwrap_or_else(config::default_path);
    let (loaded, problems, warnings) = match config::load(&path) {
        Ok(l) => (Some(l.config), Vec::new(), l.warnings),
        Err(r) => (None, r.problems, r.warnings),
    };
    if json {
        println!(
            "{}",
            json_report(&path, &problems, &warnings).to_json_text()
        );
    } else {
        if let Some(c) = &loaded {
            print!("{}", with_newline(config::summary(c)));
        }
        eprint!(
            "{}",
            text_report(&path, &problems, &warnings, loaded.is_some())
        );
    }
    loaded.is_some()
}

/// stderr of a check: problems, warnings ("warning: ..."), then the
/// summary: the warnings by kind when the config is valid, else the
/// problem and warning counts (with the same grouping).
fn text_report(path: &Path, problems: &[Diagnostic], warnings: &[Diagnostic], ok: bool) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str(&format!("{p}\n"));
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let summary = warning_summary(warnings);
    if ok {
        if !warnings.is_empty() {
            out.push_str(&format!("{summary}\n"));
        }
    } else {
        let by_kind = summary.split_once(": ").map_or("", |(_, groups)| groups);
        out.push_str(&format!(
            "{}: {} problem(s), {} warning(s){}{by_kind}\n",
            path.display(),
            problems.len(),
            total(warnings),
            if by_kind.is_empty() { "" } else { ": " },
        ));
    }
    out
}

fn total(warnings: &[Diagnostic]) -> usize {
    warnings.iter().map(Diagnostic::count).sum()
}

/// `warnings` stays a list of texts (as before); `warning_kinds` gives each
/// one's kind code and count in the same order, `warning_counts` the totals
/// per kind.
fn json_report(path: &Path, problems: &[Diagnostic], warnings: &[Diagnostic]) -> Value {
    let texts = |v: &[Diagnostic]| -> Value {
        Value::Array(v.iter().map(|d| Value::String(d.to_string())).collect())
    };
    let count = |n: usize| Value::int(i64::try_from(n).unwrap_or(i64::MAX));
    let kinds = warnings
        .iter()
        .map(|w| {
            Value::Table(
                Table::new()
                    .with("kind", Value::string(w.kind.code()))
                    .with("count", count(w.count()))
                    .with("line", count(w.line)),
            )
        })
        .collect();
    let counts = count_by_kind(warnings)
        .into_iter()
        .map(|(k, n)| (k.code().to_string(), count(n)))
        .collect();
    Value::Table(
        Table::new()
            .with("ok", Value::bool(problems.is_empty()))
            .with("config", Value::String(path.display().to_string()))
            .with("problems", texts(problems))
            .with("warnings", texts(warnings))
            .with("warning_kinds", Value::Array(kinds))
            .with("warning_counts", Value::Table(Table(counts)))
            .with("warning_total", count(total(warnings))),
    )
}

/// The summary's last line ends like every other, so what follows it on
/// a terminal (warnings on stderr) starts on a line of its own.
fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "config globals 'globals'\n\toption bogus '1'\n\toption junk '1'\n\toption local_source 'lan'\n\
config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n";

    #[test]
    fn the_text_report_ends_with_warnings_grouped_by_kind() {
        let l = config::parse("t", TEXT).expect("loads");
        let text = text_report(Path::new("t"), &[], &l.warnings, true);
        assert!(
            text.ends_with("\n3 warnings: 2 unknown option, 1 obsolete option\n"),
            "{text}"
        );
        assert_eq!(text.matches("warning: ").count(), 3, "{text}");
        let rejected = config::parse("t", &format!("{TEXT}\toption interval 'x'\n")).unwrap_err();
        let text = text_report(
            Path::new("t"),
            &rejected.problems,
            &rejected.warnings,
            false,
        );
        assert!(
            text.ends_with("t: 1 problem(s), 3 warning(s): 2 unknown option, 1 obsolete option\n"),
            "{text}"
        );
    }

    #[test]
    fn the_json_report_carries_each_warnings_kind() {
        let l = config::parse("t", TEXT).expect("loads");
        let v = json_report(Path::new("t"), &[], &l.warnings).to_json();
        assert_eq!(v["ok"], true);
        assert_eq!(v["warning_kinds"][0]["kind"], "unknown-option");
        assert_eq!(v["warning_kinds"][2]["kind"], "obsolete-option");
        assert_eq!(v["warning_counts"]["unknown-option"], 2);
        assert_eq!(v["warning_total"], 3);
        assert!(v["warnings"][0].as_str().unwrap().contains("'bogus'"));
    }
}
