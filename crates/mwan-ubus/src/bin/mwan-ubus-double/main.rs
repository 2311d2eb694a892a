//! mwan-ubus-double: a test double of ubusd with procd's `service` object
//! inside, for integration tests on machines without OpenWrt.
//!
//! It does no more than the captures in ../shared/ubus-vectors show (and
//! tests/double.rs checks it against them): HELLO, LOOKUP, INVOKE relayed
//! to object owners (with user/group "root"), ADD_OBJECT (named and
//! anonymous), the event object (id 1: `register` with an exact pattern,
//! `send`, `ubus.object.add`), SUBSCRIBE with ACTIVE notifications to the
//! owner (1 on the first subscriber, 0 when the last one's client goes),
//! NOTIFY fan-out; and procd's set/add/delete/list/signal (procd.rs).
//! When an object goes away (its client left, or netifd restarts) it does
//! what ubusd's `ubusd_free_object` does: UNSUBSCRIBE to each subscriber
//! (OBJID the subscriber, TARGET the object), then `ubus.object.remove`
//! ({id, path}, the shape of `ubus.object.add`).
//! With `--netifd FILE` it also plays netifd (netifd.rs).
//! Not done, because neither captures nor tests need it: wildcard event
//! patterns, REMOVE_OBJECT, ACLs, monitor.
//! Usage: `mwan-ubus-double --socket PATH [--netifd FILE]`; SIGTERM/SIGINT
//! stop it and its instances (which also die with it via PDEATHSIG);
//! SIGUSR1 restarts its netifd, SIGUSR2 makes netifd publish its state.

mod netifd;
mod procd;

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::client::{signature, MethodSpec};
use mwan_ubus::conn::Connection;
use mwan_ubus::message::{status, Attr, Message, MsgType, EVENT_OBJECT_ID};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
/// Child exits and kill deadlines are checked this often (a test tool: a
/// short poll beats a SIGCHLD pipe in size and simplicity).
const POLL_TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Client(usize),
    Procd,
    Netifd,
}

#[derive(Debug)]
struct Object {
    path: Option<String>,
    type_id: u32,
    signature: Table,
    owner: Owner,
    /// Subscriber object ids.
    subscribers: Vec<u32>,
    invoke_seq: u16,
}

struct Peer {
    id: u32,
    conn: Connection,
}

struct Bus {
    peers: HashMap<usize, Peer>,
    objects: BTreeMap<u32, Object>,
    /// (listener object id, pattern)
    listeners: Vec<(u32, String)>,
    procd: procd::Procd,
    netifd: Option<netifd::Netifd>,
    procd_seq: u16,
    /// Sequence number of event deliveries, shared by all listeners.
    event_seq: u16,
    procd_client_id: u32,
    service_id: u32,
    rng: u32,
}

impl Bus {
    fn new_id(&mut self) -> u32 {
        loop {
            // xorshift32: ids look like ubusd's random ones and never repeat soon.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            let id = self.rng;
            if id > 1 && !self.objects.contains_key(&id) && !self.peers.values().any(|p| p.id == id)
            {
                return id;
            }
        }
    }

