//! mwan-netlink: the data plane's I/O. rtnetlink (routes, FIB rules, links,
//! addresses, events), sysctls, the nft table and conntrack deletion.

pub mod conntrack;
pub mod nft;
