//! conntrack deletion by mark through ctnetlink (owned by the nft helper).
