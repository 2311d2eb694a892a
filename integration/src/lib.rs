//! Shared support for the integration tests and benchmarks lives in mwan-testbed.
