//! Length-framed messages over a unix stream socket.
//!
//! Frame: `len: u32 LE` (bytes after this field) | `version: u16 LE` |
//! bincode(serde) payload. A reader accumulates bytes per connection and
//! yields whole frames, so the event loops never block on a partial message.

use crate::PROTOCOL_VERSION;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// Largest frame accepted; a peer announcing more is misbehaving.
pub const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 6;

#[derive(Debug)]
pub enum FrameError {
    TooLarge(usize),
    Version { got: u16, expected: u16 },
    Encode(String),
    Decode(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the {MAX_FRAME} byte limit"),
            FrameError::Version { got, expected } => write!(
                f,
                "peer speaks protocol version {got}, this build speaks {expected}: upgrade both sides together"
            ),
            FrameError::Encode(e) => write!(f, "cannot encode message: {e}"),
            FrameError::Decode(e) => write!(f, "malformed message: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Appends one frame holding `msg` to `out`.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    bincode::serde::encode_into_std_write(msg, out, bincode_config())
        .map_err(|e| FrameError::Encode(encode_error_text(&e)))?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// One frame holding `msg`.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Per-connection receive buffer that yields whole frames. Frames are
/// consumed by moving an offset; the consumed front is dropped only when it
/// is at least half the buffer, so each byte is moved a bounded number of
/// times however many frames one read brought.
#[derive(Default, Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    start: usize,
    /// Bytes moved inside `buf` so far (the framing's work, for tests).
    #[cfg(test)]
    moved: usize,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes just read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= self.buf.len() / 2 {
            #[cfg(test)]
            {
                self.moved += self.buf.len() - self.start;
            }
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes buffered but not yet consumed as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when a whole frame (or a header that is an error) is buffered:
    /// `next` would return without needing more bytes.
    pub fn has_frame(&self) -> bool {
        let rest = &self.buf[self.start..];
        rest.len() >= 4 && {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            !(2..=MAX_FRAME).contains(&len) || rest.len() >= 4 + len
        }
    }

    /// The next whole message, `Ok(None)` if more bytes are needed. After an
    /// error the connection should be dropped: framing is lost.
    // Not an Iterator: generic over the message type per call, and fallible.
    #[allow(clippy::should_implement_trait)]
    pub fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if len < 2 {
            return Err(FrameError::Decode(format!(
                "frame of {len} bytes has no version"
            )));
        }
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let version = u16::from_le_bytes([rest[4], rest[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::Version {
                got: version,
                expected: PROTOCOL_VERSION,
            });
        }
        let decoded =
            bincode::serde::decode_from_slice::<T, _>(&rest[HEADER..4 + len], bincode_config())
                .map_err(|e| FrameError::Decode(decode_error_text(&e)))
                .and_then(|(msg, used)| {
                    if used == len - 2 {
                        Ok(msg)
                    } else {
                        Err(FrameError::Decode(format!(
                            "{} trailing bytes after message",
                            len - 2 - used
                        )))
                    }
                });
        self.start += 4 + len;
        decoded.map(Some)
    }
}

/// bincode's own Display is its Debug (`OtherString("...")`): say it in words.
fn decode_error_text(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as D;
    match e {
        D::UnexpectedEnd { additional } => {
            format!("message ends early ({additional} more byte(s) expected)")
        }
        D::OtherString(text) => text.clone(),
        D::Other(text) => (*text).to_string(),
        D::UnexpectedVariant {
            type_name, found, ..
        } => format!("unknown variant {found} of {type_name}"),
        D::Utf8 { .. } => "a string is not valid UTF-8".to_string(),
        D::InvalidBooleanValue(v) => format!("{v} is not a boolean"),
        D::InvalidCharEncoding(_) => "a character is not valid UTF-8".to_string(),
        D::LimitExceeded => "message exceeds the size limit".to_string(),
        // The rest cannot come from our message types; bincode's text
        // for them is its Debug, which costs ~3 KB of code to link.
        _ => "malformed message".to_string(),
    }
}

/// What serialising failed on; bincode's own text is its Debug, as above.
fn encode_error_text(e: &bincode::error::EncodeError) -> String {
    use bincode::error::EncodeError as E;
    match e {
        E::OtherString(text) => text.clone(),
        E::Other(text) => (*text).to_string(),
        _ => "the message cannot be encoded".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_read_as_words_not_debug() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&3u32.to_le_bytes());
        wire.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        wire.push(99); // variant 99 of an enum with fewer
        let mut r = FrameReader::new();
        r.extend(&wire);
        let text = r.next::<crate::control::Request>().unwrap_err().to_string();
        assert!(text.starts_with("malformed message: "), "{text}");
        assert!(
            !text.contains("OtherString") && !text.contains('('),
            "{text}"
        );
        let mut short = encode(&String::from("hello")).unwrap();
        short.truncate(short.len() - 2);
        let len = (short.len() - 4) as u32;
        short[..4].copy_from_slice(&len.to_le_bytes());
        let mut r = FrameReader::new();
        r.extend(&short);
        let text = r.next::<String>().unwrap_err().to_string();
        assert!(text.contains("message ends early"), "{text}");
    }

    #[test]
    fn round_trip_split_at_every_byte() {
        let msgs = vec![String::from("one"), String::from(""), "x".repeat(300)];
        let mut wire = Vec::new();
        for m in &msgs {
            encode_into(m, &mut wire).unwrap();
        }
        for split in 0..wire.len() {
            let mut r = FrameReader::new();
            let mut got: Vec<String> = Vec::new();
            r.extend(&wire[..split]);
            while let Some(m) = r.next().unwrap() {
                got.push(m);
            }
            r.extend(&wire[split..]);
            while let Some(m) = r.next().unwrap() {
                got.push(m);
            }
            assert_eq!(got, msgs, "split at {split}");
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn many_small_frames_in_one_buffer_cost_linear_work() {
        // 100,000 requests read at once (a client that streams and never
        // reads): taking each off the front must not move the rest.
        let mut wire = Vec::new();
        for i in 0..100_000u32 {
            encode_into(&i, &mut wire).unwrap();
        }
        let mut r = FrameReader::new();
        r.extend(&wire);
        let mut n = 0u32;
        while let Some(m) = r.next::<u32>().unwrap() {
            assert_eq!(m, n);
            n += 1;
        }
        assert_eq!(n, 100_000);
        assert_eq!(r.pending(), 0);
        assert!(
            r.moved <= 2 * wire.len(),
            "moved {} bytes to frame {} bytes",
            r.moved,
            wire.len()
        );
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut wire = encode(&5u32).unwrap();
        wire[4] = wire[4].wrapping_add(1);
        let mut r = FrameReader::new();
        r.extend(&wire);
        assert!(matches!(r.next::<u32>(), Err(FrameError::Version { .. })));
    }

    #[test]
    fn oversized_length_is_rejected_before_buffering() {
        let mut r = FrameReader::new();
        r.extend(&((MAX_FRAME as u32) + 1).to_le_bytes());
        assert!(matches!(r.next::<u32>(), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&6u32.to_le_bytes());
        wire.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let mut r = FrameReader::new();
        r.extend(&wire);
        assert!(r.next::<String>().is_err());
    }
}
