//! The connections mwand serves, by token: control clients and trackers.
//! Bookkeeping only (which tracker is connected, which connections belong
//! to one interface, what the hung-tracker check needs); reading and
//! writing is the event loop's.

use crate::conn::Conn;
use mio::Token;
use mwan_core::tracker_control::TrackerContact;
use mwan_core::Millis;
use std::collections::HashMap;

pub enum Peer {
    Control(Conn),
    Tracker {
        conn: Conn,
        /// Its WAN, once it said Hello.
        interface: Option<String>,
        /// When it last sent anything (hung-tracker watchdog).
        heard_at: Millis,
    },
}

impl Peer {
    pub fn tracker(conn: Conn, now: Millis) -> Self {
        Peer::Tracker {
            conn,
            interface: None,
            heard_at: now,
        }
    }

    fn is_tracker_of(&self, name: &str) -> bool {
        matches!(self, Peer::Tracker { interface: Some(n), .. } if n == name)
    }

    /// The connection, and the interface of a tracker that said Hello.
    pub fn into_parts(self) -> (Conn, Option<String>) {
        match self {
            Peer::Control(c) => (c, None),
            Peer::Tracker {
                conn, interface, ..
            } => (conn, interface),
        }
    }
}

#[derive(Default)]
pub struct Peers {
    by_token: HashMap<Token, Peer>,
}

impl Peers {
    pub fn insert(&mut self, token: Token, peer: Peer) {
        self.by_token.insert(token, peer);
    }

    /// Takes a peer out while it is served (put it back with `insert`).
    pub fn take(&mut self, token: Token) -> Option<Peer> {
        self.by_token.remove(&token)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Token, &Peer)> + Clone {
        self.by_token.iter()
    }

    /// Whether a tracker that said Hello for `name` is connected.
    pub fn tracker_connected(&self, name: &str) -> bool {
        self.by_token.values().any(|p| p.is_tracker_of(name))
    }

    /// Removes every connection of `name`'s tracker (a newer one replaces
    /// them, or it is hung) and returns them for the caller to deregister.
    pub fn remove_trackers_of(&mut self, name: &str) -> Vec<Conn> {
        let tokens: Vec<Token> = self
            .by_token
            .iter()
            .filter(|(_, p)| p.is_tracker_of(name))
            .map(|(t, _)| *t)
            .collect();
        tokens
            .into_iter()
            .filter_map(|t| self.by_token.remove(&t))
            .map(|p| p.into_parts().0)
            .collect()
    }

    /// What the hung-tracker check needs of each tracker that said Hello.
    pub fn tracker_contacts(
        &self,
        silence_limit: impl Fn(&str) -> Option<Millis>,
    ) -> Vec<TrackerContact> {
        let mut contacts: Vec<TrackerContact> = self
            .by_token
            .values()
            .filter_map(|p| match p {
                Peer::Tracker {
                    interface: Some(name),
                    heard_at,
                    ..
                } => Some(TrackerContact {
                    interface: name.clone(),
                    heard_at: *heard_at,
                    silence_limit: silence_limit(name),
                }),
                _ => None,
            })
            .collect();
        mwan_core::sort::sort_by(&mut contacts, |a, b| a.interface.cmp(&b.interface));
        contacts
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::net::UnixStream;

    fn conn(token: usize) -> Conn {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        Conn::new(a, Token(token))
    }

    fn hello(peers: &mut Peers, token: usize, name: &str, heard_at: Millis) {
        peers.insert(
            Token(token),
            Peer::Tracker {
                conn: conn(token),
                interface: Some(name.into()),
                heard_at,
            },
        );
    }

    #[test]
    fn a_tracker_counts_as_connected_only_after_its_hello() {
        let mut peers = Peers::default();
        peers.insert(Token(16), Peer::tracker(conn(16), 0));
        peers.insert(Token(17), Peer::Control(conn(17)));
        assert!(!peers.tracker_connected("wan"));
        hello(&mut peers, 18, "wan", 0);
        assert!(peers.tracker_connected("wan"));
        assert!(!peers.tracker_connected("wan2"));
    }

    #[test]
    fn removing_a_trackers_connections_leaves_the_others() {
        let mut peers = Peers::default();
        hello(&mut peers, 16, "wan", 0);
        hello(&mut peers, 17, "wan", 5);
        hello(&mut peers, 18, "wan2", 0);
        peers.insert(Token(19), Peer::Control(conn(19)));
        let removed = peers.remove_trackers_of("wan");
        let mut tokens: Vec<usize> = removed.iter().map(|c| c.token.0).collect();
        mwan_core::sort::sort(&mut tokens);
        assert_eq!(tokens, [16, 17]);
        assert_eq!(peers.len(), 2);
        assert!(peers.tracker_connected("wan2"));
        assert!(peers.take(Token(19)).is_some());
    }

    #[test]
    fn contacts_list_trackers_that_said_hello_with_their_wans_limit() {
        let mut peers = Peers::default();
        hello(&mut peers, 16, "wan2", 7);
        hello(&mut peers, 17, "wan1", 3);
        peers.insert(Token(18), Peer::tracker(conn(18), 0));
        peers.insert(Token(19), Peer::Control(conn(19)));
        let limit = |n: &str| (n == "wan1").then_some(1_000);
        let contacts = peers.tracker_contacts(limit);
        assert_eq!(
            contacts,
            [
                TrackerContact {
                    interface: "wan1".into(),
                    heard_at: 3,
                    silence_limit: Some(1_000)
                },
                TrackerContact {
                    interface: "wan2".into(),
                    heard_at: 7,
                    silence_limit: None
                },
            ]
        );
    }

    #[test]
    fn a_peer_taken_out_while_served_is_absent_until_put_back() {
        let mut peers = Peers::default();
        hello(&mut peers, 16, "wan", 0);
        let p = peers.take(Token(16)).expect("there");
        assert!(!peers.tracker_connected("wan"));
        assert!(peers.take(Token(16)).is_none());
        peers.insert(Token(16), p);
        assert!(peers.tracker_connected("wan"));
    }
}
