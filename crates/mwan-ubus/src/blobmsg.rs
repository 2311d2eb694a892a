//! blobmsg: libubox's typed, named attribute format, as ubus carries it in
//! its DATA and SIGNATURE attributes.
//!
//! Wire layout of one element (all integers big-endian):
//! `id_len: u32` (bit 31 = extended, bits 30..24 = type, bits 23..0 = length
//! including this word but not the trailing padding), then `name_len: u16`,
//! the name, a NUL, zero padding to a 4-byte boundary, then the value, then
//! zero padding to the next 4-byte boundary. Container lengths count their
//! children with padding. See `../shared/ubus-vectors/README.md`.

use std::fmt;

pub mod de;
mod json;
pub mod ser;

/// blobmsg type codes (libubox `enum blobmsg_type`).
pub mod kind {
    pub const UNSPEC: u8 = 0;
    pub const ARRAY: u8 = 1;
    pub const TABLE: u8 = 2;
    pub const STRING: u8 = 3;
    pub const INT64: u8 = 4;
    pub const INT32: u8 = 5;
    pub const INT16: u8 = 6;
    /// Also used for booleans.
    pub const INT8: u8 = 7;
    pub const DOUBLE: u8 = 8;
}

/// Largest blob length the 24-bit length field can express.
pub const MAX_BLOB_LEN: usize = 0x00ff_ffff;

const EXTENDED: u32 = 0x8000_0000;

/// One blobmsg value. Integer widths are kept so that decoding and
/// re-encoding reproduces the peer's bytes exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unspec,
    Array(Vec<Value>),
    Table(Table),
    String(String),
    Int64(i64),
    Int32(i32),
    Int16(i16),
    /// blobmsg booleans are int8 0/1; other values are kept as sent.
    Int8(i8),
    Double(f64),
}

/// An ordered list of named values: what ubus calls a message body.
/// Order is kept (peers may care, and byte-exact re-encoding needs it);
/// lookups return the first match, as libubox's `blobmsg_parse` does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table(pub Vec<(String, Value)>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// Fewer bytes than an attribute header or its announced length.
    Truncated {
        at: usize,
        need: usize,
        have: usize,
    },
    /// An attribute announced a length below its own header size.
    BadLength {
        at: usize,
        len: usize,
    },
    /// A blobmsg element without the extended bit, or a name running past its attribute.
    BadName {
        at: usize,
    },
    /// A value whose size does not match its type (e.g. int32 with 2 bytes).
    BadValue {
        at: usize,
        kind: u8,
        len: usize,
    },
    /// A string without NUL terminator or not UTF-8.
    BadString {
        at: usize,
    },
    UnknownType {
        at: usize,
        kind: u8,
    },
    /// Encoding would exceed the 24-bit blob length.
    TooLong(usize),
    /// A string or name to encode contains a NUL byte (C readers would cut it there).
    NulInString(String),
    /// A name longer than the 16-bit name length allows.
    NameTooLong(usize),
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::Truncated { at, need, have } => write!(
                f,
                "blob truncated at offset {at}: need {need} bytes, have {have}"
            ),
            BlobError::BadLength { at, len } => write!(
                f,
                "blob attribute at offset {at} has length {len}, expected at least 4"
            ),
            BlobError::BadName { at } => write!(
                f,
                "blobmsg element at offset {at} has no valid name header (expected extended bit and NUL-terminated name)"
            ),
            BlobError::BadValue { at, kind, len } => write!(
                f,
                "blobmsg element at offset {at}: type {kind} with {len} value bytes does not fit the type's size"
            ),
            BlobError::BadString { at } => write!(
                f,
                "blobmsg string at offset {at} is not NUL-terminated UTF-8"
            ),
            BlobError::UnknownType { at, kind } => write!(
                f,
                "blobmsg element at offset {at} has unknown type {kind} (expected 0..=8)"
            ),
            BlobError::NulInString(s) => write!(
                f,
                "cannot encode {s:?}: blobmsg strings and names must not contain NUL bytes"
            ),
            BlobError::NameTooLong(n) => write!(
                f,
                "cannot encode a blobmsg name of {n} bytes (at most 65535)"
            ),
            BlobError::TooLong(n) => write!(
                f,
                "blob of {n} bytes exceeds the {MAX_BLOB_LEN} byte limit of the length field"
            ),
        }
    }
}

