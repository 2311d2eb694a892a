//! Sans-IO ubus client: feed it the messages ubusd sends, take the bytes it
//! wants written, act on the [`Event`]s it returns. No sockets, no clock:
//! [`crate::conn::Session`] drives it from a mio loop, [`crate::blocking`]
//! from a plain socket, and the tests from captured conversations.
//!
//! Registrations (objects, event patterns, subscriptions) are remembered and
//! replayed after every HELLO, so a ubusd restart only costs a reconnect.
//!
//! The parts: what callers see ([`api`]), registrations replayed after
//! every HELLO ([`registrations`]), requests ([`requests`]) and what each
//! message from ubusd does ([`incoming`]).

use crate::blobmsg::Table;
use crate::message::{status, Message};
use std::collections::HashMap;

mod api;
mod incoming;
mod registrations;
mod requests;

pub use api::{
    signature, ClientError, Event, Invocation, MethodSpec, ObjectInfo, Tag, DEFAULT_TIMEOUT_TICKS,
    MAX_DEFERRED,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Disconnected,
    AwaitHello,
    Ready { client_id: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjRef {
    Named(usize),
    Listener,
    Sub(usize),
}

#[derive(Debug)]
enum AfterLookup {
    Return(Tag),
    Invoke {
        tag: Tag,
        method: String,
        data: Table,
    },
    /// Subscribe to what the LOOKUP found for subscription `index`.
    /// `watching`: our `ubus.object.add` registration went out before this
    /// LOOKUP, so if nothing is found the event will bring the object.
    Subscribe {
        index: usize,
        watching: bool,
    },
}

#[derive(Debug)]
enum PendingKind {
    AddObject {
        obj: ObjRef,
        id: Option<u32>,
    },
    Lookup {
        then: AfterLookup,
        objects: Vec<ObjectInfo>,
    },
    Invoke {
        tag: Tag,
        data: Vec<Table>,
    },
    Subscribe(usize),
    /// Event registration or event send: only a failure is worth reporting.
    Internal(String),
}

#[derive(Debug)]
struct Pending {
    kind: PendingKind,
    age: u32,
}

#[derive(Debug)]
struct NamedObject {
    path: String,
    methods: Vec<MethodSpec>,
    id: Option<u32>,
}

#[derive(Debug)]
struct Subscription {
    path: String,
    /// Our anonymous subscriber object.
    own_id: Option<u32>,
    target: Option<u32>,
}

/// Requests made before HELLO, sent once it arrives.
#[derive(Debug)]
enum Deferred {
    Lookup(Option<String>, Tag),
    Call {
        path: String,
        method: String,
        data: Table,
        tag: Tag,
    },
    Invoke {
        obj: u32,
        method: String,
        data: Table,
        tag: Tag,
    },
    SendEvent {
        id: String,
        data: Table,
    },
}

/// Internal event pattern used to notice subscription targets (re)appearing.
const OBJECT_ADD_EVENT: &str = "ubus.object.add";

#[derive(Debug)]
pub struct Client {
    state: State,
    next_seq: u16,
    out: Vec<u8>,
    pending: HashMap<u16, Pending>,
    objects: Vec<NamedObject>,
    patterns: Vec<String>,
    listener: Option<u32>,
    listener_requested: bool,
    /// A subscription waits for its target: listen for `ubus.object.add`.
    watch_object_add: bool,
    object_add_registered: bool,
    subs: Vec<Subscription>,
    deferred: Vec<Deferred>,
    timeout_ticks: u32,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl Client {
    pub fn new() -> Client {
        Client {
            state: State::Disconnected,
            next_seq: 1,
            out: Vec::new(),
            pending: HashMap::new(),
            objects: Vec::new(),
            patterns: Vec::new(),
            listener: None,
            listener_requested: false,
            watch_object_add: false,
            object_add_registered: false,
            subs: Vec::new(),
            deferred: Vec::new(),
            timeout_ticks: DEFAULT_TIMEOUT_TICKS,
        }
    }

    pub fn set_timeout_ticks(&mut self, ticks: u32) {
        self.timeout_ticks = ticks.max(1);
    }

    /// For replaying captures taken mid-connection: the seq of the next request.
    pub fn set_next_seq(&mut self, seq: u16) {
        self.next_seq = seq;
    }

    pub fn client_id(&self) -> Option<u32> {
        match self.state {
            State::Ready { client_id } => Some(client_id),
            _ => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// Id ubusd gave our object `path`, once registered.
    pub fn object_id(&self, path: &str) -> Option<u32> {
        self.objects
            .iter()
            .find(|o| o.path == path)
            .and_then(|o| o.id)
    }

    /// Bytes waiting to be written to ubusd; the caller drains them.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// A new socket is connected: wait for HELLO. Ids from the previous
    /// connection are forgotten (ubusd hands out new ones).
    pub fn connection_started(&mut self) {
        self.state = State::AwaitHello;
        self.next_seq = 1;
        self.out.clear();
        self.pending.clear();
        self.listener = None;
        self.listener_requested = false;
        self.watch_object_add = false;
        self.object_add_registered = false;
        for o in &mut self.objects {
            o.id = None;
        }
        for s in &mut self.subs {
            s.own_id = None;
            s.target = None;
        }
    }

    /// The socket is gone: fail what is pending so no caller waits forever.
    pub fn connection_lost(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let was_connected = self.state != State::Disconnected;
        self.state = State::Disconnected;
        self.out.clear();
        let mut pending: Vec<_> = self.pending.drain().collect();
        mwan_core::sort::sort_by_key(&mut pending, |(seq, _)| *seq);
        for (_, p) in pending {
            Self::fail(p.kind, status::CONNECTION_FAILED, &mut events);
        }
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Lookup(_, tag) => events.push(Event::Lookup {
                    tag,
                    status: status::CONNECTION_FAILED,
                    objects: Vec::new(),
                }),
                Deferred::Call { tag, .. } | Deferred::Invoke { tag, .. } => {
                    events.push(Event::Reply {
                        tag,
                        status: status::CONNECTION_FAILED,
                        data: Vec::new(),
                    })
                }
                Deferred::SendEvent { .. } => {}
            }
        }
        if was_connected {
            events.push(Event::Disconnected);
        }
        events
    }

    fn fail(kind: PendingKind, code: u32, events: &mut Vec<Event>) {
        match kind {
            PendingKind::Lookup {
                then: AfterLookup::Return(tag),
                ..
            } => events.push(Event::Lookup {
                tag,
                status: code,
                objects: Vec::new(),
            }),
            PendingKind::Lookup {
                then: AfterLookup::Invoke { tag, .. },
                ..
            }
            | PendingKind::Invoke { tag, .. } => events.push(Event::Reply {
                tag,
                status: code,
                data: Vec::new(),
            }),
            _ => {}
        }
    }

    /// Call about once a second; fails caller requests older than the timeout.
    pub fn tick(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let limit = self.timeout_ticks;
        let mut expired = Vec::new();
        for (seq, p) in self.pending.iter_mut() {
            p.age += 1;
            let caller_visible = matches!(
                p.kind,
                PendingKind::Invoke { .. } | PendingKind::Lookup { .. }
            );
            if caller_visible && p.age > limit {
                expired.push(*seq);
            }
        }
        mwan_core::sort::sort(&mut expired);
        for seq in expired {
            if let Some(p) = self.pending.remove(&seq) {
                Self::fail(p.kind, status::TIMEOUT, &mut events);
            }
        }
        events
    }

    fn defer(&mut self, d: Deferred) -> Result<(), ClientError> {
        if self.deferred.len() >= MAX_DEFERRED {
            return Err(ClientError::NotConnected);
        }
        self.deferred.push(d);
        Ok(())
    }

    fn alloc_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn send(&mut self, msg: &Message) -> Result<(), ClientError> {
        msg.encode_into(&mut self.out)?;
        Ok(())
    }

    fn request(
        &mut self,
        build: impl FnOnce(u16) -> Message,
        kind: PendingKind,
    ) -> Result<(), ClientError> {
        let seq = self.alloc_seq();
        self.send(&build(seq))?;
        self.pending.insert(seq, Pending { kind, age: 0 });
        Ok(())
    }
}
