//! Incoming: what each message from ubusd does to the client.

use super::{
    pattern_matches, AfterLookup, Client, ClientError, Deferred, Event, Invocation, ObjRef,
    ObjectInfo, PendingKind, State, OBJECT_ADD_EVENT,
};
use crate::blobmsg::{Table, Value};
use crate::message::{status, Message, MsgType};

impl Client {
    // ---- Incoming.

    /// Handles one message from ubusd.
    pub fn handle(&mut self, msg: Message) -> Vec<Event> {
        let mut events = Vec::new();
        if let Err(e) = self.handle_inner(msg, &mut events) {
            events.push(Event::Unexpected(e.to_string()));
        }
        events
    }

    pub(super) fn handle_inner(
        &mut self,
        msg: Message,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
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

    pub(super) fn on_hello(
        &mut self,
        client_id: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
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

    pub(super) fn on_data(&mut self, msg: Message, events: &mut Vec<Event>) {
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

    pub(super) fn on_status(
        &mut self,
        msg: Message,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
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

    pub(super) fn on_object_added(
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

    pub(super) fn on_invoke(
        &mut self,
        msg: Message,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
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
    pub(super) fn lookup_for_subscription(&mut self, i: usize) -> Result<(), ClientError> {
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

    pub(super) fn on_object_appeared(&mut self, data: &Table) -> Result<(), ClientError> {
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