impl std::error::Error for BlobError {}

/// Strings go out NUL-terminated; one with a NUL inside would be cut short.
pub(crate) fn check_c_string(s: &str) -> Result<(), BlobError> {
    if s.as_bytes().contains(&0) {
        Err(BlobError::NulInString(s.to_owned()))
    } else {
        Ok(())
    }
}

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads a blob attribute header at `at`: (extended, id, len, padded_len).
pub(crate) fn read_header(buf: &[u8], at: usize) -> Result<(bool, u8, usize), BlobError> {
    if buf.len() < at + 4 {
        return Err(BlobError::Truncated {
            at,
            need: 4,
            have: buf.len().saturating_sub(at),
        });
    }
    let word = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let len = (word & 0x00ff_ffff) as usize;
    if len < 4 {
        return Err(BlobError::BadLength { at, len });
    }
    if buf.len() < at + len {
        return Err(BlobError::Truncated {
            at,
            need: len,
            have: buf.len() - at,
        });
    }
    Ok((word & EXTENDED != 0, ((word >> 24) & 0x7f) as u8, len))
}

/// Starts an attribute at the end of `out`; returns its offset for [`end_attr`].
pub(crate) fn begin_attr(out: &mut Vec<u8>, extended: bool, id: u8) -> usize {
    let at = out.len();
    let word = (if extended { EXTENDED } else { 0 }) | (u32::from(id & 0x7f) << 24);
    out.extend_from_slice(&word.to_be_bytes());
    at
}

/// Writes the attribute's length (bytes since `at`, unpadded) and pads to 4.
pub(crate) fn end_attr(out: &mut Vec<u8>, at: usize) -> Result<(), BlobError> {
    let len = out.len() - at;
    if len > MAX_BLOB_LEN {
        return Err(BlobError::TooLong(len));
    }
    let word = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
    let word = (word & 0xff00_0000) | len as u32;
    out[at..at + 4].copy_from_slice(&word.to_be_bytes());
    out.resize(align4(out.len()), 0);
    Ok(())
}

impl Value {
    fn kind(&self) -> u8 {
        match self {
            Value::Unspec => kind::UNSPEC,
            Value::Array(_) => kind::ARRAY,
            Value::Table(_) => kind::TABLE,
            Value::String(_) => kind::STRING,
            Value::Int64(_) => kind::INT64,
            Value::Int32(_) => kind::INT32,
            Value::Int16(_) => kind::INT16,
            Value::Int8(_) => kind::INT8,
            Value::Double(_) => kind::DOUBLE,
        }
    }

    pub fn bool(b: bool) -> Value {
        Value::Int8(i8::from(b))
    }

