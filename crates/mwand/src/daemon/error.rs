//! Why mwand could not start or had to stop: one enum, causes chained with
//! `source()`, an exit code per class (docs/mwand.md), and [`report`], the
//! one place that prints an error with its causes.

use crate::dataplane::DataplaneError;
use mwan_core::config::Rejected;
use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum DaemonError {
    /// The config file is invalid (every problem listed).
    Config(Rejected),
    /// The run dir or a socket in it cannot be created.
    RunDir(PathBuf, io::Error),
    /// Another mwand answers on the control socket.
    AlreadyRunning(PathBuf),
    /// A system facility (epoll, signalfd, ubus) failed.
    Io(&'static str, io::Error),
    /// The data plane cannot be opened (netlink).
    Dataplane(DataplaneError),
}

impl DaemonError {
    /// Exit status per class: 1 a system facility or the run dir, 2 the
    /// config, 3 already running, 4 the kernel's data plane (netlink).
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Io(..) | DaemonError::RunDir(..) => 1,
            DaemonError::Config(_) => 2,
            DaemonError::AlreadyRunning(_) => 3,
            DaemonError::Dataplane(_) => 4,
        }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Config(r) => write!(f, "the config is invalid, not starting:\n{r}"),
            DaemonError::RunDir(p, _) => write!(f, "run dir {}", p.display()),
            DaemonError::AlreadyRunning(p) => write!(
                f,
                "another mwand answers on {}; stop it first or use another --run-dir",
                p.display()
            ),
            DaemonError::Io(what, _) => f.write_str(what),
            DaemonError::Dataplane(_) => f.write_str("data plane"),
        }
    }
}

impl Error for DaemonError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            DaemonError::RunDir(_, e) | DaemonError::Io(_, e) => Some(e),
            DaemonError::Dataplane(e) => Some(e),
            DaemonError::Config(_) | DaemonError::AlreadyRunning(_) => None,
        }
    }
}

/// An error and its causes, `outer: cause: root cause`. A cause whose text
/// the message already ends with (error types of other crates that print
/// their own source) is not repeated.
pub fn report(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out += ": ";
            out += &text;
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwan_netlink::NetlinkError;

    #[test]
    fn each_class_has_its_exit_code() {
        let io = || io::Error::from_raw_os_error(libc::EACCES);
        let cases = [
            (DaemonError::Io("epoll", io()), 1),
            (DaemonError::RunDir("/run/mwan".into(), io()), 1),
            (
                DaemonError::AlreadyRunning("/run/mwan/control.sock".into()),
                3,
            ),
            (
                DaemonError::Dataplane(DataplaneError::Observe(NetlinkError::Overrun)),
                4,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{}", report(&e));
        }
        let text = "config interface 'wan'\n\toption enabled 'maybe'\n";
        let rejected = mwan_core::config::parse("t", text).expect_err("invalid");
        assert_eq!(DaemonError::Config(rejected).exit_code(), 2);
    }

    #[test]
    fn the_report_chains_every_cause_once() {
        let e = DaemonError::RunDir(
            "/run/mwan".into(),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(
            report(&e),
            "run dir /run/mwan: Permission denied (os error 13)"
        );
        let e = DaemonError::Dataplane(DataplaneError::Open {
            what: "rtnetlink",
            source: NetlinkError::Io {
                context: "socket".into(),
                source: io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
            },
        });
        assert_eq!(
            report(&e),
            "data plane: rtnetlink: socket: Protocol not supported (os error 93)"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "reading: {}", self.0)
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io::Error::other("gone"));
        assert_eq!(report(&e), "reading: gone");
    }
}
