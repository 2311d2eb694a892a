//! nft table `inet mwan` content built from the plan (owned by the nft helper).