    /// A whole number as libubox converts JSON: int32 when it fits, else int64.
    pub fn int(v: i64) -> Value {
        i32::try_from(v).map_or(Value::Int64(v), Value::Int32)
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer width, widened.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int64(v) => Some(v),
            Value::Int32(v) => Some(v.into()),
            Value::Int16(v) => Some(v.into()),
            Value::Int8(v) => Some(v.into()),
            _ => None,
        }
    }

    /// blobmsg_get_bool semantics: any non-zero int8 is true; other ints too.
    pub fn as_bool(&self) -> Option<bool> {
        self.as_i64().map(|v| v != 0)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Double(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match self {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Encodes one named element (name `""` for array members).
    pub fn encode_named(&self, name: &str, out: &mut Vec<u8>) -> Result<(), BlobError> {
        check_c_string(name)?;
        if name.len() > usize::from(u16::MAX) {
            return Err(BlobError::NameTooLong(name.len()));
        }
        let at = begin_attr(out, true, self.kind());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        match self {
            Value::Unspec => {}
            Value::Array(items) => {
                for item in items {
                    item.encode_named("", out)?;
                }
            }
            Value::Table(t) => t.encode_into(out)?,
            Value::String(s) => {
                check_c_string(s)?;
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Value::Int64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Int32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Int16(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Int8(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Double(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
        }
        end_attr(out, at)
    }

    /// Decodes one element at `at` of `buf`: (name, value, padded length).
    pub fn decode_named(buf: &[u8], at: usize) -> Result<(String, Value, usize), BlobError> {
        let (extended, kind, len) = read_header(buf, at)?;
        let elem = &buf[at..at + len];
        if !extended || len < 7 {
            return Err(BlobError::BadName { at });
        }
        let name_len = u16::from_be_bytes([elem[4], elem[5]]) as usize;
        let hdr_end = align4(4 + 2 + name_len + 1);
        if hdr_end > len || elem[6 + name_len] != 0 {
            return Err(BlobError::BadName { at });
        }
        let name = std::str::from_utf8(&elem[6..6 + name_len])
            .map_err(|_| BlobError::BadName { at })?
            .to_owned();
        let data = &elem[hdr_end..];
        let data_at = at + hdr_end;
        let fixed = |n: usize| -> Result<&[u8], BlobError> {
            if data.len() == n {
                Ok(data)
            } else {
                Err(BlobError::BadValue {
                    at,
                    kind,
                    len: data.len(),
                })
            }
        };
        let value = match kind {
            kind::UNSPEC => Value::Unspec,
            kind::ARRAY => Value::Array(
                decode_list(buf, data_at, len - hdr_end)?
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            ),
            kind::TABLE => Value::Table(Table(decode_list(buf, data_at, len - hdr_end)?)),
            kind::STRING => {
                let Some((&0, body)) = data.split_last() else {
                    return Err(BlobError::BadString { at });
                };
                // libubox reads up to the first NUL; a NUL inside is not a valid string here.
                if body.contains(&0) {
                    return Err(BlobError::BadString { at });
                }
                Value::String(
                    std::str::from_utf8(body)
                        .map_err(|_| BlobError::BadString { at })?
                        .to_owned(),
                )
            }
            kind::INT64 => {
                Value::Int64(i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default()))
            }
            kind::INT32 => {
                Value::Int32(i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()))
            }
            kind::INT16 => {
                Value::Int16(i16::from_be_bytes(fixed(2)?.try_into().unwrap_or_default()))
            }
            kind::INT8 => Value::Int8(fixed(1)?[0] as i8),
            kind::DOUBLE => Value::Double(f64::from_bits(u64::from_be_bytes(
                fixed(8)?.try_into().unwrap_or_default(),
            ))),
            other => return Err(BlobError::UnknownType { at, kind: other }),
        };
        Ok((name, value, align4(len)))
    }
}

/// Decodes consecutive blobmsg elements in `buf[at..at+len]`.
pub(crate) fn decode_list(
    buf: &[u8],
    at: usize,
    len: usize,
) -> Result<Vec<(String, Value)>, BlobError> {
    let end = at + len;
    let region = &buf[..end];
    let mut items = Vec::new();
    let mut pos = at;
    while pos < end {
        let (name, value, used) = Value::decode_named(region, pos)?;
        items.push((name, value));
        // The last element's padding may lie outside a container that
        // does not count it; never step past the container.
        pos = (pos + used).min(end);
    }
    Ok(items)
}

impl Table {
    pub fn new() -> Table {
        Table(Vec::new())
    }

    /// Builder-style insert (appends; does not replace an existing key).
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Table {
        self.0.push((name.into(), value));
        self
    }

    pub fn push(&mut self, name: impl Into<String>, value: Value) {
        self.0.push((name.into(), value));
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    pub fn get_table(&self, name: &str) -> Option<&Table> {
        self.get(name).and_then(Value::as_table)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Encodes the members (no enclosing header): the body of a ubus DATA attribute.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), BlobError> {
        for (name, value) in &self.0 {
            value.encode_named(name, out)?;
        }
        Ok(())
    }

    /// Decodes members laid out back to back (the body of a DATA attribute).
    pub fn decode(buf: &[u8]) -> Result<Table, BlobError> {
        Ok(Table(decode_list(buf, 0, buf.len())?))
    }

    /// As serde_json's value, for tests and tools: the shipped code writes
    /// and reads JSON text itself ([`Table::to_json_text`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(n, v)| (n.clone(), v.to_json()))
                .collect(),
        )
    }

    /// A JSON object becomes a table; anything else is rejected, because a
    /// ubus message body is always a table.
    pub fn from_json(json: &serde_json::Value) -> Result<Table, JsonError> {
        match Value::from_json(json) {
            Value::Table(t) => Ok(t),
            _ => Err(JsonError(format!(
                "a ubus message body must be a JSON object, got {}",
                json_kind(json)
            ))),
        }
    }

    /// Serialises any serde value that maps to a table (struct or map), in
    /// field order, without a JSON detour (see [`ser`]).
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Table, JsonError> {
        ser::to_table(value).map_err(|e| JsonError(e.to_string()))
    }

    /// Deserialises the table (see [`de`]).
    pub fn to_deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, JsonError> {
        de::from_value(&Value::Table(self.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Value {
    /// Same mapping as libubox's `blobmsg_format_json`: int8 is a boolean.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Unspec => J::Null,
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Table(t) => t.to_json(),
            Value::String(s) => J::String(s.clone()),
            Value::Int64(v) => J::from(*v),
            Value::Int32(v) => J::from(*v),
            Value::Int16(v) => J::from(*v),
            Value::Int8(v) => J::Bool(*v != 0),
            Value::Double(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
        }
    }

    /// Same mapping as libubox's `blobmsg_add_json_element`: integers that
    /// fit are int32, larger ones int64, booleans int8, null is unspec.
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Unspec,
            J::Bool(b) => Value::bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::int(i)
                } else if let Some(u) = n.as_u64() {
                    // Above i64::MAX: keep the bits, as blobmsg_add_u64 would.
                    Value::Int64(u as i64)
                } else {
                    Value::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            J::String(s) => Value::String(s.clone()),
            J::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Table(Table(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn int32_element_matches_readme_example() {
        let mut out = Vec::new();
        Table::new()
            .with("a", Value::Int32(1))
            .encode_into(&mut out)
            .unwrap();
        assert_eq!(hex(&out), "8500000c0001610000000001");
    }

    #[test]
    fn every_type_round_trips() {
        let t = Table::new()
            .with("u", Value::Unspec)
            .with("s", Value::string("hello"))
            .with("i8", Value::Int8(-3))
            .with("i16", Value::Int16(-300))
            .with("i32", Value::Int32(70000))
            .with("i64", Value::Int64(-(1 << 40)))
            .with("d", Value::Double(1.5))
            .with(
                "a",
                Value::Array(vec![Value::string("x"), Value::Table(Table::new())]),
            )
            .with("t", Value::Table(Table::new().with("n", Value::bool(true))));
        let mut out = Vec::new();
        t.encode_into(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        assert_eq!(Table::decode(&out).unwrap(), t);
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        Table::new()
            .with("name", Value::string("value"))
            .encode_into(&mut out)
            .unwrap();
        // Missing trailing padding is tolerated (libubox does too); anything shorter is not.
        let unpadded = (u32::from_be_bytes([out[0], out[1], out[2], out[3]]) & 0xff_ffff) as usize;
        for cut in 1..unpadded {
            assert!(Table::decode(&out[..cut]).is_err(), "prefix of {cut} bytes");
        }
        assert!(matches!(
            Table::decode(&out[..out.len() - 4]),
            Err(BlobError::Truncated { .. })
        ));
        assert!(matches!(
            Table::decode(&[0x85, 0, 0, 2]),
            Err(BlobError::BadLength { .. })
        ));
        // int32 with a 2-byte value
        assert!(matches!(
            Table::decode(&[0x85, 0, 0, 10, 0, 1, b'a', 0, 0, 1, 0, 0]),
            Err(BlobError::BadValue { .. })
        ));
    }

    #[test]
    fn json_mapping_follows_libubox() {
        let j = serde_json::json!({"b": true, "n": 5, "big": 5_000_000_000i64, "f": 0.5, "z": null, "l": ["a"]});
        let t = Table::from_json(&j).unwrap();
        assert_eq!(t.get("b"), Some(&Value::Int8(1)));
        assert_eq!(t.get("n"), Some(&Value::Int32(5)));
        assert_eq!(t.get("big"), Some(&Value::Int64(5_000_000_000)));
        assert_eq!(t.get("f"), Some(&Value::Double(0.5)));
        assert_eq!(t.get("z"), Some(&Value::Unspec));
        assert_eq!(t.to_json(), j);
        assert!(Table::from_json(&serde_json::json!([1])).is_err());
    }
}
