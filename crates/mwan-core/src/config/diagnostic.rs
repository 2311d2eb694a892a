//! Problems found in a config file: where, how bad, what kind, what text.
//!
//! The text (`FILE:LINE: section 'NAME' (TYPE): option 'OPT': ...`) is for
//! people; the [`Kind`] is for code that groups and counts (`mwanctl
//! check`'s summary, `--json`, status). Repeats of one kind in one section
//! are folded into one diagnostic with a count ([`aggregate`]), so a list
//! of 100,000 bad entries logs one line per reload, not 100,000.

use std::fmt;

/// How bad a [`Diagnostic`] is: errors reject the config, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// What a diagnostic is about. Every warning has its own kind; errors are
/// all [`Kind::Invalid`] (the config is rejected whatever they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An error: a value, section or line the config cannot be built with.
    Invalid,
    // From the UCI reader.
    /// Not a UCI command at all (a pasted shell prompt).
    NotUci,
    /// Words after a command's arguments.
    ExtraWords,
    /// `option NAME` without a value: unset.
    NoValue,
    /// A section defined twice: merged.
    RepeatedSection,
    /// An option set twice: the later value wins.
    RepeatedOption,
    // From the schema.
    UnknownSection,
    UnknownOption,
    /// An option of an older mwan3 or a vendor fork.
    ObsoleteOption,
    /// Replaced by a newer option (converted, or the newer one wins).
    ReplacedOption,
    /// `option` where mwan3 reads a `list`.
    OptionNotList,
    /// A second globals section, or one not named 'globals'.
    GlobalsSection,
    /// A name mwan3 would skip (longer than 15 characters).
    LongName,
    /// A member or policy naming something undefined: dropped.
    UndefinedReference,
    /// A member listed twice in one policy.
    DuplicateMember,
    /// An option that does nothing in this combination (ports without
    /// tcp/udp, score options without score mode).
    NoEffect,
    /// A netmask that is not a prefix: kept as a bit mask.
    NetmaskNotPrefix,
    /// A rule family its policy has no member of.
    FamilyMismatch,
    /// A setting under which the interface can never be up, or a probe
    /// target that says nothing about the uplink.
    UselessTracking,
    /// Recovery thresholds looser than failure thresholds.
    ThresholdOrder,
    /// A feature mwan-track does not have (TLS for httping).
    Unsupported,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 21] = [
        Kind::Invalid,
        Kind::NotUci,
        Kind::ExtraWords,
        Kind::NoValue,
        Kind::RepeatedSection,
        Kind::RepeatedOption,
        Kind::UnknownSection,
        Kind::UnknownOption,
        Kind::ObsoleteOption,
        Kind::ReplacedOption,
        Kind::OptionNotList,
        Kind::GlobalsSection,
        Kind::LongName,
        Kind::UndefinedReference,
        Kind::DuplicateMember,
        Kind::NoEffect,
        Kind::NetmaskNotPrefix,
        Kind::FamilyMismatch,
        Kind::UselessTracking,
        Kind::ThresholdOrder,
        Kind::Unsupported,
    ];

    /// Stable code for JSON and status: lowercase words joined by '-'.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::NotUci => "not-uci",
            Kind::ExtraWords => "extra-words",
            Kind::NoValue => "no-value",
            Kind::RepeatedSection => "repeated-section",
            Kind::RepeatedOption => "repeated-option",
            Kind::UnknownSection => "unknown-section",
            Kind::UnknownOption => "unknown-option",
            Kind::ObsoleteOption => "obsolete-option",
            Kind::ReplacedOption => "replaced-option",
            Kind::OptionNotList => "option-not-list",
            Kind::GlobalsSection => "globals-section",
            Kind::LongName => "long-name",
            Kind::UndefinedReference => "undefined-reference",
            Kind::DuplicateMember => "duplicate-member",
            Kind::NoEffect => "no-effect",
            Kind::NetmaskNotPrefix => "netmask-not-prefix",
            Kind::FamilyMismatch => "family-mismatch",
            Kind::UselessTracking => "useless-tracking",
            Kind::ThresholdOrder => "threshold-order",
            Kind::Unsupported => "unsupported",
        }
    }

    /// Words for summaries ("2 unknown option, 1 obsolete option").
    pub fn label(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::NotUci => "not a UCI line",
            Kind::ExtraWords => "extra words",
            Kind::NoValue => "option without value",
            Kind::RepeatedSection => "section defined again",
            Kind::RepeatedOption => "option set again",
            Kind::UnknownSection => "unknown section type",
            Kind::UnknownOption => "unknown option",
            Kind::ObsoleteOption => "obsolete option",
            Kind::ReplacedOption => "replaced option",
            Kind::OptionNotList => "option instead of list",
            Kind::GlobalsSection => "globals section",
            Kind::LongName => "name too long for mwan3",
            Kind::UndefinedReference => "undefined reference",
            Kind::DuplicateMember => "member listed twice",
            Kind::NoEffect => "option without effect",
            Kind::NetmaskNotPrefix => "netmask not a prefix",
            Kind::FamilyMismatch => "family mismatch",
            Kind::UselessTracking => "useless tracking",
            Kind::ThresholdOrder => "recovery looser than failure",
            Kind::Unsupported => "unsupported",
        }
    }

    /// [`Severity::Error`] for [`Kind::Invalid`], else a warning.
    pub fn severity(self) -> Severity {
        match self {
            Kind::Invalid => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem found in a config file, with where it is.
///
/// Display: `FILE:LINE: section 'NAME' (TYPE): option 'OPT': MESSAGE`; the
/// section and option parts are left out when the problem is not inside one.
/// The severity is not part of the text: callers say "warning:" themselves
/// (`mwanctl check` does), and [`Rejected::problems`](super::Rejected)
/// holds only errors. A diagnostic standing for repeats ends with
/// `(and N more like it in this section, up to line L)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: Kind,
    /// File name as given to [`parse`](super::parse)/[`load`](super::load).
    pub source: String,
    /// 1-based line; 0 when the problem belongs to no line (e.g. the file
    /// could not be read).
    pub line: usize,
    /// Section name (or `@TYPE[N]` for anonymous sections) and type.
    pub section: Option<(String, String)>,
    pub option: Option<String>,
    /// What is wrong and what was expected (of the first occurrence).
    pub message: String,
    /// Further occurrences of this kind for this option of this section
    /// folded into this one (0: none), and the line of the last.
    pub repeats: usize,
    pub last_line: usize,
}

impl Diagnostic {
    /// A diagnostic of `kind` (its severity follows from it).
    pub fn new(
        kind: Kind,
        source: &str,
        line: usize,
        section: Option<(String, String)>,
        option: Option<String>,
        message: String,
    ) -> Self {
        Diagnostic {
            severity: kind.severity(),
            kind,
            source: source.to_string(),
            line,
            section,
            option,
            message,
            repeats: 0,
            last_line: line,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// How many problems this diagnostic stands for (1 + repeats).
    pub fn count(&self) -> usize {
        1 + self.repeats
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.source, self.line)?;
        if let Some((name, kind)) = &self.section {
            write!(f, "section '{name}' ({kind}): ")?;
        }
        if let Some(option) = &self.option {
            write!(f, "option '{option}': ")?;
        }
        f.write_str(&self.message)?;
        if self.repeats > 0 {
            write!(
                f,
                " (and {} more like it in this section, up to line {})",
                self.repeats, self.last_line
            )?;
        }
        Ok(())
    }
}

/// Fold warnings of one kind about one option of one section (or outside
/// any section or option) of one file into the first of them, counting the
/// rest: the entries of a long list. Warnings about different options stay
/// apart (each is its own fix), and errors are kept one by one. Order is
/// kept (by first occurrence).
pub fn aggregate(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    // A BTreeMap, not a HashMap: mwanctl has no other HashMap, and this
    // one would cost it hashing code for nothing.
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diagnostics.len());
    type Key = (String, Option<(String, String)>, Option<String>, Kind);
    let mut first: std::collections::BTreeMap<Key, usize> = Default::default();
    for d in diagnostics {
        if d.is_error() {
            out.push(d);
            continue;
        }
        let key = (
            d.source.clone(),
            d.section.clone(),
            d.option.clone(),
            d.kind,
        );
        match first.get(&key) {
            Some(&i) => {
                out[i].repeats += d.count();
                out[i].last_line = out[i].last_line.max(d.last_line);
            }
            None => {
                first.insert(key, out.len());
                out.push(d);
            }
        }
    }
    out
}

/// Problems per kind, most frequent first (ties in [`Kind`] order).
pub fn count_by_kind(diagnostics: &[Diagnostic]) -> Vec<(Kind, usize)> {
    let mut counts = [0usize; Kind::ALL.len()];
    for d in diagnostics {
        counts[d.kind as usize] += d.count();
    }
    // At most one entry per kind: an insertion keeps the code small (a
    // slice sort would add its own copy to mwanctl) and equal counts in
    // declaration order.
    let mut list: Vec<(Kind, usize)> = Vec::new();
    for (kind, n) in Kind::ALL.into_iter().zip(counts) {
        if n > 0 {
            let at = list.iter().position(|&(_, m)| m < n).unwrap_or(list.len());
            list.insert(at, (kind, n));
        }
    }
    list
}

/// "3 warnings: 2 unknown option, 1 obsolete option"; "no warnings".
/// Errors in the list are left out.
pub fn warning_summary(diagnostics: &[Diagnostic]) -> String {
    let warnings: Vec<Diagnostic> = diagnostics
        .iter()
        .filter(|d| !d.is_error())
        .cloned()
        .collect();
    let total: usize = warnings.iter().map(Diagnostic::count).sum();
    if total == 0 {
        return "no warnings".into();
    }
    let groups: Vec<String> = count_by_kind(&warnings)
        .into_iter()
        .map(|(kind, n)| format!("{n} {}", kind.label()))
        .collect();
    format!(
        "{total} warning{}: {}",
        if total == 1 { "" } else { "s" },
        groups.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warn(kind: Kind, line: usize, section: &str) -> Diagnostic {
        Diagnostic::new(
            kind,
            "f",
            line,
            Some((section.into(), "policy".into())),
            None,
            format!("w{line}"),
        )
    }

    #[test]
    fn warnings_about_different_options_stay_apart() {
        let mut a = warn(Kind::ObsoleteOption, 2, "globals");
        a.option = Some("local_source".into());
        let mut b = warn(Kind::ObsoleteOption, 3, "globals");
        b.option = Some("rtmon_interval".into());
        let mut c = b.clone();
        c.line = 4;
        c.last_line = 4;
        let out = aggregate(vec![a, b, c]);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].count(), out[1].count()), (1, 2));
        assert!(out[1]
            .to_string()
            .ends_with("(and 1 more like it in this section, up to line 4)"));
    }

    #[test]
    fn repeats_of_a_kind_in_a_section_fold_into_the_first() {
        let list = vec![
            warn(Kind::UndefinedReference, 2, "p"),
            warn(Kind::UnknownOption, 3, "p"),
            warn(Kind::UndefinedReference, 4, "p"),
            warn(Kind::UndefinedReference, 5, "q"),
            Diagnostic::new(Kind::Invalid, "f", 6, None, None, "bad".into()),
            Diagnostic::new(Kind::Invalid, "f", 7, None, None, "bad".into()),
            warn(Kind::UndefinedReference, 9, "p"),
        ];
        let out = aggregate(list);
        let shown: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "f:2: section 'p' (policy): w2 (and 2 more like it in this section, up to line 9)",
                "f:3: section 'p' (policy): w3",
                "f:5: section 'q' (policy): w5",
                "f:6: bad",
                "f:7: bad",
            ]
        );
        assert_eq!(out[0].count(), 3);
        assert_eq!(
            warning_summary(&out),
            "5 warnings: 4 undefined reference, 1 unknown option"
        );
        assert_eq!(warning_summary(&[]), "no warnings");
        assert_eq!(warning_summary(&out[1..2]), "1 warning: 1 unknown option");
    }

    #[test]
    fn every_kind_has_a_distinct_code_and_only_invalid_is_an_error() {
        let all = Kind::ALL;
        let codes: std::collections::BTreeSet<&str> = all.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), all.len());
        // count_by_kind indexes by discriminant.
        assert!(all.iter().enumerate().all(|(i, k)| *k as usize == i));
        assert!(all
            .iter()
            .all(|k| (k.severity() == Severity::Error) == (*k == Kind::Invalid)));
    }
}
