//! The command-line lexer of mwand and mwanctl.
//!
//! Hand-written instead of clap: clap's parser, help and error machinery
//! cost ~110 KB of flash in each binary for a dozen flags
//! (docs/footprint.md). This only splits argv; each program keeps its own
//! flags, help text and checks.

use std::fmt;

/// One command-line word, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `--name` or `--name=value` (the value inline).
    Long(String, Option<String>),
    /// One letter of `-x` or of a cluster such as `-vv`.
    Short(char),
    /// Anything else, and every word after `--`.
    Operand(String),
}

/// Why the command line was not run: help or version asked for, or a
/// usage error (the caller prints it and exits 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    Help,
    Version,
    Error(String),
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Usage::Help => f.write_str("help requested"),
            Usage::Version => f.write_str("version requested"),
            Usage::Error(e) => f.write_str(e),
        }
    }
}

pub struct Lexer<I> {
    words: I,
    /// Letters of a short-flag cluster not yet returned, last first.
    pending_shorts: Vec<char>,
    operands_only: bool,
}

impl<I: Iterator<Item = String>> Lexer<I> {
    pub fn new(words: impl IntoIterator<IntoIter = I>) -> Self {
        Lexer {
            words: words.into_iter(),
            pending_shorts: Vec::new(),
            operands_only: false,
        }
    }

    /// The value of `--name` (inline `--name=v`, else the next word).
    pub fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, Usage> {
        inline
            .or_else(|| self.words.next())
            .ok_or_else(|| Usage::Error(format!("--{name} needs a value")))
    }

    /// The value of `--name`, parsed; the error names the flag and the word.
    pub fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &str,
        inline: Option<String>,
        expected: &str,
    ) -> Result<T, Usage> {
        let v = self.value(name, inline)?;
        v.parse()
            .map_err(|_| Usage::Error(format!("--{name}: '{v}' is not {expected}")))
    }
}

impl<I: Iterator<Item = String>> Iterator for Lexer<I> {
    type Item = Arg;

    fn next(&mut self) -> Option<Arg> {
        if let Some(c) = self.pending_shorts.pop() {
            return Some(Arg::Short(c));
        }
        let word = self.words.next()?;
        if self.operands_only {
            return Some(Arg::Operand(word));
        }
        if word == "--" {
            self.operands_only = true;
            return self.next();
        }
        if let Some(long) = word.strip_prefix("--") {
            return Some(match long.split_once('=') {
                Some((name, value)) => Arg::Long(name.to_string(), Some(value.to_string())),
                None => Arg::Long(long.to_string(), None),
            });
        }
        match word.strip_prefix('-') {
            Some(letters) if !letters.is_empty() => {
                self.pending_shorts = letters.chars().rev().collect();
                self.next()
            }
            _ => Some(Arg::Operand(word)),
        }
    }
}

/// Prints what `usage` asks for (help, version, or the error with a hint)
/// and returns the exit status: 0, or 2 for a usage error.
pub fn finish(usage: Usage, program: &str, help: &str) -> std::process::ExitCode {
    match usage {
        Usage::Help => print!("{help}"),
        Usage::Version => println!("{program} {}", env!("CARGO_PKG_VERSION")),
        Usage::Error(e) => {
            eprintln!("{program}: error: {e}\nFor more information, try '{program} --help'.");
            return std::process::ExitCode::from(2);
        }
    }
    std::process::ExitCode::SUCCESS
}

/// An unknown flag, as a usage error.
pub fn unknown(arg: &Arg) -> Usage {
    Usage::Error(match arg {
        Arg::Long(name, _) => format!("unknown option --{name}"),
        Arg::Short(c) => format!("unknown option -{c}"),
        Arg::Operand(w) => format!("unexpected argument '{w}'"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(words: &[&str]) -> Vec<Arg> {
        Lexer::new(words.iter().map(|w| w.to_string())).collect()
    }

    #[test]
    fn splits_longs_shorts_and_operands() {
        assert_eq!(
            lex(&[
                "--run-dir=/x",
                "-vv",
                "status",
                "--json",
                "--",
                "--not-a-flag",
                "-"
            ]),
            [
                Arg::Long("run-dir".into(), Some("/x".into())),
                Arg::Short('v'),
                Arg::Short('v'),
                Arg::Operand("status".into()),
                Arg::Long("json".into(), None),
                Arg::Operand("--not-a-flag".into()),
                Arg::Operand("-".into()),
            ]
        );
    }

    #[test]
    fn a_value_comes_inline_or_from_the_next_word() {
        let mut l = Lexer::new(["/etc/x".to_string()]);
        assert_eq!(l.value("config", Some("/a".into())), Ok("/a".to_string()));
        assert_eq!(l.value("config", None), Ok("/etc/x".to_string()));
        assert_eq!(
            l.value("config", None),
            Err(Usage::Error("--config needs a value".into()))
        );
        let mut l = Lexer::new(["x".to_string()]);
        assert_eq!(
            l.parsed::<u32>("allow-uid", None, "a uid"),
            Err(Usage::Error("--allow-uid: 'x' is not a uid".into()))
        );
    }
}
