//! UCI text to sections and options, with the line of everything.
//!
//! The syntax is libuci's (what `uci export` and therefore mwan3 read):
//! commands `package`, `config TYPE [NAME]`, `option NAME VALUE`,
//! `list NAME VALUE` (and libuci's one-letter forms `p`, `c`, `o`, `l`);
//! words separated by blanks; `'single'` quotes are literal; `"double"`
//! quotes and bare words take `\x` as a literal `x`; quoted and bare pieces
//! glue into one word (`'a'"b"c` is `abc`); a `#` outside quotes ends the
//! line; a backslash at the end of a line continues the command on the next.
//! CR before LF is dropped, a final newline is optional, a UTF-8 BOM is
//! skipped.
//!
//! mwan3 loads its config with `uci -S` (non-strict): a line libuci cannot
//! read is skipped with a message and the rest still loads. We do the same
//! for lines that are not UCI at all (a pasted shell prompt), as warnings.
//! A line that starts like a UCI command but is broken (unterminated quote,
//! missing value) is an error here: skipping it would silently drop a
//! setting the user meant to make.
//!
//! Why not `uci_rs` for this: see docs/configuration.md, "Parser".

use super::{Diagnostic, Kind};

/// One `option` or `list` as the file sets it, after libuci's merging:
/// a repeated `option` replaces the value, `list` appends, an `option` after
/// a `list` replaces the list.
#[derive(Debug, Clone)]
pub(crate) struct RawOption {
    pub name: String,
    /// Line of the first occurrence (for messages about the option as a whole).
    pub line: usize,
    pub is_list: bool,
    /// Values with the line each came from.
    pub values: Vec<(String, usize)>,
}

#[derive(Debug, Clone)]
pub(crate) struct RawSection {
    pub kind: String,
    /// Name as written; `None` for anonymous sections.
    pub name: Option<String>,
    /// Name for messages and for the model: the name, or `@TYPE[N]` with N
    /// the index among all sections of that type (as `uci show` counts).
    pub label: String,
    pub line: usize,
    pub options: Vec<RawOption>,
}

