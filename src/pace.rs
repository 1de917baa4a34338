//! Turns: how a thread that runs requests says it is about to wait on something other than
//! the CPU (the writer's commit, PostgreSQL, a password hash), so that the server can let
//! another thread take its turn meanwhile. The server keeps only about as many threads running
//! requests as there are cores; a thread that waits gives its turn away here and takes one
//! back when it returns.
//!
//! It imports nothing of the crate: the store, the authentication and the server all use it.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// What a thread's turn belongs to: the server's pool of turns.
pub trait Turns: Send + Sync {
    /// The thread gives up its turn while it waits.
    fn step_aside(&self);
    /// The thread is back from waiting and finishes its request.
    fn come_back(&self);
}

thread_local! {
    static TURNS: RefCell<Option<Arc<dyn Turns>>> = const { RefCell::new(None) };
    /// How many [`waiting`] calls this thread is inside: only the outermost gives the turn away.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Makes the calling thread's waits count against `turns` (a server worker, at its start).
pub fn join(turns: Arc<dyn Turns>) {
    TURNS.with(|t| *t.borrow_mut() = Some(turns));
}

/// Runs `f`, which waits on something other than this thread's CPU, with the thread's turn
/// given away meanwhile. A thread outside a server's pool just runs `f`.
pub fn waiting<T>(f: impl FnOnce() -> T) -> T {
    struct Back(Option<Arc<dyn Turns>>);
    impl Drop for Back {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get() - 1));
            if let Some(turns) = &self.0 {
                turns.come_back();
            }
        }
    }
    let outermost = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get() == 1
    });
    let turns = if outermost {
        TURNS.with(|t| t.borrow().clone())
    } else {
        None
    };
    if let Some(turns) = &turns {
        turns.step_aside();
    }
    // Given back even if `f` panics: the worker catches the panic and goes on.
    let _back = Back(turns);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    struct Count(AtomicI32, AtomicI32);
    impl Turns for Count {
        fn step_aside(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn come_back(&self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_the_outermost_wait_gives_the_turn_away_and_it_comes_back_after_a_panic() {
        let count = Arc::new(Count(AtomicI32::new(0), AtomicI32::new(0)));
        let seen = Arc::clone(&count);
        std::thread::spawn(move || {
            assert_eq!(waiting(|| 1), 1, "outside a pool it just runs");
            join(seen.clone());
            waiting(|| waiting(|| ()));
            assert_eq!(seen.0.load(Ordering::SeqCst), 1);
            assert_eq!(seen.1.load(Ordering::SeqCst), 1);
            let caught = std::panic::catch_unwind(|| waiting(|| panic!("in a wait")));
            assert!(caught.is_err());
            waiting(|| ());
        })
        .join()
        .expect("thread");
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        assert_eq!(count.1.load(Ordering::SeqCst), 3);
    }
}
