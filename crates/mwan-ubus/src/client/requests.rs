//! Requests: lookup, call, invoke, events, notifications, replies.

use super::{AfterLookup, Client, ClientError, Deferred, Invocation, PendingKind, Tag};
use crate::blobmsg::Table;
use crate::message::{status, Message};

impl Client {
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
}
