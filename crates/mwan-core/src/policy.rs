//! Policy resolution: which members carry each policy's traffic.
