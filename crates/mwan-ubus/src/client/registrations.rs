//! Registrations, remembered across reconnects: published objects, event
//! patterns, subscriptions.

use super::{
    pattern_matches, signature, Client, ClientError, MethodSpec, NamedObject, ObjRef, PendingKind,
    Subscription, OBJECT_ADD_EVENT,
};
use crate::message::Message;

impl Client {
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

    pub(super) fn register_object(&mut self, index: usize) -> Result<(), ClientError> {
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

    pub(super) fn ensure_listener(&mut self) -> Result<(), ClientError> {
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
    pub(super) fn watch_for_new_objects(&mut self) -> Result<(), ClientError> {
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

    pub(super) fn register_pattern(
        &mut self,
        listener: u32,
        pattern: &str,
    ) -> Result<(), ClientError> {
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

    pub(super) fn start_subscription(&mut self, index: usize) -> Result<(), ClientError> {
        self.request(
            |seq| Message::add_object(seq, None),
            PendingKind::AddObject {
                obj: ObjRef::Sub(index),
                id: None,
            },
        )
    }
}
