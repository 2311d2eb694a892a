//! The little JSON the API reads: a flat object of strings.

use super::request::{refuse, Refusal};

/// A flat JSON object whose values are strings or null; the API needs no
/// more. An empty body is an empty object.
pub fn parse_object(body: &[u8]) -> Result<Vec<(String, Option<String>)>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| refuse(400, "body is not UTF-8"))?;
    let bad = |what: &str| {
        refuse(
            400,
            format!("body: {what}; expected {{\"name\": \"value\", ...}}"),
        )
    };
    let mut p = text.trim_start();
    if p.is_empty() {
        return Ok(Vec::new());
    }
    p = p.strip_prefix('{').ok_or_else(|| bad("not an object"))?;
    let mut fields = Vec::new();
    loop {
        p = p.trim_start();
        if let Some(rest) = p.strip_prefix('}') {
            if fields.is_empty() && rest.trim().is_empty() {
                return Ok(fields);
            }
            return Err(bad("misplaced '}'"));
        }
        let (name, rest) = json_string(p).ok_or_else(|| bad("bad key"))?;
        p = rest
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad("missing ':'"))?
            .trim_start();
        let value = if let Some(rest) = p.strip_prefix("null") {
            p = rest;
            None
        } else {
            let (v, rest) = json_string(p).ok_or_else(|| bad("values must be strings or null"))?;
            p = rest;
            Some(v)
        };
        fields.push((name, value));
        p = p.trim_start();
        if let Some(rest) = p.strip_prefix(',') {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('}') {
            return if rest.trim().is_empty() {
                Ok(fields)
            } else {
                Err(bad("text after the object"))
            };
        } else {
            return Err(bad("missing ',' or '}'"));
        }
    }
}

/// A JSON string at the start of `p`: its value and the rest.
pub(super) fn json_string(p: &str) -> Option<(String, &str)> {
    let mut chars = p.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &p[i + 2..])),
            '\\' => out.push(match chars.next()?.1 {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                _ => return None,
            }),
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
    None
}
