//! Which workers may run requests at once. A request that only computes (a look-up: parse,
//! one indexed read, a reply) gains nothing from more threads than cores: every extra one that
//! epoll wakes is a context switch, and a run queue of dozens of workers makes each request
//! wait behind all of them. So only a few workers hold a turn, wait in epoll and run requests;
//! the rest wait here. A worker that waits on something else (the writer's commit,
//! PostgreSQL, a password hash: `crate::pace::waiting`) gives its turn to a waiting worker and,
//! back from its wait, finishes its request and then waits for a turn again while too many
//! hold one. A request that computes for long (a broad sorted list, a big page) is not allowed
//! to hold its turn either: a watcher takes it back after two of its ticks, so a few heavy
//! requests cannot stall every look-up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How often the watcher looks for a request that has held its turn for long; a request
/// still running at two looks in a row (2 to 4 ms) gives its turn away.
const TICK: Duration = Duration::from_millis(2);
/// The watcher's look while no request is running.
const IDLE_TICK: Duration = Duration::from_millis(20);

pub struct Turns {
    /// How many workers may hold a turn at once.
    max: usize,
    state: Mutex<State>,
    free: Condvar,
    /// Per worker: 0 between requests, else the number of the request it runs (odd, so never 0).
    running: Vec<AtomicU64>,
    stopping: AtomicBool,
}

struct State {
    /// Workers holding a turn.
    held: usize,
    /// Per worker: whether it holds one.
    holds: Vec<bool>,
}

impl Turns {
    /// Turns for `workers` workers, `max` of them at once.
    pub fn new(workers: usize, max: usize) -> Arc<Turns> {
        Arc::new(Turns {
            max: max.max(1),
            state: Mutex::new(State {
                held: 0,
                holds: vec![false; workers],
            }),
            free: Condvar::new(),
            running: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            stopping: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Worker `me` waits until it may take a turn and takes it; `false` once the server stops.
    /// A worker that still holds its turn keeps it unless more than `max` hold one (some came
    /// back from waits meanwhile). `before_waiting` runs (outside the lock) if it has to wait.
    pub fn take(&self, me: usize, before_waiting: impl Fn()) -> bool {
        let mut state = self.state();
        if state.holds[me] {
            if state.held <= self.max {
                return true;
            }
            state.holds[me] = false;
            state.held -= 1;
        }
        if state.held >= self.max {
            drop(state);
            before_waiting();
            state = self.state();
        }
        while state.held >= self.max {
            if self.stopping.load(Ordering::SeqCst) {
                return false;
            }
            state = self.free.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.holds[me] = true;
        state.held += 1;
        !self.stopping.load(Ordering::SeqCst)
    }

    /// Worker `me` gives its turn away (a wait, or a request that ran too long).
    fn give(&self, me: usize) {
        let mut state = self.state();
        if state.holds[me] {
            state.holds[me] = false;
            state.held -= 1;
            drop(state);
            self.free.notify_one();
        }
    }

    /// Worker `me` is back from a wait and finishes its request without waiting for a turn.
    fn resume(&self, me: usize) {
        let mut state = self.state();
        if !state.holds[me] {
            state.holds[me] = true;
            state.held += 1;
        }
    }

    /// Worker `me` starts (`Some(n)`, the request's number) or ends (`None`) a request.
    pub fn running(&self, me: usize, request: Option<u64>) {
        let mark = request.map_or(0, |n| n << 1 | 1);
        self.running[me].store(mark, Ordering::Relaxed);
    }

    /// Wakes every waiting worker: the server stops.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _state = self.state();
        self.free.notify_all();
    }

    /// Starts the watcher: every tick, a worker found running the same request as at the tick
    /// before gives its turn away. Ends when the server stops.
    pub fn watch(self: &Arc<Turns>) -> std::io::Result<()> {
        let turns = Arc::clone(self);
        std::thread::Builder::new()
            .name("vouchd-turns".into())
            .spawn(move || {
                let mut seen = vec![0u64; turns.running.len()];
                while !turns.stopping.load(Ordering::SeqCst) {
                    let mut busy = false;
                    for (me, running) in turns.running.iter().enumerate() {
                        let now = running.load(Ordering::Relaxed);
                        busy |= now != 0;
                        if now != 0 && now == seen[me] {
                            turns.give(me);
                        }
                        seen[me] = now;
                    }
                    std::thread::sleep(if busy { TICK } else { IDLE_TICK });
                }
            })?;
        Ok(())
    }
}

/// One worker's place among the turns, for `crate::pace`.
pub struct Seat {
    pub turns: Arc<Turns>,
    pub me: usize,
}

impl crate::pace::Turns for Seat {
    fn step_aside(&self) {
        // The thread is about to wait: its held access lines go out first.
        crate::ops::log::write_held();
        self.turns.give(self.me);
    }

    fn come_back(&self) {
        self.turns.resume(self.me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_hold_a_turn_and_a_wait_lets_another_in() {
        let turns = Turns::new(3, 2);
        assert!(turns.take(0, || ()));
        assert!(turns.take(1, || ()));
        let third = {
            let turns = Arc::clone(&turns);
            std::thread::spawn(move || turns.take(2, || ()))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !third.is_finished(),
            "a third worker waits while two hold turns"
        );
        turns.give(0);
        assert!(third.join().expect("third"));
        // Back from its wait, worker 0 runs at once; at its next request it is one too many.
        turns.resume(0);
        assert_eq!(turns.state().held, 3);
        let again = {
            let turns = Arc::clone(&turns);
            std::thread::spawn(move || turns.take(0, || ()))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!again.is_finished());
        assert_eq!(turns.state().held, 2);
        turns.stop();
        assert!(
            !again.join().expect("again"),
            "the stop wakes a waiting worker"
        );
    }

    #[test]
    fn a_request_running_for_long_gives_its_turn_away() {
        let turns = Turns::new(2, 1);
        turns.watch().expect("watcher");
        assert!(turns.take(0, || ()));
        turns.running(0, Some(7));
        let other = {
            let turns = Arc::clone(&turns);
            std::thread::spawn(move || turns.take(1, || ()))
        };
        assert!(other.join().expect("other"), "the watcher freed the turn");
        turns.running(0, None);
        turns.stop();
    }
}
