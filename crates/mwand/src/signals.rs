//! Signals as readable events: the handled signals are blocked and read from
//! a signalfd registered in the mio loop, so a signal never interrupts a
//! handler half-way. Children get an empty mask back (std's `Command` resets
//! it before exec).

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the config.
    Reload,
    /// SIGTERM / SIGINT: clean stop.
    Stop,
    /// SIGCHLD: a tracker or hook exited.
    Child,
}

pub struct Signals {
    fd: OwnedFd,
}

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a plain C struct.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

impl Signals {
    /// Blocks the handled signals for this (single-threaded) process and opens
    /// the signalfd. Call before any thread is started.
    pub fn new() -> io::Result<Self> {
        let set = handled_set();
        // SAFETY: valid sigset pointer; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: -1 asks for a new fd; the set is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by signalfd and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.fd.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    /// Every pending signal, read until the fd would block.
    pub fn drain(&self) -> io::Result<Vec<Signal>> {
        let mut out = Vec::new();
        loop {
            // SAFETY: a zeroed signalfd_siginfo is a valid buffer of the size we read.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading into a buffer of exactly `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(out);
                }
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n as usize != size {
                return Ok(out);
            }
            let sig = match info.ssi_signo as i32 {
                libc::SIGHUP => Signal::Reload,
                libc::SIGTERM | libc::SIGINT => Signal::Stop,
                libc::SIGCHLD => Signal::Child,
                _ => continue,
            };
            if !out.contains(&sig) {
                out.push(sig);
            }
        }
    }
}
