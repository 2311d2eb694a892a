//! ubus for mwand, natively: blobmsg, the ubus wire protocol, a sans-IO
//! client state machine and a non-blocking mio connection driving it, plus
//! helpers for procd (tracker instances), netifd (interface facts) and the
//! LuCI-compatible `mwan3` status shape. See docs/ubus.md.

pub mod blobmsg;
pub mod message;

pub use blobmsg::{Table, Value};
pub use message::{Attr, Message, MsgType};
pub mod agent;
pub mod blocking;
pub mod client;
pub mod conn;

pub use client::{Client, Event, Invocation, MethodSpec};
pub use conn::{Connection, Session};
pub mod luci;
pub mod mwan_object;
pub mod netifd;
pub mod procd;
