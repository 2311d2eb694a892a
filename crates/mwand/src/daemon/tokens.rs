//! Every token mwand's event loop dispatches on, in one place: the
//! constant tokens of the sockets it owns, and the range connections get
//! theirs from. [`source`] names what a readiness event is for; a token
//! nothing owns (a connection closed earlier in the same batch of events)
//! is [`Source::Unknown`], counted in status as an unexpected event.

use mio::Token;

pub const SIGNALS: Token = Token(0);
pub const CONTROL: Token = Token(1);
pub const TRACK: Token = Token(2);
/// rtnetlink notifications (links, addresses, routes, rules).
pub const NETLINK: Token = Token(3);
/// The ubus connection (OpenWrt).
pub const UBUS: Token = Token(4);
/// nf_tables notifications (someone else touched table `inet mwan`).
pub const NFT_EVENTS: Token = Token(5);
/// The dashboard's HTTP listener (`--http`, cargo feature `http`); its
/// connection slots take the `MAX_CONNECTIONS` tokens after it
/// (`http::server`). Without the feature these tokens are nobody's.
#[cfg(feature = "http")]
pub const HTTP: Token = Token(6);
#[cfg(feature = "http")]
const HTTP_LAST: usize = HTTP.0 + crate::http::MAX_CONNECTIONS;
#[cfg(feature = "http")]
const _: () = assert!(
    HTTP_LAST < FIRST_CONN,
    "HTTP slots run into connection tokens"
);
/// Connections (control clients, trackers) get tokens from here on; the
/// gap leaves room for more constant tokens.
pub const FIRST_CONN: usize = 16;

/// What a readiness event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Signals,
    ControlListener,
    TrackListener,
    Netlink,
    Ubus,
    NftEvents,
    /// The HTTP listener or one of its connection slots.
    #[cfg(feature = "http")]
    Http(Token),
    /// A connection's token (it may have closed since).
    Conn(Token),
    /// Below [`FIRST_CONN`] and none of ours.
    Unknown(Token),
}

pub fn source(token: Token) -> Source {
    match token {
        SIGNALS => Source::Signals,
        CONTROL => Source::ControlListener,
        TRACK => Source::TrackListener,
        NETLINK => Source::Netlink,
        UBUS => Source::Ubus,
        NFT_EVENTS => Source::NftEvents,
        #[cfg(feature = "http")]
        Token(n) if (HTTP.0..=HTTP_LAST).contains(&n) => Source::Http(token),
        Token(n) if n >= FIRST_CONN => Source::Conn(token),
        _ => Source::Unknown(token),
    }
}

/// Hands out connection tokens: each once, never a constant one.
#[derive(Debug)]
pub struct ConnTokens {
    next: usize,
}

impl Default for ConnTokens {
    fn default() -> Self {
        ConnTokens { next: FIRST_CONN }
    }
}

impl ConnTokens {
    pub fn allocate(&mut self) -> Token {
        let t = Token(self.next);
        // A u64 counter on 64-bit, u32 on the 32-bit routers: at one
        // connection a second, 136 years before it wraps.
        self.next += 1;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constant_token_names_its_source_and_no_two_share_one() {
        let constants = [
            (SIGNALS, Source::Signals),
            (CONTROL, Source::ControlListener),
            (TRACK, Source::TrackListener),
            (NETLINK, Source::Netlink),
            (UBUS, Source::Ubus),
            (NFT_EVENTS, Source::NftEvents),
            #[cfg(feature = "http")]
            (HTTP, Source::Http(HTTP)),
        ];
        for (i, (t, s)) in constants.iter().enumerate() {
            assert_eq!(source(*t), *s);
            assert!(t.0 < FIRST_CONN, "{t:?} inside the connection range");
            assert!(constants[..i].iter().all(|(u, _)| u != t), "{t:?} twice");
        }
    }

    #[test]
    fn connection_tokens_are_fresh_and_outside_the_constant_ones() {
        let mut tokens = ConnTokens::default();
        let a = tokens.allocate();
        let b = tokens.allocate();
        assert_eq!(a, Token(FIRST_CONN));
        assert_ne!(a, b);
        assert_eq!(source(b), Source::Conn(b));
        assert_eq!(source(Token(FIRST_CONN - 1)), Source::Unknown(Token(15)));
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_http_block_sits_between_the_constants_and_the_connections() {
        let last = Token(HTTP_LAST);
        assert_eq!(source(last), Source::Http(last));
        assert_eq!(
            source(Token(HTTP_LAST + 1)),
            Source::Unknown(Token(HTTP_LAST + 1))
        );
    }
}
