//! Sans-IO ubus client: feed it the messages ubusd sends, take the bytes it
//! wants written, act on the [`Event`]s it returns. No sockets, no clock:
//! [`crate::conn::Session`] drives it from a mio loop, [`crate::blocking`]
//! from a plain socket, and the tests from captured conversations.
//!
//! Registrations (objects, event patterns, subscriptions) are remembered and
//! replayed after every HELLO, so a ubusd restart only costs a reconnect.

use crate::blobmsg::{Table, Value};
use crate::message::{status, Message, MessageError, MsgType};
use std::collections::HashMap;
use std::fmt;

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

    // ---- Registrations (remembered across reconnects).

    /// Publishes object `path` with `methods`. INVOKEs for it arrive as
    /// [`Event::Invoke`]; methods not listed are answered METHOD_NOT_FOUND.
    pub fn add_object(&mut self, path: &str, methods: Vec<MethodSpec>) -> Result<(), ClientError> {
        self.objects.push(NamedObject {
            path: path.to_owned(),
            methods,
            id: None,
        });
        if self.is_ready() {
            self.register_object(self.objects.len() - 1)?;
        }
        Ok(())
    }

    fn register_object(&mut self, index: usize) -> Result<(), ClientError> {
        let sig = signature(&self.objects[index].methods);
        let path = self.objects[index].path.clone();
        self.request(
            |seq| Message::add_object(seq, Some((&path, sig))),
            PendingKind::AddObject {
                obj: ObjRef::Named(index),
                id: None,
            },
        )
    }

    /// Receives events whose name matches `pattern` (`*` suffix = prefix match).
    pub fn listen(&mut self, pattern: &str) -> Result<(), ClientError> {
        self.patterns.push(pattern.to_owned());
        if self.is_ready() {
            match self.listener {
                Some(id) => self.register_pattern(id, pattern)?,
                None => self.ensure_listener()?,
            }
        }
        Ok(())
    }

    fn ensure_listener(&mut self) -> Result<(), ClientError> {
        if self.listener.is_none() && !self.listener_requested {
            self.listener_requested = true;
            self.request(
                |seq| Message::add_object(seq, None),
                PendingKind::AddObject {
                    obj: ObjRef::Listener,
                    id: None,
                },
            )?;
        }
        Ok(())
    }

    /// Makes sure `ubus.object.add` events reach us, once per connection.
    fn watch_for_new_objects(&mut self) -> Result<(), ClientError> {
        self.watch_object_add = true;
        match self.listener {
            Some(id) if !self.object_add_registered => {
                self.object_add_registered = true;
                if !self
                    .patterns
                    .iter()
                    .any(|p| pattern_matches(p, OBJECT_ADD_EVENT))
                {
                    self.register_pattern(id, OBJECT_ADD_EVENT)?;
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None => self.ensure_listener(),
        }
    }

    fn register_pattern(&mut self, listener: u32, pattern: &str) -> Result<(), ClientError> {
        let what = format!("event listener for '{pattern}'");
        self.request(
            |seq| Message::register_event(seq, listener, pattern),
            PendingKind::Internal(what),
        )
    }

    /// Subscribes to notifications of object `path`; if it does not exist
    /// yet, subscribes as soon as ubusd announces it.
    pub fn subscribe(&mut self, path: &str) -> Result<(), ClientError> {
        if self.subs.iter().any(|s| s.path == path) {
            return Ok(());
        }
        self.subs.push(Subscription {
            path: path.to_owned(),
            own_id: None,
            target: None,
        });
        if self.is_ready() {
            self.start_subscription(self.subs.len() - 1)?;
        }
        Ok(())
    }

    fn start_subscription(&mut self, index: usize) -> Result<(), ClientError> {
        self.request(
            |seq| Message::add_object(seq, None),
            PendingKind::AddObject {
                obj: ObjRef::Sub(index),
                id: None,
            },
        )
    }

    // ---- Requests.

    /// LOOKUP of one path, or of everything with `None`.
    pub fn lookup(&mut self, path: Option<&str>, tag: Tag) -> Result<(), ClientError> {
        if !self.is_ready() {
            return self.defer(Deferred::Lookup(path.map(str::to_owned), tag));
        }
        self.request(
            |seq| Message::lookup(seq, path),
            PendingKind::Lookup {
                then: AfterLookup::Return(tag),
                objects: Vec::new(),
            },
        )
    }

    /// `ubus call path method data`: LOOKUP then INVOKE, answered by [`Event::Reply`].
    pub fn call(
        &mut self,
        path: &str,
        method: &str,
        data: Table,
        tag: Tag,
    ) -> Result<(), ClientError> {
        if !self.is_ready() {
            return self.defer(Deferred::Call {
                path: path.to_owned(),
                method: method.to_owned(),
                data,
                tag,
            });
        }
        self.request(
            |seq| Message::lookup(seq, Some(path)),
            PendingKind::Lookup {
                then: AfterLookup::Invoke {
                    tag,
                    method: method.to_owned(),
                    data,
                },
                objects: Vec::new(),
            },
        )
    }

    /// INVOKE of a known object id.
    pub fn invoke(
        &mut self,
        obj: u32,
        method: &str,
        data: Table,
        tag: Tag,
    ) -> Result<(), ClientError> {
        if !self.is_ready() {
            return self.defer(Deferred::Invoke {
                obj,
                method: method.to_owned(),
                data,
                tag,
            });
        }
        self.request(
            |seq| Message::invoke(seq, obj, method, data),
            PendingKind::Invoke {
                tag,
                data: Vec::new(),
            },
        )
    }

    /// `ubus send id data`. Queued until HELLO; dropped if the connection is
    /// lost first (events announce state, and a reconnect brings fresh state).
    pub fn send_event(&mut self, id: &str, data: Table) -> Result<(), ClientError> {
        if !self.is_ready() {
            return self.defer(Deferred::SendEvent {
                id: id.to_owned(),
                data,
            });
        }
        let what = format!("event '{id}'");
        self.request(
            |seq| Message::send_event(seq, id, data),
            PendingKind::Internal(what),
        )
    }

    /// Notifies the subscribers of our object `path` (no reply expected).
    pub fn notify(&mut self, path: &str, method: &str, data: Table) -> Result<(), ClientError> {
        let obj = self
            .object_id(path)
            .filter(|_| self.is_ready())
            .ok_or_else(|| ClientError::NoSuchObject(path.to_owned()))?;
        let seq = self.alloc_seq();
        self.send(&Message::notify(seq, obj, method, data))
    }

    /// Answers an [`Invocation`]: DATA (if any) then STATUS, as libubus does.
    pub fn reply(
        &mut self,
        inv: &Invocation,
        code: u32,
        data: Option<Table>,
    ) -> Result<(), ClientError> {
        if inv.no_reply || !self.is_ready() {
            return Ok(());
        }
        if let Some(data) = data {
            let msg = Message::reply_data(inv.seq, inv.peer, inv.obj_id, data);
            if let Err(e) = self.send(&msg) {
                // Still answer, so the caller is not left waiting for a reply that cannot come.
                self.send(&Message::reply_status(
                    inv.seq,
                    inv.peer,
                    inv.obj_id,
                    status::UNKNOWN_ERROR,
                ))?;
                return Err(e);
            }
        }
        self.send(&Message::reply_status(inv.seq, inv.peer, inv.obj_id, code))
    }

    // ---- Incoming.

    /// Handles one message from ubusd.
    pub fn handle(&mut self, msg: Message) -> Vec<Event> {
        let mut events = Vec::new();
        if let Err(e) = self.handle_inner(msg, &mut events) {
            events.push(Event::Unexpected(e.to_string()));
        }
        events
    }

    fn handle_inner(&mut self, msg: Message, events: &mut Vec<Event>) -> Result<(), ClientError> {
        match msg.kind {
            MsgType::Hello => self.on_hello(msg.peer, events)?,
            MsgType::Data => self.on_data(msg, events),
            MsgType::Status => self.on_status(msg, events)?,
            MsgType::Invoke => self.on_invoke(msg, events)?,
            MsgType::Notify => {
                // ubusd -> owner: subscriber count of one of our objects changed.
                let obj = msg.obj_id();
                let path = self
                    .objects
                    .iter()
                    .find(|o| o.id.is_some() && o.id == obj)
                    .map(|o| o.path.clone());
                match (path, msg.active()) {
                    (Some(path), Some(active)) => {
                        events.push(Event::SubscribersChanged { path, active })
                    }
                    _ => events.push(Event::Unexpected(format!(
                        "NOTIFY for unknown object {obj:?}"
                    ))),
                }
            }
            MsgType::Unsubscribe => {
                let own = msg.obj_id();
                if let Some(i) = self
                    .subs
                    .iter()
                    .position(|s| s.own_id.is_some() && s.own_id == own)
                {
                    self.subs[i].target = None;
                    events.push(Event::SubscriptionLost {
                        path: self.subs[i].path.clone(),
                    });
                    // Its target may be back before our registration for
                    // ubus.object.add takes (netifd restarting at once, or
                    // UNSUBSCRIBE read late): look once more, after it. (A
                    // listener still to be created looks once registered.)
                    let listening = self.listener.is_some();
                    self.watch_for_new_objects()?;
                    if listening {
                        self.lookup_for_subscription(i)?;
                    }
                }
            }
            // The type's number, not its Debug name: this is the only
            // place that would link MsgType's Debug.
            other => events.push(Event::Unexpected(format!(
                "unexpected message of type {} from ubusd (seq {})",
                other.to_u8(),
                msg.seq
            ))),
        }
        Ok(())
    }

    fn on_hello(&mut self, client_id: u32, events: &mut Vec<Event>) -> Result<(), ClientError> {
        if self.state == State::Disconnected {
            // A caller that forgot connection_started(): be forgiving.
            self.connection_started();
        }
        self.state = State::Ready { client_id };
        events.push(Event::Connected { client_id });
        for i in 0..self.objects.len() {
            self.register_object(i)?;
        }
        if !self.patterns.is_empty() {
            self.ensure_listener()?;
        }
        for i in 0..self.subs.len() {
            self.start_subscription(i)?;
        }
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Lookup(path, tag) => self.lookup(path.as_deref(), tag)?,
                Deferred::Call {
                    path,
                    method,
                    data,
                    tag,
                } => self.call(&path, &method, data, tag)?,
                Deferred::Invoke {
                    obj,
                    method,
                    data,
                    tag,
                } => self.invoke(obj, &method, data, tag)?,
                Deferred::SendEvent { id, data } => self.send_event(&id, data)?,
            }
        }
        Ok(())
    }

    fn on_data(&mut self, msg: Message, events: &mut Vec<Event>) {
        let Some(p) = self.pending.get_mut(&msg.seq) else {
            events.push(Event::Unexpected(format!(
                "DATA for unknown request seq {}",
                msg.seq
            )));
            return;
        };
        match &mut p.kind {
            PendingKind::Lookup { objects, .. } => match (msg.path(), msg.obj_id()) {
                (Some(path), Some(id)) => objects.push(ObjectInfo {
                    path: path.to_owned(),
                    id,
                    type_id: msg.obj_type(),
                    signature: msg.signature().cloned(),
                }),
                _ => events.push(Event::Unexpected(
                    "LOOKUP result without path or object id".into(),
                )),
            },
            PendingKind::AddObject { id, .. } => *id = msg.obj_id(),
            PendingKind::Invoke { data, .. } => {
                if let Some(t) = msg.data() {
                    data.push(t.clone());
                }
            }
            _ => {}
        }
    }

    fn on_status(&mut self, msg: Message, events: &mut Vec<Event>) -> Result<(), ClientError> {
        let Some(p) = self.pending.remove(&msg.seq) else {
            events.push(Event::Unexpected(format!(
                "STATUS for unknown request seq {}",
                msg.seq
            )));
            return Ok(());
        };
        let code = msg.status().unwrap_or(status::UNKNOWN_ERROR);
        match p.kind {
            PendingKind::AddObject { obj, id } => self.on_object_added(obj, id, code, events)?,
            PendingKind::Lookup { then, objects } => match then {
                AfterLookup::Return(tag) => events.push(Event::Lookup {
                    tag,
                    status: code,
                    objects,
                }),
                AfterLookup::Invoke { tag, method, data } => match objects.first() {
                    Some(o) if code == status::OK => {
                        let id = o.id;
                        self.request(
                            |seq| Message::invoke(seq, id, &method, data),
                            PendingKind::Invoke {
                                tag,
                                data: Vec::new(),
                            },
                        )?
                    }
                    _ => events.push(Event::Reply {
                        tag,
                        status: if code == status::OK {
                            status::NOT_FOUND
                        } else {
                            code
                        },
                        data: Vec::new(),
                    }),
                },
                AfterLookup::Subscribe { index: i, watching } => {
                    match (objects.first(), self.subs[i].own_id) {
                        // Already subscribing to it (its ubus.object.add came first).
                        (Some(o), Some(_)) if self.subs[i].target == Some(o.id) => {}
                        (Some(o), Some(own)) => {
                            let target = o.id;
                            self.subs[i].target = Some(target);
                            self.request(
                                |seq| Message::subscribe(seq, own, target),
                                PendingKind::Subscribe(i),
                            )?;
                        }
                        // Not there, and the event will bring it.
                        _ if watching => {}
                        // Not there yet: watch for it, then look once more, so an
                        // object added between that LOOKUP and our registration
                        // for ubus.object.add is not missed.
                        _ => {
                            self.watch_for_new_objects()?;
                            if self.object_add_registered {
                                self.lookup_for_subscription(i)?;
                            }
                        }
                    }
                }
            },
            PendingKind::Invoke { tag, data } => events.push(Event::Reply {
                tag,
                status: code,
                data,
            }),
            PendingKind::Subscribe(i) => {
                let s = &mut self.subs[i];
                match (code, s.target) {
                    (status::OK, Some(target)) => events.push(Event::Subscribed {
                        path: s.path.clone(),
                        target,
                    }),
                    _ => {
                        s.target = None;
                        events.push(Event::RegistrationFailed {
                            what: format!("subscription to '{}'", s.path),
                            status: code,
                        })
                    }
                }
            }
            PendingKind::Internal(what) => {
                if code != status::OK {
                    events.push(Event::RegistrationFailed { what, status: code });
                }
            }
        }
        Ok(())
    }

    fn on_object_added(
        &mut self,
        obj: ObjRef,
        id: Option<u32>,
        code: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let id = match (code, id) {
            (status::OK, Some(id)) => id,
            _ => {
                let what = match obj {
                    ObjRef::Named(i) => format!("object '{}'", self.objects[i].path),
                    ObjRef::Listener => "event listener object".to_owned(),
                    ObjRef::Sub(i) => format!("subscriber object for '{}'", self.subs[i].path),
                };
                if obj == ObjRef::Listener {
                    self.listener_requested = false;
                }
                events.push(Event::RegistrationFailed { what, status: code });
                return Ok(());
            }
        };
        match obj {
            ObjRef::Named(i) => {
                self.objects[i].id = Some(id);
                events.push(Event::ObjectRegistered {
                    path: self.objects[i].path.clone(),
                    id,
                });
            }
            ObjRef::Listener => {
                self.listener = Some(id);
                for p in self.patterns.clone() {
                    self.register_pattern(id, &p)?;
                }
                if self.watch_object_add {
                    self.watch_for_new_objects()?;
                    // Subscriptions that found nothing before we could watch.
                    let waiting: Vec<usize> = (0..self.subs.len())
                        .filter(|&i| self.subs[i].own_id.is_some() && self.subs[i].target.is_none())
                        .collect();
                    for i in waiting {
                        self.lookup_for_subscription(i)?;
                    }
                }
            }
            ObjRef::Sub(i) => {
                self.subs[i].own_id = Some(id);
                self.lookup_for_subscription(i)?;
            }
        }
        Ok(())
    }

    fn on_invoke(&mut self, msg: Message, events: &mut Vec<Event>) -> Result<(), ClientError> {
        let obj = msg.obj_id().unwrap_or(0);
        let method = msg.method().unwrap_or_default().to_owned();
        let data = msg.data().cloned().unwrap_or_default();
        let no_reply = msg.no_reply();
        let ack = |me: &mut Client, code: u32| -> Result<(), ClientError> {
            if no_reply {
                Ok(())
            } else {
                me.send(&Message::reply_status(msg.seq, msg.peer, obj, code))
            }
        };
        if self.listener == Some(obj) {
            ack(self, status::OK)?;
            if method == OBJECT_ADD_EVENT {
                self.on_object_appeared(&data)?;
            }
            if self.patterns.iter().any(|p| pattern_matches(p, &method)) {
                events.push(Event::Event { name: method, data });
            }
            return Ok(());
        }
        if let Some(s) = self.subs.iter().find(|s| s.own_id == Some(obj)) {
            events.push(Event::Notification {
                path: s.path.clone(),
                method,
                data,
            });
            return ack(self, status::OK);
        }
        let Some(o) = self.objects.iter().find(|o| o.id == Some(obj)) else {
            events.push(Event::Unexpected(format!(
                "INVOKE '{method}' for unknown object {obj:#x}"
            )));
            return ack(self, status::NOT_FOUND);
        };
        if !o.methods.iter().any(|m| m.name == method) {
            return ack(self, status::METHOD_NOT_FOUND);
        }
        events.push(Event::Invoke(Invocation {
            path: o.path.clone(),
            obj_id: obj,
            method,
            data,
            seq: msg.seq,
            peer: msg.peer,
            user: msg.user().map(str::to_owned),
            no_reply,
        }));
        Ok(())
    }

    /// LOOKUP of subscription `i`'s target (SUBSCRIBE follows if found).
    fn lookup_for_subscription(&mut self, i: usize) -> Result<(), ClientError> {
        let path = self.subs[i].path.clone();
        let watching = self.object_add_registered;
        self.request(
            |seq| Message::lookup(seq, Some(&path)),
            PendingKind::Lookup {
                then: AfterLookup::Subscribe { index: i, watching },
                objects: Vec::new(),
            },
        )
    }

    fn on_object_appeared(&mut self, data: &Table) -> Result<(), ClientError> {
        let (Some(path), Some(id)) = (data.get_str("path"), data.get("id").and_then(Value::as_i64))
        else {
            return Ok(());
        };
        let target = id as u32;
        let Some(i) = self.subs.iter().position(|s| s.path == path) else {
            return Ok(());
        };
        let s = &mut self.subs[i];
        // A different id means the object was re-created (its owner restarted).
        if let (Some(own), true) = (s.own_id, s.target != Some(target)) {
            s.target = Some(target);
            self.request(
                |seq| Message::subscribe(seq, own, target),
                PendingKind::Subscribe(i),
            )?;
        }
        Ok(())
    }
}
