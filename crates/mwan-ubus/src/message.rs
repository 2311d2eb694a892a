//! ubus messages: an 8-byte header and one blob table of ubus attributes.
//!
//! ```text
//! version u8 | type u8 | seq u16 | peer u32 | id_len u32 | attributes...
//! ```
//! Attributes keep their order so a decoded frame re-encodes to the same
//! bytes (ubusd puts NO_REPLY first on delivered notifications, for one).

use crate::blobmsg::{self, align4, BlobError, Table};
use std::fmt;

/// Header (8) + the outer blob word (4).
pub const HEADER_LEN: usize = 12;
/// ubusd's UBUS_MAX_MSGLEN; a peer announcing more is misbehaving.
pub const MAX_MSG_LEN: usize = 1 << 20;
/// Object id of ubusd's event service.
pub const EVENT_OBJECT_ID: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    Hello,
    Status,
    Data,
    Ping,
    Lookup,
    Invoke,
    AddObject,
    RemoveObject,
    Subscribe,
    Unsubscribe,
    Notify,
    Monitor,
    Other(u8),
}

impl MsgType {
    pub fn from_u8(v: u8) -> MsgType {
        use MsgType::*;
        match v {
            0 => Hello,
            1 => Status,
            2 => Data,
            3 => Ping,
            4 => Lookup,
            5 => Invoke,
            6 => AddObject,
            7 => RemoveObject,
            8 => Subscribe,
            9 => Unsubscribe,
            10 => Notify,
            11 => Monitor,
            o => Other(o),
        }
    }

    pub fn to_u8(self) -> u8 {
        use MsgType::*;
        match self {
            Hello => 0,
            Status => 1,
            Data => 2,
            Ping => 3,
            Lookup => 4,
            Invoke => 5,
            AddObject => 6,
            RemoveObject => 7,
            Subscribe => 8,
            Unsubscribe => 9,
            Notify => 10,
            Monitor => 11,
            Other(o) => o,
        }
    }
}

/// ubus status codes (`enum ubus_msg_status`).
pub mod status {
    pub const OK: u32 = 0;
    pub const INVALID_COMMAND: u32 = 1;
    pub const INVALID_ARGUMENT: u32 = 2;
    pub const METHOD_NOT_FOUND: u32 = 3;
    pub const NOT_FOUND: u32 = 4;
    pub const NO_DATA: u32 = 5;
    pub const PERMISSION_DENIED: u32 = 6;
    pub const TIMEOUT: u32 = 7;
    pub const NOT_SUPPORTED: u32 = 8;
    pub const UNKNOWN_ERROR: u32 = 9;
    pub const CONNECTION_FAILED: u32 = 10;

    pub fn name(code: u32) -> &'static str {
        match code {
            OK => "ok",
            INVALID_COMMAND => "invalid command",
            INVALID_ARGUMENT => "invalid argument",
            METHOD_NOT_FOUND => "method not found",
            NOT_FOUND => "not found",
            NO_DATA => "no response",
            PERMISSION_DENIED => "permission denied",
            TIMEOUT => "request timed out",
            NOT_SUPPORTED => "operation not supported",
            UNKNOWN_ERROR => "unknown error",
            CONNECTION_FAILED => "connection failed",
            _ => "unrecognised status",
        }
    }
}

/// One ubus-level attribute (ids from libubus `ubusmsg.h`).
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Status(u32),
    ObjPath(String),
    ObjId(u32),
    Method(String),
    ObjType(u32),
    /// One table per method, members = blobmsg type codes as int32.
    Signature(Table),
    Data(Table),
    Target(u32),
    Active(u8),
    NoReply(u8),
    User(String),
    Group(String),
    /// Anything else (e.g. SUBSCRIBERS), kept as raw value bytes.
    Other {
        id: u8,
        value: Vec<u8>,
    },
}

