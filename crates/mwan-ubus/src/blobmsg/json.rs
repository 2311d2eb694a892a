//! JSON text to and from blobmsg [`Value`]s, with libubox's mapping (int8
//! is a boolean, unspec is null): what `mwanctl --json` prints and the
//! history mwand sends as JSON text. A few hundred bytes of our own in
//! place of serde_json's value type, parser and writer (docs/footprint.md).
//! The output is serde_json's: compact, or pretty with two-space indents;
//! keys in alphabetical order; non-finite doubles are null.

use super::{JsonError, Table, Value};
use mwan_core::history::json_string as write_string;
use std::fmt::Write as _;

impl Value {
    /// Compact JSON, as serde_json's `to_string`.
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, None);
        out
    }

    /// Indented JSON, as serde_json's `to_string_pretty`.
    pub fn to_json_pretty(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, Some(0));
        out
    }

    /// Writes the value; `indent` is the current depth when pretty.
    fn write_json(&self, out: &mut String, indent: Option<usize>) {
        match self {
            Value::Unspec => out.push_str("null"),
            Value::Int8(v) => out.push_str(if *v != 0 { "true" } else { "false" }),
            Value::Int16(v) => _ = write!(out, "{v}"),
            Value::Int32(v) => _ = write!(out, "{v}"),
            Value::Int64(v) => _ = write!(out, "{v}"),
            // `{:?}` is the shortest text that reads back to the same
            // double, with ".0" on whole numbers, as serde_json writes.
            Value::Double(v) if v.is_finite() => _ = write!(out, "{v:?}"),
            Value::Double(_) => out.push_str("null"),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => write_container(out, indent, '[', ']', items, |out, v, i| {
                v.write_json(out, i)
            }),
            Value::Table(t) => write_table(out, t, indent),
        }
    }

    /// Parses JSON text: integers become int32 when they fit, else int64
    /// (as `blobmsg_add_json_element` does), other numbers doubles,
    /// booleans int8, null unspec.
    pub fn parse_json(text: &str) -> Result<Value, JsonError> {
        let mut parser = Parser {
            text: text.as_bytes(),
            at: 0,
        };
        let value = parser.value(0)?;
        parser.skip_space();
        if parser.at < parser.text.len() {
            return Err(parser.error("trailing characters"));
        }
        Ok(value)
    }
}

impl Table {
    /// The table as compact JSON (an object).
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        write_table(&mut out, self, None);
        out
    }

    /// A JSON object as a table; anything else is rejected, because a
    /// ubus message body is always a table.
    pub fn from_json_text(text: &str) -> Result<Table, JsonError> {
        match Value::parse_json(text)? {
            Value::Table(t) => Ok(t),
            other => Err(JsonError(format!(
                "a ubus message body must be a JSON object, got {}",
                other.to_json_text()
            ))),
        }
    }
}

/// Keys in alphabetical order, as serde_json prints its maps (and
/// docs/status-json.md promises).
fn write_table(out: &mut String, table: &Table, indent: Option<usize>) {
    let mut entries: Vec<&(String, Value)> = table.0.iter().collect();
    mwan_core::sort::sort_by(&mut entries, |a, b| a.0.cmp(&b.0));
    write_container(out, indent, '{', '}', &entries, |out, (k, v), i| {
        write_string(out, k);
        out.push_str(if i.is_some() { ": " } else { ":" });
        v.write_json(out, i);
    });
}

fn write_container<T>(
    out: &mut String,
    indent: Option<usize>,
    open: char,
    close: char,
    items: &[T],
    mut write_item: impl FnMut(&mut String, &T, Option<usize>),
) {
    out.push(open);
    let inner = indent.map(|depth| depth + 1);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        if let Some(depth) = inner {
            new_line(out, depth);
        }
        write_item(out, item, inner);
    }
    if let (Some(depth), false) = (indent, items.is_empty()) {
        new_line(out, depth);
    }
    out.push(close);
}

fn new_line(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> JsonError {
        JsonError(format!("invalid JSON at byte {}: {what}", self.at))
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips space, then consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", byte as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        self.skip_space();
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut table = Table::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        self.expect(b':')?;
                        table.push(key, self.value(depth + 1)?);
                        if self.eat(b'}') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Value::Table(table))
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Value::Array(items))
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => {
                for (word, value) in [
                    ("null", Value::Unspec),
                    ("true", Value::bool(true)),
                    ("false", Value::bool(false)),
                ] {
                    if self.text[self.at..].starts_with(word.as_bytes()) {
                        self.at += word.len();
                        return Ok(value);
                    }
                }
                Err(self.error("expected a value"))
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::int(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            // Above i64::MAX: keep the bits, as blobmsg_add_u64 would.
            return Ok(Value::Int64(u as i64));
        }
        let well_formed = text.bytes().last().is_some_and(|b| b.is_ascii_digit())
            && !text.starts_with("-.")
            && !text.starts_with('.');
        match mwan_core::config::parse_f64(text) {
            Some(v) if well_formed => Ok(Value::Double(v)),
            _ => {
                self.at = start;
                Err(self.error("bad number"))
            }
        }
    }

    /// A string at the cursor (which is at its opening quote).
    fn string(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while !matches!(self.peek(), None | Some(b'"' | b'\\')) {
                self.at += 1;
            }
            // The input is a &str and we stopped at ASCII bytes: whole characters.
            out.push_str(std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default());
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                _ => {
                    self.at += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.at += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("bad escape")),
                    });
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape (its `\u` consumed), joining a
    /// surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&high) && self.text[self.at..].starts_with(b"\\u") {
            self.at += 2;
            let low = self.hex4()?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.error("bad surrogate pair"));
            }
            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("bad \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("bad \\u escape"))?;
        self.at += 4;
        Ok(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let samples = [
            r#"{"b":[true,false,null],"a":1,"c":{},"d":[],"e":"x\"\\\n\u0001é","f":-5000000000,"g":0.5,"h":2.0,"i":1e-7,"j":{"l":[{"n":123.25,"m":"\t\r\b\f"}]}}"#,
            "[]",
            "\"\"",
            "-0.0",
            "3",
        ];
        for text in samples {
            let ours = Value::parse_json(text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                ours.to_json_text(),
                serde_json::to_string(&theirs).unwrap(),
                "{text}"
            );
            assert_eq!(
                ours.to_json_pretty(),
                serde_json::to_string_pretty(&theirs).unwrap(),
                "{text}"
            );
            assert_eq!(ours.to_json(), theirs, "{text}");
        }
        assert_eq!(Value::Double(f64::NAN).to_json_text(), "null");
        assert_eq!(
            Table::new().with("a", Value::Int16(-2)).to_json_text(),
            r#"{"a":-2}"#
        );
    }

    #[test]
    fn reads_escapes_and_rejects_what_is_not_json() {
        let v = Value::parse_json(
            r#" { "s" : "\ud83d\ude00\/\t\u00e9" , "n": 18446744073709551615 } "#,
        )
        .unwrap();
        let t = v.as_table().unwrap();
        assert_eq!(t.get_str("s"), Some("😀/\té"));
        assert_eq!(t.get("n"), Some(&Value::Int64(-1)));
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "tru",
            "1 2",
            "\"abc",
            "\"\\x\"",
            "-",
            "1.",
            ".5",
            "1e",
            "\"\\ud800\\u0041\"",
            "{1:2}",
        ] {
            assert!(Value::parse_json(bad).is_err(), "{bad:?} is not JSON");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Value::parse_json(&deep).is_err());
    }
}