    fn send(&mut self, peer: usize, msg: &Message) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut bytes = Vec::new();
        if let Err(e) = msg.encode_into(&mut bytes) {
            eprintln!("double: cannot encode reply: {e}");
            return;
        }
        match p.conn.queue(&bytes).and_then(|()| p.conn.flush()) {
            Ok(()) => {}
            // The client is gone; its read side reports that and cleans up.
            Err(mwan_ubus::conn::ConnError::Io(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => eprintln!("double: client {:#x}: {e}", p.id),
        }
    }

    fn peer_by_client_id(&self, id: u32) -> Option<usize> {
        self.peers.iter().find(|(_, p)| p.id == id).map(|(k, _)| *k)
    }

    fn status(&mut self, peer: usize, seq: u16, peer_field: u32, code: u32) {
        self.send(
            peer,
            &Message::new(MsgType::Status, seq, peer_field).with(Attr::Status(code)),
        );
    }

    fn emit_event(&mut self, name: &str, data: Table) {
        let targets: Vec<u32> = self
            .listeners
            .iter()
            .filter(|(_, p)| p == name)
            .map(|(o, _)| *o)
            .collect();
        for obj in targets {
            let Some(o) = self.objects.get(&obj) else {
                continue;
            };
            // One counter for every delivery to every listener (00, e1: one
            // event to two listeners is seq 4 and 5; f2: a new listener's
            // first event is seq 6).
            self.event_seq = self.event_seq.wrapping_add(1);
            let (seq, owner) = (self.event_seq, o.owner);
            if let Owner::Client(peer) = owner {
                let msg = Message::new(MsgType::Invoke, seq, 0)
                    .with(Attr::ObjId(obj))
                    .with(Attr::Method(name.to_owned()))
                    .with(Attr::Data(data.clone()));
                self.send(peer, &msg);
            }
        }
    }

    fn handle(&mut self, peer: usize, msg: Message, now: Instant) {
        let client_id = self.peers[&peer].id;
        match msg.kind {
            MsgType::Lookup => {
                let path = msg.path().map(str::to_owned);
                let found: Vec<(u32, String, u32, Table)> = self
                    .objects
                    .iter()
                    .filter_map(|(id, o)| {
                        Some((*id, o.path.clone()?, o.type_id, o.signature.clone()))
                    })
                    .filter(|(_, p, _, _)| path.as_deref().is_none_or(|want| want == p))
                    .collect();
                if found.is_empty() && path.is_some() {
                    return self.status(peer, msg.seq, 0, status::NOT_FOUND);
                }
                for (id, p, type_id, sig) in found {
                    let data = Message::new(MsgType::Data, msg.seq, 0)
                        .with(Attr::ObjPath(p))
                        .with(Attr::ObjId(id))
                        .with(Attr::ObjType(type_id))
                        .with(Attr::Signature(sig));
                    self.send(peer, &data);
                }
                self.status(peer, msg.seq, 0, status::OK);
            }
            MsgType::AddObject => {
                let type_id = self.new_id();
                let named = msg.path().is_some();
                // As captured (e1): listeners hear of the object before its owner gets the id.
                let id = self.add_object(Object {
                    path: msg.path().map(str::to_owned),
                    type_id,
                    signature: msg.signature().cloned().unwrap_or_default(),
                    owner: Owner::Client(peer),
                    subscribers: Vec::new(),
                    invoke_seq: 0,
                });
                let mut reply = Message::new(MsgType::Data, msg.seq, 0).with(Attr::ObjId(id));
                if named {
                    reply = reply.with(Attr::ObjType(type_id));
                }
                self.send(peer, &reply);
                self.status(peer, msg.seq, 0, status::OK);
            }
            MsgType::Invoke => self.invoke(peer, client_id, msg, now),
            MsgType::Data | MsgType::Status => {
                // An owner answering a relayed INVOKE: pass on to the caller, peer = object id.
                let Some(caller) = self.peer_by_client_id(msg.peer) else {
                    return;
                };
                let mut relayed = msg.clone();
                relayed.peer = msg.obj_id().unwrap_or(0);
                self.send(caller, &relayed);
            }
            MsgType::Subscribe => {
                let (Some(own), Some(target)) = (msg.obj_id(), msg.target()) else {
                    return self.status(peer, msg.seq, 0, status::INVALID_ARGUMENT);
                };
                let Some(t) = self.objects.get_mut(&target) else {
                    return self.status(peer, msg.seq, 0, status::NOT_FOUND);
                };
                let first = t.subscribers.is_empty();
                if !t.subscribers.contains(&own) {
                    t.subscribers.push(own);
                }
                if first {
                    self.notify_active(target, true);
                }
                self.status(peer, msg.seq, 0, status::OK);
            }
            MsgType::Notify => {
                let Some(obj) = msg.obj_id() else { return };
                let method = msg.method().unwrap_or_default().to_owned();
                let data = msg.data().cloned().unwrap_or_default();
                self.fan_out(obj, client_id, msg.seq, &method, data);
            }
            other => {
                eprintln!("double: unsupported {other:?} from {client_id:#x}");
                self.status(peer, msg.seq, msg.peer, status::INVALID_COMMAND);
            }
        }
    }

    /// Registers an object; a named one is announced as `ubus.object.add`.
    fn add_object(&mut self, object: Object) -> u32 {
        let id = self.new_id();
        let path = object.path.clone();
        self.objects.insert(id, object);
        if let Some(p) = path {
            self.emit_event("ubus.object.add", object_event(id, p));
        }
        id
    }

    fn object_by_path(&self, path: &str) -> Option<u32> {
        self.objects
            .iter()
            .find(|(_, o)| o.path.as_deref() == Some(path))
            .map(|(id, _)| *id)
    }

    /// An object goes away, in the order of ubusd's `ubusd_free_object`:
    /// its own subscriptions end (ACTIVE=0 to a target left without
    /// subscribers), each subscriber of it gets UNSUBSCRIBE, then
    /// listeners hear `ubus.object.remove`.
    fn remove_object(&mut self, id: u32) {
        let targets: Vec<u32> = self
            .objects
            .iter()
            .filter(|(_, o)| o.subscribers.contains(&id))
            .map(|(t, _)| *t)
            .collect();
        for t in targets {
            let now_empty = self.objects.get_mut(&t).is_some_and(|o| {
                o.subscribers.retain(|s| *s != id);
                o.subscribers.is_empty()
            });
            if now_empty {
                self.notify_active(t, false);
            }
        }
        let subscribers = self
            .objects
            .get(&id)
            .map(|o| o.subscribers.clone())
            .unwrap_or_default();
        for sub in subscribers {
            let Some(s) = self.objects.get_mut(&sub) else {
                continue;
            };
            s.invoke_seq = s.invoke_seq.wrapping_add(1);
            let (seq, owner) = (s.invoke_seq, s.owner);
            if let Owner::Client(peer) = owner {
                let m = Message::new(MsgType::Unsubscribe, seq, 0)
                    .with(Attr::ObjId(sub))
                    .with(Attr::Target(id));
                self.send(peer, &m);
            }
        }
        self.listeners.retain(|(l, _)| *l != id);
        if let Some(Object { path: Some(p), .. }) = self.objects.remove(&id) {
            self.emit_event("ubus.object.remove", object_event(id, p));
        }
    }

    fn notify_active(&mut self, obj: u32, active: bool) {
        let Some(o) = self.objects.get_mut(&obj) else {
            return;
        };
        o.invoke_seq = o.invoke_seq.wrapping_add(1);
        let (seq, owner) = (o.invoke_seq, o.owner);
        if let Owner::Client(peer) = owner {
            let m = Message::new(MsgType::Notify, seq, 0)
                .with(Attr::ObjId(obj))
                .with(Attr::Active(u8::from(active)));
            self.send(peer, &m);
        }
    }

    /// Delivers a NOTIFY of `obj` to its subscribers (as captured in g2).
    fn fan_out(&mut self, obj: u32, publisher: u32, seq: u16, method: &str, data: Table) {
        let subs = self
            .objects
            .get(&obj)
            .map(|o| o.subscribers.clone())
            .unwrap_or_default();
        for sub in subs {
            let Some(Owner::Client(peer)) = self.objects.get(&sub).map(|o| o.owner) else {
                continue;
            };
            let m = Message::new(MsgType::Invoke, seq, publisher)
                .with(Attr::NoReply(1))
                .with(Attr::ObjId(sub))
                .with(Attr::Method(method.to_owned()))
                .with(Attr::User("root".into()))
                .with(Attr::Group("root".into()))
                .with(Attr::Data(data.clone()));
            self.send(peer, &m);
        }
    }

    fn invoke(&mut self, peer: usize, client_id: u32, msg: Message, now: Instant) {
        let obj = msg.obj_id().unwrap_or(msg.peer);
        let method = msg.method().unwrap_or_default().to_owned();
        let data = msg.data().cloned().unwrap_or_default();
        if obj == EVENT_OBJECT_ID {
            let code = match method.as_str() {
                "register" => match (
                    data.get("object").and_then(Value::as_i64),
                    data.get_str("pattern"),
                ) {
                    (Some(o), Some(p)) if self.objects.contains_key(&(o as u32)) => {
                        self.listeners.push((o as u32, p.to_owned()));
                        status::OK
                    }
                    _ => status::INVALID_ARGUMENT,
                },
                "send" => match (
                    data.get_str("id").map(str::to_owned),
                    data.get_table("data").cloned(),
                ) {
                    (Some(id), Some(payload)) => {
                        self.status(peer, msg.seq, EVENT_OBJECT_ID, status::OK);
                        self.emit_event(&id, payload);
                        return;
                    }
                    _ => status::INVALID_ARGUMENT,
                },
                _ => status::METHOD_NOT_FOUND,
            };
            return self.status(peer, msg.seq, EVENT_OBJECT_ID, code);
        }
        let Some(o) = self.objects.get(&obj) else {
            return self.status(peer, msg.seq, msg.peer, status::NOT_FOUND);
        };
        match o.owner {
            Owner::Client(owner) => {
                let fwd = Message::new(MsgType::Invoke, msg.seq, client_id)
                    .with(Attr::ObjId(obj))
                    .with(Attr::Method(method))
                    .with(Attr::User("root".into()))
                    .with(Attr::Group("root".into()))
                    .with(Attr::Data(data));
                self.send(owner, &fwd);
            }
            Owner::Netifd => self.netifd_call(peer, msg.seq, obj, &method),
            Owner::Procd => {
                let (code, reply, notices) = self.procd.call(&method, &data, now);
                self.publish(notices);
                if let Some(reply) = reply {
                    self.send(peer, &Message::reply_data(msg.seq, obj, obj, reply));
                }
                self.send(peer, &Message::reply_status(msg.seq, obj, obj, code));
            }
        }
    }

    /// procd's NOTIFYs on the service object.
    fn publish(&mut self, notices: Vec<procd::Notice>) {
        for (method, data) in notices {
            self.procd_seq = self.procd_seq.wrapping_add(1);
            let (sid, pid, seq) = (self.service_id, self.procd_client_id, self.procd_seq);
            self.fan_out(sid, pid, seq, &method, data);
        }
    }

    fn disconnect(&mut self, peer: usize) {
        self.peers.remove(&peer);
        let owned: Vec<u32> = self
            .objects
            .iter()
            .filter(|(_, o)| o.owner == Owner::Client(peer))
            .map(|(id, _)| *id)
            .collect();
        // Its subscriber objects leave their targets (g3: ACTIVE=0 when
        // the last goes); its objects' subscribers are told.
        for id in owned {
            self.remove_object(id);
        }
    }
}

/// `ubus.object.add` / `ubus.object.remove` data, as ubusd builds it.
fn object_event(id: u32, path: String) -> Table {
    Table::new()
        .with("id", Value::Int32(id as i32))
        .with("path", Value::string(path))
}

fn main() {
    const USAGE: &str = "usage: mwan-ubus-double --socket PATH [--netifd FILE]";
    let mut socket: Option<PathBuf> = None;
    let mut netifd: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" | "-s" => socket = args.next().map(PathBuf::from),
            "--netifd" => netifd = args.next().map(PathBuf::from),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(socket) = socket else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    if let Err(e) = run(&socket, netifd) {
        eprintln!("mwan-ubus-double: {e}");
        std::process::exit(1);
    }
}

fn run(socket: &std::path::Path, netifd: Option<PathBuf>) -> std::io::Result<()> {
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut listener = UnixListener::bind(socket)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let stop = signals()?;
    let methods: Vec<MethodSpec> = procd::SIGNATURE
        .iter()
        .map(|(n, a)| MethodSpec::new(n, a))
        .collect();
    let mut bus = Bus {
        peers: HashMap::new(),
        objects: BTreeMap::new(),
        listeners: Vec::new(),
        procd: procd::Procd::default(),
        netifd: None,
        procd_seq: 0,
        event_seq: 0,
        procd_client_id: 0,
        service_id: 0,
        rng: std::process::id().wrapping_mul(2_654_435_761) | 1,
    };
    bus.procd_client_id = bus.new_id();
    bus.service_id = bus.new_id();
    let type_id = bus.new_id();
    bus.objects.insert(
        bus.service_id,
        Object {
            path: Some("service".into()),
            type_id,
            signature: signature(&methods),
            owner: Owner::Procd,
            subscribers: Vec::new(),
            invoke_seq: 0,
        },
    );
    if let Some(file) = netifd {
        let id = bus.new_id();
        bus.netifd = Some(netifd::Netifd::new(file, id));
        bus.netifd_start();
    }
    eprintln!("mwan-ubus-double: listening on {}", socket.display());
    let mut events = Events::with_capacity(64);
    let mut next_token = 1usize;
    loop {
        match poll.poll(&mut events, Some(POLL_TICK)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => events.clear(),
            Err(e) => return Err(e),
        }
        if take_flag(&FLAGS.netifd_restart) {
            bus.netifd_restart();
        }
        if take_flag(&FLAGS.netifd_publish) {
            bus.netifd_publish();
        }
        if stop_requested(stop) {
            bus.procd.shutdown();
            // Best effort: the socket file is ours.
            if let Err(e) = std::fs::remove_file(socket) {
                eprintln!("mwan-ubus-double: remove {}: {e}", socket.display());
            }
            return Ok(());
        }
        let now = Instant::now();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next_token);
                            next_token += 1;
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            let id = bus.new_id();
                            bus.peers.insert(
                                token.0,
                                Peer {
                                    id,
                                    conn: Connection::from_stream(stream),
                                },
                            );
                            bus.send(token.0, &Message::new(MsgType::Hello, 0, id));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let peer = ev.token().0;
            let mut msgs = Vec::new();
            let result = match bus.peers.get_mut(&peer) {
                Some(p) => p.conn.read_messages(&mut msgs),
                None => continue,
            };
            for m in msgs {
                bus.handle(peer, m, now);
            }
            if let Err(e) = result {
                if !matches!(e, mwan_ubus::conn::ConnError::Closed) {
                    eprintln!("double: dropping client: {e}");
                }
                if let Some(p) = bus.peers.get_mut(&peer) {
                    if let Err(e) = poll.registry().deregister(p.conn.stream_mut()) {
                        eprintln!("double: deregister: {e}");
                    }
                }
                bus.disconnect(peer);
            }
        }
        let notices = bus.procd.poll(now);
        bus.publish(notices);
    }
}

/// What the signals asked for, polled each tick.
struct Flags {
    stop: AtomicBool,
    netifd_restart: AtomicBool,
    netifd_publish: AtomicBool,
}

static FLAGS: Flags = Flags {
    stop: AtomicBool::new(false),
    netifd_restart: AtomicBool::new(false),
    netifd_publish: AtomicBool::new(false),
};

fn take_flag(flag: &AtomicBool) -> bool {
    flag.swap(false, Ordering::SeqCst)
}

/// SIGTERM/SIGINT stop; SIGUSR1/SIGUSR2 restart netifd / make it publish.
fn signals() -> std::io::Result<&'static AtomicBool> {
    extern "C" fn on_signal(sig: libc::c_int) {
        let flag = match sig {
            libc::SIGUSR1 => &FLAGS.netifd_restart,
            libc::SIGUSR2 => &FLAGS.netifd_publish,
            _ => &FLAGS.stop,
        };
        flag.store(true, Ordering::SeqCst);
    }
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let r = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if r == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(&FLAGS.stop)
}

fn stop_requested(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}