mod attr_id {
    pub const STATUS: u8 = 1;
    pub const OBJPATH: u8 = 2;
    pub const OBJID: u8 = 3;
    pub const METHOD: u8 = 4;
    pub const OBJTYPE: u8 = 5;
    pub const SIGNATURE: u8 = 6;
    pub const DATA: u8 = 7;
    pub const TARGET: u8 = 8;
    pub const ACTIVE: u8 = 9;
    pub const NO_REPLY: u8 = 10;
    pub const USER: u8 = 12;
    pub const GROUP: u8 = 13;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MsgType,
    pub seq: u16,
    pub peer: u32,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The header announces a frame larger than ubusd accepts.
    TooLarge(usize),
    /// Version byte other than 0.
    Version(u8),
    /// The frame is shorter than its header says, or an attribute is malformed.
    Blob(BlobError),
    /// A fixed-size attribute (u32/u8) with the wrong size.
    BadAttr { id: u8, len: usize },
    /// A string attribute without NUL or not UTF-8.
    BadString { id: u8 },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge(n) => write!(
                f,
                "ubus frame of {n} bytes exceeds the {MAX_MSG_LEN} byte limit"
            ),
            MessageError::Version(v) => {
                write!(f, "ubus frame has version {v}, expected 0")
            }
            MessageError::Blob(e) => write!(f, "malformed ubus frame: {e}"),
            MessageError::BadAttr { id, len } => write!(
                f,
                "ubus attribute {id} has {len} value bytes, which does not fit its type"
            ),
            MessageError::BadString { id } => write!(
                f,
                "ubus attribute {id} is not a NUL-terminated UTF-8 string"
            ),
        }
    }
}

impl std::error::Error for MessageError {}

impl From<BlobError> for MessageError {
    fn from(e: BlobError) -> Self {
        MessageError::Blob(e)
    }
}

/// Size of the complete frame at the start of `buf`, if its header is
/// there: `Ok(None)` = need more bytes. Lets a reader wait for whole frames.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, MessageError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(MessageError::Version(buf[0]));
    }
    let word = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let blob_len = (word & 0x00ff_ffff) as usize;
    if blob_len < 4 {
        return Err(BlobError::BadLength {
            at: 8,
            len: blob_len,
        }
        .into());
    }
    let total = 8 + blob_len;
    if total > MAX_MSG_LEN + HEADER_LEN {
        return Err(MessageError::TooLarge(total));
    }
    // Exactly header + blob, as libubus and ubusd read it (libubox always
    // produces lengths that are multiples of 4, so no padding follows).
    Ok(Some(total))
}

fn u32_of(id: u8, v: &[u8]) -> Result<u32, MessageError> {
    let b: [u8; 4] = v
        .try_into()
        .map_err(|_| MessageError::BadAttr { id, len: v.len() })?;
    Ok(u32::from_be_bytes(b))
}

fn u8_of(id: u8, v: &[u8]) -> Result<u8, MessageError> {
    match v {
        [b] => Ok(*b),
        _ => Err(MessageError::BadAttr { id, len: v.len() }),
    }
}

fn string_of(id: u8, v: &[u8]) -> Result<String, MessageError> {
    match v.split_last() {
        Some((0, body)) if !body.contains(&0) => std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|_| MessageError::BadString { id }),
        _ => Err(MessageError::BadString { id }),
    }
}

impl Attr {
    pub fn id(&self) -> u8 {
        match self {
            Attr::Status(_) => attr_id::STATUS,
            Attr::ObjPath(_) => attr_id::OBJPATH,
            Attr::ObjId(_) => attr_id::OBJID,
            Attr::Method(_) => attr_id::METHOD,
            Attr::ObjType(_) => attr_id::OBJTYPE,
            Attr::Signature(_) => attr_id::SIGNATURE,
            Attr::Data(_) => attr_id::DATA,
            Attr::Target(_) => attr_id::TARGET,
            Attr::Active(_) => attr_id::ACTIVE,
            Attr::NoReply(_) => attr_id::NO_REPLY,
            Attr::User(_) => attr_id::USER,
            Attr::Group(_) => attr_id::GROUP,
            Attr::Other { id, .. } => *id,
        }
    }
}

