//! SIGTERM and SIGINT: a graceful stop, and a second signal for an immediate one.
//!
//! A signal handler may do almost nothing safely (no locks, no allocation, no stdio). The
//! handlers signal-hook installs only write the signal's number to a self-pipe; an ordinary
//! thread reads it and runs the shutdown, where anything goes.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The installed handlers. From [`StopSignals::install`] on, SIGTERM and SIGINT no longer kill
/// the process: they wait for [`StopSignals::wait`], also when they arrive before it is called.
pub struct StopSignals(Signals);

impl StopSignals {
    pub fn install() -> Result<StopSignals, String> {
        Signals::new([SIGTERM, SIGINT])
            .map(StopSignals)
            .map_err(|e| format!("cannot install the signal handlers: {e}"))
    }

    /// Blocks until SIGTERM or SIGINT arrives; returns its name.
    pub fn wait(&mut self) -> &'static str {
        self.0.forever().next().map_or("a signal", name)
    }

    /// From now on another SIGTERM or SIGINT ends the process at once, with 128 + its number,
    /// for an operator who will not wait for a slow request to finish. What was committed is
    /// on disk; what was not was never acknowledged.
    pub fn exit_on_next(mut self) {
        let spawned = std::thread::Builder::new()
            .name("vouchd-signals".into())
            .spawn(move || {
                if let Some(signal) = self.0.forever().next() {
                    eprintln!("vouchd: {}: exiting at once", name(signal));
                    std::process::exit(128 + signal);
                }
            });
        if let Err(err) = spawned {
            eprintln!("vouchd: cannot watch for a second signal: {err}");
        }
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}