impl RawSection {
    pub fn option(&self, name: &str) -> Option<&RawOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RawDocument {
    pub package: Option<(String, usize)>,
    pub sections: Vec<RawSection>,
}

/// A word of a command with the line it started on.
struct Word {
    text: String,
    line: usize,
}

/// Splits text into commands (lists of words). Records lexical errors.
struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

enum LexError {
    /// Quote character, line the word started on, and whether the lexer
    /// already consumed the line end.
    Unterminated(char, usize, bool),
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Lexer {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    /// Next command: its words (possibly none for blank/comment lines) and
    /// the line it started on; `None` at end of input.
    fn next_command(&mut self) -> Option<(usize, Result<Vec<Word>, LexError>)> {
        self.chars.peek()?;
        let start = self.line;
        let mut words = Vec::new();
        let mut error = None;
        loop {
            // Blanks between words; CR counts as a blank so CRLF files and
            // stray CRs read like LF files.
            while matches!(self.chars.peek(), Some(' ' | '\t' | '\r' | '\x0b' | '\x0c')) {
                self.chars.next();
            }
            match self.chars.peek().copied() {
                None => break,
                Some('\n') => {
                    self.chars.next();
                    self.line += 1;
                    break;
                }
                Some('#') => {
                    self.skip_to_eol();
                    break;
                }
                // libuci: an unquoted ';' ends a command; another may follow
                // on the same line.
                Some(';') => {
                    self.chars.next();
                    break;
                }
                Some('\\') if self.continuation() => continue,
                Some(_) => match self.word() {
                    Ok((word, ends_line)) => {
                        words.push(word);
                        if ends_line {
                            self.skip_to_eol();
                            break;
                        }
                    }
                    Err(e) => {
                        if let LexError::Unterminated(_, _, false) = e {
                            self.skip_to_eol();
                        }
                        error = Some(e);
                        break;
                    }
                },
            }
        }
        Some((start, error.map_or(Ok(words), Err)))
    }

    /// Consumes up to and including the next newline.
    fn skip_to_eol(&mut self) {
        for c in self.chars.by_ref() {
            if c == '\n' {
                self.line += 1;
                break;
            }
        }
    }

    /// At a backslash: if it is followed by a line end (optionally CR LF),
    /// consumes both and returns true (line continuation).
    fn continuation(&mut self) -> bool {
        let mut ahead = self.chars.clone();
        ahead.next(); // the backslash
        let is_continuation = match ahead.next() {
            Some('\n') => true,
            Some('\r') => ahead.next() == Some('\n'),
            _ => false,
        };
        if is_continuation {
            self.skip_to_eol();
        }
        is_continuation
    }

    /// One word. Returns whether an unquoted `#` ended the line inside it.
    fn word(&mut self) -> Result<(Word, bool), LexError> {
        let line = self.line;
        let mut text = String::new();
        loop {
            match self.chars.peek().copied() {
                None | Some(' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c') => {
                    return Ok((Word { text, line }, false))
                }
                Some('#') => return Ok((Word { text, line }, true)),
                Some(';') => return Ok((Word { text, line }, false)),
                Some('\\') => {
                    if self.continuation() {
                        continue;
                    }
                    self.chars.next();
                    if let Some(c) = self.chars.next() {
                        text.push(c);
                    }
                }
                Some(q @ ('\'' | '"')) => {
                    self.chars.next();
                    loop {
                        match self.chars.next() {
                            None => return Err(LexError::Unterminated(q, line, false)),
                            Some('\n') => {
                                self.line += 1;
                                return Err(LexError::Unterminated(q, line, true));
                            }
                            Some('\\') if q == '"' => match self.chars.next() {
                                Some('\n') => self.line += 1,
                                Some(c) => text.push(c),
                                None => return Err(LexError::Unterminated(q, line, false)),
                            },
                            Some(c) if c == q => break,
                            Some(c) => text.push(c),
                        }
                    }
                }
                Some(c) => {
                    self.chars.next();
                    text.push(c);
                }
            }
        }
    }
}

/// Collects sections and options; pushes diagnostics for what it cannot use.
pub(crate) fn read(source: &str, text: &str, diags: &mut Vec<Diagnostic>) -> RawDocument {
    let mut doc = RawDocument::default();
    let mut lexer = Lexer::new(text);
    // Index into doc.sections of the section options go to; None before the
    // first `config` line or after a broken one.
    let mut current: Option<usize> = None;
    let mut in_broken_section = false;
    let mut count_by_kind: Vec<(String, usize)> = Vec::new();
    let diag = |line: usize, section: Option<&RawSection>, kind, message: String| {
        let section = section.map(|s| (s.label.clone(), s.kind.clone()));
        Diagnostic::new(kind, source, line, section, None, message)
    };
    while let Some((line, command)) = lexer.next_command() {
        let words = match command {
            Ok(words) => words,
            Err(LexError::Unterminated(quote, at, _)) => {
                let section = current.map(|i| &doc.sections[i]);
                diags.push(diag(
                    at,
                    section,
                    Kind::Invalid,
                    format!(
                        "unterminated {quote}quoted{quote} string: expected a closing {quote} on the same line"
                    ),
                ));
                continue;
            }
        };
        let Some(keyword) = words.first() else {
            continue;
        };
        let line = keyword.line.max(line);
        let args = &words[1..];
        match keyword.text.as_str() {
            "package" | "p" => {
                match args {
                    [name, rest @ ..] => {
                        doc.package = Some((name.text.clone(), line));
                        if !rest.is_empty() {
                            diags.push(diag(line, None, Kind::ExtraWords, extra_words(rest)));
                        }
                    }
                    [] => diags.push(diag(
                        line,
                        None,
                        Kind::Invalid,
                        "'package' without a name: expected 'package NAME'".into(),
                    )),
                }
                current = None;
                in_broken_section = false;
            }
            "config" | "c" => {
                current = None;
                // Until this line proves good, its options belong to a
                // section already reported as broken: do not report each.
                in_broken_section = true;
                let Some(kind) = args.first() else {
                    diags.push(diag(
                        line,
                        None,
                        Kind::Invalid,
                        "'config' without a section type: expected 'config TYPE [NAME]'".into(),
                    ));
                    continue;
                };
                if !valid_type(&kind.text) {
                    diags.push(diag(
                        line,
                        None,
                        Kind::Invalid,
                        format!(
                            "invalid section type '{}': expected letters, digits, '_' or '-'",
                            kind.text
                        ),
                    ));
                    continue;
                }
                let name = args
                    .get(1)
                    .map(|w| w.text.clone())
                    .filter(|n| !n.is_empty());
                if let Some(n) = &name {
                    if !valid_name(n) {
                        diags.push(diag(
                            line,
                            None,
                            Kind::Invalid,
                            format!(
                                "invalid section name '{n}' for a {} section: expected letters, digits and '_'",
                                kind.text
                            ),
                        ));
                        continue;
                    }
                }
                let index = match count_by_kind.iter_mut().find(|(k, _)| *k == kind.text) {
                    Some((_, n)) => {
                        *n += 1;
                        *n - 1
                    }
                    None => {
                        count_by_kind.push((kind.text.clone(), 1));
                        0
                    }
                };
                // libuci merges a repeated named section into the first one.
                if let Some(n) = &name {
                    if let Some(i) = doc.sections.iter().position(|s| s.name.as_ref() == Some(n)) {
                        let first = &doc.sections[i];
                        if first.kind == kind.text {
                            diags.push(diag(
                                line,
                                Some(first),
                                Kind::RepeatedSection,
                                format!(
                                    "section defined again (first at line {}): its options are merged into the first, later values win (as uci does)",
                                    first.line
                                ),
                            ));
                            current = Some(i);
                            in_broken_section = false;
                        } else {
                            diags.push(diag(
                                line,
                                None,
                                Kind::Invalid,
                                format!(
                                    "section name '{n}' is already used by the {} section at line {}: expected a name unique in the file",
                                    first.kind, first.line
                                ),
                            ));
                        }
                        if args.len() > 2 {
                            diags.push(diag(line, None, Kind::ExtraWords, extra_words(&args[2..])));
                        }
                        continue;
                    }
                }
                let label = name
                    .clone()
                    .unwrap_or_else(|| format!("@{}[{index}]", kind.text));
                doc.sections.push(RawSection {
                    kind: kind.text.clone(),
                    name,
                    label,
                    line,
                    options: Vec::new(),
                });
                current = Some(doc.sections.len() - 1);
                in_broken_section = false;
                if args.len() > 2 {
                    let section = doc.sections.last();
                    diags.push(diag(
                        line,
                        section,
                        Kind::ExtraWords,
                        extra_words(&args[2..]),
                    ));
                }
            }
            keyword @ ("option" | "o" | "list" | "l") => {
                let is_list = keyword.starts_with('l');
                let what = if is_list { "list" } else { "option" };
                let Some(index) = current else {
                    if in_broken_section {
                        continue;
                    }
                    diags.push(diag(
                        line,
                        None,
                        Kind::Invalid,
                        format!("'{what}' outside of a section: expected a 'config TYPE [NAME]' line before it"),
                    ));
                    continue;
                };
                let section = &mut doc.sections[index];
                let (name, value) = match args {
                    [name, value, rest @ ..] => {
                        if !rest.is_empty() {
                            let mut d =
                                diag(line, Some(section), Kind::ExtraWords, extra_words(rest));
                            d.option = Some(name.text.clone());
                            diags.push(d);
                        }
                        (name, (value.text.clone(), value.line))
                    }
                    [name] => {
                        // libuci takes a missing value as empty: `option`
                        // then unsets the option, `list` adds nothing.
                        let effect = if is_list {
                            "nothing is added"
                        } else {
                            "the option is unset and its default applies"
                        };
                        let mut d = diag(
                            line,
                            Some(section),
                            Kind::NoValue,
                            format!("'{what} {}' has no value: {effect} (as uci does); expected '{what} NAME VALUE'", name.text),
                        );
                        d.option = Some(name.text.clone());
                        diags.push(d);
                        (name, (String::new(), line))
                    }
                    [] => {
                        diags.push(diag(
                            line,
                            Some(section),
                            Kind::Invalid,
                            format!("'{what}' without a name: expected '{what} NAME VALUE'"),
                        ));
                        continue;
                    }
                };
                if !valid_name(&name.text) {
                    diags.push(diag(
                        line,
                        Some(section),
                        Kind::Invalid,
                        format!(
                            "invalid option name '{}': expected letters, digits and '_'",
                            name.text
                        ),
                    ));
                    continue;
                }
                if value.0.is_empty() {
                    // uci: an empty `option` deletes it, an empty `list` entry is dropped.
                    if !is_list {
                        section.options.retain(|o| o.name != name.text);
                    }
                    continue;
                }
                match section.options.iter_mut().find(|o| o.name == name.text) {
                    Some(existing) if is_list => {
                        existing.is_list = true;
                        existing.values.push(value);
                    }
                    Some(existing) => {
                        diags.push(Diagnostic::new(
                            Kind::RepeatedOption,
                            source,
                            line,
                            Some((section.label.clone(), section.kind.clone())),
                            Some(name.text.clone()),
                            format!(
                                "set again (first at line {}): the later value wins",
                                existing.line
                            ),
                        ));
                        existing.is_list = false;
                        existing.values = vec![value];
                    }
                    None => section.options.push(RawOption {
                        name: name.text.clone(),
                        line,
                        is_list,
                        values: vec![value],
                    }),
                }
            }
            _ => {
                let shown: String = keyword.text.chars().take(40).collect();
                diags.push(diag(
                    line,
                    None,
                    Kind::NotUci,
                    format!(
                        "not a UCI line (starts with '{shown}'; expected config, option, list or package): ignored, as 'uci -S' does"
                    ),
                ));
            }
        }
    }
    doc
}

fn extra_words(rest: &[Word]) -> String {
    let words: Vec<&str> = rest.iter().map(|w| w.text.as_str()).collect();
    format!(
        "extra words after the command ignored: '{}' (quote a value that contains blanks)",
        words.join(" ")
    )
}

/// libuci's `uci_validate_name`: letters, digits, underscore.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// libuci's `uci_validate_type`: names plus '-'.
fn valid_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn read_ok(text: &str) -> (RawDocument, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let doc = read("t", text, &mut diags);
        (doc, diags)
    }

