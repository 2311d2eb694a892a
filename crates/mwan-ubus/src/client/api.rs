//! What a caller of [`Client`] sees: method specs, the events it returns,
//! its errors.

use std::fmt;

#[cfg(doc)]
use super::Client;
use crate::blobmsg::{Table, Value};
use crate::message::MessageError;

/// Caller's handle for a request, echoed in its reply event.
pub type Tag = u64;

/// Requests made while disconnected wait for the connection, up to this many.
pub const MAX_DEFERRED: usize = 64;

/// Requests older than this many [`Client::tick`]s fail with TIMEOUT.
pub const DEFAULT_TIMEOUT_TICKS: u32 = 30;

/// A method of a published object: name and (argument name, blobmsg type code).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSpec {
    pub name: String,
    pub args: Vec<(String, u8)>,
}

impl MethodSpec {
    pub fn new(name: &str, args: &[(&str, u8)]) -> MethodSpec {
        MethodSpec {
            name: name.to_owned(),
            args: args.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect(),
        }
    }
}

/// The SIGNATURE attribute for a method list: one table per method whose
/// members are int32 blobmsg type codes, as libubus sends it.
pub fn signature(methods: &[MethodSpec]) -> Table {
    Table(
        methods
            .iter()
            .map(|m| {
                let args = m
                    .args
                    .iter()
                    .map(|(n, t)| (n.clone(), Value::Int32(i32::from(*t))))
                    .collect();
                (m.name.clone(), Value::Table(Table(args)))
            })
            .collect(),
    )
}

/// One object as LOOKUP reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub path: String,
    pub id: u32,
    pub type_id: Option<u32>,
    pub signature: Option<Table>,
}

/// An INVOKE that arrived for one of our objects; answer with [`Client::reply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub path: String,
    pub obj_id: u32,
    pub method: String,
    pub data: Table,
    pub seq: u16,
    /// The caller's client id.
    pub peer: u32,
    pub user: Option<String>,
    pub no_reply: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// HELLO received; registrations are being (re)sent.
    Connected {
        client_id: u32,
    },
    /// The connection is gone; every pending request has been failed.
    Disconnected,
    ObjectRegistered {
        path: String,
        id: u32,
    },
    /// Answer to [`Client::call`] / [`Client::invoke`]: status and the DATA
    /// payloads (usually zero or one).
    Reply {
        tag: Tag,
        status: u32,
        data: Vec<Table>,
    },
    /// Answer to [`Client::lookup`].
    Lookup {
        tag: Tag,
        status: u32,
        objects: Vec<ObjectInfo>,
    },
    /// Someone called a method of one of our objects.
    Invoke(Invocation),
    /// An event matching one of our patterns.
    Event {
        name: String,
        data: Table,
    },
    /// A notification from an object we subscribed to (by path).
    Notification {
        path: String,
        method: String,
        data: Table,
    },
    Subscribed {
        path: String,
        target: u32,
    },
    /// The subscribed object went away (e.g. netifd restarted); we
    /// resubscribe when it reappears.
    SubscriptionLost {
        path: String,
    },
    /// ubusd says one of our objects gained (true) or lost (false) its last subscriber.
    SubscribersChanged {
        path: String,
        active: bool,
    },
    /// A registration ubusd refused (object path taken, bad pattern...).
    RegistrationFailed {
        what: String,
        status: u32,
    },
    /// Something the peer sent that we could not use; logged, not fatal.
    Unexpected(String),
}

#[derive(Debug)]
pub enum ClientError {
    /// The message could not be encoded (too large for ubus).
    Encode(MessageError),
    /// [`Client::notify`] for an object we did not register or that is not registered yet.
    NoSuchObject(String),
    /// Not connected, and [`MAX_DEFERRED`] requests already wait for the connection.
    NotConnected,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Encode(e) => write!(f, "cannot encode ubus message: {e}"),
            ClientError::NoSuchObject(p) => {
                write!(f, "ubus object '{p}' is not registered (yet)")
            }
            ClientError::NotConnected => write!(
                f,
                "not connected to ubus and {MAX_DEFERRED} requests already wait for it"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<MessageError> for ClientError {
    fn from(e: MessageError) -> Self {
        ClientError::Encode(e)
    }
}
