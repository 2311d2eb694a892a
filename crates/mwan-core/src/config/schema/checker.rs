//! Reading typed values out of a raw section, reporting every problem with
//! its file, line, section and option.

use super::{values, Kind, MAX_SECONDS_MS, OBSOLETE};
use crate::config::uci::RawSection;
use crate::config::{Diagnostic, DurationMs};

pub(super) struct Checker<'a> {
    pub(super) source: &'a str,
    pub(super) diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    /// A diagnostic of `kind`: a warning unless the kind is
    /// [`Kind::Invalid`].
    pub(super) fn report(
        &mut self,
        kind: Kind,
        line: usize,
        section: &RawSection,
        option: Option<&str>,
        message: String,
    ) {
        self.diags.push(Diagnostic::new(
            kind,
            self.source,
            line,
            Some((section.label.clone(), section.kind.clone())),
            option.map(str::to_string),
            message,
        ));
    }

    pub(super) fn error(
        &mut self,
        line: usize,
        section: &RawSection,
        option: Option<&str>,
        message: String,
    ) {
        self.report(Kind::Invalid, line, section, option, message);
    }

    /// Warns about options this section type does not have.
    pub(super) fn unknown_options(&mut self, section: &RawSection, known: &[&str]) {
        for option in &section.options {
            if known.contains(&option.name.as_str()) {
                continue;
            }
            let obsolete = OBSOLETE
                .iter()
                .find(|(kind, name, _)| *kind == section.kind && *name == option.name);
            let (kind, message) = match obsolete {
                Some((_, _, what)) => (Kind::ObsoleteOption, format!("ignored: {what}")),
                None => (
                    Kind::UnknownOption,
                    format!(
                        "unknown option for {} {} section, ignored: expected one of {}",
                        if section.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        section.kind,
                        known.join(", ")
                    ),
                ),
            };
            self.report(kind, option.line, section, Some(&option.name), message);
        }
    }

    /// A single value. A `list` with one value is accepted; more is an error.
    pub(super) fn scalar<'s>(
        &mut self,
        section: &'s RawSection,
        name: &str,
    ) -> Option<(&'s str, usize)> {
        let option = section.option(name)?;
        match option.values.as_slice() {
            [(value, line)] => Some((value.as_str(), *line)),
            values => {
                self.error(
                    option.line,
                    section,
                    Some(name),
                    format!(
                        "given as a list of {} values: expected a single value ('option {name} VALUE')",
                        values.len()
                    ),
                );
                None
            }
        }
    }

    /// A value parsed by `parse`, or `default` (also after an error, so that
    /// checking goes on and reports every problem).
    pub(super) fn get<T>(
        &mut self,
        section: &RawSection,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.scalar(section, name) {
            Some((value, line)) => match parse(value) {
                Ok(v) => v,
                Err(message) => {
                    self.error(line, section, Some(name), message);
                    default
                }
            },
            None => default,
        }
    }

    pub(super) fn get_opt<T>(
        &mut self,
        section: &RawSection,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (value, line) = self.scalar(section, name)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(line, section, Some(name), message);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, section: &RawSection, name: &str, default: bool) -> bool {
        self.get(section, name, default, values::boolean)
    }

    pub(super) fn integer(
        &mut self,
        section: &RawSection,
        name: &str,
        default: u32,
        min: u32,
        max: u32,
    ) -> u32 {
        self.get(section, name, default, |v| {
            values::integer(v, min.into(), max.into()).map(|n| n as u32)
        })
    }

    pub(super) fn seconds(
        &mut self,
        section: &RawSection,
        name: &str,
        default: DurationMs,
    ) -> DurationMs {
        self.get(section, name, default, |v| {
            values::seconds(v, 1, MAX_SECONDS_MS)
        })
    }

    /// Values of a list option. mwan3 reads these with `config_list_foreach`,
    /// which skips a plain `option`: we use it, and say so.
    pub(super) fn list<'s>(
        &mut self,
        section: &'s RawSection,
        name: &str,
    ) -> Vec<(&'s str, usize)> {
        let Some(option) = section.option(name) else {
            return Vec::new();
        };
        let old_never = name == "flush_conntrack" && option.values[0].0 == "never";
        if !option.is_list && !old_never {
            self.report(Kind::OptionNotList,
                option.line,
                section,
                Some(name),
                format!(
                    "set with 'option' where mwan3 expects 'list {name}': mwan3 ignores it, mwan uses it (write 'list {name} ...' to mean the same to both)"
                ),
            );
        }
        option
            .values
            .iter()
            .map(|(v, l)| (v.as_str(), *l))
            .collect()
    }

    /// One of a fixed set of words.
    pub(super) fn choice<T: Copy>(
        &mut self,
        section: &RawSection,
        name: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> T {
        self.get(section, name, default, |value| {
            choices
                .iter()
                .find(|(word, _)| *word == value)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                    format!("'{value}' is not valid: expected {}", words.join(", "))
                })
        })
    }
}

/// Runs `step` on the first section of `text`; returns its result and the
/// problems it reported as `kind: message`.
#[cfg(test)]
pub(super) fn run_step<T>(
    text: &str,
    step: impl FnOnce(&mut Checker, &RawSection) -> T,
) -> (T, Vec<String>) {
    let mut diags = Vec::new();
    let doc = crate::config::uci::read("t", text, &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    let mut c = Checker {
        source: "t",
        diags: &mut diags,
    };
    let out = step(&mut c, &doc.sections[0]);
    let problems = diags
        .iter()
        .map(|d| format!("{}: {}", d.kind, d.message))
        .collect();
    (out, problems)
}
