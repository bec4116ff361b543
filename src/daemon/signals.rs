//! Signals, as the Perl daemon understands them (`ld_init`):
//!
//! * `HUP`: reload the configuration.
//! * `TERM`, `INT`, `QUIT`: stop (with `cleanstop`); `XCPU` too, since a soft CPU limit is
//!   a request to wind down. A second stop signal while stopping exits at once without
//!   cleanup, as the Perl "Exit Handler Repeatedly Called".
//! * `PIPE`: ignored (Rust's runtime already ignores it).
//!
//! Perl also routes `ILL`, `FPE`, `SEGV`, `BUS`, `SYS`, `ABRT`/`IOT` and `XFSZ` to the
//! stop handler. In a Rust process the first five mean memory corruption or a broken
//! binary, and `ABRT` an abort: running cleanup code in that state is worse than dying, so
//! they keep their default action (core dump). `XFSZ` would fire on an oversized log
//! file, and the log writer already survives a failed write. None of these leaves the
//! kernel table inconsistent: the table is the kernel's, and a restart adopts it.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEvent {
    Reload,
    /// Stop; the signal's name for the log (`TERM`, …).
    Stop(&'static str),
}

/// The daemon's signal streams. Creating it replaces the default actions for the whole
/// process, so it must exist before the daemon reports ready.
#[derive(Debug)]
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
    quit: Signal,
    xcpu: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            xcpu: signal(SignalKind::from_raw(nix::libc::SIGXCPU))?,
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> SignalEvent {
        tokio::select! {
            _ = self.hup.recv() => SignalEvent::Reload,
            _ = self.term.recv() => SignalEvent::Stop("TERM"),
            _ = self.int.recv() => SignalEvent::Stop("INT"),
            _ = self.quit.recv() => SignalEvent::Stop("QUIT"),
            _ = self.xcpu.recv() => SignalEvent::Stop("XCPU"),
        }
    }
}