impl Message {
    pub fn new(kind: MsgType, seq: u16, peer: u32) -> Message {
        Message {
            kind,
            seq,
            peer,
            attrs: Vec::new(),
        }
    }

    pub fn with(mut self, attr: Attr) -> Message {
        self.attrs.push(attr);
        self
    }

    /// Decodes one frame; `buf` must hold exactly the frame (see [`frame_len`]),
    /// trailing padding allowed.
    pub fn decode(buf: &[u8]) -> Result<Message, MessageError> {
        let Some(total) = frame_len(buf)? else {
            return Err(BlobError::Truncated {
                at: 0,
                need: HEADER_LEN,
                have: buf.len(),
            }
            .into());
        };
        let (_, _, blob_len) = blobmsg::read_header(buf, 8)?;
        debug_assert!(8 + blob_len <= total);
        let mut msg = Message::new(
            MsgType::from_u8(buf[1]),
            u16::from_be_bytes([buf[2], buf[3]]),
            u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        );
        let end = 8 + blob_len;
        let region = &buf[..end];
        let mut pos = HEADER_LEN;
        while pos < end {
            let (_, id, len) = blobmsg::read_header(region, pos)?;
            let v = &region[pos + 4..pos + len];
            let attr = match id {
                attr_id::STATUS => Attr::Status(u32_of(id, v)?),
                attr_id::OBJPATH => Attr::ObjPath(string_of(id, v)?),
                attr_id::OBJID => Attr::ObjId(u32_of(id, v)?),
                attr_id::METHOD => Attr::Method(string_of(id, v)?),
                attr_id::OBJTYPE => Attr::ObjType(u32_of(id, v)?),
                attr_id::SIGNATURE => {
                    Attr::Signature(Table(blobmsg::decode_list(region, pos + 4, len - 4)?))
                }
                attr_id::DATA => Attr::Data(Table(blobmsg::decode_list(region, pos + 4, len - 4)?)),
                attr_id::TARGET => Attr::Target(u32_of(id, v)?),
                attr_id::ACTIVE => Attr::Active(u8_of(id, v)?),
                attr_id::NO_REPLY => Attr::NoReply(u8_of(id, v)?),
                attr_id::USER => Attr::User(string_of(id, v)?),
                attr_id::GROUP => Attr::Group(string_of(id, v)?),
                other => Attr::Other {
                    id: other,
                    value: v.to_vec(),
                },
            };
            msg.attrs.push(attr);
            pos = (pos + align4(len)).min(end);
        }
        Ok(msg)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        let start = out.len();
        out.push(0);
        out.push(self.kind.to_u8());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.peer.to_be_bytes());
        let outer = blobmsg::begin_attr(out, false, 0);
        for attr in &self.attrs {
            let id = attr.id();
            let at = blobmsg::begin_attr(out, false, id);
            match attr {
                Attr::Status(v) | Attr::ObjId(v) | Attr::ObjType(v) | Attr::Target(v) => {
                    out.extend_from_slice(&v.to_be_bytes())
                }
                Attr::ObjPath(s) | Attr::Method(s) | Attr::User(s) | Attr::Group(s) => {
                    blobmsg::check_c_string(s)?;
                    out.extend_from_slice(s.as_bytes());
                    out.push(0);
                }
                Attr::Signature(t) | Attr::Data(t) => t.encode_into(out)?,
                Attr::Active(v) | Attr::NoReply(v) => out.push(*v),
                Attr::Other { value, .. } => out.extend_from_slice(value),
            }
            blobmsg::end_attr(out, at)?;
        }
        blobmsg::end_attr(out, outer)?;
        if out.len() - start > MAX_MSG_LEN + HEADER_LEN {
            let n = out.len() - start;
            out.truncate(start);
            return Err(MessageError::TooLarge(n));
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    pub fn status(&self) -> Option<u32> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Status(v) => Some(*v),
            _ => None,
        })
    }

    pub fn obj_id(&self) -> Option<u32> {
        self.attrs.iter().find_map(|a| match a {
            Attr::ObjId(v) => Some(*v),
            _ => None,
        })
    }

    pub fn obj_type(&self) -> Option<u32> {
        self.attrs.iter().find_map(|a| match a {
            Attr::ObjType(v) => Some(*v),
            _ => None,
        })
    }

    pub fn target(&self) -> Option<u32> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Target(v) => Some(*v),
            _ => None,
        })
    }

    pub fn active(&self) -> Option<bool> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Active(v) => Some(*v != 0),
            _ => None,
        })
    }

    pub fn no_reply(&self) -> bool {
        self.attrs
            .iter()
            .any(|a| matches!(a, Attr::NoReply(v) if *v != 0))
    }

    pub fn path(&self) -> Option<&str> {
        self.attrs.iter().find_map(|a| match a {
            Attr::ObjPath(v) => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn method(&self) -> Option<&str> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Method(v) => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn user(&self) -> Option<&str> {
        self.attrs.iter().find_map(|a| match a {
            Attr::User(v) => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn data(&self) -> Option<&Table> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Data(t) => Some(t),
            _ => None,
        })
    }

    pub fn signature(&self) -> Option<&Table> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Signature(t) => Some(t),
            _ => None,
        })
    }

    // ---- Builders, in the attribute order libubus uses (checked against the captures).

    pub fn lookup(seq: u16, path: Option<&str>) -> Message {
        let m = Message::new(MsgType::Lookup, seq, 0);
        match path {
            Some(p) => m.with(Attr::ObjPath(p.to_owned())),
            None => m,
        }
    }

    pub fn invoke(seq: u16, obj: u32, method: &str, data: Table) -> Message {
        Message::new(MsgType::Invoke, seq, obj)
            .with(Attr::ObjId(obj))
            .with(Attr::Method(method.to_owned()))
            .with(Attr::Data(data))
    }

    /// Named object (path + signature) or, with `None`, an anonymous one.
    pub fn add_object(seq: u16, named: Option<(&str, Table)>) -> Message {
        let m = Message::new(MsgType::AddObject, seq, 0);
        match named {
            Some((path, sig)) => m
                .with(Attr::ObjPath(path.to_owned()))
                .with(Attr::Signature(sig)),
            None => m,
        }
    }

    pub fn subscribe(seq: u16, own_obj: u32, target: u32) -> Message {
        Message::new(MsgType::Subscribe, seq, 0)
            .with(Attr::ObjId(own_obj))
            .with(Attr::Target(target))
    }

    /// Owner -> ubusd publication to subscribers of `obj`.
    pub fn notify(seq: u16, obj: u32, method: &str, data: Table) -> Message {
        Message::new(MsgType::Notify, seq, obj)
            .with(Attr::ObjId(obj))
            .with(Attr::Method(method.to_owned()))
            .with(Attr::Data(data))
            .with(Attr::NoReply(1))
    }

    /// Event listener registration (INVOKE to the event object).
    pub fn register_event(seq: u16, listener_obj: u32, pattern: &str) -> Message {
        Message::invoke(
            seq,
            EVENT_OBJECT_ID,
            "register",
            Table::new()
                .with("object", blobmsg::Value::Int32(listener_obj as i32))
                .with("pattern", blobmsg::Value::string(pattern)),
        )
    }

    pub fn send_event(seq: u16, id: &str, data: Table) -> Message {
        Message::invoke(
            seq,
            EVENT_OBJECT_ID,
            "send",
            Table::new()
                .with("id", blobmsg::Value::string(id))
                .with("data", blobmsg::Value::Table(data)),
        )
    }

    /// Reply payload to an INVOKE (seq and peer of the request).
    pub fn reply_data(seq: u16, caller: u32, obj: u32, data: Table) -> Message {
        Message::new(MsgType::Data, seq, caller)
            .with(Attr::ObjId(obj))
            .with(Attr::Data(data))
    }

    pub fn reply_status(seq: u16, caller: u32, obj: u32, code: u32) -> Message {
        Message::new(MsgType::Status, seq, caller)
            .with(Attr::Status(code))
            .with(Attr::ObjId(obj))
    }
}
