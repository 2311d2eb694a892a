//! The desired network plan (tables, routes, rules, nft table) and its diff
//! against observed kernel state.

pub mod nft;
