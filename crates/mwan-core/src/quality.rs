//! Link quality: smoothed latency, jitter and loss, and the wanmon-style score.
