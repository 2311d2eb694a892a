//! nftables batch for table `inet mwan` (owned by the nft helper).
