//! mwand's logger: `HH:MM:SS.mmm LEVEL target: message` on stderr, level from
//! -v/-q, RUST_LOG overriding it with env_logger's directive syntax
//! (`debug`, `mwand=debug,mwan_netlink=trace`, `off`).
//!
//! Our own instead of env_logger: that crate and env_filter cost 9 KiB of
//! .text of their own for what fits here (docs/footprint.md).

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Logger {
    /// Level for targets no directive names.
    default: LevelFilter,
    /// `(target prefix, level)`, longest prefix first: the first match wins.
    directives: Vec<(String, LevelFilter)>,
}

impl Logger {
    fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .find(|(prefix, _)| {
                target
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .map_or(self.default, |(_, level)| *level)
    }
}

/// The filter of `rust_log` over `default`: bare levels replace the
/// default, `target=level` directives apply to that module and below.
/// Words that are not a level are ignored, as env_logger does.
fn filter(default: LevelFilter, rust_log: Option<&str>) -> Logger {
    let mut logger = Logger {
        default,
        directives: Vec::new(),
    };
    for directive in rust_log.unwrap_or("").split(',').map(str::trim) {
        match directive.split_once('=') {
            Some((target, level)) => {
                if let Ok(level) = level.trim().parse() {
                    logger.directives.push((target.trim().to_string(), level));
                }
            }
            None => {
                if let Ok(level) = directive.parse() {
                    logger.default = level;
                }
            }
        }
    }
    mwan_core::sort::sort_by_key(&mut logger.directives, |(prefix, _)| {
        std::cmp::Reverse(prefix.len())
    });
    logger
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so lines of concurrent writers never interleave.
        // A closed stderr leaves nowhere to report that it failed.
        let line = format!(
            "{} {:<5} {}: {}\n",
            wall_clock_utc(std::time::SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        );
        std::io::stderr().lock().write_all(line.as_bytes()).ok();
    }

    fn flush(&self) {}
}

/// Installs the logger (once; a second call keeps the first).
pub fn init(default: LevelFilter, rust_log: Option<&str>) {
    let logger = filter(default, rust_log);
    let max = logger
        .directives
        .iter()
        .map(|(_, l)| *l)
        .fold(logger.default, Ord::max);
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// `HH:MM:SS.mmm` of `t` in UTC (a router's logread adds the date).
fn wall_clock_utc(t: std::time::SystemTime) -> String {
    let since_epoch = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs_of_day = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rust_log_directives_override_the_flags_level() {
        let l = filter(LevelFilter::Info, None);
        assert_eq!(l.level_for("mwand::daemon"), LevelFilter::Info);
        let l = filter(
            LevelFilter::Info,
            Some("warn,mwand=debug,mwand::daemon=trace,mwan_ubus=bogus"),
        );
        assert_eq!(l.level_for("mwan_netlink::route"), LevelFilter::Warn);
        assert_eq!(l.level_for("mwand::wan"), LevelFilter::Debug);
        assert_eq!(l.level_for("mwand::daemon::ubus"), LevelFilter::Trace);
        assert_eq!(
            l.level_for("mwandx"),
            LevelFilter::Warn,
            "prefix of a module name only"
        );
        assert_eq!(
            l.level_for("mwan_ubus"),
            LevelFilter::Warn,
            "a bad level is ignored"
        );
        assert_eq!(
            filter(LevelFilter::Info, Some("off")).default,
            LevelFilter::Off
        );
    }

    #[test]
    fn log_stamp_is_utc_time_of_day_in_millis() {
        // 2026-11-21 07:05:09.042 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_244_709_042);
        assert_eq!(wall_clock_utc(t), "07:05:09.042");
        assert_eq!(wall_clock_utc(UNIX_EPOCH), "00:00:00.000");
    }
}
