//! nftables table `inet mwan` through nf_tables netlink (NETLINK_NETFILTER).
//!
//! [`encode`] turns the pure [`NftTable`] from `mwan_core::plan::nft` into
//! nf_tables messages, byte for byte what `nft -f` sends for the same text
//! (golden tests below and in integration/tests/dataplane_nft.rs). [`Nft`]
//! sends them as ONE nfnetlink transaction, so a replacement is atomic:
//!
//! - rules of every chain we find are flushed, chains and sets that are no
//!   longer wanted (or whose definition changed) are deleted, then table,
//!   chains, sets and rules are (re)created;
//! - sets that stay are never deleted, so sticky entries and the elements
//!   dnsmasq put into user sets survive a config reload.
//!
//! Only table `inet mwan` is ever touched; mwand never runs `nft`.

//! The parts, in the order a request is built: [`wire`] numbers,
//! [`expr`]essions of a rule, one message per object ([`messages`]), the
//! requests of a transaction ([`batch`]), what the kernel holds
//! ([`observed`]), the socket that applies ([`apply`]) and the one that
//! watches ([`watch`]).

mod apply;
mod batch;
mod expr;
mod messages;
mod observed;
mod watch;
mod wire;

pub use apply::{Nft, ReplaceReport};
pub use batch::{
    create_requests, create_requests_commented, delete_table_request, flush_set_requests, plan_tag,
    replace_requests, replace_requests_commented, transaction_bytes,
};
pub use messages::parse_table_comment;
pub use observed::{drift, Drift, Observed, ObservedChain, ObservedSet};
pub use watch::{concerns_our_table, NftWatch};
pub use wire::{NFNL_SUBSYS_NFTABLES, NFPROTO_INET, TABLE_COMMENT_MAX};

#[cfg(test)]
mod tests;