    fn values(doc: &RawDocument, section: usize, option: &str) -> Vec<String> {
        doc.sections[section]
            .option(option)
            .unwrap()
            .values
            .iter()
            .map(|(v, _)| v.clone())
            .collect()
    }

    #[test]
    fn quoting_escapes_and_comments() {
        let (doc, diags) = read_ok(
            "config rule 'r'\n\toption a 'x y' # c\n\toption b \"q\\\"x\\\\\"\n\toption c pla\\ in#c\n\toption d 'a'\"b\"c\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(values(&doc, 0, "a"), ["x y"]);
        assert_eq!(values(&doc, 0, "b"), ["q\"x\\"]);
        assert_eq!(values(&doc, 0, "c"), ["pla in"]);
        assert_eq!(values(&doc, 0, "d"), ["abc"]);
    }

    #[test]
    fn lines_crlf_continuation_and_no_final_newline() {
        let (doc, diags) = read_ok(
            "config a 'x'\r\n\r\n\toption o \\\r\n  'v'\r\nconfig b\r\n\tlist l 1\r\n\tlist l 2",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(doc.sections[0].option("o").unwrap().line, 3);
        assert_eq!(values(&doc, 0, "o"), ["v"]);
        assert_eq!(doc.sections[1].label, "@b[0]");
        assert_eq!(doc.sections[1].line, 5);
        assert_eq!(values(&doc, 1, "l"), ["1", "2"]);
        assert_eq!(doc.sections[1].option("l").unwrap().values[1].1, 7);
    }

    #[test]
    fn stray_lines_warn_broken_commands_error() {
        let (doc, diags) =
            read_ok("config a 'x'\nroot@GL:~# \n\toption o 'v\n\toption p\n\toption q 'ok'\n");
        assert_eq!(values(&doc, 0, "q"), ["ok"]);
        let lines: Vec<(usize, Severity)> = diags.iter().map(|d| (d.line, d.severity)).collect();
        assert_eq!(
            lines,
            [
                (2, Severity::Warning),
                (3, Severity::Error),
                // A missing value unsets the option, as libuci does.
                (4, Severity::Warning)
            ]
        );
    }

    #[test]
    fn options_of_a_broken_section_are_not_reported_one_by_one() {
        let (doc, diags) = read_ok("config interface 'bad-name'\n\toption a '1'\n\toption b '2'\noption c '3'\nconfig x 'ok'\n\toption d '4'\n");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].line, 1);
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(values(&doc, 0, "d"), ["4"]);
    }

    #[test]
    fn semicolons_separate_commands_and_empty_values_unset() {
        let (doc, diags) =
            read_ok("config a 'x'; option p '1'; option q 2;option r 'a;b'\n\toption p ''\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(doc.sections[0].option("p").is_none());
        assert_eq!(values(&doc, 0, "q"), ["2"]);
        assert_eq!(values(&doc, 0, "r"), ["a;b"]);
        assert_eq!(doc.sections[0].option("q").unwrap().line, 1);
    }

    #[test]
    fn anonymous_index_counts_named_sections_of_the_type() {
        let (doc, _) = read_ok("config rule 'a'\nconfig rule\nconfig policy\nconfig rule ''\n");
        let labels: Vec<&str> = doc.sections.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["a", "@rule[1]", "@policy[0]", "@rule[2]"]);
    }
}
